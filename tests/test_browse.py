"""husai.browse: per-latent data with known answers, and the offline page."""

from __future__ import annotations

import base64
import json
import math
import re
import zlib

import pytest
import torch

from husai.browse import arc_phases, browse_data, firing_rates, quantise, render_html, top_rows
from husai.errors import HusaiError

S2 = 1 / math.sqrt(2)


def _eye(rows: list[list[float]]) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.float64)


# seed A: e0, e1, e2, e3 and a dead latent on e2; seed B: e1, e0, e3, (e2 + e3)/sqrt 2 and a
# dead latent on e2. Were dead latents matched, A's latent 2 would find B's latent 4 at 1.
DEC_A = _eye([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1], [0, 0, 1, 0]])
DEC_B = _eye([[0, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 1], [0, 0, S2, S2], [0, 0, 1, 0]])


def _codes(n_rows: int, dead: int = 4) -> torch.Tensor:
    """Latent j fires on rows j, j + 5, ... with value 1 + row / 10; latent ``dead`` never."""
    c = torch.zeros(n_rows, 5, dtype=torch.float64)
    for j in range(5):
        if j != dead:
            rows = torch.arange(j, n_rows, 5)
            c[rows, j] = 1.0 + rows.to(torch.float64) / 10
    return c


def _pair(threshold: float = 0.8, **kw) -> dict:
    """browse_data on seeds A and B (7 and 9); keyword arguments replace any input."""
    inputs = {
        "domain": "toy",
        "config": "topk",
        "architecture": "topk",
        "seeds": [7, 9],
        "decoders": [DEC_A, DEC_B],
        "encoders": [DEC_A, DEC_B],
        "codes": [_codes(9), _codes(9)],
        "x": torch.zeros(9, 4),
        "truth": {},
    }
    return browse_data(**{**inputs, **kw}, threshold=threshold)


def test_firing_rates_quantise_and_top_rows_known_answers() -> None:
    codes = torch.tensor([[0.0, 1.0, 0.0], [2.0, 0.0, 0.0], [3.0, 0.0, 0.0], [0.5, 0.0, 0.0]])
    assert firing_rates(codes).tolist() == [0.75, 0.25, 0.0]
    assert quantise(torch.tensor([0.0, 1.0, 2.0, 4.0]), 4.0) == bytes([0, 64, 128, 255])
    # 15 levels: a firing latent is never drawn as silent (0.01 -> 1, not 0)
    assert quantise(torch.tensor([0.0, 0.01, 2.0, 4.0]), 4.0, 15) == bytes([0, 1, 8, 15])
    assert quantise(torch.tensor([0.0, 0.0]), 0.0) == bytes(2)
    assert top_rows(torch.tensor([0.0, 3.0, 1.0, 3.0, 0.0]), 3) == [1, 3, 2]  # ties: lower row
    assert top_rows(torch.tensor([0.0, 2.0, 0.0]), 3) == [1]  # zeros are not samples
    with pytest.raises(HusaiError, match=r"codes must be \[N >= 1, n_latents\]"):
        firing_rates(torch.zeros(3))


def test_best_matches_cosines_and_shared_over_live_latents() -> None:
    data = _pair(threshold=0.8)
    assert data["n_live"] == [4, 4] and data["dead"] == [[4], [4]]
    rows = {(r["s"], r["i"]): r for r in data["latents"]}
    assert sorted(rows) == [(s, i) for s in (0, 1) for i in range(4)]  # dead latents: no row
    # [best, best_cos, hungarian partner, its cos, shared]
    expected_a = {0: [1, 1.0, 1, 1.0, 1], 1: [0, 1.0, 0, 1.0, 1], 2: [3, S2, 3, S2, 0]}
    expected_a[3] = [2, 1.0, 2, 1.0, 1]
    for i, want in expected_a.items():
        m = rows[0, i]["m"]
        assert m[0] is None
        assert m[1][0] == want[0] and m[1][2] == want[2] and m[1][4] == want[4], (i, m)
        assert m[1][1] == pytest.approx(want[1], abs=1e-7)
        assert m[1][3] == pytest.approx(want[3], abs=1e-7)
    # B's latent 3 = (e2 + e3)/sqrt 2: best in A is e2 (ties: the lowest index), at 1/sqrt 2
    b3 = rows[1, 3]["m"][0]
    assert b3[0] == 2 and b3[1] == pytest.approx(S2, abs=1e-7) and b3[2] == 2 and b3[4] == 0
    assert rows[0, 2]["nsh"] == 0 and rows[0, 0]["nsh"] == 1
    assert rows[0, 2]["bmax"] == pytest.approx(S2, abs=1e-7)
    # at the default threshold 0.7, 1/sqrt(2) = 0.707 is shared
    assert {r["i"]: r["nsh"] for r in _pair(threshold=0.7)["latents"] if r["s"] == 0}[2] == 1
    # firing rate and largest activation of latent 0 (rows 0 and 5 of 9)
    assert rows[0, 0]["fr"] == pytest.approx(2 / 9)
    assert rows[0, 0]["max"] == pytest.approx(1.5)
    assert rows[0, 0]["top"] == [[5, 1.5, ""], [0, 1.0, ""]]


def test_grid_maps_are_the_quantised_activations() -> None:
    data = _pair(grid_p=3)
    assert data["kind"] == "grid" and data["map_shape"] == [3, 3]
    for s, blob in enumerate(data["maps"]):
        raw = zlib.decompress(base64.b64decode(blob))
        assert len(raw) == 9 * data["n_live"][s]
        code = _codes(9)
        for k in range(4):  # the live latents in order
            want = [round(15 * float(v) / float(code[:, k].max())) for v in code[:, k]]
            assert list(raw[9 * k : 9 * k + 9]) == want
    top = next(r for r in data["latents"] if r["s"] == 0 and r["i"] == 1)["top"]
    assert data["map_levels"] == 15
    assert top == [[6, 1.6, "a,b=2,0"], [1, 1.1, "a,b=0,1"]]


def test_plane_and_phase_assignment_on_a_circle() -> None:
    """Latent 0 fires on an arc centred at 60 degrees of plane 0 and its atom lies in plane 0
    at 30 degrees; latent 1's atom is split between two planes (assigned to none)."""
    n = 36
    theta = torch.arange(n, dtype=torch.float64) * (2 * math.pi / n)
    angles = torch.stack([theta, (2 * theta) % (2 * math.pi)], dim=1)
    planes = torch.zeros(2, 2, 4, dtype=torch.float64)
    planes[0, 0, 0] = planes[0, 1, 1] = planes[1, 0, 2] = planes[1, 1, 3] = 1.0
    codes = torch.zeros(n, 2, dtype=torch.float64)
    codes[:, 0] = torch.relu(torch.cos(theta - math.radians(60)))
    codes[:, 1] = 1.0 + torch.cos(theta)  # dense: R = 0.5, no arc
    dec = _eye([[math.cos(math.radians(30)), math.sin(math.radians(30)), 0, 0], [S2, 0, S2, 0]])
    other = _eye([[0, 1, 0, 0], [0, 0, 1, 0]])
    truth = {
        "planes": planes,
        "angles": angles,
        "c": torch.arange(n) % 12,
        "plane_frequency": torch.tensor([1, 2]),
        "plane_variable": torch.tensor([2, 2]),
        "plane_share": torch.tensor([0.6, 0.4], dtype=torch.float64),
    }
    data = browse_data(
        domain="circles",
        config="c",
        architecture="topk",
        seeds=[1, 2],
        decoders=[dec, other],
        encoders=[dec, other],
        codes=[codes, codes],
        x=torch.zeros(n, 4),
        truth=truth,
    )
    assert data["kind"] == "circle" and data["map_shape"] == [12]
    assert [p["label"] for p in data["planes"]] == ["k=1 a+b", "k=2 a+b"]
    r0, r1 = (r for r in data["latents"] if r["s"] == 0)
    assert r0["arc"] == 0 and r0["arc_ph"] == pytest.approx(60.0, abs=1e-9)
    assert r0["R"] > 0.6 and r0["atom"] == 0 and r0["share"] == pytest.approx(1.0)
    assert r0["atom_ph"] == pytest.approx(30.0, abs=1e-9)
    assert r1["arc"] == -1 and r1["arc_ph"] is None and r1["R"] == pytest.approx(0.5, abs=1e-9)
    assert r1["atom"] == -1 and r1["atom_ph"] is None and r1["share"] == pytest.approx(0.5)
    assert r0["top"][0][:1] == [6] and r0["top"][0][2] == "c=6"  # the peak: 60 degrees, row 6
    assert arc_phases(codes[:, :1], angles)[0, 0] == pytest.approx(60.0, abs=1e-9)


def test_features_kind_best_feature_and_projection() -> None:
    feats = torch.eye(4, dtype=torch.float64)[[2, 0, 1, 3]]  # feature f is e_{(2, 0, 1, 3)[f]}
    dec = _eye([[1, 0, 0, 0], [0, 0.6, 0.8, 0]])
    x = torch.tensor([[3.0, 0, 0, 0], [0, 0, 2.0, 0], [1.0, 0, 0, 0]])
    codes = torch.tensor([[2.0, 0.0], [0.0, 1.0], [1.0, 0.0]], dtype=torch.float64)
    data = browse_data(
        domain="synthetic",
        config="topk",
        architecture="topk",
        seeds=[1, 2],
        decoders=[dec, dec],
        encoders=[dec, dec],
        codes=[codes, codes],
        x=x,
        truth={"features": feats},
    )
    assert data["kind"] == "features" and data["map_shape"] == [4]
    r0, r1 = (r for r in data["latents"] if r["s"] == 0)
    assert (r0["feat"], r1["feat"]) == (1, 0)  # e0 is feature 1; e2 (0.8) is feature 0
    assert r0["fcos"] == pytest.approx(1.0) and r1["fcos"] == pytest.approx(0.8)
    assert r0["top"] == [[0, 2.0, "x.f1=3"], [2, 1.0, "x.f1=1"]]
    raw = zlib.decompress(base64.b64decode(data["maps"][0]))
    assert raw == bytes([0, 255, 0, 0]) + bytes([204, 0, 153, 0])  # |cos| with each feature
    assert r0["m"][1][:2] == [0, pytest.approx(1.0)] and r0["m"][1][4] == 1


def test_page_is_offline_deterministic_and_carries_the_data() -> None:
    data = _pair(grid_p=3)
    page = render_html(data)
    assert render_html(data) == page
    assert "http://" not in page and "https://" not in page and "//cdn" not in page
    assert not re.search(r"""(src|href)\s*=\s*["'](?!#)""", page)  # nothing loaded at all
    assert "@import" not in page and "url(" not in page
    blob = re.search(r'<script type="application/json" id="data">(.*?)</script>', page, re.S)
    assert blob is not None
    embedded = json.loads(blob.group(1))
    assert embedded["seeds"] == [7, 9] and len(embedded["latents"]) == 8
    assert embedded["maps"] == data["maps"]
    # a config name with markup cannot break out of the script element
    evil = dict(data, config="</script><script>alert(1)</script>")
    text = render_html(evil)
    assert text.count("</script>") == page.count("</script>")


def test_bad_input_is_a_one_line_error() -> None:
    cases = [
        ({"codes": [_codes(9), _codes(8)]}, r"seed 9: codes have shape \(8, 5\)"),
        ({"grid_p": 4}, r"grid p = 4 needs p\^2 rows, got 9"),
        ({"seeds": [7, 7]}, r"seeds must be distinct"),
        ({"codes": [_codes(9)]}, r"got 2 seeds, 2 decoders, 2 encoders, 1 codes"),
        ({"codes": [-_codes(9), _codes(9)]}, r"seed 7: codes must be finite and non-negative"),
        ({"threshold": 0.0}, r"threshold must be in \(0, 1\], got 0.0"),
    ]
    for change, message in cases:
        with pytest.raises(HusaiError, match=message):
            _pair(**change)
    with pytest.raises(HusaiError, match="kind 'map'"):
        render_html({"kind": "map"})


def test_stage_errors_are_one_line_and_write_nothing(tmp_path, tiny_params_raw: dict) -> None:
    """`husai browse` on a domain params do not list, or without the domain's data."""
    from ruamel.yaml import YAML
    from typer.testing import CliRunner

    from stages.cli import app

    params = tmp_path / "params.yaml"
    with open(params, "w") as fh:
        YAML(typ="safe", pure=True).dump(tiny_params_raw, fh)
    out = tmp_path / "browse"
    runner = CliRunner()
    for args, message in (
        (["--domain", "nosuch"], "lists no SAE configuration for domain 'nosuch'"),
        (
            ["--domain", "synthetic", "--data", str(tmp_path / "none.safetensors")],
            "none.safetensors",
        ),
    ):
        result = runner.invoke(app, ["browse", "--params", str(params), "--out", str(out), *args])
        assert result.exit_code == 2, result.output
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and message in lines[0], result.stderr
        assert "Traceback" not in result.output + result.stderr
        assert not out.exists()


def test_a_pairing_reads_the_same_from_both_seeds_even_with_tied_atoms() -> None:
    """One matching per pair of seeds: where seed s's latent i has partner j in seed t,
    seed t's latent j has partner i, at the same cosine and with the same shared flag,
    even when exact duplicate atoms make the matching a tie (two independent matchings
    could break it differently)."""
    g = torch.Generator().manual_seed(0)
    base = torch.randn(4, 6, generator=g, dtype=torch.float64)
    a = torch.cat([base, base[:2]])  # latents 4, 5 duplicate 0, 1: tied for B's copies
    b = torch.cat([base, torch.randn(2, 6, generator=g, dtype=torch.float64)])
    b = b[torch.randperm(6, generator=g)]
    ea = a + 0.3 * torch.randn(6, 6, generator=g, dtype=torch.float64)
    eb = b + 0.3 * torch.randn(6, 6, generator=g, dtype=torch.float64)
    codes = [torch.rand(10, 6, generator=g, dtype=torch.float64) for _ in range(3)]
    data = browse_data(
        domain="toy",
        config="topk",
        architecture="topk",
        seeds=[1, 2, 3],
        decoders=[a, b, a],
        encoders=[ea, eb, ea],
        codes=codes,
        x=torch.zeros(10, 6),
        truth={},
        threshold=0.7,
    )
    rows = {(r["s"], r["i"]): r for r in data["latents"]}
    pairs = 0
    for (s, i), r in rows.items():
        for t, m in enumerate(r["m"]):
            if m is None or m[2] < 0:
                continue
            back = rows[t, m[2]]["m"][s]
            assert back[2] == i and back[3] == pytest.approx(m[3]) and back[4] == m[4]
            pairs += 1
    assert pairs == 3 * 2 * 6  # every latent of every seed is partnered in both others


def test_non_finite_atoms_or_rows_are_one_line_errors() -> None:
    bad = DEC_B.clone()
    bad[0, 0] = math.nan
    with pytest.raises(HusaiError, match=r"^seed 9: the decoder atoms hold NaN or inf values$"):
        _pair(decoders=[DEC_A, bad])
    with pytest.raises(HusaiError, match=r"^x holds NaN or inf values$"):
        _pair(x=torch.full((9, 4), math.inf))
