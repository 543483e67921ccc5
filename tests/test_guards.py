"""Bad inputs and diverging training stop a stage with one line, exit 2, nothing written."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from husai.errors import DivergedError, HusaiError
from husai.sae import SAEConfig, activation_scale, train_saes
from husai.sae.train import DIVERGED_EXPLAINED_VARIANCE, check_trained
from stages._artifacts import (
    ModelSpec,
    load_activations,
    load_sae,
    load_task,
    load_transformer,
    save_task,
    save_transformer,
)
from stages._inputs import SKIP_ENV, dir_md5, file_md5
from stages.cli import app
from tests.test_sae_stage import setup_dir, with_value, write_activations


def one_line_error(result) -> str:
    """The error line of a failed stage: exit 2, no traceback, one error line, the last
    line printed (progress lines may come before it)."""
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("husai ") and ": error: " in line]
    assert errors == lines[-1:] and "Traceback" not in result.output, result.output
    return lines[-1]


def invoke(tmp: Path, monkeypatch, *args: str):
    monkeypatch.chdir(tmp)
    return CliRunner().invoke(app, list(args))


def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def garble(path: Path) -> None:
    path.write_bytes(b"\x00\x01not a safetensors file at all" * 4)


# ----------------------------------------------------------------------------- divergence


def small_config(**overrides) -> SAEConfig:
    base = dict(
        architecture="topk",
        d_in=16,
        d_sae=32,
        k=4,
        batch_size=32,
        epochs=2,
        dead_feature_window=5,
        normalize_activations="expected_average_only_in",
    )
    return SAEConfig(**{**base, **overrides})


def test_nan_loss_stops_training_naming_seed_and_step() -> None:
    x = torch.randn(200, 16, generator=torch.Generator().manual_seed(0)) + 1.0
    with pytest.raises(DivergedError) as info:
        train_saes(small_config(lr=1e30), x, (42, 123), name="topk")
    message = str(info.value)
    assert message.startswith("configuration 'topk': topk SAE (d_sae 32, lr 1e+30) seed ")
    assert info.value.seed in (42, 123) and 1 <= info.value.step <= 14
    assert f"at step {info.value.step} of 14:" in message and "nothing was written" in message


def test_explained_variance_floor_and_non_finite_weights_are_divergence() -> None:
    x = torch.randn(200, 16, generator=torch.Generator().manual_seed(1)) + 1.0
    sae, history = train_saes(small_config(lr=1e-3), x, (1, 2))
    assert all(m["explained_variance"] > DIVERGED_EXPLAINED_VARIANCE for m in history.final_metrics)
    check_trained(sae, history.final_metrics, 14, 14, "ok")  # a sane SAE passes
    bad = [dict(m) for m in history.final_metrics]
    bad[1]["explained_variance"] = DIVERGED_EXPLAINED_VARIANCE - 0.5
    with pytest.raises(
        DivergedError,
        match=r"seed 2 diverged at step 14 of 14: explained "
        r"variance -1\.5 is below the floor -1",
    ):
        check_trained(sae, bad, 14, 14, "topk SAE")
    sae.params["W_dec"][0, 3, 2] = float("nan")
    with pytest.raises(DivergedError, match=r"seed 1 .*W_dec holds NaN or inf"):
        check_trained(sae, history.final_metrics, 14, 14, "topk SAE")


def test_nan_activations_are_named_as_nan() -> None:
    x = torch.ones(10, 4)
    x[3, 1] = float("nan")
    with pytest.raises(HusaiError, match=r"NaN or inf values \(1 of 10 rows\)"):
        activation_scale(x, small_config(d_in=4, d_sae=8, k=2))


@pytest.mark.parametrize("lr", [1e30, 10.0])
def test_saes_stage_refuses_a_diverging_learning_rate(
    tiny_params_raw, tmp_path, monkeypatch, lr
) -> None:
    setup_dir(tmp_path, with_value(tiny_params_raw, "sae.lr", lr))
    line = one_line_error(invoke(tmp_path, monkeypatch, "saes"))
    assert re.search(
        r"configuration '(topk|batchtopk|standard)': .* seed \d+ diverged at step "
        r"\d+ of \d+: ",
        line,
    ), line
    assert not (tmp_path / "models").exists() and not (tmp_path / "metrics").exists()


# ----------------------------------------------------------------------------- corrupt inputs


def saved_transformer(path: Path) -> None:
    from husai.transformer import build_model, model_config

    spec = ModelSpec(p=5, d_model=8, n_heads=2, d_head=4, d_mlp=16, seed=0)
    model = build_model(
        model_config(
            **{k: getattr(spec, k) for k in ("p", "d_model", "n_heads", "d_head", "d_mlp", "seed")}
        )
    )
    save_transformer(path, spec, model.state_dict())


def saved_task(path: Path) -> None:
    from husai.task import make_task

    save_task(path, make_task(5, 0.5, 0), 0.5, 0)


LOADERS = {
    "task": (saved_task, lambda p: p, load_task),
    "transformer": (saved_transformer, lambda p: p / "model.safetensors", load_transformer),
    "activations": (lambda p: write_activations(p), lambda p: p, load_activations),
}


@pytest.mark.parametrize("kind", sorted(LOADERS))
@pytest.mark.parametrize("damage", [truncate, garble])
def test_corrupt_files_give_an_error_naming_the_file(tmp_path, monkeypatch, kind, damage) -> None:
    monkeypatch.chdir(tmp_path)
    make, file_of, load = LOADERS[kind]
    path = Path(f"{kind}.out")
    make(path)
    load(path)  # intact: loads
    damage(file_of(path))
    with pytest.raises(HusaiError) as info:
        load(path)
    message = str(info.value)
    assert str(file_of(path)) in message and "dvc checkout" in message and "\n" not in message


def test_non_finite_activations_are_refused_when_loaded(tmp_path, monkeypatch) -> None:
    from safetensors.torch import load_file

    monkeypatch.chdir(tmp_path)
    write_activations(Path("a.safetensors"))
    from husai.serialize import from_bytes, to_bytes

    tensors, meta = from_bytes(Path("a.safetensors").read_bytes())
    tensors["x"][5, 0] = float("nan")
    Path("a.safetensors").write_bytes(to_bytes(tensors, meta))
    assert torch.isnan(load_file("a.safetensors")["x"]).any()
    with pytest.raises(HusaiError, match=r"tensor x holds 1 NaN or inf values"):
        load_activations(Path("a.safetensors"))


@pytest.fixture
def trained(tiny_params_raw, tmp_path, monkeypatch) -> Path:
    raw = with_value(tiny_params_raw, "saes.modular", {"topk": {"architecture": "topk"}})
    setup_dir(tmp_path, raw)
    result = invoke(tmp_path, monkeypatch, "saes")
    assert result.exit_code == 0, result.output
    return tmp_path


def test_downstream_stage_refuses_a_truncated_or_nan_checkpoint(trained, monkeypatch) -> None:
    weights = trained / "models/saes/modular/topk/seed42/sae_weights.safetensors"
    original = weights.read_bytes()
    truncate(weights)
    line = one_line_error(invoke(trained, monkeypatch, "stability"))
    assert (
        "models/saes/modular/topk/seed42/sae_weights.safetensors is not a readable safetensors"
        in line
    )
    assert not (trained / "metrics/stability/modular.json").exists()
    from husai.serialize import from_bytes, to_bytes

    tensors, meta = from_bytes(original)
    tensors["W_dec"][0, 0] = float("inf")
    weights.write_bytes(to_bytes(tensors, meta))
    line = one_line_error(invoke(trained, monkeypatch, "stability"))
    assert "tensor W_dec holds 1 NaN or inf values" in line
    with pytest.raises(HusaiError, match="NaN or inf"):
        load_sae(weights.parent)


def test_changed_input_outside_dvc_is_an_error_unless_overridden(trained, monkeypatch) -> None:
    """A bit flipped in a checkpoint after dvc.lock recorded it: by hand, the stage refuses
    it (inside `dvc repro` DVC itself sees the change); HUSAI_SKIP_LOCK_CHECK=1 overrides."""
    lock = {
        "schema": "2.0",
        "stages": {
            "saes@modular": {
                "cmd": "husai saes --domain modular",
                "outs": [
                    {
                        "path": "models/saes/modular",
                        "hash": "md5",
                        "md5": dir_md5(trained / "models/saes/modular"),
                    }
                ],
            },
            "activations": {
                "cmd": "husai activations",
                "outs": [
                    {
                        "path": "data/domains/modular.safetensors",
                        "hash": "md5",
                        "md5": file_md5(trained / "data/domains/modular.safetensors"),
                    }
                ],
            },
        },
    }
    (trained / "dvc.lock").write_text(json.dumps(lock))  # JSON is YAML
    monkeypatch.delenv("DVC_STAGE", raising=False)
    monkeypatch.delenv(SKIP_ENV, raising=False)
    assert invoke(trained, monkeypatch, "stability").exit_code == 0  # untouched: fine
    weights = trained / "models/saes/modular/topk/seed123/sae_weights.safetensors"
    data = bytearray(weights.read_bytes())
    data[-7] ^= 0x01
    weights.write_bytes(bytes(data))
    (trained / "metrics/stability/modular.json").unlink()
    line = one_line_error(invoke(trained, monkeypatch, "stability"))
    assert (
        "models/saes/modular is not the version dvc.lock records for it (stage saes@modular)"
        in line
    )
    assert "dvc checkout models/saes/modular" in line and f"{SKIP_ENV}=1" in line
    assert not (trained / "metrics/stability/modular.json").exists()
    monkeypatch.setenv(SKIP_ENV, "1")
    assert invoke(trained, monkeypatch, "stability").exit_code == 0
    monkeypatch.delenv(SKIP_ENV)
    monkeypatch.setenv("DVC_STAGE", "stability")  # as inside dvc repro
    assert invoke(trained, monkeypatch, "stability").exit_code == 0


# ----------------------------------------------------------------------------- params


@pytest.mark.parametrize(
    ("raw_of", "expected"),
    [
        (lambda raw: None, "params.yaml is empty: it must hold the pipeline's params"),
        (
            lambda raw: with_value(raw, "sae.seeds", [42]),
            "sae.seeds = [42]: must list at least 2 seeds (stability compares seeds)",
        ),
        (
            lambda raw: with_value(raw, "saes.modular.topk.seeds", [7]),
            "saes.modular.topk.seeds = [7]: must list at least 2 seeds",
        ),
        (
            lambda raw: {**raw, "transformr": {"epochs": 3}},
            "transformr = {'epochs': 3}: unknown key",
        ),
    ],
)
def test_unusable_params_fail_in_the_first_stage(
    tiny_params_raw, tmp_path, monkeypatch, raw_of, expected
) -> None:
    """A config no later stage could use fails at once, in `data`, the pipeline's first stage."""
    from ruamel.yaml import YAML

    raw = raw_of(tiny_params_raw)
    with open(tmp_path / "params.yaml", "w") as fh:
        if raw is not None:
            YAML(typ="safe", pure=True).dump(raw, fh)
    line = one_line_error(invoke(tmp_path, monkeypatch, "data"))
    assert expected in line, line
    assert not (tmp_path / "data").exists()
    line = one_line_error(invoke(tmp_path, monkeypatch, "check-params"))  # make reproduce
    assert line.startswith("husai check-params: error: ") and expected in line, line


def test_sweep_and_dynamics_refuse_diverging_training(
    tiny_params_raw, tmp_path, monkeypatch
) -> None:
    raw = with_value(tiny_params_raw, "sweep.lr", [1e30])
    setup_dir(tmp_path, raw)
    line = one_line_error(invoke(tmp_path, monkeypatch, "sweep", "--arch", "topk", "--d-sae", "8"))
    assert "configuration 'topk-d8-k2': topk SAE (d_sae 8, lr 1e+30) seed 42 diverged" in line
    assert not (tmp_path / "metrics").exists()
    raw = with_value(tiny_params_raw, "saes.modular.topk.lr", 1e30)
    setup_dir(tmp_path, raw)
    line = one_line_error(invoke(tmp_path, monkeypatch, "dynamics"))
    assert "configuration 'topk': topk SAE (d_sae 64, lr 1e+30) seed 42 diverged" in line
    assert not (tmp_path / "metrics").exists()


def test_nan_activations_stop_the_saes_stage_by_name(
    tiny_params_raw, tmp_path, monkeypatch
) -> None:
    """With `normalize_activations: none` nothing would divide by the mean norm: the loader
    itself names the NaN (no 'mean norm is 0', no NaN checkpoints)."""
    from husai.serialize import from_bytes, to_bytes

    setup_dir(tmp_path, with_value(tiny_params_raw, "sae.normalize_activations", "none"))
    path = tmp_path / "data" / "domains" / "modular.safetensors"
    tensors, meta = from_bytes(path.read_bytes())
    tensors["x"][7] = float("nan")
    path.write_bytes(to_bytes(tensors, meta))
    line = one_line_error(invoke(tmp_path, monkeypatch, "saes"))
    assert "data/domains/modular.safetensors: tensor x holds 16 NaN or inf values" in line, line
    assert not (tmp_path / "models").exists()
