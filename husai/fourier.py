"""Fourier analysis over Z_p, following Nanda et al. (2023) and SCIENCE.md section 2.

Conventions
-----------
* Basis ``F`` (``p x p``, orthonormal rows): row 0 is the constant ``1/sqrt(p)``;
  for ``k = 1 .. (p-1)/2`` row ``2k-1`` is ``cos(2 pi k x / p)`` and row ``2k`` is
  ``sin(2 pi k x / p)``, each scaled to unit norm. Frequencies are 1-based ints.
* A grid ``x[a, b, ...]`` transforms as ``einsum('ab...,fa,gb->fg...', x, F, F)``.
* Frequency ``k``'s block is ``{0, cos k, sin k} x {0, cos k, sin k}`` minus the
  ``(0, 0)`` term (Nanda's ``extract_freq_2d``): 8 components. Blocks of different
  frequencies are disjoint.
* "Energy" is a sum of squared coefficients. Because ``F`` is orthonormal, the
  energy of a centred grid equals its variance times ``p^2``, so energy shares
  are variance shares. Shares of the embedding are energy (squared-norm) shares.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


def n_frequencies(p: int) -> int:
    """Number of non-constant frequencies, ``(p - 1) / 2``."""
    return (p - 1) // 2


def fourier_basis(p: int) -> torch.Tensor:
    """The ``p x p`` orthonormal Fourier basis (float64), rows as in the module docstring."""
    x = torch.arange(p, dtype=torch.float64)
    rows = [torch.ones(p, dtype=torch.float64)]
    for k in range(1, n_frequencies(p) + 1):
        rows.append(torch.cos(2 * math.pi * k * x / p))
        rows.append(torch.sin(2 * math.pi * k * x / p))
    basis = torch.stack(rows)
    return basis / basis.norm(dim=1, keepdim=True)


def basis_labels(p: int) -> list[str]:
    """Human-readable names of the basis rows: ``const, cos 1, sin 1, ...``."""
    labels = ["const"]
    for k in range(1, n_frequencies(p) + 1):
        labels += [f"cos {k}", f"sin {k}"]
    return labels


def block_components(k: int) -> list[tuple[int, int]]:
    """The 8 (row, column) basis components of frequency ``k``'s 2-D block."""
    idx = (0, 2 * k - 1, 2 * k)
    return [(u, v) for u in idx for v in idx if (u, v) != (0, 0)]


def fourier_2d(x: torch.Tensor) -> torch.Tensor:
    """2-D transform of a grid ``[p, p, ...]`` over its first two axes (float64)."""
    p = x.shape[0]
    if x.ndim < 2 or x.shape[1] != p:
        raise ValueError(f"expected a [p, p, ...] grid, got shape {tuple(x.shape)}")
    basis = fourier_basis(p).to(x.device)
    return torch.einsum("ab...,fa,gb->fg...", x.to(torch.float64), basis, basis)


def centre_grid(x: torch.Tensor) -> torch.Tensor:
    """Subtract the mean over the (a, b) grid, per trailing coordinate."""
    x = x.to(torch.float64)
    return x - x.mean(dim=(0, 1), keepdim=True)


def block_energy(coeffs: torch.Tensor) -> torch.Tensor:
    """Energy of each frequency block of 2-D coefficients ``[p, p, ...]``: ``[(p-1)/2, ...]``."""
    ks = range(1, n_frequencies(coeffs.shape[0]) + 1)
    comps = torch.tensor([block_components(k) for k in ks], dtype=torch.int64)  # [K, 8, 2]
    return coeffs.pow(2)[comps[..., 0], comps[..., 1]].sum(dim=1)


@dataclass(frozen=True)
class Purity:
    """Per-function purity: the largest single-frequency block's share of the variance."""

    purity: torch.Tensor  # [n] in [0, 1]; 0 for a constant function
    frequency: torch.Tensor  # [n] 1-based best frequency; 0 for a constant function


def purity(h: torch.Tensor) -> Purity:
    """Purity of scalar functions ``h[a, b, n]`` on the grid (SCIENCE.md section 2).

    Each function is centred, 2-D transformed, and scored by the share of its
    energy in its best frequency block. A constant (e.g. dead) function has no
    variance and gets purity 0 and frequency 0.
    """
    if h.ndim == 2:
        h = h.unsqueeze(-1)
    coeffs = fourier_2d(centre_grid(h))
    energy = block_energy(coeffs)  # [K, n]
    total = coeffs.pow(2).sum(dim=(0, 1))  # [n]
    best, arg = energy.max(dim=0)
    live = total > 1e-12 * max(float(total.max()), 1e-300)
    share = torch.where(live, best / total.clamp_min(1e-300), torch.zeros_like(best))
    freq = torch.where(live, arg + 1, torch.zeros_like(arg))
    return Purity(share.clamp(0.0, 1.0), freq)


def frequency_energy(w: torch.Tensor) -> tuple[torch.Tensor, float]:
    """Energy per frequency of a ``[p, d]`` matrix over Z_p (e.g. the token embedding).

    Returns ``(energy[k-1] for k = 1..(p-1)/2, constant-row energy)``: frequency
    ``k``'s energy is the squared norm of rows ``cos k`` and ``sin k`` of ``F @ w``.
    """
    coeffs = fourier_basis(w.shape[0]).to(w.device) @ w.to(torch.float64)
    sq = coeffs.pow(2).sum(dim=1)
    return sq[1:].view(-1, 2).sum(dim=1), float(sq[0])


def key_frequencies(energy: torch.Tensor, threshold: float) -> list[int]:
    """Frequencies (1-based, ascending) whose energy is at least ``threshold`` x the largest.

    A grokked embedding concentrates on a few frequencies, each carrying far more
    than the rest, so a relative threshold (default 0.1) separates them robustly.
    """
    cutoff = threshold * float(energy.max())
    return [int(i) + 1 for i in torch.nonzero(energy >= cutoff).flatten()]


def key_frequency_variance_share(x: torch.Tensor, keys: list[int]) -> float:
    """Share of the centred grid's variance (all trailing dims) in the key-frequency blocks."""
    coeffs = fourier_2d(centre_grid(x))
    total = float(coeffs.pow(2).sum())
    if total == 0.0 or not keys:
        return 0.0
    energy = block_energy(coeffs).flatten(1).sum(1)  # [K]
    return float(energy[[k - 1 for k in keys]].sum()) / total


@dataclass(frozen=True)
class GroundTruth:
    """Ground-truth feature directions in activation space (SCIENCE.md section 2).

    ``directions[i]`` is unit-norm (or zero if the component is absent);
    ``frequency[i]``, ``u[i]``, ``v[i]`` name its block component;
    ``energy_share[i]`` is its share of the centred activations' total energy.
    """

    directions: torch.Tensor  # [n, d] float64
    frequency: torch.Tensor  # [n] int64
    u: torch.Tensor  # [n] int64 basis row for a
    v: torch.Tensor  # [n] int64 basis row for b
    energy_share: torch.Tensor  # [n] float64


def ground_truth_directions(x: torch.Tensor, keys: list[int]) -> GroundTruth:
    """For each key frequency and each of its 8 block components (u, v), the direction
    ``sum_ab x_c[a, b] F[u, a] F[v, b]`` of the centred grid ``x[a, b, d]``, normalised."""
    coeffs = fourier_2d(centre_grid(x))  # [p, p, d]
    total = coeffs.pow(2).sum()
    comps = [(k, u, v) for k in keys for (u, v) in block_components(k)]
    if comps:
        vecs = torch.stack([coeffs[u, v] for (_, u, v) in comps])
    else:
        vecs = coeffs.new_zeros(0, x.shape[-1])
    norms = vecs.norm(dim=1)
    dirs = vecs / norms.clamp_min(1e-300).unsqueeze(1)
    dirs[norms == 0] = 0.0
    col = list(zip(*comps, strict=True)) if comps else [(), (), ()]
    return GroundTruth(
        directions=dirs,
        frequency=torch.tensor(col[0], dtype=torch.int64),
        u=torch.tensor(col[1], dtype=torch.int64),
        v=torch.tensor(col[2], dtype=torch.int64),
        energy_share=norms.pow(2) / total.clamp_min(1e-300),
    )


def effective_rank(x: torch.Tensor) -> float:
    """Effective rank (Roy & Vetterli 2007) of the mean-centred rows of ``x[n, d]``:
    ``exp`` of the entropy of the singular values normalised to sum to 1."""
    x = x.to(torch.float64)
    s = torch.linalg.svdvals(x - x.mean(dim=0, keepdim=True))
    s = s[s > 0]
    if len(s) == 0:
        return 0.0
    q = s / s.sum()
    return float(torch.exp(-(q * q.log()).sum()))
