"""RQ3 "Ground-truth recovery, and whether it goes with stability".

Decided here: whether the most stable baseline configuration (highest trained /
isotropic ratio) also has the highest key-frequency coverage, and, in the sweep,
how the mean coverage of the configurations above the data-subspace baseline compares
with that of the others (both below :data:`NEGLIGIBLE`: almost nothing recovered).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from paper import schema as sc
from paper.cite import Citer
from paper.errors import Skip
from paper.figures import RECOVERY, STABILITY, SWEEP
from paper.metrics import JsonPath, Metrics
from paper.report.common import ci_text, fig_ref

Ref = tuple[str, JsonPath]
NEGLIGIBLE = 0.1  # a mean coverage below this recovers almost none of the key frequencies
Sweep = Literal["none_recovered", "stabler_less", "stabler_more"]
SWEEP_TEXT: dict[Sweep, str] = {
    "none_recovered": "the short-trained sweep SAEs recover almost none of the key "
    "frequencies either way, stable or not. ",
    "stabler_less": "the stabler configurations recover **less** of the ground truth. ",
    "stabler_more": "the stabler configurations recover more of it. ",
}


@dataclass(frozen=True)
class Row:
    name: str
    coverage: sc.Stat
    ratio: sc.Stat | None  # trained / isotropic PWMCC (stability.json)
    alignment: sc.Stat | None
    random_alignment: sc.Stat | None


@dataclass(frozen=True)
class SweepCoverage:
    above: tuple[Ref, ...]  # coverage of the rows above the data-subspace baseline
    not_above: tuple[Ref, ...]  # ... of the rows not above it
    verdict: Sweep


@dataclass(frozen=True)
class Facts:
    rows: tuple[Row, ...]
    most_stable: str | None  # None: fewer than two configurations with both numbers
    most_stable_covers_most: bool  # the most stable one also has the highest coverage
    sweep: SweepCoverage | None


def decide(m: Metrics) -> Facts:
    rows = []
    for name, path in sc.configs(m, RECOVERY):
        if not m.exists(STABILITY) or name not in m.json(STABILITY):
            continue
        rows.append(
            Row(
                name,
                sc.stat(m, RECOVERY, path, "key_frequency_coverage"),
                sc.optional(sc.ratio, m, STABILITY, (name,), "pwmcc", "random"),
                sc.optional(sc.stat, m, RECOVERY, path, "decoder_alignment"),
                sc.optional(sc.baseline, m, RECOVERY, path, "random", "decoder_alignment"),
            )
        )
    if not rows:
        raise Skip(f"{RECOVERY} shares no configuration with {STABILITY}")
    valid = [
        (r.name, r.coverage.values(m)[0], r.ratio.values(m)[0])
        for r in rows
        if r.ratio is not None
        and r.coverage.values(m)[0] is not None
        and r.ratio.values(m)[0] is not None
    ]
    most_stable, agree = None, False
    if len(valid) >= 2:
        most_stable = max(valid, key=lambda v: v[2])[0]
        best_cov = max(v[1] for v in valid)
        agree = dict((n, cv) for n, cv, _ in valid)[most_stable] == best_cov
    return Facts(tuple(rows), most_stable, agree, decide_sweep(m))


def decide_sweep(m: Metrics) -> SweepCoverage | None:
    trained = sc.optional(sc.rows, m, SWEEP) if m.exists(SWEEP) else None
    if not (trained and any("above_subspace" in r for _, r in trained)):
        return None
    up = [
        (SWEEP, (*p, "coverage"))
        for p, r in trained
        if r.get("above_subspace") is True and r["coverage"] is not None
    ]
    down = [
        (SWEEP, (*p, "coverage"))
        for p, r in trained
        if r.get("above_subspace") is False and r["coverage"] is not None
    ]
    if not (up and down):
        return None
    mu = sum(m.get(f, p) for f, p in up) / len(up)
    md = sum(m.get(f, p) for f, p in down) / len(down)
    verdict: Sweep = (
        "none_recovered"
        if max(mu, md) < NEGLIGIBLE
        else "stabler_less"
        if mu < md
        else "stabler_more"
    )
    return SweepCoverage(tuple(up), tuple(down), verdict)


def render(c: Citer, f: Facts, build) -> str:
    text = (
        "Baseline SAEs: "
        + "; ".join(
            f"`{r.name}`: coverage {ci_text(c, r.coverage)}, decoder alignment "
            f"{ci_text(c, r.alignment) if r.alignment else 'n/a'} "
            f"(random {c.num(RECOVERY, r.random_alignment.mean, '.3f') if r.random_alignment else 'n/a'}), "
            f"trained / isotropic PWMCC {ci_text(c, r.ratio, '.2f') if r.ratio else 'n/a'}"
            for r in f.rows
        )
        + ". "
    )
    if f.most_stable is not None:
        text += (
            f"The most stable baseline configuration, `{f.most_stable}`, "
            f"{'also has' if f.most_stable_covers_most else 'does **not** have'} the highest coverage. "
        )
    if f.sweep is not None:
        s = f.sweep
        text += (
            f"In the sweep, the configurations above the data-subspace baseline have "
            f"mean coverage {c.derived('mean', s.above, '.2f')}, those not above it "
            f"{c.derived('mean', s.not_above, '.2f')}: " + SWEEP_TEXT[s.verdict]
        )
    return text + f"({fig_ref(build, 'fig6_recovery')}.)"


def section(c: Citer, build) -> str:
    return render(c, decide(c.m), build)
