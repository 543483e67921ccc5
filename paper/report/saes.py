"""Section "SAE baseline": SAEBench metrics of the baseline SAEs, means over seeds."""

from __future__ import annotations

from dataclasses import dataclass

from paper import schema as sc
from paper.cite import Citer
from paper.figures import SAES
from paper.metrics import JsonPath, Metrics


@dataclass(frozen=True)
class Config:
    name: str
    architecture: str
    seeds: tuple[JsonPath, ...]  # json paths of its entries in saes.json, one per seed


@dataclass(frozen=True)
class Facts:
    configs: tuple[Config, ...]


def decide(m: Metrics) -> Facts:
    out = []
    for name in sc.sae_configs(m):
        paths = sc.sae_seed_paths(m, name)
        out.append(Config(name, m.get(SAES, (*paths[0], "architecture")), tuple(paths)))
    return Facts(tuple(out))


HEAD = (
    "| config | architecture | d_sae | seeds | explained variance (mean ± sd) | L0 | "
    "alive fraction | cos sim | epochs run (min-max) | atom drift (mean) |\n"
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n"
)


def _training(m: Metrics, cfg: Config, key: str) -> list[JsonPath] | None:
    """The paths of ``training/<key>`` of every seed, None where some seed lacks a value
    (files written before the criterion existed, or a fixed schedule)."""
    paths = [(*p, "training", key) for p in cfg.seeds]
    for p in paths:
        if not sc.has(m.get(SAES, p[:-1]), (key,)) or m.get(SAES, p) is None:
            return None
    return paths


def render(c: Citer, f: Facts, build) -> str:
    rows = []
    for cfg in f.configs:

        def agg(op: str, metric: str, fmt: str, paths=cfg.seeds) -> str:
            return c.derived(op, [(SAES, (*p, "metrics", metric)) for p in paths], fmt)

        ep, dr = _training(c.m, cfg, "epochs_run"), _training(c.m, cfg, "atom_drift")
        epochs = (
            "n/a"
            if ep is None
            else f"{c.derived('min', [(SAES, p) for p in ep], 'd')}-"
            f"{c.derived('max', [(SAES, p) for p in ep], 'd')}"
        )
        drift = "n/a" if dr is None else c.derived("mean", [(SAES, p) for p in dr], ".3f")
        rows.append(
            f"| `{cfg.name}` | {cfg.architecture} | "
            f"{c.num(SAES, (*cfg.seeds[0], 'hyperparameters', 'd_sae'), 'd')} | "
            f"{c.derived('count', [(SAES, (*p, 'seed')) for p in cfg.seeds], 'd')} | "
            f"{agg('mean', 'explained_variance', '.4f')} ± "
            f"{agg('std', 'explained_variance', '.4f')} | "
            f"{agg('mean', 'l0', '.1f')} | {agg('mean', 'frac_alive', '.3f')} | "
            f"{agg('mean', 'cossim', '.3f')} | {epochs} | {drift} |\n"
        )
    return (
        HEAD
        + "".join(rows)
        + (
            "\nMeans over seeds of the SAEBench metrics on the whole activation dataset "
            "(`metrics/saes/modular.json`). Each seed trains until its convergence criterion "
            "(params `saes.modular`: explained variance rising by less than the tolerance over "
            "the window) or its epoch limit; "
            + (
                "every seed met it. "
                if all(
                    c.m.get(SAES, (*p, "training", "converged")) is True
                    for cfg in f.configs
                    for p in cfg.seeds
                    if sc.has(c.m.get(SAES, (*p, "training")), ("converged",))
                )
                else "**some seeds did not meet it** (`training.converged` in the file). "
            )
            + "Atom drift: how far the live atoms still moved over the last window (the mean "
            "of one minus the cosine with their earlier state), measured at the stop, not "
            "required to vanish.\n"
        )
    )


def section(c: Citer, build) -> str:
    return render(c, decide(c.m), build)
