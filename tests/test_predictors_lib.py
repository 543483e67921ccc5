"""Predictors of sharing (husai.predictors) and the per-pair pass they share with the
stability metrics (husai.stability.seed_pair_metrics), on hand-built SAEs."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from husai.fourier import GroundTruth
from husai.predictors import (
    PREDICTORS,
    count_shared,
    latent_properties,
    predictor_summary,
    present_ground_truth,
    shared_counts,
    shared_rate_by_decile,
)
from husai.sae import BatchedSAE, SAEConfig
from husai.stability import metric_matrices, pairwise_metrics, seed_pair_metrics

R = 1 / math.sqrt(2)
EYE = torch.eye(4)
ROT = torch.stack([EYE[0], EYE[1], R * (EYE[2] + EYE[3]), R * (EYE[2] - EYE[3])])
# seed 0: the basis; seed 1: e2, e3 rotated by 45 degrees; seed 2: the basis reordered.
# At threshold 0.9 (|cos| 1/sqrt(2) is below it) e0 and e1 are shared everywhere; e2 and e3 only
# between seeds 0 and 2; seed 1's rotated latents with no one.
DECODERS = [EYE, ROT, EYE[[2, 3, 1, 0]]]
THRESHOLD = 0.9


def tied_sae(decoders: list[torch.Tensor], b_enc: torch.Tensor | None = None) -> BatchedSAE:
    s, n, d = len(decoders), decoders[0].shape[0], decoders[0].shape[1]
    w_dec = torch.stack(decoders).to(torch.float32)
    cfg = SAEConfig(architecture="standard", d_sae=n, d_in=d)
    return BatchedSAE(
        cfg,
        (42, 123, 456)[:s],
        {
            "W_enc": w_dec.transpose(1, 2).clone(),
            "W_dec": w_dec.clone(),
            "b_enc": torch.zeros(s, n) if b_enc is None else b_enc,
            "b_dec": torch.zeros(s, d),
        },
    )


def grid_x() -> torch.Tensor:
    """16 rows (a 4 x 4 grid): e0 and e1 always +1; (x2, x3) each sign pair four times.
    So a latent along e0 or e1 fires on every row, along e2 on half of them, along
    (e2 +- e3) / sqrt(2) on a quarter."""
    signs = [(a, b) for a in (1.0, -1.0) for b in (1.0, -1.0)]
    return torch.tensor([[1.0, 1.0, a, b] for a, b in signs for _ in range(4)])


def test_seed_pair_metrics_and_count_shared_by_hand() -> None:
    pairs = seed_pair_metrics(DECODERS, DECODERS, threshold=THRESHOLD, ranks=(2,))
    assert list(pairs) == [(0, 1), (0, 2), (1, 2)]
    assert pairs[0, 1].shared_a.tolist() == [True, True, False, False]
    assert pairs[0, 2].shared_a.tolist() == [True] * 4
    assert pairs[0, 2].decoder_matching.partner.tolist() == [3, 2, 0, 1]
    m = metric_matrices(pairs, 3)
    nan = np.nan
    np.testing.assert_allclose(
        m["shared_fraction"], [[nan, 0.5, 1.0], [0.5, nan, 0.5], [1.0, 0.5, nan]]
    )
    # pair (0, 1): two atoms at |cos| 1, two at 1/sqrt(2), from either side
    assert m["pwmcc"][0, 1] == pytest.approx((2 + 2 * R) / 4)
    assert m["pwmcc"][0, 2] == pytest.approx(1.0)
    assert list(m) == list(pairwise_metrics(DECODERS, DECODERS, threshold=THRESHOLD, ranks=(2,)))
    counts = count_shared(pairs, 3, 4)
    assert counts.tolist() == [[2, 2, 1, 1], [2, 2, 0, 0], [1, 1, 2, 2]]
    assert torch.equal(shared_counts(DECODERS, DECODERS, THRESHOLD), counts)
    # without encoder atoms there is no sharing to count
    with pytest.raises(ValueError, match="without encoder atoms"):
        count_shared(seed_pair_metrics(DECODERS), 3, 4)


def test_shared_rate_by_decile_by_hand() -> None:
    # 1..10: the deciles 1, 1.9, 2.8, ..., 10 put each value in a bin of its own
    bins = shared_rate_by_decile(np.arange(1.0, 11.0), [False] * 5 + [True] * 5)
    assert [(b["low"], b["high"], b["n"]) for b in bins] == [(v, v, 1) for v in range(1, 11)]
    assert [b["shared_rate"] for b in bins] == [0.0] * 5 + [1.0] * 5
    # five 0s, five 1s and a 2: deciles 0 (x5), 1 (x5), 2 merge to edges 0, 1, 2; a value
    # on the inner edge 1 opens the upper bin
    bins = shared_rate_by_decile([0.0] * 5 + [1.0] * 5 + [2.0], [False] * 5 + [True] * 5 + [False])
    assert bins == [
        {"low": 0.0, "high": 0.0, "n": 5, "shared_rate": 0.0},
        {"low": 1.0, "high": 2.0, "n": 6, "shared_rate": 5 / 6},
    ]
    # eight 0s and two 1s: edges 0, 0.2, 1 after merging ties: two bins
    bins = shared_rate_by_decile([0.0] * 8 + [1.0] * 2, [True] + [False] * 7 + [True, True])
    assert bins == [
        {"low": 0.0, "high": 0.0, "n": 8, "shared_rate": 1 / 8},
        {"low": 1.0, "high": 1.0, "n": 2, "shared_rate": 1.0},
    ]
    assert shared_rate_by_decile([2.0] * 4, [True, False, False, False]) == [
        {"low": 2.0, "high": 2.0, "n": 4, "shared_rate": 0.25}
    ]
    assert shared_rate_by_decile([], []) == []


def test_present_ground_truth() -> None:
    dirs = torch.eye(3)
    gt = GroundTruth(
        directions=dirs,
        frequency=torch.tensor([1, 1, 2]),
        u=torch.zeros(3, dtype=torch.int64),
        v=torch.zeros(3, dtype=torch.int64),
        energy_share=torch.tensor([0.5, 0.0, 0.5], dtype=torch.float64),
    )
    assert torch.equal(present_ground_truth(gt), dirs[[0, 2]])
    none = GroundTruth(dirs, gt.frequency, gt.u, gt.v, torch.zeros(3, dtype=torch.float64))
    assert torch.equal(present_ground_truth(none), torch.zeros(1, 3))


def test_latent_properties_by_hand() -> None:
    b_enc = torch.tensor([[0.0, 0.0, 0.0, -100.0]])  # the last latent never fires
    sae = tied_sae([ROT], b_enc)
    p = latent_properties(sae, 0, grid_x(), EYE)
    assert p["live"].tolist() == [True, True, True, False]
    assert p["firing_frequency"].tolist() == [1.0, 1.0, 0.25, 0.0]
    assert p["decoder_norm"].tolist() == [1.0] * 4  # rounded: float32 round-off is a tie
    assert p["encoder_norm"].tolist() == [1.0] * 4
    assert p["max_cos_ground_truth"].tolist() == [1.0, 1.0, round(R, 6), round(R, 6)]
    assert p["purity"][3] == 0.0 and all(0.0 <= v <= 1.0 for v in p["purity"].tolist())
    assert all(p[k].dtype == torch.float64 for k in PREDICTORS)


def test_a_perfect_predictor_has_auc_one() -> None:
    b_enc = torch.zeros(3, 4)
    b_enc[1, 3] = -100.0  # seed 1's last latent (unshared) is dead: left out
    s = predictor_summary(
        tied_sae(DECODERS, b_enc), grid_x(), EYE, threshold=THRESHOLD, shared_with="majority"
    )
    assert s["seeds"] == [42, 123, 456] and s["d_sae"] == 4 and s["min_other_seeds"] == 2
    assert (s["n_latents"], s["n_live"], s["n_shared"], s["n_shared_with_any"]) == (12, 11, 6, 10)
    assert s["shared_count_histogram"] == {"0": 2, "1": 4, "2": 6}  # every latent, dead too
    assert s["per_seed"]["123"] == {"n_live": 3, "n_shared": 2, "auc": s["per_seed"]["123"]["auc"]}
    # shared latents (e0, e1) fire on every row, the others on a half or a quarter
    ff = s["auc"]["firing_frequency"]
    assert ff["pooled"] == 1.0 and ff["mean"] == 1.0 and ff["n_seeds"] == 3
    assert s["means"]["firing_frequency"] == {"shared": 1.0, "not_shared": 2.25 / 5}
    assert s["auc_shared_with_any"]["firing_frequency"] == 1.0
    # unit decoder rows: a constant, AUC one half
    assert s["auc"]["decoder_norm"]["pooled"] == 0.5
    # every shared latent has |cos| 1 with a direction; of the 5 live unshared, 4 tie at 1,
    # 1 is at 1/sqrt(2): (6 * 1 + 6 * 4 / 2) / 30
    assert s["auc"]["max_cos_ground_truth"]["pooled"] == pytest.approx(0.6)
    # deciles of (0.25, 0.5 x 4, 1 x 6): edges 0.25, 0.5, 1 -> bins [0.25], [0.5, 1]
    assert [(b["n"], b["shared_rate"]) for b in s["shared_rate_by_decile"]["firing_frequency"]] == [
        (1, 0.0),
        (10, 0.6),
    ]
    assert list(s["auc"]) == list(PREDICTORS)
