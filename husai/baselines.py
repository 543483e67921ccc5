"""Random baselines for the stability metrics (SCIENCE.md section 5).

Every stability number is reported next to what chance gives for the same shape:

* Isotropic: independent Gaussian dictionaries of the same shape, rows normalised
  (uniform on the sphere). With ``|cos|`` and d_in 128 their PWMCC is about 0.18
  for 16 atoms, 0.25 for 128, 0.30 for 1024 and 0.31 for 2048
  (:func:`isotropic_pwmcc_expectation` gives the exact expectation).
* Data subspace (added here, not in SCIENCE.md): isotropic dictionaries inside the
  span of the activations' top principal directions, the fewest that hold a given
  share of the variance (:func:`principal_basis`, :func:`subspace_dictionary`). When
  the activations are low-rank (here 99% of the variance lies in about 9 of 128
  dimensions) any dictionary that reconstructs them lives in that span, and random
  directions there already match far better than isotropic ones in R^d_in: this is
  the baseline that separates "the seeds agree on features" from "the seeds agree
  on the subspace".
* Untrained: the same SAE architecture at initialisation, at different seeds.
  The caller passes the initial atoms (e.g. from the SAE engine's
  ``init_saes(config, seeds)``), so this module does not depend on the engine.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from scipy.integrate import quad
from scipy.special import betainc

from husai.determinism import generator
from husai.stability import (
    DEFAULT_CHUNK,
    DEFAULT_RANKS,
    DEFAULT_THRESHOLD,
    Atoms,
    pairwise_metrics,
)


def isotropic_dictionary(n_atoms: int, d_in: int, seed: int) -> torch.Tensor:
    """``n_atoms`` unit vectors drawn uniformly on the sphere of R^d_in (float32
    Gaussian rows, normalised), reproducible from ``seed``."""
    if n_atoms < 1 or d_in < 1:
        raise ValueError(f"need n_atoms >= 1 and d_in >= 1, got {n_atoms}, {d_in}")
    x = torch.randn(n_atoms, d_in, generator=generator(seed), dtype=torch.float32)
    return x / x.norm(dim=1, keepdim=True)


def principal_basis(x: torch.Tensor, variance_share: float) -> torch.Tensor:
    """Orthonormal rows [r, d_in]: the top principal directions of the centred rows of
    ``x`` [N, d_in], r the fewest whose eigenvalues hold >= ``variance_share`` of the
    total variance (computed in float64)."""
    if not 0.0 < variance_share <= 1.0:
        raise ValueError(f"variance_share must be in (0, 1], got {variance_share}")
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError(f"need x as [N >= 2, d_in], got {tuple(x.shape)}")
    xc = x.to(torch.float64) - x.to(torch.float64).mean(0)
    eigvals, eigvecs = torch.linalg.eigh(xc.T @ xc)
    eigvals, eigvecs = eigvals.flip(0).clamp_min(0.0), eigvecs.flip(1)
    total = float(eigvals.sum())
    if total <= 0.0:
        raise ValueError("x has no variance")
    cumulative = eigvals.cumsum(0) / total
    r = int((cumulative < variance_share - 1e-12).sum()) + 1
    return eigvecs[:, : min(r, x.shape[1])].T.contiguous()


def subspace_dictionary(n_atoms: int, basis: torch.Tensor, seed: int) -> torch.Tensor:
    """``n_atoms`` unit vectors uniform on the unit sphere of the span of ``basis``
    (orthonormal rows [r, d_in]), reproducible from ``seed``; float32 [n_atoms, d_in].

    Drawn as isotropic Gaussians in R^d_in projected onto the span (``g B^T B``), so the
    atoms depend on the span only, not on which orthonormal basis of it ``basis`` is:
    principal directions of equal variance (the two axes of a round circle) come out of
    an eigendecomposition in an arbitrary rotation whose last bits may differ between
    machines or thread counts, and coordinates drawn in that basis would inherit it."""
    if n_atoms < 1:
        raise ValueError(f"need n_atoms >= 1, got {n_atoms}")
    b = basis.to(torch.float64)
    g = torch.randn(n_atoms, b.shape[1], generator=generator(seed), dtype=torch.float64)
    atoms = (g @ b.T) @ b
    return (atoms / atoms.norm(dim=1, keepdim=True)).to(torch.float32)


def isotropic_pwmcc_expectation(n_atoms: int, d_in: int) -> float:
    """Exact expected PWMCC (``|cos|``) of two independent isotropic dictionaries of
    ``n_atoms`` atoms each in R^d_in.

    For a fixed atom, its ``|cos|`` with each of the other dictionary's atoms are
    independent, with ``cos^2 ~ Beta(1/2, (d_in - 1)/2)``; PWMCC's expectation is
    the expected maximum of ``n_atoms`` of them,
    ``int_0^1 1 - F(t)^n_atoms dt`` with ``F(t) = I_{t^2}(1/2, (d_in - 1)/2)``.
    """
    if n_atoms < 1 or d_in < 2:
        raise ValueError(f"need n_atoms >= 1 and d_in >= 2, got {n_atoms}, {d_in}")

    def tail(t: float) -> float:
        return 1.0 - float(betainc(0.5, (d_in - 1) / 2, t * t)) ** n_atoms

    value, _ = quad(tail, 0.0, 1.0, limit=200, points=[0.05, 0.1, 0.2, 0.3, 0.4, 0.6])
    return float(value)


def isotropic_baseline(
    n_atoms: int,
    d_in: int,
    seeds: Sequence[int],
    *,
    threshold: float = DEFAULT_THRESHOLD,
    ranks: Sequence[int] = DEFAULT_RANKS,
    absolute: bool = True,
    hungarian: bool = True,
    chunk_size: int = DEFAULT_CHUNK,
) -> dict[str, np.ndarray]:
    """Pairwise stability metrics of isotropic dictionaries, one per seed
    (:func:`husai.stability.pairwise_metrics` format, ready for
    :func:`husai.stats.seed_stats`).

    Each seed's "SAE" has decoder atoms ``isotropic_dictionary(n_atoms, d_in, seed)``
    and the same atoms as encoder atoms (tied, as at SAELens initialisation where
    ``W_enc = W_dec.T``). Tying makes the encoder and decoder matchings agree, so
    it is the most generous random baseline for the shared fraction.
    """
    decoders = [isotropic_dictionary(n_atoms, d_in, s) for s in seeds]
    return pairwise_metrics(
        decoders,
        decoders,
        threshold=threshold,
        ranks=ranks,
        absolute=absolute,
        hungarian=hungarian,
        chunk_size=chunk_size,
    )


def subspace_baseline(
    n_atoms: int, basis: torch.Tensor, seeds: Sequence[int], **options: Any
) -> dict[str, np.ndarray]:
    """Like :func:`isotropic_baseline`, with atoms uniform in the span of ``basis``
    (see :func:`principal_basis`); tied encoder atoms, the most generous choice.
    ``options`` are those of :func:`husai.stability.pairwise_metrics`."""
    decoders = [subspace_dictionary(n_atoms, basis, s) for s in seeds]
    return pairwise_metrics(decoders, decoders, **options)


def untrained_baseline(
    decoders: Sequence[Atoms],
    encoders: Sequence[Atoms] | None = None,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    ranks: Sequence[int] = DEFAULT_RANKS,
    absolute: bool = True,
    hungarian: bool = True,
    chunk_size: int = DEFAULT_CHUNK,
) -> dict[str, np.ndarray]:
    """Pairwise stability metrics of the same architecture at initialisation,
    different seeds: ``decoders[i]`` (and ``encoders[i]``, as ``W_enc.T``) are the
    initial atoms ``[d_sae, d_in]`` of seed i. Use the same seeds, in the same
    order, as the trained SAEs so that :func:`husai.stats.ratio_stats` can pair them.
    """
    return pairwise_metrics(
        decoders,
        encoders,
        threshold=threshold,
        ranks=ranks,
        absolute=absolute,
        hungarian=hungarian,
        chunk_size=chunk_size,
    )
