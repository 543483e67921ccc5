"""Training dynamics (husai.dynamics): checkpoint measures and their summary over
checkpoints, on hand-built SAEs and hand-built checkpoints with known answers."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from husai.dynamics import (
    Checkpoint,
    best_match_table,
    checkpoint_metrics,
    checkpoint_schedule,
    dynamics_summary,
    stability_stats,
    train_dynamics,
)
from husai.geometry import one_thread
from husai.sae import SAEConfig, train_saes
from husai.stability import pairwise_metrics, seed_pair_metrics
from husai.stats import seed_stats
from tests.test_predictors_lib import DECODERS, THRESHOLD, grid_x, tied_sae

R = 1 / math.sqrt(2)


def test_checkpoint_schedule() -> None:
    cfg = SAEConfig(architecture="standard", d_in=4, d_sae=4, batch_size=64, epochs=4)
    # ceil(529 / 64) = 9 steps per epoch, 36 in all
    assert checkpoint_schedule(cfg, 529, 2) == [0, 1, 2, 4, 8, 16, 32, 36]
    assert checkpoint_schedule(cfg, 529, 3) == [0, 1, 3, 9, 27, 36]


# best matches of DECODERS (seed 0: e0..e3; seed 1: e0, e1, (e2 +- e3) / sqrt(2);
# seed 2: e2, e3, e1, e0); |cos| ties go to the lowest index
MATCHES = [
    [[0, 3], [1, 2], [2, 0], [2, 1]],  # seed 0 in seeds 1, 2
    [[0, 3], [1, 2], [2, 0], [2, 0]],  # seed 1 in seeds 0, 2
    [[2, 2], [3, 2], [1, 1], [0, 0]],
]  # seed 2 in seeds 0, 1


def test_best_match_table_by_hand() -> None:
    pairs = seed_pair_metrics(DECODERS, DECODERS, threshold=THRESHOLD, ranks=())
    assert best_match_table(DECODERS, pairs).tolist() == MATCHES


def test_checkpoint_metrics_by_hand() -> None:
    sae = tied_sae(DECODERS)
    c = checkpoint_metrics(sae, grid_x(), THRESHOLD)
    assert c.matches.tolist() == MATCHES
    assert c.shared.tolist() == [[2, 2, 1, 1], [2, 2, 0, 0], [1, 1, 2, 2]]
    expected = pairwise_metrics(DECODERS, DECODERS, threshold=THRESHOLD)
    assert list(c.matrices) == list(expected)
    for k, m in expected.items():
        np.testing.assert_allclose(c.matrices[k], m, atol=1e-6, err_msg=k)
    assert c.matrices["shared_fraction"][0, 2] == 1.0 and c.matrices["shared_fraction"][0, 1] == 0.5
    assert len(c.evaluation) == 3 and set(c.evaluation[0]) >= {"explained_variance", "l0"}
    # tied SAEs along the coordinate axes: latent e_k fires on rows with x_k > 0
    assert c.evaluation[0]["l0"] == pytest.approx(3.0)  # e0, e1 always, one of e2, e3 half the time
    assert c.decoder.shape == (3, 4, 4)


def test_stability_stats_leaves_out_the_expectations() -> None:
    m = np.array([[np.nan, 0.2, 0.3], [0.2, np.nan, 0.4], [0.3, 0.4, np.nan]])
    out = stability_stats({"pwmcc": m, "subspace_random_r4": np.full((3, 3), 0.25)})
    assert out == {"pwmcc": seed_stats(m).to_dict()}


def hand_checkpoints() -> tuple[list[int], dict[int, Checkpoint], torch.Tensor]:
    """Two seeds, three latents, checkpoints at steps 0, 1, 4 (see the test)."""
    steps = [0, 1, 4]
    matches = {0: [[0, 1, 2], [0, 1, 2]], 1: [[1, 1, 2], [0, 2, 2]], 4: [[1, 1, 2], [0, 2, 1]]}
    eye = torch.eye(3, dtype=torch.float64)
    start = torch.stack([eye, torch.stack([R * (eye[0] + eye[1]), eye[1], -eye[2]])])
    decoders = {0: start, 1: start, 4: torch.stack([eye, eye])}
    pw = {0: 0.5, 1: 0.6, 4: 0.8}

    def pair(v: float) -> np.ndarray:
        return np.array([[np.nan, v], [v, np.nan]])

    checkpoints = {
        s: Checkpoint(
            matrices={
                "pwmcc": pair(pw[s]),
                "hungarian_mcc": pair(pw[s] / 2),
                "subspace_random_r4": pair(0.25),
            },
            matches=torch.tensor(matches[s])[:, :, None],
            shared=torch.tensor([[1, 0, 1], [1, 1, 0]]),
            evaluation=[
                {"explained_variance": 0.1 * s, "l0": 2.0, "frac_alive": 1.0},
                {"explained_variance": 0.1 * s + 0.2, "l0": 4.0, "frac_alive": 0.5},
            ],
            decoder=decoders[s],
        )
        for s in steps
    }
    live = torch.tensor([[True, True, False], [True, True, True]])
    return steps, checkpoints, live


def test_dynamics_summary_by_hand() -> None:
    steps, checkpoints, live = hand_checkpoints()
    iso = {"pwmcc": {"mean": 0.25}, "hungarian_mcc": {"mean": 0.0}}
    s = dynamics_summary(steps, checkpoints, live, iso)
    # settle steps: seed 0 latents (1, 0, 0); seed 1 latents (0, 1, 4)
    first, mid, last = s["checkpoints"]
    assert [c["step"] for c in s["checkpoints"]] == steps
    assert [c["settled_fraction"] for c in s["checkpoints"]] == [3 / 6, 5 / 6, 1.0]
    # live latents whose match is already the final one: 2 of 5, 4 of 5, all
    assert [c["match_agreement_live"] for c in s["checkpoints"]] == [0.4, 0.8, 1.0]
    assert set(first["stability"]) == {"pwmcc", "hungarian_mcc"}
    assert first["ratio_to_isotropic"] == {"pwmcc": 2.0, "hungarian_mcc": None}
    assert last["ratio_to_isotropic"]["pwmcc"] == pytest.approx(3.2)
    assert first["explained_variance"]["mean"] == pytest.approx(0.1)
    assert mid["l0"]["mean"] == 3.0 and mid["frac_alive"]["mean"] == 0.75
    # |cos| with the final atoms: seed 0 (1, 1, 1), seed 1 (1/sqrt(2), 1, 1)
    assert first["cos_to_final"]["mean"] == pytest.approx((1 + (2 + R) / 3) / 2)
    assert last["cos_to_final"]["mean"] == pytest.approx(1.0)
    settle = s["settle"]
    assert settle["all"]["n_latents"] == 6 and settle["all"]["median"] == 0
    assert settle["all"]["fraction_settled_by_step"] == {"0": 0.5, "1": 5 / 6, "4": 1.0}
    assert settle["live"]["n_latents"] == 5
    # shared with the one other seed at the end: seed 0 latents 0, 2; seed 1 latents 0, 1
    assert settle["shared"]["n_latents"] == 4 and settle["shared"]["quantiles"]["0.9"] == 1
    assert settle["not_shared_live"]["n_latents"] == 2  # seed 0 latent 1, seed 1 latent 2
    assert settle["not_shared_live"]["quantiles"]["0.9"] == 4
    assert s["settle_per_pair"]["all"] == settle["all"]  # one other seed: the same
    assert s["final_live"] == 5 / 6 and s["final_shared_with_majority"] == 4 / 6


def test_train_dynamics_ends_at_the_trained_saes() -> None:
    x = grid_x() + 0.1 * torch.randn(16, 4, generator=torch.Generator().manual_seed(0))
    cfg = SAEConfig(architecture="standard", d_in=4, d_sae=6, batch_size=8, epochs=2, lr=0.01)
    steps = checkpoint_schedule(cfg, 16, 2)
    assert steps == [0, 1, 2, 4]
    out = train_dynamics(cfg, x, (3, 4, 5), steps, THRESHOLD)
    assert (out["total_steps"], out["checkpoint_steps"], out["seeds"]) == (4, steps, [3, 4, 5])
    assert (out["d_sae"], out["d_in"], out["architecture"]) == (6, 4, "standard")
    assert out["random"]["subspace_random"] == {"4": 1.0}  # rank 4 = d_in
    last = out["checkpoints"][-1]
    assert last["cos_to_final"]["mean"] == pytest.approx(1.0)
    assert last["settled_fraction"] == 1.0
    # the last checkpoint is the SAE that train_saes returns
    sae, _ = train_saes(cfg, x, (3, 4, 5))
    dec, enc = sae.decoder_atoms(), sae.encoder_atoms()
    with one_thread():  # as at the checkpoints
        expected = pairwise_metrics(list(dec), list(enc), threshold=THRESHOLD)
    assert last["stability"] == stability_stats(expected)
    # a progress callback sees every step and changes nothing
    seen: list[tuple[int, int]] = []
    again = train_dynamics(
        cfg, x, (3, 4, 5), steps, THRESHOLD, on_progress=lambda s, t: seen.append((s, t))
    )
    assert seen == [(s, 4) for s in range(1, 5)] and again == out


def test_train_dynamics_of_converged_training_ends_at_the_stop() -> None:
    """Training to convergence stops before the schedule's end (tol 1, window 2: after
    epoch 3 of at most 8, step 6): the checkpoints are those before the stop plus the
    stop, as a fixed schedule of 3 epochs with the same checkpoints gives them."""
    x = grid_x() + 0.1 * torch.randn(16, 4, generator=torch.Generator().manual_seed(0))
    cfg = SAEConfig(
        architecture="standard",
        d_in=4,
        d_sae=6,
        batch_size=8,
        epochs=8,
        lr=0.01,
        convergence_tol=1.0,
        convergence_window=2,
    )
    steps = checkpoint_schedule(cfg, 16, 2)
    assert steps == [0, 1, 2, 4, 8, 16]
    out = train_dynamics(cfg, x, (3, 4, 5), steps, THRESHOLD)
    assert (out["total_steps"], out["checkpoint_steps"]) == (6, [0, 1, 2, 4, 6])
    assert len(out["checkpoints"]) == 5 and out["checkpoints"][-1]["settled_fraction"] == 1.0
    fixed_cfg = dataclasses.replace(cfg, epochs=3, convergence_tol=0.0)
    fixed = train_dynamics(fixed_cfg, x, (3, 4, 5), [0, 1, 2, 4, 6], THRESHOLD)
    assert out["checkpoints"] == fixed["checkpoints"] and out["settle"] == fixed["settle"]
