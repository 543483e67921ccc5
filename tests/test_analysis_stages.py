"""Stages ``stability`` and ``recovery``: outputs, byte-identical reruns, one-line errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from stages.cli import app
from tests.test_sae_stage import setup_dir, with_value

STAB_KEYS = {
    "pwmcc",
    "hungarian_mcc",
    "shared_fraction",
    "random_pwmcc",
    "untrained_pwmcc",
    "pwmcc_ratio_to_random",
}
REC_KEYS = {
    "pure_latent_fraction",
    "key_frequency_coverage",
    "decoder_alignment",
    "random_decoder_alignment",
    "per_seed",
}


def invoke(tmp: Path, monkeypatch, *args: str):
    monkeypatch.chdir(tmp)
    return CliRunner().invoke(app, list(args))


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_params_raw) -> Path:
    """A folder with params, activations and the tiny profile's trained SAEs."""
    tmp = tmp_path_factory.mktemp("analysis")
    setup_dir(tmp, tiny_params_raw)
    mp = pytest.MonkeyPatch()
    try:
        result = invoke(tmp, mp, "saes")
    finally:
        mp.undo()
    assert result.exit_code == 0, result.output
    return tmp


def fresh(trained: Path, tmp_path: Path) -> Path:
    dest = tmp_path / "w"
    shutil.copytree(trained, dest, ignore=shutil.ignore_patterns("stability.json", "recovery.json"))
    return dest


def test_stages_write_every_config_byte_identically(
    trained, tmp_path, monkeypatch, tiny_params_raw
) -> None:
    work = fresh(trained, tmp_path)
    for stage in ("stability", "recovery"):
        result = invoke(work, monkeypatch, stage)
        assert result.exit_code == 0, result.output
    assert "Phase 1" in result.output and "random PWMCC" in result.output
    stab = (work / "metrics/stability/modular.json").read_bytes()
    rec = (work / "metrics/recovery.json").read_bytes()
    s, r = json.loads(stab), json.loads(rec)
    configs = set(tiny_params_raw["saes"]["modular"])
    seeds = tiny_params_raw["sae"]["seeds"]
    assert set(s) == set(r) == configs
    for name in configs:
        assert STAB_KEYS <= set(s[name])
        for key in ("pwmcc", "hungarian_mcc", "shared_fraction"):
            assert {"mean", "std", "ci"} <= set(s[name][key])
            assert len(s[name][key]["ci"]) == 2  # 3 seeds
        assert s[name]["seeds"] == seeds
        assert REC_KEYS <= set(r[name]) and set(r[name]["per_seed"]) == {str(x) for x in seeds}
        per = [r[name]["per_seed"][str(x)]["decoder_alignment"] for x in seeds]
        assert r[name]["decoder_alignment"]["mean"] == pytest.approx(sum(per) / len(per), rel=1e-5)
    # rerun: byte-identical
    for stage in ("stability", "recovery"):
        assert invoke(work, monkeypatch, stage).exit_code == 0
    assert (work / "metrics/stability/modular.json").read_bytes() == stab
    assert (work / "metrics/recovery.json").read_bytes() == rec


def one_line_error(result) -> str:
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    return lines[0]


@pytest.mark.parametrize("stage", ["stability", "recovery"])
def test_bad_params_and_inputs_write_nothing(
    trained, tmp_path, monkeypatch, tiny_params_raw, stage
) -> None:
    from ruamel.yaml import YAML

    work = fresh(trained, tmp_path)
    if stage == "recovery":  # needs stability.json
        assert invoke(work, monkeypatch, "stability").exit_code == 0
    before = sorted(p.name for p in (work / "metrics").iterdir())

    def write_params(raw: dict) -> None:
        with open(work / "params.yaml", "w") as fh:
            YAML(typ="safe", pure=True).dump(raw, fh)

    for key, value, reason in [
        ("analysis.shared_threshold", 1.5, "must lie in (0, 1]"),
        ("analysis.ranks", [], "must list at least one rank"),
        ("analysis.n_boot", 2, "must be >= 10"),
    ]:
        write_params(with_value(tiny_params_raw, key, value))
        line = one_line_error(invoke(work, monkeypatch, stage))
        assert f"{key} = {value!r}" in line and reason in line
    # checkpoints from other params: an error naming the mismatch
    write_params(with_value(tiny_params_raw, "sae.seeds", [42, 123, 457]))
    assert "checkpoints have seeds [42, 123, 456] but params saes." in one_line_error(
        invoke(work, monkeypatch, stage)
    )
    write_params(tiny_params_raw)
    shutil.rmtree(work / "models" / "saes" / "modular" / "batchtopk")
    assert "input not found" in one_line_error(invoke(work, monkeypatch, stage))
    assert sorted(p.name for p in (work / "metrics").iterdir()) == before
