"""Section "Planes": the modular SAEs measured for what the data is, at each hook.

At ``hook_resid_post`` the modular model's activations are a few round circles, one per
key frequency: rotation within a plane maps the data onto itself, so single atoms are
not identifiable there, planes are (SCIENCE.md sections 8-9). At ``mlp.hook_post`` the
neurons give a privileged basis. This section reads ``metrics/stability/<domain>.json``
of every transformer hook the pipeline trains SAEs at (``modular``: resid_post,
``modular_mlp``: mlp.hook_post) and, as the reference with nothing but planes to find,
the circles control. The atom measures (live PWMCC, live shared fraction) stand beside
the rotation null (each seed's live atoms turned by a random shift of the inputs, which
turns every plane at once and maps the data onto themselves: what the seeds would score
if each found the same solution shifted at random); the plane
measures beside count-matched random atoms in the data's principal subspace.

Decided here, from the values the text cites only (each comparison by
:func:`paper.report.controls.versus`: a CI clear of the baseline's CI):

* per configuration, whether its atoms are pinned beyond the symmetry: live PWMCC and
  live shared fraction both above the rotation null (``yes``), either not above it
  (``no``), or a comparison without a CI (``undetermined``);
* per configuration, whether its planes are recovered and agreed on: plane coverage
  and plane agreement both above the subspace baseline, with the same three outcomes;
* per hook, which configurations are ``yes`` for each.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from paper import schema as sc
from paper.cite import Citer
from paper.errors import Skip
from paper.figures import CIRCLES, MLP_STABILITY, STABILITY
from paper.metrics import JsonPath, Metrics
from paper.report.controls import Versus, _stat, versus

HOOKS: tuple[tuple[str, str], ...] = (
    (STABILITY, "`blocks.0.hook_resid_post`"),
    (MLP_STABILITY, "`blocks.0.mlp.hook_post`"),
)
PAIRS: tuple[tuple[str, str, str], ...] = (  # (column, trained key path, baseline key path)
    ("live PWMCC (rotation null)", "live/live_pwmcc", "planes/rotation_live_pwmcc"),
    (
        "live shared fraction (rotation null)",
        "live/live_shared_fraction",
        "planes/rotation_live_shared_fraction",
    ),
    ("plane coverage", "planes/coverage", "planes/subspace_coverage"),
    ("plane agreement", "planes/plane_agreement", "planes/subspace_plane_agreement"),
    ("partition AMI", "planes/partition_ami", "planes/subspace_partition_ami"),
)


def _path(entry: JsonPath, key: str) -> JsonPath:
    return (*entry, *key.split("/"))


Outcome = Literal["yes", "no", "undetermined"]


def _both(a: Versus, b: Versus) -> Outcome:
    """``yes`` when both comparisons are above, ``no`` when one is clearly not (within or
    below its baseline), else ``undetermined`` (a comparison without a CI)."""
    if a == "above" and b == "above":
        return "yes"
    if a in ("within", "below") or b in ("within", "below"):
        return "no"
    return "undetermined"


@dataclass(frozen=True)
class Row:
    name: str
    pairs: tuple[tuple[sc.Stat | None, sc.Stat | None, Versus], ...]  # per PAIRS
    assigned: sc.Stat | None  # live atoms inside one plane
    arcs: sc.Stat | None  # live latents firing on one arc of one plane
    n_live: sc.Stat | None
    distinct: sc.Stat | None
    neurons: tuple[sc.Stat | None, sc.Stat | None, Versus] = (None, None, "no_ci")
    shared_neurons: sc.Stat | None = None

    @property
    def atoms_pinned(self) -> Outcome:
        return _both(self.pairs[0][2], self.pairs[1][2])

    @property
    def on_neurons(self) -> Outcome:
        v = self.neurons[2]
        return "yes" if v == "above" else "no" if v in ("within", "below") else "undetermined"

    @property
    def planes_agreed(self) -> Outcome:
        return _both(self.pairs[2][2], self.pairs[3][2])


@dataclass(frozen=True)
class Hook:
    file: str
    label: str
    min_concentration: JsonPath  # the arc-latent threshold (first configuration)
    neuron_threshold: JsonPath | None  # the neuron-alignment |cos| (None: not written)
    plane_list: JsonPath
    rows: tuple[Row, ...]


@dataclass(frozen=True)
class Facts:
    hooks: tuple[Hook, ...]
    circles: Hook | None


def decide_hook(m: Metrics, file: str, label: str) -> Hook | None:
    if not m.exists(file):
        return None
    rows = []
    first: JsonPath | None = None
    for name, entry in sc.configs(m, file):
        if _stat(m, file, _path(entry, "planes/coverage")) is None:
            continue
        first = first or entry
        pairs = []
        for _, trained, base in PAIRS:
            t, b = _stat(m, file, _path(entry, trained)), _stat(m, file, _path(entry, base))
            pairs.append((t, b, versus(m, t, b)))
        rows.append(
            Row(
                name=name,
                pairs=tuple(pairs),
                assigned=_stat(m, file, _path(entry, "planes/assigned_fraction")),
                arcs=_stat(m, file, _path(entry, "planes/arc_fraction")),
                n_live=_stat(m, file, _path(entry, "live/n_live")),
                distinct=_stat(m, file, _path(entry, "live/distinct_live")),
                neurons=(
                    (t := _stat(m, file, _path(entry, "neurons/aligned_fraction"))),
                    (b := _stat(m, file, _path(entry, "neurons/subspace_aligned_fraction"))),
                    versus(m, t, b),
                ),
                shared_neurons=_stat(m, file, _path(entry, "neurons/shared_neurons")),
            )
        )
    if first is None:
        return None
    return Hook(
        file,
        label,
        (*first, "planes", "min_concentration"),
        (*first, "neurons", "threshold") if sc.has(m.get(file, first), ("neurons",)) else None,
        (*first, "planes", "planes"),
        tuple(rows),
    )


def decide(m: Metrics) -> Facts:
    hooks = tuple(h for f, lab in HOOKS if (h := decide_hook(m, f, lab)) is not None)
    if not hooks:
        raise Skip(f"{STABILITY}: no plane metrics (stage stability@modular)")
    return Facts(hooks, decide_hook(m, CIRCLES, "circles control"))


# ----------------------------------------------------------------------------- wording


def _cell(c: Citer, s: sc.Stat | None) -> str:
    return "n/a" if s is None or s.values(c.m)[0] is None else c.num(s.file, s.mean, ".3f")


def _pair(c: Citer, t: sc.Stat | None, b: sc.Stat | None, v: Versus) -> str:
    mark = {"above": " ▲", "below": " ▼", "within": "", "no_ci": ""}[v]
    return f"{_cell(c, t)} ({_cell(c, b)}){mark}"


def _planes(c: Citer, h: Hook) -> str:
    planes = c.m.get(h.file, h.plane_list)
    parts = []
    for i, p in enumerate(planes):
        if p.get("frequency") is None:
            continue
        freq = c.num(h.file, (*h.plane_list, i, "frequency"), "d")
        share = c.num(h.file, (*h.plane_list, i, "share"), ".1%")
        parts.append(f"{p['variable']} at frequency {freq}: {share}")
    return ", ".join(parts) if parts else f"{len(planes)} planes"


def render_table(c: Citer, h: Hook) -> str:
    head = (
        "| config | "
        + " | ".join(col if "(" in col else f"{col} (baseline)" for col, _, _ in PAIRS)
        + " | atoms on one neuron (baseline) | neurons shared by two seeds | live atoms in a "
        "plane | arc latents | live / distinct |\n" + "| --- " * (len(PAIRS) + 6) + "|\n"
    )
    body = ""
    for r in h.rows:
        body += (
            f"| `{r.name}` | "
            + " | ".join(_pair(c, t, b, v) for t, b, v in r.pairs)
            + f" | {_pair(c, *r.neurons)} | {_cell(c, r.shared_neurons)}"
            + f" | {_cell(c, r.assigned)} | {_cell(c, r.arcs)} | "
            + (
                "n/a"
                if r.n_live is None or r.distinct is None
                else f"{c.num(r.n_live.file, r.n_live.mean, '.0f')} / "
                f"{c.num(r.distinct.file, r.distinct.mean, '.0f')}"
            )
            + " |\n"
        )
    return head + body


def render(c: Citer, f: Facts) -> str:
    text = (
        "Per hook, each configuration's measures beside their baselines (in parentheses; "
        "▲ / ▼: the CI is clear above / below the baseline's). Atom measures, live PWMCC "
        "and the live shared fraction, beside the rotation null: the same live atoms, each "
        "seed's turned by a random shift of the inputs (a, b) -> (a + t, b + s), which "
        "turns every plane at once and maps the data onto themselves: what the seeds would "
        "score if each found one solution shifted at random. Plane measures "
        "(SCIENCE.md section 9), beside count-matched random atoms in the data's principal "
        "subspace: plane coverage (how "
        "much of each plane the live atoms inside it span, principal angles), plane "
        "agreement (whether two seeds span the same part of each plane), partition AMI "
        "(adjusted mutual information of the seeds' partitions of the inputs by most "
        "active latent); arc latents: live latents that fire on one arc of one plane's "
        "circle (mean resultant length >= "
        + c.num(f.hooks[0].file, f.hooks[0].min_concentration, ".1f")
        + "), a test sparse latents can pass, unlike purity."
        + (
            ""
            if f.hooks[0].neuron_threshold is None
            else " Atoms on one neuron: live atoms with |cos| >= "
            + c.num(f.hooks[0].file, f.hooks[0].neuron_threshold, ".1f")
            + " to a single coordinate of the activation space (a neuron at mlp.hook_post), "
            "beside as many random atoms in the data subspace; neurons shared: the Jaccard "
            "index of two seeds' sets of such neurons, a measure tied to the basis the model "
            "computes in, which no rotation of the data can produce."
        )
        + "\n\n"
    )
    for h in (*f.hooks, *((f.circles,) if f.circles is not None else ())):
        text += f"**{h.label}** (planes: {_planes(c, h)}):\n\n" + render_table(c, h) + "\n"
    for h in f.hooks:
        text += (
            f"At {h.label}: "
            + "; ".join(
                f"`{r.name}` atoms pinned beyond the symmetry: **{r.atoms_pinned}**, planes "
                f"recovered and agreed on: **{r.planes_agreed}**, atoms on single neurons "
                f"more often than random atoms: **{r.on_neurons}**"
                for r in h.rows
            )
            + ". "
        )
    every = [*f.hooks, *((f.circles,) if f.circles is not None else ())]
    assigned = [r.assigned.values(c.m)[0] for h in every for r in h.rows if r.assigned]
    arcs = [r.arcs.values(c.m)[0] for h in every for r in h.rows if r.arcs]
    if assigned and all(v is not None and v < 0.5 for v in assigned):
        text += (
            "\n\nAt every hook and in the circles control most live atoms lie in no single "
            "plane (the column of live atoms in a plane): the SAEs do not tile the circles one "
            "plane at a time, their atoms span several planes at once"
            + (
                ", while their latents fire on arcs of the circles (arc latents above one half "
                "everywhere)"
                if arcs and all(v is not None and v > 0.5 for v in arcs)
                else ""
            )
            + ". Plane coverage and agreement are therefore empty measures here, and the "
            "shift null is the comparison that carries the answer. "
        )
    no_neurons = [h.label for h in f.hooks if h.rows and all(r.on_neurons == "no" for r in h.rows)]
    if no_neurons:
        text += (
            f"At {', '.join(no_neurons)} live atoms sit on single neurons no more often than "
            "random atoms in the data subspace. "
        )
    pinned = [
        f"{h.label} (" + ", ".join(f"`{r.name}`" for r in h.rows if r.atoms_pinned == "yes") + ")"
        for h in f.hooks
        if any(r.atoms_pinned == "yes" for r in h.rows)
    ]
    open_ = [
        h.label
        for h in f.hooks
        if not any(r.atoms_pinned == "yes" for r in h.rows)
        and any(r.atoms_pinned == "undetermined" for r in h.rows)
    ]
    if pinned:
        text += (
            f"\n\nSeeds agree on the atoms themselves, beyond what the symmetry allows, at: "
            f"{', '.join(pinned)}."
        )
    elif open_:
        text += (
            "\n\nWhether seeds agree on the atoms beyond the symmetry is undetermined at "
            f"{', '.join(open_)} (a comparison without a CI)."
        )
    else:
        text += (
            "\n\nAt no hook do the seeds agree on the atoms more than the rotation null: "
            "their atom-level agreement is what the planes alone give."
        )
    return text.rstrip() + "\n"


def section(c: Citer, build) -> str:
    return render(c, decide(c.m))
