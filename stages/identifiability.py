"""Stage ``identifiability@<arch>-s<superposition>``: one row of the identifiability map.

DVC runs it once per (architecture, superposition) of params ``identifiability`` (a
``matrix`` stage). It generates the planted-feature data of that superposition level
(husai.idmap.map_data: SAELens's generator, seeded), trains every width x sparsity cell
at every seed to the convergence criterion of the params, and measures each cell
(husai.idmap.cell_metrics). Each cell is one unit of :mod:`stages._executor`
(:func:`measure_cell`): in this process, or one task of the row's SLURM job array. Writes ``metrics/identifiability/<arch>-s<superposition>.json``
(:class:`husai.records.IdentifiabilityRow`), after every cell is trained and checked.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer

from husai.records import IdentifiabilityRow
from stages._common import PARAMS_OPTION, console, load_params, setup, stage, write_json
from stages._executor import Unit, executor
from stages._progress import per_unit, progress


def row_name(architecture: str, superposition: int) -> str:
    return f"{architecture}-s{superposition}"


def measure_cell(
    data: Any,
    row: str,
    name: str,
    coords: dict,
    hp: Any,
    analysis: Any,
    on_progress: Callable[[int, int], None] | None,
) -> dict:
    """One cell (a unit of :mod:`stages._executor`): train its seeds to the criterion and
    measure them; the cell's entry of the row."""
    from husai.idmap import cell_metrics
    from husai.sae import SAEConfig, train_saes

    config = SAEConfig.from_hyperparams(hp, d_in=data.d_in)
    sae, history = train_saes(
        config, data.x, hp.seeds, name=f"{row}-{name}", on_progress=on_progress
    )
    metrics = cell_metrics(
        sae,
        history.final_metrics,
        data,
        threshold=analysis.shared_threshold,
        n_boot=analysis.n_boot,
        boot_seed=analysis.boot_seed,
    )
    return {
        **coords,
        "true_l0": float(data.meta["true_l0"]),
        "training": {
            "max_epochs": hp.epochs,
            "epochs_run": [int(e) for e in history.seed_epochs],
            "converged": [bool(c) for c in history.converged],
        },
        "metrics": metrics,
    }


@stage("identifiability")
def main(
    arch: str = typer.Option(..., "--arch", help="Architecture of the row."),
    superposition: int = typer.Option(..., "--superposition", help="n_features / d_in."),
    params: Path = PARAMS_OPTION,
    out: Path = typer.Option(Path("metrics/identifiability"), help="Folder of the map's rows."),
) -> None:
    """Train and measure every width x sparsity cell of one (architecture, superposition)."""
    from husai.errors import HusaiError
    from husai.idmap import map_data

    prm = load_params(params)
    idp = prm.identifiability
    if idp is None:
        raise HusaiError("identifiability: missing from params.yaml")
    cells = idp.cells(arch, superposition)
    setup(prm)
    data = map_data(idp, superposition)
    row = row_name(arch, superposition)
    units = [
        Unit(name, measure_cell, (data, row, name, coords, hp, prm.analysis))
        for name, (coords, hp) in cells.items()
    ]

    def done(unit: Unit, cell: dict) -> None:
        metrics = cell["metrics"]
        gt, live = metrics["ground_truth"], metrics["live"]
        epochs = cell["training"]["epochs_run"]
        console.print(
            f"  {arch} s{superposition} {unit.name}: d_sae {cell['d_sae']} {cell['knob']} "
            f"{cell['level']:g}: EV {metrics['explained_variance']:.3f}, L0 {metrics['l0']:.1f}, "
            f"epochs {min(epochs)}-{max(epochs)}, live PWMCC "
            f"{live['live_pwmcc']['mean']:.3f}, shared {metrics['shared_fraction']['mean']:.3f}, "
            f"GT MCC {gt['mcc']['mean']:.3f}, recovered {gt['recovered_fraction']['mean']:.3f}"
        )

    with (
        executor(
            "identifiability",
            row,
            params=params,
            inputs=[],
            runtime=prm.runtime,
        ) as ex,
        progress() as bar,
    ):
        task = bar.add_task(f"identifiability {row}: cells", total=len(units))

        result = ex.run(
            units,
            bar=bar,
            progress_for=per_unit(bar, task, f"identifiability {row}"),
            on_result=done,
        )
        path = out / f"{row}.json"
        write_json(path, result, IdentifiabilityRow)
    console.print(f"identifiability: {len(result)} cells -> {path}")
