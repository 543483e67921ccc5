"""Geometry of activations and SAE dictionaries (SCIENCE.md section 7, question 4).

Which properties of a dictionary survive a change of seed when single atoms do not?

Conventions
-----------
* Atoms are rows ``[n_atoms, d_in]`` normalised to unit length (zero rows stay
  zero), as in :mod:`husai.stability`. All linear algebra is float64.
* Activation spectrum (:func:`activation_spectrum`): singular values ``s_i`` of
  the mean-centred activations ``[N, d_in]``; ``variance_share = s_i^2 / sum s^2``
  and the effective rank of Roy & Vetterli (2007), ``exp`` of the entropy of
  ``s_i / sum s`` (:func:`husai.fourier.effective_rank`, SCIENCE.md section 7).
* Gram spectrum (:func:`gram_spectrum`): the eigenvalues of the atoms' Gram
  matrix ``G = U U^T`` (``[n_atoms, n_atoms]``, U the unit atoms) that can be
  non-zero: the ``min(n_atoms, d_in)`` squared singular values of U, descending,
  divided by their sum (``trace G`` = number of non-zero atoms), padded with zeros
  to length ``d_in`` so that dictionaries of any size compare. An orthonormal
  dictionary has a flat spectrum ``1/d``; a dictionary of r orthonormal atoms each
  repeated m times has r eigenvalues ``1/r`` and the rest 0. Its effective rank
  (:func:`spectrum_effective_rank`) uses the same definition as the activations'
  (entropy of the normalised singular values ``sqrt(lambda)``), and the
  participation ratio ``(sum lambda)^2 / sum lambda^2`` is reported beside it.
* Spectrum distance (:func:`spectrum_distance`): total variation
  ``1/2 sum_i |lambda_A,i - lambda_B,i|`` between two normalised, sorted spectra
  (0 = identical, 1 = disjoint support).
* Principal subspace (:func:`principal_directions`): the top-r right-singular
  vectors of the (uncentred) unit atoms, as in
  :func:`husai.stability.subspace_overlap`; for activations, of the centred data
  (its principal components). Overlap of two r-dim subspaces:
  ``||V_A^T V_B||_F^2 / r`` (mean ``cos^2`` of the principal angles; random
  expectation ``r / d_in``).
* Groups (:func:`assign_groups`): each key frequency k has a ground-truth
  subspace, the span of its present ground-truth directions
  (:func:`group_bases`, orthonormalised, singular values below ``1e-8`` of the
  largest dropped). An atom belongs to group k when the largest share of its
  squared norm in any one group subspace is k's and is at least ``min_share``;
  otherwise to no group (label -1).
* Group conservation between dictionaries A and B, for each group k
  (:func:`group_conservation`), with ``r = min(dim S_k, n_A,k, n_B,k)``:

  - ``group_overlap``: overlap of the top-r principal subspaces of A's and B's
    group-k atoms (the subspace the group spans);
  - ``atom_in_span``: mean over the group's atoms of the share of an atom's squared
    norm in the other dictionary's group-r subspace (symmetrised: mean of A-in-B
    and B-in-A), i.e. whether an atom lies in the other seed's group span even
    when no single atom there matches it;
  - ``atom_match``: mean over the group's atoms of the best ``cos^2`` with *any*
    atom of the other dictionary (symmetrised): the single-atom (r = 1)
    counterpart of ``group_overlap`` on the same ``cos^2`` scale;
  - ``random_overlap``: ``r / d_in``, two random r-dim subspaces;
  - ``null_overlap``: mean ``group_overlap`` when A's and B's group labels are
    shuffled among their grouped atoms (group sizes kept), over ``null_rounds``
    draws from ``husai.determinism.generator(seed)``: what the same dictionaries
    give for arbitrary groups of the same sizes. It controls for the atoms all
    lying in the activations' low-dimensional span, which ``random_overlap`` does not.

  A group is conserved while its atoms are not when ``group_overlap`` and
  ``atom_in_span`` are high (near 1, far above both nulls) and ``atom_match`` is low.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from husai.baselines import isotropic_dictionary
from husai.determinism import generator
from husai.errors import HusaiError
from husai.fourier import GroundTruth, effective_rank
from husai.recovery import live_latents, present_directions
from husai.stability import Atoms, as_atoms, pwmcc, unit_rows
from husai.stats import pair_matrix, pair_stats, per_seed_stats

if TYPE_CHECKING:
    from husai.sae import BatchedSAE

RANK_TOL = 1e-8


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """Run small dense linear algebra (eigh / SVD of ``d_in x d_in`` matrices) on one
    torch thread, then restore the thread count.

    On a busy machine each of eigh's many parallel regions waits for a descheduled
    thread, which makes small eigh calls orders of magnitude slower with 2 threads
    than with 1 (measured: benchmarks/RESULTS-defaults.md). A fixed thread count also
    keeps the results independent of ``runtime.threads``.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


# ----------------------------------------------------------------------------- spectra


def activation_spectrum(x: torch.Tensor) -> dict[str, Any]:
    """Spectrum of the centred activations ``[N, d_in]`` (module docstring): keys
    ``singular_values``, ``variance_share`` (lists, descending), ``effective_rank``,
    ``participation_ratio`` and ``dims_for_variance`` ({"0.9": d, "0.95": d, "0.99": d}:
    how many principal components hold that share of the variance)."""
    x = x.to(torch.float64)
    s = torch.linalg.svdvals(x - x.mean(dim=0, keepdim=True))
    var = s.pow(2)
    total = float(var.sum())
    share = var / total if total > 0 else torch.zeros_like(var)
    cum = torch.cumsum(share, dim=0)
    dims = {}
    for q in (0.9, 0.95, 0.99):
        dims[str(q)] = int(torch.searchsorted(cum, torch.tensor([q - 1e-12], dtype=cum.dtype))) + 1
    return {
        "singular_values": s.tolist(),
        "variance_share": share.tolist(),
        "effective_rank": effective_rank(x),
        "participation_ratio": participation_ratio(share),
        "dims_for_variance": dims,
    }


def gram_spectrum(atoms: Atoms) -> torch.Tensor:
    """Normalised eigenvalues of the unit atoms' Gram matrix ``U U^T`` (module
    docstring): ``[d_in]`` float64, descending, summing to 1, zeros beyond
    ``min(n_atoms, d_in)`` (all zeros for an all-zero dictionary)."""
    u = unit_rows(atoms)
    lam = torch.zeros(u.shape[1], dtype=torch.float64)
    sv = torch.linalg.svdvals(u).pow(2)
    lam[: len(sv)] = sv
    total = float(lam.sum())
    return lam / total if total > 0 else lam


def spectrum_effective_rank(spectrum: torch.Tensor) -> float:
    """``exp`` of the entropy of the normalised singular values ``sqrt(lambda)``
    of a Gram spectrum (the activations' effective-rank definition)."""
    s = spectrum.to(torch.float64).clamp_min(0).sqrt()
    s = s[s > 0]
    if len(s) == 0:
        return 0.0
    q = s / s.sum()
    return float(torch.exp(-(q * q.log()).sum()))


def participation_ratio(spectrum: torch.Tensor) -> float:
    """``(sum lambda)^2 / sum lambda^2`` (0 for an all-zero spectrum)."""
    lam = spectrum.to(torch.float64)
    sq = float(lam.pow(2).sum())
    return float(lam.sum()) ** 2 / sq if sq > 0 else 0.0


def numerical_rank(spectrum: torch.Tensor, tol: float = RANK_TOL) -> int:
    """Number of eigenvalues above ``tol`` times the largest."""
    lam = spectrum.to(torch.float64)
    top = float(lam.max()) if len(lam) else 0.0
    return int((lam > tol * top).sum()) if top > 0 else 0


def spectrum_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """Total variation between two normalised spectra of the same length."""
    if a.shape != b.shape:
        raise ValueError(f"spectra of different lengths: {tuple(a.shape)} vs {tuple(b.shape)}")
    return 0.5 * float((a.to(torch.float64) - b.to(torch.float64)).abs().sum())


def gram_summary(atoms: Atoms) -> dict[str, Any]:
    """``effective_rank``, ``participation_ratio``, ``numerical_rank``, ``top_eigenvalue``
    of the Gram spectrum, and ``self_max_cos``: mean over atoms of the largest
    ``|cos|`` with another atom of the same dictionary (near-duplicate atoms)."""
    lam = gram_spectrum(atoms)
    u = unit_rows(atoms)
    c = (u @ u.T).abs()
    c.fill_diagonal_(0.0)
    return {
        "effective_rank": spectrum_effective_rank(lam),
        "participation_ratio": participation_ratio(lam),
        "numerical_rank": numerical_rank(lam),
        "top_eigenvalue": float(lam[0]),
        "self_max_cos": float(c.max(dim=1).values.mean()) if u.shape[0] > 1 else 0.0,
    }


# ----------------------------------------------------------------------------- subspaces


def principal_directions(u: torch.Tensor, centre: bool = False) -> torch.Tensor:
    """Right-singular vectors of ``u [n, d]`` as columns ``[d, d]``, largest first
    (optionally of the mean-centred rows). Signs and order within a tie are arbitrary."""
    u = u.to(torch.float64)
    if centre:
        u = u - u.mean(dim=0, keepdim=True)
    _, vecs = torch.linalg.eigh(u.T @ u)
    return vecs.flip(1)


def basis_overlap(va: torch.Tensor, vb: torch.Tensor) -> float:
    """``||V_A^T V_B||_F^2 / min(r_A, r_B)`` for orthonormal columns ``V_A [d, r_A]``, ``V_B``."""
    r = min(va.shape[1], vb.shape[1])
    if r == 0:
        return float("nan")
    return float((va.T @ vb).pow(2).sum()) / r


def overlap_curve(va: torch.Tensor, vb: torch.Tensor, ranks: Sequence[int]) -> dict[int, float]:
    """Overlap of the top-r columns of two direction matrices for each r in ``ranks``."""
    m = (va.T @ vb).pow(2)  # [d, d]
    cum = m.cumsum(0).cumsum(1)
    return {int(r): float(cum[r - 1, r - 1]) / r for r in ranks}


# ----------------------------------------------------------------------------- groups


def group_bases(
    directions: Atoms,
    frequency: torch.Tensor,
    groups: Sequence[int],
    present: torch.Tensor | None = None,
    tol: float = RANK_TOL,
) -> list[torch.Tensor]:
    """For each group label in ``groups`` (a key frequency), an orthonormal basis
    ``[d_in, r_k]`` of the span of its (present) ground-truth directions."""
    dirs = as_atoms(directions, "directions")
    freq = torch.as_tensor(frequency).flatten()
    keep = torch.ones(dirs.shape[0], dtype=torch.bool) if present is None else present
    out = []
    for k in groups:
        d = dirs[(freq == k) & keep]
        if d.shape[0] == 0:
            out.append(dirs.new_zeros(dirs.shape[1], 0))
            continue
        uu, s, _ = torch.linalg.svd(d.T, full_matrices=False)
        out.append(uu[:, s > tol * float(s.max())] if float(s.max()) > 0 else uu[:, :0])
    return out


def group_shares(atoms: Atoms, bases: Sequence[torch.Tensor]) -> torch.Tensor:
    """``[n_atoms, n_groups]``: share of each unit atom's squared norm in each group's
    subspace (0 for a zero atom)."""
    u = unit_rows(atoms)
    if not bases:
        return u.new_zeros(u.shape[0], 0)
    return torch.stack([(u @ q.to(u)).pow(2).sum(dim=1) for q in bases], dim=1)


def assign_groups(atoms: Atoms, bases: Sequence[torch.Tensor], min_share: float) -> torch.Tensor:
    """``[n_atoms]`` int64: index of the group whose subspace holds the largest share
    of the atom (ties: the lowest index) when that share is ``>= min_share``, else -1."""
    shares = group_shares(atoms, bases)
    if shares.shape[1] == 0:
        return torch.full((shares.shape[0],), -1, dtype=torch.int64)
    best, arg = shares.max(dim=1)
    return torch.where(best >= min_share, arg, torch.full_like(arg, -1))


@dataclass(frozen=True)
class GroupPair:
    """Conservation of one group between two dictionaries (module docstring)."""

    n_a: int
    n_b: int
    rank: int
    group_overlap: float | None
    atom_in_span: float | None
    atom_match: float | None
    random_overlap: float | None
    null_overlap: float | None


def top_directions(u: torch.Tensor, r: int, tol: float = RANK_TOL) -> torch.Tensor:
    """The top-r right-singular vectors of ``u [n, d]`` as columns ``[d, <= r]``
    (uncentred), from the smaller of the two Gram matrices; directions with a
    singular value below ``tol`` times the largest are dropped."""
    u = u.to(torch.float64)
    n, d = u.shape
    r = min(r, n, d)
    if r == 0:
        return u.new_zeros(d, 0)
    if n < d:
        lam, vecs = torch.linalg.eigh(u @ u.T)  # ascending
        lam, vecs = lam.flip(0)[:r], vecs.flip(1)[:, :r]
        top = float(lam[0]) if len(lam) else 0.0
        keep = lam > (tol * tol) * top if top > 0 else torch.zeros_like(lam, dtype=torch.bool)
        v = u.T @ vecs[:, keep]
        return v / v.norm(dim=0, keepdim=True)
    return principal_directions(u)[:, :r]


@dataclass(frozen=True)
class GroupSpans:
    """One dictionary's atoms split into groups, with the top principal directions of
    each group (up to the group's ground-truth dimension) and of each group under
    ``null_rounds`` shuffles of the labels among the grouped atoms."""

    atoms: torch.Tensor  # [n, d] unit rows
    labels: torch.Tensor  # [n] int64 group or -1
    spans: list[torch.Tensor]  # per group [d, <= dims[k]]
    null_spans: list[list[torch.Tensor]]  # [round][group]

    def size(self, k: int) -> int:
        return int((self.labels == k).sum())


def group_spans(
    atoms: Atoms,
    labels: torch.Tensor,
    dims: Sequence[int],
    *,
    null_rounds: int = 100,
    seed: int = 0,
) -> GroupSpans:
    """Precompute :class:`GroupSpans` (the shuffles drawn from ``generator(seed)``)."""
    u = unit_rows(atoms)
    lab = torch.as_tensor(labels).to(torch.int64)
    if lab.shape != (u.shape[0],):
        raise ValueError(f"{tuple(lab.shape)} labels for {u.shape[0]} atoms")
    spans = [top_directions(u[lab == k], int(dims[k])) for k in range(len(dims))]
    grouped = torch.nonzero(lab >= 0).flatten()
    gen = generator(seed)
    null = []
    for _ in range(null_rounds):
        shuffled = lab[grouped][torch.randperm(len(grouped), generator=gen)]
        null.append(
            [top_directions(u[grouped[shuffled == k]], int(dims[k])) for k in range(len(dims))]
        )
    return GroupSpans(u, lab, spans, null)


def compare_group_spans(a: GroupSpans, b: GroupSpans, dims: Sequence[int]) -> list[GroupPair]:
    """:class:`GroupPair` for each group (module docstring), from precomputed spans.
    The null uses round t of A with round t of B (rounds present in both)."""
    if a.atoms.shape[1] != b.atoms.shape[1]:
        raise ValueError(
            f"atoms live in different spaces: d_in {a.atoms.shape[1]} vs {b.atoms.shape[1]}"
        )
    d_in = a.atoms.shape[1]
    rounds = min(len(a.null_spans), len(b.null_spans))
    out = []
    for k in range(len(dims)):
        ga, gb = a.atoms[a.labels == k], b.atoms[b.labels == k]
        r = min(int(dims[k]), ga.shape[0], gb.shape[0], a.spans[k].shape[1], b.spans[k].shape[1])
        if r == 0:
            out.append(GroupPair(ga.shape[0], gb.shape[0], 0, None, None, None, None, None))
            continue
        va, vb = a.spans[k][:, :r], b.spans[k][:, :r]
        in_span = 0.5 * (
            float((ga @ vb).pow(2).sum(1).mean()) + float((gb @ va).pow(2).sum(1).mean())
        )
        match = 0.5 * (
            float(_best_cos2(ga, b.atoms).mean()) + float(_best_cos2(gb, a.atoms).mean())
        )
        null = None
        if rounds:
            null = float(
                np.mean(
                    [
                        basis_overlap(a.null_spans[t][k][:, :r], b.null_spans[t][k][:, :r])
                        for t in range(rounds)
                    ]
                )
            )
        out.append(
            GroupPair(
                ga.shape[0], gb.shape[0], r, basis_overlap(va, vb), in_span, match, r / d_in, null
            )
        )
    return out


def _best_cos2(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """For each unit row of a, the largest cos^2 with a row of b."""
    return (a @ b.T).pow(2).max(dim=1).values


def group_conservation(
    atoms_a: Atoms,
    labels_a: torch.Tensor,
    atoms_b: Atoms,
    labels_b: torch.Tensor,
    n_groups: int,
    dims: Sequence[int],
    *,
    null_rounds: int = 100,
    seed: int = 0,
) -> list[GroupPair]:
    """:class:`GroupPair` for each group ``0..n_groups-1`` (module docstring);
    ``dims[k]`` is the dimension of group k's ground-truth subspace. A group with
    no atom on either side gets ``rank`` 0 and None metrics. A's shuffles are drawn
    from ``seed``, B's from ``seed + 1``."""
    if len(dims) != n_groups:
        raise ValueError(f"{len(dims)} group dimensions for {n_groups} groups")
    sa = group_spans(atoms_a, labels_a, dims, null_rounds=null_rounds, seed=seed)
    sb = group_spans(atoms_b, labels_b, dims, null_rounds=null_rounds, seed=seed + 1)
    return compare_group_spans(sa, sb, dims)


def finite_mean(values: Sequence[float | None]) -> float | None:
    """Mean of the values that are not None/NaN (None if there are none)."""
    v = [x for x in values if x is not None and math.isfinite(x)]
    return float(np.mean(v)) if v else None


# ----------------------------------------------------------------------------- one configuration

GROUP_METRICS = ("group_overlap", "atom_in_span", "atom_match", "null_overlap")
"""The per-pair group measures of :class:`GroupPair` summarised over seed pairs."""
GRAM_KEYS = (
    "effective_rank",
    "participation_ratio",
    "numerical_rank",
    "top_eigenvalue",
    "self_max_cos",
)
"""The :func:`gram_summary` entries summarised over seeds."""


def data_sample_dictionary(x: torch.Tensor, n_atoms: int, seed: int) -> torch.Tensor:
    """``n_atoms`` rows of the mean-centred activations ``x [N, d_in]`` drawn at random
    from ``generator(seed)`` (without replacement when ``n_atoms <= N``, with replacement
    otherwise), as unit atoms ``[n_atoms, d_in]`` float64: the dictionary the
    activations' own geometry gives without any learning."""
    xc = x.to(torch.float64) - x.to(torch.float64).mean(dim=0, keepdim=True)
    g = generator(seed)
    n = xc.shape[0]
    idx = (
        torch.randperm(n, generator=g)[:n_atoms]
        if n_atoms <= n
        else torch.randint(0, n, (n_atoms,), generator=g)
    )
    return unit_rows(xc[idx])


@dataclass(frozen=True)
class GeometryOptions:
    """How :func:`config_geometry` runs (params ``geometry``)."""

    ranks: tuple[int, ...] = (4, 8, 16, 32, 64)  # subspace ranks of the summary
    group_min_share: float = 0.5  # an atom joins a group at this share of its norm^2
    null_rounds: int = 20  # label shuffles per dictionary for the group null
    seed: int = 0  # reference dictionaries from seed and seed + 1; shuffles of seed i from seed + i
    live_only: bool = True  # analyse the atoms of live latents only


class FewLiveLatents(HusaiError):
    """With ``live_only``, a seed has fewer than 2 live latents: nothing to analyse."""

    def __init__(self, seed: int, n_live: int) -> None:
        self.seed = seed
        self.n_live = n_live
        super().__init__(
            f"seed {seed} has {n_live} live latents (at least 2 are needed to "
            "analyse the live atoms alone)"
        )


@dataclass(frozen=True)
class ActivationGeometry:
    """The activations' side of the geometry, computed once for every configuration."""

    x: torch.Tensor  # [N, d_in] the activations as given (the SAEs' input)
    spectrum: dict[str, Any]  # activation_spectrum(x)
    pcs: torch.Tensor  # [d_in, d_in] principal components of the centred activations
    key_frequencies: list[int]
    bases: list[torch.Tensor]  # per key frequency, group_bases of its present directions
    dims: list[int]  # their dimensions
    variance_share_in_span: float  # centred variance in the span of all present directions

    @property
    def d_in(self) -> int:
        return int(self.x.shape[1])

    def summary(self, group_min_share: float) -> dict[str, Any]:
        """``{"activations": ..., "ground_truth": ...}`` of ``metrics/geometry.json``."""
        spec = self.spectrum
        return {
            "activations": {
                "n": int(self.x.shape[0]),
                "d_in": self.d_in,
                "effective_rank": spec["effective_rank"],
                "participation_ratio": spec["participation_ratio"],
                "dims_for_variance": spec["dims_for_variance"],
                "variance_share_top": spec["variance_share"][:16],
            },
            "ground_truth": {
                "key_frequencies": self.key_frequencies,
                "subspace_dims": {
                    str(k): d for k, d in zip(self.key_frequencies, self.dims, strict=True)
                },
                "variance_share_in_span": self.variance_share_in_span,
                "group_min_share": group_min_share,
            },
        }


def activation_geometry(
    x: torch.Tensor, gt: GroundTruth, key_frequencies: Sequence[int]
) -> ActivationGeometry:
    """Spectrum, principal components and ground-truth group subspaces of the
    activations ``x [N, d_in]`` (present directions only: non-zero and above
    ``husai.recovery.MIN_ENERGY_SHARE`` of the energy); one torch thread."""
    with one_thread():
        x64 = x.to(torch.float64)
        keys = [int(k) for k in key_frequencies]
        present = present_directions(gt.directions, gt.energy_share)
        bases = group_bases(gt.directions, gt.frequency, keys, present)
        xc = x64 - x64.mean(dim=0, keepdim=True)
        span = group_bases(gt.directions, torch.zeros_like(gt.frequency), [0], present)[0]
        total_var = float(xc.pow(2).sum())
        in_span = float((xc @ span).pow(2).sum()) / total_var if total_var > 0 else 0.0
        return ActivationGeometry(
            x=x,
            spectrum=activation_spectrum(x64),
            pcs=principal_directions(x64, centre=True),
            key_frequencies=keys,
            bases=bases,
            dims=[q.shape[1] for q in bases],
            variance_share_in_span=in_span,
        )


@dataclass(frozen=True)
class ConfigGeometry:
    """:func:`config_geometry` of one configuration: its ``metrics/geometry.json`` entry
    and its curves (one value per index / rank from 1)."""

    summary: dict[str, Any]
    spectra: dict[
        str, list[float]
    ]  # gram_eigenvalue (mean over seeds), isotropic_..., data_sample_...
    overlaps: dict[str, list[float | None]]  # subspace_overlap (mean over pairs), data_sample_...,
    # activation_pca_overlap (mean over seeds), ranks 1..min(n_atoms of a seed, d_in)


def analysed_atoms(
    sae: BatchedSAE, x: torch.Tensor, live_only: bool
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Per seed: the live mask ``[d_sae]`` (non-zero on some row of ``x``) and the
    unit decoder atoms analysed (float64; the live ones with ``live_only``). Raises
    :class:`FewLiveLatents` when ``live_only`` leaves a seed fewer than 2 atoms."""
    full = sae.decoder_atoms().to(torch.float64)  # [S, d_sae, d_in]
    live = [live_latents(sae.select(i).encode(x)[0]) for i in range(sae.n_seeds)]
    if live_only:
        for seed, mask in zip(sae.seeds, live, strict=True):
            if int(mask.sum()) < 2:
                raise FewLiveLatents(seed, int(mask.sum()))
    return live, [full[i][live[i]] if live_only else full[i] for i in range(sae.n_seeds)]


def pair_fill(n: int, value: Callable[[int, int], float | None]) -> np.ndarray:
    """The ``[n, n]`` pair matrix of ``value(i, j)`` for every pair ``i < j`` (NaN on the
    diagonal and where the value is None), the input of :func:`husai.stats.pair_stats`."""
    m = pair_matrix(n)
    for i in range(n):
        for j in range(i + 1, n):
            v = value(i, j)
            m[i, j] = m[j, i] = float("nan") if v is None else v
    return m


def _pairs(n: int) -> list[tuple[int, int]]:
    return [(i, j) for i in range(n) for j in range(i + 1, n)]


def config_geometry(
    sae: BatchedSAE, acts: ActivationGeometry, options: GeometryOptions
) -> ConfigGeometry:
    """Gram spectra, subspace overlaps and atom groups of one configuration's seeds,
    beside an isotropic and a data-sample reference pair of ``n_ref`` atoms (the mean
    number of analysed atoms per seed); one torch thread. The layout of ``summary``
    is the configuration entry of ``metrics/geometry.json`` (stage ``geometry``)."""
    with one_thread():
        return _config_geometry(sae, acts, options)


def _config_geometry(
    sae: BatchedSAE, acts: ActivationGeometry, opt: GeometryOptions
) -> ConfigGeometry:
    n, d_in, keys, dims = sae.n_seeds, acts.d_in, acts.key_frequencies, acts.dims
    live, dec = analysed_atoms(sae, acts.x, opt.live_only)
    n_atoms = [len(a) for a in dec]
    n_ref = round(sum(n_atoms) / n)
    max_rank = min(*n_atoms, d_in)
    all_ranks = list(range(1, max_rank + 1))
    ranks = [r for r in opt.ranks if r <= max_rank]
    iso = [isotropic_dictionary(n_ref, d_in, opt.seed + i).to(torch.float64) for i in (0, 1)]
    sample = [data_sample_dictionary(acts.x, n_ref, opt.seed + i) for i in (0, 1)]

    # Gram spectra
    lams = [gram_spectrum(d) for d in dec]
    iso_lam, sample_lam = gram_spectrum(iso[0]), gram_spectrum(sample[0])
    summaries = [gram_summary(d) for d in dec]
    # single atoms and subspaces, every pair
    dirs = [principal_directions(d) for d in dec]
    curve = {(i, j): overlap_curve(dirs[i], dirs[j], all_ranks) for i, j in _pairs(n)}
    # atom groups, every pair
    labels = [assign_groups(d, acts.bases, opt.group_min_share) for d in dec]
    spans = [
        group_spans(dec[i], labels[i], dims, null_rounds=opt.null_rounds, seed=opt.seed + i)
        for i in range(n)
    ]
    gp = {(i, j): compare_group_spans(spans[i], spans[j], dims) for i, j in _pairs(n)}
    group_rank = [[gp[ij][g].rank for ij in _pairs(n)] for g in range(len(keys))]
    sample_pairs = compare_group_spans(
        *[
            group_spans(
                sample[i],
                assign_groups(sample[i], acts.bases, opt.group_min_share),
                dims,
                null_rounds=opt.null_rounds,
                seed=opt.seed + i,
            )
            for i in (0, 1)
        ],
        dims,
    )
    pca_overlap = [overlap_curve(dirs[i], acts.pcs, all_ranks) for i in range(n)]
    iso_curve = overlap_curve(principal_directions(iso[0]), principal_directions(iso[1]), all_ranks)
    sample_curve = overlap_curve(
        principal_directions(sample[0]), principal_directions(sample[1]), all_ranks
    )
    random_overlap = [
        finite_mean([r_ / d_in if r_ else None for r_ in group_rank[g]]) for g in range(len(keys))
    ]
    overlap = {r: pair_fill(n, lambda i, j, r=r: curve[i, j][r]) for r in all_ranks}

    def group_matrix(m: str, g: int) -> np.ndarray:
        return pair_fill(n, lambda i, j: getattr(gp[i, j][g], m))

    def group_mean(m: str) -> np.ndarray:
        return pair_fill(n, lambda i, j: finite_mean([getattr(p, m) for p in gp[i, j]]))

    summary = {
        "architecture": sae.config.architecture,
        "seeds": list(sae.seeds),
        "d_sae": sae.config.d_sae,
        "live_only": opt.live_only,
        "n_live": per_seed_stats([float(m.sum()) for m in live]),
        "n_atoms_analysed": n_atoms,
        "n_reference_atoms": n_ref,
        "d_in": d_in,
        "pwmcc": pair_stats(pair_fill(n, lambda i, j: pwmcc(dec[i], dec[j]))),
        "gram": {
            "summary": {k: per_seed_stats([s[k] for s in summaries]) for k in GRAM_KEYS},
            "seed_distance": pair_stats(
                pair_fill(n, lambda i, j: spectrum_distance(lams[i], lams[j]))
            ),
            "distance_to_isotropic": per_seed_stats(
                [spectrum_distance(lam, iso_lam) for lam in lams]
            ),
            "distance_to_data_sample": per_seed_stats(
                [spectrum_distance(lam, sample_lam) for lam in lams]
            ),
            "isotropic": gram_summary(iso[0]),
            "isotropic_pair_distance": spectrum_distance(iso_lam, gram_spectrum(iso[1])),
            "data_sample": gram_summary(sample[0]),
            "data_sample_pair_distance": spectrum_distance(sample_lam, gram_spectrum(sample[1])),
        },
        "subspace": {
            "overlap": {str(r): pair_stats(overlap[r]) for r in ranks},
            "random_expectation": {str(r): r / d_in for r in ranks},
            "isotropic_overlap": {str(r): iso_curve[r] for r in ranks},
            "data_sample_overlap": {str(r): sample_curve[r] for r in ranks},
            "activation_pca_overlap": {
                str(r): per_seed_stats([c[r] for c in pca_overlap]) for r in ranks
            },
        },
        "groups": {
            "fraction_grouped": per_seed_stats(
                [float((lab >= 0).to(torch.float64).mean()) for lab in labels]
            ),
            "sizes": {
                str(k): per_seed_stats([float((lab == g).sum()) for lab in labels])
                for g, k in enumerate(keys)
            },
            "per_frequency": {
                str(k): {
                    "rank": finite_mean([float(r_) for r_ in group_rank[g]]),
                    **{m: pair_stats(group_matrix(m, g)) for m in GROUP_METRICS},
                    "random_overlap": random_overlap[g],
                }
                for g, k in enumerate(keys)
            },
            "all": {
                **{m: pair_stats(group_mean(m)) for m in GROUP_METRICS},
                "random_overlap": finite_mean(random_overlap),
            },
            "data_sample": {
                m: finite_mean([getattr(p, m) for p in sample_pairs]) for m in GROUP_METRICS
            },
        },
    }
    spectra = {
        "gram_eigenvalue": torch.stack(lams).mean(0).tolist(),
        "isotropic_gram_eigenvalue": iso_lam.tolist(),
        "data_sample_gram_eigenvalue": sample_lam.tolist(),
    }
    overlaps = {
        "subspace_overlap": [pair_stats(overlap[r])["mean"] for r in all_ranks],
        "data_sample_overlap": [sample_curve[r] for r in all_ranks],
        "activation_pca_overlap": [sum(c[r] for c in pca_overlap) / n for r in all_ranks],
    }
    return ConfigGeometry(summary, spectra, overlaps)
