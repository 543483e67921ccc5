"""Stage ``stability``: do the baseline SAEs learn the same atoms across seeds?

For every configuration of params ``saes`` it loads the checkpoints of all seeds
(``models/saes/<config>/seed<seed>``) and runs :func:`husai.analysis.stability_summary`
(SCIENCE.md sections 4-5), with the conventions of params ``analysis``. Everything is
checked and computed before ``metrics/stability.json`` is written.

``metrics/stability.json``: :data:`husai.records.StabilityMetrics`, one
:class:`husai.records.StabilitySummary` per configuration (statistics over the
n(n-1)/2 seed pairs are :class:`husai.records.Stat` records with a 95% percentile
bootstrap CI resampling seeds; trained / baseline ratios are
:class:`husai.records.Ratio` records).
"""

from __future__ import annotations

from pathlib import Path

import typer

from husai.records import StabilityMetrics
from stages._artifacts import load_activations
from stages._common import PARAMS_OPTION, console, load_params, setup, stage, write_json


@stage("stability")
def main(
    params: Path = PARAMS_OPTION,
    activations: Path = typer.Option(
        Path("data/activations.safetensors"), help="Activation dataset (for d_in)."
    ),
    saes: Path = typer.Option(Path("models/saes"), help="Checkpoint folder of stage saes."),
    out: Path = typer.Option(Path("metrics/stability.json"), help="Metrics JSON to write."),
) -> None:
    """Stability across seeds of every `saes` configuration, beside random baselines."""
    from husai.analysis import stability_summary
    from husai.errors import HusaiError
    from husai.sae import SAEConfig, init_saes
    from stages._analysis import analysis_options, load_config_saes, subspace_basis

    prm = load_params(params)
    configs = prm.sae_configs()
    if not configs:
        raise HusaiError("saes: params.yaml lists no SAE configurations")
    setup(prm)
    acts = load_activations(activations)
    d_in = acts.d_in
    options = analysis_options(prm)
    basis = subspace_basis(acts.x, options)
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
    console.print(f"stability: {len(result)} configurations -> {out}")
