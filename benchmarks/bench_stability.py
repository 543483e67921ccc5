"""Time and peak memory of the stability metrics for two dictionaries of the same shape.

Each (size, input kind, metric) runs in a fresh Python process, so that its peak
resident set size (``ru_maxrss``) belongs to that metric alone; the table reports
the peak and its excess over the process's RSS just before the metric ran (torch
loaded, inputs built). Inputs, d_in 128, float32 like SAE weights:

* ``isotropic``: two independent isotropic dictionaries (the random baseline);
* ``related``: B is A with each atom perturbed and the rows shuffled (|cos| with
  its partner about 0.8), closer to two trained SAEs that share most latents.

Usage: ``python benchmarks/bench_stability.py [--sizes 4096 16384] [--kinds ...]
[--metrics ...] [--threads 2]``. Prints a Markdown table (record it in
``benchmarks/RESULTS-stability.md``).
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
METRICS = (
    "pwmcc",
    "best_matches",
    "hungarian_mcc",
    "shared_fraction",
    "subspace_overlap",
    "pair_metrics",
)
KINDS = ("isotropic", "related")
D_IN = 128


def _rss_now_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _child(size: int, kind: str, metric: str, threads: int) -> dict:
    sys.path.insert(0, str(ROOT))
    import torch

    from husai import stability as st
    from husai.baselines import isotropic_dictionary
    from husai.determinism import configure, generator

    configure("cpu", threads=threads)
    dec_a = isotropic_dictionary(size, D_IN, 1)
    enc_a = isotropic_dictionary(size, D_IN, 2)
    if kind == "isotropic":
        dec_b, enc_b = isotropic_dictionary(size, D_IN, 3), isotropic_dictionary(size, D_IN, 4)
    else:
        g = generator(5)
        perm = torch.randperm(size, generator=g)
        noise = 0.75 / D_IN**0.5
        dec_b = (dec_a + noise * torch.randn(size, D_IN, generator=g))[perm]
        enc_b = (enc_a + noise * torch.randn(size, D_IN, generator=g))[perm]
    calls = {
        "pwmcc": lambda: st.pwmcc(dec_a, dec_b),
        "best_matches": lambda: float(st.best_matches(dec_a, dec_b).cosine.mean()),
        "hungarian_mcc": lambda: st.hungarian_mcc(dec_a, dec_b),
        "shared_fraction": lambda: st.shared_fraction(enc_a, dec_a, enc_b, dec_b),
        "subspace_overlap": lambda: st.subspace_overlap(dec_a, dec_b, st.DEFAULT_RANKS)[64],
        "pair_metrics": lambda: st.pair_metrics(dec_a, dec_b, enc_a, enc_b).to_dict(),
    }
    before = _rss_now_mib()
    start = time.perf_counter()
    value = calls[metric]()
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "size": size,
        "kind": kind,
        "metric": metric,
        "seconds": seconds,
        "peak_rss_mib": peak,
        "extra_mib": peak - before,
        "value": value,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[4096, 16384])
    ap.add_argument("--kinds", nargs="+", default=list(KINDS), choices=KINDS)
    ap.add_argument("--metrics", nargs="+", default=list(METRICS), choices=METRICS)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--child", nargs=3, metavar=("SIZE", "KIND", "METRIC"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        size, kind, metric = args.child
        print(json.dumps(_child(int(size), kind, metric, args.threads)))
        return
    print(f"<!-- {platform.processor() or platform.machine()}, {args.threads} threads -->")
    print("| atoms | input | metric | time (s) | peak RSS (MiB) | excess (MiB) | value |")
    print("| ---: | --- | --- | ---: | ---: | ---: | --- |")
    for size in args.sizes:
        for kind in args.kinds:
            for metric in args.metrics:
                cmd = [sys.executable, __file__, "--threads", str(args.threads)]
                out = subprocess.run(
                    [*cmd, "--child", str(size), kind, metric],
                    check=True,
                    capture_output=True,
                    text=True,
                )
                r = json.loads(out.stdout.strip().splitlines()[-1])
                value = r["value"]
                if isinstance(value, dict):
                    value = ", ".join(f"{k}={v:.3f}" for k, v in value.items() if "random" not in k)
                else:
                    value = f"{value:.4f}"
                print(
                    f"| {size} | {kind} | {metric} | {r['seconds']:.1f} | "
                    f"{r['peak_rss_mib']:.0f} | {r['extra_mib']:.0f} | {value} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
