"""BatchTopK SAE (Bussmann et al. 2024, "BatchTopK sparse autoencoders").

Follows SAELens 6.54 ``BatchTopKTrainingSAE``: in training, rectify the selection
key (``pre * ||W_dec_i||`` with ``rescale_acts_by_decoder_norm``) and keep the
``k * B`` largest values of the whole batch, so inputs share a budget of k latents
on average; loss and AuxK as for TopK. After every step the inference threshold
moves towards the smallest positive kept activation of the batch by an exponential
moving average with rate ``topk_threshold_lr`` (kept in float64, as SAELens does).
At inference the SAE is a JumpReLU SAE with that threshold for every latent, which
is also how SAELens saves it.
"""

from __future__ import annotations

import torch

from husai.sae import specs
from husai.sae.base import Architecture
from husai.sae.sparse import Selection, sparse_step, topk_indices


def select_batchtopk(h: torch.Tensor, k: int) -> Selection:
    """The k * B largest rectified entries of each seed's batch h [S, B, d_sae].

    Returned in row-major order (row, then latent), so each row's entries are contiguous.
    """
    s, b, n = h.shape
    flat = topk_indices(h.relu().reshape(s, b * n), k * b)  # ascending
    return Selection(lat=flat % n, row=flat // n)


def update_threshold(threshold: torch.Tensor, acts: torch.Tensor, lr: float) -> None:
    """EMA of each seed's smallest positive kept activation; seeds with none keep theirs."""
    positive = acts > 0
    smallest = torch.where(positive, acts, float("inf")).min(dim=1).values.to(torch.float64)
    moved = (1 - lr) * threshold + lr * smallest
    threshold.copy_(torch.where(positive.any(dim=1), moved, threshold))


class BatchTopK(Architecture):
    spec = specs.BatchTopK

    def init_params(self, config, seeds):
        params, buffers = super().init_params(config, seeds)
        buffers["topk_threshold"] = torch.zeros(len(seeds), dtype=torch.float64)
        return params, buffers

    def select(self, h: torch.Tensor, config) -> object:
        return select_batchtopk(h, config.k)

    def step(self, params, buffers, xb, config, step, dead):
        result, grads, acts = sparse_step(
            params,
            xb,
            config,
            lambda h: self.select(h, config),
            dead,
            self.levels(config),
            want_acts=True,
        )
        update_threshold(buffers["topk_threshold"], acts, config.topk_threshold_lr)
        return result, grads

    def levels(self, config) -> tuple[int, ...]:
        return ()

    def inference_threshold(self, params, buffers, config, n):
        # The threshold is in units of the selection key, which the decoder-norm fold
        # turns into the folded pre-activation: it needs no per-latent factor.
        s, d_sae = params["W_dec"].shape[:2]
        return buffers["topk_threshold"].to(torch.float32).unsqueeze(1).expand(s, d_sae).clone()
