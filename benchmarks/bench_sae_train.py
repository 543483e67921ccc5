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

``--epochs`` shortens the run (the ratio is per step); ``--archs`` also times our
engine on other architectures; ``--paired N`` adds N rounds of one step of ours
(all seeds) then one SAELens step, timed back to back, and reports the median of the
per-round ratios, which drifting load on a shared machine affects least. Timings on
a shared machine are noisy: the script repeats our run and reports every repeat.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TQDM_DISABLE", "1")  # SAELens's progress bar

from husai.determinism import configure
from husai.sae import SAEConfig, activation_scale, evaluate, steps_per_epoch, train_saes
from husai.sae.saelens import from_saelens


def saelens_topk(x: torch.Tensor, cfg: SAEConfig, seed: int) -> tuple[float, object]:
    """Train one SAELens TopK SAE on x; return (seconds, trained SAE as our BatchedSAE)."""
    from sae_lens import TopKTrainingSAE, TopKTrainingSAEConfig
    from sae_lens.config import LoggingConfig, SAETrainerConfig
    from sae_lens.training.sae_trainer import SAETrainer

    torch.manual_seed(seed)  # SAELens initialises from the global RNG
    sae = TopKTrainingSAE(TopKTrainingSAEConfig(
        d_in=cfg.d_in, d_sae=cfg.d_sae, k=cfg.k, aux_loss_coefficient=cfg.aux_loss_coefficient,
        rescale_acts_by_decoder_norm=cfg.rescale_acts_by_decoder_norm,
        decoder_init_norm=cfg.decoder_init_norm))
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
            total_training_samples=steps * b, train_batch_size_samples=b, lr=cfg.lr,
            lr_end=cfg.lr, adam_beta1=cfg.adam_beta1, adam_beta2=cfg.adam_beta2,
            dead_feature_window=cfg.dead_feature_window, feature_sampling_window=10**9,
            logger=LoggingConfig(log_to_wandb=False)),
        sae=sae, data_provider=batches())
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.fit()
    seconds = time.perf_counter() - start
    cfg_dict = {"architecture": "topk", "d_in": cfg.d_in, "d_sae": cfg.d_sae, "k": cfg.k,
                "rescale_acts_by_decoder_norm": cfg.rescale_acts_by_decoder_norm}
    state = {k: v.detach() for k, v in sae.state_dict().items()}
    return seconds, from_saelens(cfg_dict, state)


def paired(x: torch.Tensor, cfg: SAEConfig, seeds: list[int], rounds: int) -> None:
    """Median over rounds of (SAELens step time) / (our step time per SAE), back to back."""
    from sae_lens import TopKTrainingSAE, TopKTrainingSAEConfig
    from sae_lens.saes.sae import TrainStepInput

    from husai.sae import architecture
    from husai.sae.train import Adam, _clip_per_seed

    arch = architecture("topk")
    params, buffers = arch.init_params(cfg, tuple(seeds))
    names = list(params)
    adam = Adam([params[n] for n in names], (cfg.adam_beta1, cfg.adam_beta2))
    no_dead = torch.zeros(len(seeds), cfg.d_sae, dtype=torch.bool)
    sae = TopKTrainingSAE(TopKTrainingSAEConfig(d_in=cfg.d_in, d_sae=cfg.d_sae, k=cfg.k))
    opt = torch.optim.Adam(sae.parameters(), lr=cfg.lr)
    gen = torch.Generator().manual_seed(0)
    s, b = len(seeds), cfg.batch_size

    def ours() -> None:  # the body of train_saes's loop
        idx = torch.randint(0, x.shape[0], (s, b), generator=gen)
        xb = x.index_select(0, idx.reshape(-1)).view(s, b, cfg.d_in)
        _, grads = arch.step(params, buffers, xb, cfg, 0, no_dead)
        grad_list = [grads[n] for n in names]
        _clip_per_seed(grad_list, cfg.max_grad_norm)
        adam.step(grad_list, cfg.lr)

    def lens() -> None:  # the body of SAETrainer._train_step
        xb = x[torch.randint(0, x.shape[0], (b,), generator=gen)]
        out = sae.training_forward_pass(TrainStepInput(
            sae_in=xb, coefficients={}, dead_neuron_mask=no_dead[0], n_training_steps=0,
            is_logging_step=False))
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(sae.parameters(), 1.0)
        opt.step()
        opt.zero_grad()

    ratios, ours_ms, lens_ms = [], [], []
    for r in range(rounds + 2):
        start = time.perf_counter()
        ours()
        t_ours = (time.perf_counter() - start) / s
        start = time.perf_counter()
        lens()
        t_lens = time.perf_counter() - start
        if r >= 2:  # warm-up rounds
            ratios.append(t_lens / t_ours)
            ours_ms.append(t_ours * 1e3)
            lens_ms.append(t_lens * 1e3)
    q1, _, q3 = statistics.quantiles(ratios, n=4)
    print(f"paired single steps ({rounds} rounds, no dead latents): ours median "
          f"{statistics.median(ours_ms):.3f} ms per SAE-step (min {min(ours_ms):.3f}), SAELens "
          f"median {statistics.median(lens_ms):.3f} ms (min {min(lens_ms):.3f}); ratio median "
          f"{statistics.median(ratios):.2f}x, quartiles [{q1:.2f}, {q3:.2f}]")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--activations", type=Path, default=Path("data/activations.safetensors"))
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--seeds", type=int, nargs="+", default=[42, 123, 456, 789, 1011])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--dead-window", type=int, default=50,
                    help="dead_feature_window in steps, for both engines")
    ap.add_argument("--repeats", type=int, default=2, help="runs of our engine")
    ap.add_argument("--saelens-seeds", type=int, default=None,
                    help="train only this many SAELens SAEs (default: all seeds)")
    ap.add_argument("--archs", nargs="*", default=[],
                    help="also time our engine on these architectures (same sizes)")
    ap.add_argument("--paired", type=int, default=0,
                    help="rounds of back-to-back single steps (ours, then SAELens)")
    ap.add_argument("--skip-full", action="store_true", help="skip the full training runs")
    args = ap.parse_args()

    configure("cpu", args.threads)
    from stages._artifacts import load_activations

    acts = load_activations(args.activations)
    d_in = acts.x.shape[1]
    x = acts.x * activation_scale(acts.x, SAEConfig(d_in=d_in,
                                                    normalize_activations="expected_average_only_in"))
    cfg = SAEConfig(architecture="topk", d_in=x.shape[1], d_sae=1024, k=32, lr=3e-4,
                    batch_size=256, epochs=args.epochs, dead_feature_window=args.dead_window)
    steps = steps_per_epoch(x.shape[0], cfg.batch_size) * cfg.epochs
    seeds = args.seeds
    print(f"activations {tuple(x.shape)} from {args.activations} (hook {acts.hook}, p {acts.p}); "
          f"topk d_sae {cfg.d_sae} k {cfg.k} lr {cfg.lr} batch {cfg.batch_size}, {steps} steps, "
          f"{len(seeds)} seeds, {torch.get_num_threads()} threads")

    if args.paired:
        paired(x, cfg, seeds, args.paired)
    if args.skip_full:
        return
    ours_ms = []
    for r in range(args.repeats):
        start = time.perf_counter()
        sae, _ = train_saes(cfg, x, seeds)
        seconds = time.perf_counter() - start
        ours_ms.append(seconds / (steps * len(seeds)) * 1e3)
        print(f"  ours   run {r + 1}: {seconds:7.2f} s for {len(seeds)} SAEs -> "
              f"{ours_ms[-1]:.3f} ms per SAE-step")
    ours_ev = [m["explained_variance"] for m in evaluate(sae, x)]
    ours_l0 = [m["l0"] for m in evaluate(sae, x)]

    lens_ms, lens_ev = [], []
    for seed in seeds[: args.saelens_seeds or len(seeds)]:
        seconds, lens_sae = saelens_topk(x, cfg, seed)
        lens_ms.append(seconds / steps * 1e3)
        lens_ev.append(evaluate(lens_sae, x)[0]["explained_variance"])
        print(f"  SAELens seed {seed}: {seconds:7.2f} s -> {lens_ms[-1]:.3f} ms per step, "
              f"EV {lens_ev[-1]:.4f}")

    ours, lens = min(ours_ms), statistics.median(lens_ms)
    print(f"ours:    {ours:.3f} ms per SAE-step (best of {len(ours_ms)}; all {[round(m, 3) for m in ours_ms]})")
    print(f"SAELens: {lens:.3f} ms per step (median of {len(lens_ms)}; all {[round(m, 3) for m in lens_ms]})")
    print(f"speed-up per SAE: {lens / ours:.2f}x (worst case, slowest of ours vs fastest SAELens: "
          f"{min(lens_ms) / max(ours_ms):.2f}x)")
    print(f"explained variance ours    {[round(e, 4) for e in ours_ev]} mean {statistics.mean(ours_ev):.4f}")
    print(f"explained variance SAELens {[round(e, 4) for e in lens_ev]} mean {statistics.mean(lens_ev):.4f}")
    print(f"difference of means: {statistics.mean(ours_ev) - statistics.mean(lens_ev):+.4f}; "
          f"L0 ours {statistics.mean(ours_l0):.2f}")

    for arch in args.archs:
        extra = {"matryoshka_widths": (128, 512)} if arch == "matryoshka_batchtopk" else {}
        acfg = SAEConfig(**{**cfg.hyperparams(), "architecture": arch, "matryoshka_widths": (),
                            **extra, "d_in": x.shape[1]})
        start = time.perf_counter()
        asae, _ = train_saes(acfg, x, seeds)
        ms = (time.perf_counter() - start) / (steps * len(seeds)) * 1e3
        m = evaluate(asae, x)
        print(f"  ours {arch:22s} {ms:7.3f} ms per SAE-step; EV "
              f"{statistics.mean(r['explained_variance'] for r in m):.4f}, L0 "
              f"{statistics.mean(r['l0'] for r in m):.1f}")


if __name__ == "__main__":
    main()
