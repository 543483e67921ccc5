"""Which per-latent properties predict that a latent is shared across seeds
(SCIENCE.md section 7, question 6).

Conventions
-----------
* Sharing: for n SAEs of one configuration (different seeds), every unordered
  pair (A, B) is matched once by the rule of Paulo & Belrose (2025)
  (:func:`husai.stability.pair_metrics`: Hungarian matchings of the decoder atoms
  and of the encoder atoms, ``|cos|`` by default, both matched cosines
  ``>= threshold`` and the same partner). Latent i of A is shared with B when the
  rule holds; then its partner j in B is shared with A (the same matching, read
  from B's side). :func:`shared_counts` counts, for every latent, the other seeds it
  is shared with (0..n-1).
* Label: ``majority`` = shared with more than half of the other seeds
  (``count >= floor((n-1)/2) + 1``, 3 of 4 for five seeds), ``any`` = at least one,
  ``all`` = every other seed (:func:`min_shared`).
* ROC AUC (:func:`roc_auc`): the probability that a random shared latent scores
  higher than a random unshared one, ties counting one half (the Mann-Whitney U
  statistic over ``n_pos * n_neg``, from mid-ranks). 0.5 = no information; below
  0.5 the property predicts *not* being shared. None when either class is empty.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import torch
from scipy.stats import rankdata

from husai.stability import DEFAULT_THRESHOLD, Atoms, pair_metrics

SharedWith = Literal["majority", "any", "all"]


def roc_auc(scores: np.ndarray | torch.Tensor | Sequence[float],
            labels: np.ndarray | torch.Tensor | Sequence[bool]) -> float | None:
    """ROC AUC of ``scores`` for the binary ``labels`` (module docstring)."""
    s = np.asarray(scores, dtype=np.float64).flatten()
    y = np.asarray(labels).astype(bool).flatten()
    if s.shape != y.shape:
        raise ValueError(f"{len(s)} scores for {len(y)} labels")
    if not np.all(np.isfinite(s)):
        raise ValueError("scores must be finite")
    n_pos = int(y.sum())
    n_neg = len(y) - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    ranks = rankdata(s, method="average")
    u = float(ranks[y].sum()) - n_pos * (n_pos + 1) / 2.0
    return u / (n_pos * n_neg)


def min_shared(n_seeds: int, rule: SharedWith) -> int:
    """How many other seeds a latent must be shared with to count as shared."""
    if n_seeds < 2:
        raise ValueError(f"sharing needs at least 2 seeds, got {n_seeds}")
    if rule == "majority":
        return (n_seeds - 1) // 2 + 1
    if rule == "any":
        return 1
    if rule == "all":
        return n_seeds - 1
    raise ValueError(f"unknown sharing rule {rule!r}")


def shared_counts(
    decoders: Sequence[Atoms], encoders: Sequence[Atoms],
    threshold: float = DEFAULT_THRESHOLD, *, absolute: bool = True,
) -> torch.Tensor:
    """``[n_seeds, d_sae]`` int64: for each latent, the number of other seeds it is
    shared with (module docstring). All dictionaries must have the same size."""
    n = len(decoders)
    if n < 2 or len(encoders) != n:
        raise ValueError(f"need >= 2 seeds with encoders and decoders, got {n} and {len(encoders)}")
    d_sae = {int(np.shape(d)[0]) for d in decoders}
    if len(d_sae) != 1:
        raise ValueError(f"dictionaries of different sizes: {sorted(d_sae)}")
    counts = torch.zeros(n, d_sae.pop(), dtype=torch.int64)
    for i in range(n):
        for j in range(i + 1, n):
            m = pair_metrics(decoders[i], decoders[j], encoders[i], encoders[j],
                             threshold=threshold, ranks=(), absolute=absolute)
            assert m.shared_a is not None and m.decoder_matching is not None
            counts[i] += m.shared_a.to(torch.int64)
            counts[j, m.decoder_matching.partner[m.shared_a]] += 1
    return counts
