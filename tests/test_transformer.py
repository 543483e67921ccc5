"""The ground-truth transformer: the exact fast path and the training loop."""

from __future__ import annotations

import pytest
import torch

from husai import transformer as tf
from husai.task import make_task


def small_model(p: int = 23, seed: int = 3) -> tf.HookedTransformer:
    return tf.build_model(tf.model_config(p, d_model=32, n_heads=4, d_head=8, d_mlp=64, seed=seed))


def test_fast_path_equals_the_hooked_transformer_at_init() -> None:
    task = make_task(23, 0.5, 0)
    model = small_model()
    with torch.no_grad():
        full = model(task.tokens)[:, -1]
        fast = tf.last_position_logits(model, task.tokens)
    torch.testing.assert_close(fast, full, rtol=1e-5, atol=1e-5)


def test_fast_path_equals_the_hooked_transformer_with_nonzero_biases() -> None:
    task = make_task(23, 0.5, 0)
    model = small_model()
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.rsplit(".", 1)[-1].startswith("b_"):
                param.copy_(0.3 * torch.randn(param.shape, generator=gen))
        full = model(task.tokens)[:, -1]
        fast = tf.last_position_logits(model, task.tokens)
    torch.testing.assert_close(fast, full, rtol=1e-5, atol=1e-5)


def test_initialisation_depends_only_on_the_seed() -> None:
    a, b, c = small_model(seed=1), small_model(seed=1), small_model(seed=2)
    assert all(torch.equal(x, y) for x, y in zip(a.parameters(), b.parameters(), strict=True))
    assert not torch.equal(a.embed.W_E, c.embed.W_E)


def test_training_learns_is_deterministic_and_keeps_biases_zero() -> None:
    task = make_task(23, 0.7, 0)
    cfg = tf.TrainConfig(epochs=150, lr=3e-3, log_every=50)

    def run() -> tuple[tf.HookedTransformer, tf.TrainResult]:
        model = small_model()
        return model, tf.train(model, task, cfg)

    (m1, r1), (m2, _) = run(), run()
    assert [rec.epoch for rec in r1.curve if rec.epoch % 50 == 0] == [0, 50, 100, 150]
    assert r1.curve[-1].train_accuracy >= 0.98  # memorises: chance is 1/23
    assert r1.curve[-1].train_loss < 0.05 * r1.curve[0].train_loss
    for (name, x), y in zip(m1.state_dict().items(), m2.state_dict().values(), strict=True):
        assert torch.equal(x, y), name
    assert float(m1.blocks[0].mlp.b_in.abs().max()) == 0.0
    # the curve's last record agrees with a full HookedTransformer evaluation
    final = tf.evaluate(m1, task)
    assert final["train_accuracy"] == pytest.approx(r1.curve[-1].train_accuracy)
    assert final["test_loss"] == pytest.approx(r1.curve[-1].test_loss, rel=1e-4)


def test_grokking_epoch_is_exact() -> None:
    task = make_task(23, 0.7, 0)
    dense = tf.train(small_model(), task, tf.TrainConfig(epochs=150, lr=3e-3, log_every=1))
    first = next(r.epoch for r in dense.curve if r.test_accuracy >= 0.3)
    assert 20 < first < 150  # generalisation comes well after memorisation here
    cfg = tf.TrainConfig(epochs=150, lr=3e-3, log_every=1000, grok_accuracy=0.3)
    sparse = tf.train(small_model(), task, cfg)
    assert sparse.grokking_epoch == first
    # after grokking only the scheduled records remain: start, grokking epoch, end
    assert [r.epoch for r in sparse.curve] == [0, first, 150]


def test_grid_activations_shape_and_order() -> None:
    task = make_task(7, 0.5, 0)
    model = small_model(p=7)
    acts = tf.grid_activations(model, task, "blocks.0.hook_resid_post", -1)
    assert acts.shape == (49, 32) and acts.dtype == torch.float32
    with torch.no_grad():
        _, cache = model.run_with_cache(task.tokens[10:11])
    torch.testing.assert_close(acts[10], cache["blocks.0.hook_resid_post"][0, -1])
    z = tf.grid_activations(model, task, "blocks.0.attn.hook_z", -1)
    assert z.shape == (49, 4 * 8)


def test_flush_subnormal_grad_zeroes_only_subnormal_gradient_entries() -> None:
    x = torch.tensor([1.0, 2.0, 3.0, 4.0], requires_grad=True)
    y = tf.flush_subnormal_grad(x)
    assert torch.equal(y, x)
    # upstream gradient: subnormal (1e-40), smallest normal, ordinary, zero
    tiny = torch.finfo(torch.float32).tiny
    upstream = torch.tensor([1e-40, tiny, 1e-3, 0.0])
    assert upstream[0] != 0 and upstream[0].abs() < tiny  # really subnormal in float32
    y.backward(upstream)
    assert torch.equal(x.grad, torch.tensor([0.0, tiny, 1e-3, 0.0]))
