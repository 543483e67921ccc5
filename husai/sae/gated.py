"""Gated SAE (Rajamanoharan et al. 2024, "Improving dictionary learning with gated
sparse autoencoders").

Follows SAELens 6.54 ``GatedTrainingSAE``: a gate ``pi = x_c @ W_enc + b_gate`` decides
which latents fire, a magnitude path sharing the encoder up to a per-latent scale,
``relu(x_c @ (W_enc * exp(r_mag)) + b_mag)``, sets their values (x_c = x - b_dec).
Loss = summed squared error + ``l1_coefficient * sum_i relu(pi_i) * ||W_dec_i||`` +
the squared error of the reconstruction ``relu(pi) @ W_dec + b_dec`` through the gate
alone (the auxiliary loss that trains the gate; the Heaviside itself passes no
gradient). There is no ``b_enc``.
"""

from __future__ import annotations

import torch

from husai.sae import dense, specs
from husai.sae.base import Architecture


class Gated(Architecture):
    spec = specs.Gated

    def init_params(self, config, seeds):
        params, buffers = super().init_params(config, seeds)
        del params["b_enc"]
        for name in ("b_gate", "b_mag", "r_mag"):
            params[name] = torch.zeros(len(seeds), config.d_sae)
        return params, buffers

    def step(self, params, buffers, xb, config, step, dead):
        coef = dense.warm_up(config.l1_coefficient, config.l1_warm_up_steps, step)

        def loss(p):
            xc = dense.encoder_input(p, xb)
            pi_gate = dense.linear(xc, p["W_enc_rows"], p["b_gate"])
            w_mag = p["W_enc_rows"] * p["r_mag"].exp().unsqueeze(-1)
            mags = dense.linear(xc, w_mag, p["b_mag"]).relu()
            acts = (pi_gate > 0).to(mags.dtype) * mags
            mse = dense.squared_error(dense.decode(p, acts), xb)
            gate_acts = pi_gate.relu()
            l1 = coef * (gate_acts * p["W_dec"].norm(dim=-1).unsqueeze(1)).sum(-1).mean(1)
            aux = dense.squared_error(dense.decode(p, gate_acts), xb)
            return {"mse": mse, "l1": l1, "aux": aux}, acts

        return dense.autograd_step(params, loss)
