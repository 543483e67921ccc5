"""Ground-truth recovery on a planted Fourier grid, encoded by a hand-built SAE."""

from __future__ import annotations

import json

import pytest
import torch

from husai import fourier as fr
from husai import recovery as rc

P, D_IN, KEYS = 113, 32, (3, 17, 40)


def planted_functions(p: int, k: int) -> list[torch.Tensor]:
    """Three non-negative functions on the grid, each pure frequency k, built from
    the Fourier basis: cos(w(a+b)), sin(w(a+b)) and cos(w a), each shifted to be >= 0
    (the shift is the constant component, which purity ignores)."""
    basis = fr.fourier_basis(p)
    c, s = basis[2 * k - 1], basis[2 * k]
    funcs = [
        torch.outer(c, c) - torch.outer(s, s),  # prop. to cos(w (a + b))
        torch.outer(s, c) + torch.outer(c, s),  # prop. to sin(w (a + b))
        c[:, None].expand(p, p).clone(),  # prop. to cos(w a)
    ]
    return [f - f.min() for f in funcs]


def planted_grid() -> tuple[torch.Tensor, torch.Tensor, list[int]]:
    """Activations x[a, b] = sum_f g_f(a, b) D_f with orthonormal planted directions D."""
    funcs, freqs = [], []
    for k in KEYS:
        funcs += planted_functions(P, k)
        freqs += [k] * 3
    g = torch.Generator().manual_seed(0)
    q, _ = torch.linalg.qr(torch.randn(D_IN, len(funcs), generator=g, dtype=torch.float64))
    directions = q.T  # [n_feat, d_in], orthonormal rows
    x = torch.einsum("fab,fd->abd", torch.stack(funcs), directions)
    return x, directions, freqs


def hand_sae(x: torch.Tensor, directions: torch.Tensor) -> torch.Tensor:
    """Encoder = decoder = the planted directions: latents ReLU(x D^T) recover g_f."""
    return torch.relu(torch.einsum("abd,fd->abf", x, directions))


def test_planted_fourier_grid_is_recovered_perfectly() -> None:
    x, directions, freqs = planted_grid()
    gt = fr.ground_truth_directions(x, list(KEYS))
    acts = hand_sae(x, directions)
    out = rc.recovery_metrics(
        acts, directions, gt.directions, gt.frequency, KEYS, gt_energy_share=gt.energy_share, seed=1
    )
    pur = rc.latent_purity(acts)
    assert pur.purity.min() > 1 - 1e-9
    assert pur.frequency.tolist() == freqs
    assert out["n_latents"] == out["n_live"] == out["n_pure"] == 9
    assert out["pure_latent_fraction"] == 1.0
    assert out["key_frequency_coverage"] == 1.0
    assert out["pure_latents_per_key_frequency"] == {"3": 3, "17": 3, "40": 3}
    # per key: (c,c), (s,s) -> cos(a+b); (c,s), (s,c) -> sin(a+b); (c,0) -> cos a;
    # the other three components are absent and left out
    assert out["n_ground_truth"] == 5 * len(KEYS)
    assert out["decoder_alignment"] == pytest.approx(1.0, abs=1e-7)
    assert out["decoder_alignment_energy_weighted"] == pytest.approx(1.0, abs=1e-7)
    assert all(
        v == pytest.approx(1.0, abs=1e-7)
        for v in out["decoder_alignment_per_key_frequency"].values()
    )
    # 9 random atoms in 32 dimensions align far worse (expected best |cos| about 0.35)
    assert out["random_decoder_alignment"] < 0.6
    json.dumps(out, allow_nan=False)


def test_dead_polysemantic_and_missing_latents() -> None:
    x, directions, _ = planted_grid()
    acts = hand_sae(x, directions)
    # drop frequency 40's latents, add a dead latent and a polysemantic one (3 + 17)
    dead = torch.zeros(P, P, 1, dtype=torch.float64)
    poly = (acts[:, :, 0] + acts[:, :, 3]).unsqueeze(-1)
    acts = torch.cat([acts[:, :, :6], dead, poly], dim=2)
    g = torch.Generator().manual_seed(1)
    extra = torch.nn.functional.normalize(
        torch.randn(2, D_IN, generator=g, dtype=torch.float64), dim=1
    )
    decoder = torch.cat([directions[:6], extra])
    gt = fr.ground_truth_directions(x, list(KEYS))
    out = rc.recovery_metrics(
        acts, decoder, gt.directions, gt.frequency, KEYS, gt_energy_share=gt.energy_share
    )
    assert (out["n_latents"], out["n_live"], out["n_pure"]) == (8, 7, 6)
    assert out["pure_latent_fraction"] == pytest.approx(6 / 7)
    assert out["key_frequency_coverage"] == pytest.approx(2 / 3)
    assert out["pure_latents_per_key_frequency"] == {"3": 3, "17": 3, "40": 0}
    per_key = out["decoder_alignment_per_key_frequency"]
    assert per_key["3"] == pytest.approx(1.0, abs=1e-7) and per_key["40"] < 0.9
    assert out["decoder_alignment"] < 1.0
    pur = rc.latent_purity(acts)
    assert pur.purity[6] == 0.0 and pur.frequency[6] == 0  # dead: constant, purity 0
    assert pur.purity[7] == pytest.approx(0.5, abs=0.01)  # two equal-energy frequencies


def test_flat_input_and_chunking_agree() -> None:
    x, directions, _ = planted_grid()
    acts = hand_sae(x, directions)
    acts = acts + 0.01 * torch.rand(
        acts.shape, generator=torch.Generator().manual_seed(2), dtype=torch.float64
    )
    whole = rc.latent_purity(acts, chunk_size=9)
    for chunk in (1, 4):
        part = rc.latent_purity(acts, chunk_size=chunk)
        torch.testing.assert_close(part.purity, whole.purity, rtol=0, atol=1e-12)
        assert torch.equal(part.frequency, whole.frequency)
    flat = acts.reshape(P * P, -1)  # row a * p + b
    assert torch.equal(rc.latent_purity(flat).purity, whole.purity)
    assert torch.equal(rc.live_latents(flat), rc.live_latents(acts))
    with pytest.raises(ValueError, match="p x p"):
        rc.as_grid(flat[:-1])


def test_random_dictionary_has_low_alignment() -> None:
    x, _, _ = planted_grid()
    gt = fr.ground_truth_directions(x, list(KEYS))
    share = gt.energy_share
    low = rc.random_decoder_alignment(9, gt.directions, 3, share)
    assert low < 0.6
    assert low == rc.random_decoder_alignment(9, gt.directions, 3, share)
    # alignment grows with the number of random atoms but stays far from 1 in 32 dims
    assert low < rc.random_decoder_alignment(512, gt.directions, 3, share) < 0.9


def test_round_off_components_are_absent() -> None:
    x, directions, _ = planted_grid()
    gt = fr.ground_truth_directions(x, list(KEYS))
    # 8 components per key, 5 planted: the other 3 are round-off, not zero
    assert int((gt.directions.norm(dim=1) > 0).sum()) > 5 * len(KEYS)
    assert (
        float(gt.energy_share[~rc.present_directions(gt.directions, gt.energy_share)].max()) < 1e-20
    )
    assert int(rc.present_directions(gt.directions, gt.energy_share).sum()) == 5 * len(KEYS)
    # without shares every non-zero direction counts, round-off ones included
    assert rc.decoder_alignment(directions, gt.directions) < 0.99
    assert rc.decoder_alignment(directions, gt.directions, gt.energy_share) == pytest.approx(
        1.0, abs=1e-7
    )
