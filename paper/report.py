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
from itertools import pairwise

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
)
from paper.metrics import Metrics

PARAMS = "params.yaml"
TITLES = {f.name: f.title for f in FIGURES}


def fig_ref(build, name: str) -> str:
    """``Figure N`` if it was rendered, else a note that it is pending."""
    number = name[3:].split("_")[0]
    if name in build.rendered:
        return f"Figure {number} (`{name}`)"
    return f"Figure {number} (not rendered: `{build.skipped.get(name, 'unknown')}`)"


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
    bench = "benchmarks/RESULTS-grokking.md (development measurements, not this run)"
    claim += (
        "That claim did **not** reproduce with this model: at lr "
        f"{c.quote('1e-3', bench)}, fraction {c.quote('0.4', bench)} had not grokked by epoch "
        f"{c.quote('3000', bench)} (test accuracy {c.quote('0.17', bench)}); it grokked at "
        f"epoch {c.quote('1008', bench)} only at lr {c.quote('3e-3', bench)}; fraction "
        f"{c.quote('0.5', bench)} grokked at epoch {c.quote('840', bench)} and "
        f"{c.quote('0.6', bench)} at epoch {c.quote('466', bench)}. Hence the default train "
        "fraction. ")
    if frac == 0.4 and g is not None:
        claim += "This run uses fraction 0.4 itself: compare the grokking epoch above. ".replace(
            "0.4", c.num(PARAMS, ("task", "frac_train"), "g"))
    return table + "\n" + text + claim


def fourier_section(c: Citer, build) -> str:
    keys = c.value(FOURIER, ("key_frequencies",))
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
    entries = sc.configs(m, STABILITY)
    rank = None
    head_a = ("| config | d_sae | PWMCC [95% CI] | isotropic random | untrained | "
              "random in data subspace | trained / isotropic [95% CI] | "
              "trained / data subspace [95% CI] |\n"
              "| --- | --- | --- | --- | --- | --- | --- | --- |\n")
    head_b = ("| config | Hungarian MCC [95% CI] | isotropic | untrained | data subspace | "
              "shared fraction [95% CI] | isotropic | untrained | data subspace |\n"
              "| --- | --- | --- | --- | --- | --- | --- | --- | --- |\n")
    rows_a, rows_b = [], []
    for name, path in entries:
        entry = m.get(STABILITY, path)
        if rank is None and entry.get("subspace_rank") is not None:  # data-subspace baseline
            rank = (*path, "subspace_rank")
        cells = [f"`{name}`", c.num(STABILITY, (*path, "d_sae"), "d")]
        t = sc.optional(sc.stat, m, STABILITY, path, "pwmcc")
        cells.append(ci_text(c, t) if t else "n/a")
        for kind in ("random", "untrained", "subspace_random"):
            b = sc.optional(sc.baseline, m, STABILITY, path, kind, "pwmcc")
            cells.append(c.num(STABILITY, b.mean, ".3f") if b else "n/a")
        for to in ("random", "subspace"):
            r = sc.optional(sc.ratio, m, STABILITY, path, "pwmcc", to)
            cells.append(ci_text(c, r, ".2f") if r else "n/a")
        rows_a.append("| " + " | ".join(cells) + " |\n")
        cells = [f"`{name}`"]
        for metric in ("hungarian_mcc", "shared_fraction"):
            t = sc.optional(sc.stat, m, STABILITY, path, metric)
            cells.append(ci_text(c, t) if t else "n/a")
            for kind in ("random", "untrained", "subspace_random"):
                b = sc.optional(sc.baseline, m, STABILITY, path, kind, metric)
                cells.append(c.num(STABILITY, b.mean, ".3f") if b else "n/a")
        rows_b.append("| " + " | ".join(cells) + " |\n")
    text = head_a + "".join(rows_a) + "\n" + head_b + "".join(rows_b)
    text += ("\nMeans over all seed pairs; 95% CI from a bootstrap over seeds. Isotropic: "
             "Gaussian dictionaries of the same shape; untrained: the same SAE at "
             "initialisation; data subspace: isotropic atoms confined to the span of the "
             "activations' top principal directions"
             + (f" (rank {c.num(STABILITY, rank, 'd')})" if rank else "")
             + f" ({fig_ref(build, 'fig3_baselines')}).\n")
    return text + "\n" + subspace_caveat(c, entries)


def subspace_caveat(c: Citer, entries) -> str:
    """The paragraph that reads the isotropic ratio against the activations' low rank."""
    m = c.m
    parts = []
    if m.exists(FOURIER):
        parts.append(f"The activations are very low-rank: effective rank "
                     f"{c.num(FOURIER, ('activation_effective_rank',), '.1f')} of "
                     f"{c.num(FOURIER, ('activation_dim',), 'd')} dimensions")
    if m.exists(GEOMETRY) and sc.has(m.json(GEOMETRY), ("activations", "dims_for_variance",
                                                         "0.99")):
        parts.append(f"{c.num(GEOMETRY, ('activations', 'dims_for_variance', '0.99'), 'd')} "
                     f"dimensions hold {c.quote('99%', 'definition of dims_for_variance')} of "
                     "their variance")
    text = (", and ".join(parts) + ". ") if parts else ""
    below, above_, ratios = [], [], []
    for name, path in entries:
        r = sc.optional(sc.ratio, m, STABILITY, path, "pwmcc", "subspace")
        if r is None:
            continue
        ratios.append((STABILITY, r.mean))
        _, lo, hi = r.values(m)
        if hi is not None and hi < 1:
            below.append(name)
        elif lo is not None and lo > 1:
            above_.append(name)
    if not ratios:
        return text + ("No data-subspace baseline in stability.json: the ratio to the "
                       "isotropic baseline cannot be read against the activations' rank.\n")
    sub = [(STABILITY, sc.baseline(m, STABILITY, p, "subspace_random", "pwmcc").mean)
           for _, p in entries if sc.optional(sc.baseline, m, STABILITY, p, "subspace_random",
                                              "pwmcc")]
    text += (f"Random atoms confined to that span reach PWMCC {span(c, sub, '.3f')}; the "
             f"trained SAEs' ratio to this data-subspace baseline is "
             f"{span(c, ratios, '.2f')}. ")
    if below and not above_:
        text += ("Every baseline configuration is **below** it (CI under unity): being far "
                 "above the isotropic baseline mostly reflects that all atoms live in the "
                 "same few dimensions, not that the seeds learned the same features. ")
    else:
        text += (f"Above it (CI): {', '.join(f'`{n}`' for n in above_) or 'none'}; below it: "
                 f"{', '.join(f'`{n}`' for n in below) or 'none'}. ")
    shared = [(n, p) for n, p in entries if sc.optional(sc.stat, m, STABILITY, p,
                                                         "shared_fraction")]
    if shared:
        text += ("The stricter shared fraction (one-to-one matches of both encoder and decoder "
                 "above the threshold) is " + "; ".join(
                     f"`{n}` {c.num(STABILITY, sc.stat(m, STABILITY, p, 'shared_fraction').mean, '.3f')}"
                     for n, p in shared) + ".")
        crowded = []
        for n, p in shared:
            b = sc.optional(sc.baseline, m, STABILITY, p, "subspace_random", "shared_fraction")
            t = sc.stat(m, STABILITY, p, "shared_fraction").values(m)[0]
            if b is not None and None not in (b.values(m)[0], t) and b.values(m)[0] > t:
                crowded.append(n)
        if crowded and len(crowded) == len(shared):
            text += (" Even by this measure random atoms in the data subspace do better than "
                     "every trained SAE (table): in so few dimensions a large random dictionary "
                     "is crowded enough that most atoms find a partner above the threshold.")
    return text + "\n"


def span(c: Citer, refs, fmt: str) -> str:
    """``min–max`` of cited values, or the one value when they agree at ``fmt``."""
    vals = [c.value(f, p) for f, p in refs]
    if vals and all(isinstance(v, int | float) for v in vals) and \
            format(min(vals), fmt) == format(max(vals), fmt):
        return c.derived("mean", refs, fmt)
    return f"{c.derived('min', refs, fmt)}–{c.derived('max', refs, fmt)}"


def _row_ci(c: Citer, path, key: str, ci_key: str, fmt: str = ".2f", file: str = SWEEP) -> str:
    if c.m.get(file, (*path, key)) is None:
        return "n/a"
    return ci_text(c, sc.row_stat(c.m, file, path, key, ci_key), fmt)


def _cell(c: Citer, path, key: str, fmt: str, file: str = SWEEP) -> str:
    return c.num(file, (*path, key), fmt)


def sweep_section(c: Citer, build) -> str:
    m = c.m
    best = m.get(SWEEP, ("best_ratio",))
    if not best:
        raise Skip(f"{SWEEP}: best_ratio is empty")
    head = ("| config | d_sae | sparsity | L0 | explained variance | PWMCC | "
            "trained / isotropic [95% CI] | trained / data subspace [95% CI] | "
            "shared fraction | coverage |\n"
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n")
    rows = []
    for i, r in enumerate(best):
        p = ("best_ratio", i)
        rows.append(
            f"| `{r['config']}` | {c.num(SWEEP, (*p, 'd_sae'), 'd')} | `{r['knob']}` "
            f"{c.num(SWEEP, (*p, 'level'), 'g')} | {_cell(c, p, 'l0', '.1f')} | "
            f"{_cell(c, p, 'explained_variance', '.3f')} | {_cell(c, p, 'pwmcc', '.3f')} | "
            f"{_row_ci(c, p, 'ratio', 'ratio_ci')} | "
            f"{_row_ci(c, p, 'ratio_subspace', 'ratio_subspace_ci') if 'ratio_subspace' in r else 'n/a'} | "
            f"{_cell(c, p, 'shared_fraction', '.3f')} | {_cell(c, p, 'coverage', '.2f')} |\n")
    text = (f"Trained configurations: {c.num(SWEEP, ('n_configs',), 'd')} "
            f"({c.num(SWEEP, ('n_saes',), 'd')} SAEs; "
            f"{c.num(SWEEP, ('n_skipped',), 'd')} combinations not trained because k > d_sae), "
            f"each trained for {c.num(SWEEP, ('epochs',), 'd')} epochs. The highest "
            f"trained / isotropic ratios:\n\n")
    text += head + "".join(rows)
    by = m.get(SWEEP, ("by_d_sae",))
    if by:
        text += ("\nBest configuration per dictionary size (`by_d_sae`), with the number of "
                 "configurations above the data-subspace baseline:\n\n"
                 "| d_sae | best config | trained / isotropic [95% CI] | random PWMCC | "
                 "configs | stable (CI above both baselines) | above data subspace (CI) |\n"
                 "| --- | --- | --- | --- | --- | --- | --- |\n")
        trained = sc.rows(m, SWEEP)
        for d in sorted(by, key=float):
            p = ("by_d_sae", d)
            mine = [(rp, r) for rp, r in trained if str(r["d_sae"]) == d]
            d_cell = (c.num(SWEEP, (*mine[0][0], "d_sae"), "d") if mine else "n/a")
            above_sub = [(SWEEP, (*rp, "ratio_subspace")) for rp, r in mine
                         if r.get("above_subspace") is True]  # with the data subspace
            has_sub = any("above_subspace" in r for _, r in mine)
            text += (f"| {d_cell} | `{by[d]['best_config']}` | "
                     f"{_row_ci(c, p, 'best_ratio', 'best_ratio_ci')} | "
                     f"{_cell(c, p, 'random_pwmcc', '.3f')} | {_cell(c, p, 'n_configs', 'd')} | "
                     f"{_cell(c, p, 'n_stable', 'd')} | "
                     f"{c.derived('count', above_sub, 'd') if has_sub else 'n/a'} |\n")
    return text + f"\n({fig_ref(build, 'fig4_stability_heatmaps')}, " \
                  f"{fig_ref(build, 'fig5_tradeoff')}.)\n"


def matched_l0_section(c: Citer, build) -> str:
    m = c.m
    comps = m.get(SWEEP, ("matched_l0",))
    if not comps:
        raise Skip(f"{SWEEP}: no comparison at matched L0")
    archs = sorted({a for comp in comps for a in comp["architectures"]})
    head = ("| d_sae | target L0 | " + " | ".join(archs) + " | best |\n| --- | --- | "
            + " | ".join("---" for _ in archs) + " | --- |\n")
    out = []
    for i, comp in enumerate(comps):
        p = ("matched_l0", i)
        cells = [c.num(SWEEP, (*p, "d_sae"), "d"), c.num(SWEEP, (*p, "target_l0"), "g")]
        for a in archs:
            if a not in comp["architectures"]:
                cells.append("")
                continue
            q = (*p, "architectures", a)
            cells.append(f"{_row_ci(c, q, 'ratio', 'ratio_ci')} (L0 {_cell(c, q, 'l0', '.1f')})")
        cells.append(comp["best_architecture"])
        out.append("| " + " | ".join(cells) + " |\n")
    text = ("Trained / isotropic PWMCC ratio [95% CI] of each architecture's configuration "
            "whose measured L0 is nearest the target:\n\n" + head + "".join(out))
    summ = m.get(SWEEP, ("architectures_at_matched_l0",))
    if summ:
        text += ("\n| architecture | comparisons | wins | mean ratio |\n| --- | --- | --- | --- |\n"
                 + "".join(
                     f"| {a} | {c.num(SWEEP, ('architectures_at_matched_l0', a, 'n_comparisons'), 'd')} | "
                     f"{c.num(SWEEP, ('architectures_at_matched_l0', a, 'wins'), 'd')} | "
                     f"{c.num(SWEEP, ('architectures_at_matched_l0', a, 'mean_ratio'), '.2f')} |\n"
                     for a in summ))
    return text


def recovery_section(c: Citer, build) -> str:
    m = c.m
    head = ("| config | key-frequency coverage | pure-latent fraction | decoder alignment | "
            "random dictionary |\n| --- | --- | --- | --- | --- |\n")
    rows = []
    for name, path in sc.configs(m, RECOVERY):
        cells = [f"`{name}`"]
        for metric in ("key_frequency_coverage", "pure_latent_fraction", "decoder_alignment"):
            s = sc.optional(sc.stat, m, RECOVERY, path, metric)
            cells.append(ci_text(c, s) if s else "n/a")
        b = sc.optional(sc.baseline, m, RECOVERY, path, "random", "decoder_alignment")
        cells.append(c.num(RECOVERY, b.mean, ".3f") if b else "n/a")
        rows.append("| " + " | ".join(cells) + " |\n")
    return head + "".join(rows) + f"\n({fig_ref(build, 'fig6_recovery')}.)\n"


# ----------------------------------------------------------------------------- research questions


def rq1(c: Citer, build) -> str:
    m = c.m
    gold = m.get(SWEEP, ("goldilocks",))
    by = m.get(SWEEP, ("by_d_sae",))
    if not by:
        raise Skip(f"{SWEEP}: no by_d_sae summary")
    sizes = sorted(by, key=float)
    trained = sc.rows(m, SWEEP)
    d_path = {str(r["d_sae"]): (*p, "d_sae") for p, r in trained}
    best = [by[d]["best_ratio"] for d in sizes]
    falling = all(a is not None and b is not None and a > b for a, b in pairwise(best))
    text = "**A Goldilocks zone.** " if gold["zone"] else "**No Goldilocks zone.** "
    text += ("The best trained / isotropic PWMCC ratio per dictionary size is " + "; ".join(
        f"d_sae {c.num(SWEEP, d_path[d], 'd') if d in d_path else 'n/a'}: "
        f"{_row_ci(c, ('by_d_sae', d), 'best_ratio', 'best_ratio_ci')} (`{by[d]['best_config']}`)"
        for d in sizes) + ". ")
    if falling:
        text += ("It falls with every step up in size, so the peak is at the smallest size "
                 f"tried (d_sae {c.num(SWEEP, ('goldilocks', 'peak_d_sae'), 'd')}), not inside "
                 "the range. ")
    else:
        text += f"It peaks at d_sae {c.num(SWEEP, ('goldilocks', 'peak_d_sae'), 'd')}. "
    if m.exists(FOURIER):
        rank = c.value(FOURIER, ("activation_effective_rank",))
        low = [d for d in sizes if float(d) <= rank and d in d_path]
        text += (f"The activations' effective rank is "
                 f"{c.num(FOURIER, ('activation_effective_rank',), '.1f')}"
                 + ("; sizes at or below it: "
                    + ", ".join(f"d_sae {c.num(SWEEP, d_path[d], 'd')}" for d in low)
                    if low else "; every size tried is above it") + ". ")
    stable = [(SWEEP, ("by_d_sae", d, "n_stable")) for d in sizes]
    total = [(SWEEP, ("by_d_sae", d, "n_configs")) for d in sizes]
    n_stable = sum(m.get(f, p) for f, p in stable)
    n_total = sum(m.get(f, p) for f, p in total)
    text += (("By the isotropic and untrained baselines every configuration counts as stable: "
              if n_stable == n_total else
              "By the isotropic and untrained baselines most configurations count as stable: ")
             + f"{c.derived('sum', stable, 'd')} of {c.derived('sum', total, 'd')} are above "
               "both with their CI. ")
    has_sub = [(p, r) for p, r in trained if "above_subspace" in r]  # data-subspace baseline
    if has_sub:
        above = [(SWEEP, (*p, "ratio_subspace")) for p, r in has_sub if r["above_subspace"]]
        top = max((pr for pr in has_sub if pr[1]["ratio_subspace"] is not None),
                  key=lambda pr: pr[1]["ratio_subspace"], default=None)
        text += (("Against the data-subspace baseline the picture changes: only "
                  if len(above) < len(has_sub) else "Against the data-subspace baseline, ")
                 + f"{c.derived('count', above, 'd')} of "
                 f"{c.derived('count', [(SWEEP, (*p, 'ratio')) for p, _ in has_sub], 'd')} "
                 "configurations are above it with their CI. By size: ")
        groups = []
        for d in sizes:
            mine = [(p, r) for p, r in has_sub if str(r["d_sae"]) == d]
            if not mine:
                continue
            up = [(SWEEP, (*p, "ratio_subspace")) for p, r in mine if r["above_subspace"]]
            groups.append(f"d_sae {c.num(SWEEP, (*mine[0][0], 'd_sae'), 'd')}: "
                          f"{c.derived('count', up, 'd')} of "
                          f"{c.derived('count', [(SWEEP, (*p, 'ratio')) for p, _ in mine], 'd')}")
        text += "; ".join(groups) + ". "
        if top is not None:
            text += (f"The highest trained / data-subspace ratio is "
                     f"{_row_ci(c, top[0], 'ratio_subspace', 'ratio_subspace_ci')} "
                     f"(`{top[1]['config']}`). ")
    text += jumprelu_note(c, trained)
    text += (f"Learning rate and training length were not swept: every sweep SAE trains for "
             f"{c.num(SWEEP, ('epochs',), 'd')} epochs at one learning rate; training length "
             "is covered only by the dynamics of the baseline SAEs (RQ5). ")
    return text + (f"({fig_ref(build, 'fig4_stability_heatmaps')}, "
                   f"{fig_ref(build, 'fig5_tradeoff')}.)")


def jumprelu_note(c: Citer, trained) -> str:
    mine = [(p, r) for p, r in trained if r["architecture"] == "jumprelu"]
    if not mine:
        return ""
    sizes = sorted({r["d_sae"] for _, r in mine})
    parts, flat = [], True
    for d in sizes:
        cells = [(SWEEP, (*p, "l0")) for p, r in mine if r["d_sae"] == d]
        levels = [(SWEEP, (*p, "level")) for p, r in mine if r["d_sae"] == d]
        l0s = [r["l0"] for _, r in mine if r["d_sae"] == d]
        if len(l0s) < 2:
            continue
        flat = flat and max(l0s) <= 1.1 * min(l0s)
        first = next(p for p, r in mine if r["d_sae"] == d)
        parts.append(f"d_sae {c.num(SWEEP, (*first, 'd_sae'), 'd')}: "
                     f"L0 {c.derived('min', cells, '.1f')}–{c.derived('max', cells, '.1f')} for "
                     f"coefficients {c.derived('min', levels, 'g')}–{c.derived('max', levels, 'g')}")
    if not parts:
        return ""
    verdict = ("JumpReLU's L0 barely responds to its L0 coefficient in this short sweep "
               "training, so its column is one sparsity level repeated" if flat else
               "JumpReLU's L0 changes with its L0 coefficient")
    return f"{verdict} ({'; '.join(parts)}). "


def rq2(c: Citer, build) -> str:
    m = c.m
    text = ""
    if m.exists(SWEEP):
        summ = m.get(SWEEP, ("architectures_at_matched_l0",))
        comps = m.get(SWEEP, ("matched_l0",))
        decisive = []
        for i, comp in enumerate(comps):
            arch = comp["architectures"]
            win = comp["best_architecture"]
            if win not in arch or arch[win]["ratio_ci"] is None:
                continue
            lo = arch[win]["ratio_ci"][0]
            others = [a["ratio_ci"][1] for n, a in arch.items()
                      if n != win and a["ratio_ci"] is not None]
            if others and all(lo > h for h in others):
                decisive.append((SWEEP, ("matched_l0", i, "architectures", win, "ratio")))
        if comps and summ:
            wins = "; ".join(
                f"{a} in {c.num(SWEEP, ('architectures_at_matched_l0', a, 'wins'), 'd')} of "
                f"{c.num(SWEEP, ('architectures_at_matched_l0', a, 'n_comparisons'), 'd')}"
                for a in summ)
            n_all = [(SWEEP, ("matched_l0", i, "d_sae")) for i in range(len(comps))]
            mostly = 2 * len(decisive) <= len(comps)
            text += (
                "In the sweep, at matched L0 (same dictionary size, measured L0 within a "
                "factor of the target), the most stable architecture (highest trained / "
                f"isotropic ratio) is: {wins} comparisons. The winner's CI lies above every "
                f"other architecture's CI in {c.derived('count', decisive, 'd')} of "
                f"{c.derived('count', n_all, 'd')} comparisons"
                + (": at matched L0 the architectures are mostly indistinguishable by this "
                   "measure. " if mostly else ". "))
    if not m.exists(STABILITY):
        if not text:
            raise Skip(f"{STABILITY} is not there yet")
        return text.rstrip()
    parts = []
    for name, path in sc.configs(m, STABILITY):
        t = sc.stat(m, STABILITY, path, "pwmcc")
        r = sc.optional(sc.ratio, m, STABILITY, path, "pwmcc", "random")
        s = sc.optional(sc.stat, m, STABILITY, path, "shared_fraction")
        l0 = ""
        if m.exists(SAES) and sc.sae_seed_paths(m, name):
            l0 = ", L0 " + c.derived("mean", [(SAES, (*p, "metrics", "l0"))
                                             for p in sc.sae_seed_paths(m, name)], ".1f")
        parts.append(f"`{name}`{l0}: PWMCC {ci_text(c, t)}"
                     + (f", trained / isotropic {ci_text(c, r, '.2f')}" if r else "")
                     + (f", shared fraction {ci_text(c, s)}" if s else ""))
    text += ("The baseline SAEs (L0 as trained, not matched): " + "; ".join(parts)
             + ". ")
    verdicts = []
    for name, path in sc.configs(m, STABILITY):
        t = sc.stat(m, STABILITY, path, "pwmcc")
        bs = [sc.optional(sc.baseline, m, STABILITY, path, k, "pwmcc")
              for k in ("random", "untrained")]
        sub = sc.optional(sc.baseline, m, STABILITY, path, "subspace_random", "pwmcc")
        ok = above(m, t, *bs)
        word = {True: "above both", False: "**not** above both", None: "no CI"}[ok]
        if sub is not None:
            word += f", {relation(m, t, sub)} the data-subspace baseline"
        verdicts.append(f"`{name}` {word}")
    text += ("By the SCIENCE.md rule (CI above the isotropic and untrained baselines): "
             + "; ".join(verdicts) + f" ({fig_ref(build, 'fig3_baselines')}).")
    return text


def rq3(c: Citer, build) -> str:
    m = c.m
    rows = []
    for name, path in sc.configs(m, RECOVERY):
        if not m.exists(STABILITY) or name not in m.json(STABILITY):
            continue
        r = sc.optional(sc.ratio, m, STABILITY, (name,), "pwmcc", "random")
        cov = sc.stat(m, RECOVERY, path, "key_frequency_coverage")
        al = sc.optional(sc.stat, m, RECOVERY, path, "decoder_alignment")
        ra = sc.optional(sc.baseline, m, RECOVERY, path, "random", "decoder_alignment")
        rows.append((name, cov, r, al, ra))
    if not rows:
        raise Skip(f"{RECOVERY} shares no configuration with {STABILITY}")
    text = "Baseline SAEs: " + "; ".join(
        f"`{n}`: coverage {ci_text(c, cov)}, decoder alignment "
        f"{ci_text(c, al) if al else 'n/a'} (random {c.num(RECOVERY, ra.mean, '.3f') if ra else 'n/a'}), "
        f"trained / isotropic PWMCC {ci_text(c, r, '.2f') if r else 'n/a'}"
        for n, cov, r, al, ra in rows) + ". "
    valid = [(n, cov.values(m)[0], r.values(m)[0]) for n, cov, r, _, _ in rows
             if r is not None and cov.values(m)[0] is not None and r.values(m)[0] is not None]
    if len(valid) >= 2:
        most_stable = max(valid, key=lambda v: v[2])[0]
        best_cov = max(v[1] for v in valid)
        agree = dict((n, cv) for n, cv, _ in valid)[most_stable] == best_cov
        text += (f"The most stable baseline configuration, `{most_stable}`, "
                 f"{'also has' if agree else 'does **not** have'} the highest coverage. ")
    trained = sc.optional(sc.rows, m, SWEEP) if m.exists(SWEEP) else None
    if trained and any("above_subspace" in r for _, r in trained):
        up = [(SWEEP, (*p, "coverage")) for p, r in trained
              if r.get("above_subspace") is True and r["coverage"] is not None]
        down = [(SWEEP, (*p, "coverage")) for p, r in trained
                if r.get("above_subspace") is False and r["coverage"] is not None]
        if up and down:
            mu = sum(c.value(f, p) for f, p in up) / len(up)
            md = sum(c.value(f, p) for f, p in down) / len(down)
            text += (f"In the sweep, the configurations above the data-subspace baseline have "
                     f"mean coverage {c.derived('mean', up, '.2f')}, those not above it "
                     f"{c.derived('mean', down, '.2f')}: "
                     + ("the short-trained sweep SAEs recover almost none of the key "
                        "frequencies either way, stable or not. " if max(mu, md) < 0.1 else
                        "the stabler configurations recover **less** of the ground truth. "
                        if mu < md else "the stabler configurations recover more of it. "))
    return text + f"({fig_ref(build, 'fig6_recovery')}.)"


def _overlap_rank(m: Metrics, path) -> str | None:
    ov = m.get(GEOMETRY, (*path, "subspace", "overlap"))
    if not ov:
        return None
    need = sc.optional(m.get, GEOMETRY, ("activations", "dims_for_variance", "0.99"))
    ranks = sorted(ov, key=float)
    if need is not None:
        bigger = [r for r in ranks if float(r) >= need]
        if bigger:
            return bigger[0]
    return ranks[0]


def rq4(c: Citer, build) -> str:
    m = c.m
    text = (f"The activations' effective rank is "
            f"{c.num(GEOMETRY, ('activations', 'effective_rank'), '.1f')} of "
            f"{c.num(GEOMETRY, ('activations', 'd_in'), 'd')} dimensions; "
            f"{c.num(GEOMETRY, ('activations', 'dims_for_variance', '0.9'), 'd')} hold "
            f"{c.quote('90%', 'definition of dims_for_variance')} of the variance and "
            f"{c.num(GEOMETRY, ('activations', 'dims_for_variance', '0.99'), 'd')} hold "
            f"{c.quote('99%', 'definition of dims_for_variance')}. "
            "Each property below is set beside a reference with no learning (two "
            "dictionaries of randomly drawn activation rows, 'data sample'). ")
    parts: list[str] = []
    groups_over_atoms: list[str] = []
    atoms_match: list[str] = []
    explained: list[str] = []
    beyond: list[str] = []
    for name, path in sc.configs(m, GEOMETRY):
        entry = m.get(GEOMETRY, path)
        bits = []
        sd = sc.stat_at(m, GEOMETRY, (*path, "gram", "seed_distance"))
        refs_d = [m.get(GEOMETRY, (*path, "gram", k, "mean"))
                  for k in ("distance_to_data_sample", "distance_to_isotropic")]
        less = all(v is not None and (sd.values(m)[2] or 1e9) < v for v in refs_d)
        bits.append(
            f"Gram spectra differ between seeds by {ci_text(c, sd)} (total variation), "
            f"{'less' if less else '**not** clearly less'} than from the data-sample "
            f"reference "
            f"({c.num(GEOMETRY, sc.stat_at(m, GEOMETRY, (*path, 'gram', 'distance_to_data_sample')).mean, '.3f')}) "
            f"or the isotropic one "
            f"({c.num(GEOMETRY, sc.stat_at(m, GEOMETRY, (*path, 'gram', 'distance_to_isotropic')).mean, '.3f')}); "
            f"two data-sample dictionaries differ by "
            f"{c.num(GEOMETRY, (*path, 'gram', 'data_sample_pair_distance'), '.3f')}")
        go = sc.stat_at(m, GEOMETRY, (*path, "groups", "all", "group_overlap"))
        am = sc.stat_at(m, GEOMETRY, (*path, "groups", "all", "atom_match"))
        conserved = (go.values(m)[0] or 0) > (am.values(m)[0] or 0)
        (groups_over_atoms if conserved else atoms_match).append(name)
        bit = (f"key-frequency group subspaces overlap {ci_text(c, go)} between seeds "
               f"while single atoms match at {ci_text(c, am)} "
               f"({'groups conserved more than atoms' if conserved else 'groups **not** conserved more than atoms'})")
        if entry["groups"]["data_sample"]["group_overlap"] is not None:
            ref = sc.Stat(GEOMETRY, (*path, "groups", "data_sample", "group_overlap"))
            word = relation(m, go, ref)
            bit += (f"; the data-sample reference gives group overlap "
                    f"{c.num(GEOMETRY, ref.mean, '.3f')} (trained is {word} it)")
            (beyond if word == "above" else explained).append(name)
        if not conserved:
            bit += (f"; but within one seed its live atoms are near-duplicates (mean best "
                    f"|cos| to another atom of the same seed "
                    f"{c.num(GEOMETRY, (*path, 'gram', 'summary', 'self_max_cos', 'mean'), '.3f')})")
        bits.append(bit)
        r = _overlap_rank(m, path)
        if r is not None:
            ov = sc.stat_at(m, GEOMETRY, (*path, "subspace", "overlap", r))
            sub = entry["subspace"]  # per rank "<r>"
            refs = []
            if r in sub["data_sample_overlap"]:
                ref = sc.Stat(GEOMETRY, (*path, "subspace", "data_sample_overlap", r))
                refs.append(f"data sample {c.num(GEOMETRY, ref.mean, '.3f')}, trained "
                            f"{relation(m, ov, ref)} it")
            if r in sub["random_expectation"]:
                refs.append("random expectation "
                            + c.num(GEOMETRY, (*path, 'subspace', 'random_expectation', r), '.3f'))
            bits.append(f"the rank-{c.quote(r, 'rank key of subspace.overlap in metrics/geometry.json')} "
                        f"decoder subspaces overlap {ci_text(c, ov)} ({'; '.join(refs)})")
        parts.append(f"`{name}`: " + "; ".join(bits))
    if not parts:
        raise Skip(f"{GEOMETRY}: no configuration with geometry metrics")
    def names(xs: list[str]) -> str:
        return ", ".join(f"`{n}`" for n in xs)

    summary = []
    if groups_over_atoms:
        summary.append(f"for {names(groups_over_atoms)} the key-frequency group subspaces are "
                       "conserved across seeds while single atoms are not")
    if atoms_match:
        summary.append(f"for {names(atoms_match)} single live atoms match as well as the "
                       "groups do")
    if explained:
        summary.append(f"the group overlap of {names(explained)} is no higher than that of the "
                       "data-sample reference, i.e. explained by the activations' low rank")
    if beyond:
        summary.append(f"the group overlap of {names(beyond)} exceeds the data-sample "
                       "reference")
    return (text + ". ".join(parts) + ". In short: " + "; ".join(summary)
            + f" ({fig_ref(build, 'fig8a_geometry')}).")


def rq5(c: Citer, build) -> str:
    m = c.m
    parts = []
    for name, path in sc.configs(m, DYNAMICS):
        cps = m.get(DYNAMICS, (*path, "checkpoints"))
        if len(cps) < 2:
            continue
        last, prev = len(cps) - 1, len(cps) - 2
        cp = (*path, "checkpoints")
        pw0 = sc.stat_at(m, DYNAMICS, (*cp, 0, "stability", "pwmcc"))
        pw1 = sc.stat_at(m, DYNAMICS, (*cp, last, "stability", "pwmcc"))
        text = (f"`{name}`: PWMCC between seeds goes from {ci_text(c, pw0)} at step "
                f"{c.num(DYNAMICS, (*cp, 0, 'step'), 'd')} (the untrained baseline) to "
                f"{ci_text(c, pw1)} at step {c.num(DYNAMICS, (*cp, last, 'step'), 'd')}")
        sf = [cp_["stability"]["shared_fraction"]["mean"]
              if "shared_fraction" in cp_["stability"] else None for cp_ in cps]
        if all(v is not None for v in sf):
            peak = max(range(len(sf)), key=lambda i: (sf[i], -i))
            refs = [(DYNAMICS, (*cp, i, "stability", "shared_fraction", "mean"))
                    for i in range(len(cps))]
            shape = ("peaks early and then falls" if peak < last and sf[last] < 0.8 * sf[peak]
                     else "rises to its final value")
            text += (f"; the shared fraction {shape}: maximum {c.derived('max', refs, '.3f')} at "
                     f"step {c.num(DYNAMICS, (*cp, peak, 'step'), 'd')}, "
                     f"{c.num(DYNAMICS, refs[last][1], '.3f')} at the end")
        text += (f", while the live fraction of latents goes from "
                 f"{c.num(DYNAMICS, (*cp, 0, 'frac_alive', 'mean'), '.3f')} to "
                 f"{c.num(DYNAMICS, (*cp, last, 'frac_alive', 'mean'), '.3f')}")
        settle = m.get(DYNAMICS, (*path, "settle", "live", "fraction_settled_by_step"))
        step_prev = cps[prev]["step"]
        if str(step_prev) in settle:
            text += (f". Settling: only {c.num(DYNAMICS, (*path, 'settle', 'live', 'fraction_settled_by_step', str(step_prev)), '.1%')} "
                     f"of the {c.num(DYNAMICS, (*path, 'settle', 'live', 'n_latents'), 'd')} live "
                     f"latents have their final best matches by step "
                     f"{c.num(DYNAMICS, (*cp, prev, 'step'), 'd')} (median settle step "
                     f"{c.num(DYNAMICS, (*path, 'settle', 'live', 'median'), 'g')} of "
                     f"{c.num(DYNAMICS, (*path, 'total_steps'), 'd')})"
                     f", and {c.num(DYNAMICS, (*cp, prev, 'match_agreement_live'), '.1%')} "
                     "of (live latent, other seed) best matches there are already final")
        parts.append(text)
    if not parts:
        raise Skip(f"{DYNAMICS}: no configuration with checkpoints")
    return ". ".join(parts) + (". Most latents' best matches are still changing at the end "
                               "of training: the runs have not converged to a fixed "
                               f"dictionary ({fig_ref(build, 'fig7_dynamics')}).")


def rq6(c: Citer, build) -> str:
    m = c.m
    parts, few, unit = [], [], False
    for name, path in sc.configs(m, PREDICTORS):
        entry = m.get(PREDICTORS, path)
        auc = entry["auc"]
        if not auc:
            continue
        good, chance, anti = [], [], []
        for prop in auc:
            st = sc.stat_at(m, PREDICTORS, (*path, "auc", prop))
            _, lo, hi = st.values(m)
            piece = f"{prop.replace('_', ' ')} {ci_text(c, st, '.2f')}"
            if lo is not None and lo > 0.5:
                good.append(piece)
            elif hi is not None and hi < 0.5:
                anti.append(piece)
            else:
                chance.append(piece)
        head = (f"`{name}` ({c.num(PREDICTORS, (*path, 'n_shared'), 'd')} shared of "
                f"{c.num(PREDICTORS, (*path, 'n_live'), 'd')} live latents)")
        text = head + ": " + "; ".join(
            f"{label}: {', '.join(items)}" for label, items in (
                ("predictive (CI above chance)", good), ("below chance (CI under it)", anti),
                ("not distinguishable from chance", chance)) if items)
        if entry["n_shared"] < 30:
            few.append(name)
        dec = auc.get("decoder_norm")  # predictors are the keys of auc
        if dec is not None and dec["mean"] == 0.5 and dec["std"] == 0:
            unit = True
        parts.append(text)
    if not parts:
        raise Skip(f"{PREDICTORS}: no configuration with AUCs")
    text = ("ROC AUC per seed (mean [95% CI]) for 'shared with a majority of the other "
            "seeds', live latents only: " + ". ".join(parts) + ". ")
    if few:
        text += (f"{', '.join(f'`{n}`' for n in few)} "
                 f"{'has' if len(few) == 1 else 'have'} very few shared latents, so "
                 f"{'its' if len(few) == 1 else 'their'} CIs are wide. ")
    if unit:
        text += ("The decoder norm is uninformative by construction: the saved decoders have "
                 "unit-norm rows, so its AUC is exactly chance. ")
    return text + f"({fig_ref(build, 'fig8b_predictors')}.)"


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
    ("Stability across seeds (baseline SAEs)", stability_section),
    ("Sweep: dictionary size x sparsity", sweep_section),
    ("Architectures at matched L0", matched_l0_section),
    ("Ground-truth recovery", recovery_section),
)


def _guarded(c: Citer, fn, build) -> str:
    start = len(c.sources)
    try:
        return fn(c, build).rstrip() + "\n"
    except Skip as why:
        del c.sources[start:]
        return f"*Pending: `{why}`.*\n"


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
            out.append(f"| {spec.title} | `{spec.name}` | skipped: `{build.skipped[spec.name]}` |\n")
    return "".join(out), c.sources
