"""The identifiability map: where does cross-seed stability mean ground-truth recovery?

Each cell of the map is planted-feature data (husai.domains.synthetic_domain, SAELens's
generator) at one superposition level (features / d_in), an SAE width (d_sae /
features) and a sparsity (k / true L0, or a penalty level), trained at every seed to the
convergence criterion. Per cell this module measures reconstruction, cross-seed
stability over all atoms and over live atoms, and recovery of the planted features;
across cells :func:`husai.groundtruth.stability_predicts_recovery` asks whether the
stability one can measure without ground truth predicts the recovery one cannot.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from husai.config import IdentifiabilityParams, SyntheticParams
from husai.domains import DomainData, synthetic_domain
from husai.groundtruth import live_stability, sae_live_masks, truth_summary
from husai.sae import BatchedSAE
from husai.stability import pairwise_metrics
from husai.stats import seed_stats

STABILITY_MEASURES = ("pwmcc", "shared_fraction", "live_pwmcc", "live_hungarian_mcc")
"""The cross-seed numbers tested as predictors of recovery (one needs no ground truth)."""

RECOVERY_MEASURES = ("mcc", "recovered_fraction")
"""The ground-truth numbers they should predict (husai.groundtruth.feature_recovery)."""


def map_data(params: IdentifiabilityParams, superposition: int) -> DomainData:
    """The planted-feature data of one superposition level: ``superposition * d_in``
    features with true L0 ``params.l0`` (constant firing, SAELens defaults otherwise)."""
    spec = SyntheticParams(
        seed=params.seed,
        n=params.n,
        d_in=params.d_in,
        n_features=superposition * params.d_in,
        l0=params.l0,
    )
    return synthetic_domain(spec)


def _mean(values: list[float]) -> float:
    return float(np.mean(values))


def cell_metrics(
    sae: BatchedSAE,
    final_metrics: list[dict[str, float]],
    data: DomainData,
    *,
    threshold: float,
    n_boot: int,
    boot_seed: int,
) -> dict[str, Any]:
    """One trained cell: mean EV / L0 / live share over seeds, cross-seed stability over
    all atoms (PWMCC, Hungarian MCC, shared fraction as Stat records) and over live
    atoms (:func:`husai.groundtruth.live_stability`, with its count-matched isotropic
    and data baselines), and ground-truth recovery of the planted features over live
    atoms (:func:`husai.groundtruth.truth_summary`)."""
    n = sae.n_seeds
    dec, enc = sae.decoder_atoms(), sae.encoder_atoms()
    decs, encs = [dec[i] for i in range(n)], [enc[i] for i in range(n)]
    boot = {"n_boot": n_boot, "seed": boot_seed}
    every = pairwise_metrics(decs, encs, threshold=threshold, ranks=())
    lives = sae_live_masks(sae, data.x)
    live = live_stability(
        decs,
        encs,
        lives,
        data.x,
        sae.seeds,
        threshold=threshold,
        subspace_variance=None,
        n_boot=n_boot,
        boot_seed=boot_seed,
    )
    truth = truth_summary(decs, lives, data.truth, sae.seeds, n_boot=n_boot, boot_seed=boot_seed)
    assert truth is not None  # planted features
    return {
        "explained_variance": _mean([m["explained_variance"] for m in final_metrics]),
        "l0": _mean([m["l0"] for m in final_metrics]),
        "frac_alive": _mean([m["frac_alive"] for m in final_metrics]),
        "pwmcc": seed_stats(every["pwmcc"], **boot).to_dict(),
        "hungarian_mcc": seed_stats(every["hungarian_mcc"], **boot).to_dict(),
        "shared_fraction": seed_stats(every["shared_fraction"], **boot).to_dict(),
        "live": live,
        "ground_truth": truth,
    }


def cell_row(cell: dict[str, Any]) -> dict[str, float | None]:
    """The scalars of a cell that the map's analysis uses: stability measures
    (:data:`STABILITY_MEASURES`) and recovery measures (:data:`RECOVERY_MEASURES`)."""
    live = cell["metrics"]["live"]
    gt = cell["metrics"]["ground_truth"]

    def mean(stat: dict | None) -> float | None:
        return None if stat is None else stat["mean"]

    return {
        "pwmcc": mean(cell["metrics"]["pwmcc"]),
        "shared_fraction": mean(cell["metrics"]["shared_fraction"]),
        "live_pwmcc": mean(live["live_pwmcc"]),
        "live_hungarian_mcc": mean(live["live_hungarian_mcc"]),
        "mcc": mean(gt["mcc"]),
        "recovered_fraction": mean(gt["recovered_fraction"]),
    }
