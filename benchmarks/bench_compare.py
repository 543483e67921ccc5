"""``husai compare`` at SAE scale: time and peak memory of one pair, beside SciPy's dense
solver where its cost matrix fits (issue 15).

Each case runs in a fresh process (its peak resident memory is the process's own): two
SAEs of ``n`` latents in ``R^d_in``, encoder atoms apart from decoder atoms, either
*near-identical* (B is A's atoms permuted, plus Gaussian noise of scale ``noise`` per
coordinate, relative to unit atoms: the regime of two seeds of one SAE) or *random*
(independent isotropic atoms: the hardest matching). ``husai.compare.compare_pair`` picks
its path by size (dense SciPy ``linear_sum_assignment`` up to ``DENSE_LIMIT`` atom pairs,
:func:`husai.compare.sparse_match` above); ``--force-sparse`` takes the sparse path at
every size, so that at sizes where both run the two can be set side by side. ``dense``
times SciPy's dense solver alone on the decoder cost matrix (built in float64) when
``n * n * 8`` bytes is at most ``--dense-max-gb``.

    python benchmarks/bench_compare.py --sizes 8192 32768 --d-in 768

Prints one JSON line per case, then a Markdown table. Results: benchmarks/RESULTS-compare.md.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time


def make_pair(n: int, d_in: int, kind: str, noise: float, seed: int = 0, chunk: int = 8192):
    """Two SAEs' atoms, written chunk by chunk into preallocated float32 tensors, so that
    making them needs no more memory than holding them."""
    import torch

    from husai.compare import SAEAtoms

    g = torch.Generator().manual_seed(seed)

    def unit(out: torch.Tensor) -> torch.Tensor:
        for s in range(0, n, chunk):
            x = out[s : s + chunk]
            x.normal_(generator=g)
            x.div_(x.norm(dim=1, keepdim=True))
        return out

    def empty() -> torch.Tensor:
        return torch.empty(n, d_in, dtype=torch.float32)

    dec_a, enc_a = unit(empty()), unit(empty())
    if kind == "random":
        dec_b, enc_b = unit(empty()), unit(empty())
    else:
        perm = torch.randperm(n, generator=g)
        dec_b, enc_b = empty(), empty()
        for src, dst in ((dec_a, dec_b), (enc_a, enc_b)):
            for s in range(0, n, chunk):
                rows = dst[s : s + chunk]
                rows.normal_(generator=g).mul_(noise).add_(src[perm[s : s + chunk]])
    return SAEAtoms("a", dec_a, enc_a), SAEAtoms("b", dec_b, enc_b)


def run_case(args: argparse.Namespace) -> dict:
    import torch

    from husai.compare import compare_pair

    torch.set_num_threads(args.threads)
    a, b = make_pair(args.n, args.d_in, args.kind, args.noise)
    out: dict = {"n": args.n, "d_in": args.d_in, "kind": args.kind, "threads": args.threads}
    out["inputs_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    if args.what == "dense":
        import numpy as np
        from scipy.optimize import linear_sum_assignment

        start = time.perf_counter()
        ua = torch.nn.functional.normalize(a.decoder.double(), dim=1)
        ub = torch.nn.functional.normalize(b.decoder.double(), dim=1)
        cost = (ua @ ub.T).abs().numpy()
        rows, cols = linear_sum_assignment(cost, maximize=True)
        out.update(
            what="scipy dense linear_sum_assignment (decoder)",
            seconds=time.perf_counter() - start,
            mcc=float(np.mean(cost[rows, cols])),
        )
    elif args.what == "compare":
        from husai.compare import compare

        start = time.perf_counter()
        r = compare([a, b])
        pair = r["pairs"][0]
        out.update(
            what="husai compare (the pair and its isotropic reference)",
            seconds=time.perf_counter() - start,
            mcc=pair["hungarian_mcc"],
            pwmcc=pair["pwmcc"],
            shared_fraction=pair["shared_fraction"],
            gap=pair["matching_gap"],
            isotropic=pair["isotropic"],
        )
    else:
        start = time.perf_counter()
        limit = 0 if args.what == "sparse" else None
        kw = {} if limit is None else {"dense_limit": limit}
        r = compare_pair(a, b, **kw)
        out.update(
            what=f"husai compare_pair ({r['matching_method']})",
            seconds=time.perf_counter() - start,
            mcc=r["hungarian_mcc"],
            pwmcc=r["pwmcc"],
            shared_fraction=r["shared_fraction"],
            gap=r["matching_gap"],
        )
    out["peak_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[8192, 32768])
    p.add_argument("--d-in", type=int, default=768)
    p.add_argument("--kinds", nargs="+", default=["near-identical", "random"])
    p.add_argument("--noise", type=float, default=0.02)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--dense-max-gb", type=float, default=4.0)
    p.add_argument("--force-sparse", action="store_true")
    p.add_argument(
        "--full",
        action="store_true",
        help="time husai.compare.compare (the pair and its isotropic reference) instead "
        "of compare_pair (the pair alone)",
    )
    p.add_argument("--case", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--n", type=int, help=argparse.SUPPRESS)
    p.add_argument("--kind", help=argparse.SUPPRESS)
    p.add_argument("--what", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.case:
        print(json.dumps(run_case(args)))
        return
    results = []
    for n in args.sizes:
        for kind in args.kinds:
            whats = ["compare" if args.full else "sparse" if args.force_sparse else "auto"]
            if n * n * 8 / 1024**3 <= args.dense_max_gb:
                whats.append("dense")
            for what in whats:
                cmd = [
                    sys.executable,
                    __file__,
                    "--case",
                    f"--n={n}",
                    f"--kind={kind}",
                    f"--what={what}",
                    f"--d-in={args.d_in}",
                    f"--noise={args.noise}",
                    f"--threads={args.threads}",
                ]
                line = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
                row = json.loads(line.strip().splitlines()[-1])
                print(json.dumps(row), flush=True)
                results.append(row)
    print(
        "\n| latents | d_in | dictionaries | method | seconds | inputs GB | peak GB | Hungarian MCC "
        "| gap bound |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in results:
        gap = r.get("gap")
        gap_text = "exact" if gap is None else f"{max(gap.values()):.2g}"
        if r["what"].startswith("scipy"):
            gap_text = "exact"
        print(
            f"| {r['n']} | {r['d_in']} | {r['kind']} | {r['what']} | {r['seconds']:.1f} | "
            f"{r['inputs_gb']:.2f} | {r['peak_gb']:.2f} | {r['mcc']:.4f} | {gap_text} |"
        )


if __name__ == "__main__":
    main()
