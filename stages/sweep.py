"""Stage ``sweep``: one cell (architecture x dictionary size) of the research grid.

DVC runs it once per (architecture, d_sae) of params ``sweep`` (a ``matrix`` stage),
so a cell is cached on its own and re-runs alone when its values change. The cell
trains every sparsity level of ``sweep.sparsity.<architecture>`` at every seed of
``sweep.seeds`` (each level is one *configuration*, named
``<architecture>-d<d_sae>-<knob><level>`` with knob ``k``, ``l1c`` or ``l0c``), starting
from the ``sae`` defaults with ``epochs``, ``lr`` and ``batch_size`` of ``sweep``;
evaluates it on the whole activation dataset; and runs the shared analysis
(:mod:`husai.analysis`). The random and untrained baselines depend only on the
shape and seeds, so a cell computes them once for all its levels. Above
``sweep.hungarian_max_d_sae`` the Hungarian matchings are skipped (time), and
``hungarian_mcc`` and ``shared_fraction`` are null. An invalid combination (k > d_sae)
writes a "skipped" entry instead of failing.

Writes the folder ``metrics/sweep/<architecture>-d<d_sae>/`` with one
``<config>.json`` per level (uncached, in git), each a
:data:`husai.records.SweepConfigFile`: :class:`husai.records.SweepSkipped` (the reason)
or :class:`husai.records.SweepTrained` (the hyperparameters the architecture reads, the
SAEBench metrics, training steps, and :func:`husai.analysis.stability_summary` and
:func:`husai.analysis.recovery_summary`). Every file is checked against its record
before the cell is written.
"""

from __future__ import annotations

from pathlib import Path

import typer

from husai.records import SweepConfigFile, validate_json
from husai.serialize import json_bytes
from stages._artifacts import load_activations
from stages._common import PARAMS_OPTION, console, load_params, setup, stage, write_dir


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
    """Train and analyse every sparsity level of one (architecture, d_sae) cell."""
    from husai.analysis import baseline_matrices, recovery_summary, stability_summary
    from husai.sae import METRICS, SAEConfig, train_saes
    from stages._analysis import analysis_options, ground_truth, subspace_basis

    prm = load_params(params)
    cells = prm.sweep_configs(arch, d_sae)
    assert prm.sweep is not None
    setup(prm)
    acts = load_activations(activations)
    gt = ground_truth(acts)
    options = analysis_options(prm, hungarian=d_sae <= prm.sweep.hungarian_max_d_sae)
    basis = subspace_basis(acts.x, options)
    files: dict[str, bytes] = {}
    baselines = None
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
            continue
        config = SAEConfig.from_hyperparams(hp, d_in=acts.d_in)
        sae, history = train_saes(config, acts.x, hp.seeds, name=name)
        per_seed = history.final_metrics
        if baselines is None:  # same architecture, shape and seeds for every level
            baselines = baseline_matrices(sae, options, basis=basis)
        metrics = {m: sum(r[m] for r in per_seed) / len(per_seed) for m in METRICS}
        metrics["per_seed"] = {str(s): r for s, r in zip(sae.seeds, per_seed, strict=True)}
        stab = stability_summary(sae, options, baselines=baselines, basis=basis)
        rec = recovery_summary(sae, acts.x, gt, acts.key_frequencies, options)
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
                    "atom_drift": None if history.atom_drift is None else list(history.atom_drift),
                },
                "stability": stab,
                "recovery": rec,
            }
        )
        r = stab["pwmcc_ratio_to_random"]
        console.print(
            f"sweep: {name}: L0 {metrics['l0']:.1f}, EV "
            f"{metrics['explained_variance']:.3f}, PWMCC {stab['pwmcc']['mean']:.3f} "
            f"(random {stab['random_pwmcc']['mean']:.3f}, ratio {r['ratio']:.2f}), "
            f"coverage {rec['key_frequency_coverage']['mean']:.2f}"
        )
    folder = out / cell_name(arch, d_sae)
    for file, data in files.items():
        validate_json(data, SweepConfigFile, (folder / file).as_posix())
    write_dir(folder, files)
