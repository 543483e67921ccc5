"""Stage ``recovery``: do the baseline SAEs find the ground-truth Fourier features?

For every configuration of params ``saes`` and each of its seeds, runs
:func:`husai.analysis.recovery_summary` (SCIENCE.md section 3) on the whole p x p
input grid, with the purity threshold of params ``fourier``, then prints the
"Phase 1" table (L0, EV and dead share from ``metrics/saes/modular.json``, stability from
``metrics/stability/modular.json``, coverage from here).

``metrics/recovery.json``: :data:`husai.records.RecoveryMetrics`, one
:class:`husai.records.RecoveryConfig` per configuration: its shape, seeds and key
frequencies, each seed's :func:`husai.recovery.recovery_metrics` (``per_seed``) and the
:class:`husai.records.Stat` over seeds (CI a 95% percentile bootstrap) of each of
``pure_latent_fraction``, ``key_frequency_coverage``, ``decoder_alignment`` and
``random_decoder_alignment`` (an isotropic dictionary of the same shape).
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from husai.records import RecoveryMetrics
from stages._artifacts import load_activations, read_json
from stages._common import PARAMS_OPTION, console, load_params, setup, stage, write_json
from stages._progress import progress


@stage("recovery")
def main(
    params: Path = PARAMS_OPTION,
    activations: Path = typer.Option(
        Path("data/domains/modular.safetensors"), help="Activation dataset with the ground truth."
    ),
    saes: Path = typer.Option(Path("models/saes/modular"), help="Checkpoint folder of stage saes."),
    saes_metrics: Path = typer.Option(
        Path("metrics/saes/modular.json"), help="Metrics of stage saes."
    ),
    stability: Path = typer.Option(
        Path("metrics/stability/modular.json"), help="Metrics of stage stability (for the table)."
    ),
    out: Path = typer.Option(Path("metrics/recovery.json"), help="Metrics JSON to write."),
) -> None:
    """Ground-truth recovery of every `saes` configuration; prints the Phase 1 table."""
    from husai.analysis import recovery_summary
    from husai.errors import HusaiError
    from stages._analysis import (
        analysis_options,
        ground_truth,
        load_config_saes,
        phase1_rows,
        phase1_table,
    )

    prm = load_params(params)
    configs = prm.sae_configs()
    if not configs:
        raise HusaiError("saes: params.yaml lists no SAE configurations")
    setup(prm)
    acts = load_activations(activations)
    sae_json, stab_json = read_json(saes_metrics), read_json(stability)
    missing = [name for name in configs if name not in stab_json]
    if missing:
        raise HusaiError(f"{stability} lacks configurations {missing} (run `dvc repro stability`)")
    options = analysis_options(prm)
    gt = ground_truth(acts)
    loaded = {
        name: load_config_saes(saes / name, name, hp, acts.d_in) for name, hp in configs.items()
    }
    per_config = {}
    with progress() as bar:
        task = bar.add_task("recovery: configurations", total=len(loaded))
        for name, sae in loaded.items():
            bar.update(task, description=f"recovery: {name}")
            console.print(f"recovery: {name} ({sae.n_seeds} seeds, d_sae {sae.config.d_sae})")
            per_config[name] = {
                "architecture": sae.config.architecture,
                "d_sae": sae.config.d_sae,
                "seeds": list(sae.seeds),
                "key_frequencies": list(acts.key_frequencies),
                **recovery_summary(sae, acts.x, gt, acts.key_frequencies, options),
            }
            bar.advance(task)
    rows = phase1_rows(sae_json, {n: stab_json[n] for n in configs}, per_config)
    write_json(out, per_config, RecoveryMetrics)
    wide = Console(highlight=False, width=max(console.width, 150))  # the table is wide
    wide.print(phase1_table(rows))
    console.print(f"recovery: {len(per_config)} configurations -> {out}")
