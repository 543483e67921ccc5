"""husai.planes on planted planes and circles with known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from husai.planes import (
    VARIABLES,
    Planes,
    arc_assignment,
    arc_concentration,
    dictionary_codes,
    input_partition,
    modular_planes,
    partition_ami,
    plane_agreement,
    plane_angles,
    plane_coverage,
)
from husai.stability import pwmcc

SUM, A, B, DIFF = (VARIABLES.index(v) for v in ("sum", "a", "b", "diff"))


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def orthonormal(n: int, d: int, seed: int) -> torch.Tensor:
    q, _ = torch.linalg.qr(torch.randn(d, n, generator=gen(seed), dtype=torch.float64))
    return q.T.contiguous()  # [n, d]


def circular_diff(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return torch.remainder(x - y + math.pi, 2 * math.pi) - math.pi


def on_plane(plane: torch.Tensor, phases_deg: list[float]) -> torch.Tensor:
    """Unit atoms ``cos(phi) row0 + sin(phi) row1`` of one plane ``[2, d]``."""
    phi = torch.deg2rad(torch.tensor(phases_deg, dtype=torch.float64))
    return torch.cos(phi)[:, None] * plane[0] + torch.sin(phi)[:, None] * plane[1]


# ----------------------------------------------------------------------------- modular planes

P13, D16 = 13, 16
# (frequency, variable, radius, phase offset): the weak (4, b) plane holds < 1% of the variance
PLANTED = [(2, SUM, 2.0, 0.7), (5, A, 1.0, -2.1), (3, DIFF, 1.5, 1.3), (4, B, 0.05, 0.2)]


def planted_grid() -> tuple[torch.Tensor, torch.Tensor]:
    """``x[a, b, :] = sum_j r_j (cos(t_j + phi_j) u_j + sin(t_j + phi_j) w_j) + const``
    and the planted planes ``[4, 2, d]`` (u_j, w_j)."""
    dirs = orthonormal(2 * len(PLANTED), D16, seed=3).view(len(PLANTED), 2, D16)
    grid = torch.arange(P13)
    a, b = grid.repeat_interleave(P13), grid.repeat(P13)
    freq = torch.tensor([k for k, *_ in PLANTED])
    var = torch.tensor([v for _, v, *_ in PLANTED])
    t = plane_angles(a, b, P13, freq, var)  # [p^2, 4]
    x = torch.full((P13 * P13, D16), 0.3, dtype=torch.float64)
    for j, (_, _, r, phi) in enumerate(PLANTED):
        x += r * (torch.cos(t[:, j] + phi)[:, None] * dirs[j, 0])
        x += r * (torch.sin(t[:, j] + phi)[:, None] * dirs[j, 1])
    return x.view(P13, P13, D16), dirs


def test_plane_angles_known_values() -> None:
    # a=3, b=5, p=13, k=2: a -> 6, b -> 10, sum 8 -> 16 = 3, diff (3-5) mod 13 = 11 -> 22 = 9
    got = plane_angles(
        torch.tensor([3]), torch.tensor([5]), 13, torch.tensor([2, 2, 2, 2]), torch.arange(4)
    )
    assert got.dtype == torch.float64 and got.shape == (1, 4)
    expected = torch.tensor([[6, 10, 3, 9]], dtype=torch.float64) * 2 * math.pi / 13
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-15)
    full = plane_angles(torch.arange(13), torch.zeros(13, dtype=torch.int64), 13,
                        torch.tensor([6]), torch.tensor([A]))  # fmt: skip
    assert float(full.min()) >= 0.0 and float(full.max()) < 2 * math.pi


@pytest.mark.parametrize(
    ("a", "b", "p", "k", "v"),
    [
        ([13], [0], 13, [1], [0]),  # a out of range
        ([0], [-1], 13, [1], [0]),  # b out of range
        ([0], [0], 13, [0], [0]),  # frequency 0
        ([0], [0], 13, [7], [0]),  # frequency above (p - 1) / 2
        ([0], [0], 13, [1], [4]),  # no variable 4
        ([0, 1], [0], 13, [1], [0]),  # a and b differ in length
        ([0], [0], 2, [1], [0]),  # p < 3
    ],
)
def test_plane_angles_rejects(a: list, b: list, p: int, k: list, v: list) -> None:
    with pytest.raises(ValueError):
        plane_angles(torch.tensor(a), torch.tensor(b), p, torch.tensor(k), torch.tensor(v))


def test_modular_planes_finds_the_planted_planes() -> None:
    x, dirs = planted_grid()
    planes = modular_planes(x, keys=[5, 2, 3, 4])
    assert isinstance(planes, Planes)
    # key order, then VARIABLES order; the weak (4, b) plane is below min_share
    assert planes.frequency.tolist() == [5, 2, 3]
    assert planes.variable.tolist() == [A, SUM, DIFF]
    assert planes.basis.dtype == torch.float64 and planes.basis.shape == (3, 2, D16)
    assert planes.frequency.dtype == torch.int64 and planes.variable.dtype == torch.int64
    radii2 = torch.tensor([r * r for *_, r, _ in PLANTED], dtype=torch.float64)
    expected = radii2[[1, 0, 2]] / radii2.sum()  # planted order -> (5 a, 2 sum, 3 diff)
    torch.testing.assert_close(planes.share, expected, rtol=0, atol=1e-12)
    assert float(planes.share.sum()) == pytest.approx(1.0 - 0.0025 / 7.2525, abs=1e-12)

    for q, j in enumerate([1, 0, 2]):
        basis, planted = planes.basis[q], dirs[j]
        torch.testing.assert_close(basis @ basis.T, torch.eye(2, dtype=torch.float64))
        # each basis row lies in the planted plane ...
        assert (basis @ planted.T).pow(2).sum(dim=1).min() > 1 - 1e-12
        # ... row 0 at the planted phase offset: cos(phi) u + sin(phi) w
        phi = PLANTED[j][3]
        row0 = math.cos(phi) * planted[0] + math.sin(phi) * planted[1]
        assert float(basis[0] @ row0) > 0.999
        # each input's point has angle plane_angles on the plane
        xc = (x - x.mean(dim=(0, 1))).reshape(-1, D16)
        c = xc @ basis.T
        got = torch.atan2(c[:, 1], c[:, 0])
        grid = torch.arange(P13)
        want = plane_angles(
            grid.repeat_interleave(P13), grid.repeat(P13), P13,
            planes.frequency[q : q + 1], planes.variable[q : q + 1],
        )[:, 0]  # fmt: skip
        assert float(circular_diff(got, want).abs().max()) < 1e-9


def test_modular_planes_on_a_sheared_ellipse() -> None:
    # x = r1 cos(t) u + r2 sin(t) (cos(beta) u + sin(beta) w): c_cos is along u, c_sin
    # is not orthogonal to it; Gram-Schmidt gives (u, w), the share is (r1^2 + r2^2) / total
    p, d, r1, r2, beta = 11, 5, 2.0, 0.5, 0.6
    u, w = orthonormal(2, d, seed=8)
    grid = torch.arange(p)
    t = plane_angles(grid.repeat_interleave(p), grid.repeat(p), p,
                     torch.tensor([3]), torch.tensor([B]))[:, 0]  # fmt: skip
    x = r1 * torch.cos(t)[:, None] * u + r2 * torch.sin(t)[:, None] * (
        math.cos(beta) * u + math.sin(beta) * w
    )
    other = torch.cos(plane_angles(grid.repeat_interleave(p), grid.repeat(p), p,
                                   torch.tensor([1]), torch.tensor([A]))[:, 0])  # fmt: skip
    x = x + 1.0 * other[:, None] * orthonormal(3, d, seed=8)[2]  # a line at (1, a)
    planes = modular_planes(x.view(p, p, d), keys=[3, 1], min_share=0.5)
    assert planes.frequency.tolist() == [3] and planes.variable.tolist() == [B]
    # energies: the plane r1^2 + r2^2, the line 1, each times p^2 / 2
    assert float(planes.share[0]) == pytest.approx((r1**2 + r2**2) / (r1**2 + r2**2 + 1.0))
    torch.testing.assert_close(planes.basis[0], torch.stack([u, w]), rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match=r"\(k=1, v=a\) is degenerate"):
        modular_planes(x.view(p, p, d), keys=[3, 1])


def test_modular_planes_keeps_only_the_planted_planes_at_any_share() -> None:
    x, _ = planted_grid()
    planes = modular_planes(x, keys=[1, 2, 3, 4, 5, 6], min_share=1e-12)
    got = sorted(zip(planes.frequency.tolist(), planes.variable.tolist(), strict=True))
    assert got == sorted((k, v) for k, v, *_ in PLANTED)
    assert float(planes.share.sum()) == pytest.approx(1.0, abs=1e-12)


def test_modular_planes_phase_of_an_atom_is_its_angle() -> None:
    x, _ = planted_grid()
    planes = modular_planes(x, keys=[2, 3, 5])
    atom = on_plane(planes.basis[1], [250.0])
    cov = plane_coverage(atom, planes.basis)
    assert cov["per_plane"][1]["phases_deg"] == pytest.approx([250.0], abs=1e-9)


def test_modular_planes_empty() -> None:
    x, _ = planted_grid()
    planes = modular_planes(x, keys=[1, 6])
    assert planes.basis.shape == (0, 2, D16) and planes.basis.dtype == torch.float64
    assert planes.frequency.shape == (0,) and planes.frequency.dtype == torch.int64
    assert planes.variable.shape == (0,) and planes.share.dtype == torch.float64


def test_modular_planes_rejects() -> None:
    x, _ = planted_grid()
    with pytest.raises(ValueError, match="grid"):
        modular_planes(x[:, :12], keys=[2])
    for key in (0, 7):
        with pytest.raises(ValueError, match=str(key)):
            modular_planes(x, keys=[key])
    with pytest.raises(ValueError, match="repeated"):
        modular_planes(x, keys=[2, 2])
    with pytest.raises(ValueError, match="variance"):
        modular_planes(torch.zeros(P13, P13, D16), keys=[2])
    with pytest.raises(ValueError, match="variance"):
        modular_planes(torch.full((P13, P13, D16), 2.0), keys=[2])
    with pytest.raises(ValueError, match="min_share"):
        modular_planes(x, keys=[2], min_share=0.0)
    with pytest.raises(ValueError, match="finite"):
        modular_planes(torch.where(x > 1, float("nan"), x), keys=[2])
    # a line (only the cos function, along one direction) is not a plane
    grid = torch.arange(P13, dtype=torch.float64)
    line = torch.cos(2 * math.pi * grid / P13)[:, None, None] * torch.ones(1, P13, 3)
    with pytest.raises(ValueError, match="degenerate"):
        modular_planes(line, keys=[1])


def test_modular_planes_is_the_same_bit_for_bit_at_any_thread_count() -> None:
    x = torch.randn(61, 61, 48, generator=gen(9), dtype=torch.float64)
    threads = torch.get_num_threads()
    try:
        runs = []
        for n in (1, 3, 8):
            torch.set_num_threads(n)
            runs.append(modular_planes(x, keys=[1, 7, 30], min_share=1e-9))
    finally:
        torch.set_num_threads(threads)
    assert runs[0].basis.shape == (12, 2, 48)
    for run in runs[1:]:
        assert torch.equal(run.basis, runs[0].basis) and torch.equal(run.share, runs[0].share)


# ----------------------------------------------------------------------------- coverage


def three_planes(d: int = 12, seed: int = 1) -> torch.Tensor:
    return orthonormal(6, d, seed).view(3, 2, d)


def test_plane_coverage_even_tiling() -> None:
    planes = three_planes()
    atoms = 2.5 * on_plane(planes[0], [10, 70, 130, 190, 250, 310])  # scale is irrelevant
    cov = plane_coverage(atoms, planes)
    first = cov["per_plane"][0]
    assert first["n_atoms"] == 6
    assert first["coverage"] == pytest.approx(1.0, abs=1e-12)
    assert first["max_gap_deg"] == pytest.approx(60.0, abs=1e-9)
    assert first["evenness"] == pytest.approx(1.0, abs=1e-6)
    assert first["covers"] is True
    assert first["phases_deg"] == pytest.approx([10, 70, 130, 190, 250, 310], abs=1e-9)
    for other in cov["per_plane"][1:]:
        assert other == {
            "n_atoms": 0,
            "coverage": 0.0,
            "max_gap_deg": None,
            "covers": False,
            "evenness": None,
            "phases_deg": [],
        }
    assert cov["mean_coverage"] == pytest.approx(1 / 3, abs=1e-12)
    assert (cov["n_live"], cov["n_assigned"], cov["assigned_fraction"]) == (6, 6, 1.0)


def test_plane_coverage_one_phase_and_few_atoms() -> None:
    planes = three_planes()
    same = plane_coverage(on_plane(planes[1], [40, 40, 40]), planes)["per_plane"][1]
    assert same["coverage"] == pytest.approx(0.5, abs=1e-12)  # three copies span one line
    assert same["max_gap_deg"] == pytest.approx(360.0) and same["covers"] is False
    assert same["evenness"] == pytest.approx(1 / 3)
    one = plane_coverage(on_plane(planes[1], [-30]), planes)["per_plane"][1]
    assert one["coverage"] == pytest.approx(0.5, abs=1e-12)
    assert one["phases_deg"] == pytest.approx([330.0], abs=1e-9)
    assert one["max_gap_deg"] == 360.0 and one["evenness"] == 1.0 and one["covers"] is False
    # two orthogonal atoms span the plane but leave a 270 degree gap
    two = plane_coverage(on_plane(planes[1], [0, 90]), planes)["per_plane"][1]
    assert two["coverage"] == pytest.approx(1.0, abs=1e-12)
    assert two["max_gap_deg"] == pytest.approx(270.0) and two["covers"] is False
    assert two["evenness"] == pytest.approx(180 / 270)
    # an antipodal pair spans one line, yet three atoms at 120 degrees cover the circle
    pair = plane_coverage(on_plane(planes[1], [0, 180]), planes)["per_plane"][1]
    assert pair["coverage"] == pytest.approx(0.5, abs=1e-12) and pair["covers"] is False
    tri = plane_coverage(on_plane(planes[1], [5, 125, 245]), planes)["per_plane"][1]
    assert tri["covers"] is True and tri["max_gap_deg"] == pytest.approx(120.0)


def test_plane_coverage_parallel_up_to_rounding_is_one_direction() -> None:
    planes = three_planes()
    near = plane_coverage(on_plane(planes[0], [40, 40 + 1e-6]), planes)["per_plane"][0]
    assert near["coverage"] == pytest.approx(0.5, abs=1e-9)  # sigma_2 / sigma_1 < RANK_TOL
    apart = plane_coverage(on_plane(planes[0], [40, 40.01]), planes)["per_plane"][0]
    assert apart["coverage"] == pytest.approx(1.0, abs=1e-6)


def svd_coverage(atoms: torch.Tensor, plane: torch.Tensor) -> float:
    unit = atoms / atoms.norm(dim=1, keepdim=True)
    v = torch.linalg.svd(unit, full_matrices=False).Vh[:2]
    return float((plane @ v.T).pow(2).sum()) / 2


def test_plane_coverage_of_atoms_partly_out_of_the_plane() -> None:
    # three atoms at 120 degrees with share 0.95 in the plane, the rest along orthogonal
    # directions: Gram 0.95 C + 0.05 I, C = cos of phase differences (eigenvalues 1.5, 1.5,
    # 0), so the top-2 span has cos^2 = 0.95 * 1.5 / (0.95 * 1.5 + 0.05) with the plane
    basis = orthonormal(7, 7, seed=2)
    planes = basis[:4].view(2, 2, 7)
    off = basis[4:]
    atoms = math.sqrt(0.95) * on_plane(planes[0], [0, 120, 240]) + math.sqrt(0.05) * off
    cov = plane_coverage(atoms, planes)["per_plane"][0]
    assert cov["n_atoms"] == 3
    assert cov["coverage"] == pytest.approx(1.425 / 1.475, abs=1e-12)
    # uneven phases, fewer and more atoms than dimensions: against torch's SVD
    gen_ = gen(4)
    for n in (3, 5, 12):
        phases = (360 * torch.rand(n, generator=gen_, dtype=torch.float64)).tolist()
        noise = 0.15 * torch.randn(n, 3, generator=gen_, dtype=torch.float64) @ off
        atoms = on_plane(planes[1], phases) + noise
        got = plane_coverage(atoms, planes, min_share=0.5)["per_plane"][1]
        assert got["n_atoms"] == n
        assert got["coverage"] == pytest.approx(svd_coverage(atoms, planes[1]), abs=1e-10)
        assert got["coverage"] < 1 - 1e-3


def test_plane_coverage_dead_and_off_plane_atoms() -> None:
    planes = three_planes()
    tiling = on_plane(planes[2], [0, 90, 180, 270])
    base = plane_coverage(tiling, planes)
    # a dead atom inside plane 0 changes nothing
    dead = on_plane(planes[0], [15])
    live = torch.tensor([True, True, False, True, True])
    with_dead = plane_coverage(torch.cat([tiling[:2], dead, tiling[2:]]), planes, live=live)
    assert with_dead == base
    # off-plane atoms: share 0.85 in plane 0 (< 0.9), half in two planes, zero: unassigned;
    # share 0.95 in plane 1: assigned there
    off = torch.stack(
        [
            math.sqrt(0.85) * planes[0, 0] + math.sqrt(0.15) * planes[1, 1],
            (planes[0, 0] + planes[1, 0]) / math.sqrt(2),
            torch.zeros(12, dtype=torch.float64),
            math.sqrt(0.95) * planes[1, 1] + math.sqrt(0.05) * planes[2, 0],
        ]
    )
    cov = plane_coverage(torch.cat([tiling, off]), planes)
    assert [r["n_atoms"] for r in cov["per_plane"]] == [0, 1, 4]
    assert cov["per_plane"][1]["phases_deg"] == pytest.approx([90.0], abs=1e-9)
    assert cov["per_plane"][1]["coverage"] == pytest.approx(0.95 / 2, abs=1e-12)
    assert (cov["n_live"], cov["n_assigned"]) == (8, 5)
    assert cov["assigned_fraction"] == pytest.approx(5 / 8)
    # a lower threshold takes in the 0.85 atom
    assert plane_coverage(torch.cat([tiling, off]), planes, min_share=0.8)["n_assigned"] == 6
    # no live atom
    none = plane_coverage(tiling, planes, live=torch.zeros(4, dtype=torch.bool))
    assert (none["n_live"], none["n_assigned"], none["assigned_fraction"]) == (0, 0, 0.0)
    assert none["mean_coverage"] == 0.0


def test_plane_coverage_rejects() -> None:
    planes = three_planes()
    atoms = on_plane(planes[0], [0, 90])
    with pytest.raises(ValueError, match="orthonormal"):
        plane_coverage(atoms, 2 * planes)
    with pytest.raises(ValueError, match="P >= 1"):
        plane_coverage(atoms, planes[:0])
    with pytest.raises(ValueError, match="d_in"):
        plane_coverage(atoms[:, :10], planes)
    with pytest.raises(ValueError, match="live mask"):
        plane_coverage(atoms, planes, live=torch.ones(3, dtype=torch.bool))
    with pytest.raises(ValueError, match="min_share"):
        plane_coverage(atoms, planes, min_share=0.0)


# ----------------------------------------------------------------------------- rotation


def rotate_within(atoms: torch.Tensor, planes: torch.Tensor, degrees: float) -> torch.Tensor:
    """Rotate every plane's component of the atoms by ``degrees``; the rest is kept."""
    c, s = math.cos(math.radians(degrees)), math.sin(math.radians(degrees))
    out = atoms.clone()
    for plane in planes:
        x, y = atoms @ plane[0], atoms @ plane[1]
        out += ((c * x - s * y) - x)[:, None] * plane[0] + ((s * x + c * y) - y)[:, None] * plane[1]
    return out


@pytest.mark.parametrize("degrees", [17.0, 30.0])
def test_rotation_within_planes_is_identical_for_planes_and_not_for_pwmcc(degrees: float) -> None:
    planes = three_planes(d=16, seed=5)
    dict_a = torch.cat([on_plane(planes[q], [off, off + 120, off + 240])
                        for q, off in enumerate([0.0, 33.0, 71.0])])  # fmt: skip
    dict_b = rotate_within(dict_a, planes, degrees)
    cov_a, cov_b = plane_coverage(dict_a, planes), plane_coverage(dict_b, planes)
    for ra, rb in zip(cov_a["per_plane"], cov_b["per_plane"], strict=True):
        assert ra["n_atoms"] == rb["n_atoms"] == 3
        assert ra["coverage"] == pytest.approx(1.0, abs=1e-12)
        assert rb["coverage"] == pytest.approx(ra["coverage"], abs=1e-12)
        assert rb["max_gap_deg"] == pytest.approx(ra["max_gap_deg"], abs=1e-9)
        assert rb["evenness"] == pytest.approx(ra["evenness"], abs=1e-9)
    agreement = plane_agreement(dict_a, None, dict_b, None, planes)
    assert agreement["per_plane"] == pytest.approx([1.0, 1.0, 1.0], abs=1e-12)
    assert agreement["mean_agreement"] == pytest.approx(1.0, abs=1e-12)
    # |cos| sees atoms 60 degrees apart (mod 180): each best match is off by the rotation
    # folded into [0, 30]
    folded = min(degrees % 60, 60 - degrees % 60)
    score = pwmcc(dict_a, dict_b)
    assert score == pytest.approx(math.cos(math.radians(folded)), abs=1e-7)
    assert score < 0.96


def test_plane_agreement_partial_and_empty_planes() -> None:
    planes = three_planes()
    dict_a = torch.cat([on_plane(planes[0], [0, 90]), on_plane(planes[1], [20])])
    dict_b = torch.cat([on_plane(planes[0], [45]), on_plane(planes[1], [20 + 60])])
    got = plane_agreement(dict_a, None, dict_b, None, planes)
    # plane 0: full plane vs one line -> 1/2; plane 1: lines 60 degrees apart -> cos^2/2;
    # plane 2: nobody
    assert got["per_plane"][0] == pytest.approx(0.5, abs=1e-12)
    assert got["per_plane"][1] == pytest.approx(0.25 / 2, abs=1e-12)
    assert got["per_plane"][2] is None
    assert got["mean_agreement"] == pytest.approx((0.5 + 0.125) / 2, abs=1e-12)
    # only seed A has atoms in plane 0 once B's are dead -> 0
    dead_b = torch.tensor([False, True])
    got = plane_agreement(dict_a, None, dict_b, dead_b, planes)
    assert got["per_plane"][0] == 0.0
    # nothing live anywhere -> all None
    none = torch.zeros(3, dtype=torch.bool)
    got = plane_agreement(dict_a, none, dict_b, torch.zeros(2, dtype=torch.bool), planes)
    assert got == {"per_plane": [None, None, None], "mean_agreement": None}


# ----------------------------------------------------------------------------- arcs


def arc_r(alpha: float) -> float:
    s, c = math.sin(alpha), math.cos(alpha)
    return (alpha / 2 + math.sin(2 * alpha) / 4 - c * s) / (s - alpha * c)


def test_arc_formula_known_values() -> None:
    assert arc_r(math.pi / 2) == pytest.approx(math.pi / 4)
    assert arc_r(0.05) == pytest.approx(1.0, abs=1e-3)


@pytest.mark.parametrize("alpha", [math.pi / 8, math.pi / 4, math.pi / 2, 2 * math.pi / 3])
def test_arc_concentration_of_an_ideal_arc(alpha: float) -> None:
    n = 113 * 8
    theta = 2 * math.pi * torch.arange(n, dtype=torch.float64) / n
    phi = 1.234
    acts = torch.relu(torch.cos(theta - phi) - math.cos(alpha))[:, None]
    dense = (1 + torch.cos(theta))[:, None]
    r = arc_concentration(torch.cat([acts, dense, torch.zeros(n, 1)], dim=1), theta[:, None])
    assert r.shape == (3, 1) and r.dtype == torch.float64
    assert float(r[0, 0]) == pytest.approx(arc_r(alpha), abs=1e-3)
    assert float(r[1, 0]) == pytest.approx(0.5, abs=1e-12)
    assert float(r[2, 0]) == 0.0  # never fires


def test_arc_assignment_picks_the_arc_plane() -> None:
    p = 113
    grid = torch.arange(p)
    a, b = grid.repeat_interleave(p), grid.repeat(p)
    angles = plane_angles(a, b, p, torch.tensor([1, 2, 3]), torch.tensor([SUM, A, DIFF]))
    arc = torch.relu(torch.cos(angles[:, 1] - 0.4) - math.cos(math.pi / 4))
    acts = torch.stack(
        [torch.zeros(p * p), arc, torch.full((p * p,), 0.7, dtype=torch.float64)], dim=1
    )
    plane, r_max = arc_assignment(acts, angles)
    assert plane.dtype == torch.int64 and r_max.dtype == torch.float64
    assert plane.tolist() == [-1, 1, -1]
    assert float(r_max[1]) == pytest.approx(arc_r(math.pi / 4), abs=1e-3)
    assert float(r_max[0]) == 0.0 and float(r_max[2]) < 1e-12
    r = arc_concentration(acts, angles)
    assert float(r[1, 0]) < 1e-9 and float(r[1, 2]) < 1e-9  # other frequencies: nothing
    # a stricter threshold drops it; no plane at all: -1
    assert arc_assignment(acts, angles, min_concentration=0.99)[0].tolist() == [-1, -1, -1]
    assert arc_assignment(acts, angles[:, :0])[0].tolist() == [-1, -1, -1]
    # at threshold 0 a constant latent takes its best plane, a silent one still does not
    at_zero = arc_assignment(acts, angles, min_concentration=0.0)[0].tolist()
    assert at_zero[0] == -1 and at_zero[2] >= 0


def test_arc_rejects() -> None:
    with pytest.raises(ValueError, match="non-negative"):
        arc_concentration(torch.tensor([[1.0], [-0.5]]), torch.zeros(2, 1))
    with pytest.raises(ValueError, match="angles"):
        arc_concentration(torch.ones(2, 1), torch.zeros(3, 1))
    with pytest.raises(ValueError, match="min_concentration"):
        arc_assignment(torch.ones(2, 1), torch.zeros(2, 1), min_concentration=1.5)


# ----------------------------------------------------------------------------- partitions


def test_input_partition_ties_and_silent_rows() -> None:
    acts = torch.tensor(
        [[0.0, 2.0, 2.0, 1.0], [0.0, 0.0, 0.0, 0.0], [3.0, 0.0, 0.0, 3.0], [0.0, 0.0, 0.0, 0.1]]
    )
    labels = input_partition(acts)
    assert labels.dtype == torch.int64
    assert labels.tolist() == [1, -1, 0, 3]
    with pytest.raises(ValueError, match="non-negative"):
        input_partition(-acts)


def test_partition_ami() -> None:
    rng = np.random.default_rng(0)
    labels = torch.from_numpy(rng.integers(-1, 7, size=5000))
    relabelled = (labels + 1) * 10 % 83  # a bijection of -1..6
    assert len(relabelled.unique()) == len(labels.unique())
    assert partition_ami(labels, relabelled) == pytest.approx(1.0, abs=1e-12)
    other = torch.from_numpy(rng.integers(0, 8, size=5000))
    assert abs(partition_ami(labels, other)) < 0.02
    with pytest.raises(ValueError, match="length"):
        partition_ami(labels, labels[:-1])


def test_dictionary_codes() -> None:
    x = torch.tensor([[1.0, 2.0], [3.0, 0.0], [2.0, 4.0]])  # mean (2, 2)
    atoms = torch.tensor([[5.0, 0.0], [0.0, -1.0], [0.0, 0.0]])
    codes = dictionary_codes(x, atoms)
    assert codes.dtype == torch.float64 and codes.shape == (3, 3)
    expected = torch.tensor([[0.0, 0.0, 0.0], [1.0, 2.0, 0.0], [0.0, 0.0, 0.0]])
    torch.testing.assert_close(codes, expected.double())
    # a constant shift of the rows changes nothing
    torch.testing.assert_close(dictionary_codes(x + 7.0, atoms), codes)
    assert input_partition(codes).tolist() == [-1, 1, -1]
    with pytest.raises(ValueError, match="d"):
        dictionary_codes(x, atoms[:, :1])


# ----------------------------------------------------------------------------- plane_stability


def arc_dictionary(truth: dict, per_plane: int, offset_deg: float, d: int) -> torch.Tensor:
    """``per_plane`` atoms evenly around each plane's circle, rotated by ``offset_deg``."""
    rows = []
    for q in range(truth["planes"].shape[0]):
        phases = [offset_deg + 360.0 * i / per_plane for i in range(per_plane)]
        rows.append(on_plane(truth["planes"][q].double(), phases))
    return torch.cat(rows).to(torch.float64)


def test_plane_stability_on_planted_circles_against_its_baselines() -> None:
    """Planted circles (the circles control) and seeds whose dictionaries tile each circle
    with arc latents, each seed rotated differently within the planes: the plane metrics
    see the same solution in every seed (coverage, agreement, arcs, assignments all 1)
    while PWMCC does not; random atoms in the data subspace lie in no plane."""
    from husai.baselines import principal_basis
    from husai.config import CirclesParams
    from husai.domains import circles_domain
    from husai.planes import plane_stability

    dom = circles_domain(CirclesParams(n=339, d_in=16, points=113, frequencies=(3, 7, 10)))
    x, truth = dom.x.double(), dom.truth
    seeds = [1, 2, 3]
    decs = [arc_dictionary(truth, 8, 11.0 * s, 16) for s in seeds]
    # arc latents: relu(<atom, x> - cos 30 deg): each fires on a 60-degree arc of its circle
    codes = [torch.relu(x @ d.T - math.cos(math.radians(30))) for d in decs]
    lives = [(c > 0).any(0) for c in codes]
    assert all(bool(m.all()) for m in lives)
    basis = principal_basis(x, 0.99)
    out = plane_stability(decs, lives, codes, x, truth, seeds, basis, n_boot=50)
    for key in ("coverage", "assigned_fraction", "covered_planes", "arc_fraction"):
        assert out[key]["mean"] == pytest.approx(1.0, abs=1e-6), key
    assert out["assignment_agreement"]["mean"] == pytest.approx(1.0)
    assert out["evenness"]["mean"] == pytest.approx(1.0, abs=1e-6)
    assert out["plane_agreement"]["mean"] == pytest.approx(1.0, abs=1e-6)
    assert pwmcc(decs[0], decs[1]) < 0.99  # the same planes, different atoms
    # the partition by most active latent moves with the rotation: AMI < 1; the same
    # dictionary in every seed partitions the inputs identically: AMI 1
    assert 0.0 < out["partition_ami"]["mean"] < 0.9
    same = plane_stability([decs[0]] * 3, lives, [codes[0]] * 3, x, truth, seeds, basis, n_boot=9)
    assert same["partition_ami"]["mean"] == pytest.approx(1.0)
    # random atoms in the 6-dim data span: almost none has 0.9 of its norm in one plane
    assert out["subspace_assigned_fraction"]["mean"] < 0.3
    assert out["subspace_plane_agreement"]["mean"] < out["plane_agreement"]["mean"]
    assert out["subspace_coverage"]["mean"] < 0.9
    assert [p["frequency"] for p in out["planes"]] == [3, 7, 10]
    assert [p["variable"] for p in out["planes"]] == ["sum"] * 3
    assert [p["share"] for p in out["planes"]] == pytest.approx([1 / 3] * 3)
    assert [p["n_atoms"]["mean"] for p in out["per_plane"]] == [8.0, 8.0, 8.0]
    assert set(out["per_seed"]) == {"1", "2", "3"}


def test_plane_stability_sees_a_seed_that_misses_a_plane() -> None:
    from husai.baselines import principal_basis
    from husai.config import CirclesParams
    from husai.domains import circles_domain
    from husai.planes import plane_stability

    dom = circles_domain(
        CirclesParams(n=226, d_in=12, points=113, frequencies=(2, 5), radii=(1.0, 1.0))
    )
    x, truth = dom.x.double(), dom.truth
    full = arc_dictionary(truth, 6, 0.0, 12)
    half = full[:6]  # the first plane only
    decs = [full, half]
    codes = [torch.relu(x @ d.T - 0.5) for d in decs]
    lives = [(c > 0).any(0) for c in codes]
    out = plane_stability(decs, lives, codes, x, truth, [0, 1], principal_basis(x, 0.99), n_boot=10)
    assert out["per_seed"]["0"]["coverage"] == pytest.approx(1.0)
    assert out["per_seed"]["1"]["coverage"] == pytest.approx(0.5)  # one of two planes
    assert out["per_plane"][0]["agreement"]["mean"] == pytest.approx(1.0)
    assert out["per_plane"][1]["agreement"]["mean"] == 0.0  # only one seed uses plane 2
    assert out["per_plane"][1]["covers"] == 0.5


def test_rotate_within_planes_turns_the_phase_and_keeps_the_rest() -> None:
    from husai.planes import rotate_within_planes

    planes = three_planes(d=12, seed=4)
    off = torch.zeros(12, dtype=torch.float64)
    off[11] = 0.3  # a component outside every plane (three_planes spans 6 of 12 dims)
    off = off - (planes.reshape(-1, 12).T @ (planes.reshape(-1, 12) @ off))
    atom = on_plane(planes[1], [40.0])[0] * 0.8 + on_plane(planes[2], [100.0])[0] * 0.5 + off
    turned = rotate_within_planes(atom[None], planes, torch.tensor([0.3, 0.5, -1.0]))[0]

    def phase(v: torch.Tensor, q: int) -> float:
        return math.degrees(math.atan2(float(planes[q, 1] @ v), float(planes[q, 0] @ v)))

    assert phase(turned, 1) == pytest.approx(40.0 + math.degrees(0.5))
    assert phase(turned, 2) == pytest.approx(100.0 - math.degrees(1.0))
    assert float(turned.norm()) == pytest.approx(float(atom.norm()))
    rest = turned - planes.reshape(-1, 12).T @ (planes.reshape(-1, 12) @ turned)
    assert torch.allclose(rest, off, atol=1e-12)
    with pytest.raises(ValueError, match="one angle per plane"):
        rotate_within_planes(atom[None], planes, torch.zeros(2))


def test_the_rotation_null_is_below_seeds_that_agree_on_the_phases() -> None:
    """Seeds with the very same atom on each circle score live PWMCC 1; the rotation null
    (each seed's atoms turned by a random shift of the inputs, every plane at once) is
    clearly lower: one atom per plane turned by an angle spread over the circle has
    |cos| about 2 / pi to its partner on average."""
    from husai.baselines import principal_basis
    from husai.config import CirclesParams
    from husai.domains import circles_domain
    from husai.groundtruth import live_stability
    from husai.planes import plane_stability

    dom = circles_domain(CirclesParams(n=339, d_in=16, points=113, frequencies=(3, 7, 10)))
    x, truth = dom.x.double(), dom.truth
    seeds = [1, 2, 3, 4, 5]
    basis = principal_basis(x, 0.99)
    decs = [arc_dictionary(truth, 1, 20.0, 16)] * len(seeds)
    codes = [torch.relu(x @ d.T - 0.5) for d in decs]
    lives = [(c > 0).any(0) for c in codes]
    out = plane_stability(decs, lives, codes, x, truth, seeds, basis, encoders=decs, n_boot=20)
    live = live_stability(decs, decs, lives, x, seeds, n_boot=20)
    assert live["live_pwmcc"]["mean"] == pytest.approx(1.0)
    assert live["live_shared_fraction"]["mean"] == pytest.approx(1.0)
    assert 0.3 < out["rotation_live_pwmcc"]["mean"] < 0.85  # about 2 / pi
    assert out["rotation_live_shared_fraction"]["mean"] < 0.9
    # the plane measures do not see the rotation: coverage as the trained atoms'
    assert out["coverage"]["mean"] == pytest.approx(0.5, abs=1e-6)  # one atom: half a plane
