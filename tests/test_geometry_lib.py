"""Library of the dynamics, geometry and predictors stages, on hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from husai.dynamics import log_checkpoints, settle_index, settle_steps, settle_summary
from husai.geometry import (
    activation_spectrum,
    assign_groups,
    gram_spectrum,
    gram_summary,
    group_bases,
    group_conservation,
    numerical_rank,
    overlap_curve,
    participation_ratio,
    principal_directions,
    spectrum_distance,
    spectrum_effective_rank,
    top_directions,
)
from husai.predictors import min_shared, roc_auc, shared_counts
from husai.stability import shared_latents

# ----------------------------------------------------------------------------- AUC


def test_roc_auc_hand_computed() -> None:
    # positives 0.35, 0.8; negatives 0.1, 0.4: pairs (0.35>0.1), (0.35<0.4), (0.8>both) -> 3/4
    assert roc_auc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]) == pytest.approx(0.75)
    assert roc_auc([0.1, 0.4, 0.35, 0.8], [1, 1, 0, 0]) == pytest.approx(0.25)
    assert roc_auc([1.0, 2.0, 3.0], [0, 1, 1]) == 1.0


def test_roc_auc_ties_count_one_half() -> None:
    # pos {1, 3}, neg {1, 2}: (1 vs 1) = 1/2, (1 vs 2) = 0, (3 vs 1) = 1, (3 vs 2) = 1 -> 2.5/4
    assert roc_auc([1, 1, 2, 3], [0, 1, 0, 1]) == pytest.approx(0.625)
    assert roc_auc([7.0] * 5, [0, 1, 0, 1, 1]) == pytest.approx(0.5)  # constant predictor
    assert roc_auc([1, 2], [1, 1]) is None and roc_auc([1, 2], [0, 0]) is None
    with pytest.raises(ValueError):
        roc_auc([1, 2, 3], [0, 1])


def test_min_shared_rules() -> None:
    assert [min_shared(n, "majority") for n in (2, 3, 4, 5, 6)] == [1, 2, 2, 3, 3]
    assert min_shared(5, "any") == 1 and min_shared(5, "all") == 4


def test_shared_counts_match_the_pairwise_rule() -> None:
    g = torch.Generator().manual_seed(0)
    base = torch.randn(12, 16, generator=g)
    dicts = []
    for s in range(3):
        noise = torch.randn(12, 16, generator=torch.Generator().manual_seed(s + 10))
        d = base + 0.05 * noise
        d[8 + s] = torch.randn(16, generator=torch.Generator().manual_seed(s + 99))  # own atom
        perm = torch.randperm(12, generator=torch.Generator().manual_seed(s + 5))
        dicts.append(d[perm])
    counts = shared_counts(dicts, dicts)
    for i in range(3):
        expect = sum(
            shared_latents(dicts[i], dicts[i], dicts[j], dicts[j]).to(torch.int64)
            for j in range(3)
            if j != i
        )
        assert torch.equal(counts[i], expect)
    assert int(counts.max()) == 2 and int((counts == 2).sum(1).min()) >= 8


# ----------------------------------------------------------------------------- settle steps


def test_log_checkpoints() -> None:
    assert log_checkpoints(1000) == [0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1000]
    assert log_checkpoints(64) == [0, 1, 2, 4, 8, 16, 32, 64]
    assert log_checkpoints(10, base=3) == [0, 1, 3, 9, 10]
    assert log_checkpoints(1) == [0, 1]


def test_settle_step_on_hand_built_matchings() -> None:
    steps = [0, 1, 2, 4]
    matches = torch.tensor(
        [
            # latent: 0  1  2  3
            [5, 1, 3, 0],  # step 0
            [5, 2, 3, 1],  # step 1
            [5, 3, 1, 1],  # step 2
            [5, 3, 3, 1],  # step 4
        ]
    )
    # latent 0 never changes; 1 settles at step 2; 2 returns to its first match but only
    # at the last checkpoint; 3 settles at step 1
    assert settle_index(matches).tolist() == [0, 2, 3, 1]
    assert settle_steps(steps, matches).tolist() == [0, 2, 4, 1]
    # two other seeds: the latent settles when both matches have settled
    multi = torch.stack([matches[:, [3, 1]], matches[:, [0, 3]]], dim=1)  # [T, 2 latents, 2 seeds]
    assert settle_steps(steps, multi).tolist() == [2, 1]
    with pytest.raises(ValueError):
        settle_steps([0, 2, 1, 4], matches)


def test_settle_summary_quantiles_are_checkpoints() -> None:
    steps = [0, 1, 2, 4]
    summary = settle_summary([0, 2, 4, 1], steps)
    assert summary["median"] == 1  # half the latents (0 and 3) have settled by step 1
    assert summary["quantiles"]["0.75"] == 2 and summary["quantiles"]["0.9"] == 4
    assert summary["fraction_settled_by_step"] == {"0": 0.25, "1": 0.5, "2": 0.75, "4": 1.0}
    assert summary["mean_log2_step"] == pytest.approx(
        np.mean([0.0, math.log2(3), math.log2(5), 1.0])
    )
    assert settle_summary([], steps)["median"] is None


# ----------------------------------------------------------------------------- Gram spectra


def test_gram_spectrum_of_an_orthonormal_dictionary_is_flat() -> None:
    q, _ = torch.linalg.qr(
        torch.randn(16, 16, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    )
    atoms = q.T * torch.linspace(0.5, 3.0, 16, dtype=torch.float64)[:, None]  # norms ignored
    lam = gram_spectrum(atoms)
    assert torch.allclose(lam, torch.full((16,), 1 / 16, dtype=torch.float64), atol=1e-12)
    assert spectrum_effective_rank(lam) == pytest.approx(16)
    assert participation_ratio(lam) == pytest.approx(16)
    assert numerical_rank(lam) == 16
    assert spectrum_distance(lam, torch.full((16,), 1 / 16, dtype=torch.float64)) < 1e-12
    assert gram_summary(atoms)["self_max_cos"] < 1e-12


def test_gram_spectrum_of_duplicated_atoms_has_their_rank() -> None:
    q, _ = torch.linalg.qr(
        torch.randn(32, 5, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    )
    atoms = torch.cat([q.T, -2 * q.T, 0.5 * q.T])  # 5 directions, each three times (15 atoms)
    lam = gram_spectrum(atoms)
    assert lam.shape == (32,)  # d_in: zeros beyond the 15 atoms
    assert torch.allclose(lam[:5], torch.full((5,), 0.2, dtype=torch.float64), atol=1e-12)
    assert float(lam[5:].abs().max()) < 1e-12
    assert numerical_rank(lam) == 5
    assert spectrum_effective_rank(lam) == pytest.approx(5, abs=1e-5)
    summary = gram_summary(atoms)
    assert summary["numerical_rank"] == 5 and summary["self_max_cos"] == pytest.approx(1.0)
    # total variation to the flat spectrum of 15 independent atoms
    flat = torch.zeros(32, dtype=torch.float64)
    flat[:15] = 1 / 15
    assert spectrum_distance(lam, flat) == pytest.approx(10 / 15)


def test_activation_spectrum_of_planted_low_rank_data() -> None:
    g = torch.Generator().manual_seed(3)
    x = torch.randn(500, 3, generator=g, dtype=torch.float64) @ torch.randn(
        3, 10, generator=g, dtype=torch.float64
    )
    spec = activation_spectrum(x + 4.0)  # the mean is removed
    assert spec["dims_for_variance"]["0.99"] <= 3
    assert sum(spec["variance_share"][:3]) == pytest.approx(1.0)
    assert 1.0 < spec["effective_rank"] <= 3.0 + 1e-9


def test_overlap_curve_matches_direct_overlap() -> None:
    g = torch.Generator().manual_seed(4)
    va = principal_directions(torch.randn(40, 8, generator=g, dtype=torch.float64))
    vb = principal_directions(torch.randn(40, 8, generator=g, dtype=torch.float64))
    curve = overlap_curve(va, vb, [1, 3, 8])
    assert curve[8] == pytest.approx(1.0)
    assert curve[3] == pytest.approx(float((va[:, :3].T @ vb[:, :3]).pow(2).sum()) / 3)


# ----------------------------------------------------------------------------- groups


def planted_groups(d: int = 24, n_groups: int = 3, dim: int = 4):
    """Ground truth: group k spans coordinates [k*dim, (k+1)*dim). Dictionary A holds
    the group's basis vectors; B holds the same subspaces rotated (each atom is
    (+-e1 +-e2 +-e3 +-e4)/2), so every single atom has cos^2 1/4 with every partner."""
    eye = torch.eye(d, dtype=torch.float64)
    h = (
        torch.tensor(
            [[1, 1, 1, 1], [1, -1, 1, -1], [1, 1, -1, -1], [1, -1, -1, 1]], dtype=torch.float64
        )
        / 2
    )
    gt = eye[: n_groups * dim]
    freq = torch.arange(n_groups).repeat_interleave(dim) + 1
    a = torch.cat([eye[k * dim : (k + 1) * dim] for k in range(n_groups)])
    b = torch.cat([h @ eye[k * dim : (k + 1) * dim] for k in range(n_groups)])
    return gt, freq, a, b


def test_groups_conserved_while_atoms_are_not() -> None:
    gt, freq, a, b = planted_groups()
    bases = group_bases(gt, freq, [1, 2, 3])
    assert [q.shape[1] for q in bases] == [4, 4, 4]
    la, lb = assign_groups(a, bases, 0.5), assign_groups(b, bases, 0.5)
    assert la.tolist() == lb.tolist() == [0] * 4 + [1] * 4 + [2] * 4
    pairs = group_conservation(a, la, b, lb, 3, [4, 4, 4], null_rounds=50, seed=0)
    for gp in pairs:
        assert gp.rank == 4
        assert gp.group_overlap == pytest.approx(1.0)
        assert gp.atom_in_span == pytest.approx(1.0)
        assert gp.atom_match == pytest.approx(0.25)  # no single atom is conserved
        assert gp.random_overlap == pytest.approx(4 / 24)
        assert gp.null_overlap is not None and gp.null_overlap < 0.7  # arbitrary groups are not
    # the same dictionaries with groups planted in unrelated subspaces: not conserved
    perm = torch.randperm(24, generator=torch.Generator().manual_seed(0))
    other = group_conservation(a, la, b[:, perm], lb, 3, [4, 4, 4], null_rounds=0)
    assert all(gp.group_overlap < 0.7 and gp.null_overlap is None for gp in other)


def test_group_assignment_threshold_and_empty_groups() -> None:
    gt, freq, a, _ = planted_groups()
    bases = group_bases(gt, freq, [1, 2, 3, 9])  # frequency 9 has no direction
    assert bases[3].shape == (24, 0)
    mixed = (a[0] + a[4]) / math.sqrt(2)  # half in group 0, half in group 1
    outside = torch.eye(24, dtype=torch.float64)[20]
    labels = assign_groups(torch.stack([mixed, outside, a[9]]), bases, 0.6)
    assert labels.tolist() == [-1, -1, 2]
    pairs = group_conservation(
        a,
        assign_groups(a, bases, 0.5),
        a,
        assign_groups(a, bases, 0.5),
        4,
        [4, 4, 4, 0],
        null_rounds=3,
    )
    assert pairs[3].rank == 0 and pairs[3].group_overlap is None
    assert pairs[0].atom_match == pytest.approx(1.0)


def test_top_directions_span_the_principal_subspace_from_either_gram() -> None:
    g = torch.Generator().manual_seed(5)
    for n in (6, 40):  # fewer atoms than dimensions (small Gram) and more
        u = torch.randn(n, 20, generator=g, dtype=torch.float64)
        v = top_directions(u, 4)
        ref = principal_directions(u)[:, :4]
        assert v.shape == (20, 4)
        assert torch.allclose(v.T @ v, torch.eye(4, dtype=torch.float64), atol=1e-10)
        assert float((v.T @ ref).pow(2).sum()) == pytest.approx(4.0)
    # duplicated atoms span 2 directions: the rest are dropped, not returned as noise
    e = torch.eye(20, dtype=torch.float64)
    assert top_directions(torch.stack([e[0], e[0], e[3], -e[3]]), 4).shape == (20, 2)
