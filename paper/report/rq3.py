"""RQ3 "Ground-truth recovery, and whether it goes with stability".

Recovery in the sense the data allow (SCIENCE.md sections 8-9) leads: at
``hook_resid_post`` the data are round circles in orthogonal planes and a rotation within a
plane maps them onto themselves, so single atoms cannot be recovered there, only planes.
Decided here, from the values the text cites only:

* per domain with plane metrics (each transformer hook of :data:`paper.report.planes.HOOKS`
  and the circles control): whether most live atoms lie in one plane and whether most live
  latents are arc latents (:func:`share`: CI above one half, below it, containing it);
* at ``mlp.hook_post`` (:data:`PRIVILEGED`, a basis of neurons): whether live atoms sit on
  single neurons more often than count-matched random atoms in the data subspace
  (:attr:`paper.report.planes.Row.on_neurons`), and whether any does at all;
* where recovery is defined (planted features): the identifiability map's answer and the
  two controls, decided by :mod:`paper.report.controls`.

The old all-atom answer follows, labelled secondary: whether the most stable baseline
configuration (highest trained / isotropic ratio) also has the highest key-frequency
coverage, and, in the sweep, how the mean coverage of the configurations above the
data-subspace baseline compares with that of the others (both below :data:`NEGLIGIBLE`:
almost no coverage). Coverage counts latents that pass the purity test, which measures how
densely a latent fires, not recovery.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from paper import schema as sc
from paper.cite import Citer
from paper.errors import Skip
from paper.figures import CIRCLES, IDMAP, MLP_STABILITY, RECOVERY, STABILITY, SWEEP, SYNTHETIC
from paper.metrics import JsonPath, Metrics
from paper.report import controls, planes
from paper.report.common import ci_text, fig_ref, names, span

Ref = tuple[str, JsonPath]
NEGLIGIBLE = 0.1  # a mean coverage below this: almost no key frequency has a pure latent
PRIVILEGED = MLP_STABILITY  # the hook whose coordinates are the model's neurons
Sweep = Literal["none_recovered", "stabler_less", "stabler_more"]
SWEEP_TEXT: dict[Sweep, str] = {
    "none_recovered": "the short-trained sweep SAEs have almost no coverage either way, "
    "stable or not. ",
    "stabler_less": "the stabler configurations have **less** coverage. ",
    "stabler_more": "the stabler configurations have more coverage. ",
}

Share = Literal["most", "few", "neither", "no_ci", "mixed"]
"""A share against one half: CI above it (``most``), below it (``few``), containing it
(``neither``), no CI; over several configurations, ``mixed`` where they differ."""
ATOMS_TEXT: dict[Share, str] = {
    "most": "most live atoms lie in one plane",
    "few": "fewer than half of the live atoms lie in one plane",
    "neither": "the share of live atoms in one plane is not clearly above or below one half",
    "no_ci": "no CI on the share of live atoms in one plane",
    "mixed": "the configurations differ on whether most live atoms lie in one plane",
}
ARCS_TEXT: dict[Share, str] = {
    "most": "most live latents fire on one arc of one circle",
    "few": "fewer than half of the live latents fire on one arc of one circle",
    "neither": "the share of arc latents is not clearly above or below one half",
    "no_ci": "no CI on the share of arc latents",
    "mixed": "the configurations differ on whether most live latents are arc latents",
}
NEURONS_TEXT: dict[planes.Outcome, str] = {
    "yes": "more often than random atoms (CI clear above the baseline's)",
    "no": "**not** more often than random atoms",
    "undetermined": "undetermined (no CI)",
}


def share(m: Metrics, s: sc.Stat | None) -> Share:
    """A share's CI against one half (:data:`Share`)."""
    if s is None:
        return "no_ci"
    _, lo, hi = s.values(m)
    if lo is None or hi is None:
        return "no_ci"
    if lo > controls.HALF:
        return "most"
    if hi < controls.HALF:
        return "few"
    return "neither"


def _common(verdicts: list[Share]) -> Share:
    return verdicts[0] if verdicts and all(v == verdicts[0] for v in verdicts) else "mixed"


@dataclass(frozen=True)
class Domain:
    """The plane answer of one domain: a transformer hook or the circles control."""

    label: str
    file: str
    min_share: JsonPath  # norm^2 share that puts an atom in one plane
    min_concentration: JsonPath  # mean resultant length of an arc latent
    in_plane: tuple[Ref, ...]  # assigned_fraction per configuration
    random_in_plane: tuple[Ref, ...]  # the same for random atoms in the data subspace
    arcs: tuple[Ref, ...]  # arc_fraction per configuration
    atoms: Share
    latents: Share


@dataclass(frozen=True)
class Neurons:
    """Live atoms on single neurons at the hook with a privileged basis."""

    label: str
    file: str
    threshold: JsonPath
    rows: tuple[planes.Row, ...]
    none_aligned: tuple[bool, ...]  # per row: no live atom of any seed on one neuron


@dataclass(frozen=True)
class Row:
    name: str
    coverage: sc.Stat
    ratio: sc.Stat | None  # trained / isotropic PWMCC (stability.json)
    alignment: sc.Stat | None
    random_alignment: sc.Stat | None


@dataclass(frozen=True)
class SweepCoverage:
    above: tuple[Ref, ...]  # coverage of the rows above the data-subspace baseline
    not_above: tuple[Ref, ...]  # ... of the rows not above it
    verdict: Sweep


@dataclass(frozen=True)
class Facts:
    rows: tuple[Row, ...]
    most_stable: str | None  # None: fewer than two configurations with both numbers
    most_stable_covers_most: bool  # the most stable one also has the highest coverage
    sweep: SweepCoverage | None
    domains: tuple[Domain, ...] = ()
    neurons: Neurons | None = None
    map: controls.MapAnswer | None = None
    positive: controls.Positive | None = None
    negatives: tuple[controls.Negative, ...] = ()

    @property
    def functional(self) -> bool:
        """Every domain: few live atoms in one plane, most live latents on arcs."""
        return bool(self.domains) and all(
            d.atoms == "few" and d.latents == "most" for d in self.domains
        )


def _entry(m: Metrics, file: str, name: str) -> JsonPath:
    return dict(sc.configs(m, file))[name]


def decide_domain(m: Metrics, file: str, label: str) -> Domain | None:
    hook = planes.decide_hook(m, file, label)
    if hook is None:
        return None
    paths = [(r, _entry(m, file, r.name)) for r in hook.rows]
    first = paths[0][1]

    def refs(key: str) -> tuple[Ref, ...]:
        return tuple(
            (file, (*p, "planes", key, "mean"))
            for _, p in paths
            if m.get(file, (*p, "planes", key))["mean"] is not None
        )

    return Domain(
        label=label,
        file=file,
        min_share=(*first, "planes", "min_share"),
        min_concentration=hook.min_concentration,
        in_plane=refs("assigned_fraction"),
        random_in_plane=refs("subspace_assigned_fraction"),
        arcs=refs("arc_fraction"),
        atoms=_common([share(m, r.assigned) for r, _ in paths]),
        latents=_common([share(m, r.arcs) for r, _ in paths]),
    )


def decide_neurons(m: Metrics) -> Neurons | None:
    label = dict(planes.HOOKS)[PRIVILEGED]
    hook = planes.decide_hook(m, PRIVILEGED, label)
    if hook is None or hook.neuron_threshold is None:
        return None
    rows = tuple(r for r in hook.rows if r.neurons[0] is not None)
    if not rows:
        return None
    return Neurons(
        label,
        PRIVILEGED,
        hook.neuron_threshold,
        rows,
        tuple(r.neurons[0].values(m)[0] == 0 for r in rows),
    )


def decide_controls(
    m: Metrics,
) -> tuple[controls.MapAnswer | None, controls.Positive | None, tuple[controls.Negative, ...]]:
    answer = sc.optional(controls.decide_map, m) if m.exists(IDMAP) else None
    positive = sc.optional(controls.decide_positive, m) if m.exists(SYNTHETIC) else None
    negatives: tuple[controls.Negative, ...] = ()
    if positive is not None and m.exists(CIRCLES):
        negatives = sc.optional(controls.decide_negatives, m, positive) or ()
    return answer, positive, negatives


def decide_recovery(m: Metrics) -> tuple[Row, ...]:
    if not m.exists(RECOVERY):
        return ()
    rows = []
    for name, path in sc.configs(m, RECOVERY):
        if not m.exists(STABILITY) or name not in m.json(STABILITY):
            continue
        rows.append(
            Row(
                name,
                sc.stat(m, RECOVERY, path, "key_frequency_coverage"),
                sc.optional(sc.ratio, m, STABILITY, (name,), "pwmcc", "random"),
                sc.optional(sc.stat, m, RECOVERY, path, "decoder_alignment"),
                sc.optional(sc.baseline, m, RECOVERY, path, "random", "decoder_alignment"),
            )
        )
    return tuple(rows)


def decide(m: Metrics) -> Facts:
    rows = decide_recovery(m)
    valid = [
        (r.name, r.coverage.values(m)[0], r.ratio.values(m)[0])
        for r in rows
        if r.ratio is not None
        and r.coverage.values(m)[0] is not None
        and r.ratio.values(m)[0] is not None
    ]
    most_stable, agree = None, False
    if len(valid) >= 2:
        most_stable = max(valid, key=lambda v: v[2])[0]
        best_cov = max(v[1] for v in valid)
        agree = dict((n, cv) for n, cv, _ in valid)[most_stable] == best_cov
    domains = tuple(
        d
        for f, lab in (*planes.HOOKS, (CIRCLES, "circles control"))
        if (d := decide_domain(m, f, lab)) is not None
    )
    answer, positive, negatives = decide_controls(m)
    facts = Facts(
        rows,
        most_stable,
        agree,
        decide_sweep(m),
        domains,
        decide_neurons(m),
        answer,
        positive,
        negatives,
    )
    if not (rows or domains or answer or positive):
        raise Skip(f"{RECOVERY}, {STABILITY}, {IDMAP}: no recovery measure there yet")
    return facts


def decide_sweep(m: Metrics) -> SweepCoverage | None:
    trained = sc.optional(sc.rows, m, SWEEP) if m.exists(SWEEP) else None
    if not (trained and any("above_subspace" in r for _, r in trained)):
        return None
    up = [
        (SWEEP, (*p, "coverage"))
        for p, r in trained
        if r.get("above_subspace") is True and r["coverage"] is not None
    ]
    down = [
        (SWEEP, (*p, "coverage"))
        for p, r in trained
        if r.get("above_subspace") is False and r["coverage"] is not None
    ]
    if not (up and down):
        return None
    mu = sum(m.get(f, p) for f, p in up) / len(up)
    md = sum(m.get(f, p) for f, p in down) / len(down)
    verdict: Sweep = (
        "none_recovered"
        if max(mu, md) < NEGLIGIBLE
        else "stabler_less"
        if mu < md
        else "stabler_more"
    )
    return SweepCoverage(tuple(up), tuple(down), verdict)


# ----------------------------------------------------------------------------- wording


def _span(c: Citer, refs: tuple[Ref, ...]) -> str:
    return span(c, refs, ".3f") if refs else "n/a"


def render_planes(c: Citer, f: Facts) -> str:
    d0 = f.domains[0]
    text = (
        "**Planes.** At `hook_resid_post` the data are round circles in orthogonal planes "
        "and a rotation within a plane maps them onto themselves, so single atoms cannot "
        "be recovered there, only planes (SCIENCE.md section 9). Share of live atoms "
        f"lying in one plane (at least {c.num(d0.file, d0.min_share, '.0%')} of their "
        "norm² in it; beside count-matched random atoms in the data subspace) and of arc "
        "latents (live latents firing on one arc of one circle, mean resultant length >= "
        f"{c.num(d0.file, d0.min_concentration, '.1f')}), over the configurations: "
        + "; ".join(
            f"{d.label}: atoms in one plane {_span(c, d.in_plane)} (random "
            f"{_span(c, d.random_in_plane)}), arc latents {_span(c, d.arcs)}"
            for d in f.domains
        )
        + ". "
    )
    if f.functional:
        text += (
            "At every hook and in the circles control fewer than half of the live atoms lie "
            "in one plane while most live latents fire on one arc of one circle (CIs clear of "
            "one half in every configuration): the SAEs recover the circles functionally, as "
            "arcs, while most of their atoms mix planes. "
        )
    else:
        text += (
            "; ".join(
                f"{d.label}: {ATOMS_TEXT[d.atoms]}, {ARCS_TEXT[d.latents]}" for d in f.domains
            )
            + ". "
        )
    return text


def render_neurons(c: Citer, n: Neurons) -> str:
    parts = []
    for r, none in zip(n.rows, n.none_aligned, strict=True):
        t, b, _ = r.neurons
        base = "n/a" if b is None else ci_text(c, b)
        parts.append(
            f"`{r.name}` {ci_text(c, t)} (random atoms in the data subspace {base}): "
            + NEURONS_TEXT[r.on_neurons]
            + ("; no live atom of any seed lies on one neuron" if none else "")
        )
    return (
        f"**Neurons.** At {n.label}, whose coordinates are the model's ReLU neurons (a "
        f"privileged basis), the share of live atoms on a single neuron (|cos| >= "
        f"{c.num(n.file, n.threshold, '.1f')} to it): " + "; ".join(parts) + ". "
    )


def render_stability(c: Citer, f: Facts) -> str:
    text = "**Stability and recovery.** "
    if f.map is not None:
        a = f.map
        text += (
            "Where recovery is defined, on planted features (identifiability map, "
            f"{c.num(IDMAP, a.n_cells, 'd')} cells): Spearman correlation of `{a.stability}` "
            f"with `{a.recovery}` across cells {ci_text(c, a.rho, '.2f')}: "
            f"{controls.SIGN_TEXT[a.sign]}. "
        )
        text += (
            f"Every cell with `{a.stability}` of at least {c.num(IDMAP, a.threshold, '.3f')} "
            f"({c.num(IDMAP, a.cells_above, 'd')} cells) has `{a.recovery}` of at least "
            f"{c.num(IDMAP, a.level, '.2f')}. "
            if a.threshold is not None
            else f"No stability level makes every cell reach `{a.recovery}` of "
            f"{c.num(IDMAP, a.level, '.2f')}: stability never guarantees recovery there. "
        )
    p = f.positive
    if p is not None:
        text += (
            f"Positive control (planted features, `{p.name}`): PWMCC {ci_text(c, p.pwmcc)} "
            f"(isotropic {'n/a' if p.random_pwmcc is None else ci_text(c, p.random_pwmcc)}), "
            f"recovered fraction {'n/a' if p.recovered is None else ci_text(c, p.recovered)}"
            + (
                ": the seeds agree and recover the planted features, stability and recovery "
                "together. "
                if p.works
                else ": it does **not** show both stability above the isotropic baseline and "
                "recovery of most planted features. "
            )
        )
    if f.negatives:
        refs = [(CIRCLES, n.shared.mean) for n in f.negatives if n.shared is not None]
        few = all(n.unidentifiable for n in f.negatives)
        text += (
            "Negative control (circles, no single atom to recover): shared fraction "
            + (_span(c, tuple(refs)) if refs else "n/a")
            + (
                ""
                if p is None or p.shared is None
                else f" (positive control {c.num(p.shared.file, p.shared.mean, '.3f')})"
            )
            + (
                ", far below the positive control's: where there is nothing to recover the "
                "seeds share few atoms. "
                if few
                else ": in "
                + names(n.name for n in f.negatives if not n.unidentifiable)
                + " **not** clearly below the positive control's although there is nothing "
                "to recover: stability there does not imply recovery. "
            )
        )
    return text


def render_old(c: Citer, f: Facts) -> str:
    text = (
        "*All atoms (secondary: SCIENCE.md section 8 explains why these measure the data's "
        "shape; key-frequency coverage counts latents that pass the purity test, which "
        "measures how densely a latent fires, not recovery):* "
    )
    if f.rows:
        text += (
            "Baseline SAEs: "
            + "; ".join(
                f"`{r.name}`: coverage {ci_text(c, r.coverage)}, decoder alignment "
                f"{ci_text(c, r.alignment) if r.alignment else 'n/a'} "
                f"(random {c.num(RECOVERY, r.random_alignment.mean, '.3f') if r.random_alignment else 'n/a'}), "
                f"trained / isotropic PWMCC {ci_text(c, r.ratio, '.2f') if r.ratio else 'n/a'}"
                for r in f.rows
            )
            + ". "
        )
    if f.most_stable is not None:
        text += (
            f"The most stable baseline configuration, `{f.most_stable}`, "
            f"{'also has' if f.most_stable_covers_most else 'does **not** have'} the highest coverage. "
        )
    if f.sweep is not None:
        s = f.sweep
        text += (
            f"In the sweep, the configurations above the data-subspace baseline have "
            f"mean coverage {c.derived('mean', s.above, '.2f')}, those not above it "
            f"{c.derived('mean', s.not_above, '.2f')}: " + SWEEP_TEXT[s.verdict]
        )
    return text


def render(c: Citer, f: Facts, build) -> str:
    parts = []
    if f.domains:
        parts.append(render_planes(c, f))
    if f.neurons is not None:
        parts.append(render_neurons(c, f.neurons))
    if f.map is not None or f.positive is not None:
        parts.append(render_stability(c, f))
    if f.rows or f.sweep is not None:
        parts.append(render_old(c, f))
    figs = [fig_ref(build, "fig6_recovery")] if f.rows else []
    if f.map is not None:
        figs.append(fig_ref(build, "fig9_controls"))
    parts[-1] = parts[-1] + (f"({', '.join(figs)}.)" if figs else "")
    return "\n\n".join(p.rstrip() for p in parts) + "\n"


def section(c: Citer, build) -> str:
    return render(c, decide(c.m), build)
