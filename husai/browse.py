"""The latent browser: one self-contained HTML page per SAE configuration (``husai browse``).

For a set of seeds of one configuration, every *live* latent of every seed (non-zero on
at least one row of the domain's data, :func:`husai.groundtruth.sae_live_masks`' rule)
gets a row: its firing rate and largest activation, a map (below), its best matches in
every other seed with their ``|cos|`` and whether the pair is shared, and, where the data
have planes, the plane and phase it is assigned. Dead latents are listed and counted per
seed, never drawn or matched: they are not features (SCIENCE.md section 8).

* :func:`browse_data` computes everything (pure, JSON-ready).
* :func:`render_html` writes it into one offline HTML page: vanilla JavaScript, inline
  CSS, the data embedded as JSON and the maps as zlib streams in base64 (decoded by the
  browser's ``DecompressionStream``), drawn on canvases; no external reference at all.
  The table sorts by any column (click its header), filters by seed, plane, firing
  rate, best match and shared count, and groups latents by plane; the address's fragment
  sets the first view (``page.html#sort=fr&dir=desc&group=seed``).

Maps, by the kind of domain (:data:`KINDS`):

* ``grid`` (a transformer hook on modular addition, rows ``a * p + b``): the latent's
  activation over the ``p x p`` grid of inputs (a down, b across).
* ``circle`` (truth ``c``, the circles control): the mean activation at each point c.
* ``features`` (truth ``features``, planted directions): the ``|cos|`` of the latent's
  decoder atom with every planted feature (:func:`husai.stability.cosine_matrix`), its
  best-matching feature (:func:`husai.stability.best_matches`) marked; its top samples
  list each one's projection on that feature.
* ``rows`` (anything else): no map, the top samples only.

Each map is quantised, activations to :data:`ACTIVATION_LEVELS` levels of the latent's
largest one (its ``max``; a non-zero activation never to 0), cosines to 255 levels of
[0, 1].

Matches (seed pair s, t, over both seeds' live atoms, ``|cos|`` as everywhere in the
project, by :func:`husai.stability.pair_metrics`): ``best`` is latent j of seed s's best
decoder match in seed t (ties: the lowest index); ``partner`` its partner in the
one-to-one Hungarian decoder matching (-1 when unmatched: more live latents than t has);
``shared`` the Paulo & Belrose rule (the encoder and decoder matchings agree, both
cosines ``>= threshold``), as :func:`husai.groundtruth.live_stability` counts it.

Planes (``truth`` with ``planes`` and ``angles``, :mod:`husai.planes`): ``arc`` is the
plane of the latent's activation arc (:func:`husai.planes.arc_assignment`, mean resultant
length ``R >= ARC_MIN_CONCENTRATION``; -1 otherwise) and ``arc_phase`` the direction of
that resultant, ``atan2(sum_i f_i sin theta_i, sum_i f_i cos theta_i)`` in degrees in
``[0, 360)``, the centre of the arc; ``atom`` is the plane holding at least
``PLANE_MIN_SHARE`` of the decoder atom's norm^2 (SCIENCE.md section 9, -1 otherwise),
``share`` the atom's largest plane share and ``atom_phase`` its phase in the assigned
plane. Groups (the page's default) are the arc planes.

Determinism: no clock, no randomness; floats are rounded to :data:`DIGITS` significant
digits (:func:`husai.serialize.clean_numbers`), the JSON keeps insertion order, and
zlib's output is fixed for a given input, level and zlib build: the page is
byte-identical on rerun with the same zlib (a zlib-ng build may compress differently).
"""

from __future__ import annotations

import base64
import html
import json
import zlib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from husai.errors import HusaiError

KINDS = ("grid", "circle", "features", "rows")
DIGITS = 4
N_TOP = 5
ACTIVATION_LEVELS = 15
"""Activation maps are drawn in 16 levels (0 = silent): smaller files than 256 levels,
and no difference a colour map can show at these sizes."""
ZLIB_LEVEL = 9
VARIABLE_LABELS = {"a": "a", "b": "b", "sum": "a+b", "diff": "a-b"}


# ----------------------------------------------------------------------------- per latent


def firing_rates(codes: torch.Tensor) -> torch.Tensor:
    """Share of rows on which each latent is non-zero: ``codes [N, n]`` -> ``[n]`` float64."""
    c = torch.as_tensor(codes)
    if c.ndim != 2 or c.shape[0] == 0:
        raise HusaiError(f"codes must be [N >= 1, n_latents], got shape {tuple(c.shape)}")
    return (c != 0).sum(dim=0).to(torch.float64) / c.shape[0]


def quantise(values: torch.Tensor, scale: float, levels: int = 255) -> bytes:
    """``values`` (non-negative) as bytes ``round(levels * v / scale)`` clipped to
    ``[0, levels]``, a positive value never below 1 (where a latent fires stays visible);
    all zeros when ``scale`` is 0."""
    if not 1 <= levels <= 255:
        raise HusaiError(f"levels must be in 1..255, got {levels}")
    v = torch.as_tensor(values).detach().to(torch.float64).flatten().clamp_min(0.0)
    if scale <= 0:
        return bytes(v.numel())
    q = torch.round(v * (levels / scale)).clamp(0, levels)
    q = torch.where(v > 0, q.clamp_min(1.0), q)
    return q.to(torch.uint8).numpy().tobytes()


def top_rows(values: torch.Tensor, n: int = N_TOP) -> list[int]:
    """The rows of the ``n`` largest non-zero ``values`` [N], largest first (ties: the
    lowest row)."""
    v = torch.as_tensor(values).detach().to(torch.float64).cpu().numpy()
    order = np.argsort(-v, kind="stable")[:n]
    return [int(i) for i in order if v[i] > 0]


def arc_phases(acts: torch.Tensor, angles: torch.Tensor) -> torch.Tensor:
    """Direction in degrees in ``[0, 360)`` ``[n, P]`` of each latent's activation-weighted
    resultant on each plane: ``atan2(sum_i f_i sin theta_iq, sum_i f_i cos theta_iq)`` for
    ``acts [N, n]`` (f) and ``angles [N, P]`` (theta, radians): the centre of an arc latent's
    arc (the phase that goes with :func:`husai.planes.arc_concentration`)."""
    w = torch.as_tensor(acts).detach().to(torch.float64)
    th = torch.as_tensor(angles).detach().to(torch.float64)
    if w.ndim != 2 or th.ndim != 2 or th.shape[0] != w.shape[0]:
        raise HusaiError(
            f"acts [N, n] and angles [N, P] must share N, got {tuple(w.shape)} and "
            f"{tuple(th.shape)}"
        )
    deg = torch.rad2deg(torch.atan2(w.T @ torch.sin(th), w.T @ torch.cos(th)))
    deg = torch.remainder(deg, 360.0)
    return torch.where(deg >= 360.0, torch.zeros_like(deg), deg)


def domain_kind(truth: Mapping[str, torch.Tensor], grid_p: int | None) -> str:
    """The map a domain gets (module docstring): ``grid`` with ``grid_p``, else
    ``features`` or ``circle`` by its ground truth, else ``rows``."""
    if grid_p is not None:
        return "grid"
    if "features" in truth:
        return "features"
    if "c" in truth:
        return "circle"
    return "rows"


def _plane_rows(truth: Mapping[str, torch.Tensor]) -> list[dict[str, Any]]:
    from husai.planes import VARIABLES

    n = int(truth["planes"].shape[0])

    def get(key: str) -> list[Any]:
        return torch.as_tensor(truth[key]).tolist() if key in truth else [None] * n

    rows = []
    for f, v, s in zip(
        get("plane_frequency"), get("plane_variable"), get("plane_share"), strict=True
    ):
        var = None if v is None else VARIABLES[int(v)]
        label = "plane" if f is None else f"k={f}"
        if var is not None:
            label += f" {VARIABLE_LABELS.get(var, var)}"
        rows.append({"label": label, "frequency": f, "variable": var, "share": s})
    return rows


def _check_inputs(
    seeds: Sequence[int],
    decoders: Sequence[torch.Tensor],
    encoders: Sequence[torch.Tensor],
    codes: Sequence[torch.Tensor],
    x: torch.Tensor,
    grid_p: int | None,
) -> tuple[int, int, int]:
    n = len(seeds)
    if n < 1 or not len(decoders) == len(encoders) == len(codes) == n:
        raise HusaiError(
            f"browse needs one decoder, encoder and code matrix per seed, got {len(seeds)} "
            f"seeds, {len(decoders)} decoders, {len(encoders)} encoders, {len(codes)} codes"
        )
    if len(set(seeds)) != n:
        raise HusaiError(f"seeds must be distinct, got {list(seeds)}")
    if x.ndim != 2:
        raise HusaiError(f"x must be [N, d_in], got shape {tuple(x.shape)}")
    n_rows, d_in = int(x.shape[0]), int(x.shape[1])
    d_sae = int(decoders[0].shape[0])
    for seed, dec, enc, code in zip(seeds, decoders, encoders, codes, strict=True):
        if tuple(dec.shape) != (d_sae, d_in) or tuple(enc.shape) != (d_sae, d_in):
            raise HusaiError(
                f"seed {seed}: decoder {tuple(dec.shape)} and encoder {tuple(enc.shape)} atoms "
                f"must both be [d_sae={d_sae}, d_in={d_in}]"
            )
        if tuple(code.shape) != (n_rows, d_sae):
            raise HusaiError(
                f"seed {seed}: codes have shape {tuple(code.shape)}, expected "
                f"[N={n_rows}, d_sae={d_sae}]"
            )
        if not bool(torch.isfinite(code).all()) or bool((code < 0).any()):
            raise HusaiError(f"seed {seed}: codes must be finite and non-negative")
        for part, atoms in (("decoder", dec), ("encoder", enc)):
            if not bool(torch.isfinite(atoms).all()):
                raise HusaiError(f"seed {seed}: the {part} atoms hold NaN or inf values")
    if not bool(torch.isfinite(x).all()):
        raise HusaiError("x holds NaN or inf values")
    if grid_p is not None and (int(grid_p) < 1 or int(grid_p) ** 2 != n_rows):
        raise HusaiError(f"grid p = {grid_p} needs p^2 rows, got {n_rows}")
    return n_rows, d_in, d_sae


def browse_data(
    *,
    domain: str,
    config: str,
    architecture: str,
    seeds: Sequence[int],
    decoders: Sequence[torch.Tensor],
    encoders: Sequence[torch.Tensor],
    codes: Sequence[torch.Tensor],
    x: torch.Tensor,
    truth: Mapping[str, torch.Tensor],
    grid_p: int | None = None,
    threshold: float = 0.7,
    n_top: int = N_TOP,
) -> dict[str, Any]:
    """Everything the page of one configuration shows (module docstring), JSON-ready.

    ``decoders[i]`` and ``encoders[i]`` are seed ``seeds[i]``'s atoms ``[d_sae, d_in]``
    (``W_dec`` rows, ``W_enc.T``), ``codes[i]`` its activations ``[N, d_sae]`` on the
    domain's rows ``x [N, d_in]``; ``truth`` the domain's ground truth
    (:class:`husai.domains.DomainData`); ``grid_p`` the modulus when the rows are the
    ``a * p + b`` grid of a transformer hook.

    Keys: ``domain``, ``config``, ``architecture``, ``kind`` (:data:`KINDS`), ``seeds``,
    ``d_sae``, ``d_in``, ``n_rows``, ``threshold``, ``map_shape`` (``[p, p]``,
    ``[points]``, ``[n_features]`` or ``[]``), ``map_levels``, ``planes`` (label, frequency, variable,
    share; empty without planes), ``n_live`` and ``dead`` (latent ids) per seed,
    ``latents`` (one record per live latent, seeds in order, latents by id: ``s`` seed
    position, ``i`` latent id, ``fr`` firing rate, ``max`` largest activation, ``top``
    ``[row, activation, note]`` of its largest activations, ``m`` per seed position
    ``[best, best_cos, partner, partner_cos, shared]`` (None for its own seed), ``nsh``
    seeds it is shared with, ``bmax`` and ``bmean`` the largest and mean best ``|cos|``
    over the other seeds; with planes ``arc``, ``R``, ``arc_ph``, ``atom``, ``share``,
    ``atom_ph``; on ``features`` ``feat`` and ``fcos``) and ``maps`` (per seed, base64 of
    the zlib stream of its live latents' 8-bit maps, in order, each
    ``prod(map_shape)`` bytes of levels ``0 .. map_levels``).
    """
    from husai.groundtruth import PLANE_MIN_SHARE, live_atoms
    from husai.stability import best_matches, cosine_matrix, pair_metrics

    n_rows, d_in, d_sae = _check_inputs(seeds, decoders, encoders, codes, x, grid_p)
    if not 0.0 < threshold <= 1.0:
        raise HusaiError(f"threshold must be in (0, 1], got {threshold}")
    kind = domain_kind(truth, grid_p)
    n = len(seeds)
    codes = [torch.as_tensor(c).detach().cpu() for c in codes]  # [N, d_sae] per seed
    lives = [(c != 0).any(dim=0) for c in codes]
    ids = [torch.nonzero(live).flatten() for live in lives]
    dec_live = [
        live_atoms(d, m, f"decoders[{i}]")
        for i, (d, m) in enumerate(zip(decoders, lives, strict=True))
    ]
    enc_live = [
        live_atoms(e, m, f"encoders[{i}]")
        for i, (e, m) in enumerate(zip(encoders, lives, strict=True))
    ]

    # best matches and the shared rule: one matching per pair of seeds s < t with live
    # atoms (the stability stages' pairs), read from both sides, so that "i of s is
    # partnered with j of t" and its shared flag are the same statement on both pages
    matches: dict[tuple[int, int], list[list[Any]]] = {}
    for s in range(n):
        for t in range(s + 1, n):
            if dec_live[s].shape[0] == 0 or dec_live[t].shape[0] == 0:
                continue
            pm = pair_metrics(
                dec_live[s], dec_live[t], enc_live[s], enc_live[t], threshold=threshold, ranks=()
            )
            assert pm.decoder_matching is not None and pm.shared_a is not None
            partner, cos, shared = (
                pm.decoder_matching.partner,
                pm.decoder_matching.cosine,
                pm.shared_a,
            )
            back = torch.full((dec_live[t].shape[0],), -1, dtype=torch.int64)
            back_cos = torch.zeros(dec_live[t].shape[0], dtype=torch.float64)
            back_shared = torch.zeros(dec_live[t].shape[0], dtype=torch.bool)
            hit = torch.nonzero(partner >= 0).flatten()
            back[partner[hit]] = hit
            back_cos[partner[hit]] = cos[hit].to(torch.float64)
            back_shared[partner[hit]] = shared[hit]
            sides = (
                (s, t, pm.best_match_a, partner, cos, shared),
                (t, s, best_matches(dec_live[t], dec_live[s]), back, back_cos, back_shared),
            )
            for u, v, best, part, pcos, sh in sides:
                matches[u, v] = [
                    [
                        int(ids[v][int(best.index[j])]),
                        float(best.cosine[j]),
                        int(ids[v][int(part[j])]) if int(part[j]) >= 0 else -1,
                        float(pcos[j]),
                        int(bool(sh[j])),
                    ]
                    for j in range(dec_live[u].shape[0])
                ]

    planes = _plane_rows(truth) if "planes" in truth and "angles" in truth else []
    if planes:
        from husai.planes import _assign, arc_assignment

        plane_basis = torch.as_tensor(truth["planes"]).to(torch.float64)
        angles = torch.as_tensor(truth["angles"]).to(torch.float64)
        if tuple(angles.shape) != (n_rows, len(planes)):
            raise HusaiError(
                f"truth angles must be [N={n_rows}, P={len(planes)}], got {tuple(angles.shape)}"
            )
        if not bool(torch.isfinite(angles).all()) or not bool(torch.isfinite(plane_basis).all()):
            raise HusaiError("truth planes and angles must be finite")
    features = torch.as_tensor(truth["features"]) if kind == "features" else None
    if kind == "grid":
        map_shape = [int(grid_p), int(grid_p)]  # type: ignore[arg-type]
    elif kind == "circle":
        c_index = torch.as_tensor(truth["c"]).to(torch.int64).flatten()
        if c_index.shape[0] != n_rows or int(c_index.min()) < 0:
            raise HusaiError(f"truth c must hold a point index >= 0 per row ({n_rows})")
        points = int(c_index.max()) + 1
        per_point = torch.bincount(c_index, minlength=points).to(torch.float64)
        map_shape = [points]
    elif kind == "features":
        assert features is not None
        if features.ndim != 2 or features.shape[1] != d_in:
            raise HusaiError(
                f"truth features must be [F, d_in={d_in}], got {tuple(features.shape)}"
            )
        map_shape = [int(features.shape[0])]
        unit = torch.nn.functional.normalize(features.to(torch.float64), dim=1)
        proj = x.detach().to(torch.float64).cpu() @ unit.T  # [N, F]: each row on each feature
    else:
        map_shape = []

    latents: list[dict[str, Any]] = []
    maps: list[str] = []
    for s in range(n):
        code = codes[s][:, lives[s]].to(torch.float64)  # [N, n_live]
        n_live = int(code.shape[1])
        rates = firing_rates(code) if n_live else torch.zeros(0, dtype=torch.float64)
        peak = code.amax(dim=0) if n_live else torch.zeros(0, dtype=torch.float64)
        extra: dict[str, list[Any]] = {}
        if planes and n_live:
            arc_plane, r_max = arc_assignment(code, angles)
            phase = arc_phases(code, angles)
            _, atom_plane, coords = _assign(
                decoders[s], plane_basis, lives[s], PLANE_MIN_SHARE, f"decoders[{s}]"
            )
            share = coords.pow(2).sum(dim=2)  # [n_live, P]
            extra["arc"] = arc_plane.tolist()
            extra["R"] = r_max.tolist()
            extra["arc_ph"] = [
                float(phase[j, q]) if q >= 0 else None for j, q in enumerate(arc_plane.tolist())
            ]
            extra["atom"] = atom_plane.tolist()
            extra["share"] = share.amax(dim=1).tolist()
            atom_deg = torch.remainder(
                torch.rad2deg(torch.atan2(coords[..., 1], coords[..., 0])), 360.0
            )
            extra["atom_ph"] = [
                float(atom_deg[j, q]) % 360.0 if q >= 0 else None
                for j, q in enumerate(atom_plane.tolist())
            ]
        if kind == "features" and n_live:
            assert features is not None
            fm = best_matches(dec_live[s], features)
            extra["feat"] = fm.index.tolist()
            extra["fcos"] = fm.cosine.tolist()
            feat_cos = cosine_matrix(dec_live[s], features)  # [n_live, F]
        blob = bytearray()
        for j in range(n_live):
            col = code[:, j]
            rows = top_rows(col, n_top)
            if kind == "grid":
                notes = [f"a,b={r // grid_p},{r % grid_p}" for r in rows]  # type: ignore[operator]
                blob += quantise(col, float(peak[j]), ACTIVATION_LEVELS)
            elif kind == "circle":
                notes = [f"c={int(c_index[r])}" for r in rows]
                profile = torch.zeros(map_shape[0], dtype=torch.float64).index_add_(0, c_index, col)
                profile = profile / per_point.clamp_min(1.0)
                blob += quantise(profile, float(profile.max()), ACTIVATION_LEVELS)
            elif kind == "features":
                f = extra["feat"][j]
                notes = [f"x.f{f}={float(proj[r, f]):.3g}" for r in rows]
                blob += quantise(feat_cos[j], 1.0)
            else:
                notes = ["" for _ in rows]
            rec: dict[str, Any] = {
                "s": s,
                "i": int(ids[s][j]),
                "fr": float(rates[j]),
                "max": float(peak[j]),
                "top": [[r, float(col[r]), note] for r, note in zip(rows, notes, strict=True)],
            }
            for key, values in extra.items():
                rec[key] = values[j]
            row_m: list[Any] = [matches[s, t][j] if (s, t) in matches else None for t in range(n)]
            rec["m"] = row_m
            others = [m for t, m in enumerate(row_m) if t != s and m is not None]
            rec["nsh"] = sum(m[4] for m in others)
            rec["bmax"] = max((m[1] for m in others), default=None)
            rec["bmean"] = sum(m[1] for m in others) / len(others) if others else None
            latents.append(rec)
        maps.append(base64.b64encode(zlib.compress(bytes(blob), ZLIB_LEVEL)).decode("ascii"))

    return {
        "domain": domain,
        "config": config,
        "architecture": architecture,
        "kind": kind,
        "seeds": [int(s) for s in seeds],
        "d_sae": d_sae,
        "d_in": d_in,
        "n_rows": n_rows,
        "threshold": float(threshold),
        "map_shape": map_shape,
        "map_levels": 255 if kind == "features" else ACTIVATION_LEVELS,
        "planes": planes,
        "n_live": [int(live.sum()) for live in lives],
        "dead": [torch.nonzero(~live).flatten().tolist() for live in lives],
        "latents": latents,
        "maps": maps,
    }


# ----------------------------------------------------------------------------- HTML


def _json_for_script(obj: Any) -> str:
    """Compact deterministic JSON that is safe inside ``<script>`` (no ``<``)."""
    from husai.serialize import clean_numbers

    text = json.dumps(clean_numbers(obj, DIGITS), separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def render_html(data: Mapping[str, Any]) -> str:
    """The offline page of one configuration (:func:`browse_data`'s ``data``)."""
    if data.get("kind") not in KINDS:
        raise HusaiError(f"browse data has kind {data.get('kind')!r}, expected one of {KINDS}")
    title = f"HUSAI latents: {data['domain']} / {data['config']}"
    n_live = sum(data["n_live"])
    n_dead = sum(len(d) for d in data["dead"])
    summary = (
        f"{data['architecture']}, d_sae {data['d_sae']}, d_in {data['d_in']}, "
        f"{len(data['seeds'])} seeds, {n_live} live latents drawn, {n_dead} dead (not drawn)"
    )
    return (
        _PAGE.replace("__TITLE__", html.escape(title))
        .replace("__SUMMARY__", html.escape(summary))
        .replace("__CSS__", _CSS)
        .replace("__JS__", _legend_js())
        .replace("__DATA__", _json_for_script(data))
    )


def _legend_js() -> str:
    """The page script with the plane thresholds of :mod:`husai.planes` and
    :mod:`husai.groundtruth` written into its legend."""
    from husai.groundtruth import PLANE_MIN_SHARE
    from husai.planes import ARC_MIN_CONCENTRATION

    return _JS.replace("__ARC_MIN__", f"{ARC_MIN_CONCENTRATION:g}").replace(
        "__PLANE_MIN__", f"{100 * PLANE_MIN_SHARE:g}"
    )


def render_index(domain: str, pages: Sequence[tuple[str, str, str]]) -> str:
    """A domain's index page: one link per configuration, ``(config, file, summary)``."""
    items = "".join(
        f'<li><a href="{html.escape(file)}">{html.escape(config)}</a>: {html.escape(text)}</li>'
        for config, file, text in pages
    )
    title = html.escape(f"HUSAI latents: {domain}")
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
        f"<style>{_CSS}</style></head><body><h1>{title}</h1><ul>{items}</ul></body></html>\n"
    )


def page_summary(data: Mapping[str, Any]) -> str:
    """One line for the index: live and dead latents per seed."""
    per_seed = ", ".join(
        f"seed {s}: {n} live, {len(d)} dead"
        for s, n, d in zip(data["seeds"], data["n_live"], data["dead"], strict=True)
    )
    return f"{data['architecture']} d_sae {data['d_sae']} ({per_seed})"


_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>__TITLE__</title>
<style>__CSS__</style>
</head>
<body data-status="loading">
<h1>__TITLE__</h1>
<p class="summary">__SUMMARY__</p>
<p class="legend" id="legend"></p>
<div id="controls">
<label>seed <select id="f-seed"><option value="">all</option></select></label>
<label>plane <select id="f-plane"><option value="">all</option></select></label>
<label>group by <select id="f-group"></select></label>
<label>firing rate &ge; <input id="f-fr" type="number" min="0" max="1" step="0.01" value="0"></label>
<label>best |cos| &ge; <input id="f-cos" type="number" min="0" max="1" step="0.05" value="0"></label>
<label>shared with &ge; <input id="f-sh" type="number" min="0" step="1" value="0"> seeds</label>
<label>latent <input id="f-id" type="text" size="6" placeholder="id"></label>
<span id="count"></span>
</div>
<details id="dead"><summary>Dead latents (never fire on the data: not features, not drawn)</summary><ul id="dead-list"></ul></details>
<table id="latents"><thead><tr id="head"></tr></thead><tbody id="rows"></tbody></table>
<script type="application/json" id="data">__DATA__</script>
<script>__JS__</script>
</body>
</html>
"""

_CSS = """
body{font:13px/1.35 system-ui,-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;margin:12px;color:#111;background:#fff}
h1{font-size:18px;margin:0 0 4px}
.summary,.legend{margin:2px 0;color:#333}
#controls{position:sticky;top:0;background:#fafafa;border:1px solid #ddd;padding:6px;z-index:2;display:flex;flex-wrap:wrap;gap:10px;align-items:center}
#controls input[type=number]{width:60px}
#count{color:#555}
table{border-collapse:collapse;margin-top:8px}
th{position:sticky;top:42px;background:#eee;cursor:pointer;text-align:left;padding:3px 5px;border-bottom:1px solid #bbb;white-space:nowrap;z-index:1}
th.sorted-asc::after{content:" \\25B2"}th.sorted-desc::after{content:" \\25BC"}
td{padding:2px 5px;border-bottom:1px solid #eee;vertical-align:top}
tr.group td{background:#e8eef6;font-weight:600;padding:5px}
tr.latent.hit td{background:#fff6cc}
canvas.map{image-rendering:pixelated;border:1px solid #ccc;display:block}
.m{white-space:nowrap;font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12px}
.m a{color:#124;text-decoration:none;cursor:pointer}
.sh{color:#fff;background:#2a7;border-radius:3px;padding:0 3px}
.no{color:#888}
.top{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:11px;color:#333;white-space:nowrap}
.num{text-align:right;font-variant-numeric:tabular-nums}
"""

_JS = r"""
"use strict";
const D = JSON.parse(document.getElementById("data").textContent);
const KIND = D.kind, SEEDS = D.seeds, PLANES = D.planes;
const HAS_PLANES = PLANES.length > 0;
const VIRIDIS = [[68,1,84],[71,44,122],[59,81,139],[44,113,142],[33,144,140],[39,173,129],[92,200,99],[170,220,50],[253,231,37]];
const LUT = new Uint8ClampedArray(256 * 3);
for (let v = 0; v < 256; v++) {
  if (v === 0) { LUT[0] = 238; LUT[1] = 238; LUT[2] = 238; continue; }
  const t = (v / 255) * (VIRIDIS.length - 1), k = Math.min(Math.floor(t), VIRIDIS.length - 2), f = t - k;
  for (let c = 0; c < 3; c++) LUT[v * 3 + c] = Math.round(VIRIDIS[k][c] * (1 - f) + VIRIDIS[k + 1][c] * f);
}
const LEVEL = new Uint8Array(256).map((_, q) => Math.min(255, Math.round(q * 255 / D.map_levels)));
const fmt = (v, d) => (v === null || v === undefined) ? "" : Number(v).toFixed(d);
const planeLabel = q => (q === null || q === undefined || q < 0) ? "none" : PLANES[q].label;
function el(tag, attrs, text) {
  const e = document.createElement(tag);
  if (attrs) for (const k in attrs) e.setAttribute(k, attrs[k]);
  if (text !== undefined) e.textContent = text;
  return e;
}

// columns: [key, header, value for sorting, cell renderer]
const COLS = [["map", "map", null, null], ["seed", "seed", r => SEEDS[r.s]], ["id", "latent", r => r.i],
  ["fr", "firing rate", r => r.fr], ["max", "max act", r => r.max]];
if (HAS_PLANES) COLS.push(["arc", "arc plane", r => r.arc < 0 ? 1e9 : r.arc], ["arc_ph", "arc phase", r => r.arc_ph],
  ["R", "R", r => r.R], ["atom", "atom plane (share)", r => r.share]);
if (KIND === "features") COLS.push(["feat", "true feature", r => r.feat], ["fcos", "|cos| feature", r => r.fcos]);
COLS.push(["bmax", "best |cos| (max)", r => r.bmax], ["bmean", "best |cos| (mean)", r => r.bmean],
  ["nsh", "shared with", r => r.nsh], ["m", "best match per other seed: latent |cos|, Hungarian partner |cos|", null],
  ["top", "top samples (row: activation)", null]);

let sortKey = null, sortDir = 1;
const head = document.getElementById("head");
COLS.forEach(([key, label, value]) => {
  const th = el("th", {"data-key": key}, label);
  if (value) th.addEventListener("click", () => { sortDir = sortKey === key ? -sortDir : -1; sortKey = key; render(); });
  head.appendChild(th);
});

const groupSel = document.getElementById("f-group");
const groups = [["", "none"], ["seed", "seed"]];
if (HAS_PLANES) groups.unshift(["arc", "arc plane"], ["atom", "atom plane"]);
if (KIND === "features") groups.push(["fshared", "shared with every seed"]);
groups.forEach(([v, t]) => groupSel.appendChild(el("option", {value: v}, t)));
const seedSel = document.getElementById("f-seed");
SEEDS.forEach((s, k) => seedSel.appendChild(el("option", {value: String(k)}, String(s))));
const planeSel = document.getElementById("f-plane");
if (HAS_PLANES) { PLANES.forEach((p, q) => planeSel.appendChild(el("option", {value: String(q)}, p.label + " (" + fmt(100 * p.share, 1) + "%)"))); planeSel.appendChild(el("option", {value: "-1"}, "none")); }
else planeSel.parentElement.style.display = "none";

document.getElementById("legend").textContent = ({
  grid: "Map: the latent's activation over the " + D.map_shape[0] + " x " + D.map_shape[1] + " grid of inputs (a down, b across), in " + (D.map_levels + 1) + " levels of its max act; grey = 0.",
  circle: "Map: the latent's mean activation at each of the " + D.map_shape[0] + " points c of the circles, in " + (D.map_levels + 1) + " levels of its max; grey = 0.",
  features: "Map: |cos| of the latent's decoder atom with each of the " + D.map_shape[0] + " planted features (red: its best match).",
  rows: "No map: the latent's top samples only."
})[KIND] + " Matches are over live latents only, |cos| of decoder atoms; a green mark = shared (encoder and decoder matchings agree, both |cos| >= " + D.threshold + ")." +
  (HAS_PLANES ? " Arc plane: the plane on whose circle the latent fires on one arc (R >= __ARC_MIN__), arc phase its centre in degrees; atom plane: the plane holding >= __PLANE_MIN__% of the atom (its largest share in brackets)." : "");

const deadList = document.getElementById("dead-list");
SEEDS.forEach((s, k) => deadList.appendChild(el("li", null, "seed " + s + ": " + D.dead[k].length + " dead" + (D.dead[k].length ? ": " + D.dead[k].join(", ") : ""))));

// rows, built once
const ROWS = D.latents.map(r => {
  const tr = el("tr", {"class": "latent", id: "s" + SEEDS[r.s] + "-l" + r.i, "data-seed": String(SEEDS[r.s]), "data-latent": String(r.i)});
  COLS.forEach(([key]) => {
    const td = el("td");
    if (key === "map") {
      if (KIND !== "rows") {
        const [w, h] = KIND === "grid" ? [D.map_shape[1], D.map_shape[0]] : [D.map_shape[0], 32];
        const cv = el("canvas", {"class": "map", width: String(w), height: String(h)});
        const scale = KIND === "grid" ? Math.max(1, Math.floor(113 / D.map_shape[0])) : Math.max(1, Math.floor(240 / D.map_shape[0]));
        cv.style.width = (w * scale) + "px"; cv.style.height = (h * (KIND === "grid" ? scale : 1)) + "px";
        td.appendChild(cv); r.canvas = cv;
      }
    } else if (key === "seed") td.textContent = SEEDS[r.s];
    else if (key === "id") td.textContent = r.i;
    else if (key === "fr") { td.textContent = fmt(r.fr, 4); td.className = "num"; }
    else if (key === "max") { td.textContent = fmt(r.max, 3); td.className = "num"; }
    else if (key === "arc") td.textContent = planeLabel(r.arc);
    else if (key === "arc_ph") { td.textContent = fmt(r.arc_ph, 1); td.className = "num"; }
    else if (key === "R") { td.textContent = fmt(r.R, 3); td.className = "num"; }
    else if (key === "atom") td.textContent = (r.atom >= 0 ? planeLabel(r.atom) + " " + fmt(r.atom_ph, 1) + "\u00b0" : "none") + " (" + fmt(r.share, 2) + ")";
    else if (key === "feat") td.textContent = "f" + r.feat;
    else if (key === "fcos") { td.textContent = fmt(r.fcos, 3); td.className = "num"; }
    else if (key === "bmax") { td.textContent = fmt(r.bmax, 3); td.className = "num"; }
    else if (key === "bmean") { td.textContent = fmt(r.bmean, 3); td.className = "num"; }
    else if (key === "nsh") { td.textContent = r.nsh + " / " + (SEEDS.length - 1); td.className = "num"; }
    else if (key === "m") {
      r.m.forEach((m, t) => {
        if (t === r.s) return;
        const line = el("div", {"class": "m"});
        line.appendChild(document.createTextNode(SEEDS[t] + ": "));
        if (m === null) { line.appendChild(el("span", {"class": "no"}, "no live latent")); td.appendChild(line); return; }
        const a = el("a", {"data-target": "s" + SEEDS[t] + "-l" + m[0]}, "#" + m[0]);
        line.appendChild(a); line.appendChild(document.createTextNode(" " + fmt(m[1], 3) + "  H "));
        if (m[2] < 0) line.appendChild(el("span", {"class": "no"}, "unmatched "));
        else { line.appendChild(el("a", {"data-target": "s" + SEEDS[t] + "-l" + m[2]}, "#" + m[2])); line.appendChild(document.createTextNode(" " + fmt(m[3], 3) + " ")); }
        line.appendChild(m[4] ? el("span", {"class": "sh"}, "shared") : el("span", {"class": "no"}, "not shared"));
        td.appendChild(line);
      });
    } else if (key === "top") {
      td.className = "top";
      r.top.forEach(([row, v, note]) => td.appendChild(el("div", null, "row " + row + (note ? " (" + note + ")" : "") + ": " + fmt(v, 3))));
    }
    tr.appendChild(td);
  });
  r.tr = tr;
  return r;
});

document.getElementById("rows").addEventListener("click", ev => {
  const t = ev.target.closest("a[data-target]");
  if (!t) return;
  const row = document.getElementById(t.getAttribute("data-target"));
  if (!row) return;
  document.querySelectorAll("tr.hit").forEach(x => x.classList.remove("hit"));
  if (row.style.display === "none") { ["f-seed", "f-plane", "f-id"].forEach(i => document.getElementById(i).value = ""); ["f-fr", "f-cos", "f-sh"].forEach(i => document.getElementById(i).value = "0"); render(); }
  row.classList.add("hit"); row.scrollIntoView({block: "center"});
});

function groupOf(r, g) {
  if (g === "arc") return [r.arc < 0 ? 1e9 : r.arc, "arc plane " + planeLabel(r.arc)];
  if (g === "atom") return [r.atom < 0 ? 1e9 : r.atom, "atom plane " + planeLabel(r.atom)];
  if (g === "seed") return [r.s, "seed " + SEEDS[r.s]];
  if (g === "fshared") { const all = r.nsh === SEEDS.length - 1; return [all ? 0 : 1, all ? "shared with every other seed" : "not shared with every other seed"]; }
  return [0, ""];
}

function render() {
  const fs = document.getElementById("f-seed").value, fp = document.getElementById("f-plane").value;
  const ffr = Number(document.getElementById("f-fr").value) || 0, fcos = Number(document.getElementById("f-cos").value) || 0;
  const fsh = Number(document.getElementById("f-sh").value) || 0, fid = document.getElementById("f-id").value.trim();
  const g = groupSel.value;
  const col = COLS.find(c => c[0] === sortKey);
  const val = col ? col[2] : null;
  const order = ROWS.slice().sort((x, y) => {
    const gx = groupOf(x, g)[0], gy = groupOf(y, g)[0];
    if (gx !== gy) return gx - gy;
    if (val) { const vx = val(x), vy = val(y); if (vx !== vy) return (vx === null) ? 1 : (vy === null) ? -1 : (vx < vy ? -sortDir : sortDir); }
    return x.s - y.s || x.i - y.i;
  });
  const body = document.getElementById("rows");
  body.querySelectorAll("tr.group").forEach(x => x.remove());
  const counts = new Map();
  let shown = 0, last = null;
  const visible = order.map(r => {
    const ok = (fs === "" || r.s === Number(fs)) && (fp === "" || r.arc === Number(fp) || (fp === "-1" && r.arc < 0)) &&
      r.fr >= ffr && (r.bmax === null ? fcos <= 0 : r.bmax >= fcos) && r.nsh >= fsh && (fid === "" || String(r.i) === fid);
    if (ok) { const k = groupOf(r, g)[1]; counts.set(k, (counts.get(k) || 0) + 1); shown++; }
    return ok;
  });
  order.forEach((r, k) => {
    const label = groupOf(r, g)[1];
    if (g !== "" && visible[k] && label !== last) {
      const tr = el("tr", {"class": "group"}); const td = el("td", {colspan: String(COLS.length)}, label + ": " + counts.get(label) + (counts.get(label) === 1 ? " latent" : " latents"));
      tr.appendChild(td); body.appendChild(tr); last = label;
    }
    r.tr.style.display = visible[k] ? "" : "none";
    body.appendChild(r.tr);
  });
  head.querySelectorAll("th").forEach(th => { th.className = th.getAttribute("data-key") === sortKey ? (sortDir > 0 ? "sorted-asc" : "sorted-desc") : ""; });
  document.getElementById("count").textContent = "showing " + shown + " of " + ROWS.length + " live latents";
}
["f-seed", "f-plane", "f-group", "f-fr", "f-cos", "f-sh", "f-id"].forEach(i => document.getElementById(i).addEventListener("input", render));
// the initial view from the address's fragment, e.g. #sort=fr&dir=desc&group=seed
const HASH = new URLSearchParams(location.hash.slice(1));
if (COLS.some(c => c[0] === HASH.get("sort") && c[2])) { sortKey = HASH.get("sort"); sortDir = HASH.get("dir") === "asc" ? 1 : -1; }
if (HASH.has("group") && groups.some(g => g[0] === HASH.get("group"))) groupSel.value = HASH.get("group");
render();

async function inflate(b64) {
  const bin = Uint8Array.from(atob(b64), c => c.charCodeAt(0));
  const stream = new Blob([bin]).stream().pipeThrough(new DecompressionStream("deflate"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

function draw(r, bytes, off) {
  const cv = r.canvas, ctx = cv.getContext("2d");
  if (KIND === "grid") {
    const img = ctx.createImageData(cv.width, cv.height), n = cv.width * cv.height;
    for (let k = 0; k < n; k++) { const v = LEVEL[bytes[off + k]]; img.data[4 * k] = LUT[3 * v]; img.data[4 * k + 1] = LUT[3 * v + 1]; img.data[4 * k + 2] = LUT[3 * v + 2]; img.data[4 * k + 3] = 255; }
    ctx.putImageData(img, 0, 0);
  } else {
    const n = D.map_shape[0], h = cv.height;
    ctx.fillStyle = "#f4f4f4"; ctx.fillRect(0, 0, cv.width, h);
    for (let k = 0; k < n; k++) {
      const v = LEVEL[bytes[off + k]];
      if (!v) continue;
      const best = KIND === "features" && k === r.feat;
      ctx.fillStyle = best ? "rgb(220,40,40)" : "rgb(" + LUT[3 * v] + "," + LUT[3 * v + 1] + "," + LUT[3 * v + 2] + ")";
      const bh = Math.max(1, Math.round(h * v / 255));
      ctx.fillRect(k, h - bh, 1, bh);
    }
  }
  cv.setAttribute("data-drawn", "1");
}

async function drawAll() {
  let drawn = 0;
  if (KIND !== "rows") {
    const size = D.map_shape.reduce((a, b) => a * b, 1);
    for (let s = 0; s < SEEDS.length; s++) {
      const bytes = await inflate(D.maps[s]);
      const mine = ROWS.filter(r => r.s === s);
      if (bytes.length !== size * mine.length) throw new Error("seed " + SEEDS[s] + ": " + bytes.length + " map bytes for " + mine.length + " latents");
      mine.forEach((r, k) => { draw(r, bytes, k * size); drawn++; });
    }
  }
  const first = document.querySelector("canvas.map");
  if (first) { const b = first.getBoundingClientRect(); document.body.setAttribute("data-first-map", [b.left, b.top, b.width, b.height].map(Math.round).join(",")); }
  document.body.setAttribute("data-drawn", String(drawn));
  document.body.setAttribute("data-status", "ready");
}
drawAll().catch(err => { document.body.setAttribute("data-status", "error: " + err.message); });
"""
