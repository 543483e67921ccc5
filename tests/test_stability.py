"""Stability metrics and random baselines against answers known by hand or by theory."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from husai import baselines as bl
from husai import stability as st


def rand_atoms(n: int, d: int, seed: int) -> torch.Tensor:
    """Gaussian rows with random lengths (normalisation is the metrics' job)."""
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g, dtype=torch.float64) * (
        0.5 + torch.rand(n, 1, generator=g)
    )


def unit(deg: float) -> list[float]:
    return [math.cos(math.radians(deg)), math.sin(math.radians(deg))]


# --- identities -----------------------------------------------------------------------


def test_dictionary_against_itself_scores_one_everywhere() -> None:
    dec, enc = rand_atoms(200, 32, 0), rand_atoms(200, 32, 1)
    m = st.pair_metrics(dec, dec, enc, enc, ranks=(1, 4, 16, 32))
    for key, value in m.to_dict().items():
        if not key.startswith("subspace_random"):
            assert value == pytest.approx(1.0, abs=1e-12), key
    assert m.decoder_matching.partner.tolist() == list(range(200))
    assert m.best_match_a.index.tolist() == list(range(200))
    assert m.shared_a is not None and bool(m.shared_a.all())


def test_permuted_sign_flipped_rescaled_copy_scores_one_with_abs_cos() -> None:
    dec, enc = rand_atoms(150, 24, 2), rand_atoms(150, 24, 3)
    g = torch.Generator().manual_seed(4)
    perm = torch.randperm(150, generator=g)
    sign = torch.where(torch.rand(150, generator=g) < 0.5, -1.0, 1.0).double()[:, None]
    scale = 0.1 + 5 * torch.rand(150, 1, generator=g, dtype=torch.float64)
    dec_b, enc_b = dec[perm] * sign * scale, enc[perm] * sign * scale
    m = st.pair_metrics(dec, dec_b, enc, enc_b, ranks=(1, 8, 24))
    for key, value in m.to_dict().items():
        if not key.startswith("subspace_random"):
            assert value == pytest.approx(1.0, abs=1e-9), key
    # the matching recovers the permutation: A's atom perm[i] is B's atom i
    assert torch.equal(m.decoder_matching.partner[perm], torch.arange(150))
    assert torch.equal(m.best_match_a.index[perm], torch.arange(150))
    # the sign rule matters: with the signed cosine the flipped atoms no longer match
    signed = st.pwmcc(dec, dec_b, absolute=False)
    assert signed < 0.9
    assert st.shared_fraction(enc, dec, enc_b, dec_b, absolute=False) == pytest.approx(
        float((sign > 0).double().mean()), abs=1e-12
    )


def test_orthogonal_dictionaries_score_zero() -> None:
    eye = torch.eye(10, dtype=torch.float64)
    a, b = 3 * eye[:4], -2 * eye[4:]
    m = st.pair_metrics(a, b, a, b, ranks=(1, 4))
    assert m.pwmcc == 0.0 and m.hungarian_mcc == 0.0 and m.shared_fraction == 0.0
    assert m.subspace_overlap == {
        1: pytest.approx(0.0, abs=1e-24),
        4: pytest.approx(0.0, abs=1e-24),
    }
    assert m.subspace_random == {1: 0.1, 4: 0.4}


def test_zero_rows_give_cosine_zero_not_nan() -> None:
    a = torch.tensor([[1.0, 0.0], [0.0, 0.0]])
    b = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
    c = st.cosine_matrix(a, b)
    assert c.tolist() == [[1.0, 0.0], [0.0, 0.0]]
    # rows: max 1, 0 -> 0.5; columns: max 1, 0 -> 0.5
    assert st.pwmcc(a, b) == 0.5
    assert st.hungarian_mcc(a, b) == 0.5
    assert st.best_matches(a, b).cosine.tolist() == [1.0, 0.0]


# --- hand-computed cases ----------------------------------------------------------------


def test_paulo_belrose_rule_differs_from_max_cosine_by_hand() -> None:
    # B = the two axes; A's atoms at 10 and 30 degrees from the first axis.
    # |cos|: a0-b0 0.985, a0-b1 0.174, a1-b0 0.866, a1-b1 0.5.
    dec_b = torch.tensor([unit(0), unit(90)], dtype=torch.float64)
    dec_a = torch.tensor([unit(10), unit(30)], dtype=torch.float64)
    c10, c30, s30 = (math.cos(math.radians(x)) for x in (10, 30, 60))
    # max cosine: both of A's atoms find a partner >= 0.7 (both b0)
    best = st.best_matches(dec_a, dec_b)
    assert best.index.tolist() == [0, 0]
    assert best.cosine.tolist() == pytest.approx([c10, c30], abs=1e-7)
    pw = 0.5 * ((c10 + c30) / 2 + (c10 + s30) / 2)
    assert st.pwmcc(dec_a, dec_b) == pytest.approx(pw, abs=1e-7)
    # Hungarian: (a0-b0, a1-b1) sums 1.485 > (a0-b1, a1-b0) 1.040
    match = st.hungarian_match(dec_a, dec_b)
    assert match.partner.tolist() == [0, 1]
    assert st.hungarian_mcc(dec_a, dec_b) == pytest.approx((c10 + s30) / 2, abs=1e-7)
    # Paulo & Belrose (tied encoders): a1's matched cosine is 0.5 < 0.7, so 1 of 2 shared,
    # where "has a match >= 0.7" would say 2 of 2
    shared = st.shared_latents(dec_a, dec_a, dec_b, dec_b)
    assert shared.tolist() == [True, False]
    assert st.shared_fraction(dec_a, dec_a, dec_b, dec_b) == 0.5
    assert float((best.cosine >= 0.7).double().mean()) == 1.0
    assert st.shared_fraction(dec_a, dec_a, dec_b, dec_b, threshold=0.4) == 1.0


def test_shared_needs_encoder_and_decoder_to_pick_the_same_partner() -> None:
    dec = torch.eye(2, dtype=torch.float64)
    enc_b = dec.flip(0)  # encoder atoms of B swapped: the encoder matching crosses over
    shared = st.shared_latents(dec, dec, enc_b, dec)
    assert shared.tolist() == [False, False]  # every matched cosine is 1.0, partners differ
    assert st.shared_fraction(dec, dec, dec, dec) == 1.0


def test_unequal_sizes_denominators() -> None:
    eye = torch.eye(3, dtype=torch.float64)
    a = eye[:2]
    b = torch.cat([eye, ((eye[0] + eye[1]) / math.sqrt(2))[None]])
    # rows of A: 1, 1; columns of B: 1, 1, 0, 1/sqrt2
    expected = 0.5 * (1.0 + (2 + 1 / math.sqrt(2)) / 4)
    assert st.pwmcc(a, b) == pytest.approx(expected, abs=1e-7)
    assert st.pwmcc(b, a) == st.pwmcc(a, b)
    # Hungarian matches min(2, 4) = 2 pairs, both perfect
    assert st.hungarian_mcc(a, b) == pytest.approx(1.0, abs=1e-12)
    assert st.hungarian_mcc(b, a) == pytest.approx(1.0, abs=1e-12)
    m = st.hungarian_match(b, a)  # more rows than columns: B's atoms 2 and 3 unmatched
    assert m.partner.tolist() == [0, 1, -1, -1]
    assert m.cosine[2:].tolist() == [0.0, 0.0]
    assert st.shared_fraction(a, a, b, b) == 1.0  # 2 shared / min(2, 4)
    assert st.shared_fraction(b, b, a, a) == 1.0
    # more rows than columns in pair_metrics: best matches still for A's (here B's) atoms
    pm_ba = st.pair_metrics(b, a, ranks=(1,))
    assert pm_ba.best_match_a.index.tolist() == st.best_matches(b, a).index.tolist() == [0, 1, 0, 0]
    assert pm_ba.decoder_matching.partner.tolist() == [0, 1, -1, -1]
    assert pm_ba.pwmcc == st.pwmcc(a, b) and pm_ba.hungarian_mcc == st.hungarian_mcc(a, b)
    pm = st.pair_metrics(a, b, ranks=(1, 2, 3))
    assert set(pm.subspace_overlap) == {1, 2}  # rank 3 > min(n_a, n_b) is left out
    assert pm.shared_fraction is None and "shared_fraction" not in pm.to_dict()


def test_subspace_overlap_by_hand() -> None:
    # A spans (e0, e1), B spans (e0, (e1 + e2)/sqrt2) with unequal weights so that
    # the singular directions are well defined.
    e = torch.eye(4, dtype=torch.float64)
    a = torch.stack([e[0], e[0], e[1]])  # Gram eigen: e0 (2), e1 (1)
    b = torch.stack([e[0], e[0], (e[1] + e[2]) / math.sqrt(2)])
    ov = st.subspace_overlap(a, b, (1, 2))
    assert ov[1] == pytest.approx(1.0, abs=1e-12)
    # principal cosines 1 and 1/sqrt2: mean cos^2 = (1 + 1/2) / 2
    assert ov[2] == pytest.approx(0.75, abs=1e-12)
    with pytest.raises(ValueError, match="rank 3"):
        st.subspace_overlap(a[:2], b, (3,))


# --- chunking and determinism ----------------------------------------------------------


@pytest.mark.parametrize("chunk", [1, 7, 64, 119])
def test_chunked_equals_unchunked_exactly(chunk: int) -> None:
    a, b = rand_atoms(120, 48, 5), rand_atoms(97, 48, 6)
    ea, eb = rand_atoms(120, 48, 7), rand_atoms(97, 48, 8)
    whole = st.pair_metrics(a, b, ea, eb, chunk_size=10_000)
    part = st.pair_metrics(a, b, ea, eb, chunk_size=chunk)
    assert part.to_dict() == whole.to_dict()
    assert torch.equal(part.best_match_a.index, whole.best_match_a.index)
    assert torch.equal(part.best_match_a.cosine, whole.best_match_a.cosine)
    assert torch.equal(part.decoder_matching.partner, whole.decoder_matching.partner)
    assert torch.equal(
        st.cosine_matrix(a, b, chunk_size=chunk), st.cosine_matrix(a, b, chunk_size=120)
    )


def test_fixed_point_cosines_match_plain_float64() -> None:
    a, b = rand_atoms(100, 128, 9), rand_atoms(80, 128, 10)
    plain = (st.unit_rows(a) @ st.unit_rows(b).T).abs()
    assert (st.cosine_matrix(a, b) - plain).abs().max() < 1e-7
    assert (st.cosine_matrix(a, b, absolute=False) - plain).abs().max() > 0.01  # signs differ


def test_signed_variant_reproduces_the_papers_rule() -> None:
    """absolute=False is Song et al.'s MCC: Hungarian on 1 - cos of row-normalised atoms."""
    from scipy.optimize import linear_sum_assignment

    a, b = rand_atoms(60, 16, 12), rand_atoms(60, 16, 13)
    cost = 1 - (st.unit_rows(a) @ st.unit_rows(b).T).numpy()
    rows, cols = linear_sum_assignment(cost)
    reference = 1 - cost[rows, cols].sum() / len(rows)
    assert st.hungarian_mcc(a, b, absolute=False) == pytest.approx(reference, abs=1e-7)
    assert st.hungarian_mcc(a, b, absolute=False) < st.hungarian_mcc(a, b)


def test_numpy_float32_input_and_bad_shapes() -> None:
    a = rand_atoms(20, 8, 11)
    assert st.pwmcc(a.float().numpy(), a.numpy()) == pytest.approx(1.0, abs=1e-7)
    with pytest.raises(ValueError, match="different spaces"):
        st.pwmcc(a, a[:, :4])
    with pytest.raises(ValueError, match="atom matrix"):
        st.pwmcc(a[0], a)
    with pytest.raises(ValueError, match=r"W_enc\.T"):
        st.shared_fraction(a.T, a, a, a)
    with pytest.raises(ValueError, match="both SAEs"):
        st.pair_metrics(a, a, a, None)


def test_skipping_the_matchings() -> None:
    a, b = rand_atoms(40, 16, 14), rand_atoms(50, 16, 15)
    full = st.pair_metrics(a, b, a, b, ranks=(4,))
    fast = st.pair_metrics(a, b, a, b, ranks=(4,), hungarian=False)
    assert fast.hungarian_mcc is None and fast.shared_fraction is None
    assert fast.decoder_matching is None and fast.shared_a is None
    expected = {
        k: v for k, v in full.to_dict().items() if k not in ("hungarian_mcc", "shared_fraction")
    }
    assert fast.to_dict() == expected
    assert torch.equal(fast.best_match_a.index, full.best_match_a.index)


def test_pairwise_metrics_matrix_format() -> None:
    decs = [rand_atoms(30, 16, s) for s in range(4)]
    out = st.pairwise_metrics(decs, decs, ranks=(2,))
    assert set(out) == {
        "pwmcc",
        "hungarian_mcc",
        "shared_fraction",
        "subspace_overlap_r2",
        "subspace_random_r2",
    }
    m = out["pwmcc"]
    assert m.shape == (4, 4) and np.isnan(np.diag(m)).all()
    np.testing.assert_array_equal(m, m.T)
    assert m[1, 3] == st.pwmcc(decs[1], decs[3])


# --- random baselines --------------------------------------------------------------------

SCIENCE_ISOTROPIC = {16: 0.18, 128: 0.25, 1024: 0.30, 2048: 0.31}  # SCIENCE.md section 5


@pytest.mark.parametrize(("n_atoms", "quoted"), SCIENCE_ISOTROPIC.items())
def test_isotropic_expectation_reproduces_science_md(n_atoms: int, quoted: float) -> None:
    # SCIENCE.md quotes two decimals: the exact expectation must round to them
    assert bl.isotropic_pwmcc_expectation(n_atoms, 128) == pytest.approx(quoted, abs=0.005)


def test_isotropic_baseline_matches_expectation_and_trend() -> None:
    """Empirical isotropic PWMCC at d_in 128: mean over the 15 pairs of 6 seeds.

    Tolerance 0.01 around the exact expectation. Measured over 45 pairs, one pair's
    PWMCC has standard deviation 0.009 at 16 atoms, 0.003 at 128, 0.001 at 1024 and
    0.0005 at 2048, so a 15-pair mean has a standard error of at most about 0.0025
    (0.009 / sqrt(15) if pairs were independent): 0.01 is about 4 standard errors at
    the smallest size and far more at the others. Against SCIENCE.md's two-decimal
    values the tolerance adds their rounding, 0.005.
    """
    means = {}
    for n_atoms, quoted in SCIENCE_ISOTROPIC.items():
        dicts = [bl.isotropic_dictionary(n_atoms, 128, s) for s in range(1, 7)]
        vals = [st.pwmcc(dicts[i], dicts[j]) for i in range(6) for j in range(i + 1, 6)]
        means[n_atoms] = float(np.mean(vals))
        expected = bl.isotropic_pwmcc_expectation(n_atoms, 128)
        assert means[n_atoms] == pytest.approx(expected, abs=0.01)
        assert means[n_atoms] == pytest.approx(quoted, abs=0.015)
    sizes = sorted(means)
    assert all(means[s] < means[t] for s, t in itertools.pairwise(sizes))


def test_isotropic_baseline_pairwise() -> None:
    out = bl.isotropic_baseline(64, 128, seeds=[0, 1, 2], ranks=(4, 16))
    assert out["pwmcc"].shape == (3, 3)
    assert np.nanmax(out["shared_fraction"]) == 0.0  # no random |cos| reaches 0.7 at d_in 128
    assert np.nanmax(out["pwmcc"]) < 0.35
    # random subspaces overlap about r / d_in
    assert np.nanmean(out["subspace_overlap_r16"]) == pytest.approx(16 / 128, abs=0.06)
    again = bl.isotropic_baseline(64, 128, seeds=[0, 1, 2], ranks=(4, 16))
    for key in out:
        np.testing.assert_array_equal(out[key], again[key])


def test_isotropic_dictionary_is_seeded_and_unit() -> None:
    d = bl.isotropic_dictionary(50, 16, 7)
    assert d.shape == (50, 16) and d.dtype == torch.float32
    torch.testing.assert_close(d.norm(dim=1), torch.ones(50))
    assert torch.equal(d, bl.isotropic_dictionary(50, 16, 7))
    assert not torch.equal(d, bl.isotropic_dictionary(50, 16, 8))


def test_untrained_baseline_takes_given_atoms() -> None:
    same = [rand_atoms(40, 16, 0)] * 3
    out = bl.untrained_baseline(same, same, ranks=(4,))
    assert np.nanmin(out["pwmcc"]) == pytest.approx(1.0, abs=1e-12)
    assert np.nanmin(out["shared_fraction"]) == 1.0
    diff = bl.untrained_baseline([rand_atoms(40, 16, s) for s in range(3)], ranks=(4,))
    assert np.nanmax(diff["pwmcc"]) < 0.9 and "shared_fraction" not in diff


def test_principal_basis_finds_the_planted_subspace_and_its_size() -> None:
    g = torch.Generator().manual_seed(0)
    basis = torch.linalg.qr(torch.randn(40, 5, generator=g, dtype=torch.float64)).Q.T  # [5, 40]
    scales = torch.tensor([10.0, 8.0, 6.0, 4.0, 2.0], dtype=torch.float64)
    x = (torch.randn(4000, 5, generator=g, dtype=torch.float64) * scales) @ basis
    x = x + 1e-6 * torch.randn(4000, 40, generator=g, dtype=torch.float64) + 3.0  # offset
    full = bl.principal_basis(x, 0.999)
    assert full.shape == (5, 40)
    # the found span is the planted one: projecting the planted basis loses nothing
    assert torch.allclose((basis @ full.T @ full), basis, atol=1e-6)
    # variance shares 100:64:36:16:4 of 220 -> the top 2 hold 74.5%, the top 3 90.9%
    assert bl.principal_basis(x, 0.74).shape[0] == 2
    assert bl.principal_basis(x, 0.75).shape[0] == 3
    with pytest.raises(ValueError, match="variance_share"):
        bl.principal_basis(x, 0.0)


def test_subspace_dictionary_lies_in_the_span_and_matches_isotropic_in_r_dims() -> None:
    g = torch.Generator().manual_seed(1)
    basis = torch.linalg.qr(torch.randn(128, 9, generator=g, dtype=torch.float64)).Q.T
    atoms = bl.subspace_dictionary(1024, basis, seed=3)
    assert atoms.shape == (1024, 128)
    assert torch.allclose(atoms.norm(dim=1), torch.ones(1024), atol=1e-5)
    inside = atoms.double() @ basis.T @ basis
    assert torch.allclose(inside, atoms.double(), atol=1e-5)
    assert torch.equal(atoms, bl.subspace_dictionary(1024, basis, seed=3))
    # the same span in another orthonormal basis (a rotation of the rows): the same atoms
    rot = torch.linalg.qr(torch.randn(9, 9, generator=g, dtype=torch.float64)).Q
    other = bl.subspace_dictionary(1024, rot @ basis, seed=3)
    assert torch.allclose(other, atoms, atol=1e-6)
    # random directions in a 9-dim span: PWMCC is that of isotropic atoms in R^9,
    # far above isotropic atoms in R^128 (0.30)
    value = st.pwmcc(atoms, bl.subspace_dictionary(1024, basis, seed=4))
    assert value == pytest.approx(bl.isotropic_pwmcc_expectation(1024, 9), abs=0.01)
    assert value > 0.85
    metrics = bl.subspace_baseline(64, basis, [1, 2, 3], ranks=[4])
    assert metrics["pwmcc"].shape == (3, 3)
