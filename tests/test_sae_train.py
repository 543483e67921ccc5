"""The SAE training engine: known answers, determinism, seed independence, exact kernels."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import husai.sae as hs
from husai.errors import HusaiError, ParamError
from husai.sae import sparse
from husai.sae.sparse import topk_indices
from husai.sae.train import Adam


def planted(n: int = 4096, d_in: int = 32, n_atoms: int = 48, k: int = 3, seed: int = 0):
    """x = sparse codes @ a planted dictionary of unit atoms: k atoms per input,
    magnitudes uniform in [1, 2]."""
    g = torch.Generator().manual_seed(seed)
    atoms = torch.randn(n_atoms, d_in, generator=g)
    atoms /= atoms.norm(dim=-1, keepdim=True)
    idx = torch.rand(n, n_atoms, generator=g).argsort(dim=-1)[:, :k]
    codes = torch.zeros(n, n_atoms).scatter_(1, idx, 1 + torch.rand(n, k, generator=g))
    return codes @ atoms, atoms


def recovered(sae: hs.BatchedSAE, atoms: torch.Tensor, threshold: float = 0.9) -> torch.Tensor:
    """Per seed: share of planted atoms whose best decoder atom has |cos| >= threshold."""
    cos = (atoms @ sae.decoder_atoms().transpose(1, 2)).abs().amax(-1)
    return (cos >= threshold).float().mean(-1)


PLANTED = {
    "d_in": 32,
    "d_sae": 96,
    "k": 3,
    "lr": 1e-2,
    "batch_size": 128,
    "epochs": 10,
    "dead_feature_window": 20,
}


@pytest.fixture(scope="module")
def planted_data():
    return planted()


def test_topk_recovers_the_planted_dictionary(planted_data) -> None:
    x, atoms = planted_data
    sae, history = hs.train_saes(hs.SAEConfig(architecture="topk", **PLANTED), x, [1, 2])
    assert recovered(sae, atoms).min() >= 0.9
    metrics = hs.evaluate(sae, x)
    assert all(m["l0"] == 3.0 for m in metrics)
    assert all(m["explained_variance"] > 0.9 for m in metrics)
    assert history.loss.shape == (10, 2) and history.loss[-1].max() < history.loss[0].min()


@pytest.mark.parametrize(
    ("arch", "extra", "min_recovered", "max_l0"),
    [
        ("batchtopk", {}, 0.8, 3.6),
        ("matryoshka_batchtopk", {"matryoshka_widths": (24,)}, 0.75, 3.9),
        ("standard", {"l1_coefficient": 0.3}, 0.8, 15.0),
        ("gated", {"l1_coefficient": 0.3}, 0.8, 15.0),
        (
            "jumprelu",
            {"l0_coefficient": 0.05, "jumprelu_init_threshold": 0.1, "jumprelu_bandwidth": 0.1},
            0.7,
            8.0,
        ),
    ],
)
def test_other_architectures_do_something_sensible(
    planted_data, arch, extra, min_recovered, max_l0
) -> None:
    x, atoms = planted_data
    sae, _ = hs.train_saes(hs.SAEConfig(architecture=arch, **{**PLANTED, **extra}), x, [1])
    (m,) = hs.evaluate(sae, x)
    assert float(recovered(sae, atoms)[0]) >= min_recovered
    assert m["explained_variance"] > 0.9
    assert 2.0 <= m["l0"] <= max_l0  # sparse (96 latents, 3 true atoms per input)


def small_config(arch: str = "topk", **kw) -> hs.SAEConfig:
    base = {
        "architecture": arch,
        "d_in": 16,
        "d_sae": 48,
        "k": 4,
        "lr": 3e-3,
        "batch_size": 32,
        "epochs": 2,
        "dead_feature_window": 3,
        "l1_coefficient": 0.5,
        "l0_coefficient": 0.1,
        "matryoshka_widths": (12,),
        "normalize_activations": "expected_average_only_in",
    }
    return hs.SAEConfig(**{**base, **kw})


def data(n: int = 300, d: int = 16) -> torch.Tensor:
    g = torch.Generator().manual_seed(7)
    return torch.randn(n, d, generator=g) @ torch.randn(d, d, generator=g) + 3.0


@pytest.mark.parametrize("arch", hs.ARCHITECTURES)
def test_rerun_is_bit_identical_and_seeds_differ(arch) -> None:
    x = data()
    a, ha = hs.train_saes(small_config(arch), x, [3, 4])
    b, hb = hs.train_saes(small_config(arch), x, [3, 4])
    for name in a.params:
        assert torch.equal(a.params[name], b.params[name]), name
    assert torch.equal(ha.loss, hb.loss)
    assert not torch.equal(a.W_dec[0], a.W_dec[1])


@pytest.mark.parametrize("arch", hs.ARCHITECTURES)
def test_a_seed_trains_the_same_alone_or_in_a_batch(arch) -> None:
    x = data()
    batch, _ = hs.train_saes(small_config(arch), x, [3, 4, 5])
    alone, _ = hs.train_saes(small_config(arch), x, [4])
    for name, value in alone.params.items():
        assert torch.equal(batch.params[name][1], value[0]), name


@pytest.mark.parametrize("arch", ["topk", "batchtopk", "matryoshka_batchtopk"])
@pytest.mark.parametrize("n_dead", [(3, 200), (100, 300)])
def test_auxk_of_a_seed_does_not_depend_on_the_dead_latents_of_others(arch, n_dead) -> None:
    """One step, seed 0 with fewer dead latents than seed 1 (fewer than AuxK's k_aux = 32,
    so its picks are padded, or more): bit-identical to seed 0 alone."""
    config = small_config(arch, d_in=64, d_sae=512, k=8, matryoshka_widths=(64, 200))
    impl = hs.architecture(arch)
    both, buffers2 = impl.init_params(config, (1, 2))
    alone, buffers1 = impl.init_params(config, (1,))
    g = torch.Generator().manual_seed(0)
    xb = torch.randn(2, 64, 64, generator=g)
    dead = torch.zeros(2, 512, dtype=torch.bool)
    dead[0, torch.randperm(512, generator=g)[: n_dead[0]]] = True
    dead[1, torch.randperm(512, generator=g)[: n_dead[1]]] = True
    r2, g2 = impl.step(both, buffers2, xb, config, 0, dead)
    r1, g1 = impl.step(alone, buffers1, xb[:1], config, 0, dead[:1])
    assert torch.equal(r2.loss[0], r1.loss[0])
    for name, grad in g1.items():
        assert torch.equal(g2[name][0], grad[0]), name


def test_checkpoints_are_canonical_snapshots_at_the_requested_steps() -> None:
    x = data()
    config = small_config("topk")
    steps = hs.steps_per_epoch(x.shape[0], config.batch_size) * config.epochs
    seen = {}
    final, _ = hs.train_saes(
        config,
        x,
        [3],
        checkpoint_steps=[0, 5, steps],
        on_checkpoint=lambda step, sae: seen.__setitem__(step, sae),
    )
    assert sorted(seen) == [0, 5, steps]
    for name in final.params:
        assert torch.equal(seen[steps].params[name], final.params[name])
    init = hs.init_saes(config, [3])
    torch.testing.assert_close(seen[0].decoder_atoms(), init.decoder_atoms())
    torch.testing.assert_close(seen[0].encoder_atoms(), init.encoder_atoms())
    assert torch.allclose(seen[5].W_dec.norm(dim=-1), torch.ones(1, config.d_sae))
    with pytest.raises(HusaiError, match="checkpoint steps"):
        hs.train_saes(config, x, [3], checkpoint_steps=[steps + 1])


def test_init_matches_saelens_conventions() -> None:
    config = small_config("topk", decoder_init_norm=0.1)
    sae = hs.init_saes(config, [1, 2])
    torch.testing.assert_close(sae.W_dec.norm(dim=-1), torch.full((2, 48), 0.1))
    assert torch.equal(sae.W_enc, sae.W_dec.transpose(1, 2))
    assert float(sae.b_dec.abs().max()) == 0 and float(sae.params["b_enc"].abs().max()) == 0
    assert torch.equal(hs.init_saes(config, [2]).W_dec[0], sae.W_dec[1])


def test_wrong_width_is_a_one_line_error() -> None:
    with pytest.raises(
        HusaiError,
        match=r"activations have shape \(300, 16\) but the SAE config "
        r"has d_in = 8",
    ):
        hs.train_saes(small_config(d_in=8, matryoshka_widths=()), data(), [1])
    sae = hs.init_saes(small_config(), [1])
    with pytest.raises(HusaiError, match="activations have width 8 but the SAE has d_in = 16"):
        hs.evaluate(sae, torch.zeros(5, 8))


@pytest.mark.parametrize(
    ("n", "k"), [(1024, 32), (1000, 7), (5000, 40), (64, 8), (736, 64), (40, 39), (262144, 8192)]
)
def test_topk_indices_is_torch_topk_set_in_ascending_order(n, k) -> None:
    g = torch.Generator().manual_seed(n)
    h = torch.randn(2 if n > 10000 else 40, n, generator=g)
    ours = topk_indices(h, k)
    assert torch.equal(ours, torch.topk(h, k, dim=-1).indices.sort(-1).values)


def test_topk_indices_takes_the_threshold_path_and_falls_back_on_ties() -> None:
    g = torch.Generator().manual_seed(0)
    h = torch.randn(50, 1024, generator=g)
    fast = sparse._topk_by_threshold(h, 32, 8, 128)
    assert fast is not None and torch.equal(fast, topk_indices(h, 32))
    # ties at the k-th value (equal rows), NaN and rows with fewer than k finite entries:
    # the threshold path declines and the torch.topk fallback gives a correct top-k
    tied = torch.zeros(3, 1024)
    tied[:, :64] = 1.0
    tied[1, 5] = float("nan")
    tied[2, :] = float("-inf")
    tied[2, 100:110] = 2.0
    assert sparse._topk_by_threshold(tied, 32, 8, 128) is None
    got = topk_indices(tied, 32)
    assert bool((got.diff(dim=-1) > 0).all())
    assert torch.equal(tied[0].gather(-1, got[0]), torch.ones(32))
    assert 5 in got[1].tolist()  # NaN ranks above every number, as in torch.topk
    assert set(range(100, 110)) <= set(got[2].tolist())


def test_threshold_count_is_per_row_not_in_total() -> None:
    """A row with a NaN (k - 1 entries reach its bound) beside a row with a tie (k + 1)
    has k * R entries in all: the threshold step must still decline."""
    k = 4
    a = np.array(
        [[9.0, 8.0, 7.0, np.nan, 1.0, 0.0], [9.0, 8.0, 7.0, 5.0, 5.0, 0.0]], dtype=np.float32
    )
    assert sparse._at_least(a, sparse._kth_largest(a, k), k) is None
    assert sparse._at_least(
        a[1:, [0, 1, 2, 3, 5]], np.array([5.0], dtype=np.float32), k
    ).tolist() == [[0, 1, 2, 3]]


@pytest.mark.parametrize("n_ids", [5000, 70000])
def test_stable_order_is_a_stable_sort(n_ids) -> None:
    ids = torch.randint(0, n_ids, (20000,), generator=torch.Generator().manual_seed(1))
    assert torch.equal(sparse._stable_order(ids, n_ids), torch.sort(ids, stable=True).indices)


def test_thin_adam_equals_torch_fused_adam() -> None:
    g = torch.Generator().manual_seed(0)
    ours = [torch.randn(3, 5, generator=g), torch.randn(3, generator=g)]
    ref = [p.clone() for p in ours]
    opt = torch.optim.Adam(ref, lr=1e-2, betas=(0.9, 0.99), eps=1e-8, fused=True)
    adam = Adam(ours, betas=(0.9, 0.99))
    for _ in range(5):
        grads = [torch.randn(p.shape, generator=g) for p in ours]
        for p, gr in zip(ref, grads, strict=True):
            p.grad = gr.clone()
        opt.step()
        adam.step(grads, 1e-2)
    for a, b in zip(ours, ref, strict=True):
        assert torch.equal(a, b)


def test_importing_the_sae_package_stays_light() -> None:
    """Sweep stages start a process each: husai.sae must not pull in TransformerLens or SAELens."""
    import subprocess
    import sys

    code = (
        "import sys, husai.sae, husai.config, stages.saes; "
        "print(sorted(m for m in ('transformer_lens', 'sae_lens') if m in sys.modules))"
    )
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=root,
        env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"},
    )
    assert out.stdout.strip() == "[]"


# ----------------------------------------------------------------------------- convergence


def same_tensors(a: hs.BatchedSAE, b: hs.BatchedSAE) -> bool:
    return a.params.keys() == b.params.keys() and all(
        torch.equal(a.params[n], b.params[n]) for n in a.params
    )


@pytest.mark.parametrize("arch", ["topk", "standard"])
def test_training_to_convergence_stops_early_and_freezes_each_seed_at_its_own_stop(arch) -> None:
    x = data()
    config = small_config(arch, epochs=40, convergence_tol=0.02, convergence_window=2)
    per_epoch = hs.steps_per_epoch(x.shape[0], config.batch_size)
    sae, history = hs.train_saes(config, x, [3, 4, 5])
    assert history.converged == (True, True, True)
    assert history.epochs == max(history.seed_epochs) < config.epochs
    assert history.steps == history.epochs * per_epoch < config.epochs * per_epoch
    assert history.seed_steps == tuple(e * per_epoch for e in history.seed_epochs)
    assert len(set(history.seed_epochs)) > 1  # the seeds stop at different epochs here
    assert history.loss.shape == (history.epochs, 3)
    for i, e in enumerate(history.seed_epochs):
        # the criterion holds at the seed's stop and at no epoch before it
        loss = history.loss[:e, i].double()
        gains = (loss[:-2] - loss[2:]) / loss[:-2]
        assert gains[-1] < 0.02 and bool((gains[:-1] >= 0.02).all())
        assert bool(history.loss[e:, i].isnan().all()) and history.last("loss")[i] == loss[-1]
        # the seed's SAE is what a fixed schedule of its epochs gives, and what training it
        # alone to convergence gives: stopping couples no seeds
        fixed, fixed_history = hs.train_saes(small_config(arch, epochs=e), x, [[3, 4, 5][i]])
        assert same_tensors(sae.select(i), fixed)
        if e == history.epochs:  # the last to stop: alone it stops there too
            alone, _ = hs.train_saes(config, x, [[3, 4, 5][i]])
            assert same_tensors(alone, fixed)
        assert torch.equal(history.loss[:e, i], fixed_history.loss[:, 0])
    assert history.final_metrics == hs.evaluate(sae, x)


def test_a_tiny_tolerance_trains_every_epoch_and_reports_no_convergence() -> None:
    x = data()
    config = small_config(epochs=6, convergence_tol=1e-9, convergence_window=2)
    sae, history = hs.train_saes(config, x, [3, 4])
    assert history.converged == (False, False)
    assert history.epochs == 6 and history.seed_epochs == (6, 6)
    assert history.steps == 6 * hs.steps_per_epoch(x.shape[0], config.batch_size)
    fixed, fixed_history = hs.train_saes(small_config(epochs=6), x, [3, 4])
    assert same_tensors(sae, fixed) and torch.equal(history.loss, fixed_history.loss)


@pytest.mark.parametrize("arch", ["topk", "jumprelu"])
def test_tol_zero_is_the_fixed_schedule(arch) -> None:
    """tol = 0 ignores the window and reports no convergence; the criterion's bookkeeping
    (tol > 0 with a window it never reaches) leaves training bit-identical."""
    x = data()
    checkpoints: dict[int, hs.BatchedSAE] = {}
    fixed, h0 = hs.train_saes(
        small_config(arch, epochs=3),
        x,
        [3, 4],
        checkpoint_steps=[0, 7, 30],
        on_checkpoint=lambda step, sae: checkpoints.__setitem__(step, sae),
    )
    assert h0.converged is None and h0.epochs == 3 and h0.seed_epochs == (3, 3)
    assert h0.steps == 3 * hs.steps_per_epoch(x.shape[0], 32) and sorted(checkpoints) == [0, 7, 30]
    other_window, h1 = hs.train_saes(small_config(arch, epochs=3, convergence_window=1), x, [3, 4])
    unreached, h2 = hs.train_saes(
        small_config(arch, epochs=3, convergence_tol=0.5, convergence_window=3), x, [3, 4]
    )
    assert h2.converged == (False, False)
    for sae, h in ((other_window, h1), (unreached, h2)):
        assert same_tensors(sae, fixed) and h.steps == h0.steps
        for curve in ("loss", "mse", "l0", "dead"):
            assert torch.equal(getattr(h, curve), getattr(h0, curve)), curve


def test_convergence_waits_for_the_warm_ups_the_architecture_reads() -> None:
    """With tol 1 (any loss above 0 counts as converged) and window 1 the criterion is
    first checked after the second epoch, unless an epoch-mean loss before the window
    would include a warm-up step: L1 warm-up delays a standard SAE, not a TopK one."""
    x = data()
    per_epoch = hs.steps_per_epoch(x.shape[0], 32)
    kw = {"epochs": 10, "convergence_tol": 1.0, "convergence_window": 1}
    for arch, l1_warm_up, stop in [
        ("standard", 0, 2),
        ("standard", 3 * per_epoch, 5),
        ("topk", 3 * per_epoch, 2),
    ]:
        _, history = hs.train_saes(small_config(arch, l1_warm_up_steps=l1_warm_up, **kw), x, [3])
        assert history.seed_epochs == (stop,) and history.converged == (True,), (arch, l1_warm_up)


def test_checkpoints_of_converged_training_stop_at_the_stop_with_frozen_seeds() -> None:
    x = data()
    config = small_config(epochs=40, convergence_tol=0.02, convergence_window=2)
    per_epoch = hs.steps_per_epoch(x.shape[0], config.batch_size)
    seen: dict[int, hs.BatchedSAE] = {}
    steps = list(range(0, per_epoch * config.epochs + 1, per_epoch))
    sae, history = hs.train_saes(
        config, x, [3, 4, 5], checkpoint_steps=steps, on_checkpoint=seen.__setitem__
    )
    assert sorted(seen) == [s for s in steps if s <= history.steps] and history.steps in seen
    assert same_tensors(seen[history.steps], sae)
    first = min(history.seed_epochs) * per_epoch
    assert first < history.steps
    i = history.seed_epochs.index(min(history.seed_epochs))
    assert same_tensors(seen[first].select(i), sae.select(i))  # frozen from its stop on


@pytest.mark.parametrize(("arch", "extra"), [("topk", {}), ("standard", {"l1_coefficient": 0.01})])
def test_explained_variance_criterion_and_atom_drift_recomputed(arch, extra) -> None:
    """``convergence = "explained_variance"``: recomputed from a fixed-schedule run of the
    same seed, each seed stops at the first epoch whose explained-variance gain over the
    window is below tol, and at no epoch before it; its SAE is that epoch's state, and
    its ``atom_drift`` is the mean 1 - cos of the atoms that fired in that epoch against
    their state a window before."""
    x = data()
    tol, window = 0.01, 2
    config = small_config(
        arch,
        epochs=40,
        convergence_tol=tol,
        convergence_window=window,
        convergence="explained_variance",
        **extra,
    )
    per_epoch = hs.steps_per_epoch(x.shape[0], config.batch_size)
    seeds = [3, 4]
    sae, history = hs.train_saes(config, x, seeds)
    assert history.converged == (True, True) and history.epochs < config.epochs
    scale = hs.activation_scale(x, config)
    xs = x.double() * scale
    variance = float((xs - xs.mean(0)).pow(2).sum(1).mean())
    for i, (seed, stop) in enumerate(zip(seeds, history.seed_epochs, strict=True)):
        states: dict[int, hs.BatchedSAE] = {}
        alone, h = hs.train_saes(
            small_config(arch, epochs=stop, **extra),
            x,
            [seed],
            checkpoint_steps=[(stop - window) * per_epoch, stop * per_epoch],
            on_checkpoint=states.__setitem__,
        )
        assert same_tensors(sae.select(i), alone)
        ev = 1.0 - h.mse[:, 0].double() / variance  # epoch-mean training EV
        gains = ev[window:] - ev[:-window]  # gain after epoch window + 1, ...
        assert gains[-1] < tol and bool((gains[:-1] >= tol).all()), (seed, gains)
        # drift: the fired set of the last epoch is 1 - dead; recompute from the states
        now = states[stop * per_epoch].params["W_dec"][0].double()
        before = states[(stop - window) * per_epoch].params["W_dec"][0].double()
        cos = torch.nn.functional.cosine_similarity(now, before, dim=1)
        drift = history.atom_drift[i]
        assert drift is not None and 0.0 <= drift <= float((1 - cos).max()) + 1e-12
        if arch == "standard":  # with a tiny L1 every latent fires: the mean over all of them
            assert h.dead[-1, 0] == 0
            assert drift == pytest.approx(float((1 - cos).mean()), rel=1e-5)
        else:  # some latents were dead in the last epoch: a mean over the others
            assert h.dead[-1, 0] > 0 and drift != pytest.approx(float((1 - cos).mean()))


def test_the_convergence_criterion_is_validated() -> None:
    with pytest.raises(ParamError) as info:
        small_config(convergence="atoms").validate()
    assert info.value.key == "sae.convergence"


def test_fixed_schedule_has_no_atom_drift() -> None:
    _, history = hs.train_saes(small_config(epochs=2), data(), [3])
    assert history.atom_drift is None


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("convergence_tol", -0.01, "must be >= 0 (0 trains exactly `epochs` epochs)"),
        ("convergence_tol", float("nan"), "must be >= 0 (0 trains exactly `epochs` epochs)"),
        ("convergence_window", 0, "must be >= 1"),
    ],
)
def test_convergence_params_are_validated_naming_the_key(field, value, reason) -> None:
    with pytest.raises(ParamError) as info:
        small_config(**{field: value}).validate()
    assert info.value.key == f"sae.{field}" and info.value.reason == reason
    with pytest.raises(ParamError, match=field):
        hs.train_saes(small_config(**{field: value}), data(), [3])
