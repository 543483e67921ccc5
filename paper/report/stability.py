"""Section "Stability across seeds (baseline SAEs)": the baseline tables and what the
data-subspace baseline does to the isotropic ratio."""

from __future__ import annotations

from dataclasses import dataclass

from paper import schema as sc
from paper.cite import Citer
from paper.figures import FOURIER, GEOMETRY, STABILITY
from paper.metrics import JsonPath, Metrics
from paper.report.common import ci_text, fig_ref, names, span

KINDS = ("random", "untrained", "subspace_random")  # isotropic, untrained, data subspace
MATCHINGS = ("hungarian_mcc", "shared_fraction")
DIMS_99 = ("activations", "dims_for_variance", "0.99")


@dataclass(frozen=True)
class Row:
    """One configuration's cells; None where the file lacks the statistic (``n/a``)."""

    name: str
    d_sae: JsonPath
    pwmcc: sc.Stat | None
    pwmcc_baselines: tuple[sc.Stat | None, ...]  # per KINDS
    ratios: tuple[sc.Stat | None, sc.Stat | None]  # trained / isotropic, / data subspace
    matchings: tuple[tuple[sc.Stat | None, tuple[sc.Stat | None, ...]], ...]  # per MATCHINGS


@dataclass(frozen=True)
class Caveat:
    """The isotropic ratio read against the activations' low rank."""

    fourier_rank: bool  # metrics/fourier.json is there: quote its effective rank
    geometry_dims: bool  # geometry.json gives the dimensions holding 99% of the variance
    subspace_ratios: tuple[sc.Stat, ...]  # trained / data-subspace ratio, where written
    subspace_baselines: tuple[sc.Stat, ...]  # data-subspace baseline PWMCC, where written
    above: tuple[str, ...]  # configurations whose ratio CI lies above unity
    below: tuple[str, ...]  # ... under unity
    shared: tuple[tuple[str, sc.Stat], ...]  # shared fraction, where written
    subspace_shares_more: bool  # data-subspace atoms share more than every trained SAE

    @property
    def all_below(self) -> bool:
        """Every configuration is below the data-subspace baseline, none above."""
        return bool(self.below) and not self.above


@dataclass(frozen=True)
class Facts:
    rows: tuple[Row, ...]
    subspace_rank: JsonPath | None  # rank of the data-subspace baseline, if written
    caveat: Caveat


def decide(m: Metrics) -> Facts:
    entries = sc.configs(m, STABILITY)
    rank = None
    rows = []
    for name, path in entries:
        entry = m.get(STABILITY, path)
        if rank is None and entry.get("subspace_rank") is not None:  # data-subspace baseline
            rank = (*path, "subspace_rank")
        rows.append(
            Row(
                name=name,
                d_sae=(*path, "d_sae"),
                pwmcc=sc.optional(sc.stat, m, STABILITY, path, "pwmcc"),
                pwmcc_baselines=tuple(
                    sc.optional(sc.baseline, m, STABILITY, path, k, "pwmcc") for k in KINDS
                ),
                ratios=(
                    sc.optional(sc.ratio, m, STABILITY, path, "pwmcc", "random"),
                    sc.optional(sc.ratio, m, STABILITY, path, "pwmcc", "subspace"),
                ),
                matchings=tuple(
                    (
                        sc.optional(sc.stat, m, STABILITY, path, metric),
                        tuple(
                            sc.optional(sc.baseline, m, STABILITY, path, k, metric) for k in KINDS
                        ),
                    )
                    for metric in MATCHINGS
                ),
            )
        )
    return Facts(tuple(rows), rank, decide_caveat(m, entries))


def decide_caveat(m: Metrics, entries) -> Caveat:
    geometry_dims = m.exists(GEOMETRY) and sc.has(m.json(GEOMETRY), DIMS_99)
    below, above_, ratios = [], [], []
    for name, path in entries:
        r = sc.optional(sc.ratio, m, STABILITY, path, "pwmcc", "subspace")
        if r is None:
            continue
        ratios.append(r)
        _, lo, hi = r.values(m)
        if hi is not None and hi < 1:
            below.append(name)
        elif lo is not None and lo > 1:
            above_.append(name)
    sub = [
        b
        for _, p in entries
        if (b := sc.optional(sc.baseline, m, STABILITY, p, "subspace_random", "pwmcc"))
    ]
    shared = [
        (n, p, s)
        for n, p in entries
        if (s := sc.optional(sc.stat, m, STABILITY, p, "shared_fraction"))
    ]
    crowded = []
    for n, p, _ in shared:
        b = sc.optional(sc.baseline, m, STABILITY, p, "subspace_random", "shared_fraction")
        t = sc.stat(m, STABILITY, p, "shared_fraction").values(m)[0]
        if b is not None and None not in (b.values(m)[0], t) and b.values(m)[0] > t:
            crowded.append(n)
    return Caveat(
        fourier_rank=m.exists(FOURIER),
        geometry_dims=geometry_dims,
        subspace_ratios=tuple(ratios),
        subspace_baselines=tuple(sub),
        above=tuple(above_),
        below=tuple(below),
        shared=tuple((n, st) for n, _, st in shared),
        subspace_shares_more=bool(crowded) and len(crowded) == len(shared),
    )


HEAD_A = (
    "| config | d_sae | PWMCC [95% CI] | isotropic random | untrained | "
    "random in data subspace | trained / isotropic [95% CI] | "
    "trained / data subspace [95% CI] |\n"
    "| --- | --- | --- | --- | --- | --- | --- | --- |\n"
)
HEAD_B = (
    "| config | Hungarian MCC [95% CI] | isotropic | untrained | data subspace | "
    "shared fraction [95% CI] | isotropic | untrained | data subspace |\n"
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- |\n"
)


def _mean(c: Citer, s: sc.Stat | None) -> str:
    return c.num(STABILITY, s.mean, ".3f") if s else "n/a"


def _ci(c: Citer, s: sc.Stat | None, fmt: str = ".3f") -> str:
    return ci_text(c, s, fmt) if s else "n/a"


def render(c: Citer, f: Facts, build) -> str:
    rows_a, rows_b = [], []
    for row in f.rows:  # cited row by row: table A's cells, then table B's
        cells = [f"`{row.name}`", c.num(STABILITY, row.d_sae, "d"), _ci(c, row.pwmcc)]
        cells += [_mean(c, b) for b in row.pwmcc_baselines]
        cells += [_ci(c, r, ".2f") for r in row.ratios]
        rows_a.append("| " + " | ".join(cells) + " |\n")
        cells = [f"`{row.name}`"]
        for t, baselines in row.matchings:
            cells.append(_ci(c, t))
            cells += [_mean(c, b) for b in baselines]
        rows_b.append("| " + " | ".join(cells) + " |\n")
    text = HEAD_A + "".join(rows_a) + "\n" + HEAD_B + "".join(rows_b)
    text += (
        "\nMeans over all seed pairs; 95% CI from a bootstrap over seeds. Isotropic: "
        "Gaussian dictionaries of the same shape; untrained: the same SAE at "
        "initialisation; data subspace: isotropic atoms confined to the span of the "
        "activations' top principal directions"
        + (f" (rank {c.num(STABILITY, f.subspace_rank, 'd')})" if f.subspace_rank else "")
        + f" ({fig_ref(build, 'fig3_baselines')}).\n"
    )
    return text + "\n" + render_caveat(c, f.caveat)


def render_caveat(c: Citer, v: Caveat) -> str:
    parts = []
    if v.fourier_rank:
        parts.append(
            f"The activations are very low-rank: effective rank "
            f"{c.num(FOURIER, ('activation_effective_rank',), '.1f')} of "
            f"{c.num(FOURIER, ('activation_dim',), 'd')} dimensions"
        )
    if v.geometry_dims:
        parts.append(
            f"{c.num(GEOMETRY, DIMS_99, 'd')} "
            f"dimensions hold {c.quote('99%', 'definition of dims_for_variance')} of "
            "their variance"
        )
    text = (", and ".join(parts) + ". ") if parts else ""
    if not v.subspace_ratios:
        return text + (
            "No data-subspace baseline in stability.json: the ratio to the "
            "isotropic baseline cannot be read against the activations' rank.\n"
        )
    sub = [(STABILITY, b.mean) for b in v.subspace_baselines]
    ratios = [(STABILITY, r.mean) for r in v.subspace_ratios]
    text += (
        f"Random atoms confined to that span reach PWMCC {span(c, sub, '.3f')}; the "
        f"trained SAEs' ratio to this data-subspace baseline is "
        f"{span(c, ratios, '.2f')}. "
    )
    if v.all_below:
        text += (
            "Every baseline configuration is **below** it (CI under unity): being far "
            "above the isotropic baseline mostly reflects that all atoms live in the "
            "same few dimensions, not that the seeds learned the same features. "
        )
    else:
        text += f"Above it (CI): {names(v.above) or 'none'}; below it: {names(v.below) or 'none'}. "
    if v.shared:
        text += (
            "The stricter shared fraction (one-to-one matches of both encoder and decoder "
            "above the threshold) is "
            + "; ".join(f"`{n}` {c.num(STABILITY, s.mean, '.3f')}" for n, s in v.shared)
            + "."
        )
        if v.subspace_shares_more:
            text += (
                " Even by this measure random atoms in the data subspace do better than "
                "every trained SAE (table): in so few dimensions a large random dictionary "
                "is crowded enough that most atoms find a partner above the threshold."
            )
    return text + "\n"


def section(c: Citer, build) -> str:
    return render(c, decide(c.m), build)
