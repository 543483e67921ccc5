"""Where a number lives in the metric files: the layouts of the metrics contract.

Every metric file follows its record in :mod:`husai.records` (the one module of
``husai`` that ``paper/`` imports; :mod:`paper.metrics` checks each file against it
when reading it), so the figures and the report address values by json paths that
exist, never by searching:

* configuration entries (:func:`configs`): the top-level keys of
  ``metrics/stability/modular.json`` and ``metrics/recovery.json``, the keys of ``"configs"``
  in ``metrics/dynamics.json``, ``geometry.json`` and ``predictors.json``;
* a statistic (:func:`stat_at`) is a :class:`husai.records.Stat` ``{"mean", "std",
  "ci": [low, high] | null, ...}`` (or null where it was not computed); a ratio
  (:func:`ratio_at`) a :class:`husai.records.Ratio` ``{"ratio", "ci", ...}``;
* a baseline of metric M (:func:`baseline`) is the entry's ``<kind>_M``, kind
  ``random`` / ``untrained`` / ``subspace_random`` (stability) or ``random``
  (recovery); a trained / baseline ratio (:func:`ratio`) is ``M_ratio_to_<kind>``;
* ``metrics/sweep.json`` rows (:func:`rows`) hold values with their CI beside them
  (``ratio`` and ``ratio_ci``, :func:`row_stat`).

Keys the contract marks optional (the data-subspace baseline) raise
:class:`~paper.errors.Skip` naming what is missing, so a figure or a table cell is left
out with a reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from paper.errors import Skip
from paper.metrics import JsonPath, Metrics, lookup, number

SAES = "metrics/saes/modular.json"
SPARSITY_KEYS = ("k", "l1_coefficient", "l0_coefficient")
SPARSITY_LABEL = {
    "k": "k (active latents)",
    "l1_coefficient": "L1 coefficient",
    "l0_coefficient": "L0 coefficient",
}
CONFIG_ROOT: dict[str, JsonPath] = {
    "metrics/stability/modular.json": (),
    "metrics/stability/modular_mlp.json": (),
    "metrics/stability/synthetic.json": (),
    "metrics/stability/circles.json": (),
    "metrics/recovery.json": (),
    "metrics/dynamics.json": ("configs",),
    "metrics/geometry.json": ("configs",),
    "metrics/predictors.json": ("configs",),
}
"""Json path of the configuration entries of each analysis file (husai.records)."""


def has(obj: Any, path: JsonPath) -> bool:
    try:
        lookup(obj, path)
    except Skip:
        return False
    return True


def _show(path: JsonPath) -> str:
    return "/".join(map(str, path))


def configs(m: Metrics, file: str) -> list[tuple[str, JsonPath]]:
    """``[(config name, json path of its entry)]`` of an analysis file, in file order."""
    root = CONFIG_ROOT[file]
    out = [(name, (*root, name)) for name in m.get(file, root)]
    if not out:
        raise Skip(f"{file}: no configuration entries")
    return out


@dataclass(frozen=True)
class Stat:
    """Json paths of a statistic's mean and (if any) confidence interval."""

    file: str
    mean: JsonPath
    low: JsonPath | None = None
    high: JsonPath | None = None

    def values(self, m: Metrics) -> tuple[float | None, float | None, float | None]:
        def get(p: JsonPath | None) -> float | None:
            return None if p is None else number(m.get(self.file, p), f"{self.file}:{p}")

        return get(self.mean), get(self.low), get(self.high)


def _with_ci(file: str, mean: JsonPath, ci: JsonPath, node: Mapping) -> Stat:
    if node[ci[-1]] is None:
        return Stat(file, mean)
    return Stat(file, mean, (*ci, 0), (*ci, 1))


def stat_at(m: Metrics, file: str, path: JsonPath) -> Stat:
    """The :class:`husai.records.Stat` at ``path`` (a null statistic has a null mean)."""
    node = m.get(file, path)
    if node is None:
        return Stat(file, path)
    return _with_ci(file, (*path, "mean"), (*path, "ci"), node)


def ratio_at(m: Metrics, file: str, path: JsonPath) -> Stat:
    """The ratio of the :class:`husai.records.Ratio` at ``path``, with its CI."""
    return _with_ci(file, (*path, "ratio"), (*path, "ci"), m.get(file, path))


def value_at(m: Metrics, file: str, path: JsonPath) -> Stat:
    """A plain number at ``path`` (no CI)."""
    number(m.get(file, path), f"{file}:{_show(path)}")
    return Stat(file, path)


def _key(m: Metrics, file: str, entry: JsonPath, key: str, what: str) -> JsonPath:
    if key not in m.get(file, entry):
        raise Skip(f"{file}: {_show(entry)} has no {what}")
    return (*entry, key)


def stat(m: Metrics, file: str, entry: JsonPath, metric: str) -> Stat:
    """The statistic ``metric`` of a configuration entry."""
    return stat_at(m, file, _key(m, file, entry, metric, metric))


def baseline(m: Metrics, file: str, entry: JsonPath, kind: str, metric: str) -> Stat:
    """Baseline ``kind`` of ``metric`` of a configuration entry: ``<kind>_<metric>``."""
    return stat_at(
        m, file, _key(m, file, entry, f"{kind}_{metric}", f"{kind} baseline of {metric}")
    )


def ratio(
    m: Metrics, file: str, entry: JsonPath, metric: str = "pwmcc", to: str = "random"
) -> Stat:
    """Trained / baseline ratio of ``metric``: the entry's ``<metric>_ratio_to_<to>``."""
    key = f"{metric}_ratio_to_{to}"
    return ratio_at(m, file, _key(m, file, entry, key, key))


def optional(fn, *args, **kwargs):
    """``fn(*args)`` or None where it raises :class:`Skip`."""
    try:
        return fn(*args, **kwargs)
    except Skip:
        return None


def sae_seed_paths(m: Metrics, config: str) -> list[JsonPath]:
    """Json paths of ``metrics/saes/modular.json`` entries of one configuration (one per seed)."""
    saes = m.get(SAES, ("saes",))
    return [("saes", key) for key, e in saes.items() if e["config"] == config]


def sae_configs(m: Metrics) -> list[str]:
    saes = m.get(SAES, ("saes",))
    if not saes:
        raise Skip(f"{SAES} has no SAEs")
    return list(dict.fromkeys(e["config"] for e in saes.values()))


# ----------------------------------------------------------------------------- metrics/sweep.json


def rows(m: Metrics, file: str = "metrics/sweep.json") -> list[tuple[JsonPath, Mapping]]:
    """``[(json path, row)]`` of the trained (not skipped) rows of ``metrics/sweep.json``."""
    out = [(("rows", i), r) for i, r in enumerate(m.get(file, ("rows",))) if not r["skipped"]]
    if not out:
        raise Skip(f"{file}: no trained configuration in rows")
    return out


def skipped_rows(m: Metrics, file: str = "metrics/sweep.json") -> list[Mapping]:
    return [r for r in m.get(file, ("rows",)) if r["skipped"]]


def row_stat(m: Metrics, file: str, path: JsonPath, key: str, ci_key: str | None = None) -> Stat:
    """A value of a sweep row (``ratio``) with its CI (``ratio_ci``) when that is not null."""
    number(m.get(file, (*path, key)), f"{file}:{key}")
    if ci_key is None or m.get(file, (*path, ci_key)) is None:
        return Stat(file, (*path, key))
    return Stat(file, (*path, key), (*path, ci_key, 0), (*path, ci_key, 1))
