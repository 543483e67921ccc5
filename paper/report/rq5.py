"""RQ5 "Dynamics: stability by training step" (``metrics/dynamics.json``).

The answer leads with what convergence means here (``metrics/saes/modular.json``): per
dynamics configuration, whether every seed met the explained-variance criterion and
how far its live atoms still moved over the criterion's window at the stop (atom drift);
a drift of at least :data:`MOVING` means the reconstruction has converged while the
atoms have not. Decided here, per configuration: the checkpoint where the shared
fraction peaks, and whether it peaks early and then falls (the last value under
:data:`FALL` of the peak) or rises to its final value; and whether fewer than half of the
live latents have their final best matches by the last-but-one checkpoint (the closing
sentence says so only then).
"""

from __future__ import annotations

from dataclasses import dataclass

from paper import schema as sc
from paper.cite import Citer
from paper.errors import Skip
from paper.figures import DYNAMICS, SAES
from paper.metrics import JsonPath, Metrics
from paper.report.common import ci_text, fig_ref

FALL = 0.8  # the shared fraction "falls" when its last value is under this share of its peak
MOVING = 0.01  # atoms still move: mean 1 - cos over the last window at least this


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
    mostly_unsettled: bool = False  # under half of the live latents settled by then
    drift: tuple[tuple[str, JsonPath], ...] = ()  # saes.json atom drift of its seeds
    converged: tuple[tuple[str, JsonPath], ...] = ()  # saes.json epochs run of converged seeds
    n_seeds: tuple[tuple[str, JsonPath], ...] = ()  # one ref per seed (to count them)
    moving: bool | None = None  # mean drift >= MOVING (None: no drift recorded)

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
        known = str(cps[-2]["step"]) in settle
        seeds = sc.sae_seed_paths(m, name) if m.exists(SAES) else []
        drifts = [
            (SAES, (*p, "training", "atom_drift"))
            for p in seeds
            if m.get(SAES, (*p, "training")).get("atom_drift") is not None
        ]
        values = [m.get(f, q) for f, q in drifts]
        out.append(
            Config(
                name=name,
                path=path,
                n_checkpoints=len(cps),
                pwmcc_first=pw0,
                pwmcc_last=pw1,
                shared=shared,
                prev_step=str(cps[-2]["step"]),
                settle_known=known,
                mostly_unsettled=known and settle[str(cps[-2]["step"])] < 0.5,
                drift=tuple(drifts),
                converged=tuple(
                    (SAES, (*p, "training", "epochs_run"))
                    for p in seeds
                    if m.get(SAES, (*p, "training")).get("converged")
                ),
                n_seeds=tuple((SAES, (*p, "seed")) for p in seeds),
                moving=None if not values else sum(values) / len(values) >= MOVING,
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


MOVING_TEXT: dict[bool, str] = {
    True: "the reconstruction has converged, the atoms have not",
    False: "the atoms have settled with the reconstruction",
}


def render_convergence(c: Citer, f: Facts) -> str:
    parts = []
    for g in f.configs:
        if g.moving is None or not g.n_seeds:
            continue
        parts.append(
            f"`{g.name}`: {c.derived('count', g.converged, 'd')} of "
            f"{c.derived('count', g.n_seeds, 'd')} seeds met the explained-variance criterion "
            f"(epochs {c.derived('min', g.converged, 'd')}–{c.derived('max', g.converged, 'd')}), "
            f"atom drift at the stop {c.derived('mean', g.drift, '.3f')} "
            f"({MOVING_TEXT[g.moving]})"
        )
    if not parts:
        return ""
    return (
        "**Converged reconstruction, moving atoms.** "
        if any(g.moving for g in f.configs)
        else "**Converged.** "
    ) + (
        "The baseline SAEs train until their explained variance stops rising; how far "
        "their live atoms still moved over the criterion's window at the stop (mean "
        "1 - cos, SCIENCE.md section 9): " + "; ".join(parts) + ". The checkpoints below "
        "retrain the same configurations and seeds to the same stop.\n\n"
    )


def render(c: Citer, f: Facts, build) -> str:
    text = render_convergence(c, f) + ". ".join(render_config(c, g) for g in f.configs)
    if f.configs and all(g.mostly_unsettled for g in f.configs):
        text += (
            ". Most live latents' best matches are still changing at the end of training: "
            "the runs have not converged to a fixed dictionary"
        )
    return text + f" ({fig_ref(build, 'fig7_dynamics')})."


def section(c: Citer, build) -> str:
    return render(c, decide(c.m), build)
