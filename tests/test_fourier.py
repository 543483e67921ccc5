"""Fourier analysis against answers known by construction."""

from __future__ import annotations

import math

import pytest
import torch

from husai import fourier as fr


def cos_sin(p: int, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.arange(p, dtype=torch.float64)
    return torch.cos(2 * math.pi * k * x / p), torch.sin(2 * math.pi * k * x / p)


@pytest.mark.parametrize("p", [3, 7, 23, 113])
def test_basis_is_orthonormal_and_ordered(p: int) -> None:
    basis = fr.fourier_basis(p)
    assert basis.shape == (p, p)
    torch.testing.assert_close(basis @ basis.T, torch.eye(p, dtype=torch.float64))
    assert torch.allclose(basis[0], torch.full((p,), 1 / math.sqrt(p), dtype=torch.float64))
    c, s = cos_sin(p, 1)
    torch.testing.assert_close(basis[1], c / c.norm())
    torch.testing.assert_close(basis[2], s / s.norm())
    assert fr.basis_labels(p)[:3] == ["const", "cos 1", "sin 1"]


def test_block_components_are_the_eight_of_nanda() -> None:
    comps = fr.block_components(3)
    assert len(comps) == 8 and (0, 0) not in comps
    assert set(comps) == {(u, v) for u in (0, 5, 6) for v in (0, 5, 6)} - {(0, 0)}


def test_planted_frequency_has_purity_one_and_is_found() -> None:
    p, k = 23, 4
    c, s = cos_sin(p, k)
    # cos(w(a+b)) = cos a cos b - sin a sin b: pure frequency k, plus an offset
    grid = (c[:, None] * c[None, :] - s[:, None] * s[None, :]) + 3.0
    pur = fr.purity(grid)
    assert pur.frequency.tolist() == [k]
    assert pur.purity.item() == pytest.approx(1.0, abs=1e-12)


def test_linear_terms_belong_to_the_block_too() -> None:
    p, k = 31, 7
    c, _ = cos_sin(p, k)
    grid = c[:, None] + 0 * c[None, :]  # depends on a only: component (cos k, const)
    pur = fr.purity(grid)
    assert pur.frequency.item() == k and pur.purity.item() == pytest.approx(1.0)


def test_mixture_purity_is_the_energy_share() -> None:
    p = 23
    c2, _ = cos_sin(p, 2)
    c5, _ = cos_sin(p, 5)
    # energies: (cos2 x cos2) has ||c2||^4, (cos5 x const) scaled
    g2 = c2[:, None] * c2[None, :]
    g5 = 0.5 * c5[:, None] * torch.ones(p, dtype=torch.float64)[None, :]
    pur = fr.purity(g2 + g5)
    e2 = fr.centre_grid(g2).pow(2).sum()
    e5 = fr.centre_grid(g5).pow(2).sum()
    assert pur.frequency.item() == 2
    assert pur.purity.item() == pytest.approx(float(e2 / (e2 + e5)), rel=1e-10)


def test_constant_function_has_purity_zero() -> None:
    pur = fr.purity(torch.full((7, 7, 2), 1.5))
    assert pur.purity.tolist() == [0.0, 0.0] and pur.frequency.tolist() == [0, 0]


def test_key_frequencies_of_a_planted_embedding() -> None:
    p, d = 113, 16
    gen = torch.Generator().manual_seed(0)
    keys = [14, 35, 41, 52]
    emb = 0.01 * torch.randn(p, d, generator=gen, dtype=torch.float64)
    for i, k in enumerate(keys):
        c, s = cos_sin(p, k)
        emb[:, 2 * i] += c
        emb[:, 2 * i + 1] += s
    energy, const = fr.frequency_energy(emb)
    assert energy.shape == (56,)
    assert fr.key_frequencies(energy, 0.1) == keys
    share = float(energy[[k - 1 for k in keys]].sum() / (energy.sum() + const))
    assert share > 0.99
    torch.testing.assert_close(energy.sum() + const, emb.pow(2).sum())  # Parseval


def test_variance_share_and_ground_truth_directions() -> None:
    p, d = 23, 6
    c, s = cos_sin(p, 3)
    direction = torch.zeros(d, dtype=torch.float64)
    direction[2] = 1.0
    other = torch.zeros(d, dtype=torch.float64)
    other[4] = 1.0
    # one feature in frequency 3 along `direction`, one off-key feature along `other`
    feat = c[:, None] * c[None, :] - s[:, None] * s[None, :]
    noise_feat = cos_sin(p, 8)[0][:, None] * cos_sin(p, 9)[0][None, :]
    x = feat[..., None] * direction + 0.5 * noise_feat[..., None] * other
    e_key = fr.centre_grid(feat).pow(2).sum()
    e_off = 0.25 * fr.centre_grid(noise_feat).pow(2).sum()
    share = fr.key_frequency_variance_share(x, [3])
    assert share == pytest.approx(float(e_key / (e_key + e_off)), rel=1e-10)
    gt = fr.ground_truth_directions(x, [3])
    assert gt.directions.shape == (8, d) and gt.frequency.tolist() == [3] * 8
    strong = gt.energy_share > 1e-9
    # only (cos,cos) and (sin,sin) carry the planted product, both along `direction`
    assert strong.sum() == 2
    assert set(zip(gt.u[strong].tolist(), gt.v[strong].tolist(), strict=True)) == {(5, 5), (6, 6)}
    assert torch.allclose(
        gt.directions[strong].abs() @ direction, torch.ones(2, dtype=torch.float64)
    )
    assert float(gt.energy_share.sum()) == pytest.approx(share, rel=1e-10)


def centred_with_singular_values(values: list[float], d: int = 8) -> torch.Tensor:
    """Rows [D; -D]: mean zero, singular values sqrt(2) * values."""
    diag = torch.zeros(d, d, dtype=torch.float64)
    diag[range(len(values)), range(len(values))] = torch.tensor(values, dtype=torch.float64)
    return torch.cat([diag, -diag])


@pytest.mark.parametrize("r", [1, 3, 8])
def test_effective_rank_of_equal_singular_values_is_the_rank(r: int) -> None:
    assert fr.effective_rank(centred_with_singular_values([2.0] * r)) == pytest.approx(r)


def test_effective_rank_of_an_uneven_spectrum() -> None:
    x = centred_with_singular_values([3.0, 1.0])
    entropy = -(0.75 * math.log(0.75) + 0.25 * math.log(0.25))
    assert fr.effective_rank(x) == pytest.approx(math.exp(entropy))
