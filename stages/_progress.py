"""Progress bars of the long stages: what runs, a bar, done / total, elapsed time and ETA.

One :func:`progress` per stage, with a task per unit of work (epochs, SAE training steps,
configurations, cells) and, while an SAE trains, a second task for its steps
(:func:`training`, the ``on_progress`` callback of :func:`husai.sae.train_saes`). An ETA
is rich's estimate from the recent rate, not a bound; for training to convergence the
total is the maximum number of steps, so the ETA tends to be long until the run stops.

The bars are shown only when stdout and stderr are one and the same terminal (``dvc
repro`` in a terminal passes its terminal on to the stage). They are drawn on stderr and
cleared when the stage's loop ends (transient); while one is shown, rich writes the
stage's stdout lines above it, on that same terminal. With either stream redirected (a
log file, a pipe, ``dvc repro`` in CI, the tests) nothing is drawn and nothing is
redirected: stdout holds the stage's summaries, as without bars.

Plumbing (``PLUMBING`` in tests/deps.py): a bar reads the counts a stage hands it and
writes to the terminal only; nothing here reaches a versioned output, so the stages do
not list this file as a DVC dep.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

# stderr, as stages._common.err_console (not imported: this module stays light)
_stderr = Console(stderr=True, highlight=False)


def interactive() -> bool:
    """Whether stdout and stderr are one and the same terminal (the bars are shown only then)."""
    try:
        out, err = sys.stdout.fileno(), sys.stderr.fileno()
        return os.isatty(out) and os.isatty(err) and os.ttyname(out) == os.ttyname(err)
    except (AttributeError, ValueError, OSError):  # replaced, closed or unnamed streams
        return False


def progress() -> Progress:
    """A stage's progress display (use it as a context manager; add a task per loop)."""
    return Progress(
        TextColumn("{task.description}", markup=False),  # names come from params keys
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=_stderr,
        transient=True,
        disable=not interactive(),
    )


@contextmanager
def training(bar: Progress, description: str) -> Iterator[Callable[[int, int], None]]:
    """A task for one SAE training run on ``bar``, removed when the run ends; yields the
    ``on_progress(step, total)`` callback to hand to :func:`husai.sae.train_saes`."""
    task: TaskID = bar.add_task(description, total=None)

    def on_progress(step: int, total: int) -> None:
        bar.update(task, completed=step, total=total)

    try:
        yield on_progress
    finally:
        bar.remove_task(task)


def per_unit(
    bar: Progress, task: TaskID, prefix: str
) -> Callable[[Any], AbstractContextManager[Callable[[int, int], None]]]:
    """The ``progress_for`` of :meth:`stages._executor.Executor.run` for units that train:
    ``task`` names the unit while it runs (``<prefix>: <unit>``) and advances when it ends,
    and a :func:`training` task shows its steps."""

    @contextmanager
    def steps(unit: Any) -> Iterator[Callable[[int, int], None]]:
        bar.update(task, description=f"{prefix}: {unit.name}")
        with training(bar, f"  {unit.name}: training steps") as on_progress:
            yield on_progress
        bar.advance(task)

    return steps
