"""Which project code a DVC stage runs, and whether its ``dvc.yaml`` deps cover it.

``tests/tracehook/sitecustomize.py`` records, for every stage of a traced ``dvc repro``,
the project functions it executed; :func:`uncovered` lists the files among them that
the stage's deps do not name (a folder dep covers everything below it). A file that a
stage runs but does not depend on can change without DVC noticing, leaving a cached
result that no longer matches the code.

Two explicit lists exclude code that cannot change a stage's results:

* ``IGNORED``: the function itself is not recorded (what it calls still is), e.g. the
  stage wrapper, which runs the whole stage;
* ``PLUMBING``: neither the function nor anything it calls is recorded, e.g. params
  validation, which every stage runs on every section of params.yaml.

This module is imported by the trace hook inside the traced processes: keep it free of
third-party imports.
"""

from __future__ import annotations

from collections.abc import Iterable

# file -> qualified function names ("*": every function of the file), with the reason.
IGNORED: dict[str, set[str]] = {
    # CLI wiring: registers the stage commands.
    "stages/cli.py": {"*"},
    # The executor (local or SLURM): it hands a stage's units to their functions, which
    # are the stages' own and are recorded; where a unit runs does not change what it
    # computes (tests/test_executor.py runs the tiny sweep both ways).
    "stages/_executor.py": {"*"},
    # Error types: the message of a failure, never a result.
    "husai/errors.py": {"*"},
    # Stage wrapper (one-line errors, timing), device set-up that forwards to
    # husai.determinism.configure (traced there), atomic writes (bytes pass through
    # unchanged; their formatting is husai/serialize.py, traced).
    "stages/_common.py": {
        "stage",
        "stage.<locals>.decorate",
        "stage.<locals>.decorate.<locals>.wrapper",
        "setup",
        "_tmp_sibling",
        "write_bytes",
        "write_text",
        "write_json",
        "write_csv",
        "write_dir",
    },
}

PLUMBING: dict[str, set[str]] = {
    # Reading and validating every section of params.yaml; what a stage *uses* of the
    # params it reads through the resolved values (Params.sae_configs and friends), which
    # are traced when the stage calls them.
    "stages/_common.py": {"load_params", "read_yaml", "_log_timing"},
    # Checking that inputs exist, are readable and match dvc.lock: it can stop a stage,
    # never change its results (the bytes read are parsed by traced code).
    "stages/_inputs.py": {"*"},
    # The metrics contract: checks that a metric file has its declared layout (stages
    # before writing, the paper when reading). It can stop a stage, never change a value.
    "husai/records.py": {"*"},
    "husai/config.py": {"parse_params"},
    # Progress bars: they read the counts a stage hands them (epochs, steps, configurations)
    # and draw on the terminal (stderr) only; nothing they do reaches an output.
    "stages/_progress.py": {"*"},
}


def _listed(table: dict[str, set[str]], rel: str, qualname: str) -> bool:
    names = table.get(rel)
    return names is not None and ("*" in names or qualname in names)


def is_ignored(rel: str, qualname: str) -> bool:
    return _listed(IGNORED, rel, qualname)


def is_plumbing(rel: str, qualname: str) -> bool:
    return _listed(PLUMBING, rel, qualname)


def covered(path: str, deps: Iterable[str]) -> bool:
    """Whether file ``path`` is a dep or lies in a folder dep (paths relative to the repo)."""
    return any(path == d or path.startswith(d.rstrip("/") + "/") for d in deps)


def uncovered(executed: Iterable[tuple[str, str]], deps: Iterable[str]) -> dict[str, list[str]]:
    """Files of ``executed`` ``(file, qualname)`` pairs that ``deps`` do not cover,
    each with the functions that ran there (sorted), ignoring :data:`IGNORED` ones."""
    deps = list(deps)
    out: dict[str, set[str]] = {}
    for rel, qualname in executed:
        if is_ignored(rel, qualname) or rel.startswith("tests/"):
            continue
        if not covered(rel, deps):
            out.setdefault(rel, set()).add(qualname)
    return {rel: sorted(names) for rel, names in sorted(out.items())}
