"""The paper's figures: each a function of :class:`~paper.metrics.Metrics` -> Figure.

A figure raises :class:`~paper.errors.Skip` when a metric file it needs is absent or
lacks a field; :func:`paper.build.build` then leaves it out and the report says why.
Figures 3-8 read the analysis files through :mod:`paper.schema`, by the layouts of the
metrics contract (:mod:`husai.records`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from matplotlib.colors import TwoSlopeNorm
from matplotlib.figure import Figure

from paper import schema as sc
from paper.errors import Skip
from paper.metrics import Metrics, number
from paper.style import new_figure

TRANSFORMER = "metrics/transformer.json"
CURVE = "metrics/curves/transformer.csv"
FOURIER = "metrics/fourier.json"
SPECTRUM = "metrics/curves/fourier_spectrum.csv"
SAES = "metrics/saes/modular.json"
STABILITY = "metrics/stability/modular.json"
MLP_STABILITY = "metrics/stability/modular_mlp.json"  # the same SAEs at mlp.hook_post
RECOVERY = "metrics/recovery.json"
SWEEP = "metrics/sweep.json"
DYNAMICS = "metrics/dynamics.json"
GEOMETRY = "metrics/geometry.json"
PREDICTORS = "metrics/predictors.json"
SYNTHETIC = "metrics/stability/synthetic.json"  # positive control: planted features
CIRCLES = "metrics/stability/circles.json"  # negative control: round circles, no features
IDMAP = "metrics/identifiability.json"

TRAINED, RANDOM, UNTRAINED = "#1f77b4", "#7f7f7f", "#ff7f0e"
ARCH_MARKERS = {
    "topk": "o",
    "batchtopk": "s",
    "standard": "^",
    "jumprelu": "D",
    "gated": "v",
    "matryoshka_batchtopk": "P",
}


@dataclass(frozen=True)
class FigureSpec:
    name: str
    title: str
    needs: tuple[str, ...]
    draw: Callable[[Metrics], Figure]


def _column(cols: dict, name: str, file: str) -> np.ndarray:
    if name not in cols:
        raise Skip(f"{file} has no column {name}")
    return np.array([np.nan if v is None else v for v in cols[name]], dtype=float)


# ----------------------------------------------------------------------------- 1 grokking


def fig_grokking(m: Metrics) -> Figure:
    cols = m.csv(CURVE)
    epoch = _column(cols, "epoch", CURVE)
    series = {
        k: _column(cols, k, CURVE)
        for k in ("train_loss", "test_loss", "train_accuracy", "test_accuracy")
    }
    grok = number(m.get(TRANSFORMER, ("grokking_epoch",)), "grokking_epoch")
    keep = epoch >= 1  # a log axis has no epoch 0
    fig = new_figure(9.0, 3.4)
    ax_loss, ax_acc = fig.subplots(1, 2)
    for ax, kind in ((ax_loss, "loss"), (ax_acc, "accuracy")):
        ax.plot(epoch[keep], series[f"train_{kind}"][keep], color=TRAINED, label=f"train {kind}")
        ax.plot(epoch[keep], series[f"test_{kind}"][keep], color=UNTRAINED, label=f"test {kind}")
        ax.set_xscale("log")
        ax.set_xlabel("full-batch epoch (log scale)")
        if grok is not None and grok >= 1:
            ax.axvline(grok, color="black", ls="--", lw=1, label=f"grokking epoch {grok:.0f}")
    ax_loss.set_yscale("log")
    ax_loss.set_ylabel("cross-entropy loss (nats, log scale)")
    ax_acc.set_ylabel("accuracy")
    ax_acc.set_ylim(-0.02, 1.02)
    ax_loss.legend(loc="lower left")
    ax_acc.legend(loc="center left")
    title = "Grokking: 1-layer transformer on (a + b) mod p"
    if grok is None:
        title += " (did not grok)"
    fig.suptitle(title)
    return fig


# ----------------------------------------------------------------------------- 2 Fourier


def fig_fourier(m: Metrics) -> Figure:
    cols = m.csv(SPECTRUM)
    freq = _column(cols, "frequency", SPECTRUM)
    emb = _column(cols, "embedding_share", SPECTRUM)
    act = _column(cols, "activation_share", SPECTRUM)
    act0 = _column(cols, "untrained_activation_share", SPECTRUM)
    key = _column(cols, "key", SPECTRUM) > 0
    shares = [
        number(m.get(FOURIER, (k,)), k)
        for k in (
            "embedding_key_frequency_share",
            "activation_key_frequency_variance_share",
            "untrained_activation_key_frequency_variance_share",
        )
    ]
    fig = new_figure(11.0, 3.4)
    ax_e, ax_a, ax_s = fig.subplots(1, 3, width_ratios=[2.2, 2.2, 1.2])
    ax_e.bar(freq[~key], emb[~key], color=RANDOM, width=0.8, label="other")
    ax_e.bar(freq[key], emb[key], color=TRAINED, width=0.8, label="key frequency")
    for f, e in zip(freq[key], emb[key], strict=True):
        ax_e.annotate(
            f"{f:.0f}",
            (f, e),
            ha="center",
            va="bottom",
            fontsize=8,
            xytext=(0, 2),
            textcoords="offset points",
        )
    ax_e.set_title("(a) embedding W_E: energy by frequency")
    ax_e.set_xlabel("frequency k")
    ax_e.set_ylabel("share of the embedding's Fourier norm²")
    ax_e.legend()
    ax_a.plot(freq, act, color=TRAINED, marker=".", label="trained")
    ax_a.plot(freq, act0, color=UNTRAINED, marker=".", label="untrained (same init seed)")
    for f in freq[key]:
        ax_a.axvline(f, color=TRAINED, alpha=0.25, lw=3)
    ax_a.set_title("(b) activations: variance by frequency")
    ax_a.set_xlabel("frequency k (shaded: key)")
    ax_a.set_ylabel("share of centred variance")
    ax_a.legend()
    labels = ["trained", "untrained"]
    vals = [np.nan if s is None else s for s in shares[1:]]
    bars = ax_s.bar(labels, vals, color=[TRAINED, UNTRAINED], width=0.6)
    for b, v in zip(bars, vals, strict=True):
        if math.isfinite(v):
            ax_s.annotate(
                f"{v:.1%}",
                (b.get_x() + b.get_width() / 2, v),
                ha="center",
                va="bottom",
                xytext=(0, 2),
                textcoords="offset points",
            )
    ax_s.set_ylim(0, 1.1)
    ax_s.set_title("(c) key-frequency share")
    ax_s.set_ylabel("activation variance in key-frequency blocks")
    fig.suptitle("Fourier structure of the grokked model (key frequencies from the embedding)")
    return fig


# ----------------------------------------------------------------------------- helpers

ARCH_COLORS = {
    "topk": "#1f77b4",
    "batchtopk": "#ff7f0e",
    "standard": "#2ca02c",
    "jumprelu": "#d62728",
    "gated": "#9467bd",
    "matryoshka_batchtopk": "#8c564b",
}
SIZE_MARKERS = {8: "o", 16: "s", 32: "P", 64: "^", 128: "v", 256: "D", 512: "h", 1024: "*"}
SUBSPACE = "#9467bd"


def arch_color(arch: str) -> str:
    return ARCH_COLORS.get(arch, "#17becf")


def size_marker(d: float | None) -> str:
    return SIZE_MARKERS.get(int(d), "X") if d is not None else "X"


def _err(mean: float | None, lo: float | None, hi: float | None) -> list[list[float]] | None:
    if mean is None or lo is None or hi is None:
        return None
    return [[max(mean - lo, 0.0)], [max(hi - mean, 0.0)]]


def _nan(v: float | None) -> float:
    return np.nan if v is None else float(v)


def _legend_below(fig: Figure, axes, ncols: int = 4) -> None:
    handles, labels = [], []
    for ax in np.atleast_1d(axes).ravel():
        for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    if handles:
        fig.legend(handles, labels, loc="outside lower center", ncols=ncols)


def config_mean(m: Metrics, config: str, metric: str) -> float | None:
    """Mean over seeds of a SAEBench metric of a baseline configuration (``saes.json``)."""
    if not m.exists(SAES):
        return None
    vals = [
        number(m.get(SAES, (*p, "metrics", metric)), metric) for p in sc.sae_seed_paths(m, config)
    ]
    vals = [v for v in vals if v is not None]
    return float(np.mean(vals)) if vals else None


# ----------------------------------------------------------------------------- 3 baselines

METRICS3 = (
    ("pwmcc", "PWMCC"),
    ("hungarian_mcc", "Hungarian MCC"),
    ("shared_fraction", "shared fraction"),
)
BASELINE_KINDS = (
    ("random", "isotropic random", RANDOM, "x", 0.0),
    ("untrained", "untrained SAE", UNTRAINED, "D", 0.14),
    ("subspace_random", "random in the data subspace", SUBSPACE, "s", 0.28),
)


def subspace_rank(m: Metrics) -> int | None:
    for _, path in sc.configs(m, STABILITY):
        r = m.get(STABILITY, path).get("subspace_rank")  # only with the data-subspace baseline
        if r is not None:
            return r
    return None


def fig_baselines(m: Metrics) -> Figure:
    entries = sc.configs(m, STABILITY)
    fig = new_figure(11.0, 1.9 + 0.55 * len(entries))
    axes = fig.subplots(1, 3, sharey=True)
    names = [n for n, _ in entries]
    rank = subspace_rank(m)
    for ax, (metric, label) in zip(axes, METRICS3, strict=True):
        drawn = False
        for i, (_, path) in enumerate(entries):
            t = sc.optional(sc.stat, m, STABILITY, path, metric)
            if t is None or t.values(m)[0] is None:
                continue
            mean, lo, hi = t.values(m)
            drawn = True
            for kind, text, color, marker, dy in BASELINE_KINDS:
                b = sc.optional(sc.baseline, m, STABILITY, path, kind, metric)
                if b is None or b.values(m)[0] is None:
                    continue
                bm, blo, bhi = b.values(m)
                if kind == "subspace_random" and rank is not None:
                    text = f"{text} (rank {rank})"
                ax.errorbar(
                    [bm],
                    [i + dy],
                    xerr=_err(bm, blo, bhi),
                    fmt=marker,
                    color=color,
                    mfc="none" if marker == "D" else color,
                    capsize=2,
                    ms=6,
                    label=f"baseline: {text}",
                )
            ax.errorbar(
                [mean],
                [i - 0.2],
                xerr=_err(mean, lo, hi),
                fmt="o",
                color=TRAINED,
                capsize=3,
                ms=7,
                label="trained SAEs (95% CI over seeds)",
            )
        if not drawn:
            ax.text(
                0.5,
                0.5,
                f"no {metric}\nin stability.json",
                ha="center",
                va="center",
                transform=ax.transAxes,
            )
        ax.set_title(label)
        ax.set_xlabel(f"{label} between seeds")
        ax.set_xlim(-0.03, 1.05)
    axes[0].set_yticks(range(len(names)), names)
    axes[0].set_ylim(len(names) - 0.5, -0.5)
    _legend_below(fig, axes, ncols=2)
    fig.suptitle("Stability across seeds of the baseline SAEs vs three random baselines")
    return fig


# ----------------------------------------------------------------------------- 4 heatmaps

RATIO_KINDS = (
    ("ratio", "ratio_ci", "trained / isotropic-random PWMCC"),
    ("ratio_subspace", "ratio_subspace_ci", "trained / data-subspace-random PWMCC"),
)


def _luminance(rgba) -> float:
    r, g, b = rgba[:3]
    return 0.299 * r + 0.587 * g + 0.114 * b


def fig_heatmaps(m: Metrics) -> Figure:
    import matplotlib

    rows = sc.rows(m, SWEEP)
    kinds = [k for k in RATIO_KINDS if any(r.get(k[0]) is not None for _, r in rows)]
    if not kinds:
        raise Skip(f"{SWEEP}: no row has a ratio")
    skipped = sc.skipped_rows(m, SWEEP)
    archs = list(dict.fromkeys(r["architecture"] for _, r in rows))
    fig = new_figure(3.3 * len(archs) + 1.4, 3.2 * len(kinds) + 0.6)
    axes = np.atleast_2d(fig.subplots(len(kinds), len(archs), squeeze=False))
    for row_axes, (key, ci_key, label) in zip(axes, kinds, strict=True):
        vals = [r[key] for _, r in rows if r.get(key) is not None]
        if key == "ratio":
            norm = matplotlib.colors.Normalize(vmin=min(vals), vmax=max(vals))
            cmap = matplotlib.colormaps["viridis"]
        else:
            norm = TwoSlopeNorm(vcenter=1.0, vmin=min(*vals, 0.99), vmax=max(*vals, 1.01))
            cmap = matplotlib.colormaps["RdBu_r"]
        image = None
        for ax, arch in zip(row_axes, archs, strict=True):
            mine = [r for _, r in rows if r["architecture"] == arch]
            gone = [r for r in skipped if r["architecture"] == arch]
            ds = sorted({r["d_sae"] for r in mine + gone})
            levels = sorted({r["level"] for r in mine + gone})
            grid = np.full((len(ds), len(levels)), np.nan)
            for r in mine:
                if r.get(key) is not None:
                    grid[ds.index(r["d_sae"]), levels.index(r["level"])] = r[key]
            image = ax.imshow(
                np.ma.masked_invalid(grid), cmap=cmap, norm=norm, aspect="auto", origin="lower"
            )
            ax.set_facecolor("#e6e6e6")
            for r in mine:
                i, j = ds.index(r["d_sae"]), levels.index(r["level"])
                v = r.get(key)
                if v is None:
                    continue
                ci = r[ci_key]
                star = "*" if key == "ratio_subspace" and ci is not None and ci[0] > 1 else ""
                l0 = f"\nL0 {r['l0']:.3g}"
                color = "white" if _luminance(cmap(norm(v))) < 0.5 else "black"
                ax.text(
                    j,
                    i,
                    f"{v:.2f}{star}{l0}",
                    ha="center",
                    va="center",
                    fontsize=6.5,
                    color=color,
                    linespacing=1.1,
                )
            for r in gone:
                ax.text(
                    levels.index(r["level"]),
                    ds.index(r["d_sae"]),
                    "n/a\n(k > d_sae)",
                    ha="center",
                    va="center",
                    fontsize=5.5,
                    color="#555555",
                )
            ax.set_xticks(range(len(levels)), [f"{s:g}" for s in levels])
            ax.set_yticks(range(len(ds)), [f"{d:g}" for d in ds])
            knob = (mine or gone)[0]["knob"]
            ax.set_xlabel(sc.SPARSITY_LABEL.get(knob, knob))
            ax.set_ylabel("d_sae (latents)")
            ax.set_title(arch)
            ax.grid(False)
        cbar = label + ("\n(* CI above 1)" if key == "ratio_subspace" else "")
        fig.colorbar(image, ax=list(row_axes), label=cbar, shrink=0.9)
    fig.suptitle(
        "Sweep: stability over dictionary size x sparsity (cell: ratio, measured L0 below)"
    )
    return fig


# ----------------------------------------------------------------------------- 5 trade-off


def baseline_points(m: Metrics) -> list[dict]:
    """The baseline configurations of ``stability.json``: arch, d_sae, EV, ratio Stats."""
    out = []
    for name, path in sc.configs(m, STABILITY):
        entry = m.get(STABILITY, path)
        out.append(
            {
                "name": name,
                "path": path,
                "arch": entry["architecture"],
                "d_sae": entry["d_sae"],
                "ev": config_mean(m, name, "explained_variance"),
                "ratio": sc.optional(sc.ratio, m, STABILITY, path, "pwmcc", "random"),
                "ratio_subspace": sc.optional(sc.ratio, m, STABILITY, path, "pwmcc", "subspace"),
            }
        )
    return out


def _size_legend(ax, sizes: list[float]) -> list:
    from matplotlib.lines import Line2D

    return [
        Line2D(
            [],
            [],
            ls="none",
            marker=size_marker(d),
            color="black",
            mfc="none",
            label=f"d_sae {d:g}",
        )
        for d in sorted(set(sizes))
    ]


def _arch_legend(archs: list[str]) -> list:
    from matplotlib.lines import Line2D

    return [
        Line2D([], [], ls="none", marker="o", color=arch_color(a), label=a)
        for a in dict.fromkeys(archs)
    ]


def fig_tradeoff(m: Metrics) -> Figure:
    sweep = sc.optional(sc.rows, m, SWEEP) if m.exists(SWEEP) else None
    base = [p for p in baseline_points(m) if p["ev"] is not None]
    panels = [
        ("ratio", "ratio_ci", "PWMCC trained / isotropic random"),
        ("ratio_subspace", "ratio_subspace_ci", "PWMCC trained / data-subspace random"),
    ]
    fig = new_figure(11.0, 4.6)
    axes = fig.subplots(1, 2)
    archs, sizes, n = [], [], 0
    for ax, (key, ci_key, label) in zip(axes, panels, strict=True):
        for path, r in sweep or []:
            if r.get(key) is None:  # ratio null, or no data-subspace baseline
                continue
            s = sc.row_stat(m, SWEEP, path, key, ci_key)
            y, lo, hi = s.values(m)
            ax.errorbar(
                [r["explained_variance"]],
                [y],
                yerr=_err(y, lo, hi),
                fmt=size_marker(r["d_sae"]),
                color=arch_color(r["architecture"]),
                ms=5,
                capsize=1.5,
                alpha=0.75,
                elinewidth=0.8,
            )
            archs.append(r["architecture"])
            sizes.append(r["d_sae"])
            n += 1
        for k, p in enumerate(base):
            st = p[key]
            if st is None or st.values(m)[0] is None:
                continue
            y, lo, hi = st.values(m)
            ax.errorbar(
                [p["ev"]],
                [y],
                yerr=_err(y, lo, hi),
                fmt=size_marker(p["d_sae"]),
                color=arch_color(p["arch"]),
                ms=13,
                mec="black",
                capsize=2,
                alpha=0.85,
            )
            ax.annotate(
                f"baseline {p['name']}",
                (p["ev"], y),
                xytext=(0.6, 0.22 - 0.06 * k),
                textcoords="axes fraction",
                ha="right",
                va="center",
                fontsize=7,
                color=arch_color(p["arch"]),
                arrowprops={"arrowstyle": "-", "color": "#888888", "lw": 0.6},
            )
            archs.append(p["arch"])
            sizes.append(p["d_sae"])
            n += 1
        ax.axhline(1.0, color=RANDOM, ls="--", lw=1)
        ax.set_xlabel("explained variance (mean over seeds)")
        ax.set_ylabel(label + " (dashed: 1)")
        ax.set_title(label)
    if n == 0:
        raise Skip("no configuration with both explained variance and a PWMCC ratio")
    fig.legend(
        handles=_arch_legend(archs) + _size_legend(axes[0], sizes),
        loc="outside right center",
        title="colour / marker",
    )
    fig.suptitle("Stability vs reconstruction: sweep (small) and baseline SAEs (large, black edge)")
    return fig


# ----------------------------------------------------------------------------- 6 recovery


RECOVERY_PANELS = (
    ("key_frequency_coverage", "coverage", "key-frequency coverage"),
    ("pure_latent_fraction", "pure_latent_fraction", "pure-latent fraction"),
    ("decoder_alignment", "decoder_alignment", "decoder alignment (mean best |cos|)"),
)


def fig_recovery(m: Metrics) -> Figure:
    base = {p["name"]: p for p in baseline_points(m)}
    entries = [(n, p) for n, p in sc.configs(m, RECOVERY) if n in base]
    sweep = sc.optional(sc.rows, m, SWEEP) if m.exists(SWEEP) else None
    if not entries and not sweep:
        raise Skip(f"{RECOVERY} shares no configuration with {STABILITY}")
    fig = new_figure(11.5, 4.0)
    axes = fig.subplots(1, 3)
    archs, sizes = [], []
    for ax, (metric, row_key, label) in zip(axes, RECOVERY_PANELS, strict=True):
        for _, r in sweep or []:
            x, y = r["ratio"], r[row_key]
            if x is None or y is None:
                continue
            ax.plot(
                [x],
                [y],
                size_marker(r["d_sae"]),
                color=arch_color(r["architecture"]),
                ms=5,
                alpha=0.7,
            )
            archs.append(r["architecture"])
            sizes.append(r["d_sae"])
            if metric == "decoder_alignment" and r["random_decoder_alignment"] is not None:
                ax.plot(
                    [x],
                    [r["random_decoder_alignment"]],
                    "_",
                    color=RANDOM,
                    ms=6,
                    label="random dictionary of the same shape",
                )
        for name, path in entries:
            s = sc.optional(sc.stat, m, RECOVERY, path, metric)
            rat = base[name]["ratio"]
            if s is None or rat is None:
                continue
            y, ylo, yhi = s.values(m)
            x, xlo, xhi = rat.values(m)
            if x is None or y is None:
                continue
            p = base[name]
            ax.errorbar(
                [x],
                [y],
                xerr=_err(x, xlo, xhi),
                yerr=_err(y, ylo, yhi),
                fmt=size_marker(p["d_sae"]),
                color=arch_color(p["arch"]),
                ms=13,
                mec="black",
                capsize=2,
            )
            archs.append(p["arch"])
            sizes.append(p["d_sae"])
            if metric == "decoder_alignment":
                b = sc.optional(sc.baseline, m, RECOVERY, path, "random", metric)
                if b is not None and b.values(m)[0] is not None:
                    ax.plot(
                        [x],
                        [b.values(m)[0]],
                        "_",
                        color=RANDOM,
                        ms=12,
                        mew=2,
                        label="random dictionary of the same shape",
                    )
        ax.set_xlabel("PWMCC trained / isotropic random")
        ax.set_ylabel(label)
        ax.margins(x=0.08)
        ax.set_ylim(-0.03, 1.05)
        ax.set_title(label)
    handles = _arch_legend(archs) + _size_legend(axes[0], sizes)
    h, _ = axes[2].get_legend_handles_labels()
    if h:
        handles.append(h[0])
    fig.legend(handles=handles, loc="outside right center", title="colour / marker")
    fig.suptitle(
        "Ground-truth (Fourier) recovery vs stability: sweep (small), baseline SAEs (large)"
    )
    return fig


# ----------------------------------------------------------------------------- 7 dynamics


CHECKPOINT_STATS = ("explained_variance", "l0", "frac_alive", "cos_to_final")
CHECKPOINT_NUMBERS = ("settled_fraction", "match_agreement_live")


def dynamics_series(m: Metrics, path, key: str) -> tuple[list[float], list[sc.Stat]]:
    """Steps and the Stat of ``key`` at each checkpoint of one dynamics configuration
    (:class:`husai.records.DynamicsCheckpoint`).

    ``key`` is a stability metric (``pwmcc``, ``shared_fraction``; under ``stability``),
    a per-seed statistic of the checkpoint (:data:`CHECKPOINT_STATS`) or one of its
    numbers (:data:`CHECKPOINT_NUMBERS`)."""
    cps = m.get(DYNAMICS, (*path, "checkpoints"))
    if not cps:
        raise Skip(f"{DYNAMICS}: {'/'.join(map(str, path))} has no checkpoints")
    steps, stats = [], []
    for i in range(len(cps)):
        base = (*path, "checkpoints", i)
        steps.append(number(m.get(DYNAMICS, (*base, "step")), "step"))
        if key in CHECKPOINT_NUMBERS:
            stats.append(sc.value_at(m, DYNAMICS, (*base, key)))
        elif key in CHECKPOINT_STATS:
            stats.append(sc.stat_at(m, DYNAMICS, (*base, key)))
        else:
            stats.append(sc.stat_at(m, DYNAMICS, (*base, "stability", key)))
    return steps, stats


DYN_PANELS = (
    ("pwmcc", "(a) PWMCC between seeds"),
    ("shared_fraction", "(b) shared fraction (Paulo & Belrose)"),
    ("frac_alive", "(c) live latents (fraction of d_sae)"),
    ("match_agreement_live", "(d) best matches that are already the final ones"),
)


def fig_dynamics(m: Metrics) -> Figure:
    entries = sc.configs(m, DYNAMICS)
    fig = new_figure(10.0, 7.0)
    axes = fig.subplots(2, 2, sharex=True)
    n = 0
    refs: dict[tuple, list[str]] = {}
    for ax, (key, title) in zip(axes.ravel(), DYN_PANELS, strict=True):
        for name, path in entries:
            got = sc.optional(dynamics_series, m, path, key)
            if got is None:
                continue
            steps, stats = got
            vals = [s.values(m) for s in stats]
            color = arch_color(m.get(DYNAMICS, (*path, "architecture")))
            ax.plot(
                steps,
                [_nan(v[0]) for v in vals],
                marker=".",
                color=color,
                label=(
                    f"(live latent, other seed) best match final: {name}"
                    if key == "match_agreement_live"
                    else f"trained: {name}"
                ),
            )
            if all(v[1] is not None and v[2] is not None for v in vals):
                ax.fill_between(
                    steps, [v[1] for v in vals], [v[2] for v in vals], color=color, alpha=0.2
                )
            n += 1
            if key in ("pwmcc", "shared_fraction"):
                iso = sc.optional(m.get, DYNAMICS, (*path, "random", "isotropic", key, "mean"))
                if isinstance(iso, int | float):
                    refs.setdefault((ax, "isotropic random", iso), []).append(name)
                if m.exists(STABILITY) and key == "pwmcc":
                    sub = sc.optional(m.get, STABILITY, (name, "subspace_random_pwmcc", "mean"))
                    if isinstance(sub, int | float):
                        refs.setdefault((ax, "random in the data subspace", sub), []).append(name)
            if key == "match_agreement_live":
                got2 = sc.optional(dynamics_series, m, path, "settled_fraction")
                if got2 is not None:
                    ax.plot(
                        got2[0],
                        [_nan(s.values(m)[0]) for s in got2[1]],
                        ls="--",
                        color=color,
                        marker="x",
                        ms=4,
                        label=f"latent settled in every other seed: {name}",
                    )
        ax.set_title(title)
        ax.set_xscale("symlog", linthresh=1.0)  # checkpoints are log-spaced from step 0
        ax.set_xlim(left=0)
        ax.set_ylim(-0.03, 1.03)
        ax.legend(fontsize=6.5)
    if n == 0:
        raise Skip(f"{DYNAMICS}: no configuration has a series by step")
    for (ax, label, value), names in refs.items():
        same = [k for k in refs if k[0] is ax and k[1] == label]
        ax.axhline(
            value,
            color="black" if "isotropic" in label else SUBSPACE,
            ls="--" if "isotropic" in label else ":",
            lw=1.2,
            label=label if len(same) == 1 else f"{label} ({', '.join(names)})",
        )
        ax.legend(fontsize=6.5)
    for ax in axes[1]:
        ax.set_xlabel("SAE training step (log scale past 1; 0 = initialisation)")
    fig.suptitle("Training dynamics of the baseline SAEs (band: 95% CI over seeds)")
    return fig


# ----------------------------------------------------------------------------- 8 geometry, predictors

GROUP_METRICS = (
    ("group_overlap", "group\nsubspace overlap"),
    ("atom_in_span", "atom in the other\nseed's group span"),
    ("atom_match", "single atom\nmatch (|cos|)"),
    ("null_overlap", "shuffled-group\nnull overlap"),
)


def fig_geometry(m: Metrics) -> Figure:
    entries = sc.configs(m, GEOMETRY)
    fig = new_figure(13.0, 5.6)
    ax_s, ax_g, ax_k = fig.subplots(1, 3, width_ratios=[1.1, 1.0, 1.5])
    all_ranks: set[float] = set()
    n = 0
    width = 0.8 / max(len(entries), 1)
    for i, (name, path) in enumerate(entries):
        entry = m.get(GEOMETRY, path)
        color = arch_color(entry["architecture"])
        off = (i - (len(entries) - 1) / 2) * width
        sub = entry["subspace"]  # per rank "<r>"
        ranks = sorted(sub["overlap"], key=float)
        if ranks:
            all_ranks.update(float(r) for r in ranks)
            stats = [
                sc.stat_at(m, GEOMETRY, (*path, "subspace", "overlap", r)).values(m) for r in ranks
            ]
            ax_s.errorbar(
                [float(r) for r in ranks],
                [_nan(v[0]) for v in stats],
                yerr=None
                if any(v[1] is None for v in stats)
                else [[v[0] - v[1] for v in stats], [v[2] - v[0] for v in stats]],
                marker="o",
                color=color,
                capsize=2,
                label=f"between seeds: {name}",
            )
            ds = sub["data_sample_overlap"]
            xs = [float(r) for r in ranks if r in ds]
            ax_s.plot(
                xs,
                [ds[r] for r in ranks if r in ds],
                ls="--",
                color=color,
                marker="x",
                label=f"data-sample reference ({name})",
            )
            if i == 0:
                rnd = sub["random_expectation"]
                xs = [float(r) for r in ranks if r in rnd]
                ax_s.plot(
                    xs,
                    [rnd[r] for r in ranks if r in rnd],
                    color=RANDOM,
                    lw=2,
                    label="random expectation r / d_in",
                )
            n += 1
        bars = (
            ("seed_distance", "between\nseeds"),
            ("distance_to_data_sample", "seed vs\ndata sample"),
            ("distance_to_isotropic", "seed vs\nisotropic"),
        )
        for j, (key, _) in enumerate(bars):
            v = sc.stat_at(m, GEOMETRY, (*path, "gram", key)).values(m)
            ax_g.bar(
                j + off,
                _nan(v[0]),
                width,
                color=color,
                yerr=_err(*v),
                capsize=2,
                label=name if j == 0 else None,
            )
        ref = entry["gram"]["data_sample_pair_distance"]
        ax_g.plot(
            [off - width / 2, off + width / 2],
            [ref, ref],
            color="black",
            lw=2,
            label="two data-sample dictionaries" if i == 0 else None,
        )
        sample = entry["groups"]["data_sample"]
        for j, (key, _) in enumerate(GROUP_METRICS):
            v = sc.stat_at(m, GEOMETRY, (*path, "groups", "all", key)).values(m)
            ax_k.bar(
                j + off,
                _nan(v[0]),
                width,
                color=color,
                yerr=_err(*v),
                capsize=2,
                label=name if j == 0 else None,
            )
            if sample[key] is not None:
                ax_k.plot(
                    [j + off - width / 2, j + off + width / 2],
                    [sample[key]] * 2,
                    color="black",
                    lw=2,
                    label="data-sample reference" if i == 0 and j == 0 else None,
                )
        rnd = entry["groups"]["all"]["random_overlap"]
        if i == 0 and rnd is not None:
            ax_k.axhline(rnd, color=RANDOM, ls="--", lw=1, label="random subspaces")
    if n == 0:
        raise Skip(f"{GEOMETRY}: no configuration with subspace overlaps")
    ax_s.set_xscale("log", base=2)
    ax_s.set_xticks(sorted(all_ranks), [f"{r:g}" for r in sorted(all_ranks)])
    ax_s.minorticks_off()
    ax_s.set_xlabel("rank r of the decoder subspace")
    ax_s.set_ylabel("mean cos² of principal angles")
    ax_s.set_ylim(-0.03, 1.05)
    ax_s.set_title("(a) top-r decoder subspaces")
    below = {"loc": "upper center", "bbox_to_anchor": (0.5, -0.14), "ncols": 2, "fontsize": 7}
    ax_s.legend(**below)
    ax_g.set_xticks(range(len(bars)), [b for _, b in bars])
    ax_g.set_ylabel("total-variation distance of Gram spectra")
    ax_g.set_title("(b) Gram spectra (lower = more alike)")
    ax_g.legend(**below)
    ax_k.set_xticks(range(len(GROUP_METRICS)), [b for _, b in GROUP_METRICS])
    ax_k.set_ylabel("mean between seed pairs")
    ax_k.set_ylim(0, 1.05)
    ax_k.set_title("(c) key-frequency atom groups (live atoms)")
    ax_k.legend(**{**below, "ncols": 3})
    fig.suptitle("Geometry conserved across seeds, beside references with no learning")
    return fig


PREDICTOR_LABELS = {
    "firing_frequency": "firing frequency",
    "purity": "Fourier purity",
    "decoder_norm": "decoder norm\n(unit by construction)",
    "encoder_norm": "encoder norm",
    "max_cos_ground_truth": "max |cos| with\nground truth",
}


def fig_predictors(m: Metrics) -> Figure:
    entries = [(n, p) for n, p in sc.configs(m, PREDICTORS) if m.get(PREDICTORS, (*p, "auc"))]
    if not entries:
        raise Skip(f"{PREDICTORS}: no configuration with AUCs")
    props = list(dict.fromkeys(k for _, p in entries for k in m.get(PREDICTORS, (*p, "auc"))))
    fig = new_figure(max(7.5, 1.5 * len(props) + 2.5), 4.6)
    ax = fig.subplots()
    width = 0.8 / len(entries)
    for i, (name, path) in enumerate(entries):
        entry = m.get(PREDICTORS, path)
        color = arch_color(entry["architecture"])
        label = f"{name} ({entry['n_shared']} shared of {entry['n_live']} live latents)"
        for j, prop in enumerate(props):
            if prop not in entry["auc"]:
                continue
            st = sc.stat_at(m, PREDICTORS, (*path, "auc", prop))
            v = st.values(m)
            x = j + (i - (len(entries) - 1) / 2) * width
            ax.bar(
                x,
                _nan(v[0]),
                width,
                color=color,
                yerr=_err(*v),
                capsize=2,
                label=label if j == 0 else None,
            )
            pooled = entry["auc"][prop]["pooled"]
            if pooled is not None:
                ax.plot(
                    [x],
                    [pooled],
                    "kx",
                    ms=6,
                    label="pooled over seeds" if i == 0 and j == 0 else None,
                )
    ax.axhline(0.5, color=RANDOM, ls="--", lw=1, label="chance (AUC 0.5)")
    ax.set_xticks(range(len(props)), [PREDICTOR_LABELS.get(p, p.replace("_", " ")) for p in props])
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("ROC AUC for 'shared with most other seeds'\n(bar: mean over seeds, 95% CI)")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.set_title("Which properties of a live latent predict that it is shared across seeds")
    return fig


# ----------------------------------------------------------------------------- 9 controls

SUPERPOSITION_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b")
CONTROL_STYLE = {  # domain file -> (label, marker, colour)
    SYNTHETIC: ("positive control (synthetic)", "*", "#000000"),
    CIRCLES: ("negative control (circles)", "X", "#e377c2"),
    STABILITY: ("modular SAEs", "o", TRAINED),
}


def _domain_live(m: Metrics, file: str) -> list[tuple[str, sc.Stat, sc.Stat | None]]:
    """``[(config, live PWMCC, count-matched data-subspace baseline)]`` of a domain file."""
    if not m.exists(file):
        return []
    out = []
    for name, path in sc.configs(m, file):
        live = (*path, "live")
        if m.get(file, path).get("live") is None:
            continue
        sub = m.get(file, (*live, "subspace_live_pwmcc"))
        out.append(
            (
                name,
                sc.stat_at(m, file, (*live, "live_pwmcc")),
                None if sub is None else sc.stat_at(m, file, (*live, "subspace_live_pwmcc")),
            )
        )
    return out


def fig_controls(m: Metrics) -> Figure:
    from matplotlib.lines import Line2D

    cells = m.get(IDMAP, ("cells",))
    if not cells:
        raise Skip(f"{IDMAP} has no cells")
    head = m.get(IDMAP, ("headline",))
    stab, rec = head["stability"], head["recovery"]
    threshold, level = head["threshold"], m.get(IDMAP, ("recovered_level",))
    supers = sorted({c["superposition"] for c in cells})
    color = {s: SUPERPOSITION_COLORS[i % len(SUPERPOSITION_COLORS)] for i, s in enumerate(supers)}
    fig = new_figure(11.5, 4.8)
    ax_map, ax_dom = fig.subplots(1, 2, width_ratios=[1.2, 1.0])
    for c in cells:
        x, y = c.get(stab), c.get(rec)
        if x is None or y is None:
            continue
        ax_map.plot(
            [x],
            [y],
            ARCH_MARKERS.get(c["architecture"], "X"),
            color=color[c["superposition"]],
            mfc=color[c["superposition"]] if c["converged"] else "none",
            ms=6,
            alpha=0.85,
        )
    syn = 0
    if m.exists(SYNTHETIC):
        for name, path in sc.configs(m, SYNTHETIC):
            xs = sc.stat_at(m, SYNTHETIC, (*path, "live", "live_pwmcc")).values(m)
            ys = sc.optional(sc.stat_at, m, SYNTHETIC, (*path, "ground_truth", rec))
            if ys is None or xs[0] is None or ys.values(m)[0] is None:
                continue
            yv = ys.values(m)
            ax_map.errorbar(
                [xs[0]],
                [yv[0]],
                xerr=_err(*xs),
                yerr=_err(*yv),
                fmt="*",
                color="black",
                ms=14,
                capsize=2,
            )
            ax_map.annotate(
                f"synthetic {name}",
                (xs[0], yv[0]),
                xytext=(-6, -10 - 10 * syn),
                textcoords="offset points",
                ha="right",
                fontsize=7,
            )
            syn += 1
    if threshold is not None:
        ax_map.axvline(threshold, color="black", ls="--", lw=1)
    ax_map.axhline(level, color=RANDOM, ls=":", lw=1)
    ax_map.set_xlabel(f"stability: {stab} between seeds")
    ax_map.set_ylabel(f"recovery: {rec} with the planted features")
    ax_map.set_ylim(-0.03, 1.05)
    ax_map.set_title("(a) identifiability map: one point per cell")
    handles = [
        Line2D([], [], ls="none", marker="s", color=color[s], label=f"superposition {s:g}")
        for s in supers
    ]
    handles += [
        Line2D(
            [], [], ls="none", marker=ARCH_MARKERS.get(a, "X"), color="black", mfc="none", label=a
        )
        for a in dict.fromkeys(c["architecture"] for c in cells)
    ]
    handles.append(
        Line2D([], [], ls="none", marker="o", color="grey", mfc="none", label="not converged")
    )
    if syn:
        handles.append(
            Line2D([], [], ls="none", marker="*", color="black", ms=10, label="synthetic control")
        )
    if threshold is not None:
        handles.append(Line2D([], [], color="black", ls="--", label="stability threshold"))
    handles.append(Line2D([], [], color=RANDOM, ls=":", label="recovered level"))
    ax_map.legend(handles=handles, fontsize=6.5, loc="lower right")
    rows = []
    for file in (SYNTHETIC, CIRCLES, STABILITY):
        rows += [(file, *r) for r in _domain_live(m, file)]
    for i, (file, _name, live, sub) in enumerate(rows):
        label, marker, col = CONTROL_STYLE[file]
        mean, lo, hi = live.values(m)
        ax_dom.errorbar(
            [_nan(mean)],
            [i],
            xerr=_err(mean, lo, hi),
            fmt=marker,
            color=col,
            ms=8,
            capsize=2,
            label=label,
        )
        if sub is not None and sub.values(m)[0] is not None:
            bm, blo, bhi = sub.values(m)
            ax_dom.errorbar(
                [bm],
                [i + 0.25],
                xerr=_err(bm, blo, bhi),
                fmt="s",
                color=SUBSPACE,
                ms=5,
                capsize=2,
                label="count-matched random atoms in the data subspace",
            )
    if threshold is not None:
        ax_dom.axvline(threshold, color="black", ls="--", lw=1, label="map's stability threshold")
    if rows:
        ax_dom.set_yticks(
            range(len(rows)),
            [f"{file.rsplit('/', 1)[-1][:-5]} {name}" for file, name, _, _ in rows],
        )
        ax_dom.set_ylim(len(rows) - 0.5, -0.5)
    else:
        ax_dom.text(
            0.5,
            0.5,
            "no domain file with live stability",
            ha="center",
            va="center",
            transform=ax_dom.transAxes,
        )
    ax_dom.set_xlim(-0.03, 1.05)
    ax_dom.set_xlabel("live PWMCC between seeds (95% CI)")
    ax_dom.set_title("(b) live PWMCC per domain (circles: no ground-truth MCC)")
    _legend_below(fig, [ax_dom], ncols=2)
    fig.suptitle("Controls: stability vs recovery where the answer is known")
    return fig


FIGURES: tuple[FigureSpec, ...] = (
    FigureSpec("fig1_grokking", "Grokking curves", (CURVE, TRANSFORMER), fig_grokking),
    FigureSpec(
        "fig2_fourier",
        "Fourier spectrum of the embedding and activations",
        (SPECTRUM, FOURIER),
        fig_fourier,
    ),
    FigureSpec(
        "fig3_baselines",
        "Stability vs isotropic, untrained and data-subspace baselines",
        (STABILITY,),
        fig_baselines,
    ),
    FigureSpec(
        "fig4_stability_heatmaps", "Stability over d_sae x sparsity", (SWEEP,), fig_heatmaps
    ),
    FigureSpec("fig5_tradeoff", "Stability-reconstruction trade-off", (STABILITY,), fig_tradeoff),
    FigureSpec(
        "fig6_recovery", "Ground-truth recovery vs stability", (RECOVERY, STABILITY), fig_recovery
    ),
    FigureSpec("fig7_dynamics", "Stability by SAE training step", (DYNAMICS,), fig_dynamics),
    FigureSpec("fig8a_geometry", "Geometry conserved across seeds", (GEOMETRY,), fig_geometry),
    FigureSpec("fig8b_predictors", "Predictors of shared latents", (PREDICTORS,), fig_predictors),
    FigureSpec(
        "fig9_controls",
        "Controls: identifiability map and live PWMCC of the control domains",
        (IDMAP,),
        fig_controls,
    ),
)
