"""Section "Architectures at matched L0": each architecture's ratio at the target L0."""

from __future__ import annotations

from dataclasses import dataclass

from paper.cite import Citer
from paper.errors import Skip
from paper.figures import SWEEP
from paper.metrics import JsonPath, Metrics
from paper.report.common import cell, row_ci

WINS = "architectures_at_matched_l0"


@dataclass(frozen=True)
class Comparison:
    """One entry of ``matched_l0``."""

    path: JsonPath
    present: tuple[bool, ...]  # per architecture of Facts.architectures: it has a config
    winner: str  # ``best_architecture``, as the sweep summary decided it


@dataclass(frozen=True)
class Facts:
    architectures: tuple[str, ...]  # every architecture compared, sorted
    comparisons: tuple[Comparison, ...]
    summary: tuple[str, ...]  # architectures of ``architectures_at_matched_l0``, in file order


def decide(m: Metrics) -> Facts:
    comps = m.get(SWEEP, ("matched_l0",))
    if not comps:
        raise Skip(f"{SWEEP}: no comparison at matched L0")
    archs = sorted({a for comp in comps for a in comp["architectures"]})
    return Facts(
        architectures=tuple(archs),
        comparisons=tuple(
            Comparison(
                ("matched_l0", i),
                tuple(a in comp["architectures"] for a in archs),
                comp["best_architecture"],
            )
            for i, comp in enumerate(comps)
        ),
        summary=tuple(m.get(SWEEP, (WINS,))),
    )


def render(c: Citer, f: Facts, build) -> str:
    archs = f.architectures
    head = (
        "| d_sae | target L0 | "
        + " | ".join(archs)
        + " | best |\n| --- | --- | "
        + " | ".join("---" for _ in archs)
        + " | --- |\n"
    )
    out = []
    for comp in f.comparisons:
        p = comp.path
        cells = [c.num(SWEEP, (*p, "d_sae"), "d"), c.num(SWEEP, (*p, "target_l0"), "g")]
        for a, present in zip(archs, comp.present, strict=True):
            if not present:
                cells.append("")
                continue
            q = (*p, "architectures", a)
            cells.append(f"{row_ci(c, q, 'ratio', 'ratio_ci')} (L0 {cell(c, q, 'l0', '.1f')})")
        cells.append(comp.winner)
        out.append("| " + " | ".join(cells) + " |\n")
    text = (
        "Trained / isotropic PWMCC ratio [95% CI] of each architecture's configuration "
        "whose measured L0 is nearest the target:\n\n" + head + "".join(out)
    )
    if f.summary:
        text += (
            "\n| architecture | comparisons | wins | mean ratio |\n| --- | --- | --- | --- |\n"
            + "".join(
                f"| {a} | {c.num(SWEEP, (WINS, a, 'n_comparisons'), 'd')} | "
                f"{c.num(SWEEP, (WINS, a, 'wins'), 'd')} | "
                f"{c.num(SWEEP, (WINS, a, 'mean_ratio'), '.2f')} |\n"
                for a in f.summary
            )
        )
    return text


def section(c: Citer, build) -> str:
    return render(c, decide(c.m), build)
