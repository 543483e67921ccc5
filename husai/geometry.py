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
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from husai.determinism import generator
from husai.fourier import effective_rank
from husai.stability import Atoms, as_atoms, unit_rows

RANK_TOL = 1e-8


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """Run small dense linear algebra (eigh / SVD of ``d_in x d_in`` matrices) on one
    torch thread, then restore the thread count.

    Measured on the 2-core machine while other jobs kept it busy: ``torch.linalg.eigh``
    of a 128 x 128 matrix took about 1 s with 2 threads (each of its many parallel
    regions waits for a descheduled thread) and about 1 ms with 1 thread. A fixed
    thread count also keeps the results independent of ``runtime.threads``.
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
    directions: Atoms, frequency: torch.Tensor, groups: Sequence[int],
    present: torch.Tensor | None = None, tol: float = RANK_TOL,
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


def group_spans(atoms: Atoms, labels: torch.Tensor, dims: Sequence[int], *,
                null_rounds: int = 100, seed: int = 0) -> GroupSpans:
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
        null.append([top_directions(u[grouped[shuffled == k]], int(dims[k]))
                     for k in range(len(dims))])
    return GroupSpans(u, lab, spans, null)


def compare_group_spans(a: GroupSpans, b: GroupSpans, dims: Sequence[int]) -> list[GroupPair]:
    """:class:`GroupPair` for each group (module docstring), from precomputed spans.
    The null uses round t of A with round t of B (rounds present in both)."""
    if a.atoms.shape[1] != b.atoms.shape[1]:
        raise ValueError(f"atoms live in different spaces: d_in {a.atoms.shape[1]} vs "
                         f"{b.atoms.shape[1]}")
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
        in_span = 0.5 * (float((ga @ vb).pow(2).sum(1).mean())
                         + float((gb @ va).pow(2).sum(1).mean()))
        match = 0.5 * (float(_best_cos2(ga, b.atoms).mean())
                       + float(_best_cos2(gb, a.atoms).mean()))
        null = None
        if rounds:
            null = float(np.mean([basis_overlap(a.null_spans[t][k][:, :r],
                                                b.null_spans[t][k][:, :r])
                                  for t in range(rounds)]))
        out.append(GroupPair(ga.shape[0], gb.shape[0], r, basis_overlap(va, vb), in_span, match,
                             r / d_in, null))
    return out


def _best_cos2(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """For each unit row of a, the largest cos^2 with a row of b."""
    return (a @ b.T).pow(2).max(dim=1).values


def group_conservation(
    atoms_a: Atoms, labels_a: torch.Tensor, atoms_b: Atoms, labels_b: torch.Tensor,
    n_groups: int, dims: Sequence[int], *, null_rounds: int = 100, seed: int = 0,
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
