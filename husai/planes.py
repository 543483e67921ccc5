"""Plane-level metrics for the modular-addition model: rotation-respecting stability.

At ``hook_resid_post`` the modular model holds the answer ``c = (a + b) mod p`` on
round circles, one per key frequency, each in its own 2-D plane; at ``mlp.hook_post``
a frequency has several planes (circles of a, of b, of a + b, of a - b). A rotation
inside such a plane maps the data onto itself, so no single SAE atom there is
identifiable, only the plane. Atom-matching metrics (PWMCC) then call two
dictionaries different when they differ only by such a rotation. This module
measures what *is* identifiable:

* :func:`modular_planes`: the planes of an activation grid ``x[a, b, d]``, one per
  (key frequency, variable), with their share of the variance.
* :func:`plane_angles`: each input's angle on each plane.
* :func:`plane_coverage` and :func:`plane_agreement`: which live atoms lie in which
  plane, how well they span and tile its circle, and whether two seeds span the
  same part of each plane. Both depend on atoms only through spans and phase gaps,
  so they are unchanged by a rotation within a plane.
* :func:`arc_concentration` and :func:`arc_assignment`: whether a latent fires on
  one arc of one plane's circle (its activation-weighted mean resultant length).
* :func:`input_partition` and :func:`partition_ami`: the partition of the inputs
  by their most active latent, compared across seeds by adjusted mutual
  information; :func:`dictionary_codes` gives a random dictionary's codes for a
  baseline partition.
* :func:`plane_stability`: all of these for one configuration's seeds, each beside
  count-matched random atoms in the data's principal subspace (stage
  ``stability@<domain>`` on every domain with planes).

Conventions
-----------
* Variables (:data:`VARIABLES`): the plane of frequency ``k`` and variable ``v``
  carries the angle ``2 pi k v(a, b) / p`` with ``v = a``, ``b``, ``(a + b) mod p``,
  ``(a - b) mod p``. Its two grid functions ``cos`` and ``sin`` of that angle are
  orthogonal to each other and to those of every other (k, v) with
  ``k = 1 .. (p - 1) / 2`` (their characters ``(k u, k w)`` on Z_p^2 differ mod p),
  so the shares of distinct planes add up to at most 1.
* Live latents, as in :mod:`husai.groundtruth`: a ``live`` mask drops the other
  atoms first (:func:`husai.groundtruth.live_atoms`), so a dead latent's atom
  changes no result.
* Atom phases are signed (``atan2``): a ReLU latent adds a non-negative multiple of
  its atom, so an atom and its negation point at opposite points of the circle.
* Spans: the top singular directions of a set of unit atoms; a singular value at
  most ``RANK_TOL`` times the largest counts as missing (atoms parallel up to
  rounding span one direction, not two).
* float64 throughout; no in-place changes to inputs.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from husai.fourier import centre_grid
from husai.groundtruth import PLANE_MIN_SHARE, live_atoms
from husai.stability import Atoms, as_atoms, unit_rows
from husai.stats import BOOT_SEED, N_BOOT, seed_stats, value_stats

VARIABLES = ("a", "b", "sum", "diff")
MODULAR_MIN_SHARE = 0.01  # default share of the variance for a plane to be kept
ARC_MIN_CONCENTRATION = 0.6  # default mean resultant length for an arc latent
ROTATION_SEED_OFFSET = 2_000_003  # seed i's null shift: a row drawn by generator(seed + this)
RANK_TOL = 1e-6  # singular values at most this times the largest count as missing
DEGENERATE_TOL = 1e-9  # a plane's second axis below this relative norm: a line, not a plane


@dataclass(frozen=True)
class Planes:
    """Planes of an activation grid, one per kept (frequency, variable).

    ``basis[q]`` is an orthonormal pair of rows: row 0 the direction of the ``cos``
    coefficient vector, row 1 the ``sin`` one made orthogonal to it.
    ``frequency[q]`` is 1-based, ``variable[q]`` indexes :data:`VARIABLES`, and
    ``share[q]`` is the share of the centred grid's total variance in the plane's two
    grid functions.
    """

    basis: torch.Tensor  # [P, 2, d] float64
    frequency: torch.Tensor  # [P] int64
    variable: torch.Tensor  # [P] int64
    share: torch.Tensor  # [P] float64


# ----------------------------------------------------------------------------- validation


def _check_share(value: float, name: str) -> float:
    if not 0.0 < value <= 1.0:
        raise ValueError(f"{name} must be in (0, 1], got {value}")
    return float(value)


def _int_vector(t: Any, name: str) -> torch.Tensor:
    v = torch.as_tensor(t)
    if v.ndim != 1 or v.dtype.is_floating_point or v.dtype.is_complex or v.dtype == torch.bool:
        raise ValueError(f"{name} must be a 1-D integer tensor, got {v.dtype} {tuple(v.shape)}")
    return v.to(torch.int64)


def _check_planes(planes: torch.Tensor | np.ndarray) -> torch.Tensor:
    """Planes ``[P >= 1, 2, d]`` of orthonormal row pairs, as float64 (the check of
    :func:`husai.groundtruth.plane_recovery`)."""
    pl = torch.as_tensor(planes).detach().to(torch.float64)
    if pl.ndim != 3 or pl.shape[1] != 2 or pl.shape[0] == 0:
        raise ValueError(f"planes must be [P >= 1, 2, d_in], got {tuple(pl.shape)}")
    gram = pl @ pl.transpose(1, 2)
    if not torch.allclose(gram, torch.eye(2, dtype=torch.float64).expand_as(gram), atol=1e-6):
        raise ValueError("each plane must be given by an orthonormal pair of rows")
    return pl


def _check_acts(acts: torch.Tensor, name: str = "acts") -> torch.Tensor:
    x = torch.as_tensor(acts).detach().to(torch.float64)
    if x.ndim != 2:
        raise ValueError(f"{name} must be [N, n_latents], got shape {tuple(x.shape)}")
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"{name} must be finite")
    if bool((x < 0).any()):
        raise ValueError(f"{name} must be non-negative, got minimum {float(x.min())}")
    return x


# ----------------------------------------------------------------------------- planes of a grid


def plane_angles(
    a: torch.Tensor, b: torch.Tensor, p: int, frequency: torch.Tensor, variable: torch.Tensor
) -> torch.Tensor:
    """Angle ``[N, P]`` (float64, in ``[0, 2 pi)``) of input ``(a[i], b[i])`` on plane q:
    ``2 pi ((k_q v_q(a, b)) mod p) / p`` with ``k_q = frequency[q]`` and ``v_q`` the
    variable ``VARIABLES[variable[q]]`` (module docstring). The product is reduced
    mod p in integers, so equal angles are bit-identical. ``a`` and ``b`` are 1-D
    integer tensors with entries in ``0 .. p - 1``; frequencies in ``1 .. (p - 1) / 2``.
    """
    if int(p) != p or p < 3:
        raise ValueError(f"p must be an integer >= 3, got {p}")
    p = int(p)
    av, bv = _int_vector(a, "a"), _int_vector(b, "b")
    if av.shape != bv.shape:
        raise ValueError(f"a and b differ in length: {av.shape[0]} vs {bv.shape[0]}")
    for name, v in (("a", av), ("b", bv)):
        if v.numel() and (int(v.min()) < 0 or int(v.max()) >= p):
            raise ValueError(
                f"{name} must lie in 0..{p - 1}, got range {int(v.min())}..{int(v.max())}"
            )
    k, var = _int_vector(frequency, "frequency"), _int_vector(variable, "variable")
    if k.shape != var.shape:
        raise ValueError(f"frequency and variable differ in length: {k.shape[0]} vs {var.shape[0]}")
    kmax = (p - 1) // 2
    if k.numel() and (int(k.min()) < 1 or int(k.max()) > kmax):
        raise ValueError(f"frequencies must lie in 1..{kmax}, got {k.tolist()}")
    if var.numel() and (int(var.min()) < 0 or int(var.max()) >= len(VARIABLES)):
        raise ValueError(
            f"variable indices must lie in 0..{len(VARIABLES) - 1}, got {var.tolist()}"
        )
    values = torch.stack([av, bv, (av + bv) % p, (av - bv) % p], dim=1)  # [N, 4]
    v = values[:, var]  # [N, P]
    return ((k[None, :] * v) % p).to(torch.float64) * (2.0 * math.pi / p)


def modular_planes(
    x: torch.Tensor, keys: Sequence[int], min_share: float = MODULAR_MIN_SHARE
) -> Planes:
    """The planes of an activation grid ``x[a, b, d]`` (``p x p x d``).

    The grid is centred (:func:`husai.fourier.centre_grid`: the mean over a and b
    subtracted). For each key frequency k, in the given order, and each variable v
    in :data:`VARIABLES` order, the grid functions ``f_cos = cos(t)`` and
    ``f_sin = sin(t)`` with ``t = 2 pi k v(a, b) / p`` (:func:`plane_angles`) are
    scaled to unit L2 norm over the grid (their exact norm is ``p / sqrt(2)``) and
    give coefficient vectors
    ``c_cos = sum_ab x_c[a, b] f_cos(a, b)`` and ``c_sin`` (in R^d). The plane's share
    is ``(|c_cos|^2 + |c_sin|^2) / sum_ab |x_c[a, b]|^2``; planes with share
    ``>= min_share`` are kept, in (k, v) order. Basis row 0 is ``c_cos / |c_cos|``,
    row 1 is ``c_sin`` minus its projection on row 0 (Gram-Schmidt, twice),
    normalised: with explicit elementwise products and torch sums, not LAPACK, and
    every sum over the grid taken per coordinate, so the result is the same to the
    bit across processes and thread counts. For a round circle
    ``r (cos(t + phi) u + sin(t + phi) w)`` (u, w orthonormal) the input's point then
    has coordinates ``r (cos t, sin t)`` in the basis, whatever phi.

    Raises ValueError for a non-square grid, a key outside ``1 .. (p - 1) / 2`` or
    repeated, data without variance after centring, and a kept plane whose two
    coefficient vectors are parallel or zero (relative norm ``<= DEGENERATE_TOL``: a
    line, not a plane). ``P`` may be 0 (empty tensors).
    """
    t = torch.as_tensor(x)
    if t.ndim != 3 or t.shape[0] != t.shape[1] or t.shape[2] == 0:
        raise ValueError(f"x must be a [p, p, d] grid, got shape {tuple(t.shape)}")
    min_share = _check_share(min_share, "min_share")
    p, d = int(t.shape[0]), int(t.shape[2])
    kmax = (p - 1) // 2
    ks = [int(k) for k in keys]
    for k, given in zip(ks, keys, strict=True):
        if k != given or not 1 <= k <= kmax:
            raise ValueError(f"key frequency {given} is outside 1..{kmax} for p = {p}")
    if len(set(ks)) != len(ks):
        raise ValueError(f"repeated key frequency in {ks}")
    xc = centre_grid(t.detach().cpu()).reshape(p * p, d)
    total = (xc * xc).sum(dim=0).sum()  # per coordinate first: the same sums at any thread count
    if not bool(torch.isfinite(total)):
        raise ValueError("x must be finite")
    if not bool(total > 0):
        raise ValueError("x has no variance over the grid (all-zero after centring)")

    grid = torch.arange(p, dtype=torch.int64)
    a, b = grid.repeat_interleave(p), grid.repeat(p)  # row a * p + b of xc
    freq = torch.tensor([k for k in ks for _ in VARIABLES], dtype=torch.int64)
    var = torch.arange(len(VARIABLES), dtype=torch.int64).repeat(len(ks))
    angles = plane_angles(a, b, p, freq, var)  # [p^2, K * 4]

    norm = math.sqrt(p * p / 2)  # sum_ab cos^2 = sum_ab sin^2 = p^2 / 2 for these k

    def coefficient(f: torch.Tensor) -> torch.Tensor:
        return (xc * (f / norm)[:, None]).sum(dim=0)

    rows, kept_freq, kept_var, shares = [], [], [], []
    for q in range(angles.shape[1]):
        c_cos, c_sin = coefficient(torch.cos(angles[:, q])), coefficient(torch.sin(angles[:, q]))
        energy = (c_cos * c_cos).sum() + (c_sin * c_sin).sum()
        share = float(energy / total)
        if share < min_share:
            continue
        scale = float(energy.sqrt())
        name = f"(k={int(freq[q])}, v={VARIABLES[int(var[q])]})"
        n0 = float((c_cos * c_cos).sum().sqrt())
        if n0 <= DEGENERATE_TOL * scale:
            raise ValueError(f"plane {name} is degenerate: its cos coefficient is zero")
        e0 = c_cos / n0
        r = c_sin
        for _ in range(2):
            r = r - (r * e0).sum() * e0
        n1 = float((r * r).sum().sqrt())
        if n1 <= DEGENERATE_TOL * scale:
            raise ValueError(f"plane {name} is degenerate: its sin coefficient is parallel to cos")
        rows.append(torch.stack([e0, r / n1]))
        kept_freq.append(int(freq[q]))
        kept_var.append(int(var[q]))
        shares.append(share)
    basis = torch.stack(rows) if rows else torch.zeros(0, 2, d, dtype=torch.float64)
    return Planes(
        basis=basis,
        frequency=torch.tensor(kept_freq, dtype=torch.int64),
        variable=torch.tensor(kept_var, dtype=torch.int64),
        share=torch.tensor(shares, dtype=torch.float64),
    )


# ----------------------------------------------------------------------------- atoms in planes


def _top_directions(m: torch.Tensor, r: int = 2) -> torch.Tensor:
    """Orthonormal rows ``[s, d]``: the top ``s <= min(r, n)`` right singular directions
    of ``m [n, d]``, leaving out those whose singular value is ``<= RANK_TOL`` times the
    largest (from the eigendecomposition of the smaller Gram matrix)."""
    d = m.shape[1]
    if m.shape[0] == 0:
        return m.new_zeros(0, d)
    if m.shape[0] <= d:
        vals, vecs = torch.linalg.eigh(m @ m.T)  # ascending
        vals, vecs = vals.flip(0), vecs.flip(1)
        dirs = (m.T @ vecs).T  # [n, d], row i has norm sqrt(vals[i])
    else:
        vals, vecs = torch.linalg.eigh(m.T @ m)
        vals, dirs = vals.flip(0), vecs.flip(1).T
    top = float(vals[0])
    if top <= 0:
        return m.new_zeros(0, d)
    keep = [i for i in range(min(r, len(vals))) if float(vals[i]) > RANK_TOL**2 * top]
    out = dirs[keep]
    return out / out.norm(dim=1, keepdim=True)


def _assign(
    decoder_atoms: Atoms,
    planes: torch.Tensor,
    live: torch.Tensor | None,
    min_share: float,
    name: str,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Unit live atoms ``[n, d]``, their plane ``[n]`` (-1 when unassigned) and their
    coordinates in every plane ``[n, P, 2]``."""
    atoms = live_atoms(decoder_atoms, live, name)
    if atoms.shape[1] != planes.shape[2]:
        raise ValueError(f"{name} have d_in {atoms.shape[1]}, planes {planes.shape[2]}")
    if atoms.shape[0] == 0:
        return atoms, torch.zeros(0, dtype=torch.int64), atoms.new_zeros(0, planes.shape[0], 2)
    unit = unit_rows(atoms)
    coords = torch.einsum("pkd,nd->npk", planes, unit)  # [n, P, 2]
    share = coords.pow(2).sum(dim=2)
    best, plane = share.max(dim=1)  # ties: the lowest plane index
    plane = torch.where(best >= min_share, plane, torch.full_like(plane, -1))
    return unit, plane, coords


def _span_overlap(u: torch.Tensor, v: torch.Tensor) -> float:
    """Mean over 2 dimensions of cos^2 of the principal angles between the spans of
    orthonormal rows ``u [<=2, d]`` and ``v [<=2, d]``: ``||u v^T||_F^2 / 2``."""
    if u.shape[0] == 0 or v.shape[0] == 0:
        return 0.0
    return float((u @ v.T).pow(2).sum()) / 2.0


def _phases(c: torch.Tensor) -> list[float]:
    """Sorted phases in degrees in ``[0, 360)`` of plane coordinates ``c [m, 2]``."""
    deg = torch.rad2deg(torch.atan2(c[:, 1], c[:, 0])).tolist()
    out = []
    for v in deg:
        v = v % 360.0
        out.append(0.0 if v >= 360.0 else v)  # -1e-17 % 360 == 360.0
    return sorted(out)


def plane_coverage(
    decoder_atoms: Atoms,
    planes: torch.Tensor | np.ndarray,
    live: torch.Tensor | None = None,
    min_share: float = PLANE_MIN_SHARE,
) -> dict[str, Any]:
    """How one SAE's live decoder atoms populate the planes ``planes [P, 2, d]``
    (orthonormal row pairs, e.g. :attr:`Planes.basis`).

    Live atoms (all when ``live`` is None) are unit-normalised; an atom's share in
    plane q is the squared norm of its two coordinates ``planes[q] a``; it is
    *assigned* to the plane of its largest share (ties: the lower index) when that
    share is ``>= min_share``. Per plane, with ``m`` assigned atoms:

    * ``n_atoms``: m.
    * ``coverage``: the mean over the plane's 2 dimensions of cos^2 of the principal
      angles between the plane and the span U of the top ``min(2, m)`` right
      singular directions of the assigned unit atoms, ``||B U^T||_F^2 / 2``; missing
      dimensions (fewer than 2 atoms, or parallel ones: module docstring) count 0, so
      no atom gives 0 and one in-plane atom 0.5.
    * ``phases_deg``: each assigned atom's phase ``atan2(coord_1, coord_0)`` in degrees
      in ``[0, 360)``, sorted.
    * ``max_gap_deg``: the largest circular gap between consecutive phases (360 with
      one atom, None with none).
    * ``covers``: ``max_gap_deg < 180``, i.e. every point of the plane's circle has a
      positive inner product with some assigned atom (False with no atom).
    * ``evenness``: ``(360 / m) / max_gap_deg``, 1 for an even tiling (None with no atom).

    Keys: ``per_plane`` (the dicts above, in plane order), ``mean_coverage`` (mean over
    planes), ``n_live``, ``n_assigned`` and ``assigned_fraction`` (``n_assigned /
    n_live``, 0.0 without a live atom). A rotation of the atoms within a plane
    changes the phases by the rotation and nothing else.
    """
    pl = _check_planes(planes)
    min_share = _check_share(min_share, "min_share")
    unit, plane, coords = _assign(decoder_atoms, pl, live, min_share, "decoder_atoms")
    per_plane = []
    for q in range(pl.shape[0]):
        mask = plane == q
        m = int(mask.sum())
        u = _top_directions(unit[mask])
        phases = _phases(coords[mask, q])
        gap = None
        if m:
            gaps = [b - a for a, b in itertools.pairwise(phases)]
            gap = max([*gaps, 360.0 - phases[-1] + phases[0]])
        per_plane.append(
            {
                "n_atoms": m,
                "coverage": _span_overlap(pl[q], u),
                "max_gap_deg": gap,
                "covers": gap is not None and gap < 180.0,
                "evenness": None if gap is None else (360.0 / m) / gap,
                "phases_deg": phases,
            }
        )
    n_live, n_assigned = int(unit.shape[0]), int((plane >= 0).sum())
    return {
        "per_plane": per_plane,
        "mean_coverage": float(np.mean([r["coverage"] for r in per_plane])),
        "n_live": n_live,
        "n_assigned": n_assigned,
        "assigned_fraction": n_assigned / n_live if n_live else 0.0,
    }


def plane_agreement(
    dec_a: Atoms,
    live_a: torch.Tensor | None,
    dec_b: Atoms,
    live_b: torch.Tensor | None,
    planes: torch.Tensor | np.ndarray,
    min_share: float = PLANE_MIN_SHARE,
) -> dict[str, Any]:
    """Whether two seeds' live atoms span the same part of each plane.

    Each seed's live atoms are assigned to planes as in :func:`plane_coverage`. For
    plane q, with U_A and U_B the spans of the top ``min(2, m)`` singular directions of
    each seed's assigned unit atoms, ``agreement`` is the mean over 2 dimensions of
    cos^2 of their principal angles, ``||U_A U_B^T||_F^2 / 2`` (missing dimensions
    count 0: 0 when only one seed has atoms there; None when neither has).

    Keys: ``per_plane`` (agreement or None, in plane order) and ``mean_agreement``
    (mean over the planes that are not None; None when all are). Rotating one seed's
    atoms within a plane leaves it unchanged whenever the atoms lie in their planes
    and each seed spans its plane (two non-parallel atoms): both spans are then the
    plane itself.
    """
    pl = _check_planes(planes)
    min_share = _check_share(min_share, "min_share")
    unit_a, plane_a, _ = _assign(dec_a, pl, live_a, min_share, "dec_a")
    unit_b, plane_b, _ = _assign(dec_b, pl, live_b, min_share, "dec_b")
    per_plane: list[float | None] = []
    for q in range(pl.shape[0]):
        in_a, in_b = plane_a == q, plane_b == q
        if not (bool(in_a.any()) or bool(in_b.any())):
            per_plane.append(None)
            continue
        per_plane.append(
            _span_overlap(_top_directions(unit_a[in_a]), _top_directions(unit_b[in_b]))
        )
    values = [v for v in per_plane if v is not None]
    return {
        "per_plane": per_plane,
        "mean_agreement": float(np.mean(values)) if values else None,
    }


# ----------------------------------------------------------------------------- latents on arcs


def arc_concentration(acts: torch.Tensor, angles: torch.Tensor) -> torch.Tensor:
    """Mean resultant length ``[n, P]`` (float64, in [0, 1]) of each latent's firing on
    each plane's circle: for latent j and plane q,
    ``R = |sum_i acts[i, j] exp(i angles[i, q])| / sum_i acts[i, j]``, 0 for a latent
    that never fires. ``acts [N, n]`` must be non-negative; ``angles [N, P]`` in radians
    (e.g. :func:`plane_angles`).

    Known values: on evenly spaced angles, a dense ``1 + cos(t)`` gives 0.5, and an arc
    ``relu(cos(t - phi) - cos(alpha))`` tends to
    ``(alpha/2 + sin(2 alpha)/4 - cos(alpha) sin(alpha)) / (sin(alpha) - alpha cos(alpha))``
    (pi/4 at half the circle, 1 for narrow arcs).
    """
    w = _check_acts(acts)
    th = torch.as_tensor(angles).detach().to(torch.float64)
    if th.ndim != 2 or th.shape[0] != w.shape[0]:
        raise ValueError(f"angles must be [N={w.shape[0]}, P], got shape {tuple(th.shape)}")
    if not bool(torch.isfinite(th).all()):
        raise ValueError("angles must be finite")
    total = w.sum(dim=0)  # [n]
    re, im = w.T @ torch.cos(th), w.T @ torch.sin(th)  # [n, P]
    r = torch.hypot(re, im) / total.clamp_min(1e-300)[:, None]
    return torch.where(total[:, None] > 0, r, torch.zeros_like(r)).clamp(0.0, 1.0)


def arc_assignment(
    acts: torch.Tensor, angles: torch.Tensor, min_concentration: float = ARC_MIN_CONCENTRATION
) -> tuple[torch.Tensor, torch.Tensor]:
    """Each latent's arc plane: ``(plane [n] int64, r_max [n] float64)`` with ``r_max``
    the latent's largest :func:`arc_concentration` over planes and ``plane`` the plane
    where it is reached (ties: the lower index), or -1 when ``r_max <
    min_concentration``, the latent never fires, or there is no plane."""
    if not 0.0 <= min_concentration <= 1.0:
        raise ValueError(f"min_concentration must be in [0, 1], got {min_concentration}")
    r = arc_concentration(acts, angles)
    n = r.shape[0]
    if r.shape[1] == 0:
        return torch.full((n,), -1, dtype=torch.int64), torch.zeros(n, dtype=torch.float64)
    r_max, plane = r.max(dim=1)
    fires = torch.as_tensor(acts).detach().to(torch.float64).sum(dim=0) > 0
    ok = fires & (r_max >= min_concentration)
    return torch.where(ok, plane, torch.full_like(plane, -1)), r_max


# ----------------------------------------------------------------------------- input partitions


def input_partition(acts: torch.Tensor) -> torch.Tensor:
    """Label ``[N]`` (int64) of each input row of ``acts [N, n]`` (non-negative): the
    index of its most active latent (ties: the lowest index), -1 when no latent fires
    on the row."""
    w = _check_acts(acts)
    if w.shape[1] == 0:
        return torch.full((w.shape[0],), -1, dtype=torch.int64)
    best, arg = w.max(dim=1)  # ties: the first (lowest) index
    return torch.where(best > 0, arg, torch.full_like(arg, -1))


def partition_ami(labels_a: torch.Tensor, labels_b: torch.Tensor) -> float:
    """Adjusted mutual information of two labellings of the same inputs
    (:func:`sklearn.metrics.adjusted_mutual_info_score`, ``average_method="arithmetic"``):
    1 for the same partition up to relabelling, about 0 for independent ones. Every
    label, -1 included, is one block."""
    from sklearn.metrics import adjusted_mutual_info_score  # slow to import: only here

    la = np.asarray(torch.as_tensor(labels_a).detach().cpu())
    lb = np.asarray(torch.as_tensor(labels_b).detach().cpu())
    if la.ndim != 1 or lb.ndim != 1:
        raise ValueError(f"labels must be 1-D, got shapes {la.shape} and {lb.shape}")
    if la.shape != lb.shape:
        raise ValueError(f"labellings differ in length: {la.shape[0]} vs {lb.shape[0]}")
    if la.shape[0] == 0:
        raise ValueError("labellings are empty")
    return float(adjusted_mutual_info_score(la, lb, average_method="arithmetic"))


def dictionary_codes(x: torch.Tensor, atoms: Atoms) -> torch.Tensor:
    """Codes ``[N, n]`` (float64) of the rows of ``x [N, d]`` in a dictionary
    ``atoms [n, d]``: ``relu((x_i - mean_i x_i) . a_j / |a_j|)``, the rows centred by
    their mean over N and the atoms unit-normalised (a zero atom gives zero codes). For
    a random baseline dictionary, whose :func:`input_partition` is the chance level of
    a trained SAE's."""
    xt = torch.as_tensor(x).detach().to(torch.float64)
    if xt.ndim != 2 or xt.shape[0] == 0:
        raise ValueError(f"x must be [N >= 1, d], got shape {tuple(xt.shape)}")
    unit = unit_rows(as_atoms(atoms, "atoms")).to(xt.device)
    if unit.shape[1] != xt.shape[1]:
        raise ValueError(f"atoms have d {unit.shape[1]}, x has {xt.shape[1]}")
    return torch.relu((xt - xt.mean(dim=0, keepdim=True)) @ unit.T)


def rotate_within_planes(
    atoms: Atoms, planes: torch.Tensor | np.ndarray, angles: torch.Tensor
) -> torch.Tensor:
    """``atoms [n, d]`` with each one's component in plane q (its coordinates on
    ``planes[q]``) rotated by ``angles[q]`` radians within that plane and the rest of it
    unchanged: on data that lie on round circles in those planes, a rotation that leaves
    what the atoms can reconstruct as it was. float64 ``[n, d]``."""
    pl = _check_planes(planes)
    a = as_atoms(atoms, "atoms").to(torch.float64)
    th = torch.as_tensor(angles, dtype=torch.float64)
    if th.shape != (pl.shape[0],):
        raise ValueError(f"need one angle per plane ({pl.shape[0]}), got {tuple(th.shape)}")
    coords = torch.einsum("pkd,nd->npk", pl, a)  # [n, P, 2]
    c, s = torch.cos(th), torch.sin(th)
    turned = torch.stack(
        [c * coords[..., 0] - s * coords[..., 1], s * coords[..., 0] + c * coords[..., 1]], dim=-1
    )
    return a + torch.einsum("npk,pkd->nd", turned - coords, pl)


# ----------------------------------------------------------------------------- per configuration


def shift_null(
    decoders: Sequence[Atoms],
    encoders: Sequence[Atoms] | None,
    lives: Sequence[torch.Tensor],
    planes: torch.Tensor | np.ndarray,
    angles: torch.Tensor,
    seeds: Sequence[int],
    *,
    threshold: float = 0.7,
    hungarian: bool = True,
) -> dict[str, np.ndarray]:
    """The rotation null of :func:`plane_stability` (its docstring): each seed's live
    decoder (and encoder) atoms turned within ``planes`` by the shift of its own random
    row (``seeds[i] + ROTATION_SEED_OFFSET``), ``angles[r] - angles[0]``, then compared
    pair by pair (:func:`husai.stability.pairwise_metrics`: ``pwmcc``, and with
    ``hungarian`` ``hungarian_mcc``, with encoders ``shared_fraction``, ``[n, n]``)."""
    from husai.baselines import generator
    from husai.groundtruth import live_atoms
    from husai.stability import pairwise_metrics

    pl = _check_planes(planes)
    rotated_dec, rotated_enc = [], []
    for i, seed in enumerate(seeds):
        row = int(
            torch.randint(
                angles.shape[0], (1,), generator=generator(int(seed) + ROTATION_SEED_OFFSET)
            )
        )
        turn = angles[row] - angles[0]  # the shift from row 0's inputs to row r's
        live = torch.as_tensor(lives[i]).to(torch.bool)
        rotated_dec.append(rotate_within_planes(live_atoms(decoders[i], live), pl, turn))
        if encoders is not None:
            rotated_enc.append(rotate_within_planes(live_atoms(encoders[i], live), pl, turn))
    return pairwise_metrics(
        rotated_dec,
        rotated_enc if encoders is not None else None,
        threshold=threshold,
        ranks=(),
        hungarian=hungarian,
    )


def plane_stability(
    decoders: Sequence[Atoms],
    lives: Sequence[torch.Tensor],
    codes: Sequence[torch.Tensor],
    x: torch.Tensor,
    truth: dict[str, torch.Tensor],
    seeds: Sequence[int],
    basis: torch.Tensor,
    *,
    encoders: Sequence[Atoms] | None = None,
    threshold: float = 0.7,
    hungarian: bool = True,
    min_share: float = PLANE_MIN_SHARE,
    min_concentration: float = ARC_MIN_CONCENTRATION,
    n_boot: int = N_BOOT,
    boot_seed: int = BOOT_SEED,
) -> dict[str, Any]:
    """The plane metrics of one configuration's seeds, each beside a count-matched
    baseline: for seed i, ``n_live[i]`` random unit atoms in the span of ``basis``
    (the data's principal subspace, :func:`husai.baselines.subspace_dictionary` drawn
    from ``seeds[i]``, as :func:`husai.groundtruth.live_stability` draws its own).

    ``decoders[i]`` ``[d_sae, d_in]``, ``lives[i]`` its live mask, ``codes[i]``
    ``[N, d_sae]`` its activations on ``x [N, d_in]``; ``truth`` holds ``planes``
    ``[P, 2, d_in]`` and ``angles`` ``[N, P]`` (and, where known, ``plane_frequency``,
    ``plane_variable``, ``plane_share`` ``[P]``).

    Per seed (:class:`husai.records.Stat` over seeds): ``coverage`` (mean over planes
    of :func:`plane_coverage`'s coverage), ``assigned_fraction`` (live atoms in one
    plane), ``covered_planes`` (share of planes whose assigned atoms cover the circle,
    max phase gap < 180 degrees), ``evenness`` (mean over planes with atoms),
    ``arc_fraction`` (live latents whose activation is an arc of one plane:
    :func:`arc_assignment`), ``assignment_agreement`` (of the live latents both in a
    plane by their atom and on an arc by their activation, the share for which the two
    planes agree; None when there are none). Per seed pair: ``plane_agreement``
    (:func:`plane_agreement`'s mean) and ``partition_ami`` (:func:`partition_ami` of
    the two :func:`input_partition`). Baselines: ``subspace_coverage``,
    ``subspace_assigned_fraction``, ``subspace_plane_agreement`` and
    ``subspace_partition_ami`` (the baseline codes: :func:`dictionary_codes`).
    ``per_plane``: frequency, variable, share, and Stats of coverage, n_atoms,
    agreement, plus ``covers`` (share of seeds whose atoms cover the circle).

    The rotation null (``rotation_live_*``): what the atom measures of
    :func:`husai.groundtruth.live_stability` (PWMCC, Hungarian MCC, and with
    ``encoders`` the shared fraction at ``threshold``) would be if the seeds agreed only
    up to the data's symmetry. The symmetry is the shift of the inputs: (a, b) -> (a + t,
    b + s) turns every plane at once, plane (k, v) by ``2 pi k v(t, s) / p``, and maps the
    planes' part of the data onto itself (for the circles control, c -> c + t). Each seed
    draws its own shift: a row r uniform over the rows of ``x`` (from ``seeds[i] +
    ROTATION_SEED_OFFSET``), whose angles relative to row 0 (``angles[r] - angles[0]``,
    the shift from row 0's inputs to row r's) turn its live decoder and encoder atoms
    (:func:`rotate_within_planes`, the same turn for both); then the seeds are compared
    pair by pair as the trained atoms are. Trained atom stability above this null means
    the seeds agree on where the atoms sit, which the symmetry does not fix; at the null,
    they agree no more than copies of one solution shifted at random.

    The subspace baselines are not a null for the plane measures (a random atom of the
    data subspace seldom lies inside one plane): they show what the measures give for
    dictionaries without the planes' structure.
    """
    from husai.baselines import subspace_dictionary
    from husai.stats import pair_matrix, pair_stats, per_seed_stats

    n = len(decoders)
    if n < 2 or not len(lives) == len(codes) == len(seeds) == n:
        raise ValueError(
            f"need >= 2 seeds with one decoder, live mask and code matrix each, got "
            f"{n}, {len(lives)}, {len(codes)}, {len(seeds)}"
        )
    planes = _check_planes(truth["planes"])
    angles = torch.as_tensor(truth["angles"]).to(torch.float64)
    n_planes = int(planes.shape[0])
    if angles.shape != (x.shape[0], n_planes):
        raise ValueError(
            f"angles must be [N, P] = [{x.shape[0]}, {n_planes}], got {tuple(angles.shape)}"
        )

    def meta(key: str, default: Any) -> list[Any]:
        if key in truth:
            return torch.as_tensor(truth[key]).tolist()
        return [default] * n_planes

    frequency = meta("plane_frequency", None)
    variable = [None if v is None else VARIABLES[int(v)] for v in meta("plane_variable", None)]
    share = meta("plane_share", None)

    boot = {"n_boot": n_boot, "seed": boot_seed}
    seed_rows: list[dict[str, Any]] = []
    per_plane: list[dict[str, list]] = [
        {"coverage": [], "n_atoms": [], "covers": []} for _ in range(n_planes)
    ]
    base_dicts, labels, base_labels, trained_cov, base_cov = [], [], [], [], []
    for i, (dec, live, act, seed) in enumerate(zip(decoders, lives, codes, seeds, strict=True)):
        live = torch.as_tensor(live).to(torch.bool)
        n_live = int(live.sum())
        if n_live == 0:
            raise ValueError(f"seed {seed} has no live latent: nothing to compare")
        cov = plane_coverage(dec, planes, live, min_share)
        _, atom_plane, _ = _assign(dec, planes, live, min_share, f"decoders[{i}]")
        arc_plane, _ = arc_assignment(act[:, live], angles, min_concentration)
        both = (atom_plane >= 0) & (arc_plane >= 0)
        rows = cov["per_plane"]
        with_atoms = [r["evenness"] for r in rows if r["evenness"] is not None]
        seed_rows.append(
            {
                "coverage": cov["mean_coverage"],
                "assigned_fraction": cov["assigned_fraction"],
                "covered_planes": sum(bool(r["covers"]) for r in rows) / n_planes,
                "evenness": sum(with_atoms) / len(with_atoms) if with_atoms else None,
                "arc_fraction": float((arc_plane >= 0).double().mean()),
                "assignment_agreement": float((atom_plane[both] == arc_plane[both]).double().mean())
                if bool(both.any())
                else None,
            }
        )
        for q, r in enumerate(rows):
            per_plane[q]["coverage"].append(r["coverage"])
            per_plane[q]["n_atoms"].append(r["n_atoms"])
            per_plane[q]["covers"].append(bool(r["covers"]))
        base = subspace_dictionary(n_live, basis, int(seed))
        base_dicts.append(base)
        base_cov.append(plane_coverage(base, planes, None, min_share))
        trained_cov.append(cov)
        labels.append(input_partition(act))
        base_labels.append(input_partition(dictionary_codes(x, base)))

    agree, base_agree, ami, base_ami = (pair_matrix(n) for _ in range(4))
    plane_agree = [pair_matrix(n) for _ in range(n_planes)]
    for i, j in itertools.combinations(range(n), 2):
        pa = plane_agreement(decoders[i], lives[i], decoders[j], lives[j], planes, min_share)
        pb = plane_agreement(base_dicts[i], None, base_dicts[j], None, planes, min_share)
        for m, value in ((agree, pa["mean_agreement"]), (base_agree, pb["mean_agreement"])):
            m[i, j] = m[j, i] = np.nan if value is None else value
        for q, value in enumerate(pa["per_plane"]):
            plane_agree[q][i, j] = plane_agree[q][j, i] = np.nan if value is None else value
        ami[i, j] = ami[j, i] = partition_ami(labels[i], labels[j])
        base_ami[i, j] = base_ami[j, i] = partition_ami(base_labels[i], base_labels[j])

    null = shift_null(
        decoders,
        encoders,
        lives,
        planes,
        angles,
        seeds,
        threshold=threshold,
        hungarian=hungarian,
    )

    def over_seeds(key: str) -> dict[str, Any]:
        values = [r[key] for r in seed_rows]
        if None in values:
            return per_seed_stats(values, **boot)
        return value_stats(values, **boot).to_dict()

    out: dict[str, Any] = {
        "seeds": [int(s) for s in seeds],
        "min_share": float(min_share),
        "min_concentration": float(min_concentration),
        "planes": [
            {"frequency": f, "variable": v, "share": s}
            for f, v, s in zip(frequency, variable, share, strict=True)
        ],
    }
    for key in (
        "coverage",
        "assigned_fraction",
        "covered_planes",
        "evenness",
        "arc_fraction",
        "assignment_agreement",
    ):
        out[key] = over_seeds(key)
    out["subspace_coverage"] = value_stats([c["mean_coverage"] for c in base_cov], **boot).to_dict()
    out["subspace_assigned_fraction"] = value_stats(
        [c["assigned_fraction"] for c in base_cov], **boot
    ).to_dict()
    out["plane_agreement"] = pair_stats(agree, **boot)
    out["subspace_plane_agreement"] = pair_stats(base_agree, **boot)
    out["partition_ami"] = pair_stats(ami, **boot)
    out["subspace_partition_ami"] = pair_stats(base_ami, **boot)
    for key in ("pwmcc", "hungarian_mcc", "shared_fraction"):
        m = null.get(key)
        out[f"rotation_live_{key}"] = (
            None if m is None else seed_stats(m, n_boot=n_boot, seed=boot_seed).to_dict()
        )
    out["per_plane"] = [
        {
            "frequency": frequency[q],
            "variable": variable[q],
            "share": share[q],
            "coverage": value_stats(per_plane[q]["coverage"], **boot).to_dict(),
            "n_atoms": value_stats(per_plane[q]["n_atoms"], **boot).to_dict(),
            "covers": sum(per_plane[q]["covers"]) / n,
            "agreement": pair_stats(plane_agree[q], **boot),
        }
        for q in range(n_planes)
    ]
    out["per_seed"] = {str(int(s)): r for s, r in zip(seeds, seed_rows, strict=True)}
    return out
