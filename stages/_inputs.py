"""Every file a stage reads is checked before it is used.

:func:`read_input` returns a file's bytes or raises a one-line :class:`HusaiError` that
names the file and says how to get it back. When a stage runs by hand (outside
``dvc repro`` / ``dvc exp run``, which set ``DVC_STAGE`` in the stage's environment),
it also compares the input with the hash ``dvc.lock`` records for it: a file changed
since the pipeline last ran (edited, corrupted, or left by an earlier hand-run stage)
would silently change the results, so it is an error. Set ``HUSAI_SKIP_LOCK_CHECK=1``
to use such a file anyway. Inside DVC the check is DVC's own: it hashes every dep
before it runs a stage.

Hashes follow DVC 3: a file's is the md5 of its bytes; a folder's is the md5 of the
JSON list of its files' ``{"md5", "relpath"}`` (sorted by path, ``.dvcignore``'d
bytecode left out), with ``.dir`` appended.
"""

from __future__ import annotations

import hashlib
import json
import os
from functools import cache
from pathlib import Path

from husai.errors import HusaiError

SKIP_ENV = "HUSAI_SKIP_LOCK_CHECK"
LOCK_FILE = Path("dvc.lock")
_IGNORED_PARTS = {"__pycache__"}


def restore_hint(path: Path) -> str:
    return (
        f"run `dvc checkout {path}` to restore it from the DVC cache, or `dvc repro` to rebuild it"
    )


def file_md5(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def dir_md5(path: Path) -> str:
    """DVC 3's hash of folder ``path`` (``<md5>.dir``)."""
    entries = []
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        rel = file.relative_to(path)
        if _IGNORED_PARTS & set(rel.parts) or rel.suffix == ".pyc":
            continue
        entries.append({"md5": file_md5(file), "relpath": rel.as_posix()})
    entries.sort(key=lambda e: e["relpath"])
    blob = json.dumps(entries, sort_keys=True).encode("utf-8")
    return hashlib.md5(blob).hexdigest() + ".dir"


@cache
def _recorded(lock_mtime_ns: int) -> dict[str, tuple[str, str]]:
    """path -> (md5, producing stage) for every output that dvc.lock records."""
    from ruamel.yaml import YAML, YAMLError

    try:
        lock = YAML(typ="safe", pure=True).load(LOCK_FILE.read_text()) or {}
    except (OSError, YAMLError):
        return {}
    out = {}
    for stage, entry in (lock.get("stages") or {}).items():
        for item in (entry or {}).get("outs") or []:
            if isinstance(item, dict) and "path" in item and "md5" in item:
                out[str(item["path"])] = (str(item["md5"]), str(stage))
    return out


_checked: set[tuple] = set()


def _fingerprint(path: Path) -> tuple:
    """Sizes and modification times of ``path`` and every file below it (cheap to take)."""
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    return tuple((p.as_posix(), p.stat().st_size, p.stat().st_mtime_ns) for p in files)


def check_against_lock(path: Path) -> None:
    """Raise HusaiError when ``path`` (or the recorded folder holding it) differs from the
    version dvc.lock records (only outside DVC, only for paths under the working folder
    that dvc.lock names; a path is hashed again only when a file's size or time changed)."""
    if os.environ.get("DVC_STAGE") or os.environ.get(SKIP_ENV) or not LOCK_FILE.is_file():
        return
    try:
        rel = Path(path.resolve().relative_to(Path.cwd().resolve()).as_posix())
    except ValueError:
        return
    recorded = _recorded(LOCK_FILE.stat().st_mtime_ns)
    for candidate in (rel, *rel.parents):
        key = candidate.as_posix()
        if key in recorded:
            break
    else:
        return
    md5, stage = recorded[key]
    target = Path(key)
    if not target.exists():
        return
    seen = (key, md5, _fingerprint(target))
    if seen in _checked:
        return
    actual = dir_md5(target) if target.is_dir() else file_md5(target)
    if actual != md5:
        raise HusaiError(
            f"{key} is not the version dvc.lock records for it (stage {stage}): it "
            f"was changed after the pipeline ran; {restore_hint(target)}, or set "
            f"{SKIP_ENV}=1 to use it as it is"
        )
    _checked.add(seen)


def require_input(path: Path) -> None:
    """``path`` exists and matches dvc.lock (see :func:`check_against_lock`)."""
    if not path.exists():
        raise HusaiError(f"input not found: {path} (run the stage that makes it, or `dvc repro`)")
    check_against_lock(path)


def read_input(path: Path) -> bytes:
    """The bytes of input file ``path``, checked (exists, readable, matches dvc.lock)."""
    require_input(path)
    try:
        return path.read_bytes()
    except OSError as err:
        raise HusaiError(f"cannot read {path}: {err.strerror}") from None
