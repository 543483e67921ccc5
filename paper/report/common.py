"""Helpers shared by several report sections: figure references, CIs, the two comparisons.

The comparisons (:func:`above`, :func:`relation`) are decisions: they read the cited
values and return a boolean or a :data:`Relation`, never words. The sections' wording
turns those into text with :data:`ABOVE_BOTH` and :data:`RELATION_TEXT`. The other
helpers only format cited numbers (:func:`span` shows one value where the extremes
print the same: a choice of display, not a finding).
"""

from __future__ import annotations

from typing import Literal

from paper import schema as sc
from paper.cite import Citer
from paper.figures import SWEEP
from paper.metrics import JsonPath, Metrics

PARAMS = "params.yaml"

Relation = Literal["above", "below", "within", "no_ci"]
"""A trained CI against a reference mean: above it, below it, containing it, or no CI."""

RELATION_TEXT: dict[Relation, str] = {
    "above": "above",
    "below": "below",
    "within": "not distinguishable from",
    "no_ci": "(no CI) vs",
}
ABOVE_BOTH: dict[bool | None, str] = {
    True: "above both",
    False: "**not** above both",
    None: "no CI",
}


def above(m: Metrics, trained: sc.Stat, *baselines: sc.Stat | None) -> bool | None:
    """True when the trained CI lies above every baseline mean (None: no CI to tell)."""
    _, lo, _ = trained.values(m)
    if lo is None:
        return None
    means = [b.values(m)[0] for b in baselines if b is not None]
    return all(mb is not None and lo > mb for mb in means)


def relation(m: Metrics, trained: sc.Stat, base: sc.Stat) -> Relation:
    """``above`` / ``below`` the baseline mean when the CI excludes it, else ``within``."""
    _, lo, hi = trained.values(m)
    bm = base.values(m)[0]
    if lo is None or hi is None or bm is None:
        return "no_ci"
    if lo > bm:
        return "above"
    if hi < bm:
        return "below"
    return "within"


def fig_ref(build, name: str) -> str:
    """``Figure N`` if it was rendered, else a note that it is pending."""
    number = name[3:].split("_")[0]
    if name in build.rendered:
        return f"Figure {number} (`{name}`)"
    return f"Figure {number} (not rendered: `{build.skipped.get(name, 'unknown')}`)"


def ci_text(c: Citer, s: sc.Stat, fmt: str = ".3f") -> str:
    """``mean [low, high]`` (``mean`` alone without a CI), every number cited."""
    text = c.num(s.file, s.mean, fmt)
    if s.low is not None and s.high is not None:
        text += f" [{c.num(s.file, s.low, fmt)}, {c.num(s.file, s.high, fmt)}]"
    return text


def span(c: Citer, refs, fmt: str) -> str:
    """``min–max`` of cited values, or the one value when they agree at ``fmt``."""
    vals = [c.value(f, p) for f, p in refs]
    if (
        vals
        and all(isinstance(v, int | float) for v in vals)
        and format(min(vals), fmt) == format(max(vals), fmt)
    ):
        return c.derived("mean", refs, fmt)
    return f"{c.derived('min', refs, fmt)}–{c.derived('max', refs, fmt)}"


def row_ci(
    c: Citer, path: JsonPath, key: str, ci_key: str, fmt: str = ".2f", file: str = SWEEP
) -> str:
    """A sweep row's value with its CI, ``n/a`` where the value is null."""
    if c.m.get(file, (*path, key)) is None:
        return "n/a"
    return ci_text(c, sc.row_stat(c.m, file, path, key, ci_key), fmt)


def cell(c: Citer, path: JsonPath, key: str, fmt: str, file: str = SWEEP) -> str:
    return c.num(file, (*path, key), fmt)


def names(xs) -> str:
    """Configuration names as code: ``\\`a\\`, \\`b\\```."""
    return ", ".join(f"`{n}`" for n in xs)


def table(rows) -> str:
    """A two-column ``| quantity | value |`` table."""
    return "| quantity | value |\n| --- | --- |\n" + "".join(f"| {a} | {b} |\n" for a, b in rows)
