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
writes a "skipped" entry instead of failing. Each trained configuration is one unit of
:mod:`stages._executor` (:func:`measure_config`): in this process, or one task of the
cell's SLURM job array.

Writes the folder ``metrics/sweep/<architecture>-d<d_sae>/`` with one
``<config>.json`` per configuration (uncached, in git), each a
:data:`husai.records.SweepConfigFile`: :class:`husai.records.SweepSkipped` (the reason)
or :class:`husai.records.SweepTrained` (the hyperparameters the architecture reads, the
SAEBench metrics, training (steps, epochs run, converged and atom drift per seed),
``stability``, ``recovery``, ``live`` and ``lengths``). Every file is checked against
its record before the cell is written.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer

from husai.records import SweepConfigFile, validate_json
from husai.serialize import json_bytes
from stages._artifacts import load_activations, load_domain
from stages._common import PARAMS_OPTION, console, load_params, setup, stage, write_dir
from stages._executor import Unit, executor
from stages._progress import per_unit, progress


def cell_name(architecture: str, d_sae: int) -> str:
    return f"{architecture}-d{d_sae}"


def used_hyperparams(config) -> dict[str, object]:
    """The hyperparameters the configuration's architecture reads, and d_in: a cell depends
    only on the params it uses (dvc.yaml), so it records only those."""
    from husai.sae.registry import spec

    reads = set(spec(config.architecture).reads()) | {"d_in"}
    return {k: v for k, v in config.hyperparams().items() if k in reads}


@dataclass(frozen=True)
class CellInputs:
    """What every configuration of a cell reads: the data, the analysis options, the
    baselines (they depend only on the architecture, d_sae, d_in and the seeds)."""

    acts: Any
    dom: Any
    gt: Any
    options: Any
    light: Any  # the options of the length axis: no matchings
    basis: Any
    baselines: dict
    per_epoch: int
    lengths: tuple[int, ...]


def measure_config(
    cell: CellInputs, entry: dict, hp: Any, on_progress: Callable[[int, int], None] | None
) -> dict:
    """One configuration (a unit of :mod:`stages._executor`): train its seeds to the
    criterion, analyse them at the stop and after each length; its file's JSON object."""
    from husai.analysis import live_summary, recovery_summary, stability_summary
    from husai.sae import METRICS, SAEConfig, evaluate, train_saes

    acts, dom, options, light = cell.acts, cell.dom, cell.options, cell.light
    config = SAEConfig.from_hyperparams(hp, d_in=acts.d_in)
    snaps: dict = {}
    sae, history = train_saes(
        config,
        acts.x,
        hp.seeds,
        name=entry["config"],
        checkpoint_steps=[e * cell.per_epoch for e in cell.lengths],
        on_checkpoint=snaps.__setitem__,
        on_progress=on_progress,
    )
    per_seed = history.final_metrics
    metrics = {m: sum(r[m] for r in per_seed) / len(per_seed) for m in METRICS}
    metrics["per_seed"] = {str(s): r for s, r in zip(sae.seeds, per_seed, strict=True)}
    stab = stability_summary(sae, options, baselines=cell.baselines, basis=cell.basis)
    rec = recovery_summary(sae, acts.x, cell.gt, acts.key_frequencies, options)
    live = live_summary(sae, dom.x, dom.truth, options)
    lengths = []
    for epochs in cell.lengths:
        # a batch that stopped before this length: every seed is at its own stop
        at = snaps.get(epochs * cell.per_epoch, sae)
        ev = evaluate(at, acts.x)
        short = stability_summary(at, light, baselines=cell.baselines, basis=cell.basis)
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
    return {
        **entry,
        "skipped": False,
        "hyperparameters": used_hyperparams(config),
        "metrics": metrics,
        "training": {
            "steps": history.steps,
            "final_epoch_loss": [float(v) for v in history.last("loss")],
            "epochs_run": list(history.seed_epochs),
            "converged": None if history.converged is None else list(history.converged),
            "atom_drift": None if history.atom_drift is None else list(history.atom_drift),
        },
        "stability": stab,
        "recovery": rec,
        "live": live,
        "lengths": lengths,
    }


def _summary(result: dict) -> str:
    metrics, stab, live = result["metrics"], result["stability"], result["live"]
    epochs = result["training"]["epochs_run"]
    r = stab["pwmcc_ratio_to_random"]
    null = live["shift_null_live_pwmcc"]
    return (
        f"sweep: {result['config']}: epochs {min(epochs)}-{max(epochs)}, "
        f"L0 {metrics['l0']:.1f}, EV {metrics['explained_variance']:.3f}, "
        f"PWMCC {stab['pwmcc']['mean']:.3f} (ratio {r['ratio']:.2f}), live PWMCC "
        f"{live['live_pwmcc']['mean']:.3f} (shift null "
        f"{'n/a' if null is None else format(null['mean'], '.3f')})"
    )


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

    from husai.analysis import baseline_matrices
    from husai.sae import SAEConfig, init_saes, steps_per_epoch
    from stages._analysis import analysis_options, ground_truth, subspace_basis

    prm = load_params(params)
    configs = prm.sweep_configs(arch, d_sae)
    assert prm.sweep is not None
    setup(prm)
    acts = load_activations(activations)
    dom = load_domain(activations, "modular", transformer=True)
    options = analysis_options(prm, hungarian=d_sae <= prm.sweep.hungarian_max_d_sae)
    basis = subspace_basis(acts.x, options)
    files: dict[str, bytes] = {}
    trained: list[tuple[str, dict, Any]] = []
    cell = cell_name(arch, d_sae)
    for name, (knob, value, hp) in configs.items():
        entry: dict = {
            "config": name,
            "architecture": arch,
            "d_sae": d_sae,
            "sparsity": {"knob": knob, "value": value},
        }
        if isinstance(hp, str):
            console.print(f"sweep: {name} skipped ({hp})")
            files[f"{name}.json"] = json_bytes({**entry, "skipped": True, "reason": hp})
        else:
            trained.append((name, entry, hp))
    units: list[Unit] = []
    if trained:
        # same architecture, shape and seeds for every level: the first level's initialisation
        first = trained[0][2]
        init = init_saes(SAEConfig.from_hyperparams(first, d_in=acts.d_in), first.seeds)
        inputs = CellInputs(
            acts=acts,
            dom=dom,
            gt=ground_truth(acts),
            options=options,
            light=dataclasses.replace(options, hungarian=False, ranks=()),
            basis=basis,
            baselines=baseline_matrices(init, options, basis=basis),
            per_epoch=steps_per_epoch(acts.x.shape[0], prm.sweep.batch_size),
            lengths=tuple(prm.sweep.lengths),
        )
        units = [Unit(name, measure_config, (inputs, entry, hp)) for name, entry, hp in trained]

    def done(unit: Unit, result: dict) -> None:
        files[f"{unit.name}.json"] = json_bytes(result)
        console.print(_summary(result))

    with (
        executor(
            "sweep",
            cell,
            params=params,
            inputs=[activations],
            runtime=prm.runtime,
        ) as ex,
        progress() as bar,
    ):
        task = bar.add_task(f"sweep {cell}: configurations", total=len(units))

        ex.run(units, bar=bar, progress_for=per_unit(bar, task, f"sweep {cell}"), on_result=done)
        folder = out / cell
        ordered = {f"{name}.json": files[f"{name}.json"] for name in configs}
        for file, data in ordered.items():
            validate_json(data, SweepConfigFile, (folder / file).as_posix())
        write_dir(folder, ordered)
