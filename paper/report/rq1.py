"""RQ1 "Goldilocks zone": stability over dictionary size x sparsity x learning rate x
training length (``metrics/sweep.json``).

The answer leads with the atoms measured for what the data is (SCIENCE.md section 9):
live PWMCC beside the shift null, per dictionary size (the sweep summary's
``goldilocks_live``: at which sizes some configuration's live atoms are more stable than
copies of one solution shifted at random), along the training-length axis
(``by_length``: after 2 and 20 epochs and at convergence) and per learning rate
(``by_lr``), with how many configurations met the convergence criterion. Decided here
for that part: whether any size has a configuration above the null, whether live PWMCC
falls from the shortest length to convergence, and whether the grid has more than one
learning rate.

Then, labelled secondary, the all-atom answer. Decided there: whether the best ratio
falls with every step up in size (the peak at the smallest size, not inside the range),
which sizes are at or below the activations'
effective rank, whether every configuration is stable by the isotropic and untrained
baselines, how many are above the data-subspace baseline, and whether JumpReLU's L0
responds to its coefficient. The zone itself is the sweep summary's ``goldilocks.zone``.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

from paper import schema as sc
from paper.cite import Citer
from paper.errors import Skip
from paper.figures import FOURIER, SWEEP
from paper.metrics import JsonPath, Metrics
from paper.report.common import fig_ref, row_ci

Ref = tuple[str, JsonPath]
FLAT = 1.1  # JumpReLU's L0 is "flat" when its largest is within this factor of its smallest


@dataclass(frozen=True)
class SizeBest:
    key: str  # "<d_sae>" of by_d_sae
    d_sae: JsonPath | None  # a trained row's d_sae (None: no trained row of this size)
    best_config: str


@dataclass(frozen=True)
class SubspaceCount:
    """Configurations of one size above the data-subspace baseline (with their CI)."""

    d_sae: JsonPath
    above: tuple[Ref, ...]
    rows: tuple[Ref, ...]


@dataclass(frozen=True)
class Subspace:
    above: tuple[Ref, ...]  # rows whose CI lies above the data-subspace baseline
    rows: tuple[Ref, ...]  # rows with the data-subspace decision
    by_size: tuple[SubspaceCount, ...]
    top: tuple[JsonPath, str] | None  # (row path, config) of the highest data-subspace ratio

    @property
    def all_above(self) -> bool:
        return len(self.above) == len(self.rows)


@dataclass(frozen=True)
class JumpReLUSize:
    d_sae: JsonPath
    l0: tuple[Ref, ...]
    levels: tuple[Ref, ...]


@dataclass(frozen=True)
class JumpReLU:
    sizes: tuple[JumpReLUSize, ...]
    flat: bool  # L0 barely responds to the L0 coefficient at every size


@dataclass(frozen=True)
class LiveSize:
    key: str  # "<d_sae>" of goldilocks_live.by_d_sae
    d_sae: JsonPath | None
    best_config: str | None  # None: no reconstructing configuration with a null


@dataclass(frozen=True)
class Live:
    zone: bool  # goldilocks_live.zone
    any_above: bool  # some size has a configuration above the shift null
    sizes: tuple[LiveSize, ...]
    lengths: tuple[int, ...]  # indices into by_length of the fixed lengths (not convergence)
    converged_index: int | None  # by_length's entry at convergence
    falls: bool | None  # mean live PWMCC: shortest length > convergence (None: no lengths)
    null_falls: bool | None  # the same for the mean shift null
    first_above: bool  # some configuration is above the null at the shortest length
    rates: tuple[tuple[str, int], ...]  # (key of by_lr, its index in the sweep's lr list)


@dataclass(frozen=True)
class Facts:
    zone: bool  # the sweep summary's answer (goldilocks.zone)
    sizes: tuple[SizeBest, ...]
    falling: bool  # the best ratio falls with every step up in size
    low_rank_sizes: tuple[JsonPath, ...] | None  # d_sae at or below the effective rank
    stable: tuple[Ref, ...]  # n_stable per size
    total: tuple[Ref, ...]  # n_configs per size
    all_stable: bool  # every configuration above the isotropic and untrained baselines
    most_stable: bool  # more than half of them
    not_reconstructing: JsonPath | None  # count below the EV floor (None: not in the file)
    floor: JsonPath | None
    subspace: Subspace | None  # None: the sweep has no data-subspace baseline
    jumprelu: JumpReLU | None  # None: no JumpReLU size with two levels or more
    live: Live | None = None  # None: a sweep without the live measures


def decide_live(m: Metrics, d_path: dict[str, JsonPath]) -> Live:
    gold = m.get(SWEEP, ("goldilocks_live",))
    by = gold["by_d_sae"]
    sizes = tuple(LiveSize(d, d_path.get(d), by[d]["best_config"]) for d in sorted(by, key=float))
    lengths = m.get(SWEEP, ("by_length",))
    lrs = m.get(SWEEP, ("lr",))
    fixed = tuple(i for i, e in enumerate(lengths) if e["epochs"] is not None)
    conv = next((i for i, e in enumerate(lengths) if e["epochs"] is None), None)

    def fell(key: str) -> bool | None:
        if not fixed or conv is None:
            return None
        first, last = lengths[fixed[0]][key], lengths[conv][key]
        return None if first is None or last is None else first > last

    return Live(
        zone=bool(gold["zone"]),
        any_above=bool(gold["sizes_above"]),
        sizes=sizes,
        lengths=fixed,
        converged_index=conv,
        falls=fell("live_pwmcc"),
        null_falls=fell("shift_null_live_pwmcc"),
        first_above=bool(fixed) and lengths[fixed[0]]["n_above_shift_null"] > 0,
        rates=tuple(
            (key, next(i for i, v in enumerate(lrs) if f"{v:g}" == key))
            for key in m.get(SWEEP, ("by_lr",))
        ),
    )


def decide(m: Metrics) -> Facts:
    gold = m.get(SWEEP, ("goldilocks",))
    by = m.get(SWEEP, ("by_d_sae",))
    if not by:
        raise Skip(f"{SWEEP}: no by_d_sae summary")
    sizes = sorted(by, key=float)
    trained = sc.rows(m, SWEEP)
    d_path = {str(r["d_sae"]): (*p, "d_sae") for p, r in trained}
    best = [by[d]["best_ratio"] for d in sizes]
    falling = all(a is not None and b is not None and a > b for a, b in pairwise(best))
    low = None
    if m.exists(FOURIER):
        rank = m.get(FOURIER, ("activation_effective_rank",))
        low = tuple(d_path[d] for d in sizes if float(d) <= rank and d in d_path)
    stable = tuple((SWEEP, ("by_d_sae", d, "n_stable")) for d in sizes)
    total = tuple((SWEEP, ("by_d_sae", d, "n_configs")) for d in sizes)
    n_stable = sum(m.get(f, p) for f, p in stable)
    n_total = sum(m.get(f, p) for f, p in total)
    return Facts(
        zone=bool(gold["zone"]),
        sizes=tuple(SizeBest(d, d_path.get(d), by[d]["best_config"]) for d in sizes),
        falling=falling,
        low_rank_sizes=low,
        stable=stable,
        total=total,
        all_stable=n_stable == n_total,
        most_stable=2 * n_stable > n_total,
        not_reconstructing=("n_not_reconstructing",)
        if sc.has(m.get(SWEEP, ()), ("n_not_reconstructing",))
        else None,
        floor=("min_explained_variance",)
        if sc.has(m.get(SWEEP, ()), ("min_explained_variance",))
        else None,
        subspace=decide_subspace(trained, sizes),
        jumprelu=decide_jumprelu(trained),
        live=decide_live(m, d_path),
    )


def decide_subspace(trained, sizes) -> Subspace | None:
    has_sub = [(p, r) for p, r in trained if "above_subspace" in r]  # data-subspace baseline
    if not has_sub:
        return None
    groups = []
    for d in sizes:
        mine = [(p, r) for p, r in has_sub if str(r["d_sae"]) == d]
        if mine:
            groups.append(
                SubspaceCount(
                    (*mine[0][0], "d_sae"),
                    tuple((SWEEP, (*p, "ratio_subspace")) for p, r in mine if r["above_subspace"]),
                    tuple((SWEEP, (*p, "ratio")) for p, _ in mine),
                )
            )
    top = max(
        (pr for pr in has_sub if pr[1]["ratio_subspace"] is not None),
        key=lambda pr: pr[1]["ratio_subspace"],
        default=None,
    )
    return Subspace(
        above=tuple((SWEEP, (*p, "ratio_subspace")) for p, r in has_sub if r["above_subspace"]),
        rows=tuple((SWEEP, (*p, "ratio")) for p, _ in has_sub),
        by_size=tuple(groups),
        top=None if top is None else (top[0], top[1]["config"]),
    )


def decide_jumprelu(trained) -> JumpReLU | None:
    mine = [(p, r) for p, r in trained if r["architecture"] == "jumprelu"]
    out, flat = [], True
    for d in sorted({r["d_sae"] for _, r in mine}):
        l0s = [r["l0"] for _, r in mine if r["d_sae"] == d]
        if len(l0s) < 2:
            continue
        flat = flat and max(l0s) <= FLAT * min(l0s)
        first = next(p for p, r in mine if r["d_sae"] == d)
        out.append(
            JumpReLUSize(
                (*first, "d_sae"),
                tuple((SWEEP, (*p, "l0")) for p, r in mine if r["d_sae"] == d),
                tuple((SWEEP, (*p, "level")) for p, r in mine if r["d_sae"] == d),
            )
        )
    return JumpReLU(tuple(out), flat) if out else None


LIVE_VERDICT: dict[tuple[bool, bool], str] = {
    (True, True): "**A Goldilocks band beyond the symmetry.** Live atoms are more stable "
    "than the shift null only at interior sizes",
    (False, True): "**No Goldilocks zone beyond the symmetry.** Live atoms beat the shift "
    "null at some sizes, but not in an interior band",
    (False, False): "**No Goldilocks zone: at no size are the atoms pinned beyond the "
    "symmetry.** No configuration's live atoms are more stable than the shift null (the "
    "same live atoms, each seed's turned by a random shift of the inputs)",
}


LENGTH_TEXT: dict[tuple[bool | None, bool | None], str] = {
    (True, True): "Live PWMCC falls as training goes on, and the shift null falls with it. ",
    (True, False): "Live PWMCC falls as training goes on, while the shift null does not. ",
    (True, None): "Live PWMCC falls as training goes on. ",
    (False, True): "Live PWMCC does not fall as training goes on, while the shift null does. ",
    (False, False): "Neither live PWMCC nor the shift null falls as training goes on. ",
    (False, None): "Live PWMCC does not fall as training goes on. ",
    (None, True): "",
    (None, False): "",
    (None, None): "",
}


def render_live(c: Citer, f: Live) -> str:
    g = "goldilocks_live"
    text = LIVE_VERDICT[(f.zone, f.any_above)] + ". Configurations above the null (live PWMCC CI "
    text += "clear above the null's) by size: " + "; ".join(
        f"d_sae {c.num(SWEEP, s.d_sae, 'd') if s.d_sae else s.key}: "
        f"{c.num(SWEEP, (g, 'by_d_sae', s.key, 'n_above_shift_null'), 'd')} of "
        f"{c.num(SWEEP, (g, 'by_d_sae', s.key, 'n_configs'), 'd')}"
        + (
            ""
            if s.best_config is None
            else f" (largest live PWMCC minus null "
            f"{c.num(SWEEP, (g, 'by_d_sae', s.key, 'best_excess'), '+.3f')}, `{s.best_config}`)"
        )
        for s in f.sizes
    )
    text += ". "
    if f.converged_index is not None:
        text += (
            f"Every configuration trains until its explained variance rose by less than the "
            f"tolerance over the window, at most {c.num(SWEEP, ('epochs',), 'd')} epochs; "
            f"{c.num(SWEEP, ('n_not_converged',), 'd')} of {c.num(SWEEP, ('n_configs',), 'd')} "
            "configurations have a seed that did not meet it. "
        )
    if f.lengths and f.converged_index is not None:

        def at(i: int) -> str:
            b = ("by_length", i)
            when = (
                "at convergence"
                if i == f.converged_index
                else f"after at most {c.num(SWEEP, (*b, 'epochs'), 'd')} epochs"
            )
            return (
                f"{when}: live PWMCC {c.num(SWEEP, (*b, 'live_pwmcc'), '.3f')} against a null "
                f"of {c.num(SWEEP, (*b, 'shift_null_live_pwmcc'), '.3f')}, "
                f"{c.num(SWEEP, (*b, 'n_above_shift_null'), 'd')} of "
                f"{c.num(SWEEP, (*b, 'n_configs'), 'd')} above it, explained variance "
                f"{c.num(SWEEP, (*b, 'explained_variance'), '.3f')}"
            )

        text += (
            "Training length (means over the configurations that reconstruct at convergence): "
            + "; ".join(at(i) for i in (*f.lengths, f.converged_index))
            + ". "
        )
        text += LENGTH_TEXT[(f.falls, f.null_falls)]
        if f.falls and not f.first_above:
            text += (
                "Even at the shortest length no configuration is above the null: the higher "
                "agreement of short training is not atoms pinned beyond the symmetry. "
            )
    if len(f.rates) > 1:
        text += (
            "Learning rate: "
            + "; ".join(
                f"{c.num(SWEEP, ('lr', i), 'g')}: "
                f"{c.num(SWEEP, ('by_lr', r, 'n_above_shift_null'), 'd')} of "
                f"{c.num(SWEEP, ('by_lr', r, 'n_configs'), 'd')} above the null, live PWMCC "
                f"{c.num(SWEEP, ('by_lr', r, 'live_pwmcc'), '.3f')} (null "
                f"{c.num(SWEEP, ('by_lr', r, 'shift_null_live_pwmcc'), '.3f')})"
                for r, i in f.rates
            )
            + ". "
        )
    elif f.rates:
        text += (
            f"One learning rate in the default grid ({c.num(SWEEP, ('lr', f.rates[0][1]), 'g')}, "
            "the one the recorded search "
            "chose for the baseline SAEs); the learning-rate axis is one "
            "`dvc exp run -S 'sweep.lr=[...]'` away. "
        )
    return text


def render(c: Citer, f: Facts, build) -> str:
    text = ""
    if f.live is not None:
        text += render_live(c, f.live)
        text += (
            "\n\n*All atoms (secondary: SCIENCE.md section 8 explains why all-atom PWMCC "
            "against isotropic atoms measures the data's low rank more than the SAEs):* "
        )
    text += "**A Goldilocks zone.** " if f.zone else "**No Goldilocks zone.** "
    text += (
        "The best trained / isotropic PWMCC ratio per dictionary size is "
        + "; ".join(
            f"d_sae {c.num(SWEEP, s.d_sae, 'd') if s.d_sae else 'n/a'}: "
            f"{row_ci(c, ('by_d_sae', s.key), 'best_ratio', 'best_ratio_ci')} (`{s.best_config}`)"
            for s in f.sizes
        )
        + ". "
    )
    peak = ("goldilocks", "peak_d_sae")
    if f.falling:
        text += (
            "It falls with every step up in size, so the peak is at the smallest size "
            f"tried (d_sae {c.num(SWEEP, peak, 'd')}), not inside the range. "
        )
    else:
        text += f"It peaks at d_sae {c.num(SWEEP, peak, 'd')}. "
    if f.low_rank_sizes is not None:
        text += (
            f"The activations' effective rank is "
            f"{c.num(FOURIER, ('activation_effective_rank',), '.1f')}"
            + (
                "; sizes at or below it: "
                + ", ".join(f"d_sae {c.num(SWEEP, p, 'd')}" for p in f.low_rank_sizes)
                if f.low_rank_sizes
                else "; every size tried is above it"
            )
            + ". "
        )
    text += (
        "By the isotropic and untrained baselines every configuration counts as stable: "
        if f.all_stable
        else "By the isotropic and untrained baselines most configurations count as stable: "
        if f.most_stable
        else "By the isotropic and untrained baselines fewer than half of the configurations "
        "count as stable: "
    ) + (
        f"{c.derived('sum', f.stable, 'd')} of {c.derived('sum', f.total, 'd')} reconstruct "
        "their data and are above both with their CI"
        + (
            ""
            if f.not_reconstructing is None or f.floor is None
            else f" ({c.num(SWEEP, f.not_reconstructing, 'd')} do not reconstruct: explained "
            f"variance below {c.num(SWEEP, f.floor, '.2f')}, never counted stable)"
        )
        + ". "
    )
    if f.subspace is not None:
        text += render_subspace(c, f.subspace)
    if f.jumprelu is not None:
        text += render_jumprelu(c, f.jumprelu)
    if f.live is None:
        text += (
            f"Learning rate and training length were not swept: every sweep SAE trains for "
            f"{c.num(SWEEP, ('epochs',), 'd')} epochs at one learning rate; training length "
            "is covered only by the dynamics of the baseline SAEs (RQ5). "
        )
    return text + (
        f"({fig_ref(build, 'fig4_stability_heatmaps')}, {fig_ref(build, 'fig5_tradeoff')}.)"
    )


def render_subspace(c: Citer, s: Subspace) -> str:
    text = (
        "Against the data-subspace baseline, "
        if s.all_above
        else "Against the data-subspace baseline the picture changes: only "
    ) + (
        f"{c.derived('count', s.above, 'd')} of {c.derived('count', s.rows, 'd')} "
        "configurations are above it with their CI. By size: "
    )
    text += (
        "; ".join(
            f"d_sae {c.num(SWEEP, g.d_sae, 'd')}: "
            f"{c.derived('count', g.above, 'd')} of {c.derived('count', g.rows, 'd')}"
            for g in s.by_size
        )
        + ". "
    )
    if s.top is not None:
        path, config = s.top
        text += (
            f"The highest trained / data-subspace ratio is "
            f"{row_ci(c, path, 'ratio_subspace', 'ratio_subspace_ci')} (`{config}`). "
        )
    return text


def render_jumprelu(c: Citer, j: JumpReLU) -> str:
    parts = [
        f"d_sae {c.num(SWEEP, s.d_sae, 'd')}: "
        f"L0 {c.derived('min', s.l0, '.1f')}–{c.derived('max', s.l0, '.1f')} for "
        f"coefficients {c.derived('min', s.levels, 'g')}–{c.derived('max', s.levels, 'g')}"
        for s in j.sizes
    ]
    verdict = (
        "JumpReLU's L0 barely responds to its L0 coefficient in this short sweep "
        "training, so its column is one sparsity level repeated"
        if j.flat
        else "JumpReLU's L0 changes with its L0 coefficient"
    )
    return f"{verdict} ({'; '.join(parts)}). "


def section(c: Citer, build) -> str:
    return render(c, decide(c.m), build)
