"""RQ2 "Architectures compared at matched L0": the sweep's wins, and the baseline SAEs
against their baselines (the SCIENCE.md rule).

Decided here: in how many matched-L0 comparisons the winner's CI lies above every other
architecture's CI (and whether that is at most half of them: "mostly
indistinguishable"), and, per baseline configuration, whether its PWMCC CI lies above
the isotropic and untrained baselines and where it lies against the data-subspace one.
The winner of a comparison is the sweep summary's ``best_architecture``.

The answer leads with the atoms beyond the data's symmetry (SCIENCE.md section 9): per
architecture of the sweep, how many reconstructing configurations have live atoms more
stable than the shift null and their mean live PWMCC minus null; at matched L0, which
architecture has the larger excess over the null. Decided here: the architecture with the
most configurations above the null (None when no architecture has one). The all-atom
comparison follows, labelled secondary.
"""

from __future__ import annotations

from dataclasses import dataclass

from paper import schema as sc
from paper.cite import Citer
from paper.errors import Skip
from paper.figures import SAES, STABILITY, SWEEP
from paper.metrics import JsonPath, Metrics
from paper.report.common import (
    ABOVE_BOTH,
    RELATION_TEXT,
    Relation,
    above,
    ci_text,
    fig_ref,
    relation,
)

Ref = tuple[str, JsonPath]
WINS = "architectures_at_matched_l0"


@dataclass(frozen=True)
class Matched:
    """The sweep's comparisons at matched L0."""

    architectures: tuple[str, ...]  # of architectures_at_matched_l0, in file order
    decisive: tuple[Ref, ...]  # winners whose CI lies above every other architecture's CI
    comparisons: tuple[Ref, ...]  # one per comparison (its d_sae), to count them

    @property
    def mostly_indistinguishable(self) -> bool:
        """At most half of the comparisons have a winner clear of the others."""
        return 2 * len(self.decisive) <= len(self.comparisons)


@dataclass(frozen=True)
class Baseline:
    """A baseline configuration of stability.json."""

    name: str
    pwmcc: sc.Stat
    ratio: sc.Stat | None  # trained / isotropic
    shared: sc.Stat | None  # shared fraction
    l0: tuple[Ref, ...] | None  # its seeds' L0 in saes.json (None: not there)
    above_both: bool | None  # CI above the isotropic and untrained means (None: no CI)
    subspace: Relation | None  # against the data-subspace mean (None: no such baseline)


@dataclass(frozen=True)
class ArchLive:
    architecture: str
    above: tuple[Ref, ...]  # reconstructing configurations above the shift null
    rows: tuple[Ref, ...]  # reconstructing configurations with a null (their live excess)


@dataclass(frozen=True)
class Live:
    archs: tuple[ArchLive, ...]
    leader: str | None  # most configurations above the null (None: none above, or a tie)
    matched_excess: dict[str, tuple[Ref, ...]]  # architecture -> comparisons it leads (no tie)
    matched: tuple[Ref, ...]  # the matched-L0 comparisons with two excesses


@dataclass(frozen=True)
class Facts:
    matched: Matched | None  # None: no sweep, or no comparison at matched L0
    baselines: tuple[Baseline, ...] | None  # None: no stability.json
    live: Live | None = None  # None: a sweep without the live measures


def decide_live(m: Metrics) -> Live | None:
    rows = [(p, r) for p, r in sc.rows(m, SWEEP) if r.get("live_excess") is not None]
    if not rows:
        return None
    archs = []
    for a in sorted({r["architecture"] for _, r in rows}):
        mine = [(p, r) for p, r in rows if r["architecture"] == a and r["reconstructs"]]
        archs.append(
            ArchLive(
                a,
                tuple((SWEEP, (*p, "live_excess")) for p, r in mine if r["above_shift_null"]),
                tuple((SWEEP, (*p, "live_excess")) for p, _ in mine),
            )
        )
    counts = {a.architecture: len(a.above) for a in archs}
    top = max(counts.values())
    leaders = [a for a, n in counts.items() if n == top]
    excess = {r["config"]: r["live_excess"] for _, r in rows}
    led: dict[str, list[Ref]] = {a.architecture: [] for a in archs}
    matched: list[Ref] = []
    for i, comp in enumerate(m.get(SWEEP, ("matched_l0",))):
        vals = {
            a: excess[v["config"]]
            for a, v in comp["architectures"].items()
            if v["config"] in excess and a in led
        }
        if len(vals) >= 2:
            ref = (SWEEP, ("matched_l0", i, "d_sae"))
            matched.append(ref)
            best = max(vals.values())
            first = [a for a, v in vals.items() if v == best]
            if len(first) == 1:  # a tie leads nothing
                led[first[0]].append(ref)
    return Live(
        tuple(archs),
        leaders[0] if top > 0 and len(leaders) == 1 else None,
        {a: tuple(refs) for a, refs in led.items()},
        tuple(matched),
    )


def decisive(comps) -> list[Ref]:
    """Comparisons whose winner's CI lies above the CI of every other architecture."""
    out = []
    for i, comp in enumerate(comps):
        arch = comp["architectures"]
        win = comp["best_architecture"]
        if win not in arch or arch[win]["ratio_ci"] is None:
            continue
        lo = arch[win]["ratio_ci"][0]
        others = [
            a["ratio_ci"][1] for n, a in arch.items() if n != win and a["ratio_ci"] is not None
        ]
        if others and all(lo > h for h in others):
            out.append((SWEEP, ("matched_l0", i, "architectures", win, "ratio")))
    return out


def decide(m: Metrics) -> Facts:
    matched = None
    if m.exists(SWEEP):
        summ = m.get(SWEEP, (WINS,))
        comps = m.get(SWEEP, ("matched_l0",))
        wins = decisive(comps)
        if comps and summ:
            matched = Matched(
                tuple(summ),
                tuple(wins),
                tuple((SWEEP, ("matched_l0", i, "d_sae")) for i in range(len(comps))),
            )
    if not m.exists(STABILITY):
        if matched is None:
            raise Skip(f"{STABILITY} is not there yet")
        return Facts(matched, None)
    baselines = []
    for name, path in sc.configs(m, STABILITY):
        t = sc.stat(m, STABILITY, path, "pwmcc")
        bs = [
            sc.optional(sc.baseline, m, STABILITY, path, k, "pwmcc")
            for k in ("random", "untrained")
        ]
        sub = sc.optional(sc.baseline, m, STABILITY, path, "subspace_random", "pwmcc")
        seeds = sc.sae_seed_paths(m, name) if m.exists(SAES) else []
        baselines.append(
            Baseline(
                name=name,
                pwmcc=t,
                ratio=sc.optional(sc.ratio, m, STABILITY, path, "pwmcc", "random"),
                shared=sc.optional(sc.stat, m, STABILITY, path, "shared_fraction"),
                l0=tuple((SAES, (*p, "metrics", "l0")) for p in seeds) if seeds else None,
                above_both=above(m, t, *bs),
                subspace=None if sub is None else relation(m, t, sub),
            )
        )
    return Facts(matched, tuple(baselines), decide_live(m) if m.exists(SWEEP) else None)


def render_live(c: Citer, f: Live) -> str:
    per = "; ".join(
        f"{a.architecture}: {c.derived('count', a.above, 'd')} of "
        f"{c.derived('count', a.rows, 'd')} (mean live PWMCC minus null "
        f"{c.derived('mean', a.rows, '+.3f')})"
        for a in f.archs
    )
    text = (
        "Configurations of the sweep whose live atoms are more stable than the shift null "
        f"(of those that reconstruct): {per}. "
    )
    text += (
        f"**{f.leader}** has the most. "
        if f.leader is not None
        else "**No architecture stands out**: "
        + (
            "none has a configuration above the null. "
            if not any(a.above for a in f.archs)
            else "the counts tie. "
        )
    )
    if f.matched:
        text += (
            f"At matched L0 ({c.derived('count', f.matched, 'd')} comparisons), the larger "
            "live PWMCC minus null: "
            + "; ".join(
                f"{a} in {c.derived('count', refs, 'd')}" for a, refs in f.matched_excess.items()
            )
            + ". "
        )
    return text + (
        "\n\n*All atoms (secondary: trained / isotropic PWMCC, which SCIENCE.md section 8 "
        "shows tracks the data's low rank):* "
    )


def render(c: Citer, f: Facts, build) -> str:
    text = "" if f.live is None else render_live(c, f.live)
    if f.matched is not None:
        w = f.matched
        wins = "; ".join(
            f"{a} in {c.num(SWEEP, (WINS, a, 'wins'), 'd')} of "
            f"{c.num(SWEEP, (WINS, a, 'n_comparisons'), 'd')}"
            for a in w.architectures
        )
        text += (
            "In the sweep, at matched L0 (same dictionary size, measured L0 within a "
            "factor of the target), the most stable architecture (highest trained / "
            f"isotropic ratio) is: {wins} comparisons. The winner's CI lies above every "
            f"other architecture's CI in {c.derived('count', w.decisive, 'd')} of "
            f"{c.derived('count', w.comparisons, 'd')} comparisons"
            + (
                ": at matched L0 the architectures are mostly indistinguishable by this measure. "
                if w.mostly_indistinguishable
                else ". "
            )
        )
    if f.baselines is None:
        return text.rstrip()
    parts = []
    for b in f.baselines:
        l0 = ", L0 " + c.derived("mean", b.l0, ".1f") if b.l0 else ""
        parts.append(
            f"`{b.name}`{l0}: PWMCC {ci_text(c, b.pwmcc)}"
            + (f", trained / isotropic {ci_text(c, b.ratio, '.2f')}" if b.ratio else "")
            + (f", shared fraction {ci_text(c, b.shared)}" if b.shared else "")
        )
    text += "The baseline SAEs (L0 as trained, not matched): " + "; ".join(parts) + ". "
    verdicts = []
    for b in f.baselines:
        word = ABOVE_BOTH[b.above_both]
        if b.subspace is not None:
            word += f", {RELATION_TEXT[b.subspace]} the data-subspace baseline"
        verdicts.append(f"`{b.name}` {word}")
    text += (
        "By the SCIENCE.md rule (CI above the isotropic and untrained baselines): "
        + "; ".join(verdicts)
        + f" ({fig_ref(build, 'fig3_baselines')})."
    )
    return text


def section(c: Citer, build) -> str:
    return render(c, decide(c.m), build)
