"""The paper's figures: each a function of :class:`~paper.metrics.Metrics` -> Figure.

A figure raises :class:`~paper.errors.Skip` when a metric file it needs is absent or
lacks a field; :func:`paper.build.build` then leaves it out and the report says why.
Figures 3-8 read the analysis files through :mod:`paper.schema`.
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
SAES = "metrics/saes.json"
STABILITY = "metrics/stability.json"
RECOVERY = "metrics/recovery.json"
SWEEP = "metrics/sweep.json"
DYNAMICS = "metrics/dynamics.json"
GEOMETRY = "metrics/geometry.json"
PREDICTORS = "metrics/predictors.json"

TRAINED, RANDOM, UNTRAINED = "#1f77b4", "#7f7f7f", "#ff7f0e"
ARCH_MARKERS = {"topk": "o", "batchtopk": "s", "standard": "^", "jumprelu": "D",
                "gated": "v", "matryoshka_batchtopk": "P"}


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
    series = {k: _column(cols, k, CURVE)
              for k in ("train_loss", "test_loss", "train_accuracy", "test_accuracy")}
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
    shares = [number(m.get(FOURIER, (k,)), k) for k in (
        "embedding_key_frequency_share", "activation_key_frequency_variance_share",
        "untrained_activation_key_frequency_variance_share")]
    fig = new_figure(11.0, 3.4)
    ax_e, ax_a, ax_s = fig.subplots(1, 3, width_ratios=[2.2, 2.2, 1.2])
    ax_e.bar(freq[~key], emb[~key], color=RANDOM, width=0.8, label="other")
    ax_e.bar(freq[key], emb[key], color=TRAINED, width=0.8, label="key frequency")
    for f, e in zip(freq[key], emb[key], strict=True):
        ax_e.annotate(f"{f:.0f}", (f, e), ha="center", va="bottom", fontsize=8,
                      xytext=(0, 2), textcoords="offset points")
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
            ax_s.annotate(f"{v:.1%}", (b.get_x() + b.get_width() / 2, v), ha="center",
                          va="bottom", xytext=(0, 2), textcoords="offset points")
    ax_s.set_ylim(0, 1.1)
    ax_s.set_title("(c) key-frequency share")
    ax_s.set_ylabel("activation variance in key-frequency blocks")
    fig.suptitle("Fourier structure of the grokked model (key frequencies from the embedding)")
    return fig


# ----------------------------------------------------------------------------- 3 baselines

METRICS3 = (("pwmcc", "PWMCC"), ("hungarian_mcc", "Hungarian MCC"),
            ("shared_fraction", "shared fraction"))


def _err(mean: float | None, lo: float | None, hi: float | None) -> list[list[float]] | None:
    if mean is None or lo is None or hi is None:
        return None
    return [[max(mean - lo, 0.0)], [max(hi - mean, 0.0)]]


def fig_baselines(m: Metrics) -> Figure:
    entries = sc.configs(m, STABILITY, "pwmcc")
    fig = new_figure(11.0, 1.2 + 0.45 * len(entries))
    axes = fig.subplots(1, 3, sharey=True)
    names = [n for n, _ in entries]
    for ax, (metric, label) in zip(axes, METRICS3, strict=True):
        drawn = False
        for i, (_, path) in enumerate(entries):
            t = sc.optional(sc.stat, m, STABILITY, path, metric)
            if t is None:
                continue
            mean, lo, hi = t.values(m)
            if mean is None:
                continue
            drawn = True
            ax.errorbar([mean], [i], xerr=_err(mean, lo, hi), fmt="o", color=TRAINED,
                        capsize=3, label="trained (95% CI)" if i == 0 else None)
            for kind, color, marker in (("random", RANDOM, "x"), ("untrained", UNTRAINED, "D")):
                b = sc.optional(sc.baseline, m, STABILITY, path, kind, metric)
                if b is None:
                    continue
                bm, blo, bhi = b.values(m)
                if bm is None:
                    continue
                ax.errorbar([bm], [i], xerr=_err(bm, blo, bhi), fmt=marker, color=color,
                            mfc="none" if marker == "D" else color, capsize=2,
                            label=f"{kind} baseline" if i == 0 else None)
        if not drawn:
            ax.text(0.5, 0.5, f"no {metric}\nin stability.json", ha="center", va="center",
                    transform=ax.transAxes)
        ax.set_title(label)
        ax.set_xlabel(f"{label} between seeds")
        ax.set_xlim(-0.02, 1.02)
    axes[0].set_yticks(range(len(names)), names)
    axes[0].set_ylim(len(names) - 0.5, -0.5)
    handles, labels = [], []
    for ax in axes:
        for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    fig.legend(handles, labels, loc="outside lower center", ncols=3)
    fig.suptitle("Stability across seeds: trained SAEs vs random and untrained dictionaries")
    return fig


# ----------------------------------------------------------------------------- 4 heatmaps


def _sparsity_key(arch: str) -> str:
    if arch in ("standard", "gated"):
        return "l1_coefficient"
    if arch == "jumprelu":
        return "l0_coefficient"
    return "k"


def sweep_points(m: Metrics, file: str = SWEEP) -> list[dict]:
    """One dict per configuration: name, arch, d_sae, sparsity key/value, ratio Stat."""
    out = []
    for name, path in sc.configs(m, file, "pwmcc_ratio_to_random"):
        arch = sc.architecture_of(m, file, path, name)
        key = _sparsity_key(arch)
        d_path = sc.hyperparameter(m, file, path, "d_sae")
        s_path = sc.hyperparameter(m, file, path, key)
        out.append({
            "name": name, "path": path, "arch": arch, "sparsity_key": key,
            "d_sae": None if d_path is None else number(m.get(file, d_path), "d_sae"),
            "sparsity": None if s_path is None else number(m.get(file, s_path), key),
            "ratio": sc.ratio(m, file, path),
        })
    return out


def ratio_points(m: Metrics) -> list[dict]:
    """:func:`sweep_points` of stability.json and sweep.json (whichever exist), by name."""
    points: dict[str, dict] = {}
    for file in (STABILITY, SWEEP):
        if m.exists(file):
            for p in sc.optional(sweep_points, m, file) or []:
                points.setdefault(p["name"], {**p, "file": file})
    if not points:
        raise Skip(f"no configuration with pwmcc_ratio_to_random in {STABILITY} or {SWEEP}")
    return list(points.values())


def fig_heatmaps(m: Metrics) -> Figure:
    points = [p for p in sweep_points(m) if p["d_sae"] is not None and p["sparsity"] is not None]
    if not points:
        raise Skip(f"{SWEEP}: no configuration with d_sae and a sparsity hyperparameter")
    archs = list(dict.fromkeys(p["arch"] for p in points))
    ratios = [p["ratio"].values(m)[0] for p in points]
    finite = [r for r in ratios if r is not None]
    if not finite:
        raise Skip(f"{SWEEP}: every pwmcc_ratio_to_random is null")
    lo, hi = min(*finite, 0.99), max(*finite, 1.01)
    norm = TwoSlopeNorm(vcenter=1.0, vmin=lo, vmax=hi)
    fig = new_figure(3.6 * len(archs) + 1.0, 3.6)
    axes = np.atleast_1d(fig.subplots(1, len(archs)))
    image = None
    for ax, arch in zip(axes, archs, strict=True):
        mine = [(p, r) for p, r in zip(points, ratios, strict=True) if p["arch"] == arch]
        ds = sorted({p["d_sae"] for p, _ in mine})
        ss = sorted({p["sparsity"] for p, _ in mine})
        grid = np.full((len(ds), len(ss)), np.nan)
        for p, r in mine:
            i, j = ds.index(p["d_sae"]), ss.index(p["sparsity"])
            if math.isnan(grid[i, j]) and r is not None:
                grid[i, j] = r
        image = ax.imshow(np.ma.masked_invalid(grid), cmap="RdBu_r", norm=norm, aspect="auto",
                          origin="lower")
        for i in range(len(ds)):
            for j in range(len(ss)):
                if math.isfinite(grid[i, j]):
                    ax.text(j, i, f"{grid[i, j]:.2f}", ha="center", va="center", fontsize=7)
        ax.set_xticks(range(len(ss)), [f"{s:g}" for s in ss])
        ax.set_yticks(range(len(ds)), [f"{d:g}" for d in ds])
        ax.set_xlabel(sc.SPARSITY_LABEL[mine[0][0]["sparsity_key"]])
        ax.set_ylabel("d_sae (latents)")
        ax.set_title(arch)
        ax.grid(False)
    fig.colorbar(image, ax=list(axes), label="PWMCC trained / random (1 = random)")
    fig.suptitle("Stability over dictionary size x sparsity")
    return fig


# ----------------------------------------------------------------------------- 5 trade-off


def _config_ev(m: Metrics, file: str, path, name: str) -> float | None:
    ev = sc.optional(sc.stat, m, file, path, "explained_variance")
    if ev is not None:
        return ev.values(m)[0]
    if not m.exists(SAES):
        return None
    vals = [number(m.get(SAES, (*p, "metrics", "explained_variance")), "explained_variance")
            for p in sc.sae_seed_paths(m, name)]
    vals = [v for v in vals if v is not None]
    return float(np.mean(vals)) if vals else None


def fig_tradeoff(m: Metrics) -> Figure:
    points = ratio_points(m)
    fig = new_figure(5.6, 4.2)
    ax = fig.subplots()
    drawn = set()
    n = 0
    for p in points:
        ev = _config_ev(m, p["file"], p["path"], p["name"])
        r, rlo, rhi = p["ratio"].values(m)
        if ev is None or r is None:
            continue
        n += 1
        arch = p["arch"]
        ax.errorbar([ev], [r], yerr=_err(r, rlo, rhi), fmt=ARCH_MARKERS.get(arch, "o"),
                    capsize=2, color=f"C{list(ARCH_MARKERS).index(arch) % 10}"
                    if arch in ARCH_MARKERS else "C9", label=None if arch in drawn else arch)
        drawn.add(arch)
    if n == 0:
        raise Skip("no configuration with both explained variance and a PWMCC ratio")
    ax.axhline(1.0, color=RANDOM, ls="--", lw=1, label="random dictionary")
    ax.set_xlabel("explained variance (mean over seeds)")
    ax.set_ylabel("PWMCC trained / random")
    ax.legend()
    ax.set_title("Stability vs reconstruction, one point per SAE configuration")
    return fig


# ----------------------------------------------------------------------------- 6 recovery


RECOVERY_PANELS = (("key_frequency_coverage", "key-frequency coverage"),
                   ("pure_latent_fraction", "pure-latent fraction"),
                   ("decoder_alignment", "decoder alignment (mean max |cos|)"))


def fig_recovery(m: Metrics) -> Figure:
    ratios = {p["name"]: p for p in ratio_points(m)}
    entries = [(n, p) for n, p in sc.configs(m, RECOVERY, "key_frequency_coverage") if n in ratios]
    if not entries:
        raise Skip(f"{RECOVERY} shares no configuration with {STABILITY} or {SWEEP}")
    fig = new_figure(11.0, 3.6)
    axes = fig.subplots(1, 3)
    for ax, (metric, label) in zip(axes, RECOVERY_PANELS, strict=True):
        labelled = set()
        for name, path in entries:
            s = sc.optional(sc.stat, m, RECOVERY, path, metric)
            if s is None:
                continue
            y, ylo, yhi = s.values(m)
            x, xlo, xhi = ratios[name]["ratio"].values(m)
            if x is None or y is None:
                continue
            arch = ratios[name]["arch"]
            color = f"C{list(ARCH_MARKERS).index(arch) % 10}" if arch in ARCH_MARKERS else "C9"
            ax.errorbar([x], [y], xerr=_err(x, xlo, xhi), yerr=_err(y, ylo, yhi),
                        fmt=ARCH_MARKERS.get(arch, "o"), color=color, capsize=2,
                        label=None if arch in labelled else arch)
            labelled.add(arch)
            if metric == "decoder_alignment":
                b = sc.optional(sc.baseline, m, RECOVERY, path, "random", metric)
                if b is not None and b.values(m)[0] is not None:
                    ax.plot([x], [b.values(m)[0]], "x", color=RANDOM,
                            label=None if "random" in labelled else "random dictionary")
                    labelled.add("random")
        ax.axvline(1.0, color=RANDOM, ls=":", lw=1)
        ax.set_xlabel("PWMCC trained / random (dotted: 1 = random)")
        ax.set_ylabel(label)
        ax.set_ylim(-0.02, 1.05)
        ax.set_title(label)
        if labelled:
            ax.legend(fontsize=7)
    fig.suptitle("Ground-truth (Fourier) recovery vs stability across seeds")
    return fig


# ----------------------------------------------------------------------------- 7 dynamics


def dynamics_series(m: Metrics, path) -> list[tuple[tuple, sc.Stat]]:
    """``[(json path of the step, PWMCC Stat)]`` by training step for one configuration.

    Accepts a list of records ``{"step", "pwmcc", ...}`` under ``checkpoints`` /
    ``trajectory`` / ``steps`` / ``by_step`` / ``series``, or parallel lists:
    ``steps`` beside ``pwmcc`` (a list, or ``{"mean": [...], "ci_low": [...], ...}``).
    """
    entry = m.get(DYNAMICS, path)
    for key in ("checkpoints", "trajectory", "steps", "by_step", "series"):
        rel = sc.find(entry, key)
        if rel is None:
            continue
        node = m.get(DYNAMICS, (*path, *rel))
        if isinstance(node, list) and node and isinstance(node[0], dict):
            out = []
            for i, rec in enumerate(node):
                if "step" not in rec or sc.find(rec, "pwmcc") is None:
                    raise Skip(f"{DYNAMICS}: record {i} of {key} lacks step or pwmcc")
                out.append(((*path, *rel, i, "step"),
                            sc.stat(m, DYNAMICS, (*path, *rel, i), "pwmcc")))
            return out
        if isinstance(node, list) and node and key == "steps":
            pw_rel = sc.find(entry, "pwmcc")
            if pw_rel is None:
                raise Skip(f"{DYNAMICS}: steps without pwmcc")
            pw = (*path, *pw_rel)
            node_pw = m.get(DYNAMICS, pw)
            if isinstance(node_pw, dict):
                if not isinstance(node_pw.get("mean"), list):
                    raise Skip(f"{DYNAMICS}: pwmcc has no list of means")
                lo = (*pw, "ci_low") if isinstance(node_pw.get("ci_low"), list) else None
                hi = (*pw, "ci_high") if isinstance(node_pw.get("ci_high"), list) else None
                pw = (*pw, "mean")
            else:
                lo = hi = None
            means = m.get(DYNAMICS, pw)
            if not isinstance(means, list) or len(means) != len(node):
                raise Skip(f"{DYNAMICS}: pwmcc is not a list as long as steps")
            return [((*path, *rel, i), sc.Stat(DYNAMICS, (*pw, i),
                                                None if lo is None else (*lo, i),
                                                None if hi is None else (*hi, i)))
                    for i in range(len(node))]
    raise Skip(f"{DYNAMICS}: {'/'.join(map(str, path))} has no series by step")


def fig_dynamics(m: Metrics) -> Figure:
    entries = sc.configs(m, DYNAMICS)
    fig = new_figure(6.4, 4.0)
    ax = fig.subplots()
    n = 0
    randoms: dict[float, list[str]] = {}
    for i, (name, path) in enumerate(entries):
        series = sc.optional(dynamics_series, m, path)
        if series is None:
            continue
        steps = [number(m.get(DYNAMICS, p), "step") for p, _ in series]
        vals = [st.values(m) for _, st in series]
        mean = np.array([np.nan if v[0] is None else v[0] for v in vals])
        ax.plot(steps, mean, marker=".", color=f"C{i % 10}", label=name)
        lo = [v[1] for v in vals]
        hi = [v[2] for v in vals]
        if all(v is not None for v in lo + hi):
            ax.fill_between(steps, lo, hi, color=f"C{i % 10}", alpha=0.2)
        rnd = sc.optional(sc.baseline, m, DYNAMICS, path, "random", "pwmcc")
        if rnd is not None and rnd.values(m)[0] is not None:
            randoms.setdefault(rnd.values(m)[0], []).append(name)
        n += 1
    for value, names in randoms.items():
        label = "random dictionary" if len(randoms) == 1 else f"random ({', '.join(names)})"
        ax.axhline(value, color=RANDOM, ls="--", lw=1, label=label)
    if n == 0:
        raise Skip(f"{DYNAMICS}: no configuration has a PWMCC series by step")
    ax.set_xscale("symlog", linthresh=1.0)  # checkpoints are log-spaced from step 0
    ax.set_xlim(left=0)
    ax.set_xlabel("SAE training step (log scale past 1; 0 = initialisation)")
    ax.set_ylabel("PWMCC between seeds (95% CI band)")
    ax.legend()
    ax.set_title("Stability between seeds during SAE training")
    return fig


# ----------------------------------------------------------------------------- 8 geometry, predictors


def paired_with_random(m: Metrics, file: str, path) -> list[tuple[str, object, object]]:
    """``[(metric, Stat trained, Stat random)]`` for every metric with a random counterpart."""
    entry = m.get(file, path)
    out = []
    for key, val in entry.items():
        if key.startswith(("random_", "untrained_")) or "ratio" in key:
            continue
        if not isinstance(val, int | float | dict) or isinstance(val, bool):
            continue
        b = sc.optional(sc.baseline, m, file, path, "random", key)
        t = sc.optional(sc.stat_at, m, file, (*path, key))
        if b is not None and t is not None:
            out.append((key, t, b))
    return out


def fig_geometry(m: Metrics) -> Figure:
    entries = [(n, p, paired_with_random(m, GEOMETRY, p)) for n, p in sc.configs(m, GEOMETRY)]
    entries = [e for e in entries if e[2]]
    if not entries:
        raise Skip(f"{GEOMETRY}: no metric with a random counterpart")
    metrics = list(dict.fromkeys(k for _, _, pairs in entries for k, _, _ in pairs))
    fig = new_figure(max(6.4, 1.6 * len(metrics) + 2), 4.0)
    ax = fig.subplots()
    width = 0.8 / (len(entries) + 1)
    for i, (name, _, pairs) in enumerate(entries):
        got = {k: (t, b) for k, t, b in pairs}
        for j, key in enumerate(metrics):
            if key not in got:
                continue
            t, b = got[key]
            tm, tlo, thi = t.values(m)
            bm = b.values(m)[0]
            x = j + (i - len(entries) / 2) * width
            if tm is not None:
                ax.bar(x, tm, width, color=f"C{i % 10}", yerr=_err(tm, tlo, thi), capsize=2,
                       label=name if j == 0 else None)
            if bm is not None:
                ax.plot([x - width / 2, x + width / 2], [bm, bm], color="black", lw=1.5,
                        label="random" if i == 0 and j == 0 else None)
    ax.set_xticks(range(len(metrics)), [k.replace("_", " ") for k in metrics], rotation=20,
                  ha="right")
    ax.set_ylabel("value between seeds (black bar: random)")
    ax.legend(fontsize=7)
    ax.set_title("Geometry conserved across seeds vs random dictionaries")
    return fig


SCORE_KEYS = ("auc", "roc_auc", "spearman", "correlation", "point_biserial", "r")


def predictor_scores(m: Metrics, path) -> list[tuple[str, str, sc.Stat]]:
    """``[(property, score name, Stat)]`` of one configuration: the first of
    :data:`SCORE_KEYS` found under each property (``predictors`` / ``properties`` or
    the entry itself)."""
    entry = m.get(PREDICTORS, path)
    props = entry.get("predictors", entry.get("properties", entry))
    base = path + (("predictors",) if "predictors" in entry else ("properties",)
                   if "properties" in entry else ())
    out = []
    if not isinstance(props, dict):
        return out
    for prop, val in props.items():
        if not isinstance(val, dict):
            continue
        for score in SCORE_KEYS:
            if score in val:
                out.append((prop, score, sc.stat_at(m, PREDICTORS, (*base, prop, score))))
                break
    return out


def fig_predictors(m: Metrics) -> Figure:
    entries = [(n, predictor_scores(m, p)) for n, p in sc.configs(m, PREDICTORS)]
    entries = [e for e in entries if e[1]]
    if not entries:
        raise Skip(f"{PREDICTORS}: no property with a score ({', '.join(SCORE_KEYS)})")
    props = list(dict.fromkeys(p for _, scores in entries for p, _, _ in scores))
    scores = sorted({s for _, sc_ in entries for _, s, _ in sc_})
    fig = new_figure(max(6.4, 1.2 * len(props) + 2), 4.0)
    ax = fig.subplots()
    width = 0.8 / len(entries)
    for i, (name, vals) in enumerate(entries):
        got = {p: v.values(m) for p, _, v in vals}
        xs = [j + (i - (len(entries) - 1) / 2) * width for j, p in enumerate(props) if p in got]
        ys = [got[p][0] if got[p][0] is not None else np.nan for p in props if p in got]
        errs = [_err(*got[p]) for p in props if p in got]
        yerr = None
        if all(e is not None for e in errs):
            yerr = [[e[0][0] for e in errs], [e[1][0] for e in errs]]
        ax.bar(xs, ys, width, yerr=yerr, capsize=2, color=f"C{i % 10}", label=name)
    if "auc" in scores or "roc_auc" in scores:
        ax.axhline(0.5, color=RANDOM, ls="--", lw=1, label="chance (AUC 0.5)")
    ax.axhline(0.0, color="black", lw=0.8)
    ax.set_xticks(range(len(props)), [p.replace("_", " ") for p in props], rotation=20, ha="right")
    ax.set_ylabel(" / ".join(scores) + " for 'latent is shared across seeds'")
    ax.legend(fontsize=7)
    ax.set_title("Which latent properties predict that a latent is shared")
    return fig


FIGURES: tuple[FigureSpec, ...] = (
    FigureSpec("fig1_grokking", "Grokking curves", (CURVE, TRANSFORMER), fig_grokking),
    FigureSpec("fig2_fourier", "Fourier spectrum of the embedding and activations",
               (SPECTRUM, FOURIER), fig_fourier),
    FigureSpec("fig3_baselines", "Stability vs random and untrained baselines", (STABILITY,),
               fig_baselines),
    FigureSpec("fig4_stability_heatmaps", "Stability over d_sae x sparsity", (SWEEP,),
               fig_heatmaps),
    FigureSpec("fig5_tradeoff", "Stability-reconstruction trade-off", (STABILITY,),
               fig_tradeoff),
    FigureSpec("fig6_recovery", "Ground-truth recovery vs stability", (RECOVERY, STABILITY),
               fig_recovery),
    FigureSpec("fig7_dynamics", "Stability by SAE training step", (DYNAMICS,), fig_dynamics),
    FigureSpec("fig8a_geometry", "Geometry conserved across seeds", (GEOMETRY,), fig_geometry),
    FigureSpec("fig8b_predictors", "Predictors of shared latents", (PREDICTORS,),
               fig_predictors),
)
