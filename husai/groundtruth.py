"""Ground-truth controls: does a stable SAE recover the features that were planted?

The stability metrics (:mod:`husai.stability`) ask whether seeds agree; on
synthetic data with known features one can also ask whether what they agree on is
*right*. This module holds the pure functions for that comparison:

* :func:`feature_recovery`: one SAE's decoder against planted feature directions,
  with SAELens's synthetic-data metrics (``mean_correlation_coefficient``,
  ``feature_uniqueness``) and the share of features found above a cosine threshold.
* :func:`plane_recovery`: the ``circles`` control, whose features are 2-D planes
  (points on round circles): an atom recovers a plane when nearly all of its norm
  lies inside it.
* :func:`live_stability`: seed-to-seed stability over *live* latents only, beside
  three random baselines with the same number of atoms as each seed has live
  latents, so that a sparse set of live latents is not compared with a full-size
  random dictionary.
* :func:`stability_predicts_recovery`: across the cells of a grid, whether higher
  stability goes with better recovery, and from which stability on recovery is
  reliably good.

Conventions
-----------
* Live latent: non-zero on at least one row of the analysed data (the rule of
  :func:`husai.recovery.live_latents`). Dead latents are never counted as
  features: every function that takes a ``live`` mask drops the other atoms first,
  so what a dead latent's atom points at cannot change any result.
* Cosines are ``|cos|`` (an atom and its negation are one direction), computed by
  :mod:`husai.stability`'s exact fixed-point routine.
* Randomness: the count-matched baseline dictionary of seed ``seeds[i]`` is drawn
  from that seed itself (``isotropic_dictionary(n, d_in, seeds[i])``,
  ``subspace_dictionary(n, basis, seeds[i])``, ``data_sample_dictionary(x, n,
  seeds[i])``), as :func:`husai.analysis.baseline_matrices` draws its baselines from
  the configuration's seeds; with every latent live the isotropic one is exactly the
  pipeline's ``random`` baseline dictionary. Bootstrap resamples come from
  :func:`husai.stats.seed_resamples` with an explicit seed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from scipy.stats import spearmanr

from husai.baselines import isotropic_dictionary, principal_basis, subspace_dictionary
from husai.geometry import data_sample_dictionary
from husai.recovery import direction_alignment
from husai.sae import BatchedSAE
from husai.stability import (
    DEFAULT_CHUNK,
    DEFAULT_THRESHOLD,
    Atoms,
    as_atoms,
    best_matches,
    cosine_matrix,
    hungarian_mcc,
    pairwise_metrics,
    unit_rows,
)
from husai.stats import BOOT_SEED, N_BOOT, ratio_stats, seed_resamples, seed_stats, value_stats

RECOVERY_THRESHOLD = 0.9  # a planted feature counts as found at this |cos|
PLANE_MIN_SHARE = 0.9  # an atom lies in a plane when this share of its norm^2 does
DEDUPE_COS = 0.95  # two live atoms at this |cos| are one direction
ENCODER_SEED_OFFSET = 1_000_003
"""A baseline seed's encoder atoms are drawn from ``seed + ENCODER_SEED_OFFSET``,
independently of its decoder atoms (untied). With tied atoms (encoder = decoder) the
encoder matching repeats the decoder matching, so the shared fraction of a tied random
baseline is just the share of decoder matches above the threshold, high wherever random
atoms crowd a low-rank span. An untied random baseline shares almost nothing: beating it
says only that encoder and decoder agree on the partner, which the rotation null of
:func:`husai.planes.plane_stability` tests properly where the data have planes."""
BASELINES = ("isotropic", "subspace", "data")
METRICS = ("pwmcc", "hungarian_mcc", "shared_fraction")


# ----------------------------------------------------------------------------- live atoms


def sae_live_masks(sae: BatchedSAE, x: torch.Tensor) -> list[torch.Tensor]:
    """Per seed of ``sae``: the ``[d_sae]`` bool mask of latents that are non-zero on at
    least one row of ``x [N, d_in]`` (the rule of :func:`husai.recovery.live_latents`,
    which only accepts a ``p x p`` grid; here ``N`` is any number of rows). Seeds are
    encoded one at a time, so memory is one seed's ``[N, d_sae]`` activations."""
    return [(sae.select(i).encode(x)[0] != 0).any(dim=0) for i in range(sae.n_seeds)]


def live_atoms(atoms: Atoms, live: torch.Tensor | None, name: str = "atoms") -> torch.Tensor:
    """The rows of ``atoms [d_sae, d_in]`` (float64) whose latent is live; all rows when
    ``live`` is None. May be empty (``[0, d_in]``)."""
    a = as_atoms(atoms, name)
    if live is None:
        return a
    mask = torch.as_tensor(live)
    if mask.dtype != torch.bool or tuple(mask.shape) != (a.shape[0],):
        raise ValueError(
            f"{name}: live mask must be bool [{a.shape[0]}], got {mask.dtype} {tuple(mask.shape)}"
        )
    return a[mask.to(a.device)]


def distinct_directions(
    atoms: Atoms, dedupe_cos: float = DEDUPE_COS, chunk_size: int = DEFAULT_CHUNK
) -> int:
    """Number of distinct directions among the rows of ``atoms``: greedily, in row order,
    an atom is kept when its ``|cos|`` with every atom kept before it is below
    ``dedupe_cos``. Copies of one direction inflate PWMCC (each copy finds a perfect
    partner in the other seed), so the count tells how many directions the PWMCC of
    a set of live atoms is really about. 0 for no atom."""
    a = torch.as_tensor(atoms)
    if a.ndim != 2:
        raise ValueError(f"expected an atom matrix [n, d_in], got {tuple(a.shape)}")
    if a.shape[0] == 0:
        return 0
    kept: list[torch.Tensor] = []
    for start in range(0, a.shape[0], chunk_size):
        block = a[start : start + chunk_size]
        free = np.ones(block.shape[0], dtype=bool)
        if kept:
            free &= (cosine_matrix(block, torch.cat(kept)).amax(dim=1) < dedupe_cos).numpy()
        c = cosine_matrix(block, block).numpy()
        keep = np.zeros(block.shape[0], dtype=bool)
        for i in np.flatnonzero(free):
            keep[i] = not bool((c[i, :i][keep[:i]] >= dedupe_cos).any())
        if keep.any():
            kept.append(block[torch.from_numpy(keep)])
    return sum(k.shape[0] for k in kept)


# ----------------------------------------------------------------------------- recovery


def feature_recovery(
    decoder_atoms: Atoms,
    features: Atoms,
    live: torch.Tensor | None = None,
    threshold: float = RECOVERY_THRESHOLD,
) -> dict[str, float | int]:
    """Recovery of planted feature directions ``features [F, d_in]`` by one SAE's
    decoder atoms ``[d_sae, d_in]``, over its live atoms when ``live`` is given.

    Keys:

    * ``mcc``: SAELens's ``mean_correlation_coefficient(atoms, features)``: the
      one-to-one Hungarian matching of atoms and features maximising the summed
      ``|cos|``, and its mean ``|cos|`` over the ``min(n_live, F)`` matched pairs
      (:func:`husai.stability.hungarian_mcc`).
    * ``recovered_fraction``: share of features whose best ``|cos|`` with any (live)
      atom is ``>= threshold`` (duplicates may recover one feature twice).
    * ``uniqueness``: SAELens's ``feature_uniqueness(atoms, features)``: the number of
      distinct features that are some atom's best match, over the number of atoms
      (1 when every atom tracks a different feature).
    * ``n_live`` (atoms analysed) and ``n_features``.

    Without a live atom, ``mcc``, ``recovered_fraction`` and ``uniqueness`` are 0.
    """
    feats = as_atoms(features, "features")
    atoms = live_atoms(decoder_atoms, live, "decoder_atoms")
    if atoms.shape[1] != feats.shape[1]:
        raise ValueError(f"atoms have d_in {atoms.shape[1]}, features {feats.shape[1]}")
    out: dict[str, float | int] = {
        "mcc": 0.0,
        "recovered_fraction": 0.0,
        "uniqueness": 0.0,
        "n_live": int(atoms.shape[0]),
        "n_features": int(feats.shape[0]),
    }
    if atoms.shape[0] == 0:
        return out
    out["mcc"] = hungarian_mcc(atoms, feats)
    best = direction_alignment(atoms, feats)  # [F] best |cos| of each feature
    out["recovered_fraction"] = float((best >= threshold).double().mean())
    tracked = best_matches(atoms, feats).index  # each atom's best feature
    out["uniqueness"] = len(tracked.unique()) / atoms.shape[0]
    return out


def plane_recovery(
    decoder_atoms: Atoms,
    planes: torch.Tensor | np.ndarray,
    live: torch.Tensor | None = None,
    min_share: float = PLANE_MIN_SHARE,
) -> dict[str, float | int]:
    """Recovery of planted 2-D feature planes ``planes [P, 2, d_in]`` (each an orthonormal
    pair of rows) by one SAE's decoder atoms ``[d_sae, d_in]``, over its live atoms
    when ``live`` is given. For the ``circles`` control, where the data lie on round
    circles in P planes: a circle has no preferred direction, so an SAE can only be
    asked to put its atoms inside the planes, not on particular directions.

    An atom's share in plane p is ``||planes[p] a||^2 / ||a||^2``; it is *in-plane* when
    its largest share is ``>= min_share``, and then belongs to that plane. Keys:
    ``in_plane_fraction`` (share of live atoms that are in-plane, 0 without live
    atoms), ``planes_covered`` (share of planes holding at least one in-plane atom),
    ``n_in_plane``, ``n_live``, ``n_planes``.
    """
    pl = torch.as_tensor(planes).to(torch.float64)
    if pl.ndim != 3 or pl.shape[1] != 2 or pl.shape[0] == 0:
        raise ValueError(f"planes must be [P >= 1, 2, d_in], got {tuple(pl.shape)}")
    gram = pl @ pl.transpose(1, 2)
    if not torch.allclose(gram, torch.eye(2, dtype=torch.float64).expand_as(gram), atol=1e-6):
        raise ValueError("each plane must be given by an orthonormal pair of rows")
    atoms = live_atoms(decoder_atoms, live, "decoder_atoms")
    if atoms.shape[1] != pl.shape[2]:
        raise ValueError(f"atoms have d_in {atoms.shape[1]}, planes {pl.shape[2]}")
    n_live, n_planes = int(atoms.shape[0]), int(pl.shape[0])
    if n_live == 0:
        return {
            "in_plane_fraction": 0.0,
            "planes_covered": 0.0,
            "n_in_plane": 0,
            "n_live": 0,
            "n_planes": n_planes,
        }
    coords = torch.einsum("pkd,nd->npk", pl, unit_rows(atoms))  # [n, P, 2]
    share = coords.pow(2).sum(dim=2)  # [n, P] share of each atom's norm^2 in each plane
    best, plane = share.max(dim=1)
    inside = best >= min_share
    return {
        "in_plane_fraction": float(inside.double().mean()),
        "planes_covered": len(plane[inside].unique()) / n_planes,
        "n_in_plane": int(inside.sum()),
        "n_live": n_live,
        "n_planes": n_planes,
    }


# ----------------------------------------------------------------------------- live stability


def live_baseline_dictionaries(
    n_live: Sequence[int],
    seeds: Sequence[int],
    x: torch.Tensor,
    basis: torch.Tensor | None,
) -> dict[str, list[torch.Tensor]]:
    """Count-matched random dictionaries: for seed ``seeds[i]``, ``n_live[i]`` unit atoms
    of each kind, drawn from that seed (module docstring):

    * ``isotropic``: uniform on the sphere of R^d_in (:func:`husai.baselines.isotropic_dictionary`);
    * ``subspace``: uniform in the span of ``basis`` (:func:`husai.baselines.subspace_dictionary`;
      left out when ``basis`` is None);
    * ``data``: random rows of the mean-centred ``x`` (:func:`husai.geometry.data_sample_dictionary`).
    """
    if len(n_live) != len(seeds):
        raise ValueError(f"{len(n_live)} live counts for {len(seeds)} seeds")
    d_in = x.shape[1]
    out = {
        "isotropic": [isotropic_dictionary(n, d_in, s) for n, s in zip(n_live, seeds, strict=True)],
    }
    if basis is not None:
        out["subspace"] = [
            subspace_dictionary(n, basis, s) for n, s in zip(n_live, seeds, strict=True)
        ]
    out["data"] = [data_sample_dictionary(x, n, s) for n, s in zip(n_live, seeds, strict=True)]
    return out


def live_stability(
    decoders: Sequence[Atoms],
    encoders: Sequence[Atoms] | None,
    lives: Sequence[torch.Tensor],
    x: torch.Tensor,
    seeds: Sequence[int],
    *,
    threshold: float = DEFAULT_THRESHOLD,
    hungarian: bool = True,
    subspace_variance: float | None = 0.99,
    n_boot: int = N_BOOT,
    boot_seed: int = BOOT_SEED,
    dedupe_cos: float = DEDUPE_COS,
) -> dict[str, Any]:
    """Stability of one configuration's seeds over their live latents, beside
    count-matched random baselines.

    ``decoders[i]`` and ``encoders[i]`` (``W_enc.T``) are seed i's atoms ``[d_sae, d_in]``,
    ``lives[i]`` its live mask, ``x [N, d_in]`` the activations the masks and the
    data-driven baselines come from. Per seed pair, PWMCC, Hungarian MCC and the
    shared fraction (:func:`husai.stability.pairwise_metrics`) compare the two seeds'
    live atoms only. With unequal live counts PWMCC averages each side over its own
    atoms, while Hungarian MCC and the shared fraction count the ``min(n_a, n_b)``
    matched pairs: the surplus live atoms of the larger seed do not lower them.
    Each baseline seed gets as many atoms as the trained seed has live latents
    (:func:`live_baseline_dictionaries`), with encoder atoms drawn independently of its
    decoder atoms (from ``seed + ENCODER_SEED_OFFSET``): untied, as a trained SAE's
    are, so that the baselines' shared fraction is comparable with the trained one.

    Keys: ``seeds``; ``live_pwmcc``, ``live_hungarian_mcc``, ``live_shared_fraction``
    and ``{isotropic,subspace,data}_live_{pwmcc,hungarian_mcc,shared_fraction}``
    (:class:`husai.records.Stat` records; None where not computed: the matchings
    without ``hungarian``, the shared fraction without encoders, ``subspace_*``
    without ``subspace_variance``); ``live_pwmcc_ratio_to_{isotropic,subspace,data}``
    (:class:`husai.records.Ratio` records, unpaired: a baseline dictionary has no
    relation to the SAE of the same seed); ``subspace_rank`` (None without the
    subspace baseline); ``n_live`` and ``distinct_live`` (per-seed Stat records) with
    ``n_live_per_seed`` and ``distinct_live_per_seed`` (:func:`distinct_directions`
    of each seed's live decoder atoms at ``dedupe_cos``).
    """
    n = len(decoders)
    if n < 2:
        raise ValueError(f"live stability needs at least 2 seeds, got {n}")
    if len(lives) != n or len(seeds) != n:
        raise ValueError(f"{n} decoders, {len(lives)} live masks, {len(seeds)} seeds")
    if encoders is not None and len(encoders) != n:
        raise ValueError(f"{len(encoders)} encoders for {n} decoders")
    dec = [
        live_atoms(d, m, f"decoders[{i}]")
        for i, (d, m) in enumerate(zip(decoders, lives, strict=True))
    ]
    enc = (
        None
        if encoders is None
        else [
            live_atoms(e, m, f"encoders[{i}]")
            for i, (e, m) in enumerate(zip(encoders, lives, strict=True))
        ]
    )
    counts = [int(a.shape[0]) for a in dec]
    for seed, c in zip(seeds, counts, strict=True):
        if c < 1:
            raise ValueError(f"seed {seed} has no live latent: nothing to compare")
    basis = None if subspace_variance is None else principal_basis(x, subspace_variance)
    options: dict[str, Any] = {"threshold": threshold, "ranks": (), "hungarian": hungarian}
    boot = {"n_boot": n_boot, "seed": boot_seed}
    trained = pairwise_metrics(dec, enc, **options)
    mats = {"live": trained}
    untied = (
        None
        if enc is None
        else live_baseline_dictionaries(
            counts, [int(s) + ENCODER_SEED_OFFSET for s in seeds], x, basis
        )
    )
    for kind, atoms in live_baseline_dictionaries(counts, seeds, x, basis).items():
        mats[kind] = pairwise_metrics(atoms, None if untied is None else untied[kind], **options)

    out: dict[str, Any] = {"seeds": [int(s) for s in seeds]}
    for prefix in ("live", *(f"{k}_live" for k in BASELINES)):
        group = mats.get(prefix.removesuffix("_live"))
        for key in METRICS:
            value = None if group is None or key not in group else group[key]
            out[f"{prefix}_{key}"] = None if value is None else seed_stats(value, **boot).to_dict()
    for kind in BASELINES:
        out[f"live_pwmcc_ratio_to_{kind}"] = (
            ratio_stats(trained["pwmcc"], mats[kind]["pwmcc"], paired=False, **boot).to_dict()
            if kind in mats
            else None
        )
    out["subspace_rank"] = None if basis is None else int(basis.shape[0])
    distinct = [distinct_directions(a, dedupe_cos) for a in dec]
    out["n_live"] = value_stats(counts, **boot).to_dict()
    out["n_live_per_seed"] = counts
    out["distinct_live"] = value_stats(distinct, **boot).to_dict()
    out["distinct_live_per_seed"] = distinct
    return out


# ----------------------------------------------------------------------------- across cells


def stability_predicts_recovery(
    stability: Sequence[float],
    recovery: Sequence[float],
    *,
    n_boot: int = N_BOOT,
    seed: int = BOOT_SEED,
    level: float = RECOVERY_THRESHOLD,
    ci_level: float = 0.95,
) -> dict[str, Any]:
    """Across the cells of a grid (one stability and one recovery number per cell):
    does a more stable cell recover more?

    Keys: ``spearman_rho`` and ``p_value`` (:func:`scipy.stats.spearmanr`; None when
    either sequence is constant), ``spearman_ci`` (percentile bootstrap over cells:
    ``n_boot`` resamples of the cells with replacement from
    :func:`husai.stats.seed_resamples` with ``seed``, resamples in which either
    sequence is constant dropped; None with fewer than 3 cells or no usable
    resample), ``n_cells``, ``level``; ``threshold``: the smallest stability value s
    of a cell such that every cell with stability ``>= s`` has recovery ``>= level``
    (None when the most stable cell already falls short), and ``cells_above``: the
    number of cells with stability ``>= threshold`` (0 without threshold).
    """
    s = np.asarray(stability, dtype=np.float64).flatten()
    r = np.asarray(recovery, dtype=np.float64).flatten()
    if s.shape != r.shape or len(s) < 2:
        raise ValueError(
            f"need matching stability and recovery for >= 2 cells, got {s.shape}, {r.shape}"
        )
    if not (np.all(np.isfinite(s)) and np.all(np.isfinite(r))):
        raise ValueError("stability and recovery must be finite")

    def rho(i: np.ndarray) -> tuple[float, float] | None:
        a, b = s[i], r[i]
        if np.all(a == a[0]) or np.all(b == b[0]):
            return None
        res = spearmanr(a, b)
        return float(res.statistic), float(res.pvalue)

    point = rho(np.arange(len(s)))
    ci = None
    if len(s) >= 3:
        boots = [rho(i) for i in seed_resamples(len(s), n_boot, seed)]
        vals = np.array([b[0] for b in boots if b is not None])
        if len(vals):
            alpha = (1.0 - ci_level) / 2
            lo, hi = np.quantile(vals, [alpha, 1.0 - alpha])
            ci = [float(lo), float(hi)]

    threshold = None
    for v in np.unique(s)[::-1]:  # distinct stabilities, most stable first
        if not np.all(r[s >= v] >= level):
            break
        threshold = float(v)
    return {
        "spearman_rho": None if point is None else point[0],
        "p_value": None if point is None else point[1],
        "spearman_ci": ci,
        "n_cells": len(s),
        "level": level,
        "threshold": threshold,
        "cells_above": 0 if threshold is None else int((s >= threshold).sum()),
    }


# ----------------------------------------------------------------------------- per configuration


def truth_summary(
    decoders: Sequence[Atoms],
    lives: Sequence[torch.Tensor],
    truth: dict[str, torch.Tensor],
    seeds: Sequence[int],
    *,
    n_boot: int = N_BOOT,
    boot_seed: int = BOOT_SEED,
) -> dict[str, Any] | None:
    """Ground-truth recovery of one configuration's seeds on a control domain whose
    ``truth`` holds planted ``features`` (synthetic) or ``planes`` (circles); None for
    a domain without either. Over live atoms only; for features also ``mcc_all_atoms``
    (every atom, dead ones included: the number SAELens's evaluation reports).

    Keys: ``kind`` (``features`` | ``planes``), a :class:`husai.records.Stat` per
    scalar of :func:`feature_recovery` (``mcc``, ``recovered_fraction``,
    ``uniqueness``, ``mcc_all_atoms``) or :func:`plane_recovery`
    (``in_plane_fraction``, ``planes_covered``), and ``per_seed`` (seed -> scalars).
    """
    boot = {"n_boot": n_boot, "seed": boot_seed}
    per_seed: dict[str, dict[str, float]] = {}
    if "features" in truth:
        kind, scalars = "features", ("mcc", "recovered_fraction", "uniqueness", "mcc_all_atoms")
        for seed, dec, live in zip(seeds, decoders, lives, strict=True):
            rec = feature_recovery(dec, truth["features"], live)
            every = feature_recovery(dec, truth["features"], None)
            per_seed[str(int(seed))] = {
                "mcc": float(rec["mcc"]),
                "recovered_fraction": float(rec["recovered_fraction"]),
                "uniqueness": float(rec["uniqueness"]),
                "mcc_all_atoms": float(every["mcc"]),
            }
    elif "planes" in truth:
        kind, scalars = "planes", ("in_plane_fraction", "planes_covered")
        for seed, dec, live in zip(seeds, decoders, lives, strict=True):
            rec = plane_recovery(dec, truth["planes"], live)
            per_seed[str(int(seed))] = {k: float(rec[k]) for k in scalars}
    else:
        return None
    out: dict[str, Any] = {"kind": kind}
    for key in scalars:
        out[key] = value_stats([v[key] for v in per_seed.values()], **boot).to_dict()
    out["per_seed"] = per_seed
    return out


def saelens_synthetic_eval(
    sae: Any, truth: dict[str, torch.Tensor], n_samples: int, seed: int
) -> dict[str, float]:
    """SAELens's own ground-truth evaluation of one saved SAE (a ``sae_lens.SAE``) on
    the synthetic domain of ``truth``: ``sae_lens.synthetic.eval_sae_on_synthetic_data``
    on ``n_samples`` fresh samples of the same generator (drawn under ``seed``, in a
    forked RNG). Returns its ``mcc`` (every atom), ``uniqueness``, the classification
    ``f1``, ``precision``, ``recall``, ``dead_latents`` and ``explained_variance``."""
    from sae_lens.synthetic import eval_sae_on_synthetic_data

    from husai.domains import synthetic_generator

    fd, gen = synthetic_generator(truth)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        result = eval_sae_on_synthetic_data(sae, fd, gen, num_samples=n_samples)
    c = result.classification
    return {
        "mcc": float(result.mcc),
        "uniqueness": float(result.uniqueness),
        "f1": float(c.f1_score),
        "precision": float(c.precision),
        "recall": float(c.recall),
        "dead_latents": int(result.dead_latents),
        "explained_variance": float(result.explained_variance),
    }


# ----------------------------------------------------------------------------- privileged basis

NEURON_COS = 0.9  # a unit atom is aligned with neuron j when |a_j| (its |cos| with e_j) >= this


def neuron_alignment(
    decoders: Sequence[Atoms],
    lives: Sequence[torch.Tensor],
    seeds: Sequence[int],
    basis: torch.Tensor | None = None,
    *,
    threshold: float = NEURON_COS,
    n_boot: int = N_BOOT,
    boot_seed: int = BOOT_SEED,
) -> dict[str, Any]:
    """Whether the live atoms are single coordinates of the activation space (neurons, at
    a hook with a privileged basis such as ``mlp.hook_post``), and whether two seeds pick
    the same ones: a measure no rotation of the data can fool, because it is tied to the
    basis the model computes in.

    A unit atom's alignment is its largest ``|a_j|`` (its ``|cos|`` with the nearest
    standard basis vector e_j); it is *aligned* with neuron j when that is >=
    ``threshold``. Per seed (Stat over seeds): ``alignment`` (mean over live atoms),
    ``aligned_fraction`` (share of live atoms aligned), ``neurons_found`` (distinct
    neurons some live atom is aligned with). Per seed pair: ``shared_neurons``, the
    Jaccard index of the two seeds' sets of neurons found (None when neither finds one).
    With ``basis`` (the data's principal subspace): ``subspace_alignment`` and
    ``subspace_aligned_fraction`` of the count-matched random atoms of
    :func:`live_stability` (the same seeds), the level a dictionary without the basis's
    structure reaches.
    """
    from husai.stats import pair_matrix, pair_stats

    n = len(decoders)
    if n < 2 or len(lives) != n or len(seeds) != n:
        raise ValueError(
            f"need >= 2 seeds with a live mask each, got {n}, {len(lives)}, {len(seeds)}"
        )
    boot = {"n_boot": n_boot, "seed": boot_seed}
    rows: list[dict[str, float]] = []
    found: list[set[int]] = []
    base: list[dict[str, float]] = []
    for i, (dec, live, seed) in enumerate(zip(decoders, lives, seeds, strict=True)):
        atoms = unit_rows(live_atoms(dec, live, f"decoders[{i}]"))
        if atoms.shape[0] == 0:
            raise ValueError(f"seed {seed} has no live latent: nothing to compare")
        best, which = atoms.abs().max(dim=1)
        aligned = best >= threshold
        found.append(set(which[aligned].tolist()))
        rows.append(
            {
                "alignment": float(best.mean()),
                "aligned_fraction": float(aligned.double().mean()),
                "neurons_found": float(len(found[-1])),
            }
        )
        if basis is not None:
            rand = unit_rows(subspace_dictionary(int(atoms.shape[0]), basis, int(seed)))
            rb = rand.abs().max(dim=1).values
            base.append(
                {
                    "alignment": float(rb.mean()),
                    "aligned_fraction": float((rb >= threshold).double().mean()),
                }
            )
    jac = pair_matrix(n)
    for i in range(n):
        for j in range(i + 1, n):
            union = found[i] | found[j]
            jac[i, j] = jac[j, i] = np.nan if not union else len(found[i] & found[j]) / len(union)
    out: dict[str, Any] = {"seeds": [int(s) for s in seeds], "threshold": float(threshold)}
    for key in ("alignment", "aligned_fraction", "neurons_found"):
        out[key] = value_stats([r[key] for r in rows], **boot).to_dict()
    out["shared_neurons"] = pair_stats(jac, **boot)
    for key in ("alignment", "aligned_fraction"):
        out[f"subspace_{key}"] = (
            value_stats([b[key] for b in base], **boot).to_dict() if base else None
        )
    out["per_seed"] = {str(int(s)): r for s, r in zip(seeds, rows, strict=True)}
    return out
