"""Statistics of a pairwise metric over n seeds (SCIENCE.md section 4).

Input: an ``[n, n]`` matrix of a metric between seeds (the
:func:`husai.stability.pairwise_metrics` format); only the ``n(n-1)/2`` entries
above the diagonal are read.

Conventions
-----------
* Mean and standard deviation over the ``n(n-1)/2`` pairs; the standard
  deviation is the sample one (``ddof=1``), undefined (None) for a single pair.
* Confidence interval: percentile bootstrap (Efron) that resamples *seeds*, not
  pairs, because pairs sharing a seed are not independent. One resample draws n
  seed indices with replacement; its statistic is the mean over all pairs of
  resampled positions ``k < l`` whose seeds differ (a seed is never paired with
  itself; a seed drawn twice enters its pairs twice). Resamples with a single
  distinct seed have no pair and are dropped. ``B = 1000`` resamples, 95%
  interval from the 2.5% and 97.5% quantiles (numpy's linear interpolation),
  indices drawn from ``husai.determinism.generator(seed)`` so the interval is
  reproducible. Needs ``n >= 3`` seeds (with 2 every resample repeats the one
  pair); otherwise the interval is None.
* Trained / baseline: the ratio of the two means, and their difference. Their
  intervals apply the *same* seed resamples to both matrices (``paired=True``,
  for a baseline computed at the same seeds, e.g. the untrained SAEs that the
  trained ones start from); ``paired=False`` resamples each independently (the
  baseline's resamples drawn from ``seed + 1``), for baselines with other seeds. The ratio is None where the baseline mean is 0.

JSON form: every statistic is written as the :class:`husai.records.Stat` record
(:meth:`SeedStats.to_dict`, :func:`pair_stats`, :func:`per_seed_stats`) and every
ratio as the :class:`husai.records.Ratio` record (:meth:`RatioStats.to_dict`); an
interval is ``"ci": [low, high]``, or None when either bound is undefined.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from husai.determinism import generator
from husai.records import Ratio, Stat

N_BOOT = 1000
LEVEL = 0.95
BOOT_SEED = 0


def _finite(x: float | None) -> float | None:
    return float(x) if x is not None and math.isfinite(x) else None


def _check(matrix: np.ndarray, name: str = "pair matrix") -> np.ndarray:
    m = np.asarray(matrix, dtype=np.float64)
    if m.ndim != 2 or m.shape[0] != m.shape[1] or m.shape[0] < 2:
        raise ValueError(f"{name}: expected an [n, n] matrix with n >= 2, got {m.shape}")
    upper = m[np.triu_indices(m.shape[0], k=1)]
    if not np.all(np.isfinite(upper)):
        raise ValueError(f"{name}: every pair i < j needs a finite value")
    return m


def pair_values(matrix: np.ndarray) -> np.ndarray:
    """The ``n(n-1)/2`` values above the diagonal, in row-major order."""
    m = _check(matrix)
    return m[np.triu_indices(m.shape[0], k=1)]


def seed_resamples(n_seeds: int, n_boot: int = N_BOOT, seed: int = BOOT_SEED) -> np.ndarray:
    """``[n_boot, n_seeds]`` seed indices drawn with replacement (reproducible)."""
    idx = torch.randint(0, n_seeds, (n_boot, n_seeds), generator=generator(seed))
    return idx.numpy()


def resampled_means(matrix: np.ndarray, resamples: np.ndarray) -> np.ndarray:
    """The pair mean of each seed resample (module docstring): ``[n_boot]``, NaN
    for a resample with no pair of distinct seeds."""
    m = _check(matrix)
    full = np.triu(m, k=1)
    full = full + full.T  # symmetric, zero diagonal (never read)
    n = m.shape[0]
    vals = full[resamples[:, :, None], resamples[:, None, :]]  # [B, n, n]
    upper = np.triu(np.ones((n, n), dtype=bool), k=1)
    mask = upper[None] & (resamples[:, :, None] != resamples[:, None, :])
    count = mask.sum(axis=(1, 2))
    total = np.where(mask, vals, 0.0).sum(axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def _pair(lo: float | None, hi: float | None) -> list[float] | None:
    """``[lo, hi]`` of an interval (a :data:`husai.records.CI`), None when either bound
    is undefined."""
    return None if lo is None or hi is None else [lo, hi]


def _interval(samples: np.ndarray, level: float) -> tuple[float | None, float | None]:
    s = samples[~np.isnan(samples)]
    if len(s) == 0:
        return None, None
    alpha = (1.0 - level) / 2
    lo, hi = np.quantile(s, [alpha, 1.0 - alpha])
    return _finite(lo), _finite(hi)


@dataclass(frozen=True)
class SeedStats:
    """A metric's mean over the pairs of n seeds, with its spread and bootstrap CI."""

    mean: float
    std: float | None
    ci_low: float | None
    ci_high: float | None
    n_seeds: int
    n_pairs: int | None  # None for a per-seed quantity (:func:`value_stats`)

    def to_dict(self) -> Stat:
        """The :class:`husai.records.Stat` record ``{"mean", "std", "ci": [low, high] | None,
        "n_seeds", "n_pairs"}``, JSON-ready."""
        return {
            "mean": self.mean,
            "std": self.std,
            "ci": _pair(self.ci_low, self.ci_high),
            "n_seeds": self.n_seeds,
            "n_pairs": self.n_pairs,
        }


def seed_stats(
    matrix: np.ndarray, *, n_boot: int = N_BOOT, level: float = LEVEL, seed: int = BOOT_SEED
) -> SeedStats:
    """Mean, sample std and seed-bootstrap CI of a pairwise metric (module docstring)."""
    m = _check(matrix)
    n = m.shape[0]
    values = pair_values(m)
    lo = hi = None
    if n >= 3:
        lo, hi = _interval(resampled_means(m, seed_resamples(n, n_boot, seed)), level)
    return SeedStats(
        mean=float(values.mean()),
        std=float(values.std(ddof=1)) if len(values) > 1 else None,
        ci_low=lo,
        ci_high=hi,
        n_seeds=n,
        n_pairs=len(values),
    )


def seed_stats_all(
    matrices: dict[str, np.ndarray],
    *,
    n_boot: int = N_BOOT,
    level: float = LEVEL,
    seed: int = BOOT_SEED,
) -> dict[str, SeedStats]:
    """:func:`seed_stats` of every metric of :func:`husai.stability.pairwise_metrics`."""
    return {k: seed_stats(m, n_boot=n_boot, level=level, seed=seed) for k, m in matrices.items()}


def value_stats(
    values: np.ndarray | list[float],
    *,
    n_boot: int = N_BOOT,
    level: float = LEVEL,
    seed: int = BOOT_SEED,
) -> SeedStats:
    """Mean, sample std and percentile-bootstrap CI of a per-SAE quantity over n seeds
    (e.g. a recovery metric): one value per seed, so the bootstrap resamples the
    values themselves. ``n_pairs`` is None; the CI needs ``n >= 3``."""
    v = np.asarray(values, dtype=np.float64).flatten()
    if len(v) == 0 or not np.all(np.isfinite(v)):
        raise ValueError(f"need at least one finite value per seed, got {v.tolist()}")
    lo = hi = None
    if len(v) >= 3:
        lo, hi = _interval(v[seed_resamples(len(v), n_boot, seed)].mean(axis=1), level)
    return SeedStats(
        mean=float(v.mean()),
        std=float(v.std(ddof=1)) if len(v) > 1 else None,
        ci_low=lo,
        ci_high=hi,
        n_seeds=len(v),
        n_pairs=None,
    )


@dataclass(frozen=True)
class RatioStats:
    """Trained versus baseline: ratio and difference of the pair means, with CIs."""

    ratio: float | None
    ratio_ci_low: float | None
    ratio_ci_high: float | None
    difference: float
    difference_ci_low: float | None
    difference_ci_high: float | None
    trained_mean: float
    baseline_mean: float
    n_seeds: int
    n_baseline_seeds: int
    paired: bool

    def to_dict(self) -> Ratio:
        """The :class:`husai.records.Ratio` record ``{"ratio", "ci", "difference",
        "difference_ci", "paired"}``, JSON-ready (None where undefined)."""
        return {
            "ratio": self.ratio,
            "ci": _pair(self.ratio_ci_low, self.ratio_ci_high),
            "difference": self.difference,
            "difference_ci": _pair(self.difference_ci_low, self.difference_ci_high),
            "paired": self.paired,
        }


def ratio_stats(
    trained: np.ndarray,
    baseline: np.ndarray,
    *,
    paired: bool = True,
    n_boot: int = N_BOOT,
    level: float = LEVEL,
    seed: int = BOOT_SEED,
) -> RatioStats:
    """``mean(trained) / mean(baseline)`` and ``mean(trained) - mean(baseline)``
    with seed-bootstrap CIs (module docstring). ``paired`` needs the same number
    of seeds in both, seed i of the baseline belonging with seed i of the trained."""
    t, b = _check(trained, "trained"), _check(baseline, "baseline")
    nt, nb = t.shape[0], b.shape[0]
    if paired and nt != nb:
        raise ValueError(f"paired needs the same seeds: {nt} trained vs {nb} baseline")
    mt, mb = float(pair_values(t).mean()), float(pair_values(b).mean())
    ratio = mt / mb if mb != 0 else None
    r_lo = r_hi = d_lo = d_hi = None
    if nt >= 3 and nb >= 3:
        rs_t = seed_resamples(nt, n_boot, seed)
        rs_b = rs_t if paired else seed_resamples(nb, n_boot, seed + 1)
        bt, bb = resampled_means(t, rs_t), resampled_means(b, rs_b)
        keep = ~(np.isnan(bt) | np.isnan(bb))
        bt, bb = bt[keep], bb[keep]
        d_lo, d_hi = _interval(bt - bb, level)
        if ratio is not None:
            with np.errstate(divide="ignore", invalid="ignore"):
                r = np.where(bb != 0, bt / np.where(bb != 0, bb, 1.0), np.inf)
            r_lo, r_hi = _interval(r, level)
    return RatioStats(
        ratio=_finite(ratio),
        ratio_ci_low=r_lo,
        ratio_ci_high=r_hi,
        difference=mt - mb,
        difference_ci_low=d_lo,
        difference_ci_high=d_hi,
        trained_mean=mt,
        baseline_mean=mb,
        n_seeds=nt,
        n_baseline_seeds=nb,
        paired=paired,
    )


def ratio_stats_all(
    trained: dict[str, np.ndarray],
    baseline: dict[str, np.ndarray],
    *,
    paired: bool = True,
    n_boot: int = N_BOOT,
    level: float = LEVEL,
    seed: int = BOOT_SEED,
) -> dict[str, RatioStats]:
    """:func:`ratio_stats` of every metric present in both ``trained`` and ``baseline``
    (the expectations ``subspace_random_r*`` are constants, not measurements, and
    are skipped)."""
    keys = [k for k in trained if k in baseline and not k.startswith("subspace_random")]
    return {
        k: ratio_stats(
            trained[k], baseline[k], paired=paired, n_boot=n_boot, level=level, seed=seed
        )
        for k in keys
    }


# ----------------------------------------------------------------------------- partial pairs


def pair_matrix(n: int) -> np.ndarray:
    """An ``[n, n]`` matrix of NaN, to fill pair by pair (``m[i, j] = m[j, i] = v``)."""
    return np.full((n, n), np.nan)


def pair_stats(matrix: np.ndarray, *, n_boot: int = N_BOOT, seed: int = BOOT_SEED) -> Stat:
    """:func:`seed_stats` of an ``[n, n]`` pair matrix as a Stat record, tolerating undefined
    pairs.

    When every pair above the diagonal is finite: ``seed_stats(matrix).to_dict()``.
    Otherwise (some pairs NaN, e.g. an empty atom group): the mean and sample std of
    the defined pairs (None for none, std None for one), no interval (``ci`` None: the
    seed bootstrap needs every pair), ``n_seeds`` n and
    ``n_pairs`` the number of defined pairs.
    """
    m = np.asarray(matrix, dtype=np.float64)
    n = m.shape[0]
    values = m[np.triu_indices(n, k=1)]
    ok = np.isfinite(values)
    if ok.all():
        return seed_stats(m, n_boot=n_boot, seed=seed).to_dict()
    v = values[ok]
    return {
        "mean": float(v.mean()) if len(v) else None,
        "std": float(v.std(ddof=1)) if len(v) > 1 else None,
        "ci": None,
        "n_seeds": n,
        "n_pairs": len(v),
    }


def per_seed_stats(
    values: Sequence[float | None], *, n_boot: int = N_BOOT, seed: int = BOOT_SEED
) -> Stat:
    """:func:`value_stats` of per-seed values as a Stat record, skipping undefined ones
    (None or not finite); every entry None and ``n_seeds`` 0 when none is defined."""
    v = [float(x) for x in values if x is not None and np.isfinite(x)]
    if not v:
        return {"mean": None, "std": None, "ci": None, "n_seeds": 0, "n_pairs": None}
    return value_stats(v, n_boot=n_boot, seed=seed).to_dict()
