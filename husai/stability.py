"""Stability of SAE dictionaries across seeds (SCIENCE.md section 4).

Every function compares two *atom matrices* ``[n_atoms, d_in]`` whose rows are
the atoms: rows of ``W_dec`` for decoder atoms, rows of ``W_enc.T`` for encoder
atoms (SAELens stores ``W_enc`` as ``[d_in, d_sae]``). Rows are normalised to unit
length inside; a zero row (e.g. a dead latent's zeroed decoder row) stays zero
and has cosine 0 with everything, so it counts as unmatched rather than NaN.

Conventions
-----------
* Sign rule: ``absolute=True`` (the default everywhere) compares atoms by
  ``|cos|``, so an atom and its negation are the same direction. The research
  plan's PWMCC and the random-baseline values of SCIENCE.md section 5 use
  ``|cos|``, and this project applies it to every metric so that they are
  comparable. The papers behind the matching metrics use the signed cosine:
  Song et al. (2025)'s released MCC code and Paulo & Belrose (2025) both solve the
  assignment on ``1 - cos``. ``absolute=False`` reproduces their rules exactly
  (for ReLU-family SAEs an anti-parallel atom is a different feature; signed
  PWMCC and Hungarian MCC are never above their ``|cos|`` versions).
* Exact, chunk-independent cosines: atoms are normalised in float64 and then
  rounded to 26-bit fixed point (``round(x * 2**26)``, an error below ``1e-8``
  per coordinate). Their dot products are then sums of integers below ``2**53``,
  which float64 arithmetic computes exactly in any order. Every entry of
  ``C = A B^T`` is therefore bit-identical whatever the chunk size, and whatever
  the BLAS kernel or thread split of the product, and so is every metric built
  from it. (Normalisation itself is ordinary float64 arithmetic, done once per
  dictionary.)
* Memory: ``C`` is computed in blocks of ``chunk_size`` rows of A, in two
  reused buffers of ``chunk_size * n_b * 8`` bytes (256 MiB in all for
  1024 x 16384); PWMCC and the best-match helper need nothing larger. Hungarian
  matching needs the dense cost matrix: it is built as float64 ``-C``
  (``n_a * n_b * 8`` bytes, 2 GiB for 16384 x 16384) and solved with
  ``maximize=False``, which is the same
  matching as ``maximize=True`` on ``C``. scipy's solver works in float64 and
  copies any other dtype (float32 would cost 1 GiB plus a 2 GiB copy) and copies
  again for ``maximize=True``; it also transposes (copies) a matrix with more rows
  than columns, so the smaller dictionary is always put on the rows.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

Atoms = torch.Tensor | np.ndarray

DEFAULT_CHUNK = 1024
DEFAULT_THRESHOLD = 0.7  # Paulo & Belrose (2025)
DEFAULT_RANKS = (4, 8, 16, 32, 64)
_FIXED_POINT_BITS = 26


@dataclass(frozen=True)
class _Unit:
    """Atoms normalised and rounded to fixed point (integer-valued float64)."""

    q: torch.Tensor  # [n, d] integers |q| <= 2**26, stored as float64
    inv_norm: torch.Tensor  # [n] 1 / ||q|| (0 for a zero row)

    @property
    def n(self) -> int:
        return self.q.shape[0]


def as_atoms(atoms: Atoms, name: str = "atoms") -> torch.Tensor:
    """A 2-D float64 tensor view of an atom matrix ``[n_atoms, d_in]`` (numpy or torch)."""
    x = torch.from_numpy(np.asarray(atoms)) if not isinstance(atoms, torch.Tensor) else atoms
    if x.ndim != 2:
        raise ValueError(
            f"{name}: expected an atom matrix [n_atoms, d_in], got shape {tuple(x.shape)}"
        )
    if x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(f"{name}: empty atom matrix {tuple(x.shape)}")
    return x.detach().to(torch.float64)


def unit_rows(atoms: Atoms) -> torch.Tensor:
    """Rows scaled to unit length (float64); zero rows stay zero (no NaN)."""
    x = as_atoms(atoms, "atoms")
    norm = x.norm(dim=1, keepdim=True)
    return torch.where(norm > 0, x / norm.clamp_min(1e-300), torch.zeros_like(x))


def _unit(atoms: Atoms, name: str) -> _Unit:
    x = as_atoms(atoms, name)
    norm = x.norm(dim=1, keepdim=True)
    x = torch.where(norm > 0, x / norm.clamp_min(1e-300), torch.zeros_like(x))
    q = torch.round(x * 2.0**_FIXED_POINT_BITS)
    sq = (q * q).sum(dim=1)  # exact: integers, partial sums < 2**53
    inv = torch.where(sq > 0, sq.clamp_min(1.0).rsqrt(), torch.zeros_like(sq))
    return _Unit(q, inv)


def _pair(a: Atoms, b: Atoms) -> tuple[_Unit, _Unit]:
    ua, ub = _unit(a, "a"), _unit(b, "b")
    if ua.q.shape[1] != ub.q.shape[1]:
        raise ValueError(f"atoms live in different spaces: d_in {ua.q.shape[1]} vs {ub.q.shape[1]}")
    return ua, _Unit(ub.q.to(ua.q.device), ub.inv_norm.to(ua.q.device))


def _blocks(
    a: _Unit, b: _Unit, chunk_size: int, absolute: bool
) -> Iterator[tuple[int, torch.Tensor]]:
    """Yield ``(start, C[start:start+chunk_size])`` with C the (absolute) cosine matrix.

    The block is a view of a buffer reused for the next block: copy what you keep.
    Two buffers of ``chunk_size x n_b`` float64 are allocated once (page-faulting
    fresh ones for every block measurably slows the scan down).
    """
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    rows = min(chunk_size, a.n)
    buf = torch.empty(rows, b.n, dtype=torch.float64, device=a.q.device)
    scale = torch.empty_like(buf)
    bt = b.q.T
    for start in range(0, a.n, chunk_size):
        stop = min(start + chunk_size, a.n)
        c, s = buf[: stop - start], scale[: stop - start]
        torch.matmul(a.q[start:stop], bt, out=c)  # exact integer dot products
        # one product of the two inverse norms, so that C(B, A) is exactly C(A, B)^T
        torch.mul(a.inv_norm[start:stop, None], b.inv_norm[None, :], out=s)
        c.mul_(s).clamp_(-1.0, 1.0)
        yield start, (c.abs_() if absolute else c)


def cosine_matrix(
    a: Atoms, b: Atoms, *, absolute: bool = True, chunk_size: int = DEFAULT_CHUNK
) -> torch.Tensor:
    """The dense ``[n_a, n_b]`` cosine matrix ``C`` (|cos| by default), float64.

    For small dictionaries and tests; the metrics below never need it whole
    except for Hungarian matching.
    """
    ua, ub = _pair(a, b)
    out = torch.empty(ua.n, ub.n, dtype=torch.float64, device=ua.q.device)
    for start, c in _blocks(ua, ub, chunk_size, absolute):
        out[start : start + c.shape[0]] = c
    return out


@dataclass(frozen=True)
class BestMatch:
    """For each atom of A, its most similar atom of B (ties: the lowest index)."""

    index: torch.Tensor  # [n_a] int64
    cosine: torch.Tensor  # [n_a] float64 (|cos| when absolute)


@dataclass(frozen=True)
class _Scan:
    """Everything one pass over C gives: A's best matches, the best cosine of each
    atom of B, and optionally the Hungarian matching."""

    row: BestMatch  # best match in B of each atom of A
    col_cos: torch.Tensor  # [n_b] best cosine in A of each atom of B
    partner: torch.Tensor | None  # [n_a] Hungarian partner in B, -1 if unmatched
    partner_cos: torch.Tensor | None  # [n_a] its cosine, 0 if unmatched

    def swapped(self) -> _Scan:
        """The scan of (B, A) from the scan of (A, B), for the parts the metrics use:
        B's best cosines and the matching (A's best-match indices are not kept)."""
        n_cols = self.col_cos.shape[0]
        partner = partner_cos = None
        if self.partner is not None and self.partner_cos is not None:
            partner = torch.full((n_cols,), -1, dtype=torch.int64)
            partner_cos = torch.zeros(n_cols, dtype=torch.float64)
            hit = self.partner >= 0
            partner[self.partner[hit]] = torch.nonzero(hit).flatten()
            partner_cos[self.partner[hit]] = self.partner_cos[hit]
        missing = torch.full((n_cols,), -1, dtype=torch.int64)
        return _Scan(BestMatch(missing, self.col_cos), self.row.cosine, partner, partner_cos)


def _scan(
    a: _Unit, b: _Unit, *, absolute: bool, chunk_size: int, hungarian: bool, indices: bool = True
) -> _Scan:
    """One blocked pass over ``C = A B^T``; builds the dense cost only for Hungarian.

    Column maxima are taken without their indices (``amax``): torch's indexed max
    over the strided axis is several times slower than the rest of the pass.
    """
    if hungarian and a.n > b.n:  # keep the smaller side on the rows: scipy copies otherwise
        if indices:  # A's best-match indices need A on the rows: one more cheap pass
            row = _scan(a, b, absolute=absolute, chunk_size=chunk_size, hungarian=False).row
        flipped = _scan(b, a, absolute=absolute, chunk_size=chunk_size, hungarian=True).swapped()
        return _Scan(
            row if indices else flipped.row, flipped.col_cos, flipped.partner, flipped.partner_cos
        )
    row_cos = torch.empty(a.n, dtype=torch.float64)
    row_idx = torch.empty(a.n, dtype=torch.int64)
    col_cos = torch.full((b.n,), -np.inf, dtype=torch.float64)
    cost = np.empty((a.n, b.n), dtype=np.float64) if hungarian else None
    for start, c in _blocks(a, b, chunk_size, absolute):
        stop = start + c.shape[0]
        best, arg = c.max(dim=1)  # ties: the first (lowest) index
        row_cos[start:stop], row_idx[start:stop] = best.cpu(), arg.cpu()
        torch.maximum(col_cos, c.amax(dim=0).cpu(), out=col_cos)
        if cost is not None:
            np.negative(c.cpu().numpy(), out=cost[start:stop])
    partner = partner_cos = None
    if cost is not None:
        rows, cols = linear_sum_assignment(cost)  # rows == arange(n_a) since n_a <= n_b
        partner = torch.full((a.n,), -1, dtype=torch.int64)
        partner_cos = torch.zeros(a.n, dtype=torch.float64)
        partner[torch.from_numpy(rows)] = torch.from_numpy(cols)
        partner_cos[torch.from_numpy(rows)] = torch.from_numpy(-cost[rows, cols])
        del cost
    return _Scan(BestMatch(row_idx, row_cos), col_cos, partner, partner_cos)


def best_matches(
    a: Atoms, b: Atoms, *, absolute: bool = True, chunk_size: int = DEFAULT_CHUNK
) -> BestMatch:
    """For each atom (latent) of A: the index of its best-matching atom of B and their
    cosine (``|cos|`` by default). Ties go to the lowest index of B.

    Per-latent building block for "which latents are shared" predictors and for
    training dynamics (compare a checkpoint with the final dictionary and find the
    step after which each latent's best match stops changing).
    """
    ua, ub = _pair(a, b)
    return _scan(ua, ub, absolute=absolute, chunk_size=chunk_size, hungarian=False).row


def _pwmcc(s: _Scan) -> float:
    return 0.5 * (float(s.row.cosine.mean()) + float(s.col_cos.mean()))


def pwmcc(a: Atoms, b: Atoms, *, absolute: bool = True, chunk_size: int = DEFAULT_CHUNK) -> float:
    """Pairwise mean max cosine (the research plan's PWMCC, SCIENCE.md section 4):
    ``1/2 (mean_i max_j |C_ij| + mean_j max_i |C_ij|)``, symmetric in A and B.

    Each mean has its own dictionary's size as denominator (``n_a`` and ``n_b``).
    """
    ua, ub = _pair(a, b)
    return _pwmcc(_scan(ua, ub, absolute=absolute, chunk_size=chunk_size, hungarian=False))


@dataclass(frozen=True)
class Matching:
    """A one-to-one Hungarian matching from A's atoms to B's."""

    partner: torch.Tensor  # [n_a] int64 index in B, -1 where A's atom is unmatched (n_a > n_b)
    cosine: torch.Tensor  # [n_a] float64 matched cosine, 0 where unmatched

    @property
    def mcc(self) -> float:
        """Mean matched cosine over the ``min(n_a, n_b)`` matched pairs."""
        n = int((self.partner >= 0).sum())
        return float(self.cosine.sum()) / n


def hungarian_match(
    a: Atoms, b: Atoms, *, absolute: bool = True, chunk_size: int = DEFAULT_CHUNK
) -> Matching:
    """The one-to-one matching of A's and B's atoms maximising the summed cosine
    (``|cos|`` by default; Song et al. 2025 and Paulo & Belrose 2025 use the signed
    cosine, ``absolute=False``), by ``scipy.optimize.linear_sum_assignment``. With
    unequal sizes, ``min(n_a, n_b)`` pairs are matched and the rest of the larger
    dictionary is left unmatched."""
    ua, ub = _pair(a, b)
    s = _scan(ua, ub, absolute=absolute, chunk_size=chunk_size, hungarian=True, indices=False)
    assert s.partner is not None and s.partner_cos is not None
    return Matching(s.partner, s.partner_cos)


def hungarian_mcc(
    a: Atoms, b: Atoms, *, absolute: bool = True, chunk_size: int = DEFAULT_CHUNK
) -> float:
    """Hungarian MCC (Song et al. 2025, SCIENCE.md section 4): the mean of ``|C|`` over
    the one-to-one matching that maximises it (Song et al.'s code uses the signed
    ``C``: pass ``absolute=False``; their equal-size, zero-row-as-zero-vector
    conventions are the ones used here). The denominator is the number of matched
    pairs, ``min(n_a, n_b)``: unmatched atoms of the larger dictionary do not count
    (compare PWMCC, which counts every atom)."""
    return hungarian_match(a, b, absolute=absolute, chunk_size=chunk_size).mcc


def _shared_mask(dec: Matching, enc: Matching, threshold: float) -> torch.Tensor:
    return (
        (dec.partner >= 0)
        & (dec.partner == enc.partner)
        & (dec.cosine >= threshold)
        & (enc.cosine >= threshold)
    )


def _check_sae(enc: Atoms, dec: Atoms, name: str) -> None:
    if np.shape(enc) != np.shape(dec):
        raise ValueError(
            f"{name}: encoder atoms {tuple(np.shape(enc))} and decoder atoms "
            f"{tuple(np.shape(dec))} must both be [d_sae, d_in] (pass W_enc.T)"
        )


def shared_latents(
    enc_a: Atoms,
    dec_a: Atoms,
    enc_b: Atoms,
    dec_b: Atoms,
    threshold: float = DEFAULT_THRESHOLD,
    *,
    absolute: bool = True,
    chunk_size: int = DEFAULT_CHUNK,
) -> torch.Tensor:
    """Which of SAE A's latents are shared with SAE B ([d_sae_a] bool), by the rule of
    Paulo & Belrose (2025): the encoder atoms and the decoder atoms are matched
    separately with Hungarian; latent i is shared when both matchings pair it with
    the same latent j of B and both matched cosines are ``>= threshold`` (0.7).

    Paulo & Belrose match on the signed cosine; by default this project uses
    ``|cos|`` (module docstring), ``absolute=False`` gives their rule.
    """
    _check_sae(enc_a, dec_a, "SAE A")
    _check_sae(enc_b, dec_b, "SAE B")
    dec = hungarian_match(dec_a, dec_b, absolute=absolute, chunk_size=chunk_size)
    enc = hungarian_match(enc_a, enc_b, absolute=absolute, chunk_size=chunk_size)
    return _shared_mask(dec, enc, threshold)


def shared_fraction(
    enc_a: Atoms,
    dec_a: Atoms,
    enc_b: Atoms,
    dec_b: Atoms,
    threshold: float = DEFAULT_THRESHOLD,
    *,
    absolute: bool = True,
    chunk_size: int = DEFAULT_CHUNK,
) -> float:
    """Share of latents shared between SAEs A and B (Paulo & Belrose 2025; see
    :func:`shared_latents`). Denominator: ``min(d_sae_a, d_sae_b)``, the number of
    latents that can be matched at all (for equal sizes, as in Paulo & Belrose,
    simply ``d_sae``). Symmetric in A and B."""
    mask = shared_latents(
        enc_a, dec_a, enc_b, dec_b, threshold, absolute=absolute, chunk_size=chunk_size
    )
    return float(mask.sum()) / min(np.shape(dec_a)[0], np.shape(dec_b)[0])


def _singular_directions(u: torch.Tensor) -> torch.Tensor:
    """Right-singular vectors of ``u`` as columns [d_in, d_in], largest first
    (eigenvectors of the Gram matrix ``u^T u``)."""
    _, vecs = torch.linalg.eigh(u.T @ u)  # ascending eigenvalues
    return vecs.flip(1)


def subspace_overlap(a: Atoms, b: Atoms, ranks: Sequence[int]) -> dict[int, float]:
    """Overlap of the two decoders' top-r subspaces, for each r in ``ranks``
    (SCIENCE.md section 4).

    The subspace is spanned by the top-r right-singular vectors of the
    unit-normalised atom matrix (uncentred, as the atoms are directions; the
    eigenvectors of ``A^T A``). The overlap is the mean of ``cos^2`` of the r
    principal angles between the two subspaces, ``||V_A^T V_B||_F^2 / r``: 1 for
    the same subspace, 0 for orthogonal ones, ``r / d_in`` in expectation for
    random subspaces (:func:`subspace_random_expectation`). The subspace is
    ill-defined when the r-th and (r+1)-th singular values tie (e.g. an isotropic
    or orthonormal dictionary). Needs ``1 <= r <= min(n_a, n_b, d_in)``: beyond a
    dictionary's size the extra directions would be arbitrary.
    """
    ua = unit_rows(a)
    ub = unit_rows(b).to(ua.device)
    if ua.shape[1] != ub.shape[1]:
        raise ValueError(f"atoms live in different spaces: d_in {ua.shape[1]} vs {ub.shape[1]}")
    limit = min(ua.shape[0], ub.shape[0], ua.shape[1])
    va, vb = _singular_directions(ua), _singular_directions(ub)
    out: dict[int, float] = {}
    for r in ranks:
        if not 1 <= r <= limit:
            raise ValueError(f"rank {r} must be in [1, min(n_a, n_b, d_in) = {limit}]")
        out[int(r)] = float((va[:, :r].T @ vb[:, :r]).pow(2).sum()) / r
    return out


def subspace_random_expectation(ranks: Sequence[int], d_in: int) -> dict[int, float]:
    """Expected :func:`subspace_overlap` of two independent uniformly random r-dim
    subspaces of R^d_in: ``E[||V_A^T V_B||_F^2] / r = r / d_in``."""
    return {int(r): r / d_in for r in ranks}


@dataclass(frozen=True)
class PairMetrics:
    """All stability metrics for one pair of SAEs (A, B), sharing one pass per
    cosine matrix. Per-latent results are kept for later analyses."""

    pwmcc: float
    hungarian_mcc: float | None  # None when matching was skipped
    shared_fraction: float | None  # None without encoder atoms or matching
    subspace_overlap: dict[int, float]
    subspace_random: dict[int, float]
    best_match_a: BestMatch  # each decoder atom of A: best match in B
    decoder_matching: Matching | None  # Hungarian on decoder atoms, from A's side
    shared_a: torch.Tensor | None  # [d_sae_a] bool (Paulo & Belrose)

    def to_dict(self) -> dict[str, float]:
        """Flat JSON-ready scalars: ``pwmcc``, ``hungarian_mcc`` and
        ``shared_fraction`` (when computed), ``subspace_overlap_r{r}`` and
        ``subspace_random_r{r}``."""
        out = {"pwmcc": self.pwmcc}
        if self.hungarian_mcc is not None:
            out["hungarian_mcc"] = self.hungarian_mcc
        if self.shared_fraction is not None:
            out["shared_fraction"] = self.shared_fraction
        for r, v in self.subspace_overlap.items():
            out[f"subspace_overlap_r{r}"] = v
        for r, v in self.subspace_random.items():
            out[f"subspace_random_r{r}"] = v
        return out


def pair_metrics(
    dec_a: Atoms,
    dec_b: Atoms,
    enc_a: Atoms | None = None,
    enc_b: Atoms | None = None,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    ranks: Sequence[int] = DEFAULT_RANKS,
    absolute: bool = True,
    hungarian: bool = True,
    chunk_size: int = DEFAULT_CHUNK,
) -> PairMetrics:
    """Every stability metric for one pair, computing each cosine matrix once.

    The decoder cosine matrix gives PWMCC, the best matches and the Hungarian
    matching (hence Hungarian MCC); the encoder cosine matrix, when encoder atoms
    are given, gives the second matching of the shared fraction. Peak memory is
    one dense float64 cost matrix (``n_a * n_b * 8`` bytes) plus two blocks.
    ``hungarian=False`` skips both matchings (Hungarian MCC and shared fraction),
    which dominate the time for large dictionaries (benchmarks/RESULTS-stability.md),
    e.g. for many training checkpoints.
    Ranks above ``min(n_a, n_b, d_in)`` are left out of the subspace overlap.
    """
    if (enc_a is None) != (enc_b is None):
        raise ValueError("give encoder atoms for both SAEs or for neither")
    if enc_a is not None and enc_b is not None:
        _check_sae(enc_a, dec_a, "SAE A")
        _check_sae(enc_b, dec_b, "SAE B")
    ua, ub = _pair(dec_a, dec_b)
    s = _scan(ua, ub, absolute=absolute, chunk_size=chunk_size, hungarian=hungarian)
    del ua, ub
    dec = shared = fraction = None
    n_a, d_in = np.shape(dec_a)
    n_b = np.shape(dec_b)[0]
    if s.partner is not None and s.partner_cos is not None:
        dec = Matching(s.partner, s.partner_cos)
        if enc_a is not None and enc_b is not None:
            enc = hungarian_match(enc_a, enc_b, absolute=absolute, chunk_size=chunk_size)
            shared = _shared_mask(dec, enc, threshold)
            fraction = float(shared.sum()) / min(n_a, n_b)
    limit = min(n_a, n_b, d_in)
    ok = [int(r) for r in ranks if 1 <= r <= limit]
    return PairMetrics(
        pwmcc=_pwmcc(s),
        hungarian_mcc=None if dec is None else dec.mcc,
        shared_fraction=fraction,
        subspace_overlap=subspace_overlap(dec_a, dec_b, ok),
        subspace_random=subspace_random_expectation(ok, d_in),
        best_match_a=s.row,
        decoder_matching=dec,
        shared_a=shared,
    )


def seed_pair_metrics(
    decoders: Sequence[Atoms],
    encoders: Sequence[Atoms] | None = None,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    ranks: Sequence[int] = DEFAULT_RANKS,
    absolute: bool = True,
    hungarian: bool = True,
    chunk_size: int = DEFAULT_CHUNK,
) -> dict[tuple[int, int], PairMetrics]:
    """:func:`pair_metrics` for all ``n(n-1)/2`` pairs ``i < j`` of n seeds' SAEs, keyed
    ``(i, j)`` in row-major order, per-latent results included (best matches, the
    decoder matching, the shared latents): the one pass over every pair that
    :func:`pairwise_metrics` (the matrices) and per-latent analyses (e.g.
    :func:`husai.predictors.count_shared`) can share."""
    n = len(decoders)
    if n < 2:
        raise ValueError(f"need at least 2 seeds' dictionaries, got {n}")
    if encoders is not None and len(encoders) != n:
        raise ValueError(f"{len(encoders)} encoders for {n} decoders")
    return {
        (i, j): pair_metrics(
            decoders[i],
            decoders[j],
            None if encoders is None else encoders[i],
            None if encoders is None else encoders[j],
            threshold=threshold,
            ranks=ranks,
            absolute=absolute,
            hungarian=hungarian,
            chunk_size=chunk_size,
        )
        for i in range(n)
        for j in range(i + 1, n)
    }


def metric_matrices(
    pairs: Mapping[tuple[int, int], PairMetrics], n_seeds: int
) -> dict[str, np.ndarray]:
    """Per metric name of :meth:`PairMetrics.to_dict`, the ``[n, n]`` float64 matrix with
    pair (i, j) at ``[i, j]`` and ``[j, i]`` and NaN on the diagonal (and for a pair not
    in ``pairs``): the input of :func:`husai.stats.seed_stats`."""
    out: dict[str, np.ndarray] = {}
    for (i, j), m in pairs.items():
        for key, value in m.to_dict().items():
            mat = out.setdefault(key, np.full((n_seeds, n_seeds), np.nan))
            mat[i, j] = mat[j, i] = value
    return out


def pairwise_metrics(
    decoders: Sequence[Atoms],
    encoders: Sequence[Atoms] | None = None,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    ranks: Sequence[int] = DEFAULT_RANKS,
    absolute: bool = True,
    hungarian: bool = True,
    chunk_size: int = DEFAULT_CHUNK,
) -> dict[str, np.ndarray]:
    """:func:`pair_metrics` for all ``n(n-1)/2`` pairs of n seeds' SAEs.

    Returns, per metric name of :meth:`PairMetrics.to_dict`, an ``[n, n]`` float64
    matrix with the pair (i, j) at ``[i, j]`` and ``[j, i]`` and NaN on the
    diagonal: the input of :func:`husai.stats.seed_stats`
    (:func:`metric_matrices` of :func:`seed_pair_metrics`).
    """
    pairs = seed_pair_metrics(
        decoders,
        encoders,
        threshold=threshold,
        ranks=ranks,
        absolute=absolute,
        hungarian=hungarian,
        chunk_size=chunk_size,
    )
    return metric_matrices(pairs, len(decoders))
