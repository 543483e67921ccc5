"""Exact sparse training step shared by the TopK family (topk, batchtopk, matryoshka).

A TopK-style SAE decodes only k latents per input, so its reconstruction, and the
gradients through the decoder and into the encoder weights, touch only those
B x k (latent, input) pairs. This module computes the loss and all gradients of
one step by hand over exactly those *entries*, with the one dense product left
being the encoder pre-activations that the selection needs. No approximation is
made: the result is SAELens's loss and its gradient (tests compare it with
autograd on the dense formulation).

SAELens semantics (``TopKTrainingSAE``, ``BatchTopKTrainingSAE``,
``MatryoshkaBatchTopKTrainingSAE``, v6.54):

- ``pre = (x - b_dec) @ W_enc + b_enc``; with ``rescale_acts_by_decoder_norm`` the
  selection key is ``h = pre * ||W_dec_i||`` and the decoder reads ``h_i / ||W_dec_i||``,
  so a selected latent contributes ``relu(pre_i) * W_dec_i``: the decoder norm only
  changes *which* latents are chosen, never the reconstruction, and no gradient flows
  through it (the selection is piecewise constant).
- loss = ``sum_d (x_hat - x)^2`` averaged over the batch, plus, for Matryoshka, the
  same for each nested prefix reconstruction, plus the AuxK loss: the ``d_in // 2``
  largest pre-activations (``h``, not rectified) among dead latents reconstruct the
  detached residual ``x - x_hat`` without bias, weighted by ``aux_loss_coefficient *
  min(n_dead / (d_in // 2), 1)``. A latent is dead when it has not fired for more
  than ``dead_feature_window`` steps.

Entries are handled in flat index space: latent ``s * d_sae + i`` of seed s and
batch row ``s * B + b``, so every kernel runs once over all seeds. The kernels are
``embedding_bag`` (a sum of weighted rows, per bag) in both directions: by input row
for the reconstruction, by latent (after one sort) for the weight gradients; and
``torch.sparse.sampled_addmm`` for dL/dpre at the entries. Their cost is B * k * d_in
per step instead of B * d_sae * d_in, leaving the encoder matmul and the top-k
selections as the bulk of a step.

The one large tensor of a step is the key h [S, B, d_sae]. It comes straight out of
the matmul (decoder norms folded into the encoder first), the selections read it
through chunk maxima and exact thresholds instead of ``torch.topk``, which on the CPU
costs several times more per element (:func:`topk_indices`), and the entries are
grouped by latent with a radix sort (``benchmarks/bench_sae_step.py`` times each
part). Entries come in ascending latent order within each row, whatever method
picked them: a seed's sums, and so its SAE, are the same whether it trains alone or
batched (tests check this bit for bit).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from husai.sae.config import SAEConfig


@dataclass
class Selection:
    """The entries chosen for one step, seed-major, the same count E per seed.

    ``lat`` [S, E] latent index, ``row`` [S, E] batch row, ``level`` [S, E] Matryoshka
    level of the latent (or None). Entries are ordered by row, then level, so every
    (row, level) bag is a contiguous run; ``per_row`` is k when every row has exactly
    k entries (TopK), else None (bags from counts).
    """

    lat: torch.Tensor
    row: torch.Tensor
    level: torch.Tensor | None = None
    per_row: int | None = None


@dataclass
class StepResult:
    """Per-seed numbers of one step, all [S]: the total loss, the squared error of the
    full reconstruction and the batch L0; ``fired`` [S, d_sae] marks latents that fired."""

    loss: torch.Tensor
    mse: torch.Tensor
    l0: torch.Tensor
    fired: torch.Tensor


def selection_keys(
    params: dict[str, torch.Tensor], xb: torch.Tensor, config: SAEConfig
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """(x - b_dec, the selection key h [S, B, d_sae], the decoder row norms or None).

    h is SAELens's ``hidden_pre``: ``pre * ||W_dec_i||`` when rescaling, else ``pre``.
    The norms are folded into the encoder's rows and bias first ([S, d_sae, d_in], small),
    so h comes straight out of the one batched matmul, without a further pass over
    [S, B, d_sae], the largest tensor of a step. The pre-activations are only needed at
    the chosen entries: ``pre = h / ||W_dec_i||``.
    """
    xc = xb - params["b_dec"].unsqueeze(1)
    w, b = params["W_enc_rows"], params["b_enc"]
    norm = None
    if config.rescale_acts_by_decoder_norm:
        norm = params["W_dec"].norm(dim=-1)
        w, b = w * norm.unsqueeze(-1), b * norm
    return xc, torch.baddbmm(b.unsqueeze(1), xc, w.transpose(1, 2)), norm


def _pre_at(h_sel: torch.Tensor, norm: torch.Tensor | None, lat: torch.Tensor) -> torch.Tensor:
    """Pre-activations at entries from their keys h_sel [S, E] and latents lat [S, E]."""
    return h_sel if norm is None else h_sel / norm.gather(1, lat)


def _bag_sums(
    table: torch.Tensor, rows: torch.Tensor, weights: torch.Tensor, offsets: torch.Tensor
) -> torch.Tensor:
    """out[j] = sum over entries e of bag j of weights[e] * table[rows[e]] (bags contiguous)."""
    return F.embedding_bag(rows, table, offsets, mode="sum", per_sample_weights=weights)


def _offsets(bag: torch.Tensor, n_bags: int) -> torch.Tensor:
    """Start of each bag in a list sorted by bag id (empty bags allowed)."""
    counts = torch.bincount(bag, minlength=n_bags)
    return torch.cumsum(counts, 0) - counts


def _stable_order(ids: torch.Tensor, n_ids: int) -> torch.Tensor:
    """The permutation that sorts ids (in [0, n_ids)) stably: by id, then by position.

    NumPy's stable sort of 16-bit integers is a radix sort, several times faster than
    a comparison sort at these sizes; a stable sort's result is unique, so how it is
    computed changes nothing downstream.
    """
    if n_ids <= 1 << 16:
        return torch.from_numpy(np.argsort(ids.numpy().astype(np.uint16), kind="stable"))
    return torch.sort(ids, stable=True).indices


def _dots(
    table: torch.Tensor, trow: torch.Tensor, weight: torch.Tensor, lat: torch.Tensor
) -> torch.Tensor:
    """dots[e] = table[trow[e]] . weight[lat[e]], for entries sorted by ``trow``.

    A sampled dense-dense product (``torch.sparse.sampled_addmm`` on the entries'
    CSR pattern) costs B * k * d_in multiply-adds instead of the B * d_sae * d_in
    of a dense product followed by a gather.
    """
    crow = torch.zeros(table.shape[0] + 1, dtype=torch.long)
    torch.cumsum(torch.bincount(trow, minlength=table.shape[0]), 0, out=crow[1:])
    with warnings.catch_warnings():  # "sparse CSR support is in beta"
        warnings.simplefilter("ignore", UserWarning)
        pattern = torch.sparse_csr_tensor(
            crow,
            lat,
            torch.zeros(lat.numel()),
            size=(table.shape[0], weight.shape[0]),
            check_invariants=False,
        )
    return torch.sparse.sampled_addmm(pattern, table, weight.t(), beta=0.0).values()


def topk_indices(h: torch.Tensor, k: int) -> torch.Tensor:
    """Indices of the k largest entries of each row of h [..., n], exact, ascending.

    ``torch.topk`` on the CPU costs 2-5 ns per element whatever k. Two exact
    shortcuts cut the elements it, or NumPy's vectorised ``np.partition``, has to see:

    1. Chunk bound. Split each row into n/c strided chunks ``{i, i + n/c, ...}`` and
       take their maxima (a cheap vectorised reduction). The k-th largest chunk
       maximum L is a lower bound on the row's k-th largest value (k chunks each hold
       an entry >= L), so every top-k entry lies in a chunk whose maximum is >= L:
       the k best chunks' c * k members contain the answer.
    2. Threshold. The k-th largest member T is then the row's k-th largest value, and
       the answer is every entry >= T. Only *values* are partitioned (``np.partition``,
       SIMD, fast on rows of <= 512), and the positions come from comparisons.

    Where a bound is tied (more than k chunks at L, or more than k members at T, as
    for rows of equal or non-finite values) or rows are long, the exact fallback is
    ``torch.topk`` on the chunk members, then sorted. Entries are returned in
    ascending index order, so the result depends only on the row, never on the
    method or on the other rows: ties aside, it is *the* top-k set.
    """
    n = h.shape[-1]
    lead = h.shape[:-1]
    rows = h.reshape(-1, n)
    # chunk size: a power of two near sqrt(n / k), which minimises n / c + c * k, with at
    # least k chunks
    c = 1 << max(0, math.ceil(math.log2(math.sqrt(n / k)))) if n > k else 1
    while c > 1 and -(-n // c) < k:
        c //= 2
    n_chunks = -(-n // c)
    idx = None
    if n_chunks <= 512 and c * k <= 512 and n > k:
        idx = _topk_by_threshold(rows, k, c, n_chunks)
    if idx is None:
        idx = _topk_by_chunks(rows, k, c, n_chunks).sort(dim=-1).values
    return idx.view(*lead, k)


def _chunk_grid(rows: torch.Tensor, c: int, n_chunks: int) -> torch.Tensor:
    """rows [R, n] as [R, c, n_chunks]: entry j * n_chunks + i is member j of chunk i."""
    if n_chunks * c != rows.shape[1]:
        rows = F.pad(rows, (0, n_chunks * c - rows.shape[1]), value=float("-inf"))
    return rows.view(rows.shape[0], c, n_chunks)


def _kth_largest(a: np.ndarray, k: int) -> np.ndarray:
    """The k-th largest value of each row of a [R, m] (NaN sorts above everything)."""
    m = a.shape[1]
    return np.partition(a, m - k, axis=1)[:, m - k]


def _at_least(a: np.ndarray, bound: np.ndarray, k: int) -> np.ndarray | None:
    """Column indices [R, k] (ascending) of the entries of a >= bound, where bound is each
    row's k-th largest value, or None unless every row has exactly k of them (a tie)."""
    if np.isnan(a.max()):  # NaN fails every comparison: a row could have fewer than k
        return None
    flat = np.flatnonzero(a >= bound[:, None])  # row-major: ascending within a row
    # without NaN every row has >= k entries >= its k-th largest, so k * R in all means
    # exactly k in each
    if flat.size != a.shape[0] * k:
        return None
    return flat.reshape(-1, k) - (np.arange(a.shape[0]) * a.shape[1])[:, None]


def _topk_by_threshold(rows: torch.Tensor, k: int, c: int, n_chunks: int) -> torch.Tensor | None:
    grid = _chunk_grid(rows, c, n_chunks)
    maxima = grid.amax(1).numpy()  # [R, n_chunks]
    best = _at_least(maxima, _kth_largest(maxima, k), k)  # the k best chunks, ascending
    if best is None:
        return None
    best = torch.from_numpy(best)
    members = grid.gather(2, best.unsqueeze(1).expand(-1, c, k)).view(-1, c * k).numpy()
    pos = _at_least(members, _kth_largest(members, k), k)  # ascending j * k + slot
    if pos is None:
        return None
    pos = torch.from_numpy(pos)
    # member (j, slot) is entry j * n_chunks + best[slot]: ascending in (j, slot)
    return best.gather(1, pos % k) + torch.div(pos, k, rounding_mode="floor") * n_chunks


def _topk_by_chunks(rows: torch.Tensor, k: int, c: int, n_chunks: int) -> torch.Tensor:
    """Unordered exact top-k indices with ``torch.topk``: over the k best chunks' members
    when that is smaller than the row, else over the row."""
    if n_chunks + c * k >= rows.shape[1] or c == 1:
        return torch.topk(rows, k, dim=-1, sorted=False).indices
    grid = _chunk_grid(rows, c, n_chunks)
    best = torch.topk(grid.amax(1), k, dim=-1, sorted=False).indices  # [R, k]
    members = grid.gather(2, best.unsqueeze(1).expand(-1, c, k)).reshape(-1, c * k)
    pick = torch.topk(members, k, dim=-1, sorted=False).indices
    return best.gather(1, pick % k) + torch.div(pick, k, rounding_mode="floor") * n_chunks


def sparse_step(
    params: dict[str, torch.Tensor],
    xb: torch.Tensor,
    config: SAEConfig,
    select,
    dead: torch.Tensor,
    levels: tuple[int, ...] = (),
    want_acts: bool = False,
) -> tuple[StepResult, dict[str, torch.Tensor], torch.Tensor | None]:
    """Loss and exact gradients of one TopK-family step.

    ``select(h) -> Selection`` picks the entries from the selection key h [S, B, d_sae];
    ``dead`` [S, d_sae] marks dead latents for AuxK; ``levels`` are Matryoshka prefix
    widths ending in d_sae (empty: one level). Returns the per-seed numbers, the
    gradients of the summed loss, and (with ``want_acts``) the training activations
    ``relu(h)`` of the selected entries [S, E] (for the BatchTopK threshold).
    """
    S, B, D = xb.shape
    N = config.d_sae
    M = max(len(levels), 1)
    w_dec = params["W_dec"]
    w_dec_flat = w_dec.reshape(S * N, D)
    xc, h, norm = selection_keys(params, xb, config)
    sel = select(h)
    E = sel.lat.shape[1]
    flat = sel.row * N + sel.lat  # [S, E] index into a seed's [B, d_sae]
    h_sel = h.reshape(S, B * N).gather(1, flat)
    pre_sel = _pre_at(h_sel, norm, sel.lat)
    coef = pre_sel.clamp_min(0.0)  # decoder coefficients relu(pre); h > 0 iff pre > 0
    h_act = h_sel.clamp_min(0.0) if want_acts else None
    lat = (sel.lat + torch.arange(S).unsqueeze(1) * N).reshape(-1)  # flat latent ids
    row = (sel.row + torch.arange(S).unsqueeze(1) * B).reshape(-1)  # flat batch rows

    # ---- reconstruction(s), by (row, level) bags
    bag = row * M + sel.level.reshape(-1) if M > 1 else row
    if sel.per_row is not None and M == 1:
        parts = F.embedding_bag(
            lat.view(S * B, -1), w_dec_flat, mode="sum", per_sample_weights=coef.view(S * B, -1)
        )
    else:
        parts = _bag_sums(w_dec_flat, lat, coef.reshape(-1), _offsets(bag, S * B * M))
    parts = parts.view(S, B, M, D)
    recon = torch.cumsum(parts, dim=2) if M > 1 else parts  # nested prefix reconstructions
    err = recon + (params["b_dec"].unsqueeze(1) - xb).unsqueeze(2)  # [S, B, M, D]
    sq = err.pow(2).sum(-1).mean(1)  # [S, M]
    mse = sq[:, -1]
    loss = sq.sum(1)
    out_grad = err * (2.0 / B)
    if M > 1:  # a level-g latent feeds every reconstruction of level >= g
        out_grad = out_grad.flip(2).cumsum(2).flip(2)
    active = (pre_sel > 0).reshape(-1)
    tables = [out_grad.reshape(S * B * M, D)]
    trow = bag
    coefs = coef.reshape(-1)
    gate = active

    # ---- AuxK: dead latents reconstruct the detached residual
    n_dead = dead.sum(1)
    if config.aux_loss_coefficient > 0 and bool(n_dead.any()):
        aux, a = _auxk(h, norm, err[:, :, -1].detach(), w_dec, dead, n_dead, config)
        loss = loss + aux
        tables.append(a["grad"].reshape(S * B, D))
        trow = torch.cat([trow, a["row"] + S * B * M])
        lat = torch.cat([lat, a["lat"]])
        row = torch.cat([row, a["row"]])
        coefs = torch.cat([coefs, a["coef"]])
        gate = torch.cat([gate, a["valid"]])

    # ---- dL/dpre at every entry, then weight gradients as sums over each latent's entries
    table = torch.cat(tables) if len(tables) > 1 else tables[0]
    d_pre = _dots(table, trow, w_dec_flat, lat) * gate
    order = _stable_order(lat, S * N)  # entries by latent (then by position)
    counts = torch.bincount(lat, minlength=S * N)
    offsets = torch.cumsum(counts, 0) - counts
    d_pre_s = d_pre.index_select(0, order)
    d_benc = torch.segment_reduce(d_pre_s, "sum", lengths=counts)
    # b_dec: output bias of every reconstruction, and -b_dec enters the encoder input
    d_bdec = out_grad[:, :, 0].sum(1) - _bag_sums(
        params["W_enc_rows"].reshape(S * N, D), torch.arange(S * N), d_benc, torch.arange(S) * N
    )
    grads = {
        "W_enc_rows": _bag_sums(
            xc.reshape(S * B, D), row.index_select(0, order), d_pre_s, offsets
        ).view(S, N, D),
        "b_enc": d_benc.view(S, N),
        "W_dec": _bag_sums(
            table, trow.index_select(0, order), coefs.index_select(0, order), offsets
        ).view(S, N, D),
        "b_dec": d_bdec,
    }

    fired = torch.zeros(S * N).index_add_(0, lat[: S * E], active.to(torch.float32)) > 0
    result = StepResult(
        loss=loss,
        mse=mse,
        l0=active.view(S, E).sum(1).to(torch.float32) / B,
        fired=fired.view(S, N),
    )
    return result, grads, h_act


def _auxk(
    h: torch.Tensor,
    norm: torch.Tensor | None,
    err: torch.Tensor,
    w_dec: torch.Tensor,
    dead: torch.Tensor,
    n_dead: torch.Tensor,
    config: SAEConfig,
):
    """AuxK loss [S] and its entries (flat latent, flat row, coefficient, validity, and the
    output gradient table [S, B, d_in]).

    Works on the dead columns: gathered into [S, B, n] (n >= the most dead latents of
    any seed; the columns after a seed's dead latents are set to -inf). Each row's
    picks come in ascending latent order, the padding (only when a seed has fewer than
    kk dead latents) after its valid picks, so padding appends exact zeros to a seed's
    sums and a seed gets the same picks, in the same order, as when it trains alone.
    """
    S, B, D = err.shape
    N = config.d_sae
    k_aux = D // 2
    most = int(n_dead.max())
    kk = min(k_aux, most)
    # dead latent ids per seed, ascending, then live ones as padding, up to a multiple
    # of 16 columns so that topk_indices' chunks need no further padding
    n = min(N, -(-most // 16) * 16)
    cols = torch.sort(dead.to(torch.int8), dim=1, descending=True, stable=True).indices[:, :n]
    key = h.gather(2, cols.unsqueeze(1).expand(S, B, n))
    for s, count in enumerate(n_dead.tolist()):
        key[s, :, count:] = float("-inf")
    pos = topk_indices(key, kk)  # ascending, so padding (the last columns) comes last
    a_lat_local = cols.gather(1, pos.reshape(S, B * kk)).view(S, B, kk)
    a_coef = _pre_at(
        h.gather(2, a_lat_local).view(S, B * kk), norm, a_lat_local.view(S, B * kk)
    ).view(S, B, kk)
    if bool((n_dead >= kk).all()):
        valid = torch.ones(S * B * kk, dtype=torch.bool)
    else:
        valid = torch.isfinite(key.gather(2, pos))
        a_coef = torch.where(valid, a_coef, 0.0)
    a_lat = (a_lat_local + (torch.arange(S) * N).view(S, 1, 1)).reshape(-1)
    a_rec = F.embedding_bag(
        a_lat.view(S * B, kk),
        w_dec.reshape(S * N, D),
        mode="sum",
        per_sample_weights=a_coef.view(S * B, kk),
    ).view(S, B, D)
    a_err = a_rec + err  # a_rec - (x - x_hat)
    scale = (n_dead.to(torch.float32) / k_aux).clamp(max=1.0) * config.aux_loss_coefficient
    aux = scale * a_err.pow(2).sum(-1).mean(1)
    a_grad = a_err * (scale.view(S, 1, 1) * (2.0 / B))
    a_row = torch.arange(S * B).repeat_interleave(kk)
    return aux, {
        "grad": a_grad,
        "lat": a_lat,
        "row": a_row,
        "coef": a_coef.reshape(-1),
        "valid": valid.reshape(-1),
    }
