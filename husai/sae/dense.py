"""Autograd training step shared by the dense architectures (standard, jumprelu, gated).

Their activations are not sparse by construction (any number of latents may fire),
so the step is the plain dense computation differentiated by autograd: a loss per
seed [S], summed, so that each seed's parameters get exactly its own gradient.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from husai.sae.sparse import StepResult

LossFn = Callable[[dict[str, torch.Tensor]], tuple[dict[str, torch.Tensor], torch.Tensor]]


def warm_up(value: float, warm_up_steps: int, step: int) -> float:
    """SAELens's ``CoefficientScheduler``: 0 at step 0, linear to ``value`` at ``warm_up_steps``."""
    if warm_up_steps <= 0:
        return value
    return value * min(step / warm_up_steps, 1.0)


def encoder_input(p: dict[str, torch.Tensor], xb: torch.Tensor) -> torch.Tensor:
    return xb - p["b_dec"].unsqueeze(1)


def linear(xc: torch.Tensor, w_rows: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """xc [S, B, d_in] @ w_rows^T [S, d_in, d_sae] + bias [S, d_sae]."""
    return torch.baddbmm(bias.unsqueeze(1), xc, w_rows.transpose(1, 2))


def decode(p: dict[str, torch.Tensor], acts: torch.Tensor) -> torch.Tensor:
    return torch.baddbmm(p["b_dec"].unsqueeze(1), acts, p["W_dec"])


def squared_error(x_hat: torch.Tensor, xb: torch.Tensor) -> torch.Tensor:
    """Per seed: sum over dimensions, mean over the batch (SAELens's mse_loss)."""
    return (x_hat - xb).pow(2).sum(-1).mean(1)


def autograd_step(
    params: dict[str, torch.Tensor], loss_fn: LossFn
) -> tuple[StepResult, dict[str, torch.Tensor]]:
    """Run ``loss_fn`` on leaf copies of ``params``; return the numbers and d(sum of losses)/d params.

    ``loss_fn`` returns ({"mse": [S], other loss terms [S]...}, acts [S, B, d_sae]).
    """
    leaves = {k: v.detach().requires_grad_(True) for k, v in params.items()}
    with torch.enable_grad():
        terms, acts = loss_fn(leaves)
        loss = torch.stack(list(terms.values())).sum(0)
        values = torch.autograd.grad(loss.sum(), list(leaves.values()))
    live = acts.detach() > 0
    result = StepResult(
        loss=loss.detach(),
        mse=terms["mse"].detach(),
        l0=live.sum(-1).to(torch.float32).mean(1),
        fired=live.any(1),
    )
    return result, dict(zip(leaves, values, strict=True))
