"""``paper/report.md``: tables and one paragraph per research question, every number cited.

Each number comes from :class:`paper.cite.Citer` (value read from a metric file at a
json path, or a mean / std / min / max / count of such values, or a quoted claim of
another document) and carries a hidden ``<!--nK-->`` marker; citation K is in
``paper/report_sources.json``. A section whose metrics are absent says so instead of
guessing (its partial citations are dropped with it). Prose decisions (``above``,
``not above``) are made from the same values, never from anything else.
"""

from __future__ import annotations

from collections.abc import Callable

from paper import schema as sc
from paper.cite import Citer
from paper.errors import Skip
from paper.figures import (
    DYNAMICS,
    FIGURES,
    FOURIER,
    GEOMETRY,
    PREDICTORS,
    RECOVERY,
    SAES,
    STABILITY,
    SWEEP,
    TRANSFORMER,
    dynamics_series,
    paired_with_random,
    predictor_scores,
    ratio_points,
    sweep_points,
)
from paper.metrics import Metrics

PARAMS = "params.yaml"
TITLES = {f.name: f.title for f in FIGURES}


def fig_ref(build, name: str) -> str:
    """``Figure N`` if it was rendered, else a note that it is pending."""
    number = name[3:].split("_")[0]
    if name in build.rendered:
        return f"Figure {number} (`{name}`)"
    return f"Figure {number} (not rendered: {build.skipped.get(name, 'unknown')})"


def ci_text(c: Citer, s: sc.Stat, fmt: str = ".3f") -> str:
    text = c.num(s.file, s.mean, fmt)
    if s.low is not None and s.high is not None:
        text += f" [{c.num(s.file, s.low, fmt)}, {c.num(s.file, s.high, fmt)}]"
    return text


def above(m: Metrics, trained: sc.Stat, *baselines: sc.Stat | None) -> bool | None:
    """True when the trained CI lies above every baseline mean (None: no CI to tell)."""
    _, lo, _ = trained.values(m)
    if lo is None:
        return None
    means = [b.values(m)[0] for b in baselines if b is not None]
    return all(mb is not None and lo > mb for mb in means)


def relation(m: Metrics, trained: sc.Stat, base: sc.Stat) -> str:
    """``above`` / ``below`` the baseline mean when the CI excludes it, else undecided."""
    _, lo, hi = trained.values(m)
    bm = base.values(m)[0]
    if lo is None or hi is None or bm is None:
        return "(no CI) vs"
    if lo > bm:
        return "above"
    if hi < bm:
        return "below"
    return "not distinguishable from"


# ----------------------------------------------------------------------------- sections


def transformer_section(c: Citer, build) -> str:
    g = c.value(TRANSFORMER, ("grokking_epoch",))
    grokked = bool(c.value(TRANSFORMER, ("grokked",)))
    rows = [
        ("modulus p", c.num(PARAMS, ("task", "p"), "d")),
        ("train fraction of the p² pairs", c.num(PARAMS, ("task", "frac_train"), "g")),
        ("epochs trained (full batch)", c.num(TRANSFORMER, ("epochs",), "d")),
        ("grokking epoch", c.num(TRANSFORMER, ("grokking_epoch",), "d")),
        ("train accuracy", c.num(TRANSFORMER, ("train_accuracy",), ".4f")),
        ("test accuracy", c.num(TRANSFORMER, ("test_accuracy",), ".4f")),
        ("test loss (nats)", c.num(TRANSFORMER, ("test_loss",), ".2e")),
    ]
    table = "| quantity | value |\n| --- | --- |\n" + "".join(f"| {a} | {b} |\n" for a, b in rows)
    frac = c.value(PARAMS, ("task", "frac_train"))
    accept = c.quote("99.9%", "SCIENCE.md section 1 (acceptance: test accuracy)")
    verdict = "meets" if grokked else "does **not** meet"
    text = (
        f"The transformer trained at train fraction {c.num(PARAMS, ('task', 'frac_train'), 'g')} "
        f"reached test accuracy {c.num(TRANSFORMER, ('test_accuracy',), '.4f')} after "
        f"{c.num(TRANSFORMER, ('epochs',), 'd')} epochs and {verdict} the acceptance bar of "
        f"{accept} (`grokked` in transformer.json). "
    )
    if g is None:
        text += "Test accuracy never crossed the grokking threshold in this run. "
    else:
        text += (f"Test accuracy first crossed the grokking threshold at epoch "
                 f"{c.num(TRANSFORMER, ('grokking_epoch',), 'd')}; training continued past "
                 f"it so the circuit cleans up ({fig_ref(build, 'fig1_grokking')}). ")
    claim = (f"SCIENCE.md section 1 states that train fraction "
             f"{c.quote('0.4', 'SCIENCE.md section 1')} reaches "
             f"{c.quote('99%', 'SCIENCE.md section 1')} test accuracy after about "
             f"{c.quote('900', 'SCIENCE.md section 1')} full-batch steps. ")
    if frac == 0.4 and g is not None:
        claim += ("This run tests that claim directly: compare the grokking epoch above. ")
    else:
        dev = "params.yaml comment on task.frac_train (development runs at lr 1e-3)"
        claim += (
            "That claim did **not** reproduce in development: fraction "
            f"{c.quote('0.4', dev)} had not grokked by epoch {c.quote('3000', dev)}, while "
            f"{c.quote('0.6', dev)} grokked at epoch {c.quote('466', dev)} (quoted, not "
            "measured by this pipeline run); hence the default train fraction. This run does "
            "not test that claim. ")
    return table + "\n" + text + claim


def fourier_section(c: Citer, build) -> str:
    keys = c.value(FOURIER, ("key_frequencies",))
    if not isinstance(keys, list):
        raise Skip(f"{FOURIER}: key_frequencies is not a list")
    key_text = ", ".join(c.num(FOURIER, ("key_frequencies", i), "d") for i in range(len(keys)))
    rows = [
        ("key frequencies", key_text),
        ("embedding norm² share of the key frequencies",
         c.num(FOURIER, ("embedding_key_frequency_share",), ".1%")),
        ("activation variance in key-frequency blocks, trained",
         c.num(FOURIER, ("activation_key_frequency_variance_share",), ".1%")),
        ("the same, untrained model (trained model's key frequencies)",
         c.num(FOURIER, ("untrained_activation_key_frequency_variance_share",), ".1%")),
        ("pure MLP neurons (one frequency holds most of the variance)",
         c.num(FOURIER, ("neuron_purity_fraction",), ".1%")),
        ("activation effective rank, trained / untrained",
         f"{c.num(FOURIER, ('activation_effective_rank',), '.1f')} / "
         f"{c.num(FOURIER, ('untrained_activation_effective_rank',), '.1f')}"),
        ("activation dimension", c.num(FOURIER, ("activation_dim",), "d")),
    ]
    table = "| quantity | value |\n| --- | --- |\n" + "".join(f"| {a} | {b} |\n" for a, b in rows)
    t = c.value(FOURIER, ("activation_key_frequency_variance_share",))
    u = c.value(FOURIER, ("untrained_activation_key_frequency_variance_share",))
    verdict = ("holds far more" if t is not None and u is not None and t > u else
               "does **not** hold more")
    return table + (
        f"\nThe trained model's activations put "
        f"{c.num(FOURIER, ('activation_key_frequency_variance_share',), '.1%')} of their "
        f"variance in the key-frequency blocks; an untrained model of the same shape puts "
        f"{c.num(FOURIER, ('untrained_activation_key_frequency_variance_share',), '.1%')} there, "
        f"so the trained model {verdict} than chance ({fig_ref(build, 'fig2_fourier')}). "
        "These Fourier directions are the ground truth the SAEs are scored against.\n")


def saes_section(c: Citer, build) -> str:
    rows = []
    for name in sc.sae_configs(c.m):
        paths = sc.sae_seed_paths(c.m, name)

        def agg(op: str, metric: str, fmt: str, paths=paths) -> str:
            return c.derived(op, [(SAES, (*p, "metrics", metric)) for p in paths], fmt)

        arch = c.value(SAES, (*paths[0], "architecture"))
        rows.append(
            f"| `{name}` | {arch} | {c.num(SAES, (*paths[0], 'hyperparameters', 'd_sae'), 'd')} | "
            f"{c.derived('count', [(SAES, (*p, 'seed')) for p in paths], 'd')} | "
            f"{agg('mean', 'explained_variance', '.3f')} ± "
            f"{agg('std', 'explained_variance', '.3f')} | "
            f"{agg('mean', 'l0', '.1f')} | {agg('mean', 'frac_alive', '.3f')} | "
            f"{agg('mean', 'cossim', '.3f')} |\n")
    head = ("| config | architecture | d_sae | seeds | explained variance (mean ± sd) | L0 | "
            "alive fraction | cos sim |\n| --- | --- | --- | --- | --- | --- | --- | --- |\n")
    return head + "".join(rows) + (
        "\nMeans over seeds of the SAEBench metrics on the whole activation dataset "
        "(`metrics/saes.json`).\n")


def stability_section(c: Citer, build) -> str:
    m = c.m
    head = ("| config | PWMCC [95% CI] | random | untrained | trained / random | "
            "Hungarian MCC [95% CI] | random | shared fraction [95% CI] | random |\n"
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- |\n")
    rows = []
    for name, path in sc.configs(m, STABILITY, "pwmcc"):
        cells = [f"`{name}`"]
        for metric in ("pwmcc", "hungarian_mcc", "shared_fraction"):
            t = sc.optional(sc.stat, m, STABILITY, path, metric)
            cells.append(ci_text(c, t) if t else "n/a")
            kinds = ("random", "untrained") if metric == "pwmcc" else ("random",)
            for kind in kinds:
                b = sc.optional(sc.baseline, m, STABILITY, path, kind, metric)
                cells.append(c.num(STABILITY, b.mean, ".3f") if b else "n/a")
            if metric == "pwmcc":
                r = sc.optional(sc.ratio, m, STABILITY, path)
                cells.append(ci_text(c, r, ".2f") if r else "n/a")
        rows.append("| " + " | ".join(cells) + " |\n")
    return head + "".join(rows) + (
        f"\nMean over all seed pairs; 95% CI from a bootstrap over seeds "
        f"({fig_ref(build, 'fig3_baselines')}).\n")


def recovery_section(c: Citer, build) -> str:
    m = c.m
    head = ("| config | key-frequency coverage | pure-latent fraction | decoder alignment | "
            "random dictionary |\n| --- | --- | --- | --- | --- |\n")
    rows = []
    for name, path in sc.configs(m, RECOVERY, "key_frequency_coverage"):
        cells = [f"`{name}`"]
        for metric in ("key_frequency_coverage", "pure_latent_fraction", "decoder_alignment"):
            s = sc.optional(sc.stat, m, RECOVERY, path, metric)
            cells.append(ci_text(c, s) if s else "n/a")
        b = sc.optional(sc.baseline, m, RECOVERY, path, "random", "decoder_alignment")
        cells.append(c.num(RECOVERY, b.mean, ".3f") if b else "n/a")
        rows.append("| " + " | ".join(cells) + " |\n")
    return head + "".join(rows)


# ----------------------------------------------------------------------------- research questions


def rq1(c: Citer, build) -> str:
    m = c.m
    rank = c.num(FOURIER, ("activation_effective_rank",), ".1f") if m.exists(FOURIER) else "n/a"
    points = [p for p in sweep_points(m, SWEEP) if p["ratio"].values(m)[0] is not None]
    if not points:
        raise Skip(f"{SWEEP}: no configuration with a PWMCC ratio")
    best = max(points, key=lambda p: p["ratio"].values(m)[0])
    worst = min(points, key=lambda p: p["ratio"].values(m)[0])

    def describe(p: dict) -> str:
        d = sc.hyperparameter(m, SWEEP, p["path"], "d_sae")
        s = sc.hyperparameter(m, SWEEP, p["path"], p["sparsity_key"])
        hp = []
        if d is not None:
            hp.append(f"d_sae {c.num(SWEEP, d, 'g')}")
        if s is not None:
            hp.append(f"`{p['sparsity_key']}` {c.num(SWEEP, s, 'g')}")
        return (f"`{p['name']}` ({p['arch']}{', ' if hp else ''}{', '.join(hp)}): "
                f"trained / random PWMCC {ci_text(c, p['ratio'], '.2f')}")

    return (f"Across the sweep, the most stable configuration is {describe(best)}; the least "
            f"stable is {describe(worst)} ({fig_ref(build, 'fig4_stability_heatmaps')}, "
            f"{fig_ref(build, 'fig5_tradeoff')}). The activations' effective rank is {rank}, "
            "the scale against which dictionary size is read.")


def rq2(c: Citer, build) -> str:
    m = c.m
    parts = []
    stable = []
    for name, path in sc.configs(m, STABILITY, "pwmcc"):
        t = sc.stat(m, STABILITY, path, "pwmcc")
        r = sc.optional(sc.baseline, m, STABILITY, path, "random", "pwmcc")
        u = sc.optional(sc.baseline, m, STABILITY, path, "untrained", "pwmcc")
        ok = above(m, t, r, u)
        l0 = ""
        if m.exists(SAES) and sc.sae_seed_paths(m, name):
            l0 = ", L0 " + c.derived("mean", [(SAES, (*p, "metrics", "l0"))
                                             for p in sc.sae_seed_paths(m, name)], ".1f")
        verdict = {True: "clearly above both baselines", False: "**not** clearly above both "
                   "baselines", None: "no CI to tell (fewer than three seeds)"}[ok]
        parts.append(f"`{name}`{l0}: PWMCC {ci_text(c, t)} vs random "
                     f"{c.num(STABILITY, r.mean, '.3f') if r else 'n/a'} and untrained "
                     f"{c.num(STABILITY, u.mean, '.3f') if u else 'n/a'}: {verdict}")
        if ok:
            stable.append(name)
    summary = (f"Stable by the SCIENCE.md rule (CI above both baselines): "
               f"{', '.join(f'`{s}`' for s in stable) if stable else 'none'}.")
    return "; ".join(parts) + f". {summary} ({fig_ref(build, 'fig3_baselines')})."


def rq3(c: Citer, build) -> str:
    m = c.m
    ratios = {p["name"]: p["ratio"] for p in ratio_points(m)}
    rows = []
    for name, path in sc.configs(m, RECOVERY, "key_frequency_coverage"):
        if name not in ratios:
            continue
        cov = sc.stat(m, RECOVERY, path, "key_frequency_coverage")
        rows.append((name, cov, ratios[name]))
    if not rows:
        raise Skip(f"{RECOVERY} shares no configuration with {STABILITY} or {SWEEP}")
    text = "; ".join(f"`{n}`: coverage {ci_text(c, cov)}, trained / random PWMCC "
                     f"{ci_text(c, r, '.2f')}" for n, cov, r in rows)
    valid = [(n, cov.values(m)[0], r.values(m)[0]) for n, cov, r in rows
             if cov.values(m)[0] is not None and r.values(m)[0] is not None]
    if len(valid) >= 2:
        most_stable = max(valid, key=lambda v: v[2])[0]
        best_cov = max(v[1] for v in valid)
        agree = dict((n, cv) for n, cv, _ in valid)[most_stable] == best_cov
        text += (f". The most stable configuration, `{most_stable}`, "
                 f"{'also has' if agree else 'does **not** have'} the highest coverage")
    return text + f" ({fig_ref(build, 'fig6_recovery')})."


def rq4(c: Citer, build) -> str:
    m = c.m
    text = ""
    if m.exists(FOURIER):
        text = (f"The activations' effective rank is "
                f"{c.num(FOURIER, ('activation_effective_rank',), '.1f')} of "
                f"{c.num(FOURIER, ('activation_dim',), 'd')} dimensions (untrained model: "
                f"{c.num(FOURIER, ('untrained_activation_effective_rank',), '.1f')}). ")
    parts = []
    for name, path in sc.configs(m, GEOMETRY):
        for key, t, b in paired_with_random(m, GEOMETRY, path):
            word = relation(m, t, b)
            parts.append(f"`{name}` {key.replace('_', ' ')} {ci_text(c, t)} {word} random "
                         f"{c.num(GEOMETRY, b.mean, '.3f')}")
    if not parts:
        raise Skip(f"{GEOMETRY}: no metric with a random counterpart")
    return text + "; ".join(parts) + f" ({fig_ref(build, 'fig8a_geometry')})."


def rq5(c: Citer, build) -> str:
    m = c.m
    parts = []
    for name, path in sc.configs(m, DYNAMICS):
        series = sc.optional(dynamics_series, m, path)
        if series is None:
            continue
        (s0, v0), (s1, v1) = series[0], series[-1]
        parts.append(f"`{name}`: PWMCC between seeds goes from {ci_text(c, v0)} at step "
                     f"{c.num(DYNAMICS, s0, 'g')} to {ci_text(c, v1)} at step "
                     f"{c.num(DYNAMICS, s1, 'g')}")
    if not parts:
        raise Skip(f"{DYNAMICS}: no PWMCC series by step")
    return "; ".join(parts) + f" ({fig_ref(build, 'fig7_dynamics')})."


def rq6(c: Citer, build) -> str:
    m = c.m
    parts = []
    for name, path in sc.configs(m, PREDICTORS):
        scores = predictor_scores(m, path)
        for prop, score, st in scores:
            parts.append(f"`{name}` {prop.replace('_', ' ')}: {score} {ci_text(c, st, '.2f')}")
    if not parts:
        raise Skip(f"{PREDICTORS}: no property with a score")
    return "; ".join(parts) + f" ({fig_ref(build, 'fig8b_predictors')})."


QUESTIONS: tuple[tuple[str, Callable[[Citer, object], str]], ...] = (
    ("RQ1 Goldilocks zone: stability over dictionary size x sparsity", rq1),
    ("RQ2 Architectures compared at matched L0", rq2),
    ("RQ3 Ground-truth recovery, and whether it goes with stability", rq3),
    ("RQ4 Geometry conserved across seeds; effective rank", rq4),
    ("RQ5 Dynamics: stability by training step", rq5),
    ("RQ6 Predictors of a latent being shared", rq6),
)

SECTIONS = (
    ("Transformer and grokking", transformer_section),
    ("Fourier ground truth", fourier_section),
    ("SAE baseline", saes_section),
    ("Stability across seeds", stability_section),
    ("Ground-truth recovery", recovery_section),
)


def _guarded(c: Citer, fn, build) -> str:
    start = len(c.sources)
    try:
        return fn(c, build).rstrip() + "\n"
    except Skip as why:
        del c.sources[start:]
        return f"*Pending: {why}.*\n"


def write_report(m: Metrics, build, figures_dir: str) -> tuple[str, list[dict]]:
    c = Citer(m)
    out = [
        "# HUSAI: are SAE features the same across seeds?\n\n",
        "Generated by `husai paper` from the metric files; do not edit. Every number is "
        "followed by a hidden citation `<!--nK-->`; `paper/report_sources.json` gives the "
        "metric file and json path of citation K (or the document a quoted claim comes "
        "from). Definitions: SCIENCE.md.\n\n",
    ]
    for title, fn in SECTIONS:
        out.append(f"## {title}\n\n{_guarded(c, fn, build)}\n")
    out.append("## Research questions (SCIENCE.md section 7)\n\n")
    for title, fn in QUESTIONS:
        out.append(f"### {title}\n\n{_guarded(c, fn, build)}\n")
    out.append("## Figures\n\n| figure | file | status |\n| --- | --- | --- |\n")
    for spec in FIGURES:
        if spec.name in build.rendered:
            files = ", ".join(f"`{figures_dir}/{spec.name}.{ext}`" for ext in ("png", "pdf"))
            out.append(f"| {spec.title} | {files} | rendered |\n")
        else:
            out.append(f"| {spec.title} | `{spec.name}` | skipped: {build.skipped[spec.name]} |\n")
    return "".join(out), c.sources
