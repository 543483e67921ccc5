"""RQ6 "Predictors of a latent being shared" (``metrics/predictors.json``).

Decided here, per configuration and property: whether its AUC CI lies above chance
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
from paper.figures import PREDICTORS
from paper.metrics import JsonPath, Metrics
from paper.report.common import ci_text, fig_ref, names

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
class Facts:
    configs: tuple[Config, ...]  # those with AUCs
    unit_decoder: bool  # a decoder-norm AUC of exactly chance with no spread

    @property
    def few(self) -> list[str]:
        return [g.name for g in self.configs if g.few_shared]


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
    return Facts(tuple(out), unit)


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
    text = (
        "ROC AUC per seed (mean [95% CI]) for 'shared with a majority of the other "
        "seeds', live latents only: " + ". ".join(render_config(c, g) for g in f.configs) + ". "
    )
    few = f.few
    if few:
        text += (
            f"{names(few)} "
            f"{'has' if len(few) == 1 else 'have'} very few shared latents, so "
            f"{'its' if len(few) == 1 else 'their'} CIs are wide. "
        )
    if f.unit_decoder:
        text += (
            "The decoder norm is uninformative by construction: the saved decoders have "
            "unit-norm rows, so its AUC is exactly chance. "
        )
    return text + f"({fig_ref(build, 'fig8b_predictors')}.)"


def section(c: Citer, build) -> str:
    return render(c, decide(c.m), build)
