"""End to end: the whole DVC pipeline on the tiny profile, twice from scratch."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from tests.conftest import TINY_PROFILE
from tests.pipeline import make_clone, run, wipe_outputs


@pytest.fixture(scope="module")
def tiny_repo(tmp_path_factory: pytest.TempPathFactory, repo_root: Path) -> Path:
    repo = make_clone(repo_root, tmp_path_factory.mktemp("tiny") / "repo", TINY_PROFILE)
    run(repo, "dvc", "repro")
    return repo


def test_repro_runs_every_stage(tiny_repo: Path) -> None:
    yaml = YAML(typ="safe", pure=True)
    stages = set(yaml.load((tiny_repo / "dvc.yaml").read_text())["stages"])
    locked = set(yaml.load((tiny_repo / "dvc.lock").read_text())["stages"])
    assert stages <= {name.split("@")[0] for name in locked}
    status = run(tiny_repo, "dvc", "status", "--json")
    assert json.loads(status.stdout or "{}") == {}


def test_tiny_transformer_groks_and_shows_fourier_structure(tiny_repo: Path) -> None:
    tf = json.loads((tiny_repo / "metrics/transformer.json").read_text())
    fourier = json.loads((tiny_repo / "metrics/fourier.json").read_text())
    assert tf["test_accuracy"] >= 0.99 and tf["grokking_epoch"] is not None
    assert tf["fast_forward_max_abs_error"] < 1e-3
    assert 1 <= len(fourier["key_frequencies"]) <= 6
    assert (fourier["activation_key_frequency_variance_share"]
            > fourier["untrained_activation_key_frequency_variance_share"] + 0.2)


def test_tiny_dynamics_rises_above_random_and_analyses_run(tiny_repo: Path) -> None:
    dyn = json.loads((tiny_repo / "metrics/dynamics.json").read_text())
    for name, c in dyn["configs"].items():
        first, last = c["checkpoints"][0], c["checkpoints"][-1]
        iso = c["random"]["isotropic"]["pwmcc"]["mean"]
        assert first["step"] == 0 and last["step"] == c["total_steps"]
        assert first["stability"]["pwmcc"]["mean"] < iso + 0.05, name  # untrained ~ random
        assert last["stability"]["pwmcc"]["ci_low"] > iso + 0.1, name
        assert last["stability"]["shared_fraction"]["mean"] > 0.05, name
    geo = json.loads((tiny_repo / "metrics/geometry.json").read_text())
    pred = json.loads((tiny_repo / "metrics/predictors.json").read_text())
    assert set(geo["configs"]) == set(pred["configs"]) == {"topk", "batchtopk", "standard"}
    for c in pred["configs"].values():
        assert c["auc"]["decoder_norm"]["pooled"] in (0.5, None)


def test_second_run_from_scratch_gives_the_same_lock(tiny_repo: Path) -> None:
    first = (tiny_repo / "dvc.lock").read_text()
    wipe_outputs(tiny_repo)
    run(tiny_repo, "dvc", "repro")
    assert (tiny_repo / "dvc.lock").read_text() == first
