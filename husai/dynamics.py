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
* At each checkpoint (:func:`checkpoint_metrics`): the stability metrics of every
  seed pair (:func:`husai.stability.seed_pair_metrics`, Paulo & Belrose threshold
  ``threshold``, subspace ranks ``husai.stability.DEFAULT_RANKS``), each latent's best
  match in every other seed, the number of other seeds it is shared with
  (:func:`husai.predictors.count_shared`) and the SAE metrics of
  :func:`husai.sae.evaluate`. Over the checkpoints (:func:`dynamics_summary`):
  ``cos_to_final`` (per seed, mean over latents of ``|cos|`` between the latent's atom
  at the step and at the last step), ``settled_fraction`` (share of latents whose settle
  step is ``<=`` the step), ``match_agreement_live`` (share of (live latent, other
  seed) pairs whose best match at the step is already the final one; live = non-zero
  on at least one input at the last step) and the settle-step distributions of every,
  live, shared (with a majority of the other seeds at the last step,
  :func:`husai.predictors.min_shared`) and live unshared latents.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from husai.baselines import isotropic_baseline
from husai.geometry import one_thread
from husai.predictors import count_shared, min_shared
from husai.recovery import live_latents
from husai.stability import (
    DEFAULT_RANKS,
    Atoms,
    PairMetrics,
    best_matches,
    metric_matrices,
    seed_pair_metrics,
    subspace_random_expectation,
)
from husai.stats import seed_stats, value_stats

if TYPE_CHECKING:
    from husai.sae import BatchedSAE, SAEConfig

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
        out |= {
            "median": None,
            "quantiles": {str(q): None for q in QUANTILES},
            "mean_log2_step": None,
            "fraction_settled_by_step": {str(int(s)): None for s in steps},
        }
        return out
    qs = np.quantile(v, QUANTILES, method="inverted_cdf")
    out["median"] = int(np.quantile(v, 0.5, method="inverted_cdf"))
    out["quantiles"] = {str(q): int(x) for q, x in zip(QUANTILES, qs, strict=True)}
    out["mean_log2_step"] = float(np.log2(1.0 + v).mean())
    out["fraction_settled_by_step"] = {str(int(s)): float((v <= s).mean()) for s in steps}
    return out


# ----------------------------------------------------------------------------- checkpoints


def checkpoint_schedule(config: SAEConfig, n_rows: int, base: int = 2) -> list[int]:
    """The checkpoint steps of training ``config`` on ``n_rows`` rows:
    :func:`log_checkpoints` of its total number of optimiser steps (the maximum, when
    training to convergence: :func:`train_dynamics` keeps those before the stop)."""
    from husai.sae import steps_per_epoch

    return log_checkpoints(steps_per_epoch(n_rows, config.batch_size) * config.epochs, base)


@dataclass(frozen=True)
class Checkpoint:
    """What :func:`checkpoint_metrics` keeps of one checkpoint of n seeds' SAEs."""

    matrices: dict[str, np.ndarray]  # husai.stability.pairwise_metrics format
    matches: torch.Tensor  # [S, d_sae, S-1] best match in each other seed (in seed order)
    shared: torch.Tensor  # [S, d_sae] number of other seeds the latent is shared with
    evaluation: list[dict[str, float]]  # husai.sae.evaluate, one dict per seed
    decoder: torch.Tensor  # [S, d_sae, d_in] unit decoder atoms


def best_match_table(
    decoders: Sequence[Atoms], pairs: Mapping[tuple[int, int], PairMetrics]
) -> torch.Tensor:
    """``[S, d_sae, S-1]`` int64: for latent l of seed i, its best match
    (:func:`husai.stability.best_matches`) in each other seed, the other seeds in
    increasing order. Pair (i, j) gives i's matches in j (``pairs[i, j].best_match_a``);
    j's in i are computed here."""
    n = len(decoders)
    d_sae = int(np.shape(decoders[0])[0])
    matches = torch.zeros(n, d_sae, n - 1, dtype=torch.int64)
    for i in range(n):
        for j in range(i + 1, n):
            matches[i, :, j - 1] = pairs[i, j].best_match_a.index
            matches[j, :, i] = best_matches(decoders[j], decoders[i]).index
    return matches


def checkpoint_metrics(sae: BatchedSAE, x: torch.Tensor, threshold: float) -> Checkpoint:
    """Pairwise stability, best matches and sharing counts (one pass over every pair, on
    one torch thread), and the SAE metrics on ``x``, of one checkpoint."""
    from husai.sae import evaluate

    dec, enc = sae.decoder_atoms(), sae.encoder_atoms()
    n, d_sae = sae.n_seeds, sae.config.d_sae
    with one_thread():  # small eigh / matching work (husai.geometry.one_thread)
        pairs = seed_pair_metrics(list(dec), list(enc), threshold=threshold, ranks=DEFAULT_RANKS)
        matrices = metric_matrices(pairs, n)
        matches = best_match_table(list(dec), pairs)
        shared = count_shared(pairs, n, d_sae)
    return Checkpoint(matrices, matches, shared, evaluate(sae, x), dec.clone())


def stability_stats(matrices: Mapping[str, np.ndarray]) -> dict[str, dict[str, Any]]:
    """:meth:`husai.stats.SeedStats.to_dict` of every measured pair matrix (the
    ``subspace_random_r*`` expectations are constants and are left out)."""
    return {
        k: seed_stats(m).to_dict()
        for k, m in matrices.items()
        if not k.startswith("subspace_random")
    }


def isotropic_stats(
    d_sae: int, d_in: int, seeds: Sequence[int], threshold: float
) -> dict[str, dict[str, Any]]:
    """:func:`stability_stats` of isotropic dictionaries of the same shape, one per
    seed (:func:`husai.baselines.isotropic_baseline`, on one torch thread)."""
    with one_thread():
        iso = isotropic_baseline(d_sae, d_in, seeds, threshold=threshold)
    return stability_stats(iso)


def dynamics_summary(
    steps: Sequence[int],
    checkpoints: Mapping[int, Checkpoint],
    live: torch.Tensor,
    isotropic: Mapping[str, Mapping[str, Any]],
) -> dict[str, Any]:
    """Stability by checkpoint and settle steps (module docstring) from the
    :class:`Checkpoint` of every step of ``steps`` (increasing; the last is the end of
    training), ``live`` ``[S, d_sae]`` at the last step and the :func:`isotropic_stats`
    of the same shape: ``checkpoints`` (one dict per step), ``settle``,
    ``settle_per_pair``, ``final_live`` and ``final_shared_with_majority``, as in
    ``metrics/dynamics.json`` (stage ``dynamics``)."""
    final = checkpoints[steps[-1]]
    n_seeds = final.shared.shape[0]
    shared_final = final.shared >= min_shared(n_seeds, "majority")  # [S, d_sae]
    matches = torch.stack([checkpoints[s].matches for s in steps])  # [T, S, d_sae, S-1]
    settle = torch.stack([settle_steps(steps, matches[:, i]) for i in range(n_seeds)])
    # per (latent, other seed): [S, d_sae, S-1]
    settle_pair = torch.stack(
        [
            settle_steps(steps, matches[:, i].flatten(1)).view(-1, n_seeds - 1)
            for i in range(n_seeds)
        ]
    )
    live_pairs = live[:, :, None].expand_as(settle_pair)
    out = []
    for step in steps:
        c = checkpoints[step]
        stab = stability_stats(c.matrices)
        cos_final = (c.decoder * final.decoder).sum(-1).abs().mean(-1).tolist()
        agree = (c.matches == final.matches)[live_pairs]
        out.append(
            {
                "step": step,
                "stability": stab,
                "ratio_to_isotropic": {
                    k: (v["mean"] / isotropic[k]["mean"] if isotropic[k]["mean"] else None)
                    for k, v in stab.items()
                },
                "explained_variance": value_stats(
                    [e["explained_variance"] for e in c.evaluation]
                ).to_dict(),
                "l0": value_stats([e["l0"] for e in c.evaluation]).to_dict(),
                "frac_alive": value_stats([e["frac_alive"] for e in c.evaluation]).to_dict(),
                "cos_to_final": value_stats(cos_final).to_dict(),
                "settled_fraction": float((settle <= step).to(torch.float64).mean()),
                "match_agreement_live": (
                    float(agree.to(torch.float64).mean()) if agree.numel() else None
                ),
            }
        )
    return {
        "checkpoints": out,
        "settle": {
            "all": settle_summary(settle, steps),
            "live": settle_summary(settle[live], steps),
            "shared": settle_summary(settle[shared_final], steps),
            "not_shared_live": settle_summary(settle[~shared_final & live], steps),
        },
        "settle_per_pair": {
            "all": settle_summary(settle_pair, steps),
            "live": settle_summary(settle_pair[live_pairs], steps),
            "shared": settle_summary(
                settle_pair[shared_final[:, :, None].expand_as(settle_pair)], steps
            ),
        },
        "final_live": float(live.to(torch.float64).mean()),
        "final_shared_with_majority": float(shared_final.to(torch.float64).mean()),
    }


def train_dynamics(
    config: SAEConfig,
    x: torch.Tensor,
    seeds: Sequence[int],
    steps: Sequence[int],
    threshold: float,
    name: str | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Train ``config`` at ``seeds`` on ``x`` (:func:`husai.sae.train_saes`), measure it at
    every step of ``steps`` (:func:`checkpoint_schedule`; the last is the end of
    training) and summarise. Training to convergence (``convergence_tol > 0``, see
    :mod:`husai.sae.train`) may stop before the end of the schedule: the checkpoints
    are then those before the stop plus the stop itself, where every seed is at the
    state it returns (a seed that converged earlier is frozen there, in every checkpoint
    after its convergence too), and ``total_steps`` is the stop. The result is the
    configuration entry of ``metrics/dynamics.json`` (architecture, hyperparameters,
    seeds, sizes, steps, the isotropic reference and :func:`dynamics_summary`). ``name`` (the params configuration) names a diverging
    run in its :class:`~husai.errors.DivergedError`; ``on_progress(step, total)`` is handed
    to :func:`husai.sae.train_saes` (for a progress display: it cannot change the result)."""
    from husai.sae import train_saes

    steps = list(steps)
    seen: dict[int, Checkpoint] = {}

    def on_checkpoint(step: int, sae: BatchedSAE) -> None:
        seen[step] = checkpoint_metrics(sae, x, threshold)

    final_sae, history = train_saes(
        config,
        x,
        seeds,
        checkpoint_steps=steps,
        on_checkpoint=on_checkpoint,
        on_progress=on_progress,
        name=name,
    )
    if history.steps < steps[-1]:  # converged early: the checkpoints up to the stop and the stop
        steps = [s for s in steps if s < history.steps] + [history.steps]
        seen[history.steps] = checkpoint_metrics(final_sae, x, threshold)
    live = torch.stack(
        [live_latents(final_sae.select(i).encode(x)[0]) for i in range(len(seeds))]
    )  # [S, d_sae] at the last step
    d_in = int(x.shape[1])
    iso = isotropic_stats(config.d_sae, d_in, seeds, threshold)
    ranks = [r for r in DEFAULT_RANKS if r <= min(config.d_sae, d_in)]
    return {
        "architecture": config.architecture,
        "hyperparameters": config.hyperparams(),
        "seeds": list(seeds),
        "d_sae": config.d_sae,
        "d_in": d_in,
        "total_steps": steps[-1],
        "checkpoint_steps": steps,
        "random": {
            "isotropic": iso,
            "subspace_random": {
                str(r): v for r, v in subspace_random_expectation(ranks, d_in).items()
            },
        },
        **dynamics_summary(steps, seen, live, iso),
    }
