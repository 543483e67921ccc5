"""Stages dynamics, geometry and predictors on a planted dataset: real answers,
byte-identical reruns, one-line errors that write nothing."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import torch
from ruamel.yaml import YAML
from typer.testing import CliRunner

from stages._artifacts import Activations, save_activations
from stages.cli import app
from tests.test_sae_stage import plane_fields

P, D, GROUPS, GROUP_DIM, PER_GROUP = 23, 24, 6, 4, 6


def planted_activations(path: Path) -> None:
    """p*p rows in R^24. The ground truth: 6 "frequencies", each owning a 4-dim coordinate
    block; 6 features (random unit directions) live in each block, 36 in all. Each row is
    2 features with magnitudes in [1, 2], plus a little noise."""
    g = torch.Generator().manual_seed(0)
    feats = []
    for k in range(GROUPS):
        f = torch.zeros(PER_GROUP, D)
        f[:, k * GROUP_DIM : (k + 1) * GROUP_DIM] = torch.randn(PER_GROUP, GROUP_DIM, generator=g)
        feats.append(f / f.norm(dim=1, keepdim=True))
    feats = torch.cat(feats)
    n = P * P
    pick = torch.stack([torch.randperm(len(feats), generator=g)[:2] for _ in range(n)])
    mags = 1 + torch.rand(n, 2, generator=g)
    x = (mags[:, :, None] * feats[pick]).sum(1) + 0.01 * torch.randn(n, D, generator=g)
    grid = torch.arange(n)
    save_activations(
        path,
        Activations(
            x=x,
            a=grid // P,
            b=grid % P,
            gt_directions=torch.eye(D)[: GROUPS * GROUP_DIM],
            gt_frequency=torch.arange(1, GROUPS + 1).repeat_interleave(GROUP_DIM),
            gt_u=torch.zeros(D, dtype=torch.int64),
            gt_v=torch.zeros(D, dtype=torch.int64),
            **plane_fields(x, P, list(range(1, GROUPS + 1))),
            gt_energy_share=torch.full((D,), 1 / D, dtype=torch.float64),
            p=P,
            hook="blocks.0.hook_resid_post",
            position=-1,
            key_frequencies=list(range(1, GROUPS + 1)),
        ),
    )


def params(tiny: dict) -> dict:
    raw = copy.deepcopy(tiny)
    raw["sae"] |= {
        "d_sae": 48,
        "k": 2,
        "lr": 0.01,
        "batch_size": 64,
        "epochs": 12,
        "seeds": [42, 123, 456],
    }
    raw["saes"] = {
        "modular": {
            "topk": {"architecture": "topk"},
            "standard": {"architecture": "standard", "l1_coefficient": 1.0},
        }
    }
    raw["dynamics"] = {"configs": ["topk", "standard"], "checkpoint_base": 2, "threshold": 0.7}
    raw["geometry"] = {"ranks": [4, 8, 16], "group_min_share": 0.5, "null_rounds": 10, "seed": 0}
    raw["predictors"] = {"threshold": 0.7, "shared_with": "majority"}
    return raw


def write_params(tmp: Path, raw: dict) -> None:
    with open(tmp / "params.yaml", "w") as fh:
        YAML(typ="safe", pure=True).dump(raw, fh)


OUTPUTS = {
    "dynamics": ["metrics/dynamics.json", "metrics/curves/dynamics.csv"],
    "geometry": [
        "metrics/geometry.json",
        "metrics/curves/geometry_spectrum.csv",
        "metrics/curves/geometry_overlap.csv",
    ],
    "predictors": ["metrics/predictors.json"],
}


def invoke(tmp: Path, monkeypatch, name: str):
    monkeypatch.chdir(tmp)
    return CliRunner().invoke(app, [name])


@pytest.fixture(scope="module")
def workdir(tmp_path_factory, tiny_params_raw) -> Path:
    tmp = tmp_path_factory.mktemp("geometry")
    write_params(tmp, params(tiny_params_raw))
    planted_activations(tmp / "data" / "domains" / "modular.safetensors")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(tmp)
        for name in ("saes", "dynamics", "geometry", "predictors"):
            result = CliRunner().invoke(app, [name])
            assert result.exit_code == 0, result.output
    return tmp


def read(tmp: Path, rel: str) -> dict:
    return json.loads((tmp / rel).read_text())


def test_dynamics_stability_rises_above_random(workdir: Path) -> None:
    dyn = read(workdir, "metrics/dynamics.json")
    for name in ("topk", "standard"):
        c = dyn["configs"][name]
        steps = c["checkpoint_steps"]
        assert steps[0] == 0 and steps[-1] == c["total_steps"] == 9 * 12  # 529 rows / 64
        assert steps == sorted(set(steps)) and steps[1:4] == [1, 2, 4]
        first, last = c["checkpoints"][0], c["checkpoints"][-1]
        iso = c["random"]["isotropic"]
        for metric in ("pwmcc", "hungarian_mcc"):
            # at initialisation the SAEs are as (un)related as random dictionaries ...
            assert first["stability"][metric]["mean"] < iso[metric]["mean"] + 0.1
            # ... and by the end clearly above them, confidence interval included
            assert last["stability"][metric]["ci"][0] > iso[metric]["mean"] + 0.1
            assert last["ratio_to_isotropic"][metric] > 1.2
        assert (
            last["stability"]["shared_fraction"]["mean"]
            > first["stability"]["shared_fraction"]["mean"]
        )
        assert last["explained_variance"]["mean"] > 0.5 > first["explained_variance"]["mean"]
        assert last["cos_to_final"]["mean"] == pytest.approx(1.0)
        assert last["settled_fraction"] == 1.0 and first["settled_fraction"] <= 1.0
        fractions = [ck["settled_fraction"] for ck in c["checkpoints"]]
        assert fractions == sorted(fractions)
        assert last["match_agreement_live"] == 1.0
        settle = c["settle"]
        assert settle["all"]["n_latents"] == 3 * 48
        assert settle["live"]["n_latents"] == round(3 * 48 * c["final_live"])
        assert (
            settle["shared"]["n_latents"] + settle["not_shared_live"]["n_latents"]
            <= settle["live"]["n_latents"]
        )
        assert settle["all"]["median"] in steps
        # one other seed at a time settles no later than all of them together
        assert c["settle_per_pair"]["all"]["n_latents"] == 3 * 48 * 2
        assert c["settle_per_pair"]["all"]["mean_log2_step"] <= settle["all"]["mean_log2_step"]
    rows = (workdir / "metrics/curves/dynamics.csv").read_text().splitlines()
    assert rows[0].startswith("step,topk_pwmcc,") and len(rows) == 1 + len(steps)


def test_geometry_finds_the_planted_groups(workdir: Path) -> None:
    geo = read(workdir, "metrics/geometry.json")
    assert geo["ground_truth"]["subspace_dims"] == {str(k): GROUP_DIM for k in range(1, 7)}
    assert geo["ground_truth"]["variance_share_in_span"] == pytest.approx(1.0, abs=1e-3)
    assert 6 < geo["activations"]["effective_rank"] <= D
    for name in ("topk", "standard"):
        c = geo["configs"][name]
        groups = c["groups"]
        assert groups["fraction_grouped"]["mean"] > 0.5  # the rest: dead or mixed atoms
        # the planted blocks are conserved groups, far above random subspaces and above
        # arbitrary groups of the same sizes (the SAEs are trained for seconds only)
        overlap = groups["all"]["group_overlap"]["mean"]
        assert overlap > groups["all"]["random_overlap"] + 0.3
        assert overlap > groups["all"]["null_overlap"]["mean"] + 0.3
        assert groups["all"]["atom_in_span"]["mean"] > 0.7
        assert groups["all"]["group_overlap"]["ci"] is not None  # 3 seeds, every pair
        assert c["gram"]["summary"]["numerical_rank"]["mean"] == D
        assert 0 <= c["gram"]["seed_distance"]["mean"] < c["gram"]["distance_to_isotropic"]["mean"]
        assert set(c["subspace"]["overlap"]) == {"4", "8", "16"}
    spectrum = (workdir / "metrics/curves/geometry_spectrum.csv").read_text().splitlines()
    assert len(spectrum) == 1 + D and spectrum[0].startswith("index,activation_variance_share,")


def test_predictors_report_aucs_per_config(workdir: Path) -> None:
    pred = read(workdir, "metrics/predictors.json")
    assert pred["rule"] == {"threshold": 0.7, "shared_with": "majority", "absolute": True}
    for name in ("topk", "standard"):
        c = pred["configs"][name]
        assert c["min_other_seeds"] == 2 and c["n_latents"] == 3 * 48
        assert sum(c["shared_count_histogram"].values()) == 3 * 48
        assert 0 < c["n_shared"] < c["n_live"] <= 3 * 48
        # decoder rows are saved with unit norm: a constant predictor, AUC one half
        assert c["auc"]["decoder_norm"]["pooled"] == 0.5
        assert c["n_shared_with_any"] >= c["n_shared"]  # majority of 2 others = both
        assert all(0 <= v <= 1 for v in c["auc_shared_with_any"].values())
        for k, v in c["auc"].items():
            assert v["pooled"] is not None and 0 <= v["pooled"] <= 1, k
            assert sum(b["n"] for b in c["shared_rate_by_decile"][k]) == c["n_live"]


def test_reruns_are_byte_identical(workdir: Path, monkeypatch) -> None:
    for name, files in OUTPUTS.items():
        before = {f: (workdir / f).read_bytes() for f in files}
        result = invoke(workdir, monkeypatch, name)
        assert result.exit_code == 0, result.output
        assert {f: (workdir / f).read_bytes() for f in files} == before, name


BAD = [
    ("dynamics", "dynamics.checkpoint_base", 1, "must be an integer >= 2"),
    ("dynamics", "dynamics.configs", ["topk", "nope"], "is not a configuration of saes"),
    ("dynamics", "dynamics.seeds", [42], "at least 2 seeds"),
    ("geometry", "geometry.group_min_share", 0, "must lie in (0, 1]"),
    ("geometry", "geometry.ranks", [0, 4], "must list ranks >= 1"),
    ("geometry", "geometry.speed", 3, "unknown key"),
    ("predictors", "predictors.shared_with", "most", "must be one of"),
    ("predictors", "predictors.threshold", 1.5, "must lie in (0, 1]"),
]


@pytest.mark.parametrize(("stage_name", "key", "value", "reason"), BAD)
def test_bad_params_give_one_line_errors_and_write_nothing(
    tiny_params_raw, tmp_path, monkeypatch, stage_name, key, value, reason
) -> None:
    raw = params(tiny_params_raw)
    section, name = key.split(".")
    raw[section][name] = value
    write_params(tmp_path, raw)
    result = invoke(tmp_path, monkeypatch, stage_name)
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert key in lines[0] and reason in lines[0]
    assert not (tmp_path / "metrics").exists()


def test_missing_or_stale_checkpoints_are_one_line_errors(
    tiny_params_raw, tmp_path, monkeypatch, workdir
) -> None:
    raw = params(tiny_params_raw)
    write_params(tmp_path, raw)
    (tmp_path / "data" / "domains").mkdir(parents=True)
    (tmp_path / "data" / "domains" / "modular.safetensors").write_bytes(
        (workdir / "data" / "domains" / "modular.safetensors").read_bytes()
    )
    result = invoke(tmp_path, monkeypatch, "geometry")
    assert result.exit_code == 2 and "input not found" in result.output
    raw["sae"]["seeds"] = [42, 123, 7]  # params no longer match the checkpoints
    write_params(tmp_path, raw)
    import shutil

    shutil.copytree(workdir / "models", tmp_path / "models")
    result = invoke(tmp_path, monkeypatch, "predictors")
    assert result.exit_code == 2 and "checkpoints for seeds" in result.output
    assert len([ln for ln in result.output.splitlines() if ln.strip()]) == 1
    assert not (tmp_path / "metrics").exists()
