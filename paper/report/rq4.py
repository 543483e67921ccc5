"""RQ4 "Geometry conserved across seeds; effective rank".

What is conserved when single atoms are not leads (SCIENCE.md section 9): per domain with
plane metrics (each transformer hook of :data:`paper.report.planes.HOOKS` and the circles
control) and configuration, decided here from the values the text cites only (each
comparison by :func:`paper.report.controls.versus`: a CI clear of the baseline's CI):

* whether the atoms are pinned beyond the symmetry: live PWMCC and the live shared fraction
  against the shift null (:data:`Pinned`: both above, one of them, neither);
* how the partition of the inputs by most active latent compares between seeds against
  count-matched random atoms in the data subspace (partition AMI);
* the planes: ``empty`` where no live atom of any seed lies in one plane (coverage and
  agreement then measure nothing), else whether coverage and agreement are both above
  their baselines (:attr:`paper.report.planes.Row.planes_agreed`);
* at ``mlp.hook_post`` (:data:`PRIVILEGED`, a basis of neurons): the neurons two seeds
  share, or that no seed has an atom on one neuron.

The activations' effective rank stays (``metrics/geometry.json``). The old all-atom
answer follows, labelled secondary, per configuration: whether the Gram spectra differ less
between seeds than from the two references, whether key-frequency groups are conserved
more than single atoms, where the group overlap and the decoder-subspace overlap lie
against the data-sample reference, and which subspace rank to report (the smallest holding
99% of the activations' variance).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from paper import schema as sc
from paper.cite import Citer
from paper.errors import Skip
from paper.figures import CIRCLES, GEOMETRY, MLP_STABILITY
from paper.metrics import JsonPath, Metrics
from paper.report import planes
from paper.report.common import RELATION_TEXT, Relation, ci_text, fig_ref, names, relation
from paper.report.controls import VERSUS_TEXT, Versus, _stat

DIMS = ("activations", "dims_for_variance")
PRIVILEGED = MLP_STABILITY  # the hook whose coordinates are the model's neurons
CONTROL = "circles control"

Planes = Literal["empty", "yes", "no", "undetermined"]
PLANES_TEXT: dict[Planes, str] = {
    "empty": "planes: empty, no live atom of any seed lies in one plane",
    "yes": "planes covered and agreed on (both above their baselines)",
    "no": "planes **not** both covered and agreed on beyond their baselines",
    "undetermined": "planes undetermined (no CI)",
}
Pinned = Literal["yes", "shared_only", "pwmcc_only", "no", "undetermined"]
"""Live PWMCC and the live shared fraction against the shift null: both above, one above
(the other within or below), neither, or a comparison without a CI."""
PINNED_TEXT: dict[Pinned, str] = {
    "yes": "atoms pinned beyond the symmetry",
    "shared_only": "more atoms shared one-to-one than under the null, but the dictionary as a "
    "whole (live PWMCC) **not** pinned beyond the symmetry",
    "pwmcc_only": "the dictionary as a whole (live PWMCC) pinned beyond the symmetry, but "
    "**no** more atoms shared one-to-one than under the null",
    "no": "atoms **not** pinned beyond the symmetry",
    "undetermined": "whether atoms are pinned beyond the symmetry is undetermined (no CI)",
}
PARTITION_TEXT: dict[Versus, str] = {
    "above": "the seeds partition the inputs more alike than random atoms do",
    "below": "the seeds partition the inputs **less** alike than random atoms do",
    "within": "the seeds partition the inputs no more alike than random atoms do",
    "no_ci": "no CI to compare the partitions",
}
Neurons = Literal["shared", "none_aligned", "not_computed"]


@dataclass(frozen=True)
class HookConfig:
    """One configuration at one hook: what is conserved when atoms are not."""

    row: planes.Row
    planes: Planes
    neurons: Neurons | None  # None: not a hook with a privileged basis

    @property
    def partition(self) -> tuple[sc.Stat | None, sc.Stat | None, Versus]:
        return self.row.pairs[4]

    @property
    def pinned(self) -> Pinned:
        pw, shared = self.row.pairs[0][2], self.row.pairs[1][2]
        if pw == "above" and shared == "above":
            return "yes"
        if "no_ci" in (pw, shared):
            return "undetermined"
        if pw == "above":
            return "pwmcc_only"
        return "shared_only" if shared == "above" else "no"


@dataclass(frozen=True)
class Hook:
    label: str
    file: str
    configs: tuple[HookConfig, ...]

    @property
    def empty(self) -> bool:
        """No configuration has a live atom in one plane."""
        return all(g.planes == "empty" for g in self.configs)


@dataclass(frozen=True)
class Subspace:
    rank: str  # key of subspace.overlap reported
    overlap: sc.Stat
    data_sample: sc.Stat | None  # data-sample reference at that rank, if written
    data_sample_relation: Relation | None
    random_expectation: bool  # the random expectation at that rank is written


@dataclass(frozen=True)
class Config:
    name: str
    path: JsonPath
    seed_distance: sc.Stat  # Gram spectra between seeds (total variation)
    to_data_sample: sc.Stat  # their distance to the data-sample reference
    to_isotropic: sc.Stat  # ... to the isotropic reference
    closer_between_seeds: bool  # CI high below both references' distances
    group_overlap: sc.Stat
    atom_match: sc.Stat
    groups_conserved: bool  # group overlap above atom match
    data_sample_groups: sc.Stat | None  # group overlap of the data-sample reference
    data_sample_relation: Relation | None  # trained group overlap against it
    subspace: Subspace | None

    @property
    def beyond_data_sample(self) -> bool:
        return self.data_sample_relation == "above"


@dataclass(frozen=True)
class Facts:
    configs: tuple[Config, ...]  # metrics/geometry.json (secondary)
    hooks: tuple[Hook, ...] = ()  # the transformer hooks, then the circles control
    effective_rank: bool = False  # metrics/geometry.json has the activations' summary

    def _at(self, pred) -> list[str]:
        return [
            f"{h.label} ({names(g.row.name for g in h.configs if pred(g))})"
            for h in self.hooks
            if h.label != CONTROL and any(pred(g) for g in h.configs)
        ]

    def pinned(self, verdict: Pinned) -> list[str]:
        """Hooks (with their configurations) whose atoms get ``verdict`` (:data:`Pinned`)."""
        return self._at(lambda g: g.pinned == verdict)

    @property
    def control_beats_null(self) -> list[str]:
        """Circles-control configurations that beat the shift null by either measure."""
        return [
            g.row.name
            for h in self.hooks
            if h.label == CONTROL
            for g in h.configs
            if g.pinned in ("yes", "shared_only", "pwmcc_only")
        ]

    @property
    def control_partitions(self) -> Versus | None:
        """The circles control's partition verdict when every configuration shares it."""
        vs = [g.partition[2] for h in self.hooks if h.label == CONTROL for g in h.configs]
        return vs[0] if vs and all(v == vs[0] for v in vs) else None

    @property
    def partitions_above(self) -> list[str]:
        return self._at(lambda g: g.partition[2] == "above")

    @property
    def partitions_below(self) -> list[str]:
        return self._at(lambda g: g.partition[2] == "below")

    @property
    def groups_over_atoms(self) -> list[str]:
        return [g.name for g in self.configs if g.groups_conserved]

    @property
    def atoms_match(self) -> list[str]:
        return [g.name for g in self.configs if not g.groups_conserved]

    @property
    def explained(self) -> list[str]:
        """Group overlap no higher than the data-sample reference's: the low rank explains it."""
        return [
            g.name
            for g in self.configs
            if g.data_sample_groups is not None and not g.beyond_data_sample
        ]

    @property
    def beyond(self) -> list[str]:
        return [g.name for g in self.configs if g.beyond_data_sample]


def overlap_rank(m: Metrics, path: JsonPath) -> str | None:
    """The smallest rank of subspace.overlap holding 99% of the variance (else the smallest)."""
    ov = m.get(GEOMETRY, (*path, "subspace", "overlap"))
    if not ov:
        return None
    need = sc.optional(m.get, GEOMETRY, (*DIMS, "0.99"))
    ranks = sorted(ov, key=float)
    if need is not None:
        bigger = [r for r in ranks if float(r) >= need]
        if bigger:
            return bigger[0]
    return ranks[0]


def decide_subspace(m: Metrics, path: JsonPath, entry) -> Subspace | None:
    r = overlap_rank(m, path)
    if r is None:
        return None
    ov = sc.stat_at(m, GEOMETRY, (*path, "subspace", "overlap", r))
    sub = entry["subspace"]  # per rank "<r>"
    ref = None
    if r in sub["data_sample_overlap"]:
        ref = sc.Stat(GEOMETRY, (*path, "subspace", "data_sample_overlap", r))
    return Subspace(
        rank=r,
        overlap=ov,
        data_sample=ref,
        data_sample_relation=None if ref is None else relation(m, ov, ref),
        random_expectation=r in sub["random_expectation"],
    )


def decide_hook(m: Metrics, file: str, label: str) -> Hook | None:
    hook = planes.decide_hook(m, file, label)
    if hook is None:
        return None
    out = []
    for r in hook.rows:
        entry = dict(sc.configs(m, file))[r.name]
        assigned = None if r.assigned is None else r.assigned.values(m)[0]
        neurons: Neurons | None = None
        if file == PRIVILEGED:
            found = _stat(m, file, (*entry, "neurons", "neurons_found"))
            neurons = (
                "shared"
                if r.shared_neurons is not None and r.shared_neurons.values(m)[0] is not None
                else "none_aligned"
                if found is not None and found.values(m)[0] == 0
                else "not_computed"
            )
        out.append(
            HookConfig(r, "empty" if assigned == 0 else r.planes_agreed, neurons),
        )
    return Hook(label, file, tuple(out))


def decide(m: Metrics) -> Facts:
    hooks = tuple(
        h
        for f, lab in (*planes.HOOKS, (CIRCLES, CONTROL))
        if (h := decide_hook(m, f, lab)) is not None
    )
    geometry = decide_geometry(m) if m.exists(GEOMETRY) else ()
    if not (hooks or geometry):
        raise Skip(f"{GEOMETRY}: no configuration with geometry metrics, and no plane metrics")
    rank = m.exists(GEOMETRY) and sc.has(m.json(GEOMETRY), ("activations", "effective_rank"))
    return Facts(geometry, hooks, rank)


def decide_geometry(m: Metrics) -> tuple[Config, ...]:
    out = []
    for name, path in sc.optional(sc.configs, m, GEOMETRY) or ():
        entry = m.get(GEOMETRY, path)
        sd = sc.stat_at(m, GEOMETRY, (*path, "gram", "seed_distance"))
        refs_d = [
            m.get(GEOMETRY, (*path, "gram", k, "mean"))
            for k in ("distance_to_data_sample", "distance_to_isotropic")
        ]
        less = all(v is not None and (sd.values(m)[2] or 1e9) < v for v in refs_d)
        go = sc.stat_at(m, GEOMETRY, (*path, "groups", "all", "group_overlap"))
        am = sc.stat_at(m, GEOMETRY, (*path, "groups", "all", "atom_match"))
        ref = None
        if entry["groups"]["data_sample"]["group_overlap"] is not None:
            ref = sc.Stat(GEOMETRY, (*path, "groups", "data_sample", "group_overlap"))
        out.append(
            Config(
                name=name,
                path=path,
                seed_distance=sd,
                to_data_sample=sc.stat_at(m, GEOMETRY, (*path, "gram", "distance_to_data_sample")),
                to_isotropic=sc.stat_at(m, GEOMETRY, (*path, "gram", "distance_to_isotropic")),
                closer_between_seeds=less,
                group_overlap=go,
                atom_match=am,
                groups_conserved=(go.values(m)[0] or 0) > (am.values(m)[0] or 0),
                data_sample_groups=ref,
                data_sample_relation=None if ref is None else relation(m, go, ref),
                subspace=decide_subspace(m, path, entry),
            )
        )
    return tuple(out)


def render_config(c: Citer, g: Config) -> str:
    path = g.path
    gram = (*path, "gram")
    bits = [
        f"Gram spectra differ between seeds by {ci_text(c, g.seed_distance)} (total variation), "
        f"{'less' if g.closer_between_seeds else '**not** clearly less'} than from the "
        f"data-sample reference "
        f"({c.num(GEOMETRY, g.to_data_sample.mean, '.3f')}) "
        f"or the isotropic one "
        f"({c.num(GEOMETRY, g.to_isotropic.mean, '.3f')}); "
        f"two data-sample dictionaries differ by "
        f"{c.num(GEOMETRY, (*gram, 'data_sample_pair_distance'), '.3f')}"
    ]
    verdict = (
        "groups conserved more than atoms"
        if g.groups_conserved
        else "groups **not** conserved more than atoms"
    )
    bit = (
        f"key-frequency group subspaces overlap {ci_text(c, g.group_overlap)} between seeds "
        f"while single atoms match at {ci_text(c, g.atom_match)} ({verdict})"
    )
    if g.data_sample_groups is not None:
        bit += (
            f"; the data-sample reference gives group overlap "
            f"{c.num(GEOMETRY, g.data_sample_groups.mean, '.3f')} "
            f"(trained is {RELATION_TEXT[g.data_sample_relation]} it)"
        )
    if not g.groups_conserved:
        bit += (
            f"; but within one seed its live atoms are near-duplicates (mean best "
            f"|cos| to another atom of the same seed "
            f"{c.num(GEOMETRY, (*gram, 'summary', 'self_max_cos', 'mean'), '.3f')})"
        )
    bits.append(bit)
    s = g.subspace
    if s is not None:
        refs = []  # cited before the rank and the overlap
        if s.data_sample is not None:
            refs.append(
                f"data sample {c.num(GEOMETRY, s.data_sample.mean, '.3f')}, trained "
                f"{RELATION_TEXT[s.data_sample_relation]} it"
            )
        if s.random_expectation:
            refs.append(
                "random expectation "
                + c.num(GEOMETRY, (*path, "subspace", "random_expectation", s.rank), ".3f")
            )
        rank = c.quote(s.rank, "rank key of subspace.overlap in metrics/geometry.json")
        bits.append(
            f"the rank-{rank} decoder subspaces overlap {ci_text(c, s.overlap)} ({'; '.join(refs)})"
        )
    return f"`{g.name}`: " + "; ".join(bits)


def _pair(c: Citer, t: sc.Stat | None, b: sc.Stat | None) -> tuple[str, str]:
    def one(s: sc.Stat | None) -> str:
        return "n/a" if s is None or s.values(c.m)[0] is None else ci_text(c, s)

    return one(t), one(b)


def render_hook_config(c: Citer, g: HookConfig) -> str:
    r = g.row
    (lt, lb, lv), (st, sb, sv) = r.pairs[0], r.pairs[1]
    live, null = _pair(c, lt, lb)
    shared, shared_null = _pair(c, st, sb)
    pt, pb, pv = g.partition
    ami, ami_base = _pair(c, pt, pb)
    text = (
        f"`{r.name}`: live PWMCC {live} against the shift null {null} ({VERSUS_TEXT[lv]}), "
        f"live shared fraction {shared} against {shared_null} ({VERSUS_TEXT[sv]}): "
        f"{PINNED_TEXT[g.pinned]}; partition AMI {ami} against {ami_base} for random "
        f"atoms in the data subspace ({VERSUS_TEXT[pv]}): {PARTITION_TEXT[pv]}; "
    )
    if g.planes in ("yes", "no"):
        (ct, cb, _), (at, ab, _) = r.pairs[2], r.pairs[3]
        cov, cov_base = _pair(c, ct, cb)
        agr, agr_base = _pair(c, at, ab)
        text += (
            f"plane coverage {cov} (baseline {cov_base}), agreement {agr} (baseline {agr_base}): "
        )
    text += PLANES_TEXT[g.planes]
    if g.neurons == "shared":
        text += f"; neurons shared by two seeds (Jaccard) {ci_text(c, r.shared_neurons)}"
    elif g.neurons == "none_aligned":
        text += "; no neurons shared: no live atom of any seed lies on one neuron"
    elif g.neurons == "not_computed":
        text += "; neurons shared by two seeds: not computed"
    return text


def render_planes(c: Citer, f: Facts) -> str:
    text = (
        "What is conserved when single atoms are not (SCIENCE.md section 9). Atoms against "
        "the shift null (the same live atoms, each seed's turned by a random shift of the "
        "inputs, an exact symmetry of the data: what the seeds would score if each found one "
        "solution shifted at random); the partition of the inputs by most active latent "
        "(adjusted mutual information between seeds) against count-matched random atoms in "
        "the data subspace; the planes (coverage and agreement, measured on the live atoms "
        "lying in one plane).\n\n"
    )
    for h in f.hooks:
        text += (
            f"**{h.label}**: " + "; ".join(render_hook_config(c, g) for g in h.configs) + ".\n\n"
        )
    summary = [
        f"atoms pinned beyond the symmetry at {', '.join(f.pinned('yes'))}"
        if f.pinned("yes")
        else "at no hook are the atoms pinned beyond the symmetry by both measures"
    ]
    if f.pinned("shared_only"):
        summary.append(
            "more atoms shared one-to-one than under the null, but not the dictionary as a "
            f"whole, at {', '.join(f.pinned('shared_only'))}"
        )
    if f.pinned("pwmcc_only"):
        summary.append(
            "the dictionary as a whole pinned, but no more atoms shared one-to-one, at "
            + ", ".join(f.pinned("pwmcc_only"))
        )
    if f.pinned("no"):
        summary.append(
            "atoms agreeing no more than shifted copies of one solution would at "
            + ", ".join(f.pinned("no"))
        )
    if f.control_beats_null:
        summary.append(
            f"but the circles control beats the shift null too ({names(f.control_beats_null)}), "
            "where nothing is identifiable: beating it does not by itself show identifiable "
            "atoms"
        )
    if f.partitions_above:
        summary.append(
            f"partitions more alike than random atoms give at {', '.join(f.partitions_above)}"
        )
    if f.partitions_below:
        summary.append(
            "partitions **less** alike than random atoms give at " + ", ".join(f.partitions_below)
        )
    if f.control_partitions is not None:
        summary.append(
            "in the circles control, with nothing to identify, partition AMI is "
            f"{RELATION_TEXT[f.control_partitions]} random atoms' in every configuration"
        )
    empty = [h.label for h in f.hooks if h.empty and h.label != CONTROL]
    if empty:
        summary.append(
            f"plane coverage and agreement are empty at {', '.join(empty)}: no live atom lies "
            "in one plane, so they conserve nothing there"
        )
    return text + "In short: " + "; ".join(summary) + ". "


def render_rank(c: Citer) -> str:
    return (
        f"The activations' effective rank is "
        f"{c.num(GEOMETRY, ('activations', 'effective_rank'), '.1f')} of "
        f"{c.num(GEOMETRY, ('activations', 'd_in'), 'd')} dimensions; "
        f"{c.num(GEOMETRY, (*DIMS, '0.9'), 'd')} hold "
        f"{c.quote('90%', 'definition of dims_for_variance')} of the variance and "
        f"{c.num(GEOMETRY, (*DIMS, '0.99'), 'd')} hold "
        f"{c.quote('99%', 'definition of dims_for_variance')}. "
    )


def render_geometry(c: Citer, f: Facts, build) -> str:
    text = (
        "*All atoms (secondary: SCIENCE.md section 8 explains why these measure the data's "
        "shape):* Each property below is set beside a reference with no learning (two "
        "dictionaries of randomly drawn activation rows, 'data sample'). "
    )
    parts = [render_config(c, g) for g in f.configs]
    summary = []
    if f.groups_over_atoms:
        summary.append(
            f"for {names(f.groups_over_atoms)} the key-frequency group subspaces are "
            "conserved across seeds while single atoms are not"
        )
    if f.atoms_match:
        summary.append(
            f"for {names(f.atoms_match)} single live atoms match as well as the groups do"
        )
    if f.explained:
        summary.append(
            f"the group overlap of {names(f.explained)} is no higher than that of the "
            "data-sample reference, i.e. explained by the activations' low rank"
        )
    if f.beyond:
        summary.append(f"the group overlap of {names(f.beyond)} exceeds the data-sample reference")
    return (
        text
        + ". ".join(parts)
        + ". In short: "
        + "; ".join(summary)
        + f" ({fig_ref(build, 'fig8a_geometry')})."
    )


def render(c: Citer, f: Facts, build) -> str:
    text = render_planes(c, f).rstrip() + "\n\n" if f.hooks else ""
    if f.effective_rank:
        text += render_rank(c)
    text = text.rstrip()
    if f.configs:
        text += ("\n\n" if text else "") + render_geometry(c, f, build)
    return text + "\n"


def section(c: Citer, build) -> str:
    return render(c, decide(c.m), build)
