"""The learning-rate search behind the modular SAEs' ``lr`` (params ``saes.modular*``).

For each hook the pipeline trains SAEs at (``blocks.0.hook_resid_post`` and
``blocks.0.mlp.hook_post``, position -1, read from the committed transformer
``models/transformer``), each configuration of params ``saes.modular`` (topk,
batchtopk, standard) is trained at each learning rate of ``--lrs`` for at most
``--max-epochs`` epochs with the pipeline's convergence criterion (``--tol``,
``--window``: a seed stops once its epoch-mean loss improved less than tol over the
last window epochs, ``--criterion loss``; by default the ``explained_variance``
criterion: explained variance rose by less than tol, husai.sae.train), on ``--seeds`` seeds. Per run it records the epochs each seed
ran, whether it converged, the final explained variance, L0 and live fraction, and
the live-latent PWMCC of the first two seeds.

The rule that picks a configuration's learning rate (written into params.yaml by
hand): of the rates whose seeds all converge, the one with the highest mean explained
variance at convergence (``--markdown`` marks it in bold).

Run by hand (``python benchmarks/lr_search.py``); results in
``benchmarks/RESULTS-lr-search.md``. Never part of the test suite.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

HOOKS = ("blocks.0.hook_resid_post", "blocks.0.mlp.hook_post")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lrs", type=float, nargs="+", default=[3e-4, 1e-3, 3e-3])
    ap.add_argument("--max-epochs", type=int, default=200)
    ap.add_argument("--tol", type=float, default=0.0001)
    ap.add_argument("--window", type=int, default=10)
    ap.add_argument(
        "--criterion", choices=["loss", "explained_variance"], default="explained_variance"
    )
    ap.add_argument("--seeds", type=int, nargs="+", default=[42, 123])
    ap.add_argument("--hooks", nargs="+", default=list(HOOKS))
    ap.add_argument("--configs", nargs="+", default=None)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "lr_search.json")
    ap.add_argument(
        "--markdown", type=Path, default=None, help="Write the table of --out here and stop."
    )
    args = ap.parse_args()
    if args.markdown is not None:
        args.markdown.write_text(table(json.loads(args.out.read_text())))
        return

    from husai.errors import DivergedError
    from husai.groundtruth import live_stability, sae_live_masks
    from husai.sae import SAEConfig
    from husai.sae.train import train_saes
    from husai.transformer import grid_activations
    from stages._artifacts import load_task, load_transformer
    from stages._common import load_params

    torch.set_num_threads(1)
    prm = load_params(ROOT / "params.yaml")
    task = load_task(ROOT / "data" / "task.safetensors")
    model, _ = load_transformer(ROOT / "models" / "transformer")
    configs = prm.sae_configs("modular")
    names = args.configs or list(configs)
    rows = json.loads(args.out.read_text()) if args.out.exists() else []
    done = {(r["hook"], r["config"], r["lr"], r["criterion"]) for r in rows}
    for hook in args.hooks:
        x = grid_activations(model, task, hook, -1)
        for name in names:
            for lr in args.lrs:
                crit = f"{args.criterion} tol {args.tol:g} window {args.window}"
                if (hook, name, lr, crit) in done:
                    continue
                hp = dataclasses.replace(
                    configs[name],
                    lr=lr,
                    epochs=args.max_epochs,
                    convergence_tol=args.tol,
                    convergence_window=args.window,
                    convergence=args.criterion,
                    seeds=tuple(args.seeds),
                )
                cfg = SAEConfig.from_hyperparams(hp, d_in=x.shape[1])
                t0 = time.perf_counter()
                row = {
                    "hook": hook,
                    "config": name,
                    "lr": lr,
                    "d_in": int(x.shape[1]),
                    "criterion": f"{args.criterion} tol {args.tol:g} window {args.window}",
                }
                try:
                    sae, hist = train_saes(cfg, x, hp.seeds)
                except DivergedError as err:
                    row |= {"diverged": str(err)}
                else:
                    lives = sae_live_masks(sae, x)
                    dec = sae.decoder_atoms()
                    live = live_stability(
                        [dec[i] for i in range(2)],
                        None,
                        lives[:2],
                        x,
                        hp.seeds[:2],
                        hungarian=False,
                        subspace_variance=None,
                        n_boot=10,
                    )
                    m = hist.final_metrics
                    row |= {
                        "epochs_run": list(hist.seed_epochs),
                        "converged": list(hist.converged or ()),
                        "explained_variance": sum(r["explained_variance"] for r in m) / len(m),
                        "l0": sum(r["l0"] for r in m) / len(m),
                        "frac_alive": sum(r["frac_alive"] for r in m) / len(m),
                        "live_pwmcc": live["live_pwmcc"]["mean"],
                        "atom_drift": list(hist.atom_drift or ()),
                    }
                row["seconds"] = round(time.perf_counter() - t0, 1)
                rows.append(row)
                args.out.write_text(json.dumps(rows, indent=1) + "\n")
                print(json.dumps(row), flush=True)


def table(rows: list[dict]) -> str:
    """The search as a Markdown table, the chosen rate per (hook, configuration) marked."""
    best: dict[tuple[str, str], float] = {}
    for r in rows:
        if "explained_variance" in r and all(r["converged"]):
            key = (r["hook"], r["config"])
            if key not in best or r["explained_variance"] > best[key][1]:
                best[key] = (r["lr"], r["explained_variance"])
    out = [
        "| hook | config | lr | epochs run (per seed) | converged | EV | L0 | live fraction | "
        "live PWMCC (2 seeds) | atom drift | seconds |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        if "diverged" in r:
            out.append(f"| {r['hook']} | {r['config']} | {r['lr']:g} | diverged | | | | | | | |")
            continue
        chosen = best.get((r["hook"], r["config"]), (None,))[0] == r["lr"]
        drift = ", ".join("n/a" if d is None else f"{d:.3f}" for d in r["atom_drift"])
        out.append(
            f"| {r['hook']} | {r['config']} | {'**' if chosen else ''}{r['lr']:g}"
            f"{'**' if chosen else ''} | {', '.join(map(str, r['epochs_run']))} | "
            f"{', '.join('yes' if c else 'no' for c in r['converged'])} | "
            f"{r['explained_variance']:.5f} | {r['l0']:.1f} | {r['frac_alive']:.3f} | "
            f"{r['live_pwmcc']:.3f} | {drift} | {r['seconds']:.0f} |"
        )
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    main()
