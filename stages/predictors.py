"""Stage ``predictors``: which per-latent properties predict that a latent is shared across seeds.

For each configuration named in ``predictors.configs`` (default: every entry of
``saes``) it loads the baseline SAEs of stage ``saes``, decides for every latent of
every seed whether it is shared with ``predictors.shared_with`` (default
``majority``) of the other seeds by the Paulo & Belrose rule at
``predictors.threshold`` (:mod:`husai.predictors`), and scores five properties of the
latent as predictors of sharing by ROC AUC (ties count one half), by
:func:`husai.predictors.predictor_summary`:

* ``firing_frequency``: share of the p x p inputs on which the latent is non-zero;
* ``purity``: Fourier purity of its activation over the grid (Nanda et al. 2023,
  :func:`husai.recovery.latent_purity`);
* ``decoder_norm``: ``||W_dec[i]||`` of the saved SAE (SAELens folds the scale into
  the encoder and saves unit decoder rows, so for these checkpoints it is constant
  and its AUC is exactly 0.5: reported to show it, not as a finding);
* ``encoder_norm``: ``||W_enc[:, i]||`` (where the scale went);
* ``max_cos_ground_truth``: largest ``|cos|`` of the decoder atom with a present
  ground-truth Fourier direction (SCIENCE.md section 3).

Every property is rounded to 6 significant digits before ranking, so that float32
round-off (unit decoder norms read back as 0.99999994 or 1.0000001) is a tie, not a
spurious ordering.

Population: live latents only (non-zero on at least one input of the grid); a dead
latent is never shared in practice and would make ``firing_frequency`` look
predictive for a trivial reason. Their number is reported.

``metrics/predictors.json``: :class:`husai.records.PredictorsMetrics`: the sharing
``rule`` and, per configuration, a :class:`husai.records.PredictorConfig`: shape,
seeds, ``min_other_seeds`` (shared with at least this many other seeds), latent counts
pooled over seeds, the histogram of the number of other seeds each latent is shared
with (all latents), ``per_seed`` live / shared counts and AUCs, ``auc`` per predictor
(an :class:`husai.records.AucStat`), ``n_shared_with_any`` and
``auc_shared_with_any`` (pooled AUCs for the looser label "shared with at least one
other seed"), class ``means`` and ``shared_rate_by_decile``.

``auc``: the :class:`husai.records.Stat` of the per-seed AUCs (mean, std,
seed-bootstrap 95% CI from 3 seeds on; seeds whose live latents are all shared or
all unshared have no AUC and are left out, ``n_seeds`` counts the rest) with
``pooled``, the AUC over the live latents of all seeds together. An AUC above
0.5 means larger values go with being shared. ``shared_rate_by_decile``: pooled
live latents cut at the deciles of the predictor (tied edges merged), the share
shared in each bin.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from husai.records import PredictorsMetrics
from stages._artifacts import load_activations
from stages._common import PARAMS_OPTION, console, load_params, setup, stage, write_json
from stages._pairs import load_config_saes
from stages._progress import progress


@stage("predictors")
def main(
    params: Path = PARAMS_OPTION,
    activations: Path = typer.Option(
        Path("data/domains/modular.safetensors"), help="Activations with ground-truth directions."
    ),
    models: Path = typer.Option(Path("models/saes/modular"), help="SAE checkpoints of stage saes."),
    metrics: Path = typer.Option(Path("metrics/predictors.json"), help="Metrics JSON to write."),
) -> None:
    """Per-latent predictors of sharing across seeds (params.yaml `predictors`), by ROC AUC."""
    from husai.predictors import PREDICTORS, predictor_summary, present_ground_truth
    from stages._analysis import ground_truth

    prm = load_params(params)
    pred = prm.predictors
    configs = prm.analysis_configs("predictors")
    setup(prm)
    acts = load_activations(activations)
    saes = {
        name: load_config_saes(models, name, hp.seeds, acts.d_in) for name, hp in configs.items()
    }
    directions = present_ground_truth(ground_truth(acts))

    out: dict[str, Any] = {
        "rule": {"threshold": pred.threshold, "shared_with": pred.shared_with, "absolute": True},
        "configs": {},
    }
    with progress() as bar:
        task = bar.add_task("predictors: configurations", total=len(saes))
        for name, sae in saes.items():
            bar.update(task, description=f"predictors: {name}")
            out["configs"][name] = c = predictor_summary(
                sae, acts.x, directions, threshold=pred.threshold, shared_with=pred.shared_with
            )
            auc = c["auc"]
            shown = ", ".join(
                f"{k} {auc[k]['mean']:.3f}" if auc[k]["mean"] is not None else f"{k} n/a"
                for k in PREDICTORS
            )
            console.print(
                f"predictors: {name}: {c['n_shared']}/{c['n_live']} live latents shared; AUC {shown}"
            )
            bar.advance(task)
    write_json(metrics, out, PredictorsMetrics)
    console.print(f"predictors: {len(saes)} configurations -> {metrics}")
