"""Helpers shared by the analysis stages dynamics, geometry and predictors:
loading one configuration's SAEs and summarising per-pair and per-seed values."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from husai.errors import HusaiError


def load_config_saes(models: Path, name: str, seeds: tuple[int, ...], d_in: int):
    """The SAEs of configuration ``name`` from ``models/<name>/seed*``, stacked in the
    order of ``seeds``; a HusaiError when the folder does not hold exactly those seeds
    (stale checkpoints: rerun stage saes)."""
    from stages._artifacts import load_saes

    sae = load_saes(models / name, d_in)
    if sorted(sae.seeds) != sorted(seeds):
        raise HusaiError(f"{models / name}: checkpoints for seeds {list(sae.seeds)} but params "
                         f"list {list(seeds)} (run stage saes, or `dvc repro`)")
    order = [sae.seeds.index(s) for s in seeds]
    from husai.sae import BatchedSAE

    return BatchedSAE.stack([sae.select(i) for i in order])


def pair_stats(matrix: np.ndarray) -> dict[str, Any]:
    """:func:`husai.stats.seed_stats` of an ``[n, n]`` pair matrix; where some pairs are
    undefined (NaN) the mean and std of the defined ones, without an interval."""
    from husai.stats import seed_stats

    m = np.asarray(matrix, dtype=np.float64)
    n = m.shape[0]
    values = m[np.triu_indices(n, k=1)]
    ok = np.isfinite(values)
    if ok.all():
        return seed_stats(m).to_dict()
    v = values[ok]
    return {"mean": float(v.mean()) if len(v) else None,
            "std": float(v.std(ddof=1)) if len(v) > 1 else None,
            "ci_low": None, "ci_high": None, "n_seeds": n, "n_pairs": len(v)}


def per_seed_stats(values: list[float | None]) -> dict[str, Any]:
    """:func:`husai.stats.value_stats` of per-seed values, skipping undefined ones
    (None everywhere when none is defined)."""
    from husai.stats import value_stats

    v = [float(x) for x in values if x is not None and np.isfinite(x)]
    if not v:
        return {"mean": None, "std": None, "ci_low": None, "ci_high": None,
                "n_seeds": 0, "n_pairs": None}
    return value_stats(v).to_dict()


def pair_matrix(n: int) -> np.ndarray:
    """An ``[n, n]`` matrix of NaN to fill pair by pair."""
    return np.full((n, n), np.nan)
