"""Stage ``data``: every (a, b) pair for p = task.p and a seeded train/test split."""

from __future__ import annotations

from pathlib import Path

import typer

from husai.task import make_task
from stages._artifacts import save_task
from stages._common import PARAMS_OPTION, console, load_params, setup, stage


@stage("data")
def main(
    params: Path = PARAMS_OPTION,
    out: Path = typer.Option(Path("data/task.safetensors"), help="Task dataset to write."),
) -> None:
    """Build the modular-addition dataset and its train/test split."""
    prm = load_params(params)
    setup(prm)
    t = prm.task
    task = make_task(t.p, t.frac_train, t.seed)
    save_task(out, task, t.frac_train, t.seed)
    console.print(
        f"data: p = {t.p}, {len(task.labels)} pairs, "
        f"{len(task.train_idx)} train / {len(task.test_idx)} test (seed {t.seed}) -> {out}"
    )
