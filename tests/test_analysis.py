"""The per-configuration analysis (husai.analysis) against known answers."""

from __future__ import annotations

import json

import pytest
import torch

from husai import fourier as fr
from husai.analysis import AnalysisOptions, analyse, recovery_summary, stability_summary
from husai.sae import BatchedSAE, SAEConfig, train_saes
from tests.test_recovery import KEYS, hand_sae, planted_grid

OPT = AnalysisOptions(ranks=(4, 8), n_boot=200)
SEEDS = (1, 2, 3, 4)


def planted_data(n: int = 4096, d: int = 32, m: int = 24, k: int = 3) -> torch.Tensor:
    """x = sparse non-negative codes (k of m active) times m planted unit atoms."""
    g = torch.Generator().manual_seed(0)
    atoms = torch.randn(m, d, generator=g)
    atoms /= atoms.norm(dim=1, keepdim=True)
    idx = torch.rand(n, m, generator=g).argsort(dim=1)[:, :k]
    codes = torch.zeros(n, m).scatter_(1, idx, torch.rand(n, k, generator=g) + 0.5)
    return codes @ atoms


def train(x: torch.Tensor) -> BatchedSAE:
    cfg = SAEConfig(
        architecture="topk",
        d_sae=24,
        k=3,
        d_in=x.shape[1],
        epochs=8,
        batch_size=256,
        lr=0.01,
        dead_feature_window=20,
        normalize_activations="expected_average_only_in",
    )
    sae, _ = train_saes(cfg, x, SEEDS)
    return sae


@pytest.fixture(scope="module")
def planted_summary() -> dict:
    return stability_summary(train(planted_data()), OPT)


@pytest.fixture(scope="module")
def noise_summary() -> dict:
    noise = torch.randn(4096, 32, generator=torch.Generator().manual_seed(1))
    return stability_summary(train(noise), OPT)


def test_planted_dictionary_is_found_by_every_seed(planted_summary: dict) -> None:
    s = planted_summary
    assert s["pwmcc"]["mean"] > 0.9 and s["hungarian_mcc"]["mean"] > 0.8
    # 24 random atoms in 32 dimensions: exact expectation about 0.38
    assert s["random_pwmcc"]["mean"] == pytest.approx(s["random_pwmcc_expected"], abs=0.03)
    assert s["untrained_pwmcc"]["mean"] < 0.45
    ratio = s["pwmcc_ratio_to_random"]
    assert ratio["ci"][0] > 2.0 and ratio["ci"][0] <= ratio["ratio"] <= ratio["ci"][1]
    assert s["pwmcc_ratio_to_untrained"]["ci"][0] > 2.0
    assert s["shared_fraction"]["mean"] > 0.5 > s["random_shared_fraction"]["mean"]
    assert s["pwmcc"]["n_seeds"] == 4 and s["pwmcc"]["n_pairs"] == 6
    assert s["subspace_overlap"]["8"]["random_expectation"] == 8 / 32


def test_pure_noise_is_not_far_above_random(noise_summary: dict) -> None:
    s = noise_summary
    ratio = s["pwmcc_ratio_to_random"]
    assert ratio["ratio"] < 1.3 and ratio["ci"][1] < 1.4
    assert s["shared_fraction"]["mean"] < 0.1
    assert s["hungarian_mcc"]["mean"] < 0.5


def test_summary_is_json_ready_and_deterministic(planted_summary: dict) -> None:
    text = json.dumps(planted_summary, allow_nan=False)
    pair = planted_summary["pair_pwmcc"]
    assert pair[0][0] is None and pair[0][1] == pair[1][0]
    assert json.loads(text)["seeds"] == list(SEEDS)


def hand_built(seeds: tuple[int, ...]) -> tuple[BatchedSAE, torch.Tensor, fr.GroundTruth]:
    """A standard SAE per seed whose encoder and decoder are the planted Fourier directions."""
    x, directions, _ = planted_grid()
    d = directions.to(torch.float32)
    n, d_in = d.shape
    s = len(seeds)
    cfg = SAEConfig(architecture="standard", d_sae=n, d_in=d_in)
    params = {
        "W_enc": d.T.expand(s, d_in, n).clone(),
        "b_enc": torch.zeros(s, n),
        "W_dec": d.expand(s, n, d_in).clone(),
        "b_dec": torch.zeros(s, d_in),
    }
    gt = fr.ground_truth_directions(x, list(KEYS))
    return BatchedSAE(cfg, seeds, params), x.reshape(-1, d_in).to(torch.float32), gt


def test_hand_built_fourier_sae_recovers_everything_in_every_seed() -> None:
    sae, x, gt = hand_built((5, 6, 7))
    # the SAE's latents are the planted functions
    x_grid, directions, _ = planted_grid()
    assert torch.allclose(
        sae.select(0).encode(x)[0].reshape(*x_grid.shape[:2], -1).double(),
        hand_sae(x_grid, directions),
        atol=1e-4,
    )
    out = recovery_summary(sae, x, gt, KEYS, OPT)
    assert set(out["per_seed"]) == {"5", "6", "7"}
    for key in ("pure_latent_fraction", "key_frequency_coverage"):
        assert out[key]["mean"] == 1.0 and out[key]["std"] == 0.0 and out[key]["ci"] == [1.0, 1.0]
    assert out["decoder_alignment"]["mean"] == pytest.approx(1.0, abs=1e-6)
    assert out["random_decoder_alignment"]["mean"] < 0.6
    # identical seeds are perfectly stable: every metric 1, ratio = 1 / random
    both = analyse(sae, x, gt, KEYS, OPT)
    st = both["stability"]
    for key in ("pwmcc", "hungarian_mcc", "shared_fraction"):
        assert st[key]["mean"] == pytest.approx(1.0, abs=1e-6)
    assert st["pwmcc_ratio_to_random"]["ratio"] == pytest.approx(
        1.0 / st["random_pwmcc"]["mean"], rel=1e-6
    )
    assert st["subspace_overlap"]["8"]["trained"]["mean"] == pytest.approx(1.0, abs=1e-6)


def test_bad_inputs_raise() -> None:
    with pytest.raises(ValueError, match="at least 2 seeds"):
        stability_summary(hand_built((5,))[0], OPT)
    sae = hand_built((5, 6))[0]
    with pytest.raises(ValueError, match="differ from trained"):
        stability_summary(sae, OPT, untrained=hand_built((6, 5))[0])


def test_low_rank_noise_beats_isotropic_but_not_the_data_subspace_baseline() -> None:
    """Gaussian noise confined to an 8-dim subspace of R^32 has no features; any
    dictionary fitted to it lies in that span, so the isotropic ratio looks like
    stability while the data-subspace baseline shows it is not."""
    from husai.baselines import principal_basis

    g = torch.Generator().manual_seed(2)
    span = torch.linalg.qr(torch.randn(32, 8, generator=g)).Q.T  # [8, 32]
    noise = torch.randn(4096, 8, generator=g) @ span
    planted = planted_data(m=24, k=3)[:, :8] @ span  # planted atoms, projected into the span
    out = {}
    for name, x in (("noise", noise), ("planted", planted)):
        basis = principal_basis(x, 0.99)
        out[name] = stability_summary(train(x), OPT, basis=basis)
        assert out[name]["subspace_rank"] == 8
    s = out["noise"]
    assert s["pwmcc_ratio_to_random"]["ci"][0] > 1.5  # "stable" against the isotropic baseline...
    assert s["subspace_random_pwmcc"]["mean"] > s["random_pwmcc"]["mean"] + 0.3
    assert (
        s["pwmcc_ratio_to_subspace"]["ratio"] < 1.1
    )  # ...but not against random atoms in the span
    p = out["planted"]
    assert p["pwmcc_ratio_to_subspace"]["ci"][0] > 1.05  # real features beat the span's chance
    assert p["shared_fraction"]["mean"] > s["shared_fraction"]["mean"] + 0.2


def circle_sae(dicts: list[torch.Tensor], seeds: tuple[int, ...]) -> BatchedSAE:
    """Standard (ReLU) SAEs whose encoder and decoder atoms are ``dicts[i]`` [d_sae, d_in]
    and whose latents fire on a 60-degree arc (threshold cos 30 degrees)."""
    import math

    w = torch.stack([d.to(torch.float32) for d in dicts])  # [S, d_sae, d_in]
    s, d_sae, d_in = w.shape
    cfg = SAEConfig(architecture="standard", d_in=d_in, d_sae=d_sae)
    return BatchedSAE(
        cfg,
        seeds,
        {
            "W_enc": w.transpose(1, 2).contiguous(),
            "b_enc": torch.full((s, d_sae), -math.cos(math.radians(30))),
            "W_dec": w.clone(),
            "b_dec": torch.zeros(s, d_in),
        },
    )


def test_live_summary_shift_null_known_answers() -> None:
    """On the circles control: seeds holding one dictionary agree beyond the symmetry
    (live PWMCC 1, above the shift null); seeds holding that dictionary turned back by
    exactly the shift the null draws for them agree no more than the null (which turns
    them all onto the one dictionary: null PWMCC 1); without planes there is no null."""
    from husai.analysis import live_summary
    from husai.baselines import generator
    from husai.config import CirclesParams
    from husai.domains import circles_domain
    from husai.planes import ROTATION_SEED_OFFSET, rotate_within_planes
    from tests.test_planes import arc_dictionary

    dom = circles_domain(CirclesParams(n=339, d_in=16, points=113, frequencies=(3, 7, 10)))
    x, truth = dom.x, dom.truth
    seeds = (1, 2, 3)
    one = arc_dictionary(truth, 8, 5.0, 16)
    opt = AnalysisOptions(n_boot=100, subspace_variance=0.99)
    same = live_summary(circle_sae([one] * 3, seeds), x, truth, opt)
    assert same["live_pwmcc"]["mean"] == pytest.approx(1.0, abs=1e-6)
    assert same["shift_null_live_pwmcc"]["mean"] < 0.99
    assert same["above_shift_null"] is True
    # 8 atoms evenly round each of 3 circles: 24 live, 12 directions up to sign
    assert same["n_live"]["mean"] == 24 and same["distinct_live"]["mean"] == 12
    assert same["subspace_live_pwmcc"]["mean"] < 0.99
    angles = torch.as_tensor(truth["angles"]).double()
    back = []
    for s in seeds:
        row = int(
            torch.randint(angles.shape[0], (1,), generator=generator(s + ROTATION_SEED_OFFSET))
        )
        back.append(rotate_within_planes(one, truth["planes"], -(angles[row] - angles[0])))
    turned = live_summary(circle_sae(back, seeds), x, truth, opt)
    assert turned["shift_null_live_pwmcc"]["mean"] == pytest.approx(1.0, abs=1e-5)
    assert turned["live_pwmcc"]["mean"] < 0.99
    assert turned["above_shift_null"] is False
    bare = live_summary(circle_sae([one] * 3, seeds), x, {}, opt)
    assert bare["shift_null_live_pwmcc"] is None and bare["above_shift_null"] is None
