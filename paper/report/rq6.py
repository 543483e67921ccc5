"""RQ6 "Predictors of a latent being shared" (``metrics/predictors.json``).

Sharing itself is put in context first (SCIENCE.md section 9): per configuration, whether
its live shared fraction (``metrics/stability/modular.json``) is above the shift null's
(the same live atoms, each seed's turned by a random shift of the inputs), by
:func:`paper.report.controls.versus` (a CI clear of the null's CI). Where it is not, the
seeds share no more latents than randomly shifted copies of one solution would, and the
text says that the predictors of sharing are to be read with that caveat.

Then, per configuration and property: whether its AUC CI lies above chance
(predictive), below it, or contains it; which configurations have too few shared
latents (under :data:`FEW`) for narrow CIs; and whether the decoder norm is
uninformative by construction (AUC exactly chance with no spread).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from paper import schema as sc
from paper.cite import Citer
from paper.errors import Skip
from paper.figures import CIRCLES, PREDICTORS, STABILITY
from paper.metrics import JsonPath, Metrics
from paper.report.common import ci_text, fig_ref, names
from paper.report.controls import VERSUS_TEXT, Versus, _stat, versus

CHANCE = 0.5
FEW = 30  # fewer shared latents than this: wide CIs
Verdict = Literal["predictive", "below", "chance"]
LABELS: dict[Verdict, str] = {
    "predictive": "predictive (CI above chance)",
    "below": "below chance (CI under it)",
    "chance": "not distinguishable from chance",
}


@dataclass(frozen=True)
class Predictor:
    prop: str  # key of auc
    auc: sc.Stat
    verdict: Verdict


@dataclass(frozen=True)
class Config:
    name: str
    path: JsonPath
    predictors: tuple[Predictor, ...]  # in file order
    few_shared: bool  # fewer than FEW shared latents


@dataclass(frozen=True)
class Sharing:
    """A configuration's live shared fraction against the shift null."""

    name: str
    shared: sc.Stat
    null: sc.Stat
    verdict: Versus


@dataclass(frozen=True)
class Facts:
    configs: tuple[Config, ...]  # those with AUCs
    unit_decoder: bool  # a decoder-norm AUC of exactly chance with no spread
    sharing: tuple[Sharing, ...] = ()  # the configurations with a shift null
    control: tuple[Sharing, ...] = ()  # the circles control's configurations, the same test

    @property
    def few(self) -> list[str]:
        return [g.name for g in self.configs if g.few_shared]

    @property
    def purity_predictive(self) -> list[str]:
        """Configurations where purity's AUC CI lies above chance."""
        return [
            g.name
            for g in self.configs
            if any(p.prop == "purity" and p.verdict == "predictive" for p in g.predictors)
        ]

    @property
    def not_above_null(self) -> list[str]:
        """Configurations whose live shared fraction is within or below the shift null."""
        return [s.name for s in self.sharing if s.verdict in ("within", "below")]

    @property
    def above_null(self) -> list[str]:
        return [s.name for s in self.sharing if s.verdict == "above"]

    @property
    def control_above_null(self) -> list[str]:
        """Circles-control configurations whose live shared fraction beats the shift null."""
        return [s.name for s in self.control if s.verdict == "above"]

    @property
    def no_ci(self) -> list[str]:
        return [s.name for s in self.sharing if s.verdict == "no_ci"]


def verdict(m: Metrics, auc: sc.Stat) -> Verdict:
    _, lo, hi = auc.values(m)
    if lo is not None and lo > CHANCE:
        return "predictive"
    if hi is not None and hi < CHANCE:
        return "below"
    return "chance"


def decide(m: Metrics) -> Facts:
    out, unit = [], False
    for name, path in sc.configs(m, PREDICTORS):
        entry = m.get(PREDICTORS, path)
        auc = entry["auc"]
        if not auc:
            continue
        preds = []
        for prop in auc:
            st = sc.stat_at(m, PREDICTORS, (*path, "auc", prop))
            preds.append(Predictor(prop, st, verdict(m, st)))
        dec = auc.get("decoder_norm")  # predictors are the keys of auc
        if dec is not None and dec["mean"] == CHANCE and dec["std"] == 0:
            unit = True
        out.append(Config(name, path, tuple(preds), entry["n_shared"] < FEW))
    if not out:
        raise Skip(f"{PREDICTORS}: no configuration with AUCs")
    control = (
        decide_sharing(m, [n for n, _ in sc.configs(m, CIRCLES)], CIRCLES)
        if m.exists(CIRCLES)
        else ()
    )
    return Facts(tuple(out), unit, decide_sharing(m, [g.name for g in out]), control)


def decide_sharing(m: Metrics, configs: list[str], file: str = STABILITY) -> tuple[Sharing, ...]:
    if not m.exists(file):
        return ()
    out = []
    for name in configs:
        shared = _stat(m, file, (name, "live", "live_shared_fraction"))
        null = _stat(m, file, (name, "planes", "rotation_live_shared_fraction"))
        if shared is not None and null is not None:
            out.append(Sharing(name, shared, null, versus(m, shared, null)))
    return tuple(out)


def _they(xs: list[str], one: str, many: str) -> str:
    return one if len(xs) == 1 else many


def render_sharing(c: Citer, f: Facts) -> str:
    text = (
        "**Sharing in context.** First, whether the seeds share more live latents than the "
        "shift null (the same live atoms, each seed's turned by a random shift of the inputs, "
        "an exact symmetry of the data: what the seeds would share if each found one solution "
        "shifted at random; SCIENCE.md section 9). Live shared fraction (mean over seed pairs "
        "[95% CI]) against the null: "
        + "; ".join(
            f"`{s.name}` {ci_text(c, s.shared)} against {ci_text(c, s.null)} "
            f"({VERSUS_TEXT[s.verdict]})"
            for s in f.sharing
        )
        + ". "
    )
    below = f.not_above_null
    if below:
        text += (
            f"{names(below)} {_they(below, 'is', 'are')} **not** above the shift null: "
            f"{_they(below, 'its', 'their')} seeds share no more latents than "
            "symmetry-shifted copies of one solution would, so what predicts sharing there "
            "need not mark an identifiable latent; read "
            f"{_they(below, 'its', 'their')} AUCs below with that caveat. "
        )
    if f.above_null:
        text += (
            f"{names(f.above_null)} {_they(f.above_null, 'shares', 'share')} more than the "
            "shift null: more than the symmetry alone gives"
            + (
                ", although the circles control, where nothing is identifiable, does too ("
                + "; ".join(
                    f"`{s.name}` {ci_text(c, s.shared)} against {ci_text(c, s.null)}"
                    for s in f.control
                    if s.verdict == "above"
                )
                + "): beating the null is not by itself evidence of identifiable latents. "
                if f.control_above_null
                else ". "
            )
        )
    if f.no_ci:
        text += f"{names(f.no_ci)}: no CI to compare with the null. "
    return text


def render_config(c: Citer, g: Config) -> str:
    pieces: dict[Verdict, list[str]] = {v: [] for v in LABELS}
    for p in g.predictors:  # cited in file order, listed by verdict
        pieces[p.verdict].append(f"{p.prop.replace('_', ' ')} {ci_text(c, p.auc, '.2f')}")
    head = (
        f"`{g.name}` ({c.num(PREDICTORS, (*g.path, 'n_shared'), 'd')} shared of "
        f"{c.num(PREDICTORS, (*g.path, 'n_live'), 'd')} live latents)"
    )
    return (
        head
        + ": "
        + "; ".join(f"{label}: {', '.join(pieces[v])}" for v, label in LABELS.items() if pieces[v])
    )


def render(c: Citer, f: Facts, build) -> str:
    text = render_sharing(c, f).rstrip() + "\n\n" if f.sharing else ""
    text += (
        "*Predictors (live latents only):* ROC AUC per seed (mean [95% CI]) for 'shared "
        "with a majority of the other seeds': "
        + ". ".join(render_config(c, g) for g in f.configs)
        + ". "
    )
    few = f.few
    if few:
        text += (
            f"{names(few)} "
            f"{'has' if len(few) == 1 else 'have'} very few shared latents, so "
            f"{'its' if len(few) == 1 else 'their'} CIs are wide. "
        )
    if f.purity_predictive:
        text += (
            "Purity, a test sparse latents cannot pass (SCIENCE.md section 9), tracks how "
            "densely a latent fires rather than feature recovery: its AUC above chance for "
            f"{names(f.purity_predictive)} does not show that shared latents are recovered "
            "features. "
        )
    if f.unit_decoder:
        text += (
            "The decoder norm is uninformative by construction: the saved decoders have "
            "unit-norm rows, so its AUC is exactly chance. "
        )
    return text + f"({fig_ref(build, 'fig8b_predictors')}.)"


def section(c: Citer, build) -> str:
    return render(c, decide(c.m), build)
