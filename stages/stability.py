"""Stage ``stability@<domain>``: do the SAEs learn the same atoms across seeds?

For every configuration of params ``saes.<domain>`` it loads the checkpoints of all seeds
(``models/saes/<domain>/<config>/seed<seed>``) and runs :func:`husai.analysis.stability_summary`
(SCIENCE.md sections 4-5), with the conventions of params ``analysis``. Everything is
checked and computed before ``metrics/stability/<domain>.json`` is written.

``metrics/stability/<domain>.json``: :data:`husai.records.StabilityMetrics`, one
:class:`husai.records.StabilitySummary` per configuration (statistics over the
n(n-1)/2 seed pairs are :class:`husai.records.Stat` records with a 95% percentile
bootstrap CI resampling seeds; trained / baseline ratios are
:class:`husai.records.Ratio` records).
"""

from __future__ import annotations

from pathlib import Path

import typer

from husai.records import StabilityMetrics
from stages._artifacts import domain_path, load_domain
from stages._common import PARAMS_OPTION, console, load_params, setup, stage, write_json


@stage("stability")
def main(
    domain: str = typer.Option("modular", help="Domain: a key of params saes."),
    params: Path = PARAMS_OPTION,
    data: Path | None = typer.Option(
        None, "--data", help="Training data [data/domains/<domain>.safetensors]."
    ),
    saes: Path | None = typer.Option(
        None, help="Checkpoints of stage saes [models/saes/<domain>]."
    ),
    out: Path | None = typer.Option(None, help="Metrics JSON [metrics/stability/<domain>.json]."),
) -> None:
    """Stability across seeds of every `saes.<domain>` configuration, beside random baselines."""
    from husai.analysis import stability_summary
    from husai.errors import HusaiError
    from husai.sae import SAEConfig, init_saes
    from stages._analysis import analysis_options, load_config_saes, subspace_basis

    prm = load_params(params)
    configs = prm.sae_configs(domain)
    if not configs:
        raise HusaiError(f"stability: params.yaml lists no SAE configuration for domain {domain!r}")
    setup(prm)
    data = domain_path(domain) if data is None else data
    saes = Path("models/saes") / domain if saes is None else saes
    out = Path("metrics/stability") / f"{domain}.json" if out is None else out
    dom = load_domain(data, domain)
    d_in = dom.d_in
    options = analysis_options(prm)
    basis = subspace_basis(dom.x, options)
    loaded = {name: load_config_saes(saes / name, name, hp, d_in) for name, hp in configs.items()}
    result = {}
    for name, sae in loaded.items():
        console.print(f"stability: {name} ({sae.n_seeds} seeds, d_sae {sae.config.d_sae})")
        untrained = init_saes(SAEConfig.from_hyperparams(configs[name], d_in), sae.seeds)
        result[name] = stability_summary(sae, options, untrained, basis=basis)
    write_json(out, result, StabilityMetrics)
    for name, st in result.items():
        r = st["pwmcc_ratio_to_random"]
        ci = "" if r["ci"] is None else f" [{r['ci'][0]:.2f}, {r['ci'][1]:.2f}]"
        console.print(
            f"  {name}: PWMCC {st['pwmcc']['mean']:.3f} vs random "
            f"{st['random_pwmcc']['mean']:.3f}, ratio {r['ratio']:.2f}{ci}"
            + (
                ""
                if "subspace_random_pwmcc" not in st
                else f"; random in the {st['subspace_rank']}-dim data subspace "
                f"{st['subspace_random_pwmcc']['mean']:.3f}"
            )
        )
    console.print(f"stability {domain}: {len(result)} configurations -> {out}")
