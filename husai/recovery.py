"""Recovery of the ground-truth Fourier features by one SAE (SCIENCE.md section 3).

Inputs are an SAE's latent activations on the full ``p x p`` input grid, either
``[p, p, d_sae]`` or flattened ``[p*p, d_sae]`` with row ``a * p + b`` for the
input (a, b) (the order of ``torch.cartesian_prod(arange(p), arange(p))``); its
decoder atoms ``[d_sae, d_in]`` (rows of ``W_dec``); and the ground-truth
directions ``[n_gt, d_in]`` with their frequency labels, as
:func:`husai.fourier.ground_truth_directions` builds them.

Conventions
-----------
* Purity and frequency of a latent: :func:`husai.fourier.purity` of its
  activation over the grid (share of its variance in its best frequency block,
  Nanda et al. 2023). A latent that is constant on the grid gets purity 0.
* Live latent: fires (is non-zero) on at least one input of the grid, as
  SAEBench's ``frac_alive`` counts it.
* ``pure_latent_fraction``: the share of live latents with purity
  ``>= purity_threshold`` (0.85, Nanda's neuron criterion); 0 without live latents.
* ``key_frequency_coverage``: the share of key frequencies with at least one live
  pure latent of that frequency.
* ``decoder_alignment``: for each ground-truth direction, the largest ``|cos|``
  with any decoder atom, averaged over the present directions.
  ``random_decoder_alignment`` is the same for an isotropic dictionary of the
  decoder's shape.
* Present directions: block components that the activations actually contain.
  A zero direction is absent; so, when the energy shares of
  :class:`husai.fourier.GroundTruth` are given, is one carrying less than
  ``min_energy_share`` (1e-9) of the centred activations' energy. A component
  absent in exact arithmetic comes out of ``ground_truth_directions`` as
  normalised round-off (measured: shares below 1e-30 on a planted grid), a
  random direction that no SAE could be expected to find.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from husai.baselines import isotropic_dictionary
from husai.fourier import Purity, purity
from husai.stability import DEFAULT_CHUNK, Atoms, as_atoms, best_matches

PURITY_THRESHOLD = 0.85
LATENT_CHUNK = 256  # latents per purity call: [p, p, 256] float64 is 26 MiB at p = 113
MIN_ENERGY_SHARE = 1e-9


def as_grid(acts: torch.Tensor, p: int | None = None) -> torch.Tensor:
    """Latent activations as a ``[p, p, d_sae]`` grid (flattened rows are ``a * p + b``)."""
    if acts.ndim == 3:
        if acts.shape[0] != acts.shape[1] or (p is not None and acts.shape[0] != p):
            raise ValueError(f"expected a [p, p, d_sae] grid, got {tuple(acts.shape)}")
        return acts
    if acts.ndim != 2:
        raise ValueError(f"expected [p, p, d_sae] or [p*p, d_sae], got {tuple(acts.shape)}")
    side = p if p is not None else round(acts.shape[0] ** 0.5)
    if side * side != acts.shape[0]:
        raise ValueError(f"{acts.shape[0]} rows are not a p x p grid")
    return acts.reshape(side, side, acts.shape[1])


def latent_purity(acts: torch.Tensor, chunk_size: int = LATENT_CHUNK) -> Purity:
    """Purity and best frequency of every latent (``husai.fourier.purity``), computed
    ``chunk_size`` latents at a time so that d_sae 16384 fits in memory."""
    grid = as_grid(acts)
    parts = [purity(grid[:, :, i : i + chunk_size]) for i in range(0, grid.shape[2], chunk_size)]
    return Purity(torch.cat([q.purity for q in parts]), torch.cat([q.frequency for q in parts]))


def live_latents(acts: torch.Tensor) -> torch.Tensor:
    """``[d_sae]`` bool: the latent is non-zero on at least one input of the grid."""
    grid = as_grid(acts)
    return (grid != 0).flatten(0, 1).any(dim=0)


def pure_latent_fraction(
    pur: Purity, live: torch.Tensor, threshold: float = PURITY_THRESHOLD
) -> float:
    """Share of live latents with purity ``>= threshold`` (0 if none is live)."""
    n_live = int(live.sum())
    return int((live & (pur.purity >= threshold)).sum()) / n_live if n_live else 0.0


def pure_latents_per_frequency(
    pur: Purity, live: torch.Tensor, frequencies: Sequence[int], threshold: float = PURITY_THRESHOLD
) -> dict[int, int]:
    """Number of live pure latents of each frequency in ``frequencies``."""
    pure = live & (pur.purity >= threshold)
    return {int(k): int((pure & (pur.frequency == k)).sum()) for k in frequencies}


def key_frequency_coverage(
    pur: Purity,
    live: torch.Tensor,
    key_frequencies: Sequence[int],
    threshold: float = PURITY_THRESHOLD,
) -> float:
    """Share of key frequencies with at least one live latent of purity ``>= threshold``
    and that frequency (0 without key frequencies)."""
    if not key_frequencies:
        return 0.0
    counts = pure_latents_per_frequency(pur, live, key_frequencies, threshold)
    return sum(1 for c in counts.values() if c > 0) / len(key_frequencies)


def present_directions(
    directions: Atoms,
    energy_share: torch.Tensor | None = None,
    min_energy_share: float = MIN_ENERGY_SHARE,
) -> torch.Tensor:
    """``[n_gt]`` bool: the direction is non-zero and, when ``energy_share`` is given,
    carries at least ``min_energy_share`` of the activations' centred energy."""
    dirs = as_atoms(directions, "directions")
    keep = dirs.norm(dim=1) > 0
    if energy_share is not None:
        share = torch.as_tensor(energy_share, dtype=torch.float64).flatten()
        if share.shape[0] != dirs.shape[0]:
            raise ValueError(f"{share.shape[0]} energy shares for {dirs.shape[0]} directions")
        keep &= share >= min_energy_share
    return keep


def direction_alignment(
    decoder: Atoms, directions: Atoms, chunk_size: int = DEFAULT_CHUNK
) -> torch.Tensor:
    """For each ground-truth direction, its largest ``|cos|`` with any decoder atom
    (``[n_gt]``; 0 for a zero direction)."""
    return best_matches(directions, decoder, absolute=True, chunk_size=chunk_size).cosine


def decoder_alignment(
    decoder: Atoms,
    directions: Atoms,
    energy_share: torch.Tensor | None = None,
    min_energy_share: float = MIN_ENERGY_SHARE,
    chunk_size: int = DEFAULT_CHUNK,
) -> float:
    """Mean over the present ground-truth directions (:func:`present_directions`) of
    their best ``|cos|`` with a decoder atom (SCIENCE.md section 3); 0 without any."""
    keep = present_directions(directions, energy_share, min_energy_share)
    if not bool(keep.any()):
        return 0.0
    return float(direction_alignment(decoder, as_atoms(directions)[keep], chunk_size).mean())


def random_decoder_alignment(
    n_atoms: int,
    directions: Atoms,
    seed: int,
    energy_share: torch.Tensor | None = None,
    min_energy_share: float = MIN_ENERGY_SHARE,
    chunk_size: int = DEFAULT_CHUNK,
) -> float:
    """:func:`decoder_alignment` of an isotropic dictionary of ``n_atoms`` atoms,
    ``husai.baselines.isotropic_dictionary(n_atoms, d_in, seed)``."""
    d_in = as_atoms(directions, "directions").shape[1]
    random = isotropic_dictionary(n_atoms, d_in, seed)
    return decoder_alignment(random, directions, energy_share, min_energy_share, chunk_size)


def recovery_metrics(
    acts: torch.Tensor,
    decoder: Atoms,
    gt_directions: Atoms,
    gt_frequency: torch.Tensor,
    key_frequencies: Sequence[int],
    *,
    gt_energy_share: torch.Tensor | None = None,
    min_energy_share: float = MIN_ENERGY_SHARE,
    purity_threshold: float = PURITY_THRESHOLD,
    seed: int = 0,
    latent_chunk: int = LATENT_CHUNK,
    chunk_size: int = DEFAULT_CHUNK,
) -> dict[str, Any]:
    """Every recovery metric of one SAE (module docstring), JSON-ready.

    ``gt_directions``, ``gt_frequency`` and ``gt_energy_share`` are the fields of
    :class:`husai.fourier.GroundTruth`. Keys: ``n_latents``, ``n_live``, ``n_pure``,
    ``pure_latent_fraction``, ``key_frequency_coverage``,
    ``pure_latents_per_key_frequency`` ({"k": count}), ``n_ground_truth`` (present
    directions), ``decoder_alignment``, ``decoder_alignment_per_key_frequency``
    ({"k": mean over that frequency's present directions, or None if it has none}),
    ``random_decoder_alignment`` (isotropic dictionary of the decoder's shape from
    ``seed``) and, when energy shares are given,
    ``decoder_alignment_energy_weighted`` (weighted by the directions' energy shares).
    """
    grid = as_grid(acts)
    dec = as_atoms(decoder, "decoder")
    if dec.shape[0] != grid.shape[2]:
        raise ValueError(
            f"{grid.shape[2]} latents in the activations, {dec.shape[0]} decoder atoms"
        )
    dirs = as_atoms(gt_directions, "gt_directions")
    freq = torch.as_tensor(gt_frequency).flatten()
    if freq.shape[0] != dirs.shape[0]:
        raise ValueError(f"{freq.shape[0]} frequency labels for {dirs.shape[0]} directions")
    pur = latent_purity(grid, latent_chunk)
    live = live_latents(grid)
    keep = present_directions(dirs, gt_energy_share, min_energy_share)
    best = direction_alignment(dec, dirs, chunk_size)
    per_key: dict[str, float | None] = {}
    for k in key_frequencies:
        sel = keep & (freq == k)
        per_key[str(int(k))] = float(best[sel].mean()) if bool(sel.any()) else None
    counts = pure_latents_per_frequency(pur, live, key_frequencies, purity_threshold)
    out: dict[str, Any] = {
        "n_latents": int(grid.shape[2]),
        "n_live": int(live.sum()),
        "n_pure": int((live & (pur.purity >= purity_threshold)).sum()),
        "pure_latent_fraction": pure_latent_fraction(pur, live, purity_threshold),
        "key_frequency_coverage": key_frequency_coverage(
            pur, live, key_frequencies, purity_threshold
        ),
        "pure_latents_per_key_frequency": {str(k): c for k, c in counts.items()},
        "n_ground_truth": int(keep.sum()),
        "decoder_alignment": float(best[keep].mean()) if bool(keep.any()) else 0.0,
        "decoder_alignment_per_key_frequency": per_key,
        "random_decoder_alignment": random_decoder_alignment(
            dec.shape[0], dirs, seed, gt_energy_share, min_energy_share, chunk_size
        ),
    }
    if gt_energy_share is not None:
        w = torch.as_tensor(gt_energy_share, dtype=torch.float64).flatten()[keep]
        total = float(w.sum())
        out["decoder_alignment_energy_weighted"] = (
            float((w * best[keep]).sum()) / total if total > 0 else 0.0
        )
    return out
