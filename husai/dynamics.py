"""Training dynamics of SAE stability (SCIENCE.md section 7, question 5).

Conventions
-----------
* Checkpoints: :func:`log_checkpoints` gives the initialisation (step 0), then
  steps ``1, b, b^2, ...`` below the last step, then the last step itself
  (``b = 2`` by default: 0, 1, 2, 4, ..., 512, 1000 for 1000 steps). Step ``t``
  is the state after ``t`` optimiser steps, as ``husai.sae.train_saes`` reports it.
* Best match: for latent i of seed A and another seed B, the index of B's
  decoder atom with the largest ``|cos|`` to A's atom i at the same checkpoint
  (``husai.stability.best_matches``, ties to the lowest index).
* Settle step (:func:`settle_steps`): given a latent's sequence of best matches
  over the checkpoints ``t_0 < t_1 < ... < t_T``, the first checkpoint ``t_j``
  from which the match no longer changes, i.e. the smallest j with
  ``m_j = m_{j+1} = ... = m_T``. With several other seeds the match is the tuple
  of best matches in every other seed, so a latent settles when its best match
  in *every* other seed has stopped changing. A latent whose match never changes
  settles at ``t_0``; one whose match changes at the last checkpoint settles at
  ``t_T``. By construction every latent has settled by the last checkpoint, so the
  settle step says how early the final correspondence was in place, not whether
  it is a good one (read it beside the final sharing status).
* Distribution (:func:`settle_summary`): quantiles use numpy's ``inverted_cdf``
  method, so each is an actual checkpoint: the q-quantile is the first checkpoint
  by which at least a share q of the latents had settled.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

QUANTILES = (0.1, 0.25, 0.5, 0.75, 0.9)


def log_checkpoints(total: int, base: int = 2) -> list[int]:
    """``[0, 1, base, base**2, ...]`` (all below ``total``) followed by ``total``."""
    if total < 1:
        raise ValueError(f"total steps must be >= 1, got {total}")
    if base < 2:
        raise ValueError(f"checkpoint base must be >= 2, got {base}")
    steps = [0]
    step = 1
    while step < total:
        steps.append(step)
        step *= base
    steps.append(total)
    return steps


def settle_index(matches: torch.Tensor | np.ndarray) -> torch.Tensor:
    """Index (into the checkpoints) of each latent's settle point (module docstring).

    ``matches`` is ``[T, n]`` (one best match per checkpoint and latent) or
    ``[T, n, m]`` (best matches in m other seeds); returns ``[n]`` int64 in ``0..T-1``.
    """
    m = torch.as_tensor(np.asarray(matches)) if not isinstance(matches, torch.Tensor) else matches
    if m.ndim < 2 or m.shape[0] < 1:
        raise ValueError(f"expected matches [T, n] or [T, n, m] with T >= 1, got {tuple(m.shape)}")
    same = m == m[-1:]
    if same.ndim > 2:
        same = same.flatten(2).all(dim=2)
    # trailing run of checkpoints equal to the final match, counted from the end
    trailing = torch.cumprod(same.flip(0).to(torch.int64), dim=0).sum(dim=0)
    return m.shape[0] - trailing


def settle_steps(steps: Sequence[int], matches: torch.Tensor | np.ndarray) -> torch.Tensor:
    """Settle step of each latent (module docstring): ``steps[settle_index(matches)]``."""
    s = torch.as_tensor(list(steps), dtype=torch.int64)
    m = matches if isinstance(matches, torch.Tensor) else torch.as_tensor(np.asarray(matches))
    if m.ndim < 2 or s.ndim != 1 or s.shape[0] != m.shape[0]:
        raise ValueError(f"{s.shape[0]} steps for matches of shape {tuple(m.shape)}")
    if bool((s[1:] <= s[:-1]).any()):
        raise ValueError(f"checkpoint steps must increase, got {s.tolist()}")
    return s[settle_index(m)]


def settle_summary(settle: torch.Tensor | np.ndarray, steps: Sequence[int]) -> dict[str, Any]:
    """Distribution of settle steps: ``n_latents``, ``median``, ``quantiles``
    ({"0.1": step, ...}, inverted-CDF, module docstring), ``mean_log2_step``
    (mean of ``log2(1 + step)``) and ``fraction_settled_by_step`` ({"step": share of
    latents whose settle step is <= step}, for every checkpoint). Empty input gives
    ``n_latents`` 0 and None elsewhere."""
    v = np.asarray(settle, dtype=np.int64).flatten()
    out: dict[str, Any] = {"n_latents": len(v)}
    if len(v) == 0:
        out |= {"median": None, "quantiles": {str(q): None for q in QUANTILES},
                "mean_log2_step": None,
                "fraction_settled_by_step": {str(int(s)): None for s in steps}}
        return out
    qs = np.quantile(v, QUANTILES, method="inverted_cdf")
    out["median"] = int(np.quantile(v, 0.5, method="inverted_cdf"))
    out["quantiles"] = {str(q): int(x) for q, x in zip(QUANTILES, qs, strict=True)}
    out["mean_log2_step"] = float(np.log2(1.0 + v).mean())
    out["fraction_settled_by_step"] = {str(int(s)): float((v <= s).mean()) for s in steps}
    return out
