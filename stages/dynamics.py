"""Stage ``dynamics``: stability between seeds over training, and when each latent settles.

Retrains each configuration named in ``dynamics.configs`` (an entry of ``saes``,
with the same hyperparameters and, unless ``dynamics.seeds`` overrides them, the
same seeds, so the last checkpoint is bit for bit the SAE of stage ``saes``) and
measures it at log-spaced checkpoints: steps 0 (initialisation), 1, b, b^2, ...
and the last step (``dynamics.checkpoint_base`` b, default 2), by
:func:`husai.dynamics.train_dynamics`. Definitions: SCIENCE.md sections 4-6 and
:mod:`husai.dynamics` (settle steps, the per-checkpoint measures).

``metrics/dynamics.json``: :class:`husai.records.DynamicsMetrics`: the Paulo & Belrose
``threshold`` and, per configuration, a :class:`husai.records.DynamicsConfig`: its
shape, hyperparameters, seeds and ``checkpoint_steps``; ``random``: the isotropic
reference (one dictionary of the same shape per seed, a :class:`husai.records.Stat`
per ``<metric>``) and ``r / d_in`` per rank; ``checkpoints``, in step order, each a
:class:`husai.records.DynamicsCheckpoint`: ``stability`` (a Stat over seed pairs per
``<metric>``; at step 0 it *is* the untrained baseline, SCIENCE.md section 5),
``ratio_to_isotropic`` (trained mean / isotropic mean), Stats over seeds of
``explained_variance``, ``l0``, ``frac_alive`` and ``cos_to_final``, and
``settled_fraction``, ``match_agreement_live``; ``settle`` (``all``, ``live``,
``shared`` with a majority of the other seeds at the last step, ``not_shared_live``)
and ``settle_per_pair`` (``all``, ``live``, ``shared``, per (latent, other seed)
pair), each a :class:`husai.records.Settle`; ``final_live`` and
``final_shared_with_majority``. ``<metric>``: ``pwmcc``, ``hungarian_mcc``,
``shared_fraction``, ``subspace_overlap_r<r>`` (r in 4, 8, 16, 32, 64 up to
min(d_sae, d_in)).

``metrics/curves/dynamics.csv`` (for ``dvc plots``), one row per checkpoint step
(the union over configurations; blank where a configuration has no such step):
``step`` and for each configuration ``<config>_pwmcc``, ``<config>_pwmcc_ci_low``,
``<config>_pwmcc_ci_high``, ``<config>_hungarian_mcc``, ``<config>_shared_fraction``,
``<config>_random_pwmcc``, ``<config>_random_hungarian_mcc``,
``<config>_explained_variance``, ``<config>_l0``, ``<config>_cos_to_final``,
``<config>_settled_fraction``, ``<config>_match_agreement_live``.
Live: non-zero on at least one input of the activation dataset.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import typer

from husai.records import DynamicsMetrics
from stages._artifacts import load_activations
from stages._common import PARAMS_OPTION, console, load_params, setup, stage, write_csv, write_json
from stages._progress import progress, training

CSV_FIELDS = (
    "pwmcc",
    "pwmcc_ci_low",
    "pwmcc_ci_high",
    "hungarian_mcc",
    "shared_fraction",
    "random_pwmcc",
    "random_hungarian_mcc",
    "explained_variance",
    "l0",
    "cos_to_final",
    "settled_fraction",
    "match_agreement_live",
)


def _csv_row(entry: dict[str, Any], checkpoint: dict[str, Any]) -> dict[str, Any]:
    """The :data:`CSV_FIELDS` of one checkpoint of a configuration's JSON entry."""
    stab, iso = checkpoint["stability"], entry["random"]["isotropic"]
    ci = stab["pwmcc"]["ci"]
    return {
        "pwmcc": stab["pwmcc"]["mean"],
        "pwmcc_ci_low": None if ci is None else ci[0],
        "pwmcc_ci_high": None if ci is None else ci[1],
        "hungarian_mcc": stab["hungarian_mcc"]["mean"],
        "shared_fraction": stab["shared_fraction"]["mean"],
        "random_pwmcc": iso["pwmcc"]["mean"],
        "random_hungarian_mcc": iso["hungarian_mcc"]["mean"],
        "explained_variance": checkpoint["explained_variance"]["mean"],
        "l0": checkpoint["l0"]["mean"],
        "cos_to_final": checkpoint["cos_to_final"]["mean"],
        "settled_fraction": checkpoint["settled_fraction"],
        "match_agreement_live": checkpoint["match_agreement_live"],
    }


@stage("dynamics")
def main(
    params: Path = PARAMS_OPTION,
    activations: Path = typer.Option(
        Path("data/domains/modular.safetensors"), help="Activation dataset to train on."
    ),
    metrics: Path = typer.Option(Path("metrics/dynamics.json"), help="Metrics JSON to write."),
    curve: Path = typer.Option(Path("metrics/curves/dynamics.csv"), help="CSV for dvc plots."),
) -> None:
    """Retrain the configurations of params.yaml `dynamics` with checkpoints; stability by step."""
    from husai.dynamics import checkpoint_schedule, train_dynamics
    from husai.sae import SAEConfig

    prm = load_params(params)
    dyn = prm.dynamics
    configs = prm.analysis_configs("dynamics")
    if dyn.seeds is not None:
        configs = {k: dataclasses.replace(hp, seeds=dyn.seeds) for k, hp in configs.items()}
    setup(prm)
    acts = load_activations(activations)
    x = acts.x

    out: dict[str, Any] = {"threshold": dyn.threshold, "configs": {}}
    rows: dict[int, dict[str, Any]] = {}
    with progress() as bar:
        task = bar.add_task("dynamics: configurations", total=len(configs))
        for name, hp in configs.items():
            config = SAEConfig.from_hyperparams(hp, d_in=acts.d_in)
            steps = checkpoint_schedule(config, x.shape[0], dyn.checkpoint_base)
            console.print(
                f"dynamics: {name}: {len(hp.seeds)} seeds, {steps[-1]} steps, {len(steps)} checkpoints"
            )
            bar.update(task, description=f"dynamics: {name}")
            with training(bar, f"  {name}: training steps, checkpoints") as on_progress:
                out["configs"][name] = entry = train_dynamics(
                    config, x, hp.seeds, steps, dyn.threshold, name=name, on_progress=on_progress
                )
            for c in entry["checkpoints"]:
                rows.setdefault(c["step"], {}).update(
                    {f"{name}_{k}": v for k, v in _csv_row(entry, c).items()}
                )
            last = entry["checkpoints"][-1]["stability"]
            console.print(
                f"  {name}: pwmcc {last['pwmcc']['mean']:.3f} (isotropic "
                f"{entry['random']['isotropic']['pwmcc']['mean']:.3f}), shared "
                f"{last['shared_fraction']['mean']:.3f}, median settle step "
                f"{entry['settle']['all']['median']}"
            )
            bar.advance(task)

    columns = ["step"] + [f"{name}_{f}" for name in configs for f in CSV_FIELDS]
    table = [[step] + [rows[step].get(c) for c in columns[1:]] for step in sorted(rows)]
    write_json(metrics, out, DynamicsMetrics)
    write_csv(curve, columns, table)
    console.print(f"dynamics: {len(configs)} configurations -> {metrics}, {curve}")
