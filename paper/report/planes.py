"""Section "Planes": the modular SAEs measured for what the data is, at each hook.

At ``hook_resid_post`` the modular model's activations are a few round circles, one per
key frequency: rotation within a plane maps the data onto itself, so single atoms are
not identifiable there, planes are (SCIENCE.md sections 8-9). At ``mlp.hook_post`` the
neurons give a privileged basis. This section reads ``metrics/stability/<domain>.json``
of every transformer hook the pipeline trains SAEs at (``modular``: resid_post,
``modular_mlp``: mlp.hook_post) and, as the reference with nothing but planes to find,
the circles control. The atom measures (live PWMCC, live shared fraction) stand beside
the rotation null (each seed's live atoms turned within every plane by random angles:
what they would score if the seeds agreed only up to the data's symmetry); the plane
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
from paper.report.controls import Versus, versus

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


def _stat(m: Metrics, file: str, path: JsonPath) -> sc.Stat | None:
    try:
        node = m.get(file, path)
    except Skip:
        return None
    return None if node is None else sc.stat_at(m, file, path)


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

    @property
    def atoms_pinned(self) -> Outcome:
        return _both(self.pairs[0][2], self.pairs[1][2])

    @property
    def planes_agreed(self) -> Outcome:
        return _both(self.pairs[2][2], self.pairs[3][2])


@dataclass(frozen=True)
class Hook:
    file: str
    label: str
    min_concentration: JsonPath  # the arc-latent threshold (first configuration)
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
            )
        )
    if first is None:
        return None
    return Hook(
        file,
        label,
        (*first, "planes", "min_concentration"),
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
        + " | ".join(f"{col} (baseline)" for col, _, _ in PAIRS)
        + " | live atoms in a plane | arc latents | live / distinct |\n"
        + "| --- " * (len(PAIRS) + 4)
        + "|\n"
    )
    body = ""
    for r in h.rows:
        body += (
            f"| `{r.name}` | "
            + " | ".join(_pair(c, t, b, v) for t, b, v in r.pairs)
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
        "seed's turned within every plane by its own random angles, which is what the "
        "seeds would score if they agreed only up to the data's symmetry. Plane measures "
        "(SCIENCE.md section 9), beside count-matched random atoms in the data's principal "
        "subspace: plane coverage (how "
        "much of each plane the live atoms inside it span, principal angles), plane "
        "agreement (whether two seeds span the same part of each plane), partition AMI "
        "(adjusted mutual information of the seeds' partitions of the inputs by most "
        "active latent); arc latents: live latents that fire on one arc of one plane's "
        "circle (mean resultant length >= "
        + c.num(f.hooks[0].file, f.hooks[0].min_concentration, ".1f")
        + "), a test sparse latents can pass, unlike purity.\n\n"
    )
    for h in (*f.hooks, *((f.circles,) if f.circles is not None else ())):
        text += f"**{h.label}** (planes: {_planes(c, h)}):\n\n" + render_table(c, h) + "\n"
    for h in f.hooks:
        text += (
            f"At {h.label}: "
            + "; ".join(
                f"`{r.name}` atoms pinned beyond the symmetry: **{r.atoms_pinned}**, planes "
                f"recovered and agreed on: **{r.planes_agreed}**"
                for r in h.rows
            )
            + ". "
        )
    pinned = [h.label for h in f.hooks if any(r.atoms_pinned == "yes" for r in h.rows)]
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
