"""The geometry of whole configurations (husai.geometry: activation_geometry,
config_geometry and their helpers) on hand-built SAEs with known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from husai.fourier import GroundTruth
from husai.geometry import (
    FewLiveLatents,
    GeometryOptions,
    activation_geometry,
    analysed_atoms,
    config_geometry,
    data_sample_dictionary,
    pair_fill,
)
from husai.sae import BatchedSAE, SAEConfig

SCALES = (3.0, 3.0, 2.0, 2.0, 1.0, 1.0)  # coordinate k of the planted activations
D = len(SCALES)


def planted_x() -> torch.Tensor:
    """36 rows (a 6 x 6 grid): +-SCALES[k] e_k three times for each k. Mean 0, the
    coordinates uncorrelated, coordinate k's variance proportional to SCALES[k]^2."""
    eye = torch.eye(D)
    rows = [sign * SCALES[k] * eye[k] for k in range(D) for sign in (1, -1) for _ in range(3)]
    return torch.stack(rows)


def ground_truth() -> GroundTruth:
    """Key frequency 1 spans e0, e1; key frequency 2 spans e2, e3; e4, e5 are outside."""
    total = sum(s * s for s in SCALES)
    dirs = torch.eye(D)[:4]
    return GroundTruth(
        directions=dirs,
        frequency=torch.tensor([1, 1, 2, 2]),
        u=torch.zeros(4, dtype=torch.int64),
        v=torch.zeros(4, dtype=torch.int64),
        energy_share=torch.tensor([s * s / total for s in SCALES[:4]], dtype=torch.float64),
    )


def rotated() -> torch.Tensor:
    """The standard basis rotated by 45 degrees inside each group's plane."""
    r = 1 / math.sqrt(2)
    eye = torch.eye(D)
    return torch.stack(
        [
            r * (eye[0] + eye[1]),
            r * (eye[0] - eye[1]),
            r * (eye[2] + eye[3]),
            r * (eye[2] - eye[3]),
            eye[4],
            eye[5],
        ]
    )


def tied_sae(decoders: list[torch.Tensor], b_enc: torch.Tensor | None = None) -> BatchedSAE:
    """A standard SAE per decoder, encoder = decoder (so latent i fires on the inputs
    with a positive component along atom i)."""
    s, n = len(decoders), decoders[0].shape[0]
    w_dec = torch.stack(decoders).to(torch.float32)
    cfg = SAEConfig(architecture="standard", d_sae=n, d_in=D)
    return BatchedSAE(
        cfg,
        tuple(range(10, 10 + s)),
        {
            "W_enc": w_dec.transpose(1, 2).clone(),
            "W_dec": w_dec.clone(),
            "b_enc": torch.zeros(s, n) if b_enc is None else b_enc,
            "b_dec": torch.zeros(s, D),
        },
    )


OPTIONS = GeometryOptions(ranks=(2, 4, 8), group_min_share=0.5, null_rounds=4, seed=0)


def test_data_sample_dictionary_draws_centred_rows() -> None:
    x = planted_x() + 5.0  # the mean is removed
    unit = {tuple(r) for r in torch.eye(D, dtype=torch.float64).tolist()} | {
        tuple(-v for v in r) for r in torch.eye(D, dtype=torch.float64).tolist()
    }
    every = data_sample_dictionary(x, 36, seed=3)  # without replacement: every row once
    assert every.dtype == torch.float64 and every.shape == (36, D)
    assert sorted(map(tuple, every.tolist())) == sorted(
        map(tuple, (planted_x() / planted_x().norm(dim=1, keepdim=True)).double().tolist())
    )
    more = data_sample_dictionary(x, 50, seed=3)  # with replacement
    assert more.shape == (50, D) and {tuple(r) for r in more.tolist()} <= unit
    assert torch.equal(data_sample_dictionary(x, 5, 1), data_sample_dictionary(x, 5, 1))
    assert not torch.equal(data_sample_dictionary(x, 5, 1), data_sample_dictionary(x, 5, 2))


def test_pair_fill_is_symmetric_with_undefined_diagonal() -> None:
    m = pair_fill(3, lambda i, j: None if (i, j) == (1, 2) else 10 * i + j)
    expected = np.array([[np.nan, 1, 2], [1, np.nan, np.nan], [2, np.nan, np.nan]])
    np.testing.assert_array_equal(m, expected)


def test_activation_geometry_of_planted_data() -> None:
    geo = activation_geometry(planted_x() + 2.0, ground_truth(), [1, 2])  # centred inside
    assert geo.d_in == D and geo.dims == [2, 2]
    # variance in span(e0..e3): (9 + 9 + 4 + 4) / 28
    assert geo.variance_share_in_span == pytest.approx(26 / 28, abs=1e-12)
    assert geo.spectrum["variance_share"] == pytest.approx(
        [9 / 28, 9 / 28, 4 / 28, 4 / 28, 1 / 28, 1 / 28], abs=1e-12
    )
    s = geo.summary(0.5)
    assert s["activations"]["n"] == 36 and s["activations"]["d_in"] == D
    # cumulative shares 9, 18, 22, 26, 27, 28 (/ 28): 0.9 needs 4, 0.95 needs 5, 0.99 all 6
    assert s["activations"]["dims_for_variance"] == {"0.9": 4, "0.95": 5, "0.99": 6}
    assert s["ground_truth"] == {
        "key_frequencies": [1, 2],
        "subspace_dims": {"1": 2, "2": 2},
        "variance_share_in_span": geo.variance_share_in_span,
        "group_min_share": 0.5,
    }
    # the top-2 principal components span the two largest coordinates (e0, e1)
    assert float(geo.pcs[:2, :2].pow(2).sum()) == pytest.approx(2.0, abs=1e-12)


def test_identical_seeds_conserve_everything() -> None:
    geo = activation_geometry(planted_x(), ground_truth(), [1, 2])
    eye = torch.eye(D)
    c = config_geometry(tied_sae([eye, eye, eye]), geo, OPTIONS)
    s = c.summary
    assert s["seeds"] == [10, 11, 12] and s["d_sae"] == D and s["d_in"] == D
    assert s["n_atoms_analysed"] == [D] * 3 and s["n_reference_atoms"] == D
    assert s["n_live"]["mean"] == D  # every atom fires on its +e_k rows
    assert s["pwmcc"]["mean"] == pytest.approx(1.0) and s["pwmcc"]["n_pairs"] == 3
    g = s["gram"]
    # an orthonormal dictionary has a flat spectrum 1/6: effective rank 6
    assert g["summary"]["effective_rank"]["mean"] == pytest.approx(6.0)
    assert g["summary"]["numerical_rank"]["mean"] == D
    assert g["summary"]["top_eigenvalue"]["mean"] == pytest.approx(1 / 6)
    assert g["summary"]["self_max_cos"]["mean"] == 0.0
    assert g["seed_distance"]["mean"] == 0.0
    # ranks above the number of atoms (6) are left out
    assert set(s["subspace"]["overlap"]) == {"2", "4"}
    assert s["subspace"]["random_expectation"] == {"2": 2 / 6, "4": 4 / 6}
    for r in ("2", "4"):
        assert s["subspace"]["overlap"][r]["mean"] == pytest.approx(1.0)
    groups = s["groups"]
    assert groups["fraction_grouped"]["mean"] == pytest.approx(4 / 6)  # e4, e5: no group
    assert groups["sizes"] == {"1": groups["sizes"]["1"], "2": groups["sizes"]["2"]}
    assert groups["sizes"]["1"]["mean"] == groups["sizes"]["2"]["mean"] == 2
    for k in ("1", "2"):
        f = groups["per_frequency"][k]
        assert f["rank"] == 2 and f["random_overlap"] == pytest.approx(2 / 6)
        for m in ("group_overlap", "atom_in_span", "atom_match"):
            assert f[m]["mean"] == pytest.approx(1.0), m
    for m in ("group_overlap", "atom_in_span", "atom_match"):
        assert groups["all"][m]["mean"] == pytest.approx(1.0), m
    assert groups["all"]["random_overlap"] == pytest.approx(2 / 6)
    # curves: one value per rank 1..6 and per index 1..6
    assert c.overlaps["subspace_overlap"] == pytest.approx([1.0] * D)
    assert c.overlaps["activation_pca_overlap"][-1] == pytest.approx(1.0)
    assert c.spectra["gram_eigenvalue"] == pytest.approx([1 / 6] * D)
    assert list(c.spectra) == [
        "gram_eigenvalue",
        "isotropic_gram_eigenvalue",
        "data_sample_gram_eigenvalue",
    ]
    assert list(c.overlaps) == ["subspace_overlap", "data_sample_overlap", "activation_pca_overlap"]


def test_rotation_inside_groups_keeps_groups_but_not_atoms() -> None:
    geo = activation_geometry(planted_x(), ground_truth(), [1, 2])
    s = config_geometry(tied_sae([torch.eye(D), rotated()]), geo, OPTIONS).summary
    assert s["n_atoms_analysed"] == [D, D]  # each rotated atom fires on a +e_k row
    # 4 atoms of each side match at |cos| 1/sqrt(2), e4 and e5 at 1
    assert s["pwmcc"]["mean"] == pytest.approx((4 / math.sqrt(2) + 2) / 6)
    assert s["pwmcc"]["n_pairs"] == 1 and s["pwmcc"]["ci"] is None  # 2 seeds: no CI
    assert s["gram"]["seed_distance"]["mean"] == pytest.approx(0.0, abs=1e-12)  # both flat
    for k in ("1", "2"):
        f = s["groups"]["per_frequency"][k]
        assert f["group_overlap"]["mean"] == pytest.approx(1.0)
        assert f["atom_in_span"]["mean"] == pytest.approx(1.0)
        assert f["atom_match"]["mean"] == pytest.approx(0.5)  # best cos^2 of a rotated atom


def test_dead_latents_and_live_only() -> None:
    eye = torch.eye(D)
    dec = torch.cat([eye, eye[:2]])  # 8 latents; the last two are switched off
    b_enc = torch.tensor([[0.0] * D + [-100.0, -100.0]] * 2)
    sae = tied_sae([dec, dec], b_enc)
    x = planted_x()
    live, atoms = analysed_atoms(sae, x, live_only=True)
    assert [m.tolist() for m in live] == [[True] * D + [False, False]] * 2
    assert [a.shape[0] for a in atoms] == [D, D]
    _, every = analysed_atoms(sae, x, live_only=False)
    assert [a.shape[0] for a in every] == [8, 8] and every[0].dtype == torch.float64
    geo = activation_geometry(x, ground_truth(), [1, 2])
    on = config_geometry(sae, geo, OPTIONS).summary
    assert on["live_only"] and on["n_atoms_analysed"] == [D, D]
    assert on["n_live"]["mean"] == D and on["n_reference_atoms"] == D
    assert on["gram"]["summary"]["self_max_cos"]["mean"] == 0.0
    off = config_geometry(
        sae, geo, GeometryOptions(ranks=(2,), null_rounds=0, live_only=False)
    ).summary
    assert off["n_atoms_analysed"] == [8, 8] and off["n_reference_atoms"] == 8
    # the two repeated atoms (e0, e1) each have a duplicate: 4 of 8 atoms at |cos| 1
    assert off["gram"]["summary"]["self_max_cos"]["mean"] == pytest.approx(0.5)
    mostly_dead = tied_sae([eye, eye], torch.tensor([[0.0] + [-100.0] * (D - 1)] * 2))
    with pytest.raises(FewLiveLatents) as err:
        config_geometry(mostly_dead, geo, OPTIONS)
    assert (err.value.seed, err.value.n_live) == (10, 1)
