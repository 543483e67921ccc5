"""Benchmark: train the baseline TopK SAEs with our engine and with SAELens's trainer.

Side by side in one process, on the same activations and with the same
hyperparameters (the params.yaml baseline: d_sae 1024, k 32, lr 3e-4, batch 256,
20 epochs, AuxK with a 50-step dead window, per-SAE gradient clipping at 1.0,
decoder init norm 0.1): our engine trains all seeds together; SAELens's
``SAETrainer`` trains them one after another. Both see the activations scaled to
mean norm sqrt(d_in), the factor our ``normalize_activations:
expected_average_only_in`` uses (explained variance does not depend on the scale).
Prints the time per SAE-step of each, their ratio and the explained variance
(SAEBench definition, whole dataset) of every SAE.

Run by hand, never in the test suite::

    python benchmarks/bench_sae_train.py --activations data/activations.safetensors

``--epochs`` shortens the run (the ratio is per step); ``--archs`` also trains our
engine on other architectures; ``--rounds N`` adds N rounds of single steps of
every engine (SAELens topk, ours topk and ``--archs``) back to back, and reports
the median of the per-round ratios, which drifting load on a shared machine affects
least. Timings on a shared machine are noisy: the script repeats our run and
reports every repeat.
"""

from __future__ import annotations

import argparse
import functools
import statistics
import sys
import time
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from husai.determinism import configure
from husai.sae import SAEConfig, activation_scale, evaluate, steps_per_epoch, train_saes
from husai.sae.saelens import from_saelens


def saelens_topk(x: torch.Tensor, cfg: SAEConfig, seed: int) -> tuple[float, object]:
    """Train one SAELens TopK SAE on x; return (seconds, trained SAE as our BatchedSAE)."""
    from sae_lens import TopKTrainingSAE, TopKTrainingSAEConfig
    from sae_lens.config import LoggingConfig, SAETrainerConfig
    from sae_lens.training import sae_trainer
    from sae_lens.training.sae_trainer import SAETrainer

    if not isinstance(sae_trainer.tqdm, functools.partial):  # no progress bar
        sae_trainer.tqdm = functools.partial(sae_trainer.tqdm, disable=True)

    torch.manual_seed(seed)  # SAELens initialises from the global RNG
    sae = TopKTrainingSAE(
        TopKTrainingSAEConfig(
            d_in=cfg.d_in,
            d_sae=cfg.d_sae,
            k=cfg.k,
            aux_loss_coefficient=cfg.aux_loss_coefficient,
            rescale_acts_by_decoder_norm=cfg.rescale_acts_by_decoder_norm,
            decoder_init_norm=cfg.decoder_init_norm,
        )
    )
    n, b = x.shape[0], cfg.batch_size
    steps = steps_per_epoch(n, b) * cfg.epochs
    gen = torch.Generator().manual_seed(seed)

    def batches():
        buffer = torch.empty(0, dtype=torch.long)
        while True:  # epochs of random order, cut into full batches
            while buffer.numel() < b:
                buffer = torch.cat([buffer, torch.randperm(n, generator=gen)])
            yield x[buffer[:b]]
            buffer = buffer[b:]

    trainer = SAETrainer(
        cfg=SAETrainerConfig(
            total_training_samples=steps * b,
            train_batch_size_samples=b,
            lr=cfg.lr,
            lr_end=cfg.lr,
            adam_beta1=cfg.adam_beta1,
            adam_beta2=cfg.adam_beta2,
            dead_feature_window=cfg.dead_feature_window,
            feature_sampling_window=10**9,
            logger=LoggingConfig(log_to_wandb=False),
        ),
        sae=sae,
        data_provider=batches(),
    )
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.fit()
    seconds = time.perf_counter() - start
    cfg_dict = {
        "architecture": "topk",
        "d_in": cfg.d_in,
        "d_sae": cfg.d_sae,
        "k": cfg.k,
        "rescale_acts_by_decoder_norm": cfg.rescale_acts_by_decoder_norm,
    }
    state = {k: v.detach() for k, v in sae.state_dict().items()}
    return seconds, from_saelens(cfg_dict, state)


ARCH_EXTRAS = {
    "standard": {"l1_coefficient": 7.0},
    "gated": {"l1_coefficient": 7.0},
    "jumprelu": {},
    "matryoshka_batchtopk": {"matryoshka_widths": (128, 512)},
}


def round_robin(
    x: torch.Tensor,
    cfg: SAEConfig,
    seeds: list[int],
    rounds: int,
    archs: list[str],
    dead_fraction: float,
) -> None:
    """Single training steps, one of each engine per round, back to back.

    Engines: SAELens's TopK step (the body of ``SAETrainer._train_step``) and ours for
    topk and each of ``archs`` (the body of ``train_saes``'s loop, all seeds at once).
    A fixed ``dead_fraction`` of the latents counts as dead, so the AuxK work is
    included (about half of the baseline TopK's latents are dead in real training).
    Reports median times and the median over rounds of SAELens / ours (topk).
    """
    from sae_lens import TopKTrainingSAE, TopKTrainingSAEConfig
    from sae_lens.saes.sae import TrainStepInput

    from husai.sae import architecture
    from husai.sae.train import Adam, _clip_per_seed

    s, b = len(seeds), cfg.batch_size
    gen = torch.Generator().manual_seed(0)
    dead = torch.rand(s, cfg.d_sae, generator=gen) < dead_fraction

    def ours_step(arch_name: str):
        acfg = SAEConfig(
            **{**cfg.hyperparams(), "architecture": arch_name, **ARCH_EXTRAS.get(arch_name, {})}
        )
        arch = architecture(arch_name)
        params, buffers = arch.init_params(acfg, tuple(seeds))
        names = list(params)
        adam = Adam([params[n] for n in names], (acfg.adam_beta1, acfg.adam_beta2))

        def step() -> None:
            idx = torch.randint(0, x.shape[0], (s, b), generator=gen)
            xb = x.index_select(0, idx.reshape(-1)).view(s, b, acfg.d_in)
            _, grads = arch.step(params, buffers, xb, acfg, 100, dead)
            grad_list = [grads[n] for n in names]
            _clip_per_seed(grad_list, acfg.max_grad_norm)
            adam.step(grad_list, acfg.lr)

        return step

    sae = TopKTrainingSAE(TopKTrainingSAEConfig(d_in=cfg.d_in, d_sae=cfg.d_sae, k=cfg.k))
    opt = torch.optim.Adam(sae.parameters(), lr=cfg.lr)

    def lens_step() -> None:
        xb = x[torch.randint(0, x.shape[0], (b,), generator=gen)]
        out = sae.training_forward_pass(
            TrainStepInput(
                sae_in=xb,
                coefficients={},
                dead_neuron_mask=dead[0],
                n_training_steps=100,
                is_logging_step=False,
            )
        )
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(sae.parameters(), 1.0)
        opt.step()
        opt.zero_grad()

    engines = {"SAELens topk": (lens_step, 1)}
    for name in ["topk", *[a for a in archs if a != "topk"]]:
        engines[f"ours {name}"] = (ours_step(name), s)
    times: dict[str, list[float]] = {name: [] for name in engines}
    for r in range(rounds + 2):
        for name, (fn, per) in engines.items():
            start = time.perf_counter()
            fn()
            if r >= 2:  # warm-up rounds
                times[name].append((time.perf_counter() - start) / per * 1e3)
    ratios = [a / b for a, b in zip(times["SAELens topk"], times["ours topk"], strict=True)]
    q1, _, q3 = statistics.quantiles(ratios, n=4)
    print(
        f"round robin, {rounds} rounds, {dead_fraction:.0%} of latents dead, "
        f"{torch.get_num_threads()} threads (ms per SAE-step, median [min]):"
    )
    for name, values in times.items():
        print(f"  {name:28s} {statistics.median(values):8.3f} [{min(values):.3f}]")
    print(
        f"  SAELens / ours (topk), per round: median {statistics.median(ratios):.2f}x, "
        f"quartiles [{q1:.2f}, {q3:.2f}]"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--activations", type=Path, default=Path("data/activations.safetensors"))
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--seeds", type=int, nargs="+", default=[42, 123, 456, 789, 1011])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument(
        "--dead-window", type=int, default=50, help="dead_feature_window in steps, for both engines"
    )
    ap.add_argument("--repeats", type=int, default=2, help="runs of our engine")
    ap.add_argument(
        "--saelens-seeds",
        type=int,
        default=None,
        help="train only this many SAELens SAEs (default: all seeds)",
    )
    ap.add_argument(
        "--archs",
        nargs="*",
        default=[],
        help="also time our engine on these architectures (same sizes)",
    )
    ap.add_argument(
        "--rounds",
        type=int,
        default=0,
        help="rounds of back-to-back single steps of every engine (0: none)",
    )
    ap.add_argument(
        "--dead",
        type=float,
        default=0.5,
        help="share of latents counted dead in the round-robin steps",
    )
    ap.add_argument("--skip-full", action="store_true", help="skip the full training runs")
    args = ap.parse_args()

    configure("cpu", args.threads)
    from stages._artifacts import load_activations

    acts = load_activations(args.activations)
    d_in = acts.x.shape[1]
    x = acts.x * activation_scale(
        acts.x, SAEConfig(d_in=d_in, normalize_activations="expected_average_only_in")
    )
    cfg = SAEConfig(
        architecture="topk",
        d_in=x.shape[1],
        d_sae=1024,
        k=32,
        lr=3e-4,
        batch_size=256,
        epochs=args.epochs,
        dead_feature_window=args.dead_window,
    )
    steps = steps_per_epoch(x.shape[0], cfg.batch_size) * cfg.epochs
    seeds = args.seeds
    print(
        f"activations {tuple(x.shape)} from {args.activations} (hook {acts.hook}, p {acts.p}); "
        f"topk d_sae {cfg.d_sae} k {cfg.k} lr {cfg.lr} batch {cfg.batch_size}, {steps} steps, "
        f"{len(seeds)} seeds, {torch.get_num_threads()} threads"
    )

    if args.rounds:
        round_robin(x, cfg, seeds, args.rounds, args.archs, args.dead)
    if args.skip_full:
        return
    ours_ms = []
    for r in range(args.repeats):
        start = time.perf_counter()
        sae, _ = train_saes(cfg, x, seeds)
        seconds = time.perf_counter() - start
        ours_ms.append(seconds / (steps * len(seeds)) * 1e3)
        print(
            f"  ours   run {r + 1}: {seconds:7.2f} s for {len(seeds)} SAEs -> "
            f"{ours_ms[-1]:.3f} ms per SAE-step"
        )
    ours_ev = [m["explained_variance"] for m in evaluate(sae, x)]
    ours_l0 = [m["l0"] for m in evaluate(sae, x)]

    lens_ms, lens_ev = [], []
    for seed in seeds[: args.saelens_seeds or len(seeds)]:
        seconds, lens_sae = saelens_topk(x, cfg, seed)
        lens_ms.append(seconds / steps * 1e3)
        lens_ev.append(evaluate(lens_sae, x)[0]["explained_variance"])
        print(
            f"  SAELens seed {seed}: {seconds:7.2f} s -> {lens_ms[-1]:.3f} ms per step, "
            f"EV {lens_ev[-1]:.4f}"
        )

    ours, lens = min(ours_ms), statistics.median(lens_ms)
    print(
        f"ours:    {ours:.3f} ms per SAE-step (best of {len(ours_ms)}; all {[round(m, 3) for m in ours_ms]})"
    )
    print(
        f"SAELens: {lens:.3f} ms per step (median of {len(lens_ms)}; all {[round(m, 3) for m in lens_ms]})"
    )
    print(
        f"speed-up per SAE: {lens / ours:.2f}x (worst case, slowest of ours vs fastest SAELens: "
        f"{min(lens_ms) / max(ours_ms):.2f}x)"
    )
    print(
        f"explained variance ours    {[round(e, 4) for e in ours_ev]} mean {statistics.mean(ours_ev):.4f}"
    )
    print(
        f"explained variance SAELens {[round(e, 4) for e in lens_ev]} mean {statistics.mean(lens_ev):.4f}"
    )
    print(
        f"difference of means: {statistics.mean(ours_ev) - statistics.mean(lens_ev):+.4f}; "
        f"L0 ours {statistics.mean(ours_l0):.2f}"
    )

    for arch in args.archs:
        acfg = SAEConfig(**{**cfg.hyperparams(), "architecture": arch, **ARCH_EXTRAS.get(arch, {})})
        start = time.perf_counter()
        asae, _ = train_saes(acfg, x, seeds)
        ms = (time.perf_counter() - start) / (steps * len(seeds)) * 1e3
        m = evaluate(asae, x)
        print(
            f"  ours {arch:22s} {ms:7.3f} ms per SAE-step; EV "
            f"{statistics.mean(r['explained_variance'] for r in m):.4f}, L0 "
            f"{statistics.mean(r['l0'] for r in m):.1f}"
        )


if __name__ == "__main__":
    main()
