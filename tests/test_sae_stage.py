"""The ``saes`` stage and its params: outputs, byte-identical reruns, one-line errors."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from husai.config import parse_params
from husai.errors import HusaiError, ParamError
from husai.planes import modular_planes
from stages._artifacts import Activations, load_sae, load_saes, save_activations
from stages.cli import app


def plane_fields(x: torch.Tensor, p: int, keys: list[int]) -> dict[str, torch.Tensor]:
    """The plane ground truth (husai.planes.modular_planes) of activations ``x`` [p*p, d]."""
    planes = modular_planes(x.reshape(p, p, -1), keys)
    return {
        "plane_basis": planes.basis,
        "plane_frequency": planes.frequency,
        "plane_variable": planes.variable,
        "plane_share": planes.share,
    }


def write_activations(path: Path, p: int = 11, d: int = 16, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(p * p, d, generator=g) @ torch.randn(d, d, generator=g) + 1.0
    grid = torch.arange(p * p)
    save_activations(
        path,
        Activations(
            x=x,
            a=grid // p,
            b=grid % p,
            gt_directions=torch.eye(d)[:2],
            gt_frequency=torch.tensor([1, 1]),
            gt_u=torch.tensor([1, 2]),
            gt_v=torch.tensor([0, 0]),
            **plane_fields(x, p, [1]),
            gt_energy_share=torch.tensor([0.5, 0.5], dtype=torch.float64),
            p=p,
            hook="blocks.0.hook_resid_post",
            position=-1,
            key_frequencies=[1],
        ),
    )
    return x


def setup_dir(tmp: Path, raw: dict) -> None:
    from ruamel.yaml import YAML

    yaml = YAML(typ="safe", pure=True)
    with open(tmp / "params.yaml", "w") as fh:
        yaml.dump(raw, fh)
    write_activations(tmp / "data" / "domains" / "modular.safetensors")


def with_value(raw: dict, dotted: str, value: object) -> dict:
    raw = copy.deepcopy(raw)
    *path, last = dotted.split(".")
    node = raw
    for key in path:
        node = node.setdefault(key, {})
    node[last] = value
    return raw


def run_saes(tmp: Path, monkeypatch) -> object:
    monkeypatch.chdir(tmp)
    return CliRunner().invoke(app, ["saes"])


def outputs(tmp: Path) -> dict[str, bytes]:
    files = [
        *sorted((tmp / "models" / "saes" / "modular").rglob("*")),
        tmp / "metrics" / "saes" / "modular.json",
    ]
    return {str(f.relative_to(tmp)): f.read_bytes() for f in files if f.is_file()}


def test_stage_writes_saelens_checkpoints_and_metrics_byte_identically(
    tiny_params_raw, tmp_path, monkeypatch
) -> None:
    setup_dir(tmp_path, tiny_params_raw)
    result = run_saes(tmp_path, monkeypatch)
    assert result.exit_code == 0, result.output
    first = outputs(tmp_path)
    configs = list(tiny_params_raw["saes"]["modular"])
    seeds = tiny_params_raw["sae"]["seeds"]
    for name in configs:
        for seed in seeds:
            assert f"models/saes/modular/{name}/seed{seed}/cfg.json" in first
            assert f"models/saes/modular/{name}/seed{seed}/sae_weights.safetensors" in first
    metrics = json.loads(first["metrics/saes/modular.json"])
    assert set(metrics["saes"]) == {f"{n}/seed{s}" for n in configs for s in seeds}
    entry = metrics["saes"][f"topk/seed{seeds[0]}"]
    assert entry["architecture"] == "topk" and entry["seed"] == seeds[0]
    assert entry["hyperparameters"]["k"] == tiny_params_raw["sae"]["k"]
    assert set(entry["metrics"]) == {
        "explained_variance",
        "l0",
        "frac_alive",
        "mse",
        "cossim",
        "l2_ratio",
    }
    assert entry["metrics"]["l0"] == tiny_params_raw["sae"]["k"]
    epochs = tiny_params_raw["sae"]["epochs"]  # tiny trains a fixed schedule (tol 0)
    assert entry["training"]["epochs_run"] == epochs and entry["training"]["converged"] is None
    # the checkpoints load, and reproduce the metrics
    sae = load_saes(tmp_path / "models" / "saes" / "modular" / "topk", d_in=16)
    assert sae.seeds == tuple(seeds)
    import husai.sae as hs
    from stages._artifacts import load_activations

    x = load_activations(tmp_path / "data" / "domains" / "modular.safetensors").x
    ev = hs.evaluate(sae, x)[0]["explained_variance"]
    assert ev == pytest.approx(entry["metrics"]["explained_variance"], rel=1e-5)
    # rerun: byte-identical
    result = run_saes(tmp_path, monkeypatch)
    assert result.exit_code == 0, result.output
    assert outputs(tmp_path) == first


BAD = [
    ("saes.modular.topk.k", 1000, "must be <= d_sae"),
    ("saes.modular.topk.k", 0, "must be >= 1"),
    ("saes.modular.topk.lr", -0.001, "must be > 0"),
    ("saes.modular.topk.lr", 0, "must be > 0"),
    ("saes.modular.standard.l1_coefficient", 0, "must be > 0"),
    ("saes.modular.standard.l1_coefficient", -1.0, "must be > 0"),
    ("saes.modular.topk.architecture", "topkk", "must be one of"),
    ("sae.lr", -1.0, "must be > 0"),
    ("saes.modular.topk.kk", 3, "unknown key"),
]


@pytest.mark.parametrize(("key", "value", "reason"), BAD)
def test_bad_params_give_one_line_errors_and_write_nothing(
    tiny_params_raw, tmp_path, monkeypatch, key, value, reason
) -> None:
    setup_dir(tmp_path, with_value(tiny_params_raw, key, value))
    result = run_saes(tmp_path, monkeypatch)
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    shown = (
        float(value) if isinstance(value, int) and key.endswith(("lr", "coefficient")) else value
    )
    assert f"{key} = {shown!r}" in lines[0] and reason in lines[0]
    assert not (tmp_path / "models").exists() and not (tmp_path / "metrics").exists()


def test_missing_activations_write_nothing(tiny_params_raw, tmp_path, monkeypatch) -> None:
    setup_dir(tmp_path, tiny_params_raw)
    (tmp_path / "data" / "domains" / "modular.safetensors").unlink()
    result = run_saes(tmp_path, monkeypatch)
    assert result.exit_code == 2 and "input not found" in result.output
    assert not (tmp_path / "models").exists()


def test_activation_width_must_match_the_checkpoint(tiny_params_raw, tmp_path, monkeypatch) -> None:
    setup_dir(tmp_path, tiny_params_raw)
    assert run_saes(tmp_path, monkeypatch).exit_code == 0
    folder = tmp_path / "models" / "saes" / "modular" / "topk" / "seed42"
    with pytest.raises(HusaiError) as info:
        load_sae(folder, d_in=32)
    assert str(info.value) == (
        f"{folder}: checkpoint has d_in = 16 but the activations have width 32"
    )
    with pytest.raises(HusaiError, match="activations have width 32 but the SAE has d_in = 16"):
        import husai.sae as hs

        hs.evaluate(load_sae(folder), torch.zeros(4, 32))


def test_sae_sections_resolve_and_name_their_keys(tiny_params_raw, repo_root) -> None:
    from ruamel.yaml import YAML

    tiny = parse_params(tiny_params_raw).sae_configs()
    assert set(tiny) == set(tiny_params_raw["saes"]["modular"])
    assert tiny["standard"].architecture == "standard" and tiny["standard"].d_sae == 64
    default = parse_params(
        YAML(typ="safe", pure=True).load((repo_root / "params.yaml").read_text())
    )
    configs = default.sae_configs()
    assert {c.architecture for c in configs.values()} >= {"topk", "batchtopk", "standard"}
    for c in configs.values():
        # trained to the explained-variance criterion, lr from benchmarks/lr_search.py
        assert (c.d_sae, c.lr, c.batch_size, c.epochs) == (1024, 1e-3, 256, 200)
        assert (c.convergence, c.convergence_tol, c.convergence_window) == (
            "explained_variance",
            1e-4,
            10,
        )
        assert c.seeds == (42, 123, 456, 789, 1011)
        if c.architecture != "standard":
            assert c.k == 32
    # an inherited bad default names the sae section, an override names its config
    raw = with_value(tiny_params_raw, "sae.k", 65)
    with pytest.raises(ParamError, match=r"^sae\.k = 65: must be <= d_sae = 64$"):
        parse_params(raw)
    raw = with_value(tiny_params_raw, "saes.modular.topk.d_sae", 3)
    with pytest.raises(ParamError, match=r"^sae\.k = 4: must be <= d_sae = 3$"):
        parse_params(raw)
    raw = with_value(tiny_params_raw, "saes.modular.bad/name", {"k": 2})
    with pytest.raises(
        ParamError, match=r"^saes\.modular\.bad/name = 'bad/name': configuration names"
    ):
        parse_params(raw)
    raw = with_value(tiny_params_raw, "saes.synthetc", {"topk": {"k": 2}})
    with pytest.raises(ParamError, match=r"^saes\.synthetc = .*: is not a domain \(known: modular"):
        parse_params(raw)
