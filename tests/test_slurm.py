"""The one-node SLURM of ``scripts/slurm-local``: it comes up, runs a job array, goes down.

Needs root and apt-get (or SLURM already installed), as the container check needs them
for buildah; elsewhere the test is skipped, saying why.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.conftest import slurm_local as _script


def test_a_job_array_runs_every_task_on_the_local_slurm(slurm, tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            "sbatch",
            "--wait",
            "--array=0-2",
            "--cpus-per-task=1",
            f"--output={tmp_path}/task-%a.out",
            "--wrap",
            "echo task $SLURM_ARRAY_TASK_ID of $SLURM_ARRAY_TASK_COUNT",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    got = sorted((tmp_path / f"task-{i}.out").read_text().strip() for i in range(3))
    assert got == [f"task {i} of 3" for i in range(3)]


def test_a_failing_task_fails_the_array(slurm, tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            "sbatch",
            "--wait",
            "--array=0-1",
            f"--output={tmp_path}/task-%a.out",
            "--wrap",
            'test "$SLURM_ARRAY_TASK_ID" = 0 || { echo broken; exit 3; }',
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode != 0
    assert (tmp_path / "task-1.out").read_text().strip() == "broken"


def test_the_script_refuses_an_unknown_command() -> None:
    proc = _script("start")
    assert proc.returncode == 1
    assert proc.stderr.strip() == "slurm-local: usage: scripts/slurm-local up|down|status"


def test_a_slurm_conf_it_did_not_write_is_left_alone(slurm) -> None:
    """`up` refuses to overwrite another SLURM's configuration (the file is restored)."""
    conf = Path("/etc/slurm/slurm.conf")
    ours = conf.read_text()
    assert ours.startswith("# written by scripts/slurm-local")
    try:
        conf.write_text("ClusterName=theirs\n")
        proc = _script("up")
        assert proc.returncode == 1
        assert "slurm.conf was not written by this script: refusing to overwrite it" in proc.stderr
        assert conf.read_text() == "ClusterName=theirs\n"
    finally:
        conf.write_text(ours)
