"""Stage ``saes@<domain>``: train every configuration of ``saes.<domain>`` (all its seeds
at once) on the domain's data and evaluate.

Writes ``models/saes/<domain>/<config>/seed<seed>/{cfg.json, sae_weights.safetensors}``
(SAELens folders, loadable with ``sae_lens.SAE.load_from_disk``) and
``metrics/saes/<domain>.json`` (:class:`husai.records.SaesMetrics`): one entry per SAE
with its architecture, seed,
hyperparameters, SAEBench metrics on the whole activation dataset and its final
training numbers (with the epochs it ran and whether it met the convergence criterion,
``sae.convergence_tol``; the progress bar's total counts every epoch allowed, less those a
configuration that stopped at convergence did not run, so its ETA shortens as they stop).
Each configuration is one unit of :mod:`stages._executor` (:func:`train_config`): in this
process, or one task of the domain's SLURM job array. Everything is validated and
trained before anything is written.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from husai.records import SaesMetrics
from stages._artifacts import domain_path, load_domain, sae_files
from stages._common import PARAMS_OPTION, console, load_params, setup, stage, write_dir, write_json
from stages._executor import Unit, executor
from stages._progress import progress


def train_config(
    x: Any, name: str, hp: Any, meta: dict, on_progress: Callable[[int, int], None] | None
) -> dict:
    """One configuration (a unit of :mod:`stages._executor`): its seeds trained to the
    criterion; its checkpoint files, its metrics entries and the steps it ran."""
    from husai.sae import SAEConfig, train_saes

    config = SAEConfig.from_hyperparams(hp, d_in=x.shape[1])
    sae, history = train_saes(config, x, hp.seeds, on_progress=on_progress, name=name)
    results = history.final_metrics
    last = {k: history.last(k) for k in ("loss", "mse", "l0")}
    entries = {}
    for i, seed in enumerate(sae.seeds):
        entries[f"{name}/seed{seed}"] = {
            "config": name,
            "architecture": config.architecture,
            "seed": seed,
            "hyperparameters": config.hyperparams(),
            "metrics": results[i],
            "training": {
                "steps": history.seed_steps[i],
                "activation_scale": history.scale,
                "final_epoch_loss": float(last["loss"][i]),
                "final_epoch_mse": float(last["mse"][i]),
                "final_epoch_l0": float(last["l0"][i]),
                "epochs_run": history.seed_epochs[i],
                "converged": None if history.converged is None else history.converged[i],
                "atom_drift": None if history.atom_drift is None else history.atom_drift[i],
            },
        }
    return {"files": sae_files(sae, name, meta), "entries": entries, "steps": history.steps}


@stage("saes")
def main(
    domain: str = typer.Option("modular", help="Domain: a key of params saes."),
    params: Path = PARAMS_OPTION,
    data: Path | None = typer.Option(
        None, "--data", help="Training data [data/domains/<domain>.safetensors]."
    ),
    out: Path | None = typer.Option(None, help="Checkpoint folder [models/saes/<domain>]."),
    metrics: Path | None = typer.Option(None, help="Metrics JSON [metrics/saes/<domain>.json]."),
) -> None:
    """Train the SAE configurations of params.yaml `saes.<domain>`; write SAELens checkpoints."""
    from husai.errors import HusaiError
    from husai.sae import steps_per_epoch

    prm = load_params(params)
    configs = prm.sae_configs(domain)
    if not configs:
        raise HusaiError(f"saes: params.yaml lists no SAE configuration for domain {domain!r}")
    setup(prm)
    data = domain_path(domain) if data is None else data
    out = Path("models/saes") / domain if out is None else out
    metrics = Path("metrics/saes") / f"{domain}.json" if metrics is None else metrics
    dom = load_domain(data, domain, prm.is_transformer_domain(domain))
    x = dom.x
    n_rows, d_in = x.shape
    if prm.is_transformer_domain(domain):
        meta = {
            "hook_name": dom.meta["hook"],
            "model_name": f"husai-modular-addition-p{dom.meta['p']}",
            "context_size": 3,
            "seqpos_slice": [dom.meta["position"]],
        }
    else:
        meta = {"hook_name": f"husai-{domain}", "model_name": f"husai-{domain}"}
    units = [Unit(name, train_config, (x, name, hp, meta)) for name, hp in configs.items()]
    files: dict[str, bytes] = {}
    entries: dict[str, dict] = {}
    per_epoch = {name: steps_per_epoch(n_rows, hp.batch_size) for name, hp in configs.items()}
    total = sum(per_epoch[n] * hp.epochs * len(hp.seeds) for n, hp in configs.items())
    count = {"done": 0, "total": total}

    with (
        executor(
            "saes",
            domain,
            params=params,
            inputs=[data],
            runtime=prm.runtime,
        ) as ex,
        progress() as bar,
    ):
        task = bar.add_task(f"saes {domain}: SAE-steps", total=total)

        @contextmanager
        def steps(unit: Unit) -> Iterator[Callable[[int, int], None]]:
            n_seeds, base = len(configs[unit.name].seeds), count["done"]
            bar.update(task, description=f"saes {domain}: {unit.name}, SAE-steps")

            def on_progress(step: int, _total: int) -> None:
                bar.update(task, completed=base + step * n_seeds)

            yield on_progress

        def done(unit: Unit, result: dict) -> None:
            hp = configs[unit.name]
            count["done"] += result["steps"] * len(hp.seeds)
            # a run that stopped at convergence gives back the steps it did not need
            count["total"] -= (per_epoch[unit.name] * hp.epochs - result["steps"]) * len(hp.seeds)
            bar.update(task, completed=count["done"], total=count["total"])
            files.update(result["files"])
            entries.update(result["entries"])

        ex.run(units, bar=bar, progress_for=steps, on_result=done)
        write_dir(out, files)
        write_json(
            metrics,
            {
                "activations": {"domain": domain, "n": n_rows, "d_in": d_in}
                | {k: dom.meta[k] for k in ("hook", "position", "p") if k in dom.meta},
                "saes": entries,
            },
            SaesMetrics,
        )
    table = Table("config", "arch", "seeds", "EV", "L0", "alive", "cossim", box=None)
    for name in configs:
        rows = [e["metrics"] for e in entries.values() if e["config"] == name]
        mean = {k: sum(r[k] for r in rows) / len(rows) for k in rows[0]}
        table.add_row(
            name,
            entries[next(k for k in entries if k.startswith(f"{name}/"))]["architecture"],
            str(len(rows)),
            f"{mean['explained_variance']:.4f}",
            f"{mean['l0']:.1f}",
            f"{mean['frac_alive']:.3f}",
            f"{mean['cossim']:.4f}",
        )
    console.print(table)
    console.print(
        f"saes {domain}: {len(entries)} SAEs in {len(configs)} configurations -> {out}, {metrics}"
    )
