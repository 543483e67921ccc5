"""The stages' executor (stages/_executor.py): its configuration, the local executor, and the
slurm executor on the one-node SLURM of scripts/slurm-local (results, a failing unit, a
unit killed outside Python, resume after a fix)."""

from __future__ import annotations

import os
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest

from husai.config import RuntimeParams
from husai.errors import HusaiError
from stages._executor import ClusterConfig, SlurmOptions, Unit, cluster_config, executor
from tests.conftest import ROOT

# ----------------------------------------------------------------------------- units


def square(x: int, ran: str | None = None, *, on_progress=None) -> dict:
    """A unit: records that it ran (one line per call) and squares ``x``."""
    if ran is not None:
        with open(ran, "a") as fh:
            fh.write(f"{x}\n")
    if on_progress is not None:
        on_progress(1, 1)
    return {"x": x, "square": x * x}


def fails_while(x: int, ran: str, marker: str, *, on_progress=None) -> dict:
    """A unit that raises while file ``marker`` exists (the bug) and squares ``x`` once it
    is gone (the fix)."""
    if Path(marker).exists() and x == 2:
        raise ValueError(f"unit {x} is broken")
    return square(x, ran)


def dies(x: int, *, on_progress=None) -> dict:
    """A unit whose process ends without Python's error handling (as when SLURM kills it)."""
    if x == 1:
        os._exit(3)
    return square(x)


def via(*, on_progress=None) -> str | None:
    """A unit that reports the wrapper its Python was started through."""
    return os.environ.get("HUSAI_VIA")


# ----------------------------------------------------------------------------- configuration


def test_without_a_file_or_variable_the_executor_is_local(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert cluster_config({}) == ClusterConfig()
    assert cluster_config({}).executor == "local"
    assert cluster_config({"HUSAI_EXECUTOR": "slurm"}).executor == "slurm"


def test_the_repository_cluster_file_is_the_documented_default() -> None:
    """cluster.yaml at the root says local and every default of SlurmOptions, explicitly."""
    from stages._common import read_yaml

    raw = read_yaml(ROOT / "cluster.yaml")
    assert raw["executor"] == "local"
    defaults = SlurmOptions()
    assert set(raw["slurm"]) == set(defaults.__dataclass_fields__)
    for key, value in raw["slurm"].items():
        assert value == getattr(defaults, key), key


def test_a_cluster_file_sets_the_options_and_the_variable_wins(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("executor: slurm\nslurm: {partition: gpu, time_min: 5, sbatch: {qos: low}}\n")
    cfg = cluster_config({"HUSAI_CLUSTER": str(path)})
    assert cfg.executor == "slurm"
    assert cfg.slurm.partition == "gpu" and cfg.slurm.time_min == 5
    assert cfg.slurm.sbatch == {"qos": "low"} and cfg.slurm.mem_gb == 8.0
    assert cluster_config({"HUSAI_CLUSTER": str(path), "HUSAI_EXECUTOR": "local"}).executor == (
        "local"
    )


@pytest.mark.parametrize(
    ("text", "env", "message"),
    [
        ("slurm: {time_min: 0}\n", {}, "c.yaml: slurm.time_min = 0: must be >= 1"),
        ("slurm: {partiton: gpu}\n", {}, "c.yaml: slurm.partiton = 'gpu': unknown key"),
        ("executor: ssh\n", {}, "c.yaml: executor = 'ssh': must be one of local, slurm"),
        ("", {"HUSAI_EXECUTOR": "k8s"}, "HUSAI_EXECUTOR=k8s: unknown executor (known: local"),
    ],
)
def test_bad_cluster_settings_are_one_line_errors(
    tmp_path: Path, text: str, env: dict, message: str
) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(HusaiError) as err:
        cluster_config({"HUSAI_CLUSTER": str(path), **env})
    assert str(err.value).startswith(message.replace("c.yaml", str(path)))
    assert "\n" not in str(err.value)


def test_a_named_cluster_file_must_exist(tmp_path: Path) -> None:
    with pytest.raises(HusaiError, match=r"^HUSAI_CLUSTER=.*nope.yaml: no such file$"):
        cluster_config({"HUSAI_CLUSTER": str(tmp_path / "nope.yaml")})


# ----------------------------------------------------------------------------- local


@contextmanager
def _executor(tmp_path: Path, kind: str, monkeypatch, inputs=(), extra: str = ""):
    params = tmp_path / "params.yaml"
    if not params.exists():
        params.write_text("runtime: {device: cpu, threads: 1}\n")
    cluster = tmp_path / "cluster.yaml"
    cluster.write_text(
        f"executor: {kind}\nslurm: {{scratch: {tmp_path / 'scratch'}, poll_s: 0.5, mem_gb: 1"
        f"{extra}}}\n"
    )
    monkeypatch.setenv("HUSAI_CLUSTER", str(cluster))
    monkeypatch.delenv("HUSAI_EXECUTOR", raising=False)
    # the tasks import this module by name, from the repository's root
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    runtime = RuntimeParams(device="cpu", threads=1)
    with executor("test", "cell", params=params, inputs=list(inputs), runtime=runtime) as ex:
        yield ex


def test_local_units_run_in_order_with_their_progress_callbacks(tmp_path, monkeypatch) -> None:
    seen: list[tuple[str, object]] = []

    @contextmanager
    def progress_for(unit: Unit):
        seen.append(("start", unit.name))
        yield lambda step, total: seen.append(("step", unit.name))

    units = [Unit(f"u{x}", square, (x,)) for x in (3, 1, 2)]
    with _executor(tmp_path, "local", monkeypatch) as ex:
        out = ex.run(
            units,
            progress_for=progress_for,
            on_result=lambda u, r: seen.append(("result", r["square"])),
        )
    assert list(out) == ["u3", "u1", "u2"]
    assert out["u2"] == {"x": 2, "square": 4}
    assert seen == [
        ("start", "u3"),
        ("step", "u3"),
        ("result", 9),
        ("start", "u1"),
        ("step", "u1"),
        ("result", 1),
        ("start", "u2"),
        ("step", "u2"),
        ("result", 4),
    ]
    assert not (tmp_path / "scratch").exists()  # local runs need no scratch


def test_unit_names_must_be_unique(tmp_path, monkeypatch) -> None:
    with _executor(tmp_path, "local", monkeypatch) as ex, pytest.raises(ValueError, match="repeat"):
        ex.run([Unit("a", square, (1,)), Unit("a", square, (2,))])


def test_submit_only_needs_the_slurm_executor(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("HUSAI_SUBMIT_ONLY", "1")
    with (
        _executor(tmp_path, "local", monkeypatch) as ex,
        pytest.raises(HusaiError, match=r"^HUSAI_SUBMIT_ONLY is set, but the executor is local$"),
    ):
        ex.run([Unit("a", square, (1,))])


def test_husai_submit_refuses_the_local_executor(tmp_path) -> None:
    env = {
        **os.environ,
        "HUSAI_EXECUTOR": "local",
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
    }
    proc = subprocess.run(
        ["husai", "submit"], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        "husai submit: error: submit: the executor is local (set HUSAI_EXECUTOR=slurm, or "
        "executor: slurm in cluster.yaml)"
    )


def test_the_slurm_executor_needs_sbatch(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no SLURM tools
    with (
        _executor(tmp_path, "slurm", monkeypatch) as ex,
        pytest.raises(HusaiError, match=r"^test@cell: the slurm executor needs sbatch"),
    ):
        ex.run([Unit("a", square, (1,))])


# ----------------------------------------------------------------------------- slurm


def test_slurm_units_give_the_local_results_and_clear_the_scratch(
    slurm, tmp_path, monkeypatch
) -> None:
    ran = tmp_path / "ran.txt"
    units = [Unit(f"u{x}", square, (x, str(ran))) for x in (3, 1, 2)]
    with _executor(tmp_path, "local", monkeypatch) as ex:
        local = ex.run(units)
    order: list[str] = []
    with _executor(tmp_path, "slurm", monkeypatch) as ex:
        remote = ex.run(units, on_result=lambda u, r: order.append(u.name))
        assert any(ex.scratch.glob("u1.*.pkl"))  # results in scratch until the block ends
    assert remote == local and list(remote) == ["u3", "u1", "u2"]
    assert order == ["u3", "u1", "u2"]  # on_result in the units' order, whatever finished first
    assert sorted(ran.read_text().split()) == ["1", "1", "2", "2", "3", "3"]
    assert not (tmp_path / "scratch" / "test@cell").exists()


def test_a_failing_unit_names_itself_and_its_log_and_a_rerun_runs_only_it(
    slurm, tmp_path, monkeypatch
) -> None:
    ran, marker = tmp_path / "ran.txt", tmp_path / "bug"
    marker.write_text("")
    units = [Unit(f"u{x}", fails_while, (x, str(ran), str(marker))) for x in (1, 2, 3)]
    with pytest.raises(HusaiError) as err, _executor(tmp_path, "slurm", monkeypatch) as ex:
        ex.run(units)
    message = str(err.value)
    assert message.startswith("test@cell: 1 of 3 units failed on SLURM; unit u2 (job ")
    assert "ValueError: unit 2 is broken; log: " in message and "\n" not in message
    log = Path(message.split("; log: ")[1].split(" (a rerun")[0])
    assert log.is_file() and "unit 2 is broken" in log.read_text()
    assert sorted(ran.read_text().split()) == ["1", "3"]
    assert (tmp_path / "scratch" / "test@cell").is_dir()  # the finished units stay

    marker.unlink()  # the fix
    with _executor(tmp_path, "slurm", monkeypatch) as ex:
        out = ex.run(units)
    assert [out[f"u{x}"]["square"] for x in (1, 2, 3)] == [1, 4, 9]
    assert sorted(ran.read_text().split()) == ["1", "2", "3"]  # only u2 ran again


def test_a_changed_input_reruns_every_unit(slurm, tmp_path, monkeypatch) -> None:
    """Results in scratch belong to the params and inputs they were computed from."""
    ran, marker, data = tmp_path / "ran.txt", tmp_path / "bug", tmp_path / "data.bin"
    data.write_bytes(b"one")
    marker.write_text("")
    units = [Unit(f"u{x}", fails_while, (x, str(ran), str(marker))) for x in (1, 2)]
    with pytest.raises(HusaiError), _executor(tmp_path, "slurm", monkeypatch, [data]) as ex:
        ex.run(units)
    marker.unlink()
    data.write_bytes(b"two")
    with _executor(tmp_path, "slurm", monkeypatch, [data]) as ex:
        ex.run(units)
    assert sorted(ran.read_text().split()) == ["1", "1", "2"]


def test_a_task_that_dies_outside_python_fails_the_stage(slurm, tmp_path, monkeypatch) -> None:
    units = [Unit(f"u{x}", dies, (x,)) for x in (0, 1)]
    with pytest.raises(HusaiError) as err, _executor(tmp_path, "slurm", monkeypatch) as ex:
        ex.run(units)
    message = str(err.value)
    assert message.startswith("test@cell: 1 of 2 units failed on SLURM; unit u1 (job ")
    assert "it left the queue without a result" in message
    assert "; log: " in message and message.split("; log: ")[1].split(" ")[0].endswith(".err")


def test_tasks_start_python_through_the_configured_command(slurm, tmp_path, monkeypatch) -> None:
    """slurm.python (e.g. `apptainer exec image.sif python`) starts each task's Python."""
    wrapper = f", python: 'env HUSAI_VIA=wrapper {sys.executable}'"
    with _executor(tmp_path, "slurm", monkeypatch, extra=wrapper) as ex:
        assert ex.run([Unit("u", via)]) == {"u": "wrapper"}
