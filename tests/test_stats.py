"""Seed statistics: hand-computed cases, bootstrap behaviour, trained/baseline ratios."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from husai import stats
from husai.records import Ratio, Stat, validate


def pair_matrix(n: int, values: dict[tuple[int, int], float]) -> np.ndarray:
    m = np.full((n, n), np.nan)
    for (i, j), v in values.items():
        m[i, j] = m[j, i] = v
    return m


HAND = pair_matrix(3, {(0, 1): 0.2, (0, 2): 0.3, (1, 2): 0.4})


def synthetic(n: int, seed: int, mu: float = 0.5, seed_sd: float = 0.05, pair_sd: float = 0.02):
    """Pair values with a per-seed effect: v_ij = mu + u_i + u_j + e_ij."""
    g = torch.Generator().manual_seed(seed)
    u = torch.randn(n, generator=g, dtype=torch.float64) * seed_sd
    e = torch.randn(n, n, generator=g, dtype=torch.float64) * pair_sd
    m = (mu + u[:, None] + u[None, :] + e).numpy()
    m = np.triu(m, 1) + np.triu(m, 1).T
    np.fill_diagonal(m, np.nan)
    return m


def test_three_seeds_by_hand() -> None:
    s = stats.seed_stats(HAND)
    assert s.mean == pytest.approx(0.3, abs=1e-15)
    # sample std of (0.2, 0.3, 0.4): sqrt((0.01 + 0 + 0.01) / 2) = 0.1
    assert s.std == pytest.approx(0.1, abs=1e-15)
    assert (s.n_seeds, s.n_pairs) == (3, 3)
    # every resample's mean is a mean of the three values: the CI lies in [0.2, 0.4]
    assert s.ci_low is not None and s.ci_high is not None
    assert 0.2 <= s.ci_low <= 0.3 <= s.ci_high <= 0.4
    assert s.to_dict() == {
        "mean": s.mean,
        "std": s.std,
        "ci": [s.ci_low, s.ci_high],
        "n_seeds": 3,
        "n_pairs": 3,
    }  # the husai.records.Stat record
    assert list(s.to_dict()) == ["mean", "std", "ci", "n_seeds", "n_pairs"]
    validate(s.to_dict(), Stat)
    json.dumps(s.to_dict(), allow_nan=False)


def test_resampled_means_by_hand() -> None:
    resamples = np.array([[0, 1, 2], [0, 0, 1], [1, 2, 2], [2, 2, 2], [0, 2, 0]])
    got = stats.resampled_means(HAND, resamples)
    # [0,1,2]: all three pairs. [0,0,1]: (0,0) skipped, (0,1) twice -> 0.2.
    # [1,2,2]: (1,2) twice, (2,2) skipped -> 0.4. [2,2,2]: no pair. [0,2,0]: (0,2), (2,0) -> 0.3.
    assert got[[0, 1, 2, 4]] == pytest.approx([0.3, 0.2, 0.4, 0.3], abs=1e-15)
    assert np.isnan(got[3])


def test_bootstrap_is_reproducible_and_resamples_seeds() -> None:
    m = synthetic(6, 0)
    assert stats.seed_stats(m) == stats.seed_stats(m)
    assert stats.seed_stats(m, seed=1) != stats.seed_stats(m)
    r = stats.seed_resamples(6, 1000, 0)
    assert r.shape == (1000, 6) and r.min() == 0 and r.max() == 5


def test_ci_contains_mean_and_shrinks_with_more_seeds() -> None:
    widths = {}
    for n in (4, 8, 32):
        w = []
        for rep in range(3):
            s = stats.seed_stats(synthetic(n, 100 * n + rep))
            assert s.ci_low is not None and s.ci_high is not None
            assert s.ci_low <= s.mean <= s.ci_high
            w.append(s.ci_high - s.ci_low)
        widths[n] = float(np.mean(w))
    assert widths[32] < widths[8] < widths[4]
    # a seed effect of sd 0.05 gives the mean a standard error of about 2 * 0.05 / sqrt(n):
    # the 95% interval at 32 seeds is roughly 4 * 0.0177 wide
    assert widths[32] == pytest.approx(4 * 2 * 0.05 / np.sqrt(32), rel=0.5)


def test_two_seeds_have_no_spread_or_interval() -> None:
    s = stats.seed_stats(pair_matrix(2, {(0, 1): 0.7}))
    assert (s.mean, s.std, s.ci_low, s.ci_high, s.n_pairs) == (0.7, None, None, None, 1)
    assert s.to_dict() == {"mean": 0.7, "std": None, "ci": None, "n_seeds": 2, "n_pairs": 1}
    validate(s.to_dict(), Stat)
    json.dumps(s.to_dict(), allow_nan=False)


def test_bad_pair_matrices_are_rejected() -> None:
    with pytest.raises(ValueError, match="finite"):
        stats.seed_stats(pair_matrix(3, {(0, 1): 0.2, (0, 2): 0.3}))
    with pytest.raises(ValueError, match=r"\[n, n\]"):
        stats.seed_stats(np.zeros((3, 2)))


def test_ratio_by_hand_and_pairing() -> None:
    base = synthetic(5, 7, mu=0.3)
    trained = 2.0 * base  # seed by seed twice the baseline
    r = stats.ratio_stats(trained, base)
    assert r.ratio == pytest.approx(2.0, abs=1e-12)
    assert r.difference == pytest.approx(float(stats.pair_values(base).mean()), abs=1e-12)
    # paired resamples see the same seeds in both: every resampled ratio is exactly 2
    assert r.ratio_ci_low == pytest.approx(2.0, abs=1e-12)
    assert r.ratio_ci_high == pytest.approx(2.0, abs=1e-12)
    assert r.paired and r.n_seeds == r.n_baseline_seeds == 5
    # unpaired resamples do not: the interval opens up around 2
    u = stats.ratio_stats(trained, base, paired=False)
    assert u.ratio == r.ratio
    assert u.ratio_ci_low is not None and u.ratio_ci_high is not None
    assert u.ratio_ci_low < 2.0 < u.ratio_ci_high
    assert u.to_dict() == {
        "ratio": u.ratio,
        "ci": [u.ratio_ci_low, u.ratio_ci_high],
        "difference": u.difference,
        "difference_ci": [u.difference_ci_low, u.difference_ci_high],
        "paired": False,
    }  # the husai.records.Ratio record
    validate(u.to_dict(), Ratio)
    json.dumps(r.to_dict(), allow_nan=False)


def test_ratio_with_zero_baseline_and_unequal_seeds() -> None:
    trained = synthetic(4, 3)
    zero = np.zeros((4, 4))
    r = stats.ratio_stats(trained, zero)
    assert r.ratio is None and r.ratio_ci_low is None and r.ratio_ci_high is None
    assert r.difference == pytest.approx(r.trained_mean)
    assert r.difference_ci_low is not None and r.difference_ci_low > 0
    assert r.to_dict()["ratio"] is None and r.to_dict()["ci"] is None
    validate(r.to_dict(), Ratio)
    json.dumps(r.to_dict(), allow_nan=False)
    with pytest.raises(ValueError, match="paired"):
        stats.ratio_stats(trained, synthetic(5, 4))
    assert stats.ratio_stats(trained, synthetic(5, 4), paired=False).n_baseline_seeds == 5


def test_value_stats_per_seed_quantity() -> None:
    s = stats.value_stats([0.5, 0.7, 0.9])
    assert s.mean == pytest.approx(0.7) and s.std == pytest.approx(0.2)
    assert s.n_seeds == 3 and s.n_pairs is None
    assert s.ci_low is not None and s.ci_high is not None
    assert 0.5 <= s.ci_low <= 0.7 <= s.ci_high <= 0.9
    one = stats.value_stats([0.4])
    assert (one.mean, one.std, one.ci_low) == (0.4, None, None)
    assert s.to_dict()["ci"] == [s.ci_low, s.ci_high] and s.to_dict()["n_pairs"] is None
    assert one.to_dict() == {"mean": 0.4, "std": None, "ci": None, "n_seeds": 1, "n_pairs": None}
    for d in (s.to_dict(), one.to_dict()):
        validate(d, Stat)
    json.dumps(s.to_dict(), allow_nan=False)


def test_all_metrics_helpers() -> None:
    trained = {"pwmcc": synthetic(4, 1, mu=0.6), "subspace_random_r4": np.full((4, 4), 0.03)}
    base = {"pwmcc": synthetic(4, 2, mu=0.3), "subspace_random_r4": np.full((4, 4), 0.03)}
    summary = stats.seed_stats_all(trained)
    assert set(summary) == {"pwmcc", "subspace_random_r4"}
    assert summary["pwmcc"] == stats.seed_stats(trained["pwmcc"])
    ratios = stats.ratio_stats_all(trained, base)
    assert set(ratios) == {"pwmcc"}
    assert ratios["pwmcc"].ratio == pytest.approx(2.0, rel=0.3)


def test_pair_matrix_is_all_undefined() -> None:
    m = stats.pair_matrix(3)
    assert m.shape == (3, 3) and np.isnan(m).all()


def test_pair_stats_with_every_pair_is_seed_stats() -> None:
    assert stats.pair_stats(HAND) == stats.seed_stats(HAND).to_dict()
    assert stats.pair_stats(HAND)["ci"] is not None and len(stats.pair_stats(HAND)["ci"]) == 2


def test_pair_stats_with_undefined_pairs_by_hand() -> None:
    # (0, 1) undefined: mean and sample std of 0.3 and 0.5, no interval
    s = stats.pair_stats(pair_matrix(3, {(0, 1): np.nan, (0, 2): 0.3, (1, 2): 0.5}))
    assert s["mean"] == pytest.approx(0.4, abs=1e-15)
    assert s["std"] == pytest.approx(np.sqrt(0.02), abs=1e-15)
    assert (s["ci"], s["n_seeds"], s["n_pairs"]) == (None, 3, 2)
    one = stats.pair_stats(pair_matrix(3, {(0, 2): 0.3}))
    assert (one["mean"], one["std"], one["n_pairs"]) == (0.3, None, 1)
    none = stats.pair_stats(stats.pair_matrix(3))
    assert (none["mean"], none["std"], none["n_pairs"]) == (None, None, 0)
    assert list(none) == ["mean", "std", "ci", "n_seeds", "n_pairs"]
    for d in (s, one, none):
        validate(d, Stat)
    json.dumps(s, allow_nan=False)


def test_per_seed_stats_skips_undefined_values() -> None:
    assert (
        stats.per_seed_stats([0.5, None, 0.7, float("nan"), 0.9])
        == stats.value_stats([0.5, 0.7, 0.9]).to_dict()
    )
    empty = stats.per_seed_stats([None, float("nan")])
    assert empty == {"mean": None, "std": None, "ci": None, "n_seeds": 0, "n_pairs": None}
    validate(empty, Stat)
