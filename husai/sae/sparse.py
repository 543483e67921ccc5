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
selection as the bulk of a step.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

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


def pre_activations(params: dict[str, torch.Tensor], xb: torch.Tensor) -> tuple[torch.Tensor,
                                                                               torch.Tensor]:
    """(x - b_dec, (x - b_dec) @ W_enc + b_enc) for a batch xb [S, B, d_in]."""
    xc = xb - params["b_dec"].unsqueeze(1)
    pre = torch.baddbmm(params["b_enc"].unsqueeze(1), xc, params["W_enc_rows"].transpose(1, 2))
    return xc, pre


def selection_key(params: dict[str, torch.Tensor], pre: torch.Tensor,
                  config: SAEConfig) -> torch.Tensor:
    """SAELens's ``hidden_pre``: pre-activations times decoder row norms when rescaling."""
    if not config.rescale_acts_by_decoder_norm:
        return pre
    return pre * params["W_dec"].norm(dim=-1).unsqueeze(1)


def _bag_sums(table: torch.Tensor, rows: torch.Tensor, weights: torch.Tensor,
              offsets: torch.Tensor) -> torch.Tensor:
    """out[j] = sum over entries e of bag j of weights[e] * table[rows[e]] (bags contiguous)."""
    return F.embedding_bag(rows, table, offsets, mode="sum", per_sample_weights=weights)


def _offsets(bag: torch.Tensor, n_bags: int) -> torch.Tensor:
    """Start of each bag in a list sorted by bag id (empty bags allowed)."""
    counts = torch.bincount(bag, minlength=n_bags)
    return torch.cumsum(counts, 0) - counts


def _dots(table: torch.Tensor, trow: torch.Tensor, weight: torch.Tensor,
          lat: torch.Tensor) -> torch.Tensor:
    """dots[e] = table[trow[e]] . weight[lat[e]], for entries sorted by ``trow``.

    A sampled dense-dense product (``torch.sparse.sampled_addmm`` on the entries'
    CSR pattern) costs B * k * d_in multiply-adds instead of the B * d_sae * d_in
    of a dense product followed by a gather.
    """
    crow = torch.zeros(table.shape[0] + 1, dtype=torch.long)
    torch.cumsum(torch.bincount(trow, minlength=table.shape[0]), 0, out=crow[1:])
    with warnings.catch_warnings():  # "sparse CSR support is in beta"
        warnings.simplefilter("ignore", UserWarning)
        pattern = torch.sparse_csr_tensor(crow, lat, torch.zeros(lat.numel()),
                                          size=(table.shape[0], weight.shape[0]),
                                          check_invariants=False)
    return torch.sparse.sampled_addmm(pattern, table, weight.t(), beta=0.0).values()


def topk_indices(h: torch.Tensor, k: int, chunk: int = 8) -> torch.Tensor:
    """Indices of the k largest entries of each row of h [..., n] (exact, unordered).

    ``torch.topk`` costs about the same per element whatever k, so first pick the k
    strided chunks ``{i, i + n/c, i + 2n/c, ...}`` (c = ``chunk``) with the largest
    maxima, then the k largest of their c * k members: two small topks instead of
    one over the whole row. Exact: the k chunk maxima are k candidates at least as
    large as every element left out. Ties may be broken differently from torch.topk.
    """
    n = h.shape[-1]
    if n < 4 * chunk * k:
        return torch.topk(h, k, dim=-1, sorted=False).indices
    lead = h.shape[:-1]
    rows = h.reshape(-1, n)
    n_chunks = -(-n // chunk)
    if n_chunks * chunk != n:
        rows = F.pad(rows, (0, n_chunks * chunk - n), value=float("-inf"))
    grid = rows.view(rows.shape[0], chunk, n_chunks)  # element j * n_chunks + i is in chunk i
    best = torch.topk(grid.amax(1), k, dim=-1, sorted=False).indices  # [R, k]
    members = grid.gather(2, best.unsqueeze(1).expand(-1, chunk, k)).reshape(-1, chunk * k)
    pick = torch.topk(members, k, dim=-1, sorted=False).indices
    idx = best.gather(1, pick % k) + torch.div(pick, k, rounding_mode="floor") * n_chunks
    return idx.view(*lead, k)


def sparse_step(params: dict[str, torch.Tensor], xb: torch.Tensor, config: SAEConfig, select,
                dead: torch.Tensor, levels: tuple[int, ...] = (), want_acts: bool = False
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
    xc, pre = pre_activations(params, xb)
    h = selection_key(params, pre, config)
    sel = select(h)
    E = sel.lat.shape[1]
    flat = sel.row * N + sel.lat  # [S, E] index into a seed's [B, d_sae]
    pre_sel = pre.reshape(S, B * N).gather(1, flat)
    coef = pre_sel.clamp_min(0.0)  # decoder coefficients relu(pre); h > 0 iff pre > 0
    h_act = h.reshape(S, B * N).gather(1, flat).clamp_min(0.0) if want_acts else None
    lat = (sel.lat + torch.arange(S).unsqueeze(1) * N).reshape(-1)  # flat latent ids
    row = (sel.row + torch.arange(S).unsqueeze(1) * B).reshape(-1)  # flat batch rows

    # ---- reconstruction(s), by (row, level) bags
    bag = row * M + sel.level.reshape(-1) if M > 1 else row
    if sel.per_row is not None and M == 1:
        parts = F.embedding_bag(lat.view(S * B, -1), w_dec_flat, mode="sum",
                                per_sample_weights=coef.view(S * B, -1))
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
        aux, a = _auxk(h, pre, err[:, :, -1].detach(), w_dec, dead, n_dead, config)
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
    order = torch.argsort(lat * lat.numel() + torch.arange(lat.numel()))  # unique keys
    lat_s = lat.index_select(0, order)
    offsets = _offsets(lat_s, S * N)
    d_pre_s = d_pre.index_select(0, order)
    d_benc = torch.zeros(S * N).index_add_(0, lat_s, d_pre_s)
    # b_dec: output bias of every reconstruction, and -b_dec enters the encoder input
    d_bdec = out_grad[:, :, 0].sum(1) - _bag_sums(
        params["W_enc_rows"].reshape(S * N, D), torch.arange(S * N), d_benc,
        torch.arange(S) * N)
    grads = {
        "W_enc_rows": _bag_sums(xc.reshape(S * B, D), row.index_select(0, order), d_pre_s,
                                offsets).view(S, N, D),
        "b_enc": d_benc.view(S, N),
        "W_dec": _bag_sums(table, trow.index_select(0, order), coefs.index_select(0, order),
                           offsets).view(S, N, D),
        "b_dec": d_bdec,
    }

    fired = torch.zeros(S * N).index_add_(0, lat[: S * E], active.to(torch.float32)) > 0
    result = StepResult(loss=loss, mse=mse, l0=active.view(S, E).sum(1).to(torch.float32) / B,
                        fired=fired.view(S, N))
    return result, grads, h_act


def _auxk(h: torch.Tensor, pre: torch.Tensor, err: torch.Tensor, w_dec: torch.Tensor,
          dead: torch.Tensor, n_dead: torch.Tensor, config: SAEConfig):
    """AuxK loss [S] and its entries (flat latent, flat row, coefficient, validity, and the
    output gradient table [S, B, d_in]). Works on the dead columns only: they are
    gathered into [S, B, n] (n = the most dead latents of any seed, padded)."""
    S, B, D = err.shape
    N = config.d_sae
    k_aux = D // 2
    n = int(n_dead.max())
    kk = min(k_aux, n)
    # dead latent ids per seed, padded with latent 0 (masked out)
    cols = torch.sort(dead.to(torch.int8), dim=1, descending=True, stable=True).indices[:, :n]
    valid_col = torch.arange(n).unsqueeze(0) < n_dead.unsqueeze(1)  # [S, n]
    key = h.gather(2, cols.unsqueeze(1).expand(S, B, n))
    key = key.masked_fill(~valid_col.unsqueeze(1), float("-inf"))
    # kk and n are maxima over the seeds; a seed with fewer dead latents gets -inf
    # padding. Sorting the picks by column makes the order of its valid entries, and
    # so every sum over them, the same as when the seed trains alone.
    pos = torch.topk(key, kk, dim=-1, sorted=False).indices.sort(dim=-1).values
    vals = key.gather(2, pos)
    valid = torch.isfinite(vals)
    a_lat_local = cols.gather(1, pos.reshape(S, B * kk)).view(S, B, kk)
    a_coef = torch.where(valid, pre.gather(2, a_lat_local), 0.0)  # h / ||W_dec|| = pre
    a_lat = (a_lat_local + (torch.arange(S) * N).view(S, 1, 1)).reshape(-1)
    a_rec = F.embedding_bag(a_lat.view(S * B, kk), w_dec.reshape(S * N, D), mode="sum",
                            per_sample_weights=a_coef.view(S * B, kk)).view(S, B, D)
    a_err = a_rec + err  # a_rec - (x - x_hat)
    scale = (n_dead.to(torch.float32) / k_aux).clamp(max=1.0) * config.aux_loss_coefficient
    aux = scale * a_err.pow(2).sum(-1).mean(1)
    a_grad = a_err * (scale.view(S, 1, 1) * (2.0 / B))
    a_row = torch.arange(S * B).repeat_interleave(kk)
    return aux, {"grad": a_grad, "lat": a_lat, "row": a_row, "coef": a_coef.reshape(-1),
                 "valid": valid.reshape(-1)}
