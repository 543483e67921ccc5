"""Stage ``identifiability@<arch>-s<superposition>``: one row of the identifiability map.

DVC runs it once per (architecture, superposition) of params ``identifiability`` (a
``matrix`` stage). It generates the planted-feature data of that superposition level
(husai.idmap.map_data: SAELens's generator, seeded), trains every width x sparsity cell
at every seed to the convergence criterion of the params, and measures each cell
(husai.idmap.cell_metrics). Writes ``metrics/identifiability/<arch>-s<superposition>.json``
(:class:`husai.records.IdentifiabilityRow`), after every cell is trained and checked.
"""

from __future__ import annotations

from pathlib import Path

import typer

from husai.records import IdentifiabilityRow
from stages._common import PARAMS_OPTION, console, load_params, setup, stage, write_json
from stages._progress import progress, training


def row_name(architecture: str, superposition: int) -> str:
    return f"{architecture}-s{superposition}"


@stage("identifiability")
def main(
    arch: str = typer.Option(..., "--arch", help="Architecture of the row."),
    superposition: int = typer.Option(..., "--superposition", help="n_features / d_in."),
    params: Path = PARAMS_OPTION,
    out: Path = typer.Option(Path("metrics/identifiability"), help="Folder of the map's rows."),
) -> None:
    """Train and measure every width x sparsity cell of one (architecture, superposition)."""
    from husai.errors import HusaiError
    from husai.idmap import cell_metrics, map_data
    from husai.sae import SAEConfig, train_saes

    prm = load_params(params)
    idp = prm.identifiability
    if idp is None:
        raise HusaiError("identifiability: missing from params.yaml")
    cells = idp.cells(arch, superposition)
    setup(prm)
    data = map_data(idp, superposition)
    result = {}
    row = row_name(arch, superposition)
    with progress() as bar:
        task = bar.add_task(f"identifiability {row}: cells", total=len(cells))
        for name, (coords, hp) in cells.items():
            config = SAEConfig.from_hyperparams(hp, d_in=data.d_in)
            bar.update(task, description=f"identifiability {row}: {name}")
            with training(bar, f"  {name}: training steps") as on_progress:
                sae, history = train_saes(
                    config, data.x, hp.seeds, name=f"{row}-{name}", on_progress=on_progress
                )
            metrics = cell_metrics(
                sae,
                history.final_metrics,
                data,
                threshold=prm.analysis.shared_threshold,
                n_boot=prm.analysis.n_boot,
                boot_seed=prm.analysis.boot_seed,
            )
            result[name] = {
                **coords,
                "true_l0": float(data.meta["true_l0"]),
                "training": {
                    "max_epochs": hp.epochs,
                    "epochs_run": [int(e) for e in history.seed_epochs],
                    "converged": [bool(c) for c in history.converged],
                },
                "metrics": metrics,
            }
            gt, live = metrics["ground_truth"], metrics["live"]
            console.print(
                f"  {arch} s{superposition} {name}: d_sae {coords['d_sae']} {coords['knob']} "
                f"{coords['level']:g}: EV {metrics['explained_variance']:.3f}, L0 {metrics['l0']:.1f}, "
                f"epochs {min(history.seed_epochs)}-{max(history.seed_epochs)}, live PWMCC "
                f"{live['live_pwmcc']['mean']:.3f}, shared {metrics['shared_fraction']['mean']:.3f}, "
                f"GT MCC {gt['mcc']['mean']:.3f}, recovered {gt['recovered_fraction']['mean']:.3f}"
            )
            bar.advance(task)
    path = out / f"{row}.json"
    write_json(path, result, IdentifiabilityRow)
    console.print(f"identifiability: {len(result)} cells -> {path}")
