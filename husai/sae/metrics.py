"""Reconstruction and sparsity metrics of each SAE over the whole activation dataset.

Names and definitions follow SAEBench's core evaluation, as implemented by SAELens
6.54 (``evals.get_sparsity_and_variance_metrics``), with SCIENCE.md section 6:

- ``explained_variance`` = 1 - sum_n ||x_n - x̂_n||^2 / sum_n ||x_n - mean(x)||^2
- ``mse`` = mean_n ||x_n - x̂_n||^2 (summed over dimensions, averaged over inputs)
- ``cossim`` = mean_n cos(x_n, x̂_n)
- ``l2_ratio`` = mean_n ||x̂_n|| / ||x_n|| (an input with ||x_n|| < 1e-4 counts as norm 1)
- ``l0`` = mean_n #{i : f_i(x_n) != 0}
- ``frac_alive`` = share of latents with f_i(x_n) != 0 for at least one input n

Sums are taken in float64 over chunks of rows.
"""

from __future__ import annotations

import torch

from husai.errors import HusaiError
from husai.sae.base import BatchedSAE

METRICS = ("explained_variance", "l0", "frac_alive", "mse", "cossim", "l2_ratio")


@torch.no_grad()
def evaluate(sae: BatchedSAE, x: torch.Tensor, chunk: int = 2048) -> list[dict[str, float]]:
    """One dict of :data:`METRICS` per seed, over every row of x [N, d_in]."""
    if x.ndim != 2:
        raise HusaiError(f"evaluate takes the dataset as [N, d_in], got {tuple(x.shape)}")
    sae.check_input(x)
    n = x.shape[0]
    x64 = x.to(torch.float64)
    total_variance = float((x64 - x64.mean(0)).pow(2).sum())
    s = sae.n_seeds
    resid = torch.zeros(s, dtype=torch.float64)
    cos = torch.zeros(s, dtype=torch.float64)
    ratio = torch.zeros(s, dtype=torch.float64)
    active = torch.zeros(s, dtype=torch.float64)
    alive = torch.zeros(s, sae.config.d_sae, dtype=torch.bool)
    for start in range(0, n, chunk):
        xb = x[start : start + chunk]
        acts = sae.encode(xb)
        x_hat = sae.decode(acts).to(torch.float64)
        xb64 = x64[start : start + chunk]
        nonzero = acts != 0
        active += nonzero.sum((1, 2)).to(torch.float64)
        alive |= nonzero.any(1)
        resid += (x_hat - xb64).pow(2).sum((1, 2))
        norm_in = xb64.norm(dim=-1)
        norm_out = x_hat.norm(dim=-1)
        cos += ((x_hat * xb64).sum(-1) / (norm_in * norm_out).clamp_min(1e-30)).sum(1)
        ratio += (norm_out / torch.where(norm_in.abs() < 1e-4, 1.0, norm_in)).sum(1)
    out = []
    for i in range(s):
        ev = 1.0 - float(resid[i]) / total_variance if total_variance > 0 else float(resid[i] == 0)
        out.append(
            {
                "explained_variance": ev,
                "l0": float(active[i]) / n,
                "frac_alive": float(alive[i].to(torch.float64).mean()),
                "mse": float(resid[i]) / n,
                "cossim": float(cos[i]) / n,
                "l2_ratio": float(ratio[i]) / n,
            }
        )
    return out
