"""Stage ``sweep_summary``: the research grid in one table, and what it answers.

Reads every configuration file of the cells of params ``sweep``
(``metrics/sweep/<architecture>-d<d_sae>/<config>.json``, stage ``sweep``) and writes
``metrics/sweep.json`` and ``metrics/curves/sweep.csv`` (one row per trained
configuration, for ``dvc plots``).

Definitions
-----------
* ``ratio``: trained / random (isotropic) PWMCC with its 95% seed-bootstrap CI;
  ``ratio_untrained``: trained / untrained PWMCC (paired by seed).
* Reconstructs: the seeds' mean explained variance is at least
  ``sweep.min_explained_variance``. A configuration that does not reconstruct its data
  is not a dictionary of it: it is reported (``reconstructs`` false) and never counted
  stable, whatever its PWMCC.
* Stable configuration (SCIENCE.md section 5, "clearly above both baselines, with
  the confidence interval to show it"): it reconstructs, and the lower CI bounds of
  ``ratio`` and ``ratio_untrained`` both exceed ``sweep.stable_ratio`` (default 1).
* Converged: whether every seed met the convergence criterion (null for a fixed
  schedule); ``steps`` the optimiser steps the batch ran.
* Architecture comparison at matched L0: for each dictionary size and each target
  L0 (the k levels of the topk family in the grid), every architecture contributes
  its configuration whose measured L0 is nearest the target in log scale, if within
  a factor of ``L0_MATCH_FACTOR`` (1.5); a comparison needs two architectures.
* ``ratio_subspace``: trained PWMCC / that of isotropic atoms confined to the span
  holding ``analysis.subspace_variance`` of the activations' variance (when set);
  ``above_subspace``: its CI lies above ``sweep.stable_ratio``. Reported beside the
  Goldilocks answer: a low-rank dataset makes even random atoms in its span agree.
* Rankings (``best_ratio``, ``by_d_sae``, matched L0, the Goldilocks answer) use the
  configurations that reconstruct only.
* Live atoms beside the shift null (the primary atom measure on this data, SCIENCE.md
  section 9): ``live_pwmcc`` (live latents only) and ``shift_null_live_pwmcc`` (the same
  live atoms, each seed's turned by a random shift of the inputs), ``live_excess`` their
  difference; ``above_shift_null``: the configuration reconstructs and its live PWMCC's
  CI lies above the null's. ``goldilocks_live``: at which sizes some configuration is
  above the null; a band when those sizes exclude both ends of the grid.
* Training length (``by_length``): per ``sweep.lengths`` and at convergence, over the
  configurations that reconstruct at convergence, mean EV, PWMCC, live PWMCC and null,
  and how many are above the null at that length. Learning rate (``by_lr``): the same
  per rate of ``sweep.lr``, with the range of epochs run.
* Goldilocks zone (all atoms, secondary): the best ratio per dictionary size (over architectures and
  sparsities) peaks at an *interior* size, with the peak's CI above the CIs of the
  best configurations at the smallest and the largest size. Otherwise "no Goldilocks
  zone above d_sae X", X the size of the highest ratio.

``metrics/sweep.json``: :class:`husai.records.SweepMetrics`: counts, ``rows`` (one
:class:`husai.records.SweepRow` per trained configuration, a
:class:`husai.records.SweepRowSkipped` per skipped one; a value's CI is the
``<value>_ci`` beside it, ``[low, high]`` or null; ``hungarian_mcc`` and
``shared_fraction`` are null above ``sweep.hungarian_max_d_sae``; the data-subspace
fields only with params ``analysis.subspace_variance``), ``best_ratio`` (up to 5 rows,
highest ratio first), ``by_d_sae``, ``matched_l0``, ``architectures_at_matched_l0`` and
``goldilocks`` (the answer above, in words).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import typer

from husai.records import SweepMetrics
from stages._common import PARAMS_OPTION, console, load_params, stage, write_csv, write_json

L0_MATCH_FACTOR = 1.5
N_BEST = 5
CSV_COLUMNS = [
    "config",
    "architecture",
    "d_sae",
    "knob",
    "level",
    "l0",
    "explained_variance",
    "dead_fraction",
    "pwmcc",
    "random_pwmcc",
    "untrained_pwmcc",
    "ratio",
    "ratio_ci_low",
    "ratio_ci_high",
    "hungarian_mcc",
    "shared_fraction",
    "coverage",
    "decoder_alignment",
    "subspace_random_pwmcc",
    "ratio_subspace",
    "lr",
    "epochs_max",
    "live_pwmcc",
    "shift_null_live_pwmcc",
    "subspace_live_pwmcc",
    "above_shift_null",
]


def _mean(stats: dict | None) -> float | None:
    return None if stats is None else stats["mean"]


def row_of(entry: dict, stable_ratio: float, min_ev: float) -> dict[str, Any]:
    """The summary row of one configuration file of stage ``sweep``."""
    row: dict[str, Any] = {
        "config": entry["config"],
        "architecture": entry["architecture"],
        "d_sae": entry["d_sae"],
        "knob": entry["sparsity"]["knob"],
        "level": entry["sparsity"]["value"],
        "skipped": entry["skipped"],
    }
    if entry["skipped"]:
        row["reason"] = entry["reason"]
        return row
    m, st, rec = entry["metrics"], entry["stability"], entry["recovery"]
    ratio, untrained = st["pwmcc_ratio_to_random"], st["pwmcc_ratio_to_untrained"]

    def above(r: dict) -> bool:
        return r["ci"] is not None and r["ci"][0] > stable_ratio

    training = entry["training"]
    converged = training.get("converged")
    reconstructs = m["explained_variance"] >= min_ev
    row.update(
        {
            "steps": training["steps"],
            "converged": None if converged is None else all(converged),
            "reconstructs": reconstructs,
            "l0": m["l0"],
            "explained_variance": m["explained_variance"],
            "dead_fraction": 1.0 - m["frac_alive"],
            "pwmcc": st["pwmcc"]["mean"],
            "pwmcc_ci": st["pwmcc"]["ci"],
            "random_pwmcc": st["random_pwmcc"]["mean"],
            "untrained_pwmcc": st["untrained_pwmcc"]["mean"],
            "ratio": ratio["ratio"],
            "ratio_ci": ratio["ci"],
            "ratio_untrained": untrained["ratio"],
            "ratio_untrained_ci": untrained["ci"],
            "hungarian_mcc": _mean(st["hungarian_mcc"]),
            "shared_fraction": _mean(st["shared_fraction"]),
            "coverage": rec["key_frequency_coverage"]["mean"],
            "pure_latent_fraction": rec["pure_latent_fraction"]["mean"],
            "decoder_alignment": rec["decoder_alignment"]["mean"],
            "random_decoder_alignment": rec["random_decoder_alignment"]["mean"],
            "stable": reconstructs and above(ratio) and above(untrained),
        }
    )
    row["lr"] = entry.get("hyperparameters", {}).get("lr")
    row["epochs_max"] = max(training.get("epochs_run") or [0]) or None
    live = entry.get("live")
    if live is not None:
        null = live["shift_null_live_pwmcc"]
        row.update(
            {
                "live_pwmcc": live["live_pwmcc"]["mean"],
                "live_pwmcc_ci": live["live_pwmcc"]["ci"],
                "shift_null_live_pwmcc": _mean(null),
                "shift_null_live_pwmcc_ci": None if null is None else null["ci"],
                "subspace_live_pwmcc": _mean(live["subspace_live_pwmcc"]),
                "live_excess": None if null is None else live["live_pwmcc"]["mean"] - null["mean"],
                "above_shift_null": reconstructs and bool(live["above_shift_null"]),
                "n_live": live["n_live"]["mean"],
            }
        )
        row["lengths"] = [
            {
                "epochs": ln["epochs"],
                "explained_variance": ln["explained_variance"],
                "l0": ln["l0"],
                "pwmcc": ln["pwmcc"]["mean"],
                "ratio": ln["pwmcc_ratio_to_random"]["ratio"],
                "live_pwmcc": ln["live"]["live_pwmcc"]["mean"],
                "shift_null_live_pwmcc": _mean(ln["live"]["shift_null_live_pwmcc"]),
                "above_shift_null": ln["explained_variance"] >= min_ev
                and bool(ln["live"]["above_shift_null"]),
            }
            for ln in entry.get("lengths", [])
        ]
    sub = st.get("pwmcc_ratio_to_subspace")  # the data-subspace baseline, when computed
    if sub is not None:
        row.update(
            {
                "subspace_random_pwmcc": st["subspace_random_pwmcc"]["mean"],
                "ratio_subspace": sub["ratio"],
                "ratio_subspace_ci": sub["ci"],
                "above_subspace": above(sub),
            }
        )
    return row


def csv_value(row: dict[str, Any], column: str) -> Any:
    """A CSV cell: ``ratio_ci_low``/``_high`` unpack the CI, other columns are row fields."""
    if column in ("ratio_ci_low", "ratio_ci_high"):
        ci = row["ratio_ci"]
        return None if ci is None else ci[column.endswith("high")]
    return row.get(column)


def _ci(ci: list | None) -> str:
    return "" if ci is None else f" [{ci[0]:.2f}, {ci[1]:.2f}]"


def matched_l0(rows: list[dict], targets: list[float]) -> list[dict[str, Any]]:
    """Architecture comparison at matched L0 (module docstring)."""
    out = []
    for d in sorted({r["d_sae"] for r in rows}):
        for target in targets:
            arches: dict[str, Any] = {}
            for arch in sorted({r["architecture"] for r in rows}):
                cands = [
                    r
                    for r in rows
                    if r["d_sae"] == d
                    and r["architecture"] == arch
                    and r["l0"] > 0
                    and r["ratio"] is not None
                ]
                if not cands:
                    continue
                best = min(cands, key=lambda r: (abs(math.log(r["l0"] / target)), r["config"]))
                if abs(math.log(best["l0"] / target)) <= math.log(L0_MATCH_FACTOR):
                    arches[arch] = {
                        k: best[k] for k in ("config", "l0", "ratio", "pwmcc", "explained_variance")
                    }
                    arches[arch]["ratio_ci"] = best["ratio_ci"]
            if len(arches) >= 2:
                top = max(arches, key=lambda a: (arches[a]["ratio"], a))
                out.append(
                    {
                        "d_sae": d,
                        "target_l0": target,
                        "best_architecture": top,
                        "architectures": arches,
                    }
                )
    return out


def goldilocks(by_d: dict[int, dict], rows: list[dict]) -> dict[str, Any]:
    """Is there an interior band of dictionary sizes where stability peaks? (docstring)"""
    sizes = sorted(by_d)
    best = {d: by_d[d] for d in sizes if by_d[d]["best_ratio"] is not None}
    sizes = list(best)
    stable = sorted({r["d_sae"] for r in rows if r["stable"]})
    peak = max(sizes, key=lambda d: (best[d]["best_ratio"], -d))

    def lo(d: int) -> float:
        ci = best[d]["best_ratio_ci"]
        return -math.inf if ci is None else ci[0]

    def hi(d: int) -> float:
        ci = best[d]["best_ratio_ci"]
        return math.inf if ci is None else ci[1]

    interior = peak not in (sizes[0], sizes[-1])
    zone = interior and lo(peak) > hi(sizes[0]) and lo(peak) > hi(sizes[-1])
    trend = ", ".join(
        f"d_sae {d}: {best[d]['best_ratio']:.2f}{_ci(best[d]['best_ratio_ci'])}" for d in sizes
    )
    p = best[peak]
    if zone:
        answer = (
            f"Goldilocks zone at d_sae {peak}: the best trained/random PWMCC ratio "
            f"({p['best_config']}, {p['best_ratio']:.2f}{_ci(p['best_ratio_ci'])}) is "
            f"clearly above the best at both ends of the grid. Best ratio by size: {trend}."
        )
    else:
        answer = (
            f"No Goldilocks zone above d_sae {peak}: the best trained/random PWMCC ratio "
            f"is highest at d_sae {peak} ({p['best_config']}, {p['best_ratio']:.2f}"
            f"{_ci(p['best_ratio_ci'])}) and no interior size beats both ends with "
            f"its CI. Best ratio by size: {trend}."
        )
    unstable_above = [d for d in sizes if stable and d > stable[-1]]
    if not stable:
        answer += " No configuration is stable (reconstructing, with CIs above both baselines)."
    elif unstable_above:
        answer += f" No configuration is stable above d_sae {stable[-1]}."
    else:
        answer += (
            " Every size has configurations that reconstruct and are above both baselines (CI)."
        )
    with_sub = [r for r in rows if "above_subspace" in r and r["reconstructs"]]
    if with_sub:
        n_above = sum(r["above_subspace"] for r in with_sub)
        top = max(with_sub, key=lambda r: (r["ratio_subspace"], r["config"]))
        answer += (
            f" Against random atoms in the activations' principal subspace, "
            f"{n_above} of {len(with_sub)} configurations are above with their CI; the "
            f"highest trained/subspace ratio is {top['ratio_subspace']:.2f}"
            f"{_ci(top['ratio_subspace_ci'])} ({top['config']})."
        )
    return {"zone": zone, "peak_d_sae": peak, "stable_d_sae": stable, "answer": answer}


def _mean_of(values: list) -> float | None:
    values = [v for v in values if v is not None]
    return sum(values) / len(values) if values else None


def by_length(rows: list[dict], lengths: list[int]) -> list[dict[str, Any]]:
    """The training-length axis: per length of ``sweep.lengths`` and at convergence
    (``epochs`` null), over the configurations that reconstruct at convergence, the
    mean explained variance, PWMCC, live PWMCC and shift null, and how many are above
    the null (reconstructing at that length, live PWMCC's CI above the null's)."""
    here = [r for r in rows if r["reconstructs"] and "live_pwmcc" in r]
    out = []
    for i, e in enumerate([*lengths, None]):
        vals = [r if e is None else r["lengths"][i] for r in here]
        out.append(
            {
                "epochs": e,
                "n_configs": len(vals),
                "n_above_shift_null": sum(bool(v["above_shift_null"]) for v in vals),
                "explained_variance": _mean_of([v["explained_variance"] for v in vals]),
                "pwmcc": _mean_of([v["pwmcc"] for v in vals]),
                "live_pwmcc": _mean_of([v["live_pwmcc"] for v in vals]),
                "shift_null_live_pwmcc": _mean_of([v["shift_null_live_pwmcc"] for v in vals]),
            }
        )
    return out


def by_lr(rows: list[dict]) -> dict[str, dict[str, Any]]:
    """Per learning rate, over the configurations that reconstruct: how many, how many
    above the shift null, mean live PWMCC and null, and the range of epochs run."""
    out = {}
    for lr in sorted({r["lr"] for r in rows if r["lr"] is not None}):
        here = [r for r in rows if r["lr"] == lr and r["reconstructs"] and "live_pwmcc" in r]
        out[f"{lr:g}"] = {
            "n_configs": len(here),
            "n_above_shift_null": sum(r["above_shift_null"] for r in here),
            "live_pwmcc": _mean_of([r["live_pwmcc"] for r in here]),
            "shift_null_live_pwmcc": _mean_of([r["shift_null_live_pwmcc"] for r in here]),
            "min_epochs": min((r["epochs_max"] for r in here if r["epochs_max"]), default=None),
            "max_epochs": max((r["epochs_max"] for r in here if r["epochs_max"]), default=None),
        }
    return out


def goldilocks_live(rows: list[dict]) -> dict[str, Any]:
    """The Goldilocks question asked of atoms beyond the data's symmetry: at which
    dictionary sizes are reconstructing configurations' live atoms more stable than the
    shift null (their CI above its CI)? A zone: such sizes exist and exclude both the
    smallest and the largest size of the grid."""
    sizes = sorted({r["d_sae"] for r in rows})
    per: dict[str, dict[str, Any]] = {}
    for d in sizes:
        here = [r for r in rows if r["d_sae"] == d and r["reconstructs"] and "live_pwmcc" in r]
        with_null = [r for r in here if r["live_excess"] is not None]
        top = max(with_null, key=lambda r: (r["live_excess"], r["config"]), default=None)
        per[str(d)] = {
            "n_configs": len(here),
            "n_above_shift_null": sum(r["above_shift_null"] for r in here),
            "best_config": top and top["config"],
            "best_excess": top and top["live_excess"],
        }
    above = [d for d in sizes if per[str(d)]["n_above_shift_null"] > 0]
    zone = bool(above) and sizes[0] not in above and sizes[-1] not in above
    trend = "; ".join(
        f"d_sae {d}: {per[str(d)]['n_above_shift_null']} of {per[str(d)]['n_configs']}"
        + (
            ""
            if per[str(d)]["best_excess"] is None
            else f" (largest excess {per[str(d)]['best_excess']:+.3f}, {per[str(d)]['best_config']})"
        )
        for d in sizes
    )
    if not above:
        answer = (
            "No configuration's live atoms are more stable than the shift null at any size: "
            f"the seeds agree no more than copies of one solution shifted at random. {trend}."
        )
    elif zone:
        answer = (
            f"Live atoms beat the shift null only at interior sizes ({', '.join(map(str, above))}): "
            f"a Goldilocks band. {trend}."
        )
    else:
        answer = (
            f"Live atoms beat the shift null at d_sae {', '.join(map(str, above))}, including an "
            f"end of the grid: no interior band. {trend}."
        )
    return {"zone": zone, "sizes_above": above, "by_d_sae": per, "answer": answer}


def summarise(
    entries: list[dict],
    stable_ratio: float,
    seeds: list[int],
    epochs: int,
    targets: list[float],
    min_ev: float = 0.5,
    lrs: list[float] | None = None,
    lengths: list[int] | None = None,
) -> dict[str, Any]:
    """Everything of ``metrics/sweep.json`` from the configuration files (pure)."""
    all_rows = [row_of(e, stable_ratio, min_ev) for e in entries]
    rows = [r for r in all_rows if not r["skipped"]]
    if not rows:
        from husai.errors import HusaiError

        raise HusaiError("sweep: every configuration of the grid was skipped")
    # rankings, best-by-size, matched L0 and the Goldilocks answer read only the
    # configurations that reconstruct their data (the others are counted, never ranked)
    ranked = sorted(
        (r for r in rows if r["ratio"] is not None and r["reconstructs"]),
        key=lambda r: (-r["ratio"], r["config"]),
    )
    by_d: dict[int, dict] = {}
    for d in sorted({r["d_sae"] for r in rows}):
        here = [r for r in ranked if r["d_sae"] == d]
        top = here[0] if here else None
        by_d[d] = {
            "best_config": top and top["config"],
            "best_ratio": top and top["ratio"],
            "best_ratio_ci": top and top["ratio_ci"],
            "best_pwmcc": top and top["pwmcc"],
            "random_pwmcc": top and top["random_pwmcc"],
            "n_configs": sum(r["d_sae"] == d for r in rows),
            "n_stable": sum(r["d_sae"] == d and r["stable"] for r in rows),
            "n_not_reconstructing": sum(r["d_sae"] == d and not r["reconstructs"] for r in rows),
        }
    matched = matched_l0([r for r in rows if r["reconstructs"]], targets)
    arch_stats: dict[str, dict[str, Any]] = {}
    for cell in matched:
        for arch, v in cell["architectures"].items():
            s = arch_stats.setdefault(arch, {"n_comparisons": 0, "wins": 0, "ratios": []})
            s["n_comparisons"] += 1
            s["wins"] += int(cell["best_architecture"] == arch)
            s["ratios"].append(v["ratio"])
    for s in arch_stats.values():
        ratios = s.pop("ratios")
        s["mean_ratio"] = sum(ratios) / len(ratios)
    return {
        "n_configs": len(rows),
        "n_saes": len(rows) * len(seeds),
        "n_skipped": len(all_rows) - len(rows),
        "n_not_reconstructing": sum(not r["reconstructs"] for r in rows),
        "n_not_converged": sum(r["converged"] is False for r in rows),
        "min_explained_variance": min_ev,
        "seeds": seeds,
        "epochs": epochs,
        "lr": list(lrs or []),
        "lengths": list(lengths or []),
        "n_above_shift_null": sum(bool(r.get("above_shift_null")) for r in rows),
        "rows": all_rows,
        "best_ratio": ranked[:N_BEST],
        "by_d_sae": {str(d): v for d, v in by_d.items()},
        "matched_l0": matched,
        "architectures_at_matched_l0": dict(sorted(arch_stats.items())),
        "goldilocks": goldilocks(by_d, rows),
        "goldilocks_live": goldilocks_live(rows),
        "by_length": by_length(rows, list(lengths or [])),
        "by_lr": by_lr(rows),
    }


@stage("sweep_summary")
def main(
    params: Path = PARAMS_OPTION,
    sweep_dir: Path = typer.Option(Path("metrics/sweep"), "--sweep", help="Folder of stage sweep."),
    out: Path = typer.Option(Path("metrics/sweep.json"), help="Summary JSON to write."),
    csv: Path = typer.Option(Path("metrics/curves/sweep.csv"), help="Plot data to write."),
) -> None:
    """Summarise the research grid: best stability ratios, matched-L0 comparison, Goldilocks."""
    from husai.config import SWEEP_KNOBS
    from husai.errors import HusaiError
    from stages._artifacts import read_json
    from stages.sweep import cell_name

    prm = load_params(params)
    if prm.sweep is None:
        raise HusaiError("sweep: missing from params.yaml")
    sw = prm.sweep
    entries = []
    for arch in sw.architectures:
        for d in sw.d_sae:
            for name in prm.sweep_configs(arch, d):
                path = sweep_dir / cell_name(arch, d) / f"{name}.json"
                entries.append(read_json(path))
    targets = sorted(
        {float(v) for a in sw.architectures if SWEEP_KNOBS[a] == "k" for v in sw.sparsity[a]}
    )
    summary = summarise(
        entries,
        sw.stable_ratio,
        list(sw.seeds),
        sw.epochs,
        targets,
        sw.min_explained_variance,
        list(sw.lr),
        list(sw.lengths),
    )
    rows = [r for r in summary["rows"] if not r["skipped"]]
    write_json(out, summary, SweepMetrics)
    write_csv(csv, CSV_COLUMNS, ([csv_value(r, c) for c in CSV_COLUMNS] for r in rows))
    console.print(
        f"sweep_summary: {summary['n_configs']} configurations "
        f"({summary['n_saes']} SAEs, {summary['n_skipped']} skipped, "
        f"{summary['n_not_reconstructing']} below EV {sw.min_explained_variance:g}) -> {out}, {csv}"
    )
    for r in summary["best_ratio"]:
        console.print(
            f"  {r['config']}: ratio {r['ratio']:.2f}{_ci(r['ratio_ci'])}, PWMCC "
            f"{r['pwmcc']:.3f}, L0 {r['l0']:.1f}, EV {r['explained_variance']:.3f}"
        )
    console.print(summary["goldilocks"]["answer"])
    console.print(summary["goldilocks_live"]["answer"])
