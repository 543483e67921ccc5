"""Shared fixtures: deterministic torch, the repository root, the tiny params profile."""

from __future__ import annotations

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
def tiny_params_raw() -> dict:
    from ruamel.yaml import YAML

    return YAML(typ="safe", pure=True).load(TINY_PROFILE.read_text())
