"""Section "Controls": what the stability measures say where the answer is known.

Placed after the transformer and Fourier sections and before the first SAE result on
the modular model: the negative control is shaped like that model's activations (round
circles in orthogonal planes, as the Fourier section describes them), and every later
stability number is read against what the same measures give on planted features
(positive control, ``metrics/stability/synthetic.json``), on circles with nothing to
identify (negative control, ``metrics/stability/circles.json``) and across the
identifiability map (``metrics/identifiability.json``).

Decided here, from the values the text cites only:

* each comparison of a trained CI with a baseline (:func:`versus`): ``above`` only when
  the CI's lower bound exceeds the baseline's CI (its mean where it has none);
* the positive control: recovered fraction above one half (``most`` recovered), and
  SAELens's MCC agreeing with ours to the printed three decimals;
* the negative control: seeds sharing few atoms (shared fraction CI below the positive
  control's and its mean under one half) before the text calls it unidentifiable;
  most live atoms inside one plane or not;
* the map: the sign of the Spearman CI, the threshold or its absence;
* the modular SAEs: whether each configuration's shared fraction is nearer the negative
  control's or the positive control's, whether its live PWMCC reaches the map's
  threshold, and whether being above its own data-subspace baseline sets it apart from
  the negative control (which may be above its own as well).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from paper import schema as sc
from paper.cite import Citer
from paper.errors import Skip
from paper.figures import CIRCLES, IDMAP, STABILITY, SYNTHETIC
from paper.metrics import JsonPath, Metrics
from paper.report.common import ci_text, fig_ref, names

Versus = Literal["above", "below", "within", "no_ci"]
VERSUS_TEXT: dict[Versus, str] = {
    "above": "above it",
    "below": "below it",
    "within": "not distinguishable from it",
    "no_ci": "no CI to compare",
}
PRIMARY = "topk"  # the control configuration the prose reads (else the file's first)
HALF = 0.5  # "most": more than half
PRINTED = 0.0005  # half a unit of the third decimal, the precision MCCs are printed at
Sign = Literal["positive", "negative", "none", "no_ci"]
SIGN_TEXT: dict[Sign, str] = {
    "positive": "stabler cells recover more (CI above zero)",
    "negative": "stabler cells recover **less** (CI below zero)",
    "none": "the CI includes zero: across cells stability does **not** clearly go with recovery",
    "no_ci": "no CI",
}
Closer = Literal["negative", "positive", "tie"]


def versus(m: Metrics, trained: sc.Stat | None, base: sc.Stat | None) -> Versus:
    """The trained CI against the baseline: ``above`` / ``below`` only when it clears the
    baseline's CI (the baseline's mean where it has no CI)."""
    if trained is None or base is None:
        return "no_ci"
    _, lo, hi = trained.values(m)
    bm, blo, bhi = base.values(m)
    if lo is None or hi is None or bm is None:
        return "no_ci"
    if lo > (bm if bhi is None else bhi):
        return "above"
    if hi < (bm if blo is None else blo):
        return "below"
    return "within"


def _stat(m: Metrics, file: str, path: JsonPath) -> sc.Stat | None:
    """The Stat at ``path``, None where the key is absent or the statistic null."""
    try:
        node = m.get(file, path)
    except Skip:
        return None
    return None if node is None else sc.stat_at(m, file, path)


def _mean(m: Metrics, s: sc.Stat | None) -> float | None:
    return None if s is None else s.values(m)[0]


def _primary(m: Metrics, file: str) -> tuple[str, JsonPath]:
    entries = sc.configs(m, file)
    return next(((n, p) for n, p in entries if n == PRIMARY), entries[0])


@dataclass(frozen=True)
class SAELens:
    mcc: sc.Stat
    f1: sc.Stat
    ours: sc.Stat  # our MCC over all atoms, what SAELens's is compared with
    difference: JsonPath  # largest |SAELens - ours| over seeds
    agree: bool  # below PRINTED: equal at the printed precision


@dataclass(frozen=True)
class Positive:
    name: str
    d_sae: JsonPath
    pwmcc: sc.Stat
    random_pwmcc: sc.Stat | None
    stable: Versus  # PWMCC vs the isotropic baseline
    shared: sc.Stat | None
    random_shared: sc.Stat | None
    shares: Versus  # shared fraction vs the isotropic baseline
    mcc: sc.Stat | None
    recovered: sc.Stat | None
    most_recovered: bool | None  # recovered fraction > HALF; None: not in the file
    saelens: SAELens | None

    @property
    def works(self) -> bool:
        return self.stable == "above" and self.shares == "above" and bool(self.most_recovered)


@dataclass(frozen=True)
class Negative:
    name: str
    d_sae: JsonPath
    shared: sc.Stat | None
    unidentifiable: bool  # shared CI below the positive control's and mean < HALF
    live: sc.Stat
    subspace: sc.Stat | None  # count-matched random atoms in the data subspace
    live_vs_subspace: Versus
    in_plane: sc.Stat | None
    mostly_in_plane: bool | None


@dataclass(frozen=True)
class MapAnswer:
    n_cells: JsonPath
    n_not_converged: JsonPath
    stability: str  # names of the headline's measures (file values)
    recovery: str
    rho: sc.Stat
    sign: Sign
    threshold: JsonPath | None  # None: no stability level makes recovery reliable
    cells_above: JsonPath
    level: JsonPath


@dataclass(frozen=True)
class Modular:
    name: str
    live: sc.Stat
    subspace: sc.Stat | None
    live_vs_subspace: Versus
    shared: sc.Stat | None
    closer: Closer | None  # whose shared fraction is nearer; None: a value is missing
    reaches_threshold: bool | None  # live PWMCC mean >= the map's threshold
    n_live: sc.Stat | None = None
    distinct: sc.Stat | None = None  # distinct live directions (|cos| < 0.95)
    duplicated: bool = False  # fewer than half of the live atoms are distinct directions


@dataclass(frozen=True)
class Facts:
    positive: Positive
    negatives: tuple[Negative, ...]
    map: MapAnswer
    modular: tuple[Modular, ...] | None  # None: metrics/stability/modular.json not there

    @property
    def negative_above_subspace(self) -> bool:
        """Some negative-control configuration is above its data-subspace baseline."""
        return any(n.live_vs_subspace == "above" for n in self.negatives)


def decide_positive(m: Metrics) -> Positive:
    name, p = _primary(m, SYNTHETIC)
    pw = sc.stat(m, SYNTHETIC, p, "pwmcc")
    rnd = _stat(m, SYNTHETIC, (*p, "random_pwmcc"))
    shared = _stat(m, SYNTHETIC, (*p, "shared_fraction"))
    rshared = _stat(m, SYNTHETIC, (*p, "random_shared_fraction"))
    gt = (*p, "ground_truth")
    recovered = _stat(m, SYNTHETIC, (*gt, "recovered_fraction"))
    rec = _mean(m, recovered)
    lens = None
    ev = (*p, "saelens_eval")
    theirs, ours = _stat(m, SYNTHETIC, (*ev, "mcc")), _stat(m, SYNTHETIC, (*gt, "mcc_all_atoms"))
    if theirs is not None and ours is not None:
        diff = (*ev, "max_mcc_difference")
        lens = SAELens(
            theirs,
            sc.stat_at(m, SYNTHETIC, (*ev, "f1")),
            ours,
            diff,
            abs(m.get(SYNTHETIC, diff)) < PRINTED,
        )
    return Positive(
        name=name,
        d_sae=(*p, "d_sae"),
        pwmcc=pw,
        random_pwmcc=rnd,
        stable=versus(m, pw, rnd),
        shared=shared,
        random_shared=rshared,
        shares=versus(m, shared, rshared),
        mcc=_stat(m, SYNTHETIC, (*gt, "mcc")),
        recovered=recovered,
        most_recovered=None if rec is None else rec > HALF,
        saelens=lens,
    )


def decide_negatives(m: Metrics, positive: Positive) -> tuple[Negative, ...]:
    out = []
    for name, p in sc.configs(m, CIRCLES):
        shared = _stat(m, CIRCLES, (*p, "shared_fraction"))
        sm = _mean(m, shared)
        live = sc.stat_at(m, CIRCLES, (*p, "live", "live_pwmcc"))
        sub = _stat(m, CIRCLES, (*p, "live", "subspace_live_pwmcc"))
        plane = _stat(m, CIRCLES, (*p, "ground_truth", "in_plane_fraction"))
        pm = _mean(m, plane)
        out.append(
            Negative(
                name=name,
                d_sae=(*p, "d_sae"),
                shared=shared,
                unidentifiable=versus(m, shared, positive.shared) == "below"
                and sm is not None
                and sm < HALF,
                live=live,
                subspace=sub,
                live_vs_subspace=versus(m, live, sub),
                in_plane=plane,
                mostly_in_plane=None if pm is None else pm > HALF,
            )
        )
    return tuple(out)


def decide_map(m: Metrics) -> MapAnswer:
    head = ("headline",)
    rho = (*head, "spearman_rho")
    ci = m.get(IDMAP, (*head, "spearman_ci"))
    stat = sc.Stat(
        IDMAP, rho, *(((*head, "spearman_ci", 0), (*head, "spearman_ci", 1)) if ci else ())
    )
    r, lo, hi = stat.values(m)
    sign: Sign = (
        "no_ci"
        if r is None or lo is None or hi is None
        else "positive"
        if lo > 0
        else "negative"
        if hi < 0
        else "none"
    )
    has_threshold = m.get(IDMAP, (*head, "threshold")) is not None
    return MapAnswer(
        n_cells=("n_cells",),
        n_not_converged=("n_not_converged",),
        stability=m.get(IDMAP, (*head, "stability")),
        recovery=m.get(IDMAP, (*head, "recovery")),
        rho=stat,
        sign=sign,
        threshold=(*head, "threshold") if has_threshold else None,
        cells_above=(*head, "cells_above"),
        level=("recovered_level",),
    )


def _closer(value: float | None, negative: float | None, positive: float | None) -> Closer | None:
    if value is None or negative is None or positive is None:
        return None
    dn, dp = abs(value - negative), abs(value - positive)
    return "negative" if dn < dp else "positive" if dp < dn else "tie"


def decide_modular(
    m: Metrics, positive: Positive, negative: Negative, threshold: JsonPath | None
) -> tuple[Modular, ...] | None:
    if not m.exists(STABILITY):
        return None
    t = None if threshold is None else m.get(IDMAP, threshold)
    out = []
    for name, p in sc.configs(m, STABILITY):
        live = _stat(m, STABILITY, (*p, "live", "live_pwmcc"))
        if live is None:
            continue
        sub = _stat(m, STABILITY, (*p, "live", "subspace_live_pwmcc"))
        shared = _stat(m, STABILITY, (*p, "shared_fraction"))
        n_live = _stat(m, STABILITY, (*p, "live", "n_live"))
        distinct = _stat(m, STABILITY, (*p, "live", "distinct_live"))
        nm, dm = _mean(m, n_live), _mean(m, distinct)
        lm = _mean(m, live)
        out.append(
            Modular(
                name=name,
                live=live,
                subspace=sub,
                live_vs_subspace=versus(m, live, sub),
                shared=shared,
                closer=_closer(
                    _mean(m, shared), _mean(m, negative.shared), _mean(m, positive.shared)
                ),
                reaches_threshold=None if t is None or lm is None else lm >= t,
                n_live=n_live,
                distinct=distinct,
                duplicated=nm is not None and dm is not None and dm < HALF * nm,
            )
        )
    if not out:
        raise Skip(f"{STABILITY}: no configuration with live-latent stability")
    return tuple(out)


def decide(m: Metrics) -> Facts:
    positive = decide_positive(m)
    negatives = decide_negatives(m, positive)
    answer = decide_map(m)
    primary = next((n for n in negatives if n.name == PRIMARY), negatives[0])
    return Facts(
        positive, negatives, answer, decide_modular(m, positive, primary, answer.threshold)
    )


# ----------------------------------------------------------------------------- wording


def _ci(c: Citer, s: sc.Stat | None, fmt: str = ".3f") -> str:
    return ci_text(c, s, fmt) if s is not None else "n/a"


def _num(c: Citer, s: sc.Stat | None, fmt: str = ".3f") -> str:
    return c.num(s.file, s.mean, fmt) if s is not None else "n/a"


def render_positive(c: Citer, v: Positive) -> str:
    text = (
        f"**Positive control** (planted features from `sae_lens.synthetic`, configuration "
        f"`{v.name}`, d_sae {c.num(SYNTHETIC, v.d_sae, 'd')}, as many latents as planted "
        f"features): PWMCC between seeds {_ci(c, v.pwmcc)}, "
        f"isotropic random dictionaries {_num(c, v.random_pwmcc)} "
        f"({VERSUS_TEXT[v.stable]}); shared fraction {_ci(c, v.shared)}, isotropic "
        f"{_num(c, v.random_shared)} ({VERSUS_TEXT[v.shares]}). Against the planted "
        f"features: MCC {_ci(c, v.mcc)}, recovered fraction {_ci(c, v.recovered)}"
    )
    if v.most_recovered is not None:
        text += (
            ": the SAEs recover most of the planted features"
            if v.most_recovered
            else ": the SAEs recover **fewer than half** of the planted features"
        )
    text += ". "
    if v.saelens is not None:
        s = v.saelens
        text += (
            f"SAELens's own evaluation of the saved checkpoints gives MCC {_ci(c, s.mcc)} and "
            f"F-score {_ci(c, s.f1)}; our MCC over all atoms is {_ci(c, s.ours)}, the largest "
            f"difference over seeds {c.num(SYNTHETIC, s.difference, '.1e')}"
            + (
                ": the two agree at the printed precision. "
                if s.agree
                else ": the two **differ** beyond the printed precision. "
            )
        )
    text += (
        "Where there are features to find, the SAEs find them and the seeds agree: the "
        "measures can see identifiability when it is there.\n"
        if v.works
        else "The positive control does **not** show both stability above the isotropic "
        "baseline and recovery of most planted features: what the measures show on the "
        "modular model cannot be read as identifiability either way.\n"
    )
    return text


def render_negative(c: Citer, f: Facts) -> str:
    parts = []
    for v in f.negatives:
        t = (
            f"`{v.name}` (d_sae {c.num(CIRCLES, v.d_sae, 'd')}): shared fraction "
            f"{_ci(c, v.shared)}"
            + (
                ", far fewer atoms shared than in the positive control"
                if v.unidentifiable
                else ", **not** clearly fewer atoms shared than in the positive control"
            )
            + f"; live PWMCC {_ci(c, v.live)}, against {_ci(c, v.subspace)} for as many "
            f"random atoms in the data subspace ({VERSUS_TEXT[v.live_vs_subspace]})"
        )
        if v.in_plane is not None:
            t += f"; share of live atoms inside one circle's plane {_ci(c, v.in_plane)}"
        parts.append(t)
    text = (
        "**Negative control** (points on round circles in orthogonal planes, the shape "
        "of the modular model's activations; nothing sparse to identify): "
        + "; ".join(parts)
        + ". "
    )
    if all(v.unidentifiable for v in f.negatives):
        text += "The seeds share few atoms where there is no dictionary to find, as they should. "
    else:
        text += (
            "In "
            + names(v.name for v in f.negatives if not v.unidentifiable)
            + " the shared fraction does not set this domain apart from one with planted "
            "features: by that measure alone it would look identifiable. "
        )
    if f.negative_above_subspace:
        text += (
            "Live PWMCC above the count-matched data-subspace baseline ("
            + names(v.name for v in f.negatives if v.live_vs_subspace == "above")
            + ") occurs here although nothing is there to identify: on its own it is not "
            "evidence of learned features. "
        )
    flags = [v.mostly_in_plane for v in f.negatives if v.mostly_in_plane is not None]
    if flags and not any(flags):
        text += "Most live atoms do not lie inside any one circle's plane."
    elif flags and all(flags):
        text += "Most live atoms lie inside one circle's plane."
    return text.rstrip() + "\n"


def render_map(c: Citer, a: MapAnswer, build) -> str:
    text = (
        f"**Identifiability map** ({c.num(IDMAP, a.n_cells, 'd')} cells of planted "
        "features over superposition x width x sparsity x architecture, each trained "
        "until the convergence criterion or its epoch limit; "
        f"{c.num(IDMAP, a.n_not_converged, 'd')} of them did not converge): "
        f"Spearman correlation of `{a.stability}` with `{a.recovery}` across cells "
        f"{ci_text(c, a.rho, '.2f')} (CI resampling cells): {SIGN_TEXT[a.sign]}. "
    )
    if a.threshold is not None:
        text += (
            f"Every cell with `{a.stability}` of at least {c.num(IDMAP, a.threshold, '.3f')} "
            f"({c.num(IDMAP, a.cells_above, 'd')} cells) has `{a.recovery}` of at least "
            f"{c.num(IDMAP, a.level, '.2f')}. "
        )
    else:
        text += (
            f"No stability level exists above which every cell reaches `{a.recovery}` of "
            f"{c.num(IDMAP, a.level, '.2f')}: stability never guarantees recovery in the "
            "map. "
        )
    return text + f"({fig_ref(build, 'fig9_controls')}.)\n"


def render_modular(c: Citer, f: Facts) -> str:
    rows = f.modular
    if rows is None:
        return "*The modular SAEs: metrics/stability/modular.json is not there yet.*\n"
    pos, neg = f.positive, next((n for n in f.negatives if n.name == PRIMARY), f.negatives[0])
    text = (
        "**The modular numbers in their light.** "
        + "; ".join(
            f"`{r.name}`: live PWMCC {_ci(c, r.live)} (count-matched data-subspace baseline "
            f"{_ci(c, r.subspace)}: {VERSUS_TEXT[r.live_vs_subspace]}), shared fraction "
            f"{_ci(c, r.shared)}"
            + (
                ""
                if r.n_live is None or r.distinct is None
                else f", {_num(c, r.n_live, '.0f')} live latents of which "
                f"{_num(c, r.distinct, '.0f')} distinct directions"
            )
            for r in rows
        )
        + f". The controls' shared fractions: negative (circles `{neg.name}`) "
        f"{_num(c, neg.shared)}, positive (synthetic `{pos.name}`) {_num(c, pos.shared)}. "
    )
    near_neg = [r.name for r in rows if r.closer == "negative"]
    near_pos = [r.name for r in rows if r.closer == "positive"]
    if near_neg and len(near_neg) == len(rows):
        text += (
            "Every modular configuration's shared fraction is closer to the negative "
            "control's than to the positive control's: the seeds agree about as little as "
            "they do where there is nothing to identify. "
        )
    elif near_pos and len(near_pos) == len(rows):
        text += (
            "Every modular configuration's shared fraction is closer to the positive "
            "control's than to the negative control's. "
        )
    else:
        text += (
            f"Closer to the negative control: {names(near_neg) or 'none'}; closer to the "
            f"positive control: {names(near_pos) or 'none'}. "
        )
    dup = [r.name for r in rows if r.duplicated]
    if dup:
        text += (
            f"{names(dup)}: fewer than half of the live atoms are distinct directions "
            "(the rest are near-duplicates of them, SCIENCE.md section 8), so live PWMCC counts the same "
            "few directions many times and overstates agreement. "
        )
    above_sub = [r.name for r in rows if r.live_vs_subspace == "above"]
    if above_sub and f.negative_above_subspace:
        text += (
            f"{names(above_sub)} {'is' if len(above_sub) == 1 else 'are'} above the "
            "data-subspace baseline in live PWMCC, but so is the negative control: that "
            "does not set them apart from a domain with nothing to identify. "
        )
    elif above_sub:
        text += (
            f"{names(above_sub)} {'is' if len(above_sub) == 1 else 'are'} above the "
            "data-subspace baseline in live PWMCC, where the negative control is not. "
        )
    if f.map.threshold is not None:
        reach = [r.name for r in rows if r.reaches_threshold]
        below = [r.name for r in rows if r.reaches_threshold is False]
        if below and not reach:
            text += (
                "No modular configuration reaches the map's stability threshold: in the map, "
                "stability at that level does not guarantee recovery."
            )
        else:
            reach_dup = [n for n in reach if n in dup]
            text += (
                f"At or above the map's stability threshold: {names(reach) or 'none'}"
                + (f" ({names(reach_dup)} only through duplicated atoms)" if reach_dup else "")
                + f"; below it: {names(below) or 'none'} (the map's planted features are not "
                "the modular model's: a level, not a proof)."
            )
    return text.rstrip() + "\n"


def render(c: Citer, f: Facts, build) -> str:
    return "\n".join(
        (
            render_positive(c, f.positive),
            render_negative(c, f),
            render_map(c, f.map, build),
            render_modular(c, f),
        )
    )


def section(c: Citer, build) -> str:
    return render(c, decide(c.m), build)
