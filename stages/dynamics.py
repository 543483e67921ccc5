"""Stage ``dynamics``: stability between seeds over training, and when each latent settles.

Retrains each configuration named in ``dynamics.configs`` (an entry of ``saes``,
with the same hyperparameters and, unless ``dynamics.seeds`` overrides them, the
same seeds, so the last checkpoint is bit for bit the SAE of stage ``saes``) and
measures it at log-spaced checkpoints: steps 0 (initialisation), 1, b, b^2, ...
and the last step (``dynamics.checkpoint_base`` b, default 2). Definitions:
SCIENCE.md sections 4-6 and :mod:`husai.dynamics` (settle steps).

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
             "settled_fraction": 0.12}    # share of latents settled by this step
          ],
          "settle": {                     # settle steps (husai.dynamics.settle_summary),
            "all": SETTLE,                # pooled over every latent of every seed
            "shared": SETTLE,             # latents shared (final step) with a majority of
            "not_shared": SETTLE          # the other seeds (Paulo & Belrose rule) / not
          },
          "final_shared_with_majority": 0.41   # share of latents in "shared"
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
``<config>_settled_fraction``.
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
              "cos_to_final", "settled_fraction")


def _stats(matrices: dict) -> dict[str, dict]:
    from husai.stats import seed_stats

    return {k: seed_stats(m).to_dict() for k, m in matrices.items()
            if not k.startswith("subspace_random")}


def _checkpoint_metrics(sae, x, threshold: float) -> dict[str, Any]:
    """Pairwise stability, per-latent best matches in every other seed and sharing counts."""
    import numpy as np
    import torch

    from husai.geometry import one_thread
    from husai.sae import evaluate

    dec, enc = sae.decoder_atoms(), sae.encoder_atoms()
    n, d_sae = sae.n_seeds, sae.config.d_sae
    matrices: dict[str, np.ndarray] = {}
    matches = torch.zeros(n, d_sae, n - 1, dtype=torch.int64)  # [seed, latent, other seed]
    shared = torch.zeros(n, d_sae, dtype=torch.int64)
    with one_thread():  # small eigh / matching work (husai.geometry.one_thread)
        _pairs(dec, enc, threshold, matrices, matches, shared)
    return {"matrices": matrices, "matches": matches, "shared": shared,
            "eval": evaluate(sae, x), "decoder": dec.clone()}


def _pairs(dec, enc, threshold, matrices, matches, shared) -> None:
    import numpy as np
    import torch

    from husai.stability import DEFAULT_RANKS, best_matches, pair_metrics

    n = dec.shape[0]
    for i in range(n):
        for j in range(i + 1, n):
            m = pair_metrics(dec[i], dec[j], enc[i], enc[j], threshold=threshold,
                             ranks=DEFAULT_RANKS)
            for key, value in m.to_dict().items():
                mat = matrices.setdefault(key, np.full((n, n), np.nan))
                mat[i, j] = mat[j, i] = value
            matches[i, :, j - 1] = m.best_match_a.index
            matches[j, :, i] = best_matches(dec[j], dec[i]).index
            assert m.shared_a is not None and m.decoder_matching is not None
            shared[i] += m.shared_a.to(torch.int64)
            shared[j, m.decoder_matching.partner[m.shared_a]] += 1


@stage("dynamics")
def main(
    params: Path = PARAMS_OPTION,
    activations: Path = typer.Option(Path("data/activations.safetensors"),
                                     help="Activation dataset to train on."),
    metrics: Path = typer.Option(Path("metrics/dynamics.json"), help="Metrics JSON to write."),
    curve: Path = typer.Option(Path("metrics/curves/dynamics.csv"), help="CSV for dvc plots."),
) -> None:
    """Retrain the configurations of params.yaml `dynamics` with checkpoints; stability by step."""
    import torch

    from husai.baselines import isotropic_baseline
    from husai.dynamics import log_checkpoints, settle_steps, settle_summary
    from husai.geometry import one_thread
    from husai.predictors import min_shared
    from husai.sae import SAEConfig, steps_per_epoch, train_saes
    from husai.stability import DEFAULT_RANKS, subspace_random_expectation
    from husai.stats import value_stats

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
        total = steps_per_epoch(x.shape[0], config.batch_size) * config.epochs
        steps = log_checkpoints(total, dyn.checkpoint_base)
        seen: dict[int, dict[str, Any]] = {}

        def on_checkpoint(step: int, sae, seen: dict = seen) -> None:
            seen[step] = _checkpoint_metrics(sae, x, dyn.threshold)

        console.print(f"dynamics: {name}: {len(hp.seeds)} seeds, {total} steps, "
                      f"{len(steps)} checkpoints")
        train_saes(config, x, hp.seeds, checkpoint_steps=steps, on_checkpoint=on_checkpoint)

        n_seeds = len(hp.seeds)
        with one_thread():
            iso = isotropic_baseline(config.d_sae, acts.d_in, hp.seeds, threshold=dyn.threshold)
        iso_stats = _stats(iso)
        final = seen[steps[-1]]
        shared_final = final["shared"] >= min_shared(n_seeds, "majority")  # [S, d_sae]
        matches = torch.stack([seen[s]["matches"] for s in steps])  # [T, S, d_sae, S-1]
        settle = torch.stack([settle_steps(steps, matches[:, i]) for i in range(n_seeds)])
        checkpoints = []
        for step in steps:
            c = seen[step]
            stab = _stats(c["matrices"])
            ev = [e["explained_variance"] for e in c["eval"]]
            cos_final = (c["decoder"] * final["decoder"]).sum(-1).abs().mean(-1).tolist()
            settled = float((settle <= step).to(torch.float64).mean())
            checkpoints.append({
                "step": step,
                "stability": stab,
                "ratio_to_isotropic": {
                    k: (v["mean"] / iso_stats[k]["mean"] if iso_stats[k]["mean"] else None)
                    for k, v in stab.items()},
                "explained_variance": value_stats(ev).to_dict(),
                "l0": value_stats([e["l0"] for e in c["eval"]]).to_dict(),
                "frac_alive": value_stats([e["frac_alive"] for e in c["eval"]]).to_dict(),
                "cos_to_final": value_stats(cos_final).to_dict(),
                "settled_fraction": settled,
            })
            row = rows.setdefault(step, {})
            row |= {f"{name}_pwmcc": stab["pwmcc"]["mean"],
                    f"{name}_pwmcc_ci_low": stab["pwmcc"]["ci_low"],
                    f"{name}_pwmcc_ci_high": stab["pwmcc"]["ci_high"],
                    f"{name}_hungarian_mcc": stab["hungarian_mcc"]["mean"],
                    f"{name}_shared_fraction": stab["shared_fraction"]["mean"],
                    f"{name}_random_pwmcc": iso_stats["pwmcc"]["mean"],
                    f"{name}_random_hungarian_mcc": iso_stats["hungarian_mcc"]["mean"],
                    f"{name}_explained_variance": checkpoints[-1]["explained_variance"]["mean"],
                    f"{name}_l0": checkpoints[-1]["l0"]["mean"],
                    f"{name}_cos_to_final": checkpoints[-1]["cos_to_final"]["mean"],
                    f"{name}_settled_fraction": settled}
        ranks = [r for r in DEFAULT_RANKS if r <= min(config.d_sae, acts.d_in)]
        out["configs"][name] = {
            "architecture": config.architecture,
            "hyperparameters": config.hyperparams(),
            "seeds": list(hp.seeds),
            "d_sae": config.d_sae,
            "d_in": acts.d_in,
            "total_steps": total,
            "checkpoint_steps": steps,
            "random": {"isotropic": iso_stats,
                       "subspace_random": {str(r): v for r, v in
                                           subspace_random_expectation(ranks, acts.d_in).items()}},
            "checkpoints": checkpoints,
            "settle": {"all": settle_summary(settle, steps),
                       "shared": settle_summary(settle[shared_final], steps),
                       "not_shared": settle_summary(settle[~shared_final], steps)},
            "final_shared_with_majority": float(shared_final.to(torch.float64).mean()),
        }
        last = checkpoints[-1]["stability"]
        console.print(f"  {name}: pwmcc {last['pwmcc']['mean']:.3f} (isotropic "
                      f"{iso_stats['pwmcc']['mean']:.3f}), shared "
                      f"{last['shared_fraction']['mean']:.3f}, median settle step "
                      f"{out['configs'][name]['settle']['all']['median']}")

    columns = ["step"] + [f"{name}_{f}" for name in configs for f in CSV_FIELDS]
    table = [[step] + [rows[step].get(c) for c in columns[1:]] for step in sorted(rows)]
    write_json(metrics, out)
    write_csv(curve, columns, table)
    console.print(f"dynamics: {len(configs)} configurations -> {metrics}, {curve}")
