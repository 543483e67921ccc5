"""stages/_progress.py: the stages' progress bars are drawn only on a terminal that stdout and
stderr share. A real stage under a pseudo-terminal, with its outputs compared to the
pipeline's: tests/test_pipeline.py."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from pathlib import Path

from stages._progress import interactive, progress, training
from tests.pipeline import run_in_terminal

ROOT = Path(__file__).resolve().parents[1]


CHECK = "import sys; from stages._progress import interactive; sys.exit(0 if interactive() else 7)"


def _status(stdout: int | None, stderr: int | None) -> int:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-c", CHECK], cwd=ROOT, env=env, stdout=stdout, stderr=stderr
    ).returncode


def test_bars_only_when_stdout_and_stderr_are_one_terminal() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    assert run_in_terminal([sys.executable, "-c", CHECK], ROOT, env)[0] == 0
    one, one_end = pty.openpty()
    two, two_end = pty.openpty()
    try:
        assert _status(one_end, two_end) == 7  # two terminals: stdout would move
        assert _status(one_end, subprocess.PIPE) == 7  # stderr to a pipe or file
        assert _status(subprocess.PIPE, one_end) == 7  # stdout to a pipe or file
    finally:
        for fd in (one, one_end, two, two_end):
            os.close(fd)
    assert not interactive()  # pytest captures both


def test_a_stage_bar_is_off_here_and_training_tasks_come_and_go() -> None:
    with progress() as bar:
        assert bar.disable
        task = bar.add_task("stage: configurations", total=2)
        with training(bar, "  config: training steps") as on_progress:
            on_progress(3, 10)
            (inner,) = [t for t in bar.tasks if t.id != task]
            assert (inner.completed, inner.total) == (3, 10)
        assert [t.id for t in bar.tasks] == [task]


def test_a_bar_on_a_terminal_shows_counts_and_eta() -> None:
    code = (
        "from stages._progress import progress, training\n"
        "with progress() as bar:\n"
        "    task = bar.add_task('demo: configurations', total=2)\n"
        "    print('summary line')\n"
        "    with training(bar, '  demo: training steps') as on_progress:\n"
        "        for step in range(1, 6):\n"
        "            on_progress(step, 5)\n"
        "    bar.advance(task)\n"
        "    bar.refresh()\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    rc, shown = run_in_terminal([sys.executable, "-c", code], ROOT, env)
    assert rc == 0, shown
    assert "demo: configurations" in shown and "ETA" in shown and "1/2" in shown
    assert "summary line" in shown
