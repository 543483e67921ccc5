"""Where a number lives in the analysis stages' metric files, found defensively.

The figures and the report address values by json path (see :mod:`paper.metrics`);
this module finds those paths. The analysis files (stability, recovery, sweep,
dynamics, geometry, predictors) are keyed by SAE configuration, either at the top
level or under ``"configs"``; a statistic is either a number or a seed-statistics
object ``{"mean", "std", "ci_low", "ci_high"}`` (``husai.stats.SeedStats``; a
``"ci": [low, high]`` pair is accepted too); a baseline of metric M is found as
``random_M`` / ``untrained_M``, or under ``"random"`` / ``"untrained"`` (optionally
inside ``"baselines"``; ``subspace_random_M`` is the data-subspace baseline of
stage ``stability``). Anything else raises :class:`~paper.errors.Skip` naming
what is missing, so a figure is skipped with a reason instead of crashing.
``metrics/sweep.json`` is read by its documented ``rows`` (:func:`rows`,
:func:`row_stat`; schema in ``stages/sweep_summary.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from paper.errors import Skip
from paper.metrics import JsonPath, Metrics, lookup, number

CONTAINERS = ("configs", "by_config", "results")
SPARSITY_KEYS = ("k", "l1_coefficient", "l0_coefficient")
SPARSITY_LABEL = {"k": "k (active latents)", "l1_coefficient": "L1 coefficient",
                  "l0_coefficient": "L0 coefficient"}


def has(obj: Any, path: JsonPath) -> bool:
    try:
        lookup(obj, path)
    except Skip:
        return False
    return True


def configs(m: Metrics, file: str, marker: str | None = None) -> list[tuple[str, JsonPath]]:
    """``[(config name, json path of its entry)]`` in file order.

    Entries are the mapping values (under one of :data:`CONTAINERS` if present)
    that are mappings themselves; with ``marker``, only those holding that key
    somewhere within two levels.
    """
    doc = m.json(file)
    if not isinstance(doc, Mapping):
        raise Skip(f"{file}: top level is not an object")
    prefix: JsonPath = ()
    for c in CONTAINERS:
        if isinstance(doc.get(c), Mapping):
            prefix, doc = (c,), doc[c]
            break
    out = []
    for name, entry in doc.items():
        if not isinstance(entry, Mapping):
            continue
        if marker is not None and find(entry, marker) is None:
            continue
        out.append((name, (*prefix, name)))
    if not out:
        raise Skip(f"{file}: no configuration entries" + (f" with {marker}" if marker else ""))
    return out


def find(entry: Any, key: str, depth: int = 2) -> JsonPath | None:
    """Relative path of ``key`` in ``entry`` or in its sub-objects (breadth first)."""
    if not isinstance(entry, Mapping):
        return None
    if key in entry:
        return (key,)
    if depth <= 1:
        return None
    for name, sub in entry.items():
        if isinstance(sub, Mapping) and key in sub:
            return (name, key)
    return None


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


def stat_at(m: Metrics, file: str, path: JsonPath) -> Stat:
    node = m.get(file, path)
    if isinstance(node, Mapping):
        for key in ("mean", "ratio", "value"):
            if key in node:
                mean = (*path, key)
                break
        else:
            raise Skip(f"{file}: {'/'.join(map(str, path))} has no mean")
        if "ci_low" in node and "ci_high" in node:
            return Stat(file, mean, (*path, "ci_low"), (*path, "ci_high"))
        lo_key = f"{key}_ci_low" if key != "mean" else None
        if lo_key and lo_key in node and f"{key}_ci_high" in node:
            return Stat(file, mean, (*path, lo_key), (*path, f"{key}_ci_high"))
        ci = node.get("ci")
        if isinstance(ci, list) and len(ci) == 2:
            return Stat(file, mean, (*path, "ci", 0), (*path, "ci", 1))
        return Stat(file, mean)
    number(node, f"{file}:{'/'.join(map(str, path))}")
    return Stat(file, path)


def stat(m: Metrics, file: str, entry: JsonPath, metric: str) -> Stat:
    """The statistic ``metric`` of a configuration entry."""
    rel = find(m.get(file, entry), metric)
    if rel is None:
        raise Skip(f"{file}: {'/'.join(map(str, entry))} has no {metric}")
    return stat_at(m, file, (*entry, *rel))


def baseline(m: Metrics, file: str, entry: JsonPath, kind: str, metric: str) -> Stat:
    """Baseline ``kind`` (random | untrained) of ``metric`` for a configuration entry."""
    node = m.get(file, entry)
    for rel in ((f"{kind}_{metric}",), (f"{metric}_{kind}",), (kind, metric),
                ("baselines", kind, metric), (f"{kind}_baseline", metric),
                ("baselines", f"{kind}_{metric}")):
        if has(node, rel):
            return stat_at(m, file, (*entry, *rel))
    rel = find(node, f"{kind}_{metric}")
    if rel is not None:
        return stat_at(m, file, (*entry, *rel))
    raise Skip(f"{file}: {'/'.join(map(str, entry))} has no {kind} baseline of {metric}")


def ratio(m: Metrics, file: str, entry: JsonPath, metric: str = "pwmcc",
          to: str = "random") -> Stat:
    """Trained / baseline ratio of ``metric``: ``<metric>_ratio_to_<to>`` or computed paths."""
    node = m.get(file, entry)
    for key in (f"{metric}_ratio_to_{to}", f"{metric}_ratio_{to}", f"ratio_to_{to}"):
        rel = find(node, key)
        if rel is not None:
            return stat_at(m, file, (*entry, *rel))
    raise Skip(f"{file}: {'/'.join(map(str, entry))} has no {metric}_ratio_to_{to}")


def optional(fn, *args, **kwargs):
    """``fn(*args)`` or None where it raises :class:`Skip`."""
    try:
        return fn(*args, **kwargs)
    except Skip:
        return None


def hyperparameter(m: Metrics, file: str, entry: JsonPath, key: str) -> JsonPath | None:
    """Json path of a configuration's hyperparameter (``d_sae``, ``k``, ``architecture`` ...)."""
    node = m.get(file, entry)
    for sub in ((), ("hyperparameters",), ("params",), ("config",), ("hp",)):
        if has(node, (*sub, key)):
            return (*entry, *sub, key)
    return None


def architecture_of(m: Metrics, file: str, entry: JsonPath, name: str) -> str:
    p = hyperparameter(m, file, entry, "architecture")
    if p is not None and isinstance(m.get(file, p), str):
        return m.get(file, p)
    sae_arch = saes_architecture(m, name)
    return sae_arch if sae_arch is not None else name


def saes_architecture(m: Metrics, config: str) -> str | None:
    if not m.exists("metrics/saes.json"):
        return None
    for entry in (m.json("metrics/saes.json").get("saes") or {}).values():
        if isinstance(entry, Mapping) and entry.get("config") == config:
            return entry.get("architecture")
    return None


def sae_seed_paths(m: Metrics, config: str) -> list[JsonPath]:
    """Json paths of ``metrics/saes.json`` entries of one configuration (one per seed)."""
    doc = m.json("metrics/saes.json")
    saes = doc.get("saes") if isinstance(doc, Mapping) else None
    if not isinstance(saes, Mapping):
        raise Skip("metrics/saes.json has no saes object")
    return [("saes", key) for key, e in saes.items()
            if isinstance(e, Mapping) and e.get("config") == config]


def sae_configs(m: Metrics) -> list[str]:
    doc = m.json("metrics/saes.json")
    saes = doc.get("saes") if isinstance(doc, Mapping) else None
    if not isinstance(saes, Mapping) or not saes:
        raise Skip("metrics/saes.json has no SAEs")
    names: list[str] = []
    for e in saes.values():
        if isinstance(e, Mapping) and isinstance(e.get("config"), str) and e["config"] not in names:
            names.append(e["config"])
    return names


# ----------------------------------------------------------------------------- known schemas
# The analysis stages document their files in their module docstrings; these read them.


def rows(m: Metrics, file: str = "metrics/sweep.json") -> list[tuple[JsonPath, Mapping]]:
    """``[(json path, row)]`` of the trained (not skipped) rows of ``metrics/sweep.json``."""
    node = m.get(file, ("rows",))
    if not isinstance(node, list):
        raise Skip(f"{file}: rows is not a list")
    out = [(("rows", i), r) for i, r in enumerate(node)
           if isinstance(r, Mapping) and not r.get("skipped")]
    if not out:
        raise Skip(f"{file}: no trained configuration in rows")
    return out


def skipped_rows(m: Metrics, file: str = "metrics/sweep.json") -> list[Mapping]:
    node = m.get(file, ("rows",))
    return [r for r in node if isinstance(r, Mapping) and r.get("skipped")] \
        if isinstance(node, list) else []


def row_stat(m: Metrics, file: str, path: JsonPath, key: str, ci_key: str | None = None) -> Stat:
    """A value of a row (``ratio``) with its CI list (``ratio_ci``) when that is a pair."""
    number(m.get(file, (*path, key)), f"{file}:{key}")
    ci = m.get(file, path).get(ci_key) if ci_key else None
    if isinstance(ci, list) and len(ci) == 2:
        return Stat(file, (*path, key), (*path, ci_key, 0), (*path, ci_key, 1))
    return Stat(file, (*path, key))
