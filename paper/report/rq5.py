"""RQ5 "Dynamics: stability by training step" (``metrics/dynamics.json``).

Decided here, per configuration: the checkpoint where the shared fraction peaks, and
whether it peaks early and then falls (the last value under :data:`FALL` of the peak)
or rises to its final value.
"""

from __future__ import annotations

from dataclasses import dataclass

from paper import schema as sc
from paper.cite import Citer
from paper.errors import Skip
from paper.figures import DYNAMICS
from paper.metrics import JsonPath, Metrics
from paper.report.common import ci_text, fig_ref

FALL = 0.8  # the shared fraction "falls" when its last value is under this share of its peak


@dataclass(frozen=True)
class Shared:
    peak: int  # checkpoint index of the highest shared fraction (the first of equals)
    peaks_then_falls: bool  # peak before the end, and the end under FALL x the peak


@dataclass(frozen=True)
class Config:
    name: str
    path: JsonPath
    n_checkpoints: int
    pwmcc_first: sc.Stat  # at step 0 (the untrained baseline)
    pwmcc_last: sc.Stat
    shared: Shared | None  # None: the shared fraction is missing at some checkpoint
    prev_step: str  # "<step>" of the last-but-one checkpoint
    settle_known: bool  # the live latents' settled share is written for that step

    @property
    def last(self) -> int:
        return self.n_checkpoints - 1

    @property
    def prev(self) -> int:
        return self.n_checkpoints - 2


@dataclass(frozen=True)
class Facts:
    configs: tuple[Config, ...]  # those with two checkpoints or more


def decide(m: Metrics) -> Facts:
    out = []
    for name, path in sc.configs(m, DYNAMICS):
        cps = m.get(DYNAMICS, (*path, "checkpoints"))
        if len(cps) < 2:
            continue
        last = len(cps) - 1
        cp = (*path, "checkpoints")
        pw0 = sc.stat_at(m, DYNAMICS, (*cp, 0, "stability", "pwmcc"))
        pw1 = sc.stat_at(m, DYNAMICS, (*cp, last, "stability", "pwmcc"))
        sf = [
            cp_["stability"]["shared_fraction"]["mean"]
            if "shared_fraction" in cp_["stability"]
            else None
            for cp_ in cps
        ]
        shared = None
        if all(v is not None for v in sf):
            peak = max(range(len(sf)), key=lambda i: (sf[i], -i))
            shared = Shared(peak, peak < last and sf[last] < FALL * sf[peak])
        settle = m.get(DYNAMICS, (*path, "settle", "live", "fraction_settled_by_step"))
        out.append(
            Config(
                name=name,
                path=path,
                n_checkpoints=len(cps),
                pwmcc_first=pw0,
                pwmcc_last=pw1,
                shared=shared,
                prev_step=str(cps[-2]["step"]),
                settle_known=str(cps[-2]["step"]) in settle,
            )
        )
    if not out:
        raise Skip(f"{DYNAMICS}: no configuration with checkpoints")
    return Facts(tuple(out))


def render_config(c: Citer, g: Config) -> str:
    path, last, prev = g.path, g.last, g.prev
    cp = (*path, "checkpoints")
    text = (
        f"`{g.name}`: PWMCC between seeds goes from {ci_text(c, g.pwmcc_first)} at step "
        f"{c.num(DYNAMICS, (*cp, 0, 'step'), 'd')} (the untrained baseline) to "
        f"{ci_text(c, g.pwmcc_last)} at step {c.num(DYNAMICS, (*cp, last, 'step'), 'd')}"
    )
    if g.shared is not None:
        refs = [
            (DYNAMICS, (*cp, i, "stability", "shared_fraction", "mean"))
            for i in range(g.n_checkpoints)
        ]
        shape = (
            "peaks early and then falls"
            if g.shared.peaks_then_falls
            else "rises to its final value"
        )
        text += (
            f"; the shared fraction {shape}: maximum {c.derived('max', refs, '.3f')} at "
            f"step {c.num(DYNAMICS, (*cp, g.shared.peak, 'step'), 'd')}, "
            f"{c.num(DYNAMICS, refs[last][1], '.3f')} at the end"
        )
    text += (
        f", while the live fraction of latents goes from "
        f"{c.num(DYNAMICS, (*cp, 0, 'frac_alive', 'mean'), '.3f')} to "
        f"{c.num(DYNAMICS, (*cp, last, 'frac_alive', 'mean'), '.3f')}"
    )
    if g.settle_known:
        live = (*path, "settle", "live")
        text += (
            f". Settling: only "
            f"{c.num(DYNAMICS, (*live, 'fraction_settled_by_step', g.prev_step), '.1%')} "
            f"of the {c.num(DYNAMICS, (*live, 'n_latents'), 'd')} live "
            f"latents have their final best matches by step "
            f"{c.num(DYNAMICS, (*cp, prev, 'step'), 'd')} (median settle step "
            f"{c.num(DYNAMICS, (*live, 'median'), 'g')} of "
            f"{c.num(DYNAMICS, (*path, 'total_steps'), 'd')})"
            f", and {c.num(DYNAMICS, (*cp, prev, 'match_agreement_live'), '.1%')} "
            "of (live latent, other seed) best matches there are already final"
        )
    return text


def render(c: Citer, f: Facts, build) -> str:
    return ". ".join(render_config(c, g) for g in f.configs) + (
        ". Most latents' best matches are still changing at the end "
        "of training: the runs have not converged to a fixed "
        f"dictionary ({fig_ref(build, 'fig7_dynamics')})."
    )


def section(c: Citer, build) -> str:
    return render(c, decide(c.m), build)
