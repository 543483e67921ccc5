"""Benchmark: one TopK training step of our engine, and its parts, on a realistic state.

Trains the baseline TopK SAEs (params.yaml baseline: d_sae 1024, k 32, batch 256,
5 seeds) on the real activations for ``--steps`` steps, so that about 70% of the
latents are dead and AuxK is active as at the end of training, then times, on that
state with warm caches:

- the whole exact sparse step (``husai.sae.sparse.sparse_step``);
- the TopK selection (``topk_indices``) against ``torch.topk`` (sorted afterwards,
  to give the same ascending result), for the main selection and for AuxK's shape;
- grouping the entries by latent (``_stable_order``) against ``torch.argsort``;
- the selection key with the decoder norms folded into the matmul against
  ``baddbmm`` followed by the multiplication, with the caches flushed before each call.

``--compare REV`` also loads ``husai/sae/sparse.py`` as it was at git revision REV and
times its main selection and its step on the same state (the steps alternating with
ours), and reports the median of the per-round ratios of the steps (which drifting
load on a shared machine affects least)::

    python benchmarks/bench_sae_step.py --compare 2d57041

``--profile`` prints torch's profile of the step. Run by hand, never in the test suite.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from husai.determinism import configure  # noqa: E402
from husai.sae import SAEConfig, architecture, sparse, steps_per_epoch, train_saes  # noqa: E402


def capture_state(x: torch.Tensor, cfg: SAEConfig, seeds: list[int], at: int) -> dict:
    """Parameters, batch and dead mask that the step number ``at`` of training sees."""
    arch = architecture("topk")
    cls = type(arch)
    original = cls.step
    seen: dict = {}

    def spy(self, params, buffers, xb, config, step, dead):
        if step == at:
            seen.update(
                params={k: v.clone() for k, v in params.items()}, xb=xb.clone(), dead=dead.clone()
            )
        return original(self, params, buffers, xb, config, step, dead)

    cls.step = spy
    try:
        epochs = -(-(at + 1) // steps_per_epoch(x.shape[0], cfg.batch_size))
        train_saes(SAEConfig(**{**cfg.hyperparams(), "epochs": epochs}), x, seeds)
    finally:
        cls.step = original
    return seen


def median_ms(fn, repeats: int, flush: torch.Tensor | None = None) -> float:
    fn()
    times = []
    for _ in range(repeats):
        if flush is not None:
            flush.add_(1.0)  # evict the caches
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def module_at(rev: str):
    """husai/sae/sparse.py as it was at git revision rev, imported as its own module."""
    source = subprocess.run(
        ["git", "-C", str(ROOT), "show", f"{rev}:husai/sae/sparse.py"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    path = Path(tempfile.mkdtemp()) / "sparse_at_rev.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("sparse_at_rev", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def step_fn(module, state: dict, cfg: SAEConfig):
    def select(h):
        s, b, _ = h.shape
        idx = module.topk_indices(h, cfg.k)
        rows = torch.arange(b).repeat_interleave(cfg.k).expand(s, b * cfg.k)
        return module.Selection(lat=idx.reshape(s, b * cfg.k), row=rows, per_row=cfg.k)

    return lambda: module.sparse_step(state["params"], state["xb"], cfg, select, state["dead"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--activations", type=Path, default=Path("data/activations.safetensors"))
    ap.add_argument("--steps", type=int, default=600, help="training steps before the state")
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--compare", default=None, help="git revision to compare the step with")
    ap.add_argument(
        "--profile",
        action="store_true",
        help="also print torch's profile of the step (NumPy calls not included)",
    )
    args = ap.parse_args()

    from safetensors.torch import load_file

    configure("cpu", args.threads)
    x = load_file(str(args.activations))["x"]
    seeds = [42, 123, 456, 789, 1011]
    cfg = SAEConfig(
        architecture="topk",
        d_in=x.shape[1],
        d_sae=1024,
        k=32,
        lr=3e-4,
        batch_size=256,
        epochs=1,
        dead_feature_window=50,
        normalize_activations="expected_average_only_in",
    )
    state = capture_state(x, cfg, seeds, args.steps)
    p, dead = state["params"], state["dead"]
    print(
        f"state after {args.steps} steps: dead latents per seed {dead.sum(1).tolist()} "
        f"of {cfg.d_sae}; {torch.get_num_threads()} threads; ms, median of {args.repeats}"
    )

    ours = step_fn(sparse, state, cfg)
    print(f"  sparse step, 5 seeds                 {median_ms(ours, args.repeats):7.2f}")

    _, h, _ = sparse.selection_keys(p, state["xb"], cfg)
    n = int(dead.sum(1).max())
    cols = torch.sort(dead.to(torch.int8), dim=1, descending=True, stable=True).indices[:, :n]
    aux_key = h.gather(2, cols.unsqueeze(1).expand(*h.shape[:2], n))
    for s, count in enumerate(dead.sum(1).tolist()):
        aux_key[s, :, count:] = float("-inf")
    for name, key, k in (("main selection", h, cfg.k), ("AuxK selection", aux_key, 64)):
        t_ours = median_ms(lambda key=key, k=k: sparse.topk_indices(key, k), args.repeats)
        t_torch = median_ms(
            lambda key=key, k=k: torch.topk(key, k, sorted=False).indices.sort(-1).values,
            args.repeats,
        )
        print(
            f"  {name:15s} {tuple(key.shape)!s:16s} topk_indices {t_ours:6.2f}  "
            f"torch.topk {t_torch:6.2f}"
        )

    ids = torch.randint(
        0, 5 * cfg.d_sae, (5 * 256 * (32 + 64),), generator=torch.Generator().manual_seed(0)
    )
    t_radix = median_ms(lambda: sparse._stable_order(ids, 5 * cfg.d_sae), args.repeats)
    t_arg = median_ms(
        lambda: torch.argsort(ids * ids.numel() + torch.arange(ids.numel())), args.repeats
    )
    print(
        f"  group {ids.numel()} entries by latent      _stable_order {t_radix:6.2f}  "
        f"argsort {t_arg:6.2f}"
    )

    flush = torch.zeros(20_000_000)
    xb = state["xb"]

    def unfolded():
        xc = xb - p["b_dec"].unsqueeze(1)
        pre = torch.baddbmm(p["b_enc"].unsqueeze(1), xc, p["W_enc_rows"].transpose(1, 2))
        return pre * p["W_dec"].norm(dim=-1).unsqueeze(1)

    t_fold = median_ms(lambda: sparse.selection_keys(p, xb, cfg), args.repeats, flush)
    t_plain = median_ms(unfolded, args.repeats, flush)
    print(
        f"  selection key, cold caches            folded {t_fold:6.2f}  "
        f"baddbmm + mul {t_plain:6.2f}"
    )

    if args.profile:
        from torch.profiler import profile

        with profile() as prof:
            for _ in range(args.repeats):
                ours()
        print(f"torch operations of {args.repeats} steps:")
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15))

    if args.compare:
        before = module_at(args.compare)
        t_before = median_ms(lambda: before.topk_indices(h, cfg.k), args.repeats)
        print(f"  main selection at {args.compare}: topk_indices {t_before:.2f}")
        theirs = step_fn(before, state, cfg)
        pairs = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            theirs()
            mid = time.perf_counter()
            ours()
            pairs.append(((mid - start) * 1e3, (time.perf_counter() - mid) * 1e3))
        a = statistics.median(t for t, _ in pairs)
        b = statistics.median(t for _, t in pairs)
        ratio = statistics.median(t / u for t, u in pairs)
        print(
            f"  sparse step at {args.compare}: {a:.2f} ms, ours {b:.2f} ms; "
            f"median ratio per round {ratio:.2f}x"
        )


if __name__ == "__main__":
    main()
