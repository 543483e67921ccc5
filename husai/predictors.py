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
* Properties (:func:`latent_properties`, :data:`PREDICTORS`) of latent i of one SAE:
  ``firing_frequency`` (share of the inputs on which it is non-zero), ``purity``
  (Fourier purity of its activation over the p x p grid,
  :func:`husai.recovery.latent_purity`; 0 for a dead latent), ``decoder_norm``
  (``||W_dec[i]||``), ``encoder_norm`` (``||W_enc[:, i]||``) and
  ``max_cos_ground_truth`` (largest ``|cos|`` of the decoder atom with a reference
  direction, :func:`present_ground_truth`). Each is rounded to 6 significant digits
  before ranking, so that float32 round-off (unit norms read back as 0.99999994 or
  1.0000001) is a tie, not a spurious ordering.
* Population (:func:`predictor_summary`): live latents only (non-zero on at least one
  input); a dead latent is never shared in practice and would make
  ``firing_frequency`` look predictive for a trivial reason.
* Deciles (:func:`shared_rate_by_decile`): the scores cut at their deciles (numpy's
  linear quantiles, tied edges merged), a value on an inner edge going to the upper
  bin; the shared rate of each non-empty bin.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch
from scipy.stats import rankdata

from husai.fourier import GroundTruth
from husai.geometry import one_thread
from husai.recovery import latent_purity, live_latents, present_directions
from husai.stability import (
    DEFAULT_THRESHOLD,
    Atoms,
    PairMetrics,
    best_matches,
    seed_pair_metrics,
)
from husai.stats import per_seed_stats

if TYPE_CHECKING:
    from husai.sae import BatchedSAE

SharedWith = Literal["majority", "any", "all"]
PREDICTORS = ("firing_frequency", "purity", "decoder_norm", "encoder_norm", "max_cos_ground_truth")
"""The per-latent properties scored as predictors of sharing (module docstring)."""


def roc_auc(
    scores: np.ndarray | torch.Tensor | Sequence[float],
    labels: np.ndarray | torch.Tensor | Sequence[bool],
) -> float | None:
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
    decoders: Sequence[Atoms],
    encoders: Sequence[Atoms],
    threshold: float = DEFAULT_THRESHOLD,
    *,
    absolute: bool = True,
) -> torch.Tensor:
    """``[n_seeds, d_sae]`` int64: for each latent, the number of other seeds it is
    shared with (module docstring). All dictionaries must have the same size."""
    n = len(decoders)
    if n < 2 or len(encoders) != n:
        raise ValueError(f"need >= 2 seeds with encoders and decoders, got {n} and {len(encoders)}")
    d_sae = {int(np.shape(d)[0]) for d in decoders}
    if len(d_sae) != 1:
        raise ValueError(f"dictionaries of different sizes: {sorted(d_sae)}")
    pairs = seed_pair_metrics(decoders, encoders, threshold=threshold, ranks=(), absolute=absolute)
    return count_shared(pairs, n, d_sae.pop())


def count_shared(
    pairs: Mapping[tuple[int, int], PairMetrics], n_seeds: int, d_sae: int
) -> torch.Tensor:
    """:func:`shared_counts` from the :func:`husai.stability.seed_pair_metrics` of every
    pair (computed with encoder atoms and matching): ``[n_seeds, d_sae]`` int64."""
    counts = torch.zeros(n_seeds, d_sae, dtype=torch.int64)
    for (i, j), m in pairs.items():
        if m.shared_a is None or m.decoder_matching is None:
            raise ValueError(f"pair ({i}, {j}) was matched without encoder atoms or matching")
        counts[i] += m.shared_a.to(torch.int64)
        counts[j, m.decoder_matching.partner[m.shared_a]] += 1
    return counts


def present_ground_truth(gt: GroundTruth) -> torch.Tensor:
    """The present ground-truth directions (:func:`husai.recovery.present_directions`),
    or a single zero row when none is present (every ``|cos|`` with it is 0)."""
    keep = present_directions(gt.directions, gt.energy_share)
    if bool(keep.any()):
        return gt.directions[keep]
    return gt.directions.new_zeros(1, gt.directions.shape[1])


def _significant(t: torch.Tensor, digits: int = 6) -> torch.Tensor:
    """Each value rounded to ``digits`` significant digits (float64)."""
    return torch.from_numpy(np.array([float(f"{v:.{digits}g}") for v in t.tolist()]))


def latent_properties(
    sae: BatchedSAE, index: int, x: torch.Tensor, directions: Atoms
) -> dict[str, torch.Tensor]:
    """Every property of :data:`PREDICTORS` for the latents of seed number ``index``
    on the inputs ``x`` (a p x p grid of rows), rounded (module docstring), as
    ``[d_sae]`` float64 tensors, plus ``live`` (``[d_sae]`` bool)."""
    one = sae.select(index)
    acts = one.encode(x)[0]  # [p*p, d_sae]
    live = live_latents(acts)
    purity = torch.zeros(acts.shape[1], dtype=torch.float64)  # dead: constant, purity 0
    if bool(live.any()):
        purity[live] = latent_purity(acts[:, live]).purity.to(torch.float64)
    props = {
        "firing_frequency": (acts != 0).to(torch.float64).mean(0),
        "purity": purity,
        "decoder_norm": one.W_dec[0].to(torch.float64).norm(dim=1),
        "encoder_norm": one.W_enc[0].to(torch.float64).norm(dim=0),
        "max_cos_ground_truth": best_matches(one.W_dec[0], directions).cosine,
    }
    out = {k: _significant(t) for k, t in props.items()}
    out["live"] = live
    return out


def shared_rate_by_decile(
    scores: np.ndarray | Sequence[float], labels: np.ndarray | Sequence[bool]
) -> list[dict[str, Any]]:
    """``[{"low", "high", "n", "shared_rate"}]`` per non-empty decile bin of ``scores``
    (module docstring): the smallest and largest score in the bin, its size and the
    share of true ``labels``. Empty scores give ``[]``."""
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels, dtype=bool)
    if len(s) == 0:
        return []
    edges = np.unique(np.quantile(s, np.linspace(0, 1, 11)))
    inner = edges[1:-1]
    bins = np.searchsorted(inner, s, side="right")
    out = []
    for b in range(len(inner) + 1):
        sel = bins == b
        if not sel.any():
            continue
        out.append(
            {
                "low": float(s[sel].min()),
                "high": float(s[sel].max()),
                "n": int(sel.sum()),
                "shared_rate": float(y[sel].mean()),
            }
        )
    return out


def predictor_summary(
    sae: BatchedSAE,
    x: torch.Tensor,
    directions: Atoms,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    shared_with: SharedWith = "majority",
) -> dict[str, Any]:
    """Which properties of a configuration's live latents predict sharing (module
    docstring), as the configuration entry of ``metrics/predictors.json`` (stage
    ``predictors``): sharing counts by :func:`shared_counts` (on one torch thread),
    labels by :func:`min_shared`, per-seed and pooled AUCs of every property, the
    looser ``any`` label's pooled AUCs, class means and :func:`shared_rate_by_decile`."""
    seeds = list(sae.seeds)
    n = len(seeds)
    with one_thread():  # small eigh / matching work (husai.geometry.one_thread)
        counts = shared_counts(list(sae.decoder_atoms()), list(sae.encoder_atoms()), threshold)
    need = min_shared(n, shared_with)
    shared = counts >= need
    props = [latent_properties(sae, i, x, directions) for i in range(n)]
    per_seed: dict[str, Any] = {}
    pooled: dict[str, list] = {k: [] for k in PREDICTORS}
    pooled_y: list = []
    for i, seed in enumerate(seeds):
        live = props[i]["live"]
        y = shared[i][live].numpy()
        per_seed[str(seed)] = {
            "n_live": int(live.sum()),
            "n_shared": int(shared[i][live].sum()),
            "auc": {k: roc_auc(props[i][k][live].numpy(), y) for k in PREDICTORS},
        }
        for k in PREDICTORS:
            pooled[k].append(props[i][k][live].numpy())
        pooled_y.append(y)
    y_all = np.concatenate(pooled_y)
    auc = {}
    means = {}
    by_decile = {}
    for k in PREDICTORS:
        v = np.concatenate(pooled[k])
        auc[k] = {
            **per_seed_stats([per_seed[str(s)]["auc"][k] for s in seeds]),
            "pooled": roc_auc(v, y_all),
        }
        means[k] = {
            "shared": float(v[y_all].mean()) if y_all.any() else None,
            "not_shared": float(v[~y_all].mean()) if (~y_all).any() else None,
        }
        by_decile[k] = shared_rate_by_decile(v, y_all)
    # the loosest rule as a second view (more positives when few latents are shared)
    any_y = np.concatenate([(counts[i] >= 1)[props[i]["live"]].numpy() for i in range(n)])
    auc_any = {k: roc_auc(np.concatenate(pooled[k]), any_y) for k in PREDICTORS}
    hist = torch.bincount(counts.flatten(), minlength=n).tolist()
    return {
        "architecture": sae.config.architecture,
        "seeds": seeds,
        "d_sae": sae.config.d_sae,
        "min_other_seeds": need,
        "n_latents": int(counts.numel()),
        "n_live": len(y_all),
        "n_shared": int(y_all.sum()),
        "shared_count_histogram": {str(c): h for c, h in enumerate(hist)},
        "per_seed": per_seed,
        "auc": auc,
        "n_shared_with_any": int(any_y.sum()),
        "auc_shared_with_any": auc_any,
        "means": means,
        "shared_rate_by_decile": by_decile,
    }
