"""Section "Ground-truth recovery": coverage, purity and decoder alignment per config."""

from __future__ import annotations

from dataclasses import dataclass

from paper import schema as sc
from paper.cite import Citer
from paper.figures import RECOVERY
from paper.metrics import Metrics
from paper.report.common import ci_text, fig_ref

METRICS = ("key_frequency_coverage", "pure_latent_fraction", "decoder_alignment")


@dataclass(frozen=True)
class Row:
    name: str
    stats: tuple[sc.Stat | None, ...]  # per METRICS; None: not in the file
    random_alignment: sc.Stat | None  # decoder alignment of a random dictionary


@dataclass(frozen=True)
class Facts:
    rows: tuple[Row, ...]


def decide(m: Metrics) -> Facts:
    return Facts(
        tuple(
            Row(
                name,
                tuple(sc.optional(sc.stat, m, RECOVERY, path, k) for k in METRICS),
                sc.optional(sc.baseline, m, RECOVERY, path, "random", "decoder_alignment"),
            )
            for name, path in sc.configs(m, RECOVERY)
        )
    )


HEAD = (
    "| config | key-frequency coverage | pure-latent fraction | decoder alignment | "
    "random dictionary |\n| --- | --- | --- | --- | --- |\n"
)


def render(c: Citer, f: Facts, build) -> str:
    rows = []
    for row in f.rows:
        cells = [f"`{row.name}`"] + [ci_text(c, s) if s else "n/a" for s in row.stats]
        b = row.random_alignment
        cells.append(c.num(RECOVERY, b.mean, ".3f") if b else "n/a")
        rows.append("| " + " | ".join(cells) + " |\n")
    return HEAD + "".join(rows) + f"\n({fig_ref(build, 'fig6_recovery')}.)\n"


def section(c: Citer, build) -> str:
    return render(c, decide(c.m), build)
