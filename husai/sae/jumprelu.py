"""JumpReLU SAE (Rajamanoharan et al. 2024, "Jumping ahead").

Follows SAELens 6.54 ``JumpReLUTrainingSAE`` with its defaults (DeepMind's "step"
sparsity loss, ``jumprelu_ste_to_input: false``): ``acts = pre * (pre > threshold)``
with a learned per-latent threshold (parametrised directly and projected to >= 0
before every step, as SAELens does); loss = summed squared error
+ ``l0_coefficient * sum_i H(pre_i - threshold_i)`` (batch mean, warmed up over
``l0_warm_up_steps``). The Heaviside steps get straight-through gradients for the
threshold only, with the rectangle kernel of width ``jumprelu_bandwidth``:
d/dθ of ``pre * H(pre - θ)`` is ``-(θ / ε) K((pre - θ) / ε)`` and of ``H`` it is
``-(1 / ε) K((pre - θ) / ε)``, with K the indicator of (-1/2, 1/2).
"""

from __future__ import annotations

import torch

from husai.sae import dense, specs
from husai.sae.base import Architecture


def _rectangle(z: torch.Tensor) -> torch.Tensor:
    return ((z > -0.5) & (z < 0.5)).to(z.dtype)


class _JumpReLU(torch.autograd.Function):
    """pre [S, B, N] * (pre > threshold [S, N]); STE gradient to the threshold."""

    @staticmethod
    def forward(ctx, pre, threshold, bandwidth):
        ctx.save_for_backward(pre, threshold)
        ctx.bandwidth = bandwidth
        return pre * (pre > threshold.unsqueeze(1))

    @staticmethod
    def backward(ctx, grad):
        pre, threshold = ctx.saved_tensors
        t = threshold.unsqueeze(1)
        kernel = _rectangle((pre - t) / ctx.bandwidth)
        d_threshold = -(t / ctx.bandwidth * kernel * grad).sum(1)
        return (pre > t) * grad, d_threshold, None


class _Step(torch.autograd.Function):
    """H(pre - threshold); STE gradient to the threshold only."""

    @staticmethod
    def forward(ctx, pre, threshold, bandwidth):
        ctx.save_for_backward(pre, threshold)
        ctx.bandwidth = bandwidth
        return (pre > threshold.unsqueeze(1)).to(pre.dtype)

    @staticmethod
    def backward(ctx, grad):
        pre, threshold = ctx.saved_tensors
        kernel = _rectangle((pre - threshold.unsqueeze(1)) / ctx.bandwidth)
        return None, -(kernel * grad).sum(1) / ctx.bandwidth, None


class JumpReLU(Architecture):
    spec = specs.JumpReLU

    def init_params(self, config, seeds):
        params, buffers = super().init_params(config, seeds)
        params["threshold"] = torch.full((len(seeds), config.d_sae), config.jumprelu_init_threshold)
        return params, buffers

    def step(self, params, buffers, xb, config, step, dead):
        params["threshold"].clamp_(min=0.0)
        coef = dense.warm_up(config.l0_coefficient, config.l0_warm_up_steps, step)
        bw = config.jumprelu_bandwidth

        def loss(p):
            pre = dense.linear(dense.encoder_input(p, xb), p["W_enc_rows"], p["b_enc"])
            acts = _JumpReLU.apply(pre, p["threshold"], bw)
            mse = dense.squared_error(dense.decode(p, acts), xb)
            l0 = coef * _Step.apply(pre, p["threshold"], bw).sum(-1).mean(1)
            return {"mse": mse, "l0": l0}, acts

        return dense.autograd_step(params, loss)

    def inference_threshold(self, params, buffers, config, n):
        return params["threshold"].detach() * n
