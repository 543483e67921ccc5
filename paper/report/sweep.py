"""Section "Sweep: dictionary size x sparsity": the most stable configurations and the
best one per dictionary size, with the count above the data-subspace baseline."""

from __future__ import annotations

from dataclasses import dataclass

from paper import schema as sc
from paper.cite import Citer
from paper.errors import Skip
from paper.figures import SWEEP
from paper.metrics import JsonPath, Metrics
from paper.report.common import cell, fig_ref, row_ci

Ref = tuple[str, JsonPath]


@dataclass(frozen=True)
class Best:
    """A row of ``best_ratio``."""

    path: JsonPath
    config: str
    knob: str
    has_subspace: bool  # the row has the data-subspace ratio


@dataclass(frozen=True)
class Size:
    """A dictionary size of ``by_d_sae``."""

    key: str  # "<d_sae>"
    best_config: str
    d_sae: JsonPath | None  # a trained row's d_sae (None: no trained row of this size)
    has_subspace: bool  # its rows carry the data-subspace decision
    above_subspace: tuple[Ref, ...]  # rows whose CI lies above the data-subspace baseline


@dataclass(frozen=True)
class Facts:
    best: tuple[Best, ...]
    sizes: tuple[Size, ...] | None  # None: no by_d_sae summary


def decide(m: Metrics) -> Facts:
    best = m.get(SWEEP, ("best_ratio",))
    if not best:
        raise Skip(f"{SWEEP}: best_ratio is empty")
    rows = tuple(
        Best(("best_ratio", i), r["config"], r["knob"], "ratio_subspace" in r)
        for i, r in enumerate(best)
    )
    by = m.get(SWEEP, ("by_d_sae",))
    if not by:
        return Facts(rows, None)
    trained = sc.rows(m, SWEEP)
    sizes = []
    for d in sorted(by, key=float):
        mine = [(rp, r) for rp, r in trained if str(r["d_sae"]) == d]
        sizes.append(
            Size(
                key=d,
                best_config=by[d]["best_config"],
                d_sae=(*mine[0][0], "d_sae") if mine else None,
                has_subspace=any("above_subspace" in r for _, r in mine),
                above_subspace=tuple(
                    (SWEEP, (*rp, "ratio_subspace"))
                    for rp, r in mine
                    if r.get("above_subspace") is True
                ),
            )
        )
    return Facts(rows, tuple(sizes))


HEAD = (
    "| config | d_sae | sparsity | L0 | explained variance | PWMCC | "
    "trained / isotropic [95% CI] | trained / data subspace [95% CI] | "
    "shared fraction | coverage |\n"
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n"
)
HEAD_BY = (
    "\nBest configuration per dictionary size (`by_d_sae`), with the number of "
    "configurations above the data-subspace baseline:\n\n"
    "| d_sae | best config | trained / isotropic [95% CI] | random PWMCC | "
    "configs | stable (CI above both baselines) | above data subspace (CI) |\n"
    "| --- | --- | --- | --- | --- | --- | --- |\n"
)


def render(c: Citer, f: Facts, build) -> str:
    rows = []
    for b in f.best:
        p = b.path
        cells = [  # cited in table order
            f"`{b.config}`",
            c.num(SWEEP, (*p, "d_sae"), "d"),
            f"`{b.knob}` {c.num(SWEEP, (*p, 'level'), 'g')}",
            cell(c, p, "l0", ".1f"),
            cell(c, p, "explained_variance", ".3f"),
            cell(c, p, "pwmcc", ".3f"),
            row_ci(c, p, "ratio", "ratio_ci"),
            row_ci(c, p, "ratio_subspace", "ratio_subspace_ci") if b.has_subspace else "n/a",
            cell(c, p, "shared_fraction", ".3f"),
            cell(c, p, "coverage", ".2f"),
        ]
        rows.append("| " + " | ".join(cells) + " |\n")
    text = (
        f"Trained configurations: {c.num(SWEEP, ('n_configs',), 'd')} "
        f"({c.num(SWEEP, ('n_saes',), 'd')} SAEs; "
        f"{c.num(SWEEP, ('n_skipped',), 'd')} combinations not trained because k > d_sae), "
        f"each trained for {c.num(SWEEP, ('epochs',), 'd')} epochs"
        + (
            f" ({c.num(SWEEP, ('n_not_reconstructing',), 'd')} below the explained-variance "
            f"floor {c.num(SWEEP, ('min_explained_variance',), '.2f')}: they do not reconstruct "
            "their data and are never counted stable)"
            if sc.has(c.m.get(SWEEP, ()), ("n_not_reconstructing",))
            else ""
        )
        + ". The highest trained / isotropic ratios:\n\n"
    )
    text += HEAD + "".join(rows)
    if f.sizes is not None:
        text += HEAD_BY
        for s in f.sizes:
            p = ("by_d_sae", s.key)
            d_cell = c.num(SWEEP, s.d_sae, "d") if s.d_sae else "n/a"
            text += (
                f"| {d_cell} | `{s.best_config}` | "
                f"{row_ci(c, p, 'best_ratio', 'best_ratio_ci')} | "
                f"{cell(c, p, 'random_pwmcc', '.3f')} | {cell(c, p, 'n_configs', 'd')} | "
                f"{cell(c, p, 'n_stable', 'd')} | "
                f"{c.derived('count', s.above_subspace, 'd') if s.has_subspace else 'n/a'} |\n"
            )
    return (
        text
        + f"\n({fig_ref(build, 'fig4_stability_heatmaps')}, {fig_ref(build, 'fig5_tradeoff')}.)\n"
    )


def section(c: Citer, build) -> str:
    return render(c, decide(c.m), build)
