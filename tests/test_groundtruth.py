"""husai.groundtruth on hand-computed cases, and against SAELens's synthetic metrics."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr

from husai.baselines import isotropic_baseline, principal_basis
from husai.groundtruth import (
    distinct_directions,
    feature_recovery,
    live_baseline_dictionaries,
    live_stability,
    plane_recovery,
    sae_live_masks,
    stability_predicts_recovery,
)
from husai.sae import BatchedSAE, SAEConfig
from husai.stats import seed_stats


def randn(*shape: int, seed: int) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def eye(d: int) -> torch.Tensor:
    return torch.eye(d, dtype=torch.float64)


# ----------------------------------------------------------------------------- feature recovery


@pytest.mark.parametrize("n_atoms", [30, 8])  # more and fewer atoms than features
def test_feature_recovery_is_saelens_mcc_and_uniqueness(n_atoms: int) -> None:
    synthetic = pytest.importorskip("sae_lens.synthetic")
    atoms, feats = randn(n_atoms, 10, seed=1), randn(12, 10, seed=2)
    got = feature_recovery(atoms, feats)
    assert got["mcc"] == pytest.approx(
        synthetic.mean_correlation_coefficient(atoms, feats), abs=1e-6
    )
    assert got["uniqueness"] == pytest.approx(synthetic.feature_uniqueness(atoms, feats), abs=1e-6)
    assert got["n_live"] == n_atoms and got["n_features"] == 12


def test_permuted_sign_flipped_features_are_recovered_exactly() -> None:
    feats = randn(6, 10, seed=3)
    perm = torch.tensor([3, 0, 5, 1, 4, 2])
    signs = torch.tensor([1.0, -1.0, -1.0, 1.0, -1.0, 1.0])[:, None]
    atoms = feats[perm] * signs * 2.5  # scale does not matter either
    got = feature_recovery(atoms, feats)
    assert got["mcc"] == pytest.approx(1.0, abs=1e-7)
    assert got["recovered_fraction"] == 1.0
    assert got["uniqueness"] == 1.0


def test_mask_removing_half_the_atoms_halves_recovery() -> None:
    feats = eye(6)  # orthonormal features
    atoms = -feats[torch.tensor([4, 2, 0, 5, 3, 1])]
    live = torch.tensor([True, False, True, False, True, False])  # keeps features 4, 0, 3
    got = feature_recovery(atoms, feats, live)
    assert got == {
        "mcc": 1.0,  # the 3 live atoms match 3 features perfectly
        "recovered_fraction": 0.5,
        "uniqueness": 1.0,
        "n_live": 3,
        "n_features": 6,
    }
    assert feature_recovery(atoms, feats, ~live)["recovered_fraction"] == 0.5
    assert feature_recovery(atoms, feats, torch.zeros(6, dtype=torch.bool)) == {
        "mcc": 0.0,
        "recovered_fraction": 0.0,
        "uniqueness": 0.0,
        "n_live": 0,
        "n_features": 6,
    }


def test_dead_atoms_never_count_as_features() -> None:
    feats = eye(4)
    atoms = torch.stack([feats[0], feats[1], randn(4, seed=5).double(), randn(4, seed=6).double()])
    live = torch.tensor([True, True, False, False])
    before = feature_recovery(atoms, feats, live)
    atoms[2], atoms[3] = feats[2], feats[3]  # dead latents pointing at the missing features
    assert feature_recovery(atoms, feats, live) == before
    assert before["recovered_fraction"] == 0.5
    assert feature_recovery(atoms, feats)["recovered_fraction"] == 1.0  # without the mask


def test_duplicate_atoms_lower_uniqueness_and_mcc() -> None:
    feats = eye(4)
    atoms = torch.stack([feats[0], -feats[0], feats[1]])
    got = feature_recovery(atoms, feats)
    assert got["uniqueness"] == pytest.approx(2 / 3)  # 3 atoms track 2 features
    assert got["mcc"] == pytest.approx(2 / 3)  # the copy is matched to an orthogonal feature
    assert got["recovered_fraction"] == 0.5


def test_recovery_threshold() -> None:
    # |cos| 0.9 (cosines carry husai.stability's fixed-point error, below 1e-8)
    feats = eye(3)[:1]
    atom = torch.tensor([[0.9, math.sqrt(1 - 0.81), 0.0]], dtype=torch.float64)
    assert feature_recovery(atom, feats, threshold=0.8999)["recovered_fraction"] == 1.0
    assert feature_recovery(atom, feats, threshold=0.9001)["recovered_fraction"] == 0.0


# ----------------------------------------------------------------------------- plane recovery


def planes_xyz() -> torch.Tensor:
    e = eye(7)
    return torch.stack([torch.stack([e[2 * p], e[2 * p + 1]]) for p in range(3)])  # [3, 2, 7]


def plane_atoms() -> torch.Tensor:
    e = eye(7)
    t = 0.3
    return torch.stack(
        [
            3.0 * (math.cos(t) * e[0] + math.sin(t) * e[1]),  # in plane 0 (share 1)
            -e[2],  # in plane 1
            (e[0] + e[2]) / math.sqrt(2),  # half in plane 0, half in plane 1: in neither
            math.sqrt(0.95) * e[3] + math.sqrt(0.05) * e[6],  # 95% in plane 1
            e[6],  # in no plane
        ]
    )


def test_plane_recovery_known_answer() -> None:
    got = plane_recovery(plane_atoms(), planes_xyz())
    assert got == {
        "in_plane_fraction": 3 / 5,
        "planes_covered": 2 / 3,
        "n_in_plane": 3,
        "n_live": 5,
        "n_planes": 3,
    }
    live = torch.tensor([False, True, True, True, True])  # plane 0's only atom is dead
    masked = plane_recovery(plane_atoms(), planes_xyz(), live)
    assert masked["in_plane_fraction"] == 2 / 4 and masked["planes_covered"] == 1 / 3
    assert plane_recovery(plane_atoms(), planes_xyz(), min_share=0.96)["n_in_plane"] == 2


def test_plane_recovery_any_basis_of_the_plane() -> None:
    p = planes_xyz()
    c, s = math.cos(1.1), math.sin(1.1)
    rotated = torch.stack([torch.stack([c * q[0] + s * q[1], -s * q[0] + c * q[1]]) for q in p])
    assert plane_recovery(plane_atoms(), rotated) == plane_recovery(plane_atoms(), p)
    with pytest.raises(ValueError, match="orthonormal"):
        plane_recovery(plane_atoms(), p * 2)


# ----------------------------------------------------------------------------- distinct directions


@pytest.mark.parametrize("chunk", [1, 2, 3, 1024])
def test_distinct_directions_greedy_count(chunk: int) -> None:
    e = eye(5)
    near = 0.99 * e[0] + math.sqrt(1 - 0.99**2) * e[4]  # |cos| 0.99 with e0
    far = 0.9 * e[1] + math.sqrt(1 - 0.81) * e[4]  # |cos| 0.9 with e1: distinct
    atoms = torch.stack([e[0], e[1], -3 * e[0], near, e[2], far, e[2]])
    assert distinct_directions(atoms, 0.95, chunk) == 4  # e0, e1, e2, far
    assert distinct_directions(atoms, 0.85, chunk) == 3  # far merges with e1
    assert distinct_directions(atoms[:0], 0.95, chunk) == 0


# ----------------------------------------------------------------------------- live stability


D = 8
SEEDS = [11, 12, 13]


def data() -> torch.Tensor:
    return randn(300, D, seed=7) * torch.linspace(3.0, 0.01, D)  # low-rank-ish


def trained(n: int = 10) -> tuple[list[torch.Tensor], list[torch.Tensor], list[torch.Tensor]]:
    dec = [randn(n, D, seed=20 + i) for i in range(3)]
    enc = [d + 0.1 * randn(n, D, seed=30 + i) for i, d in enumerate(dec)]
    lives = [torch.arange(n) % (i + 2) != 0 for i in range(3)]  # 5, 6, 7 live of 10
    return dec, enc, lives


def run(dec, enc, lives, seeds=SEEDS, **kw):
    return live_stability(dec, enc, lives, data(), seeds, n_boot=200, boot_seed=4, **kw)


def test_identical_seeds_have_live_pwmcc_one_whatever_their_dead_atoms() -> None:
    dec, enc, _ = trained()
    live = torch.arange(10) < 6
    other_dec, other_enc = dec[0].clone(), enc[0].clone()
    other_dec[~live], other_enc[~live] = randn(4, D, seed=99), randn(4, D, seed=98)
    out = run([dec[0], other_dec], [enc[0], other_enc], [live, live], seeds=[1, 2])
    for key in ("live_pwmcc", "live_hungarian_mcc", "live_shared_fraction"):
        assert out[key]["mean"] == pytest.approx(1.0, abs=1e-7)
        assert out[key]["n_pairs"] == 1 and out[key]["ci"] is None  # 2 seeds: no interval
    assert out["n_live_per_seed"] == [6, 6]


def test_dead_atoms_never_move_any_number() -> None:
    dec, enc, lives = trained()
    before = json.dumps(run(dec, enc, lives))
    dec2 = [d.clone() for d in dec]
    enc2 = [e.clone() for e in enc]
    for i, live in enumerate(lives):
        dead = int((~live).sum())
        dec2[i][~live] = dec[(i + 1) % 3][:dead]  # dead atoms copying another seed's atoms
        enc2[i][~live] = 100 * randn(dead, D, seed=50 + i)
    assert json.dumps(run(dec2, enc2, lives)) == before


def test_rerun_is_byte_identical() -> None:
    dec, enc, lives = trained()
    first = run(dec, enc, lives)
    assert json.dumps(first) == json.dumps(run(dec, enc, lives))
    assert first["n_live_per_seed"] == [5, 6, 7]
    assert first["n_live"]["mean"] == 6.0 and first["n_live"]["n_seeds"] == 3
    assert first["subspace_rank"] == int(principal_basis(data(), 0.99).shape[0])
    for kind in ("isotropic", "subspace", "data"):
        assert first[f"{kind}_live_pwmcc"]["n_pairs"] == 3
        ratio = first[f"live_pwmcc_ratio_to_{kind}"]
        assert ratio["paired"] is False
        assert ratio["ratio"] == pytest.approx(
            first["live_pwmcc"]["mean"] / first[f"{kind}_live_pwmcc"]["mean"]
        )


def test_duplicated_atoms_change_n_live_not_distinct_live() -> None:
    dec, enc, _ = trained()
    all_live = torch.ones(10, dtype=torch.bool)
    dup_dec = torch.cat([dec[1], -2 * dec[1][:3]])  # three live copies (sign and scale)
    dup_enc = torch.cat([enc[1], enc[1][:3]])
    lives = [all_live, torch.ones(13, dtype=torch.bool), all_live]
    out = run([dec[0], dup_dec, dec[2]], [enc[0], dup_enc, enc[2]], lives)
    assert out["n_live_per_seed"] == [10, 13, 10]
    assert out["distinct_live_per_seed"] == [10, 10, 10]
    base = run(dec, enc, [all_live] * 3)
    assert base["distinct_live_per_seed"] == [10, 10, 10]
    assert out["live_pwmcc"]["mean"] != base["live_pwmcc"]["mean"]


def test_unequal_live_counts_pwmcc_counts_every_atom_matching_only_pairs() -> None:
    e = eye(D)
    big, small = e[:4], e[:2]  # small's live atoms are a subset of big's
    out = live_stability(
        [big, small],
        [big, small],
        [torch.ones(4, dtype=torch.bool), torch.ones(2, dtype=torch.bool)],
        data(),
        [1, 2],
        n_boot=50,
    )
    # PWMCC: big's atoms find 1, 1, 0, 0 (mean 0.5), small's find 1, 1: (0.5 + 1) / 2
    assert out["live_pwmcc"]["mean"] == pytest.approx(0.75)
    assert out["live_hungarian_mcc"]["mean"] == pytest.approx(1.0)  # min(4, 2) pairs
    assert out["live_shared_fraction"]["mean"] == pytest.approx(1.0)


def test_count_matched_baselines_have_the_live_counts() -> None:
    x = data()
    basis = principal_basis(x, 0.99)
    dicts = live_baseline_dictionaries([3, 5, 7], SEEDS, x, basis)
    assert set(dicts) == {"isotropic", "subspace", "data"}
    for atoms in dicts.values():
        assert [a.shape for a in atoms] == [(3, D), (5, D), (7, D)]
        for a in atoms:
            assert torch.allclose(
                a.double().norm(dim=1), torch.ones(a.shape[0], dtype=torch.float64)
            )
    for a in dicts["subspace"]:  # inside the principal span
        a = a.double()
        assert torch.allclose((a @ basis.T) @ basis, a, atol=1e-6)
    xc = x.double() - x.double().mean(0)
    rows = xc / xc.norm(dim=1, keepdim=True)
    for a in dicts["data"]:  # centred data rows
        assert (a @ rows.T).amax(dim=1).min() > 1 - 1e-12
    assert "subspace" not in live_baseline_dictionaries([3, 5, 7], SEEDS, x, None)


def test_isotropic_baseline_with_every_latent_live_is_the_pipelines() -> None:
    dec, enc, _ = trained()
    all_live = [torch.ones(10, dtype=torch.bool)] * 3
    out = run(dec, enc, all_live, subspace_variance=None)
    ref = isotropic_baseline(10, D, SEEDS, ranks=())
    for key in ("pwmcc", "hungarian_mcc"):
        assert out[f"isotropic_live_{key}"] == seed_stats(ref[key], n_boot=200, seed=4).to_dict()
    # the shared fraction's baseline is untied: encoder atoms from seed + ENCODER_SEED_OFFSET
    from husai.baselines import isotropic_dictionary
    from husai.groundtruth import ENCODER_SEED_OFFSET
    from husai.stability import pairwise_metrics

    decs = [isotropic_dictionary(10, D, s) for s in SEEDS]
    encs = [isotropic_dictionary(10, D, s + ENCODER_SEED_OFFSET) for s in SEEDS]
    untied = pairwise_metrics(decs, encs, ranks=())["shared_fraction"]
    assert out["isotropic_live_shared_fraction"] == seed_stats(untied, n_boot=200, seed=4).to_dict()
    tied = seed_stats(ref["shared_fraction"], n_boot=200, seed=4).to_dict()
    assert out["isotropic_live_shared_fraction"]["mean"] <= tied["mean"]
    assert out["subspace_live_pwmcc"] is None and out["subspace_rank"] is None
    assert out["live_pwmcc_ratio_to_subspace"] is None


def test_without_encoders_or_matching() -> None:
    dec, _, lives = trained()
    no_enc = run(dec, None, lives)
    assert no_enc["live_shared_fraction"] is None and no_enc["data_live_shared_fraction"] is None
    assert no_enc["live_hungarian_mcc"] is not None
    no_match = run(dec, None, lives, hungarian=False)
    assert (
        no_match["live_hungarian_mcc"] is None and no_match["isotropic_live_hungarian_mcc"] is None
    )
    assert no_match["live_pwmcc"] == no_enc["live_pwmcc"]


def test_a_seed_without_live_latents_is_an_error() -> None:
    dec, enc, lives = trained()
    lives[1] = torch.zeros(10, dtype=torch.bool)
    with pytest.raises(ValueError, match="seed 12 has no live latent"):
        run(dec, enc, lives)


# ----------------------------------------------------------------------------- live masks of an SAE


def test_sae_live_masks_any_number_of_rows() -> None:
    e = torch.eye(4)
    atoms = torch.stack([e[0], e[1], e[2], -e[0]])  # tied standard SAE, no biases
    w = torch.stack([atoms, atoms[[1, 0, 3, 2]]])
    sae = BatchedSAE(
        SAEConfig(architecture="standard", d_sae=4, d_in=4),
        (0, 1),
        {
            "W_enc": w.transpose(1, 2).clone(),
            "W_dec": w,
            "b_enc": torch.zeros(2, 4),
            "b_dec": torch.zeros(2, 4),
        },
    )
    x = torch.tensor([[1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 2.0, 0.0]])  # 2 rows: not a p x p grid
    masks = sae_live_masks(sae, x)
    assert [m.tolist() for m in masks] == [[True, False, True, False], [False, True, False, True]]


# ----------------------------------------------------------------------------- across cells


def test_monotone_cells_rho_one() -> None:
    s = [0.1, 0.3, 0.2, 0.5, 0.4, 0.6]
    r = [x**2 for x in s]  # monotone, not linear
    out = stability_predicts_recovery(s, r, n_boot=300, seed=1)
    assert out["spearman_rho"] == pytest.approx(1.0) and out["spearman_ci"] == pytest.approx(
        [1.0, 1.0], abs=1e-12
    )
    assert out["n_cells"] == 6
    down = stability_predicts_recovery(s, [-v for v in r], n_boot=300, seed=1)
    assert down["spearman_rho"] == pytest.approx(-1.0) and down["spearman_ci"] == pytest.approx(
        [-1.0, -1.0], abs=1e-12
    )


def test_rho_is_scipys_and_ci_reproducible() -> None:
    rng = np.random.default_rng(0)
    s, r = rng.random(15), rng.random(15)
    out = stability_predicts_recovery(s, r, n_boot=200, seed=3)
    ref = spearmanr(s, r)
    assert out["spearman_rho"] == pytest.approx(ref.statistic)
    assert out["p_value"] == pytest.approx(ref.pvalue)
    lo, hi = out["spearman_ci"]
    assert -1.0 <= lo < out["spearman_rho"] < hi <= 1.0
    assert out == stability_predicts_recovery(s, r, n_boot=200, seed=3)
    assert out != stability_predicts_recovery(s, r, n_boot=200, seed=4)


def test_threshold_constructed_case() -> None:
    s = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]
    r = [0.95, 0.2, 0.5, 0.92, 0.9, 0.99]  # 0.4 and above all recover >= 0.9 (inclusive)
    out = stability_predicts_recovery(s, r, n_boot=50, seed=0, level=0.9)
    assert out["threshold"] == 0.4 and out["cells_above"] == 3
    # a tie at the boundary: both cells at 0.5 must pass
    tied = stability_predicts_recovery([0.5, 0.5, 0.7], [0.95, 0.3, 0.99], n_boot=50, seed=0)
    assert tied["threshold"] == 0.7 and tied["cells_above"] == 1
    every = stability_predicts_recovery([0.2, 0.1, 0.3], [0.91, 0.95, 0.9], n_boot=50, seed=0)
    assert every["threshold"] == 0.1 and every["cells_above"] == 3
    none = stability_predicts_recovery([0.2, 0.9], [0.95, 0.5], n_boot=50, seed=0)
    assert none["threshold"] is None and none["cells_above"] == 0
    assert none["spearman_ci"] is None  # fewer than 3 cells


def test_constant_stability_has_no_rho() -> None:
    out = stability_predicts_recovery([0.5, 0.5, 0.5], [0.1, 0.9, 0.95], n_boot=50, seed=0)
    assert out["spearman_rho"] is None and out["spearman_ci"] is None
    assert out["threshold"] is None


# ----------------------------------------------------------------------------- privileged basis


def test_neuron_alignment_known_answers() -> None:
    """Seed A's live atoms are neurons 0..5, seed B's neurons 3..8 plus one atom between two
    neurons (|cos| 0.707 to each: not aligned); a dead atom on neuron 11 counts for nothing."""
    from husai.baselines import principal_basis
    from husai.groundtruth import neuron_alignment

    d = 12
    eye = torch.eye(d, dtype=torch.float64)
    a = torch.cat([eye[:6], eye[11:12]])
    live_a = torch.tensor([True] * 6 + [False])
    mixed = (eye[0] + eye[1]) / math.sqrt(2)
    b = torch.cat([eye[3:9], mixed[None]])
    live_b = torch.ones(7, dtype=torch.bool)
    x = torch.randn(200, d, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    out = neuron_alignment([a, b], [live_a, live_b], [1, 2], principal_basis(x, 0.99), n_boot=20)
    assert out["per_seed"]["1"] == {"alignment": 1.0, "aligned_fraction": 1.0, "neurons_found": 6.0}
    assert out["per_seed"]["2"]["aligned_fraction"] == pytest.approx(6 / 7)
    assert out["per_seed"]["2"]["alignment"] == pytest.approx((6 + 1 / math.sqrt(2)) / 7)
    assert out["shared_neurons"]["mean"] == pytest.approx(3 / 9)  # {3,4,5} of {0..8}
    # random atoms in a 12-dim span are far from any one neuron
    assert out["subspace_aligned_fraction"]["mean"] == 0.0
    assert out["subspace_alignment"]["mean"] < 0.8
    # a rotation of the atoms (not a symmetry of a privileged basis) is seen
    rot = torch.linalg.qr(
        torch.randn(d, d, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    ).Q
    turned = neuron_alignment([a @ rot, b @ rot], [live_a, live_b], [1, 2], n_boot=20)
    assert turned["aligned_fraction"]["mean"] < 0.5 and turned["subspace_alignment"] is None
