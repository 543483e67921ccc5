"""TopK SAE (Gao et al. 2024, "Scaling and evaluating sparse autoencoders").

Follows SAELens 6.54 ``TopKTrainingSAE``: keep the k largest pre-activations of each
input (selected on ``pre * ||W_dec_i||`` when ``rescale_acts_by_decoder_norm``, the
SAELens default), rectify them, decode with the other latents at zero. Trained on
the summed squared error plus the AuxK loss on dead latents (Gao et al. appendix
B.1, without their variance normalisation, as in SAELens; ``k_aux = d_in // 2``).
No decoder renormalisation is needed: with the rescaling the decoder norm cannot
change the reconstruction (see :mod:`husai.sae.sparse`). The exact sparse step is
in :mod:`husai.sae.sparse`; inference is :meth:`husai.sae.base.BatchedSAE.encode`.
"""

from __future__ import annotations

import torch

from husai.sae import specs
from husai.sae.base import Architecture
from husai.sae.sparse import Selection, sparse_step, topk_indices


def select_topk(h: torch.Tensor, k: int) -> Selection:
    """The k largest entries of every row of h [S, B, d_sae], row by row."""
    s, b, _ = h.shape
    idx = topk_indices(h, k)
    rows = torch.arange(b).repeat_interleave(k).expand(s, b * k)
    return Selection(lat=idx.reshape(s, b * k), row=rows, per_row=k)


class TopK(Architecture):
    spec = specs.TopK

    def step(self, params, buffers, xb, config, step, dead):
        result, grads, _ = sparse_step(params, xb, config, lambda h: select_topk(h, config.k), dead)
        return result, grads
