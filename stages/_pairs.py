"""Loading one configuration's SAEs for the analysis stages geometry and predictors
(the statistics over pairs and seeds are :func:`husai.stats.pair_stats` and
:func:`husai.stats.per_seed_stats`)."""

from __future__ import annotations

from pathlib import Path

from husai.errors import HusaiError


def load_config_saes(models: Path, name: str, seeds: tuple[int, ...], d_in: int):
    """The SAEs of configuration ``name`` from ``models/<name>/seed*``, stacked in the
    order of ``seeds``; a HusaiError when the folder does not hold exactly those seeds
    (stale checkpoints: rerun stage saes)."""
    from stages._artifacts import load_saes

    sae = load_saes(models / name, d_in)
    if sorted(sae.seeds) != sorted(seeds):
        raise HusaiError(
            f"{models / name}: checkpoints for seeds {list(sae.seeds)} but params "
            f"list {list(seeds)} (run stage saes, or `dvc repro`)"
        )
    order = [sae.seeds.index(s) for s in seeds]
    from husai.sae import BatchedSAE

    return BatchedSAE.stack([sae.select(i) for i in order])
