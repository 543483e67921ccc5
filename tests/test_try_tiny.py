"""scripts/try-tiny (make tiny): the tiny profile on the host, in a throwaway clone. The
suite runs the tiny pipeline itself elsewhere (tests/pipeline.py); here the script's
setup, which is all it adds: a clone of HEAD with the tiny params, the checkout left as
it was, a refused non-empty folder."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run(dest: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "TRY_TINY_SETUP_ONLY": "1"}
    return subprocess.run(
        [str(REPO / "scripts/try-tiny"), str(dest)], env=env, capture_output=True, text=True
    )


def git(*args: str, cwd: Path = REPO) -> str:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True).stdout


def test_try_tiny_sets_up_a_clone_of_head_with_the_tiny_params(tmp_path) -> None:
    before = git("status", "--porcelain")
    dest = tmp_path / "clone"
    r = run(dest)
    assert r.returncode == 0, r.stderr
    assert (dest / "params.yaml").read_text() == (REPO / "tests/profiles/tiny.yaml").read_text()
    assert git("rev-parse", "HEAD", cwd=dest) == git("rev-parse", "HEAD")
    assert "params.yaml is valid" in r.stdout and "set up; run" in r.stdout
    assert git("status", "--porcelain") == before  # this checkout untouched


def test_try_tiny_refuses_a_folder_that_is_not_empty(tmp_path) -> None:
    (tmp_path / "keep.txt").write_text("x")
    r = run(tmp_path)
    assert r.returncode == 2
    assert r.stderr.strip() == f"try-tiny: error: {tmp_path} exists and is not empty"
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]
