"""Stage ``sweep``: one cell (architecture x dictionary size) of the research grid.

DVC runs it once per (architecture, d_sae) of params ``sweep`` (a ``matrix`` stage),
so a cell is cached on its own and re-runs alone when its values change. The cell
trains every sparsity level of ``sweep.sparsity.<architecture>`` at every learning rate
of ``sweep.lr`` and every seed of ``sweep.seeds`` (each (level, rate) is one
*configuration*, named ``<architecture>-d<d_sae>-<knob><level>`` with knob ``k``,
``l1c`` or ``l0c``, and ``-lr<rate>`` for a rate after the first), starting from the
``sae`` defaults with ``epochs`` (the maximum), ``batch_size`` and the convergence
criterion of ``sweep``: each seed stops once it meets the criterion
(:func:`husai.sae.train_saes`). Each configuration is evaluated on the whole activation
dataset and analysed at its stop (:mod:`husai.analysis`: all-atom stability beside the
isotropic, untrained and data-subspace baselines, recovery, and
:func:`husai.analysis.live_summary`, live atoms beside count-matched subspace atoms and
the shift null) and after at most each of ``sweep.lengths`` epochs (the training-length
axis: EV, L0, all-atom PWMCC and the live summary without the matchings; a seed that
stopped earlier is measured at its stop). The random and untrained baselines depend only
on the shape and seeds, so a cell computes them once for all its configurations. Above
``sweep.hungarian_max_d_sae`` the Hungarian matchings are skipped (time), and
``hungarian_mcc`` and the shared fractions are null. An invalid combination (k > d_sae)
writes a "skipped" entry instead of failing.

Writes the folder ``metrics/sweep/<architecture>-d<d_sae>/`` with one
``<config>.json`` per configuration (uncached, in git), each a
:data:`husai.records.SweepConfigFile`: :class:`husai.records.SweepSkipped` (the reason)
or :class:`husai.records.SweepTrained` (the hyperparameters the architecture reads, the
SAEBench metrics, training (steps, epochs run, converged and atom drift per seed),
``stability``, ``recovery``, ``live`` and ``lengths``). Every file is checked against
its record before the cell is written.
"""

from __future__ import annotations

from pathlib import Path

import typer

from husai.records import SweepConfigFile, validate_json
from husai.serialize import json_bytes
from stages._artifacts import load_activations, load_domain
from stages._common import PARAMS_OPTION, console, load_params, setup, stage, write_dir
from stages._progress import progress, training


def cell_name(architecture: str, d_sae: int) -> str:
    return f"{architecture}-d{d_sae}"


def used_hyperparams(config) -> dict[str, object]:
    """The hyperparameters the configuration's architecture reads, and d_in: a cell depends
    only on the params it uses (dvc.yaml), so it records only those."""
    from husai.sae.registry import spec

    reads = set(spec(config.architecture).reads()) | {"d_in"}
    return {k: v for k, v in config.hyperparams().items() if k in reads}


@stage("sweep")
def main(
    arch: str = typer.Option(..., "--arch", help="Architecture of the cell."),
    d_sae: int = typer.Option(..., "--d-sae", help="Dictionary size of the cell."),
    params: Path = PARAMS_OPTION,
    activations: Path = typer.Option(
        Path("data/domains/modular.safetensors"), help="Activation dataset with the ground truth."
    ),
    out: Path = typer.Option(Path("metrics/sweep"), help="Folder of the sweep's cells."),
) -> None:
    """Train and analyse every sparsity level (and learning rate) of one (architecture, d_sae) cell."""
    import dataclasses

    from husai.analysis import (
        baseline_matrices,
        live_summary,
        recovery_summary,
        stability_summary,
    )
    from husai.sae import METRICS, SAEConfig, evaluate, steps_per_epoch, train_saes
    from stages._analysis import analysis_options, ground_truth, subspace_basis

    prm = load_params(params)
    cells = prm.sweep_configs(arch, d_sae)
    assert prm.sweep is not None
    setup(prm)
    acts = load_activations(activations)
    dom = load_domain(activations, "modular", transformer=True)
    gt = ground_truth(acts)
    options = analysis_options(prm, hungarian=d_sae <= prm.sweep.hungarian_max_d_sae)
    light = dataclasses.replace(options, hungarian=False, ranks=())  # the length axis
    basis = subspace_basis(acts.x, options)
    per_epoch = steps_per_epoch(acts.x.shape[0], prm.sweep.batch_size)
    files: dict[str, bytes] = {}
    baselines = None
    cell = cell_name(arch, d_sae)
    with progress() as bar:
        task = bar.add_task(f"sweep {cell}: configurations", total=len(cells))
        for name, (knob, value, hp) in cells.items():
            entry: dict = {
                "config": name,
                "architecture": arch,
                "d_sae": d_sae,
                "sparsity": {"knob": knob, "value": value},
            }
            if isinstance(hp, str):
                console.print(f"sweep: {name} skipped ({hp})")
                files[f"{name}.json"] = json_bytes({**entry, "skipped": True, "reason": hp})
                bar.advance(task)
                continue
            config = SAEConfig.from_hyperparams(hp, d_in=acts.d_in)
            snaps: dict = {}
            bar.update(task, description=f"sweep {cell}: {name}")
            with training(bar, f"  {name}: training steps") as on_progress:
                sae, history = train_saes(
                    config,
                    acts.x,
                    hp.seeds,
                    name=name,
                    checkpoint_steps=[e * per_epoch for e in prm.sweep.lengths],
                    on_checkpoint=snaps.__setitem__,
                    on_progress=on_progress,
                )
            bar.update(task, description=f"sweep {cell}: {name}, analysis")
            per_seed = history.final_metrics
            if baselines is None:  # same architecture, shape and seeds for every level
                baselines = baseline_matrices(sae, options, basis=basis)
            metrics = {m: sum(r[m] for r in per_seed) / len(per_seed) for m in METRICS}
            metrics["per_seed"] = {str(s): r for s, r in zip(sae.seeds, per_seed, strict=True)}
            stab = stability_summary(sae, options, baselines=baselines, basis=basis)
            rec = recovery_summary(sae, acts.x, gt, acts.key_frequencies, options)
            live = live_summary(sae, dom.x, dom.truth, options)
            lengths = []
            for epochs in prm.sweep.lengths:
                # a batch that stopped before this length: every seed is at its own stop
                at = snaps.get(epochs * per_epoch, sae)
                ev = evaluate(at, acts.x)
                short = stability_summary(at, light, baselines=baselines, basis=basis)
                lengths.append(
                    {
                        "epochs": epochs,
                        "explained_variance": sum(r["explained_variance"] for r in ev) / len(ev),
                        "l0": sum(r["l0"] for r in ev) / len(ev),
                        "pwmcc": short["pwmcc"],
                        "pwmcc_ratio_to_random": short["pwmcc_ratio_to_random"],
                        "live": live_summary(at, dom.x, dom.truth, light),
                    }
                )
            files[f"{name}.json"] = json_bytes(
                {
                    **entry,
                    "skipped": False,
                    "hyperparameters": used_hyperparams(config),
                    "metrics": metrics,
                    "training": {
                        "steps": history.steps,
                        "final_epoch_loss": [float(v) for v in history.last("loss")],
                        "epochs_run": list(history.seed_epochs),
                        "converged": None if history.converged is None else list(history.converged),
                        "atom_drift": None
                        if history.atom_drift is None
                        else list(history.atom_drift),
                    },
                    "stability": stab,
                    "recovery": rec,
                    "live": live,
                    "lengths": lengths,
                }
            )
            r = stab["pwmcc_ratio_to_random"]
            null = live["shift_null_live_pwmcc"]
            console.print(
                f"sweep: {name}: epochs {min(history.seed_epochs)}-{max(history.seed_epochs)}, "
                f"L0 {metrics['l0']:.1f}, EV {metrics['explained_variance']:.3f}, "
                f"PWMCC {stab['pwmcc']['mean']:.3f} (ratio {r['ratio']:.2f}), live PWMCC "
                f"{live['live_pwmcc']['mean']:.3f} (shift null "
                f"{'n/a' if null is None else format(null['mean'], '.3f')})"
            )
            bar.advance(task)
    folder = out / cell
    for file, data in files.items():
        validate_json(data, SweepConfigFile, (folder / file).as_posix())
    write_dir(folder, files)
