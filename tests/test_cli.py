"""Stage commands: one-line errors for bad input and no partial outputs."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
from ruamel.yaml import YAML
from typer.testing import CliRunner

from stages import _common
from stages.cli import app

runner = CliRunner()


def write_params(path: Path, raw: dict) -> Path:
    with open(path, "w") as fh:
        YAML(typ="safe", pure=True).dump(raw, fh)
    return path


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("task.p", 2),
        ("task.frac_train", 0.0),
        ("task.frac_train", 1.2),
        ("activations.position", 5),
        ("transformer.lr", -0.001),
    ],
)
def test_bad_params_fail_in_one_line_and_write_nothing(
    tmp_path: Path, tiny_params_raw: dict, key: str, value: object
) -> None:
    raw = copy.deepcopy(tiny_params_raw)
    section, name = key.split(".")
    raw[section][name] = value
    params = write_params(tmp_path / "params.yaml", raw)
    out = tmp_path / "data" / "task.safetensors"
    result = runner.invoke(app, ["data", "--params", str(params), "--out", str(out)])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert f"{key} = {value!r}" in lines[0]
    assert "Traceback" not in result.output + result.stderr
    assert not out.exists() and not out.parent.exists()


def test_missing_inputs_and_params_are_one_line_errors(
    tmp_path: Path, tiny_params_raw: dict
) -> None:
    params = write_params(tmp_path / "params.yaml", tiny_params_raw)
    result = runner.invoke(
        app,
        [
            "transformer",
            "--params",
            str(params),
            "--task",
            str(tmp_path / "nope.safetensors"),
            "--out",
            str(tmp_path / "model"),
        ],
    )
    assert result.exit_code == 2
    assert "input not found" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "model").exists()
    result = runner.invoke(app, ["data", "--params", str(tmp_path / "missing.yaml")])
    assert result.exit_code == 2 and "params file not found" in result.stderr
    (tmp_path / "broken.yaml").write_text("task: [unclosed\n")
    result = runner.invoke(app, ["data", "--params", str(tmp_path / "broken.yaml")])
    assert result.exit_code == 2 and "not valid YAML" in result.stderr


def test_data_stage_writes_a_loadable_dataset(tmp_path: Path, tiny_params_raw: dict) -> None:
    from stages._artifacts import load_task

    params = write_params(tmp_path / "params.yaml", tiny_params_raw)
    out = tmp_path / "task.safetensors"
    result = runner.invoke(app, ["data", "--params", str(params), "--out", str(out)])
    assert result.exit_code == 0, result.output
    task = load_task(out)
    assert task.p == tiny_params_raw["task"]["p"]
    first = out.read_bytes()
    runner.invoke(app, ["data", "--params", str(params), "--out", str(out)])
    assert out.read_bytes() == first
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp files


def test_atomic_writes_keep_the_old_output_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "out"
    _common.write_dir(target, {"a.txt": b"old"})

    class Boom(dict):
        def items(self):
            yield "a.txt", b"new"
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        _common.write_dir(target, Boom())
    assert (target / "a.txt").read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    _common.write_dir(target, {"b.txt": b"new"})
    assert sorted(p.name for p in target.iterdir()) == ["b.txt"]


def test_json_numbers_are_rounded_and_finite(tmp_path: Path) -> None:
    path = tmp_path / "m.json"
    record = dict[str, float | list[float] | None]  # checked after rounding: nan is null
    _common.write_json(path, {"x": 0.1234567891, "nan": float("nan"), "n": [1, 2.0]}, record)
    assert (
        path.read_text()
        == '{\n  "x": 0.123457,\n  "nan": null,\n  "n": [\n    1,\n    2.0\n  ]\n}\n'
    )


def test_an_error_message_prints_as_text_not_markup(capsys, monkeypatch, tmp_path) -> None:
    """Brackets in a message are text: rich would drop "[d_sae=4, d_in=9]" as a markup tag."""
    import typer

    monkeypatch.setattr(_common, "TIMINGS_LOG", tmp_path / "timings.jsonl")

    from husai.errors import HusaiError

    @_common.stage("toy")
    def toy() -> None:
        raise HusaiError("atoms must be [d_sae=4, d_in=9], got [x]")

    with pytest.raises(typer.Exit):
        toy()
    err = capsys.readouterr().err
    assert "husai toy: error: atoms must be [d_sae=4, d_in=9], got [x]" in " ".join(err.split())
