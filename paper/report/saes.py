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
    "alive fraction | cos sim |\n| --- | --- | --- | --- | --- | --- | --- | --- |\n"
)


def render(c: Citer, f: Facts, build) -> str:
    rows = []
    for cfg in f.configs:

        def agg(op: str, metric: str, fmt: str, paths=cfg.seeds) -> str:
            return c.derived(op, [(SAES, (*p, "metrics", metric)) for p in paths], fmt)

        rows.append(
            f"| `{cfg.name}` | {cfg.architecture} | "
            f"{c.num(SAES, (*cfg.seeds[0], 'hyperparameters', 'd_sae'), 'd')} | "
            f"{c.derived('count', [(SAES, (*p, 'seed')) for p in cfg.seeds], 'd')} | "
            f"{agg('mean', 'explained_variance', '.3f')} ± "
            f"{agg('std', 'explained_variance', '.3f')} | "
            f"{agg('mean', 'l0', '.1f')} | {agg('mean', 'frac_alive', '.3f')} | "
            f"{agg('mean', 'cossim', '.3f')} |\n"
        )
    return (
        HEAD
        + "".join(rows)
        + (
            "\nMeans over seeds of the SAEBench metrics on the whole activation dataset "
            "(`metrics/saes/modular.json`).\n"
        )
    )


def section(c: Citer, build) -> str:
    return render(c, decide(c.m), build)
