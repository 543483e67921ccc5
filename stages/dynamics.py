"""Stage ``dynamics``: stability between seeds over training, and when each latent settles.

Retrains each configuration named in ``dynamics.configs`` (an entry of ``saes``,
with the same hyperparameters and, unless ``dynamics.seeds`` overrides them, the
same seeds, so the last checkpoint is bit for bit the SAE of stage ``saes``) and
measures it at log-spaced checkpoints: steps 0 (initialisation), 1, b, b^2, ...
and the last step (``dynamics.checkpoint_base`` b, default 2), by
:func:`husai.dynamics.train_dynamics`. Definitions: SCIENCE.md sections 4-6 and
:mod:`husai.dynamics` (settle steps, the per-checkpoint measures).

``metrics/dynamics.json``::

    {
      "threshold": 0.7,                  # Paulo & Belrose cosine threshold (|cos|)
      "configs": {
        "<config>": {
          "architecture": "topk", "hyperparameters": {...}, "seeds": [42, ...],
          "d_sae": 1024, "d_in": 128, "total_steps": 1000,
          "checkpoint_steps": [0, 1, 2, ..., 1000],
          "random": {                     # isotropic dictionaries of the same shape,
            "isotropic": {"<metric>": STATS, ...},   # one per seed (husai.baselines)
            "subspace_random": {"<r>": r / d_in, ...}
          },
          "checkpoints": [                # one per checkpoint, in step order
            {"step": 0,
             "stability": {"<metric>": STATS, ...},
             "ratio_to_isotropic": {"<metric>": float | null},  # trained mean / isotropic mean
             "explained_variance": VSTATS, "l0": VSTATS, "frac_alive": VSTATS,
             "cos_to_final": VSTATS,      # mean over latents of |cos(atom at step, same
                                          # latent's atom at the last step)|, per seed
             "settled_fraction": 0.12,    # share of latents settled by this step
             "match_agreement_live": 0.6} # share of (live latent, other seed) pairs whose
                                          # best match here is already the final one
          ],
          "settle": {                     # settle steps (husai.dynamics.settle_summary) of
                                          # latents, the match being the tuple of best
                                          # matches in every other seed (strict):
            "all": SETTLE,                # every latent of every seed
            "live": SETTLE,               # latents live at the last step
            "shared": SETTLE,             # shared at the last step with a majority of the
                                          # other seeds (Paulo & Belrose rule)
            "not_shared_live": SETTLE     # live but not shared
          },
          "settle_per_pair": {            # the same per (latent, other seed) pair: when the
            "all": SETTLE, "live": SETTLE, "shared": SETTLE   # best match in that one seed settles
          },
          "final_live": 0.29,             # share of latents live at the last step
          "final_shared_with_majority": 0.03   # share of latents in "shared"
        }
      }
    }

``<metric>``: ``pwmcc``, ``hungarian_mcc``, ``shared_fraction``,
``subspace_overlap_r<r>`` (r in 4, 8, 16, 32, 64 up to min(d_sae, d_in)). At step 0
the stability entry *is* the untrained baseline (SCIENCE.md section 5).
STATS: :meth:`husai.stats.SeedStats.to_dict` over the seed pairs (``mean``, ``std``,
``ci_low``, ``ci_high`` (seed bootstrap, None below 3 seeds), ``n_seeds``,
``n_pairs``); VSTATS: the same over per-seed values (``n_pairs`` None).
SETTLE: ``n_latents``, ``median``, ``quantiles`` ({"0.1": step, "0.25", "0.5", "0.75",
"0.9"}), ``mean_log2_step``, ``fraction_settled_by_step`` ({"<step>": share}).

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

from stages._artifacts import load_activations
from stages._common import PARAMS_OPTION, console, load_params, setup, stage, write_csv, write_json

CSV_FIELDS = ("pwmcc", "pwmcc_ci_low", "pwmcc_ci_high", "hungarian_mcc", "shared_fraction",
              "random_pwmcc", "random_hungarian_mcc", "explained_variance", "l0",
              "cos_to_final", "settled_fraction", "match_agreement_live")


def _csv_row(entry: dict[str, Any], checkpoint: dict[str, Any]) -> dict[str, Any]:
    """The :data:`CSV_FIELDS` of one checkpoint of a configuration's JSON entry."""
    stab, iso = checkpoint["stability"], entry["random"]["isotropic"]
    return {"pwmcc": stab["pwmcc"]["mean"],
            "pwmcc_ci_low": stab["pwmcc"]["ci_low"],
            "pwmcc_ci_high": stab["pwmcc"]["ci_high"],
            "hungarian_mcc": stab["hungarian_mcc"]["mean"],
            "shared_fraction": stab["shared_fraction"]["mean"],
            "random_pwmcc": iso["pwmcc"]["mean"],
            "random_hungarian_mcc": iso["hungarian_mcc"]["mean"],
            "explained_variance": checkpoint["explained_variance"]["mean"],
            "l0": checkpoint["l0"]["mean"],
            "cos_to_final": checkpoint["cos_to_final"]["mean"],
            "settled_fraction": checkpoint["settled_fraction"],
            "match_agreement_live": checkpoint["match_agreement_live"]}


@stage("dynamics")
def main(
    params: Path = PARAMS_OPTION,
    activations: Path = typer.Option(Path("data/activations.safetensors"),
                                     help="Activation dataset to train on."),
    metrics: Path = typer.Option(Path("metrics/dynamics.json"), help="Metrics JSON to write."),
    curve: Path = typer.Option(Path("metrics/curves/dynamics.csv"), help="CSV for dvc plots."),
) -> None:
    """Retrain the configurations of params.yaml `dynamics` with checkpoints; stability by step."""
    from husai.dynamics import checkpoint_schedule, train_dynamics
    from husai.sae import SAEConfig

    prm = load_params(params)
    dyn = prm.dynamics
    configs = prm.analysis_configs("dynamics", min_seeds=2 if dyn.seeds is None else 1)
    if dyn.seeds is not None:
        configs = {k: dataclasses.replace(hp, seeds=dyn.seeds) for k, hp in configs.items()}
    setup(prm)
    acts = load_activations(activations)
    x = acts.x

    out: dict[str, Any] = {"threshold": dyn.threshold, "configs": {}}
    rows: dict[int, dict[str, Any]] = {}
    for name, hp in configs.items():
        config = SAEConfig.from_hyperparams(hp, d_in=acts.d_in)
        steps = checkpoint_schedule(config, x.shape[0], dyn.checkpoint_base)
        console.print(f"dynamics: {name}: {len(hp.seeds)} seeds, {steps[-1]} steps, "
                      f"{len(steps)} checkpoints")
        out["configs"][name] = entry = train_dynamics(config, x, hp.seeds, steps, dyn.threshold,
                                                        name=name)
        for c in entry["checkpoints"]:
            rows.setdefault(c["step"], {}).update(
                {f"{name}_{k}": v for k, v in _csv_row(entry, c).items()})
        last = entry["checkpoints"][-1]["stability"]
        console.print(f"  {name}: pwmcc {last['pwmcc']['mean']:.3f} (isotropic "
                      f"{entry['random']['isotropic']['pwmcc']['mean']:.3f}), shared "
                      f"{last['shared_fraction']['mean']:.3f}, median settle step "
                      f"{entry['settle']['all']['median']}")

    columns = ["step"] + [f"{name}_{f}" for name in configs for f in CSV_FIELDS]
    table = [[step] + [rows[step].get(c) for c in columns[1:]] for step in sorted(rows)]
    write_json(metrics, out)
    write_csv(curve, columns, table)
    console.print(f"dynamics: {len(configs)} configurations -> {metrics}, {curve}")
