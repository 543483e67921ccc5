"""Shared fixtures: deterministic torch, the repository root, the tiny params profile."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from husai.determinism import configure

ROOT = Path(__file__).resolve().parents[1]
TINY_PROFILE = ROOT / "tests" / "profiles" / "tiny.yaml"


@pytest.fixture(autouse=True, scope="session")
def _deterministic_torch() -> None:
    configure("cpu", threads=2)


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def tiny_pipeline(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny profile's pipeline, run once from scratch for the whole session in a clean
    copy of this repository; every stage records the project functions it executes into
    ``<repo>/../traces`` (tests/tracehook). Tests that change it restore it; a test that
    needs a copy of its own takes one with ``shutil.copytree(..., symlinks=True)``."""
    from tests.pipeline import make_clone, run, traced_env

    repo = make_clone(ROOT, tmp_path_factory.mktemp("tiny") / "repo", TINY_PROFILE)
    run(repo, "dvc", "repro", env=traced_env(repo, repo.parent / "traces"))
    return repo


@pytest.fixture(scope="session")
def tiny_params_raw() -> dict:
    from ruamel.yaml import YAML

    return YAML(typ="safe", pure=True).load(TINY_PROFILE.read_text())


def slurm_local(*args: str) -> subprocess.CompletedProcess[str]:
    """Run scripts/slurm-local (up, down, status)."""
    script = ROOT / "scripts" / "slurm-local"
    return subprocess.run([str(script), *args], capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="session")
def slurm():
    """A one-node SLURM on this machine (scripts/slurm-local), up for the session and taken
    down at its end unless it was up before. Needs root and apt-get (or SLURM installed),
    as the container check needs them for buildah; elsewhere the test is skipped, saying why."""
    if os.geteuid() != 0:
        pytest.skip("a local SLURM needs root (it installs packages and starts daemons)")
    if not shutil.which("slurmctld") and not shutil.which("apt-get"):
        pytest.skip("SLURM is not installed and there is no apt-get to install it")
    was_up = slurm_local("status").stdout.strip() != "down"
    up = slurm_local("up")
    assert up.returncode == 0, up.stderr
    yield
    if not was_up:
        down = slurm_local("down")
        assert down.returncode == 0, down.stderr
        assert slurm_local("status").stdout.strip() == "down"
