"""Helpers to run the real DVC pipeline in a throwaway copy of this repository."""

from __future__ import annotations

import os
import pty
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path

BIN = Path(sys.executable).parent


def tracked_files(root: Path) -> list[str]:
    """Files git would put in a clean clone: tracked plus untracked-not-ignored."""
    out = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=root,
        check=True,
        capture_output=True,
    ).stdout.decode()
    return [f for f in out.split("\0") if f and (root / f).is_file()]


def env_for(repo: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = str(repo)  # the copy's own code, not the editable install's
    env["PYTHONHASHSEED"] = "0"
    env.pop("DVC_SITE_CACHE_DIR", None)
    env.update(extra or {})
    return env


def run(
    repo: Path, *args: str, check: bool = True, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run a command in ``repo`` with the copy's own code on PYTHONPATH (``env`` adds to it)."""
    proc = subprocess.run(
        list(args), cwd=repo, env=env_for(repo, env), capture_output=True, text=True
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"{' '.join(args)} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        )
    return proc


def make_clone(src: Path, dest: Path, params: Path) -> Path:
    """Copy the working tree to ``dest`` as a fresh git repo whose params.yaml is ``params``.

    The committed dvc.lock and metrics (from the default params) are dropped, so
    the copy starts from nothing, like a clean clone with a new profile.
    """
    for rel in tracked_files(src):
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src / rel, target)
    shutil.copy(params, dest / "params.yaml")
    (dest / "dvc.lock").unlink(missing_ok=True)
    shutil.rmtree(dest / "metrics", ignore_errors=True)
    for cmd in (
        ["git", "init", "-q", "-b", "main"],
        ["git", "add", "-A"],
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "clone"],
    ):
        run(dest, *cmd)
    run(dest, "dvc", "config", "--local", "core.analytics", "false")
    return dest


def wipe_outputs(repo: Path) -> None:
    """Back to 'from scratch': no outputs, no cache, no lock."""
    for rel in ("data", "models", "metrics", "paper/figures", ".dvc/cache", ".dvc/tmp"):
        shutil.rmtree(repo / rel, ignore_errors=True)
    (repo / "dvc.lock").unlink(missing_ok=True)


def traced_env(repo: Path, trace_dir: Path) -> dict[str, str]:
    """Extra environment under which every DVC stage records the project functions it runs
    into ``trace_dir`` (``tests/tracehook/sitecustomize.py``)."""
    hook = repo / "tests" / "tracehook"
    return {"HUSAI_TRACE_DIR": str(trace_dir), "PYTHONPATH": f"{repo}{os.pathsep}{hook}"}


def run_in_terminal(
    args: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: float = 600
) -> tuple[int, str]:
    """Run ``args`` with stdout and stderr on one pseudo-terminal; its exit status and
    everything it wrote there."""
    master, slave = pty.openpty()
    env = {**(os.environ if env is None else env), "TERM": "xterm-256color", "COLUMNS": "120"}
    proc = subprocess.Popen(
        args, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=slave, stderr=slave
    )
    os.close(slave)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while True:
            if time.monotonic() > deadline:
                proc.kill()
                raise AssertionError(f"{args} ran past {timeout} s")
            ready, _, _ = select.select([master], [], [], 0.5)
            if not ready:
                continue
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: every holder of the terminal's other end has closed it
                break
            if not data:
                break
            chunks.append(data)
    finally:
        os.close(master)
        proc.wait()
    return proc.returncode, b"".join(chunks).decode(errors="replace")
