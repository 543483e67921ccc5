"""SAEBench metrics on hand-computed cases."""

from __future__ import annotations

import pytest
import torch

import husai.sae as hs


def identity_sae(d: int = 3) -> hs.BatchedSAE:
    """A standard SAE with latents +e_i and -e_i: relu splits x exactly, so x_hat = x."""
    eye = torch.eye(d)
    w_enc = torch.cat([eye, -eye], dim=1).unsqueeze(0)  # [1, d, 2d]
    w_dec = torch.cat([eye, -eye], dim=0).unsqueeze(0)  # [1, 2d, d]
    config = hs.SAEConfig(architecture="standard", d_in=d, d_sae=2 * d)
    return hs.BatchedSAE(
        config,
        (0,),
        {
            "W_enc": w_enc,
            "b_enc": torch.zeros(1, 2 * d),
            "W_dec": w_dec,
            "b_dec": torch.zeros(1, d),
        },
    )


def test_perfect_reconstruction() -> None:
    x = torch.tensor([[1.0, 0.0, 0.0], [0.0, -2.0, 0.0], [3.0, 4.0, 0.0], [1.0, 1.0, -1.0]])
    (m,) = hs.evaluate(identity_sae(), x)
    assert m["explained_variance"] == pytest.approx(1.0)
    assert m["mse"] == pytest.approx(0.0)
    assert m["cossim"] == pytest.approx(1.0)
    assert m["l2_ratio"] == pytest.approx(1.0)
    assert m["l0"] == pytest.approx((1 + 1 + 2 + 3) / 4)
    # fired: +e0, -e1, +e1, -e2 (not -e0, +e2)
    assert m["frac_alive"] == pytest.approx(4 / 6)


def test_reconstructing_the_mean_explains_nothing() -> None:
    x = torch.tensor([[1.0, 2.0], [3.0, 2.0], [2.0, 5.0]])
    mean = x.mean(0)
    config = hs.SAEConfig(architecture="standard", d_in=2, d_sae=2)
    sae = hs.BatchedSAE(
        config,
        (0,),
        {
            "W_enc": torch.zeros(1, 2, 2),
            "b_enc": -torch.ones(1, 2),
            "W_dec": torch.ones(1, 2, 2),
            "b_dec": mean.unsqueeze(0),
        },
    )
    (m,) = hs.evaluate(sae, x)
    assert m["explained_variance"] == pytest.approx(0.0, abs=1e-7)
    assert m["l0"] == 0 and m["frac_alive"] == 0
    expected_mse = float((x - mean).pow(2).sum(-1).mean())
    assert m["mse"] == pytest.approx(expected_mse)
    cos = torch.nn.functional.cosine_similarity(x, mean.expand_as(x), dim=-1).mean()
    assert m["cossim"] == pytest.approx(float(cos))
    assert m["l2_ratio"] == pytest.approx(float((mean.norm() / x.norm(dim=-1)).mean()))


def test_explained_variance_is_over_the_whole_dataset_and_per_seed() -> None:
    """Half the variance lost -> 0.5; chunking does not change the answer; seeds separate."""
    x = torch.tensor([[1.0, 1.0], [-1.0, -1.0], [1.0, -1.0], [-1.0, 1.0]])
    config = hs.SAEConfig(architecture="standard", d_in=2, d_sae=2)
    e0 = torch.tensor([[1.0, 0.0], [0.0, 0.0]])
    w_enc = torch.stack([torch.eye(2), e0])  # seed 0 keeps x (positive part), seed 1 ...
    w_dec = torch.stack([torch.eye(2), e0])
    sae = hs.BatchedSAE(
        config,
        (0, 1),
        {"W_enc": w_enc, "b_enc": torch.zeros(2, 2), "W_dec": w_dec, "b_dec": torch.zeros(2, 2)},
    )
    x_hat = sae.reconstruct(x)
    total = float(x.pow(2).sum())  # mean is 0
    expected = [1 - float((x_hat[i] - x).pow(2).sum()) / total for i in range(2)]
    for chunk in (1, 3, 100):
        got = [m["explained_variance"] for m in hs.evaluate(sae, x, chunk=chunk)]
        assert got == pytest.approx(expected)
    assert expected[0] == pytest.approx(0.5)  # relu keeps the positive half of the energy
    assert expected[1] == pytest.approx(0.25)
