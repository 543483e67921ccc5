"""Standard ReLU SAE (Bricken et al. 2023; Anthropic's April 2024 update).

Follows SAELens 6.54 ``StandardTrainingSAE``: ``acts = relu((x - b_dec) @ W_enc + b_enc)``,
loss = summed squared error + ``l1_coefficient * sum_i acts_i * ||W_dec_i||``
(batch mean), the coefficient warmed up linearly over ``l1_warm_up_steps``.
Weighting by decoder norms removes the incentive to shrink activations by growing
the decoder, so the decoder is not renormalised (SAELens does not either).
"""

from __future__ import annotations

from husai.sae import dense, specs
from husai.sae.base import Architecture


class Standard(Architecture):
    spec = specs.Standard

    def step(self, params, buffers, xb, config, step, dead):
        coef = dense.warm_up(config.l1_coefficient, config.l1_warm_up_steps, step)

        def loss(p):
            acts = dense.linear(dense.encoder_input(p, xb), p["W_enc_rows"], p["b_enc"]).relu()
            mse = dense.squared_error(dense.decode(p, acts), xb)
            l1 = coef * (acts * p["W_dec"].norm(dim=-1).unsqueeze(1)).sum(-1).mean(1)
            return {"mse": mse, "l1": l1}, acts

        return dense.autograd_step(params, loss)
