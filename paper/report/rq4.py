"""RQ4 "Geometry conserved across seeds; effective rank" (``metrics/geometry.json``).

Decided here, per configuration: whether the Gram spectra differ less between seeds
than from the two references, whether key-frequency groups are conserved more than
single atoms, where the group overlap and the decoder-subspace overlap lie against the
data-sample reference, and which subspace rank to report (the smallest holding 99% of
the activations' variance).
"""

from __future__ import annotations

from dataclasses import dataclass

from paper import schema as sc
from paper.cite import Citer
from paper.errors import Skip
from paper.figures import GEOMETRY
from paper.metrics import JsonPath, Metrics
from paper.report.common import RELATION_TEXT, Relation, ci_text, fig_ref, names, relation

DIMS = ("activations", "dims_for_variance")


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
    configs: tuple[Config, ...]

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


def decide(m: Metrics) -> Facts:
    out = []
    for name, path in sc.configs(m, GEOMETRY):
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
    if not out:
        raise Skip(f"{GEOMETRY}: no configuration with geometry metrics")
    return Facts(tuple(out))


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


def render(c: Citer, f: Facts, build) -> str:
    text = (
        f"The activations' effective rank is "
        f"{c.num(GEOMETRY, ('activations', 'effective_rank'), '.1f')} of "
        f"{c.num(GEOMETRY, ('activations', 'd_in'), 'd')} dimensions; "
        f"{c.num(GEOMETRY, (*DIMS, '0.9'), 'd')} hold "
        f"{c.quote('90%', 'definition of dims_for_variance')} of the variance and "
        f"{c.num(GEOMETRY, (*DIMS, '0.99'), 'd')} hold "
        f"{c.quote('99%', 'definition of dims_for_variance')}. "
        "Each property below is set beside a reference with no learning (two "
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


def section(c: Citer, build) -> str:
    return render(c, decide(c.m), build)
