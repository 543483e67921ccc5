"""The per-configuration analysis: stability across seeds, its baselines, and recovery.

One configuration = one :class:`husai.sae.BatchedSAE` holding the SAEs of every seed.
The baseline stages (``stability``, ``recovery``) and every sweep configuration call
the same two functions, so their numbers are computed one way:

* :func:`stability_summary` (SCIENCE.md sections 4-5): pairwise PWMCC, Hungarian
  MCC, shared fraction and subspace overlap of the trained SAEs' atoms over all
  ``n(n-1)/2`` seed pairs, each with mean, std and a seed-bootstrap CI
  (:mod:`husai.stats`), beside two baselines of the same shape:

  - ``random``: isotropic dictionaries, ``husai.baselines.isotropic_dictionary(d_sae,
    d_in, seed)`` for each of the configuration's seeds (tied encoder, the most
    generous random shared fraction). Trained/random ratios resample the two seed
    sets independently (``paired=False``): a random dictionary has no relation to
    the SAE of the same seed.
  - ``untrained``: the same architecture at initialisation at the same seeds
    (``husai.sae.init_saes``); trained/untrained ratios are paired by seed.

* :func:`recovery_summary` (SCIENCE.md section 3): :func:`husai.recovery.recovery_metrics`
  of every seed's SAE on the whole input grid (its random decoder alignment uses an
  isotropic dictionary drawn from the SAE's own seed), and the mean, std and CI over
  seeds of each scalar.

Statistics are :class:`husai.records.Stat` records ``{"mean", "std", "ci": [low, high]
| None, "n_seeds", "n_pairs"}`` (``ci`` is None with fewer than 3 seeds, ``std`` with a
single value), ratios :class:`husai.records.Ratio` records; the layouts of the two
summaries are :class:`husai.records.StabilitySummary` and
:class:`husai.records.RecoverySummary`. ``hungarian=False`` skips the matchings (Hungarian MCC and shared
fraction are then None): they dominate the time for large dictionaries.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from husai.baselines import (
    isotropic_baseline,
    isotropic_pwmcc_expectation,
    subspace_baseline,
)
from husai.fourier import GroundTruth
from husai.records import Ratio, RecoverySummary, StabilitySummary, Stat
from husai.recovery import PURITY_THRESHOLD, recovery_metrics
from husai.sae import BatchedSAE, init_saes
from husai.stability import DEFAULT_RANKS, DEFAULT_THRESHOLD, pairwise_metrics
from husai.stats import (
    BOOT_SEED,
    N_BOOT,
    RatioStats,
    SeedStats,
    ratio_stats,
    seed_stats,
    value_stats,
)

RECOVERY_SCALARS = (
    "pure_latent_fraction",
    "key_frequency_coverage",
    "decoder_alignment",
    "random_decoder_alignment",
)
"""The recovery numbers aggregated over seeds (SCIENCE.md section 3)."""


@dataclass(frozen=True)
class AnalysisOptions:
    """How the analysis runs; the defaults are SCIENCE.md's conventions."""

    ranks: tuple[int, ...] = (
        DEFAULT_RANKS  # subspace overlap ranks (those above min(d_sae, d_in) are dropped)
    )
    shared_threshold: float = DEFAULT_THRESHOLD  # Paulo & Belrose (2025)
    hungarian: bool = True  # Hungarian MCC and shared fraction (trained and baselines)
    n_boot: int = N_BOOT
    boot_seed: int = BOOT_SEED
    purity_threshold: float = PURITY_THRESHOLD
    subspace_variance: float | None = (
        0.99  # data-subspace baseline: span holding this variance share
    )


def stats_dict(s: SeedStats) -> Stat:
    """The :class:`husai.records.Stat` record of a :class:`SeedStats` (its ``to_dict``)."""
    return s.to_dict()


def ratio_dict(r: RatioStats) -> Ratio:
    """The :class:`husai.records.Ratio` record of a :class:`RatioStats` (its ``to_dict``)."""
    return r.to_dict()


def _atoms(sae: BatchedSAE) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    dec, enc = sae.decoder_atoms(), sae.encoder_atoms()
    return [dec[i] for i in range(sae.n_seeds)], [enc[i] for i in range(sae.n_seeds)]


def _pairwise(sae: BatchedSAE, opt: AnalysisOptions) -> dict[str, np.ndarray]:
    dec, enc = _atoms(sae)
    return pairwise_metrics(
        dec, enc, threshold=opt.shared_threshold, ranks=opt.ranks, hungarian=opt.hungarian
    )


def baseline_matrices(
    sae: BatchedSAE,
    options: AnalysisOptions | None = None,
    untrained: BatchedSAE | None = None,
    basis: torch.Tensor | None = None,
) -> dict[str, dict[str, np.ndarray]]:
    """The pairwise metrics of the baselines for ``sae``'s shape and seeds:
    ``{"random": ..., "untrained": ...}`` (``husai.stability.pairwise_metrics`` format),
    plus ``"subspace"``: isotropic atoms inside the span of ``basis`` (orthonormal rows,
    from :func:`husai.baselines.principal_basis` of the activations) when it is given.

    They depend only on the architecture's initialisation, ``d_sae``, ``d_in`` and the
    seeds, so configurations that share those may compute them once and pass them to
    :func:`stability_summary`. ``untrained`` defaults to ``init_saes(sae.config, sae.seeds)``.
    """
    opt = options or AnalysisOptions()
    cfg = sae.config
    if untrained is None:
        untrained = init_saes(cfg, sae.seeds)
    if untrained.seeds != sae.seeds:
        raise ValueError(f"untrained seeds {untrained.seeds} differ from trained {sae.seeds}")
    if (untrained.config.d_sae, untrained.config.d_in) != (cfg.d_sae, cfg.d_in):
        raise ValueError("the untrained SAEs have another shape than the trained ones")
    rand = isotropic_baseline(
        cfg.d_sae,
        cfg.d_in,
        sae.seeds,
        threshold=opt.shared_threshold,
        ranks=opt.ranks,
        hungarian=opt.hungarian,
    )
    out = {"random": rand, "untrained": _pairwise(untrained, opt)}
    if basis is not None:
        out["subspace"] = subspace_baseline(
            cfg.d_sae,
            basis,
            sae.seeds,
            threshold=opt.shared_threshold,
            ranks=opt.ranks,
            hungarian=opt.hungarian,
        )
    return out


def stability_summary(
    sae: BatchedSAE,
    options: AnalysisOptions | None = None,
    untrained: BatchedSAE | None = None,
    baselines: dict[str, dict[str, np.ndarray]] | None = None,
    basis: torch.Tensor | None = None,
) -> StabilitySummary:
    """Stability of one configuration across its seeds, beside its baselines.

    ``untrained`` defaults to ``init_saes(sae.config, sae.seeds)``; ``baselines``, from
    :func:`baseline_matrices` of the same shape, seeds and options, skips recomputing them. Keys:
    ``architecture``, ``d_sae``, ``d_in``, ``seeds``; ``pwmcc``, ``hungarian_mcc``,
    ``shared_fraction`` (stats dicts, the latter two None without matching);
    ``random_pwmcc``, ``random_hungarian_mcc``, ``random_shared_fraction``,
    ``untrained_pwmcc``, ``untrained_hungarian_mcc``, ``untrained_shared_fraction``
    (stats dicts or None); ``random_pwmcc_expected`` (exact isotropic expectation);
    ``pwmcc_ratio_to_random``, ``pwmcc_ratio_to_untrained`` (ratio dicts);
    ``subspace_overlap``: ``{"r": {"trained": stats, "untrained_mean", "random_expectation"}}``;
    ``pair_pwmcc``: the trained ``[n, n]`` PWMCC matrix (None on the diagonal).
    With ``basis`` (or ``baselines`` holding ``"subspace"``) also ``subspace_rank`` and
    ``subspace_random_pwmcc``, ``subspace_random_hungarian_mcc``,
    ``subspace_random_shared_fraction`` (stats dicts) and ``pwmcc_ratio_to_subspace``:
    random atoms confined to the span that holds the activations' variance.
    """
    opt = options or AnalysisOptions()
    n = sae.n_seeds
    if n < 2:
        raise ValueError(f"stability needs at least 2 seeds, got {n}")
    cfg = sae.config
    if baselines is None:
        baselines = baseline_matrices(sae, opt, untrained, basis)
    rand, init = baselines["random"], baselines["untrained"]
    if rand["pwmcc"].shape[0] != n or init["pwmcc"].shape[0] != n:
        raise ValueError(f"baselines for {rand['pwmcc'].shape[0]} seeds, trained SAEs have {n}")
    boot = {"n_boot": opt.n_boot, "seed": opt.boot_seed}
    trained = _pairwise(sae, opt)

    def stat(mats: dict[str, np.ndarray], key: str) -> dict[str, Any] | None:
        return stats_dict(seed_stats(mats[key], **boot)) if key in mats else None

    out: dict[str, Any] = {
        "architecture": cfg.architecture,
        "d_sae": cfg.d_sae,
        "d_in": cfg.d_in,
        "seeds": list(sae.seeds),
    }
    for key in ("pwmcc", "hungarian_mcc", "shared_fraction"):
        out[key] = stat(trained, key)
    for prefix, mats in (("random", rand), ("untrained", init)):
        for key in ("pwmcc", "hungarian_mcc", "shared_fraction"):
            out[f"{prefix}_{key}"] = stat(mats, key)
    out["random_pwmcc_expected"] = isotropic_pwmcc_expectation(cfg.d_sae, cfg.d_in)
    out["pwmcc_ratio_to_random"] = ratio_dict(
        ratio_stats(trained["pwmcc"], rand["pwmcc"], paired=False, **boot)
    )
    out["pwmcc_ratio_to_untrained"] = ratio_dict(
        ratio_stats(trained["pwmcc"], init["pwmcc"], paired=True, **boot)
    )
    sub = baselines.get("subspace")
    if sub is not None:
        out["subspace_rank"] = None if basis is None else int(basis.shape[0])
        for key in ("pwmcc", "hungarian_mcc", "shared_fraction"):
            out[f"subspace_random_{key}"] = stat(sub, key)
        out["pwmcc_ratio_to_subspace"] = ratio_dict(
            ratio_stats(trained["pwmcc"], sub["pwmcc"], paired=False, **boot)
        )
    subspace: dict[str, Any] = {}
    for key in trained:
        if key.startswith("subspace_overlap_r"):
            r = key.removeprefix("subspace_overlap_r")
            subspace[r] = {
                "trained": stat(trained, key),
                "untrained_mean": float(np.nanmean(init[key])),
                "random_expectation": float(np.nanmax(trained[f"subspace_random_r{r}"])),
            }
    out["subspace_overlap"] = subspace
    m = trained["pwmcc"]
    out["pair_pwmcc"] = [[None if i == j else float(m[i, j]) for j in range(n)] for i in range(n)]
    return out


def recovery_summary(
    sae: BatchedSAE,
    x: torch.Tensor,
    ground_truth: GroundTruth,
    key_frequencies: Sequence[int],
    options: AnalysisOptions | None = None,
) -> RecoverySummary:
    """Ground-truth recovery of every seed's SAE on the input grid ``x`` ``[p*p, d_in]``
    (row ``a * p + b``), and the aggregate over seeds.

    Returns ``{"per_seed": {"<seed>": recovery_metrics(...)}, "<scalar>": stats dict
    for each of RECOVERY_SCALARS}``.
    """
    opt = options or AnalysisOptions()
    sae.check_input(x)
    per_seed: dict[str, Any] = {}
    for i, seed in enumerate(sae.seeds):
        one = sae.select(i)
        acts = one.encode(x)[0]
        per_seed[str(seed)] = recovery_metrics(
            acts,
            one.decoder_atoms()[0],
            ground_truth.directions,
            ground_truth.frequency,
            list(key_frequencies),
            gt_energy_share=ground_truth.energy_share,
            purity_threshold=opt.purity_threshold,
            seed=seed,
        )
        del acts
    out: dict[str, Any] = {}
    boot = {"n_boot": opt.n_boot, "seed": opt.boot_seed}
    for key in RECOVERY_SCALARS:
        out[key] = stats_dict(value_stats([per_seed[s][key] for s in per_seed], **boot))
    out["per_seed"] = per_seed
    return out


def analyse(
    sae: BatchedSAE,
    x: torch.Tensor,
    ground_truth: GroundTruth,
    key_frequencies: Sequence[int],
    options: AnalysisOptions | None = None,
) -> dict[str, Any]:
    """``{"stability": stability_summary, "recovery": recovery_summary}`` of one configuration."""
    return {
        "stability": stability_summary(sae, options),
        "recovery": recovery_summary(sae, x, ground_truth, key_frequencies, options),
    }


def live_summary(
    sae: BatchedSAE,
    x: torch.Tensor,
    truth: dict[str, torch.Tensor],
    options: AnalysisOptions | None = None,
) -> dict[str, Any]:
    """Atom stability of one configuration over its live latents, beside the two
    comparisons that decide it on the modular data (SCIENCE.md section 9): random atoms
    of the data subspace, as many as each seed has live latents
    (:func:`husai.groundtruth.live_stability`), and the shift null, the same live atoms
    turned by a random shift of the inputs (:func:`husai.planes.shift_null`; needs
    ``truth["planes"]`` and ``truth["angles"]``, else its keys are None).

    Keys (:class:`husai.records.LiveSummary`; Stat records or None): ``live_pwmcc``,
    ``subspace_live_pwmcc``, ``shift_null_live_pwmcc``, ``live_shared_fraction`` and
    ``shift_null_live_shared_fraction`` (the last two None without ``options.hungarian``); ``n_live`` and
    ``distinct_live`` (Stats over seeds); ``above_shift_null``: the live PWMCC's CI lies
    above the null's CI (None without a null or a CI)."""
    from husai.groundtruth import live_stability, sae_live_masks
    from husai.planes import shift_null

    opt = options or AnalysisOptions()
    lives = sae_live_masks(sae, x)
    dec, enc = sae.decoder_atoms(), sae.encoder_atoms()
    decoders = [dec[i] for i in range(sae.n_seeds)]
    encoders = [enc[i] for i in range(sae.n_seeds)]
    live = live_stability(
        decoders,
        encoders,
        lives,
        x,
        sae.seeds,
        threshold=opt.shared_threshold,
        hungarian=opt.hungarian,
        subspace_variance=opt.subspace_variance,
        n_boot=opt.n_boot,
        boot_seed=opt.boot_seed,
    )
    out: dict[str, Any] = {
        "live_pwmcc": live["live_pwmcc"],
        "subspace_live_pwmcc": live.get("subspace_live_pwmcc"),
        "live_shared_fraction": live["live_shared_fraction"],
        "n_live": live["n_live"],
        "distinct_live": live["distinct_live"],
        "shift_null_live_pwmcc": None,
        "shift_null_live_shared_fraction": None,
        "above_shift_null": None,
    }
    if "planes" in truth and "angles" in truth:
        null = shift_null(
            decoders,
            encoders,
            lives,
            truth["planes"],
            torch.as_tensor(truth["angles"]).to(torch.float64),
            sae.seeds,
            threshold=opt.shared_threshold,
            hungarian=opt.hungarian,
        )
        boot = {"n_boot": opt.n_boot, "seed": opt.boot_seed}
        out["shift_null_live_pwmcc"] = stats_dict(seed_stats(null["pwmcc"], **boot))
        if "shared_fraction" in null:
            out["shift_null_live_shared_fraction"] = stats_dict(
                seed_stats(null["shared_fraction"], **boot)
            )
        ci, null_ci = out["live_pwmcc"]["ci"], out["shift_null_live_pwmcc"]["ci"]
        if ci is not None and null_ci is not None:
            out["above_shift_null"] = bool(ci[0] > null_ci[1])
    return out
