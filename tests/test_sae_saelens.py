"""Our SAEs against SAELens 6.54 itself: gradients, whole training runs, checkpoints.

SAELens is a test-only dependency; these tests are the evidence that each
architecture has SAELens's semantics and that exported checkpoints load in SAELens
and reconstruct exactly as ours do.
"""

from __future__ import annotations

import json
import warnings

import pytest
import torch

import husai.sae as hs
from husai.sae import registry
from husai.sae.saelens import from_saelens, to_saelens
from husai.serialize import to_bytes

sae_lens = pytest.importorskip("sae_lens")
from sae_lens.saes.sae import TrainStepInput  # noqa: E402

RESCALED = ("topk", "batchtopk", "matryoshka_batchtopk")
CASES = [(a, r) for a in hs.ARCHITECTURES for r in ((True, False) if a in RESCALED else (True,))]


def make_config(arch: str, rescale: bool = True, **kw) -> hs.SAEConfig:
    base = {
        "architecture": arch,
        "d_in": 16,
        "d_sae": 512,
        "k": 4,
        "l1_coefficient": 0.3,
        "l0_coefficient": 0.2,
        "jumprelu_init_threshold": 0.05,
        "jumprelu_bandwidth": 0.5,
        "matryoshka_widths": (64, 200),
        "aux_loss_coefficient": 0.7,
        "rescale_acts_by_decoder_norm": rescale,
    }
    return hs.SAEConfig(**{**base, **kw})


def saelens_training_sae(cfg: hs.SAEConfig):
    """The SAELens training SAE with the same hyperparameters."""
    from sae_lens import (
        BatchTopKTrainingSAE,
        BatchTopKTrainingSAEConfig,
        GatedTrainingSAE,
        GatedTrainingSAEConfig,
        JumpReLUTrainingSAE,
        JumpReLUTrainingSAEConfig,
        MatryoshkaBatchTopKTrainingSAE,
        MatryoshkaBatchTopKTrainingSAEConfig,
        StandardTrainingSAE,
        StandardTrainingSAEConfig,
        TopKTrainingSAE,
        TopKTrainingSAEConfig,
    )

    common = {"d_in": cfg.d_in, "d_sae": cfg.d_sae, "decoder_init_norm": cfg.decoder_init_norm}
    topk = {
        "k": cfg.k,
        "aux_loss_coefficient": cfg.aux_loss_coefficient,
        "rescale_acts_by_decoder_norm": cfg.rescale_acts_by_decoder_norm,
        **common,
    }
    arch = cfg.architecture
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if arch == "topk":
            return TopKTrainingSAE(TopKTrainingSAEConfig(**topk))
        if arch == "batchtopk":
            return BatchTopKTrainingSAE(
                BatchTopKTrainingSAEConfig(topk_threshold_lr=cfg.topk_threshold_lr, **topk)
            )
        if arch == "matryoshka_batchtopk":
            return MatryoshkaBatchTopKTrainingSAE(
                MatryoshkaBatchTopKTrainingSAEConfig(
                    topk_threshold_lr=cfg.topk_threshold_lr,
                    matryoshka_widths=list(cfg.levels),
                    **topk,
                )
            )
        if arch == "standard":
            return StandardTrainingSAE(
                StandardTrainingSAEConfig(
                    l1_coefficient=cfg.l1_coefficient,
                    l1_warm_up_steps=cfg.l1_warm_up_steps,
                    **common,
                )
            )
        if arch == "gated":
            return GatedTrainingSAE(
                GatedTrainingSAEConfig(
                    l1_coefficient=cfg.l1_coefficient,
                    l1_warm_up_steps=cfg.l1_warm_up_steps,
                    **common,
                )
            )
        if arch == "jumprelu":
            return JumpReLUTrainingSAE(
                JumpReLUTrainingSAEConfig(
                    l0_coefficient=cfg.l0_coefficient,
                    l0_warm_up_steps=cfg.l0_warm_up_steps,
                    jumprelu_bandwidth=cfg.jumprelu_bandwidth,
                    jumprelu_init_threshold=cfg.jumprelu_init_threshold,
                    **common,
                )
            )
    raise KeyError(f"no SAELens training SAE for architecture {arch!r}: add a case here")


@pytest.mark.parametrize("arch_name", hs.ARCHITECTURES)
def test_saelens_knows_each_architecture_by_its_name_and_inference_kind(arch_name) -> None:
    """Every registered architecture has a SAELens counterpart here, which the tests below
    compare it with: same training name, saved as the inference kind its spec says."""
    cfg = saelens_training_sae(make_config(arch_name)).cfg
    assert cfg.architecture() == arch_name
    assert (
        cfg.get_inference_config_class().architecture() == registry.spec(arch_name).inference_kind
    )


def load_into_saelens(
    sl, params: dict[str, torch.Tensor], buffers: dict[str, torch.Tensor], seed_index: int = 0
) -> None:
    with torch.no_grad():
        for name, value in params.items():
            v = value[seed_index]
            if name == "W_enc_rows":
                sl.W_enc.data.copy_(v.T)
            else:
                getattr(sl, name).data.copy_(v)
        if "topk_threshold" in buffers:
            sl.topk_threshold = buffers["topk_threshold"][seed_index].clone()


def saelens_params(sl, names) -> dict[str, torch.Tensor]:
    return {
        n: (sl.W_enc.T if n == "W_enc_rows" else getattr(sl, n)).detach().unsqueeze(0)
        for n in names
    }


def perturbed_init(cfg: hs.SAEConfig, seed: int = 5):
    arch = hs.architecture(cfg.architecture)
    params, buffers = arch.init_params(cfg, (seed,))
    g = torch.Generator().manual_seed(seed)
    for value in params.values():
        value.add_(0.05 * torch.randn(value.shape, generator=g))
    if "threshold" in params:
        params["threshold"].abs_()
    if "topk_threshold" in buffers:
        buffers["topk_threshold"].fill_(0.02)
    return arch, params, buffers


@pytest.mark.parametrize(("arch_name", "rescale"), CASES)
@pytest.mark.parametrize("n_dead", [0, 3, 300])
def test_one_step_loss_and_gradients_match_saelens(arch_name, rescale, n_dead) -> None:
    cfg = make_config(arch_name, rescale)
    arch, params, buffers = perturbed_init(cfg)
    sl = saelens_training_sae(cfg)
    load_into_saelens(sl, params, buffers)
    g = torch.Generator().manual_seed(1)
    xb = torch.randn(32, cfg.d_in, generator=g) * 3 + 1
    dead = torch.zeros(1, cfg.d_sae, dtype=torch.bool)
    dead[0, torch.randperm(cfg.d_sae, generator=g)[:n_dead]] = True
    coefficients = {"l1": cfg.l1_coefficient, "l0": cfg.l0_coefficient}
    out = sl.training_forward_pass(
        TrainStepInput(
            sae_in=xb,
            coefficients=coefficients,
            dead_neuron_mask=dead[0],
            n_training_steps=0,
            is_logging_step=False,
        )
    )
    out.loss.backward()
    result, grads = arch.step(params, buffers, xb[None], cfg, 0, dead)
    torch.testing.assert_close(result.loss[0], out.loss.detach(), rtol=1e-5, atol=1e-5)
    for name, grad in grads.items():
        ref = sl.W_enc.grad.T if name == "W_enc_rows" else getattr(sl, name).grad
        torch.testing.assert_close(
            grad[0],
            ref,
            rtol=1e-4,
            atol=1e-5 * float(ref.abs().max()),
            msg=lambda m, name=name: f"{name}: {m}",
        )
    if "topk_threshold" in buffers:
        torch.testing.assert_close(
            buffers["topk_threshold"][0], sl.topk_threshold.detach(), rtol=1e-6, atol=1e-9
        )


@pytest.mark.parametrize(("arch_name", "rescale"), CASES)
def test_training_matches_the_saelens_trainer(arch_name, rescale) -> None:
    """train_saes against SAELens's SAETrainer fed the same batches from the same init:
    Adam, per-SAE clipping, dead-latent tracking with AuxK, lr and coefficient warm-up."""
    from sae_lens.config import LoggingConfig, SAETrainerConfig
    from sae_lens.training.sae_trainer import SAETrainer

    cfg = make_config(
        arch_name,
        rescale,
        d_sae=64,
        matryoshka_widths=(16, 40),
        batch_size=32,
        epochs=2,
        lr=3e-3,
        lr_warm_up_steps=3,
        l1_warm_up_steps=4,
        l0_warm_up_steps=4,
        dead_feature_window=2,
        decoder_init_norm=0.1,
    )
    g = torch.Generator().manual_seed(3)
    x = torch.randn(192, cfg.d_in, generator=g) @ torch.randn(cfg.d_in, cfg.d_in, generator=g) + 1
    seed = 11
    ours, _ = hs.train_saes(cfg, x, [seed])

    arch = hs.architecture(arch_name)
    params, buffers = arch.init_params(cfg, (seed,))
    sl = saelens_training_sae(cfg)
    load_into_saelens(sl, params, buffers)
    data_gen = hs.base.seed_generator(seed, "data")
    batches = [
        x[perm[i : i + cfg.batch_size]]
        for perm in (torch.randperm(x.shape[0], generator=data_gen) for _ in range(cfg.epochs))
        for i in range(0, x.shape[0], cfg.batch_size)
    ]
    trainer = SAETrainer(
        cfg=SAETrainerConfig(
            total_training_samples=len(batches) * cfg.batch_size,
            train_batch_size_samples=cfg.batch_size,
            lr=cfg.lr,
            lr_end=cfg.lr,
            lr_warm_up_steps=cfg.lr_warm_up_steps,
            dead_feature_window=cfg.dead_feature_window,
            feature_sampling_window=10**9,
            logger=LoggingConfig(log_to_wandb=False),
        ),
        sae=sl,
        data_provider=iter(batches),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.fit()
    ref_buffers = (
        {"topk_threshold": sl.topk_threshold.detach().reshape(1).to(torch.float64)}
        if "topk_threshold" in buffers
        else {}
    )
    ref = arch.to_inference(saelens_params(sl, params), ref_buffers, cfg)
    for name, value in ours.params.items():
        torch.testing.assert_close(
            value, ref[name], rtol=2e-3, atol=2e-4, msg=lambda m, name=name: f"{name}: {m}"
        )


def trained(arch_name: str, seeds=(1, 2)) -> tuple[hs.BatchedSAE, torch.Tensor]:
    cfg = make_config(
        arch_name,
        d_sae=64,
        matryoshka_widths=(16,),
        batch_size=32,
        epochs=2,
        lr=3e-3,
        dead_feature_window=2,
        normalize_activations="expected_average_only_in",
    )
    g = torch.Generator().manual_seed(4)
    x = (
        torch.randn(256, cfg.d_in, generator=g) @ torch.randn(cfg.d_in, cfg.d_in, generator=g) * 7
        + 2
    )
    sae, history = hs.train_saes(cfg, x, list(seeds))
    assert history.scale != 1.0
    return sae, x


@pytest.mark.parametrize("arch_name", hs.ARCHITECTURES)
def test_exported_checkpoints_load_in_saelens_and_reconstruct_the_same(arch_name, tmp_path) -> None:
    sae, x = trained(arch_name)
    ours_acts = sae.encode(x)
    ours_out = sae.decode(ours_acts)
    for i, seed in enumerate(sae.seeds):
        cfg, state = to_saelens(sae, i, {"hook_name": "blocks.0.hook_resid_post"})
        folder = tmp_path / f"seed{seed}"
        folder.mkdir()
        (folder / "cfg.json").write_text(json.dumps(cfg))
        (folder / "sae_weights.safetensors").write_bytes(to_bytes(state))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            loaded = sae_lens.SAE.load_from_disk(folder)
        assert loaded.cfg.architecture() == hs.INFERENCE_KIND[arch_name]
        with torch.no_grad():
            torch.testing.assert_close(loaded.encode(x), ours_acts[i], rtol=1e-5, atol=1e-4)
            torch.testing.assert_close(loaded(x), ours_out[i], rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("arch_name", hs.ARCHITECTURES)
def test_saelens_format_round_trips_exactly(arch_name) -> None:
    sae, _ = trained(arch_name, seeds=(3,))
    cfg, state = to_saelens(sae, 0)
    back = from_saelens(json.loads(json.dumps(cfg)), state)
    assert back.config == sae.config and back.seeds == (3,)
    for name, value in sae.params.items():
        assert torch.equal(back.params[name], value)


@pytest.mark.parametrize(("arch_name", "rescale"), CASES)
def test_folding_the_scale_and_decoder_norms_preserves_the_function(
    arch_name, rescale, tmp_path
) -> None:
    """Canonical SAE on raw x == SAELens's SAE on scaled x, divided by the scale."""
    cfg = make_config(arch_name, rescale, d_sae=64, matryoshka_widths=(16,))
    arch, params, buffers = perturbed_init(cfg, seed=9)
    scale = 0.37
    canonical = hs.BatchedSAE(cfg, (9,), arch.to_inference(params, buffers, cfg, scale))
    if rescale and arch_name in RESCALED:
        assert torch.allclose(canonical.W_dec.norm(dim=-1), torch.ones(1, cfg.d_sae))
    sl = saelens_training_sae(cfg)
    load_into_saelens(sl, params, buffers)
    if arch_name in ("batchtopk", "matryoshka_batchtopk"):  # inference is SAELens's JumpReLU save
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sl.save_inference_model(tmp_path)
            sl = sae_lens.SAE.load_from_disk(tmp_path)
    g = torch.Generator().manual_seed(2)
    x = torch.randn(64, cfg.d_in, generator=g) * 5
    with torch.no_grad():
        expected = sl(x * scale) / scale
    torch.testing.assert_close(canonical.reconstruct(x)[0], expected, rtol=1e-4, atol=1e-4)
