"""Matryoshka BatchTopK SAE (Bussmann et al. 2025, "Learning multi-level features
with Matryoshka sparse autoencoders"; Nabeshima 2024).

Follows SAELens 6.54 ``MatryoshkaBatchTopKTrainingSAE``: a BatchTopK SAE whose loss
adds, for every prefix width in ``matryoshka_widths`` (d_sae appended when
missing), the squared error of the reconstruction from the latents below that
width alone (plus b_dec). The AuxK loss is the plain TopK one
(SAELens's default ``use_matryoshka_aux_loss: false``). Saved as a JumpReLU SAE.
"""

from __future__ import annotations

import torch

from husai.sae import specs
from husai.sae.batchtopk import BatchTopK, select_batchtopk
from husai.sae.sparse import Selection


class MatryoshkaBatchTopK(BatchTopK):
    spec = specs.MatryoshkaBatchTopK

    def levels(self, config) -> tuple[int, ...]:
        return config.levels

    def select(self, h: torch.Tensor, config) -> Selection:
        sel = select_batchtopk(h, config.k)
        widths = torch.tensor(config.levels)
        # level g holds latents widths[g-1] <= i < widths[g]; entries are row-major with
        # latents ascending, so each (row, level) bag is contiguous
        sel.level = torch.bucketize(sel.lat, widths, right=True)
        return sel
