"""Compare any SAEs: how much two or more dictionaries agree, beside what chance gives.

The instrument of this project applied to SAEs it did not train (``husai compare``).
One argument order throughout: an SAE is one :class:`SAEAtoms` (its name, decoder atoms
and encoder atoms, both ``[d_sae, d_in]``), and a comparison takes SAEs, never loose
encoder / decoder tensors, so the order question of :func:`husai.stability.shared_fraction`
(encoders first) and :func:`husai.stability.pair_metrics` (decoders first) does not
arise.

Per pair (A, B), on the atoms' ``|cos|`` (``absolute``; the signed cosine of Paulo &
Belrose and Song et al. with ``absolute=False``):

* ``pwmcc_ab``: mean over A's atoms of the best ``|cos|`` with B's; ``pwmcc_ba`` the
  other way; ``pwmcc`` their mean (SCIENCE.md section 4). With different widths the
  two directions differ.
* ``hungarian_mcc``: mean matched ``|cos|`` of the one-to-one decoder matching
  (SciPy's ``linear_sum_assignment``), over the ``min(d_sae_a, d_sae_b)`` matched pairs.
* ``shared_fraction`` (Paulo & Belrose 2025): latents whose decoder matching and encoder
  matching pair them with the same latent, both cosines ``>= threshold``, over
  ``min(d_sae_a, d_sae_b)``.
* ``subspace_overlap``: per rank r, the overlap of the two decoders' top-r singular
  subspaces (1 = the same span), and its expectation for random subspaces.
* ``matching``: the decoder matching, latent i of A <-> latent j of B, with the decoder
  cosine, the encoder cosine of the same pair (not of the encoder matching) and
  whether the pair is shared.

Beside each pair, the isotropic reference for the same shapes: dictionaries of random
unit atoms, ``d_sae_a`` and ``d_sae_b`` of them in ``R^d_in``, encoder atoms drawn apart
from decoder atoms (untied, as trained SAEs are), from seeds ``seed + i`` (SAE i's
position). With three or more SAEs, every metric also has its mean over pairs and a
bootstrap CI that resamples SAEs (:func:`husai.stats.seed_stats`).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from husai.baselines import isotropic_dictionary
from husai.errors import HusaiError
from husai.stability import (
    DEFAULT_RANKS,
    DEFAULT_THRESHOLD,
    pair_metrics,
)
from husai.stats import BOOT_SEED, N_BOOT, pair_matrix, seed_stats

COMPARE_SCHEMA_VERSION = 1
"""Version of the result layout (:class:`husai.records.CompareResult`): raised when a
field changes meaning or goes away."""

ENCODER_SEED_OFFSET = 1_000_003  # the reference's encoder atoms: seed + i + this
METRICS = ("pwmcc", "hungarian_mcc", "shared_fraction")
DENSE_LIMIT = 8192 * 8192
"""Above this many atom pairs (a dense float64 cost matrix of 512 MiB) the matchings use
:func:`sparse_match` instead of SciPy's dense ``linear_sum_assignment``."""
SPARSE_CANDIDATES = 32  # each atom of A's best candidates in B, at the first try
COLUMN_CANDIDATES = 4  # each atom of B's best candidates in A
CHUNK_ELEMENTS = 2**27  # cosines per chunk of the candidate search (512 MiB of float32)
UNIT_ROUNDOFF = 2.0**-24
"""float32's unit round-off. The candidate search's float32 cosine of two vectors of
length d (a dot product, d u at most, times two inverse norms, (d / 2 + 2) u each, in two
products, u each) is off the exact one by less than ``2 d + 8`` times this, to first
order: the allowance the bound adds per pair."""


@dataclass(frozen=True)
class SAEAtoms:
    """One SAE: a name, and its decoder and encoder atoms, both ``[d_sae, d_in]``
    (decoder rows ``W_dec``; encoder atoms ``W_enc.T``, one row per latent)."""

    name: str
    decoder: torch.Tensor
    encoder: torch.Tensor

    def __post_init__(self) -> None:
        for part in ("decoder", "encoder"):
            t = getattr(self, part)
            if not isinstance(t, torch.Tensor) or t.ndim != 2 or t.shape[0] < 1:
                shape = tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
                raise HusaiError(f"{self.name}: {part} atoms must be [d_sae, d_in], got {shape}")
            if not bool(torch.isfinite(t).all()):
                raise HusaiError(f"{self.name}: {part} atoms hold NaN or inf values")
        if self.decoder.shape != self.encoder.shape:
            raise HusaiError(
                f"{self.name}: decoder atoms {tuple(self.decoder.shape)} and encoder atoms "
                f"{tuple(self.encoder.shape)} differ in shape"
            )

    @classmethod
    def from_weights(cls, name: str, w_enc: torch.Tensor, w_dec: torch.Tensor) -> SAEAtoms:
        """From SAELens-layout weights: ``W_enc [d_in, d_sae]``, ``W_dec [d_sae, d_in]``
        (views of them, not copies: the encoder atoms are ``W_enc.T``)."""
        w_enc, w_dec = w_enc.detach().to("cpu"), w_dec.detach().to("cpu")
        if w_enc.ndim != 2 or w_enc.shape[::-1] != w_dec.shape:
            raise HusaiError(
                f"{name}: W_enc {tuple(w_enc.shape)} is not the transpose shape of W_dec "
                f"{tuple(w_dec.shape)} ([d_in, d_sae] and [d_sae, d_in])"
            )
        return cls(name, w_dec, w_enc.T)

    @property
    def d_sae(self) -> int:
        return int(self.decoder.shape[0])

    @property
    def d_in(self) -> int:
        return int(self.decoder.shape[1])


def common_d_in(saes: Sequence[SAEAtoms]) -> int:
    """The ``d_in`` every SAE reads; a one-line error naming each SAE's when they differ."""
    d_in = {s.d_in for s in saes}
    if len(d_in) != 1:
        detail = ", ".join(f"{s.name}: {s.d_in}" for s in saes)
        raise HusaiError(f"the SAEs must read the same activations (d_in), got {detail}")
    return d_in.pop()


def isotropic_reference(saes: Sequence[SAEAtoms], seed: int = 0) -> list[SAEAtoms]:
    """One random SAE per SAE of ``saes``, of its width, in the same ``R^d_in``: unit
    Gaussian atoms, decoder from ``seed + i``, encoder from ``seed + i +``
    :data:`ENCODER_SEED_OFFSET` (untied)."""
    return [
        SAEAtoms(
            f"isotropic {i}",
            isotropic_dictionary(s.d_sae, s.d_in, seed + i),
            isotropic_dictionary(s.d_sae, s.d_in, seed + i + ENCODER_SEED_OFFSET),
        )
        for i, s in enumerate(saes)
    ]


def compare_pair(
    a: SAEAtoms,
    b: SAEAtoms,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    ranks: Sequence[int] = DEFAULT_RANKS,
    absolute: bool = True,
    matching: bool = True,
    dense_limit: int = DENSE_LIMIT,
) -> dict[str, Any]:
    """The agreement of SAEs A and B (module docstring); ``matching`` adds the list of
    matched pairs. Above ``dense_limit`` atom pairs the matchings are
    :func:`sparse_match` (``matching_method`` "sparse", with the bound on each matching's
    distance from the optimum in ``matching_gap``), else SciPy's dense solver (exact)."""
    if a.d_in != b.d_in:
        raise HusaiError(f"{a.name} has d_in {a.d_in} but {b.name} has d_in {b.d_in}")
    if a.d_sae * b.d_sae > dense_limit:
        return _compare_large(a, b, threshold, ranks, absolute, matching)
    pm = pair_metrics(
        a.decoder,
        b.decoder,
        a.encoder,
        b.encoder,
        threshold=threshold,
        ranks=ranks,
        absolute=absolute,
    )
    ab = float(pm.best_match_a.cosine.mean())
    out: dict[str, Any] = {
        "a": a.name,
        "b": b.name,
        "pwmcc": pm.pwmcc,
        "pwmcc_ab": ab,
        "pwmcc_ba": 2.0 * pm.pwmcc - ab,
        "hungarian_mcc": pm.hungarian_mcc,
        "shared_fraction": pm.shared_fraction,
        "subspace_overlap": {str(r): v for r, v in pm.subspace_overlap.items()},
        "subspace_random": {str(r): v for r, v in pm.subspace_random.items()},
        "matching_method": "dense",
        "matching_gap": None,
    }
    if matching:
        dec = pm.decoder_matching
        assert dec is not None and pm.shared_a is not None
        out["matching"] = _matching_list(a, b, dec.partner, dec.cosine, pm.shared_a, absolute)
    return out


def _paired_cosines(
    a: torch.Tensor, b: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor, chunk: int = 4096
) -> torch.Tensor:
    """float64 cosine of A's atom ``rows[t]`` and B's atom ``cols[t]`` for each t (in
    chunks: no float64 copy of either dictionary)."""
    unit = torch.nn.functional.normalize
    if len(rows) == 0:
        return torch.zeros(0, dtype=torch.float64)
    return torch.cat(
        [
            (
                unit(a[rows[s : s + chunk]].double(), dim=1)
                * unit(b[cols[s : s + chunk]].double(), dim=1)
            ).sum(1)
            for s in range(0, len(rows), chunk)
        ]
    )


def _matching_list(
    a: SAEAtoms,
    b: SAEAtoms,
    partner: torch.Tensor,
    dec_cos: torch.Tensor,
    shared: torch.Tensor,
    absolute: bool,
) -> list[dict[str, Any]]:
    """The decoder matching as records: latent i of A <-> ``partner[i]`` of B, with the
    decoder cosine, the encoder cosine of the same two latents (computed in chunks) and
    whether they are shared."""
    rows = torch.nonzero(partner >= 0).flatten()
    cols = partner[rows]
    enc = _paired_cosines(a.encoder, b.encoder, rows, cols)
    if absolute:
        enc = enc.abs()
    return [
        {
            "a": int(i),
            "b": int(j),
            "decoder_cos": float(dc),
            "encoder_cos": float(ec),
            "shared": bool(sh),
        }
        for i, j, dc, ec, sh in zip(
            rows.tolist(),
            cols.tolist(),
            dec_cos[rows].tolist(),
            enc.tolist(),
            shared[rows].tolist(),
            strict=True,
        )
    ]


Parts = Callable[[], tuple[torch.Tensor, torch.Tensor]]


def _compare_large(
    a: SAEAtoms,
    b: SAEAtoms,
    threshold: float,
    ranks: Sequence[int],
    absolute: bool,
    matching: bool,
) -> dict[str, Any]:
    """:func:`compare_pair` without a dense cost matrix: the matchings from
    :func:`sparse_match`, PWMCC from the best cosines its candidate search found (float32
    precision, about 1e-7)."""
    out = _large_pair(
        (a.name, b.name),
        lambda: (a.decoder, b.decoder),
        lambda: (a.encoder, b.encoder),
        threshold,
        ranks,
        absolute,
    )
    shared = out.pop("_shared")
    dec = out.pop("_decoder")
    if matching:
        out["matching"] = _matching_list(a, b, dec.partner, dec.cosine, shared, absolute)
    return out


def _large_pair(
    names: tuple[str, str],
    decoders: Parts,
    encoders: Parts,
    threshold: float,
    ranks: Sequence[int],
    absolute: bool,
) -> dict[str, Any]:
    """The large-pair metrics from the two decoders, then the two encoders, each pair
    asked for only when needed (so that a reference pair's random atoms are drawn one
    part at a time and dropped after use). Keys ``_shared`` and ``_decoder`` carry the
    shared mask and the decoder matching for the matching list."""
    from husai.stability import subspace_random_expectation

    dec_a, dec_b = decoders()
    (n_a, d_in), n_b = dec_a.shape, dec_b.shape[0]
    dec = sparse_match(dec_a, dec_b, absolute=absolute)
    ok = [int(r) for r in ranks if 1 <= r <= min(n_a, n_b, d_in)]
    overlap = _subspace_overlap_chunked(dec_a, dec_b, ok)
    del dec_a, dec_b
    enc_a, enc_b = encoders()
    enc = sparse_match(enc_a, enc_b, absolute=absolute)
    del enc_a, enc_b
    shared = (dec.partner >= 0) & (dec.partner == enc.partner)
    shared &= (dec.cosine >= threshold) & (enc.cosine >= threshold)
    ab, ba = float(dec.best_a.mean()), float(dec.best_b.mean())
    return {
        "a": names[0],
        "b": names[1],
        "pwmcc": 0.5 * (ab + ba),
        "pwmcc_ab": ab,
        "pwmcc_ba": ba,
        "hungarian_mcc": dec.mcc,
        "shared_fraction": float(shared.sum()) / dec.n_matched,
        "subspace_overlap": {str(r): v for r, v in overlap.items()},
        "subspace_random": {str(r): v for r, v in subspace_random_expectation(ok, d_in).items()},
        "matching_method": "sparse",
        "matching_gap": {"decoder": dec.gap, "encoder": enc.gap},
        "_shared": shared,
        "_decoder": dec,
    }


def _subspace_overlap_chunked(
    a: torch.Tensor, b: torch.Tensor, ranks: Sequence[int], chunk: int = 8192
) -> dict[int, float]:
    """:func:`husai.stability.subspace_overlap` with each Gram matrix ``u^T u`` summed
    over chunks of unit rows (float64), so that no float64 copy of a dictionary is made."""
    from husai.stability import unit_rows

    def directions(atoms: torch.Tensor) -> torch.Tensor:
        d = atoms.shape[1]
        gram = torch.zeros(d, d, dtype=torch.float64)
        for start in range(0, atoms.shape[0], chunk):
            u = unit_rows(atoms[start : start + chunk])
            gram += u.T @ u
        return torch.linalg.eigh(gram)[1].flip(1)  # ascending eigenvalues, reversed

    va, vb = directions(a), directions(b)
    return {int(r): float((va[:, :r].T @ vb[:, :r]).pow(2).sum()) / r for r in ranks}


def _reference_pair(
    a: SAEAtoms,
    b: SAEAtoms,
    seeds: tuple[int, int],
    options: dict[str, Any],
    dense_limit: int,
) -> dict[str, Any]:
    """The isotropic reference pair of :func:`isotropic_reference` for SAEs at positions
    with ``seeds`` (``seed + i``, ``seed + j``): the same atoms; above ``dense_limit``
    atom pairs they are drawn one part (decoders, then encoders) at a time."""
    if a.d_sae * b.d_sae <= dense_limit:
        ref = [
            SAEAtoms(
                f"isotropic {k}",
                isotropic_dictionary(s.d_sae, s.d_in, seed),
                isotropic_dictionary(s.d_sae, s.d_in, seed + ENCODER_SEED_OFFSET),
            )
            for k, (s, seed) in enumerate(((a, seeds[0]), (b, seeds[1])))
        ]
        return compare_pair(ref[0], ref[1], matching=False, dense_limit=dense_limit, **options)

    def draw(offset: int) -> tuple[torch.Tensor, torch.Tensor]:
        return (
            isotropic_dictionary(a.d_sae, a.d_in, seeds[0] + offset),
            isotropic_dictionary(b.d_sae, b.d_in, seeds[1] + offset),
        )

    out = _large_pair(
        ("isotropic 0", "isotropic 1"),
        lambda: draw(0),
        lambda: draw(ENCODER_SEED_OFFSET),
        options["threshold"],
        options["ranks"],
        options["absolute"],
    )
    del out["_shared"], out["_decoder"]
    return out


def _stats(
    pairs: list[dict[str, Any]], n: int, key: str, n_boot: int, boot_seed: int
) -> dict[str, Any]:
    m = pair_matrix(n)
    for k, (i, j) in enumerate(itertools.combinations(range(n), 2)):
        m[i, j] = m[j, i] = pairs[k][key]
    return seed_stats(m, n_boot=n_boot, seed=boot_seed).to_dict()


def compare(
    saes: Sequence[SAEAtoms],
    *,
    threshold: float = DEFAULT_THRESHOLD,
    ranks: Sequence[int] = DEFAULT_RANKS,
    absolute: bool = True,
    seed: int = 0,
    n_boot: int = N_BOOT,
    boot_seed: int = BOOT_SEED,
    matching: bool = True,
    lives: Sequence[torch.Tensor] | None = None,
    x: torch.Tensor | None = None,
    subspace_variance: float | None = 0.99,
    dense_limit: int = DENSE_LIMIT,
) -> dict[str, Any]:
    """Every pair of ``saes`` (in order: (0, 1), (0, 2), ..., (1, 2), ...) beside the
    isotropic reference of the same shapes; with three or more SAEs, the mean and
    seed-bootstrap CI of each metric over pairs (``summary``, trained and reference).

    With ``lives`` (one bool ``[d_sae]`` per SAE: the latents that fire on some row of
    the activations ``x [N, d_in]``) also ``live``: :func:`husai.groundtruth.live_stability`
    of the live atoms only (|cos|, whatever ``absolute``), beside random atoms as many as
    each SAE has live latents (isotropic, in the span holding ``subspace_variance`` of
    the activations' variance, and random activation rows; drawn from ``seed + i``), and
    per SAE its live, dead and distinct live counts. The layout is
    :class:`husai.records.CompareResult` less its provenance."""
    if len(saes) < 2:
        raise HusaiError(f"compare needs at least two SAEs, got {len(saes)}")
    names = [s.name for s in saes]
    if len(set(names)) != len(names):
        raise HusaiError(f"SAE names must be distinct, got {names}")
    common_d_in(saes)
    options = {"threshold": threshold, "ranks": ranks, "absolute": absolute}
    pairs, random = [], []
    for i, j in itertools.combinations(range(len(saes)), 2):
        pair = compare_pair(saes[i], saes[j], matching=matching, dense_limit=dense_limit, **options)
        ref = _reference_pair(saes[i], saes[j], (seed + i, seed + j), options, dense_limit)
        keys = ("pwmcc", "pwmcc_ab", "pwmcc_ba", *METRICS[1:], "matching_gap")
        pair["isotropic"] = {k: ref[k] for k in keys}
        pairs.append(pair)
        random.append(ref)
    out: dict[str, Any] = {
        "schema_version": COMPARE_SCHEMA_VERSION,
        "saes": [{"name": s.name, "d_sae": s.d_sae, "d_in": s.d_in} for s in saes],
        "options": {
            "threshold": threshold,
            "ranks": [int(r) for r in ranks],
            "cosine": "absolute" if absolute else "signed",
            "seed": seed,
            "n_boot": n_boot,
            "boot_seed": boot_seed,
        },
        "pairs": pairs,
        "summary": None,
    }
    if lives is not None:
        out["live"] = _live(saes, lives, x, seed, threshold, subspace_variance, n_boot, boot_seed)
        out["options"]["live_cosine"] = "absolute"
        for entry, n_live, distinct in zip(
            out["saes"],
            out["live"]["n_live_per_seed"],
            out["live"]["distinct_live_per_seed"],
            strict=True,
        ):
            entry.update(n_live=n_live, n_dead=entry["d_sae"] - n_live, distinct_live=distinct)
    if len(saes) >= 3:
        n = len(saes)
        out["summary"] = {
            key: {
                "trained": _stats(pairs, n, key, n_boot, boot_seed),
                "isotropic": _stats(random, n, key, n_boot, boot_seed),
            }
            for key in METRICS
        }
    return out


def _live(
    saes: Sequence[SAEAtoms],
    lives: Sequence[torch.Tensor],
    x: torch.Tensor | None,
    seed: int,
    threshold: float,
    subspace_variance: float | None,
    n_boot: int,
    boot_seed: int,
) -> dict[str, Any]:
    from husai.groundtruth import live_stability

    if x is None or x.ndim != 2 or x.shape[1] != saes[0].d_in:
        shape = None if x is None else tuple(x.shape)
        raise HusaiError(f"live numbers need activations [N, {saes[0].d_in}], got {shape}")
    if x.shape[0] < 2:
        raise HusaiError(f"live numbers need at least 2 activation rows, got {x.shape[0]}")
    if not float(x.double().var(0).sum()) > 0.0:
        raise HusaiError("the activations have no variance (every row the same)")
    if len(lives) != len(saes):
        raise HusaiError(f"need one live mask per SAE ({len(saes)}), got {len(lives)}")
    for s, live in zip(saes, lives, strict=True):
        if tuple(live.shape) != (s.d_sae,):
            raise HusaiError(f"{s.name}: live mask {tuple(live.shape)}, expected ({s.d_sae},)")
        if int(live.sum()) < 1:
            raise HusaiError(f"{s.name}: no latent fires on any row of the activations")
    return live_stability(
        [s.decoder for s in saes],
        [s.encoder for s in saes],
        [live.to(torch.bool) for live in lives],
        x,
        [seed + i for i in range(len(saes))],
        threshold=threshold,
        subspace_variance=subspace_variance,
        n_boot=n_boot,
        boot_seed=boot_seed,
    )


# ----------------------------------------------------------------------------- large SAEs


@dataclass(frozen=True)
class SparseMatching:
    """A one-to-one matching found among each atom's best candidates, with a bound on
    how far it can be from the optimum (:func:`sparse_match`)."""

    partner: torch.Tensor  # [n_a] int64 index in B, -1 where unmatched
    cosine: torch.Tensor  # [n_a] float64 matched cosine (exact), 0 where unmatched
    upper_bound: float  # no one-to-one matching has a larger summed cosine
    candidates: int  # per atom of A, in the run that succeeded (B's: COLUMN_CANDIDATES)
    best_a: torch.Tensor  # [n_a] each atom of A's best cosine with B's (float32 precision)
    best_b: torch.Tensor  # [n_b] each atom of B's best cosine with A's

    @property
    def n_matched(self) -> int:
        return int((self.partner >= 0).sum())

    @property
    def mcc(self) -> float:
        return float(self.cosine.sum()) / self.n_matched

    @property
    def gap(self) -> float:
        """Upper bound of how much the optimal matching's mean cosine could exceed this
        one's (0: optimal to rounding)."""
        return max(0.0, (self.upper_bound - float(self.cosine.sum())) / self.n_matched)


def _inverse_norms(t: torch.Tensor) -> torch.Tensor:
    """``1 / |row|`` in float32 (rows of length 0 count as length 1e-12, as
    ``torch.nn.functional.normalize`` does)."""
    return t.to(torch.float32).norm(dim=1).clamp_min(1e-12).reciprocal()


def _scan_candidates(
    a: torch.Tensor,
    b: torch.Tensor,
    k_row: int,
    k_col: int,
    absolute: bool,
    chunk_elements: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """One chunked pass over the cosines of A's and B's atoms (float32, never a dense
    ``n_a x n_b`` matrix, never a normalised copy of either dictionary): each atom of A's
    ``k_row`` most similar atoms of B (indices and cosines, ``[n_a, k_row]``) and each
    atom of B's ``k_col`` most similar atoms of A (``[k_col, n_b]``, best first)."""
    n_a, n_b = a.shape[0], b.shape[0]
    inv_a, inv_b = _inverse_norms(a), _inverse_norms(b)
    b32 = b.to(torch.float32)
    rows = max(1, min(n_a, chunk_elements // max(n_b, 1)))
    row_idx, row_val = [], []
    col_val = torch.full((k_col, n_b), -math.inf)
    col_idx = torch.zeros((k_col, n_b), dtype=torch.int64)
    columns = torch.arange(n_b)
    for start in range(0, n_a, rows):
        c = a[start : start + rows].to(torch.float32) @ b32.T
        c.mul_(inv_a[start : start + rows, None]).mul_(inv_b[None, :])
        if absolute:
            c.abs_()
        v, i = c.topk(k_row, dim=1)
        row_idx.append(i)
        row_val.append(v)
        # the chunk's k_col best per column, by repeated maxima (a top-k along dim 0
        # is much slower), merged into the running best
        new_v, new_i = [], []
        for _ in range(min(k_col, c.shape[0])):
            m, at = c.max(dim=0)
            new_v.append(m)
            new_i.append(at + start)
            c[at, columns] = -math.inf
        both_v = torch.cat([col_val, torch.stack(new_v)])
        both_i = torch.cat([col_idx, torch.stack(new_i)])
        col_val, keep = both_v.topk(k_col, dim=0)
        col_idx = both_i.gather(0, keep)
    return torch.cat(row_idx), torch.cat(row_val), col_idx, col_val


def sparse_match(
    a: torch.Tensor,
    b: torch.Tensor,
    *,
    absolute: bool = True,
    candidates: int = SPARSE_CANDIDATES,
    column_candidates: int = COLUMN_CANDIDATES,
    chunk_elements: int = CHUNK_ELEMENTS,
) -> SparseMatching:
    """The maximum-cosine one-to-one matching of A's and B's atoms (``[n, d]`` rows)
    restricted to candidate pairs: each atom of A's ``candidates`` most similar atoms of
    B, and each atom of B's ``column_candidates`` most similar atoms of A, found in one
    chunked float32 pass (``chunk_elements`` cosines at a time, so no dense
    ``n_a x n_b`` matrix), solved by SciPy's ``min_weight_full_bipartite_matching``
    (weights ``2 + cos``: every full matching has ``min(n_a, n_b)`` pairs, so the shift
    keeps the optimum, and no weight is 0, which SciPy would drop as a missing edge, even
    for a signed cosine of -1). If the candidates admit no full matching, A's are
    doubled and it tries again (dense SciPy ``linear_sum_assignment`` once they reach
    the whole of B). ``upper_bound``: the smaller of the summed best cosine of each atom
    of the smaller side and the sum of the other side's ``min(n_a, n_b)`` largest best
    cosines (plus ``(2 d + 8) *`` :data:`UNIT_ROUNDOFF` per pair for the float32 search):
    no matching can beat it, so ``gap`` bounds the distance to the optimum. The matched
    cosines are recomputed exactly (float64, in chunks). Memory: the dictionaries as
    given, one chunk of cosines and the candidates."""
    from scipy.optimize import linear_sum_assignment
    from scipy.sparse import csr_array
    from scipy.sparse.csgraph import min_weight_full_bipartite_matching

    n_a, n_b = a.shape[0], b.shape[0]
    n = min(n_a, n_b)
    k = max(1, candidates)
    while True:
        ka, kb = min(k, n_b), min(max(1, column_candidates), n_a)
        if ka >= n_b:  # every pair is a candidate: the dense solver
            ua = torch.nn.functional.normalize(a.double(), dim=1)
            ub = torch.nn.functional.normalize(b.double(), dim=1)
            c = ua @ ub.T
            c = c.abs() if absolute else c
            rows, cols = linear_sum_assignment(c.numpy(), maximize=True)
            best_a, best_b = c.max(1).values, c.max(0).values
            break
        ia, va, ib, vb = _scan_candidates(a, b, ka, kb, absolute, chunk_elements)
        r = torch.cat([torch.arange(n_a).repeat_interleave(ka), ib.flatten()])
        col = torch.cat([ia.flatten(), torch.arange(n_b).repeat(kb)])
        w = torch.cat([va.flatten(), vb.flatten()]).double() + 2.0
        key, first = np.unique((r * n_b + col).numpy(), return_index=True)
        graph = csr_array(
            (w.numpy()[first], (key // n_b, key % n_b)), shape=(n_a, n_b), dtype=np.float64
        )
        del r, col, w, key, first
        best_a, best_b = va[:, 0].double(), vb[0].double()
        try:
            rows, cols = min_weight_full_bipartite_matching(graph, maximize=True)
            break
        except ValueError:  # no full matching among the candidates
            k *= 2
    rows_t, cols_t = (
        torch.as_tensor(rows, dtype=torch.int64),
        torch.as_tensor(cols, dtype=torch.int64),
    )
    exact = _paired_cosines(a, b, rows_t, cols_t)
    if absolute:
        exact = exact.abs()
    partner = torch.full((n_a,), -1, dtype=torch.int64)
    cosine = torch.zeros(n_a, dtype=torch.float64)
    partner[rows_t], cosine[rows_t] = cols_t, exact
    small, large = (best_a, best_b) if n_a <= n_b else (best_b, best_a)
    slack = (2 * a.shape[1] + 8) * UNIT_ROUNDOFF * n
    bound = min(float(small.sum()), float(large.topk(n).values.sum())) + slack
    return SparseMatching(partner, cosine, bound, k, best_a, best_b)
