"""Records which project functions a DVC stage executes (tests/test_deps.py reads it).

Python imports ``sitecustomize`` at start-up from ``sys.path``; the end-to-end tests put
this folder on ``PYTHONPATH`` and set ``HUSAI_TRACE_DIR``. In a process that DVC runs as a
stage (``DVC_STAGE`` set), every Python function call is seen once by a global trace
function (no line events), and at exit the set of ``[file, qualified name]`` pairs under
the repository root is written to ``$HUSAI_TRACE_DIR/<stage>.json``. Import-time code is
not recorded: module and class bodies, and whatever they call (decorators, registries
filling themselves), since a stage imports the whole CLI and params validation imports
the architecture registry. What a table built at import time holds matters only
through the functions that read it, which are traced when a stage calls them.

Calls made while a *plumbing* function is on the stack (``PLUMBING`` in
``tests/deps.py``: params validation, CLI wiring, timing) are not recorded either, so
that validating every params section does not make every stage depend on it.
"""

from __future__ import annotations

import os

_DIR = os.environ.get("HUSAI_TRACE_DIR")
_STAGE = os.environ.get("DVC_STAGE")

if _DIR and _STAGE:
    import atexit
    import importlib.util
    import json
    import sys
    import threading

    _ROOT = os.environ.get("DVC_ROOT") or os.getcwd()
    _PREFIX = os.path.join(os.path.realpath(_ROOT), "")

    # tests/deps.py of the traced repository, loaded by path: the stage's sys.path stays as it is
    _spec = importlib.util.spec_from_file_location(
        "_husai_deps", os.path.join(_PREFIX, "tests", "deps.py")
    )
    _deps = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(_deps)
    is_ignored, is_plumbing = _deps.is_ignored, _deps.is_plumbing

    _CO_OPTIMIZED = 0x1  # set for functions; unset for module and class bodies
    _seen: set[tuple[str, str]] = set()
    _depth = [0]

    def _local(frame, event, arg):  # only for plumbing frames: count their returns
        if event == "return":
            _depth[0] -= 1
        return _local

    def _global(frame, event, arg):
        code = frame.f_code
        path = code.co_filename
        if not path.startswith(_PREFIX):
            return None
        importing = code.co_name == "<module>"
        if not importing and not code.co_flags & _CO_OPTIMIZED:
            return None  # a class body
        rel = path[len(_PREFIX) :]
        if importing or is_plumbing(rel, code.co_qualname):
            _depth[0] += 1
            frame.f_trace_lines = False
            return _local
        if _depth[0] == 0 and not is_ignored(rel, code.co_qualname):
            _seen.add((rel, code.co_qualname))
        return None

    def _dump() -> None:
        sys.settrace(None)
        os.makedirs(_DIR, exist_ok=True)
        name = _STAGE.replace("/", "_").replace(":", "_")
        with open(os.path.join(_DIR, f"{name}.json"), "w") as fh:
            json.dump({"stage": _STAGE, "executed": sorted(_seen)}, fh, indent=1)

    atexit.register(_dump)
    sys.settrace(_global)
    threading.settrace(_global)
