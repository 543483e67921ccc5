"""Stage ``predictors``: which per-latent properties predict that a latent is shared across seeds.

For each configuration named in ``predictors.configs`` (default: every entry of
``saes``) it loads the baseline SAEs of stage ``saes``, decides for every latent of
every seed whether it is shared with ``predictors.shared_with`` (default
``majority``) of the other seeds by the Paulo & Belrose rule at
``predictors.threshold`` (:mod:`husai.predictors`), and scores five properties of the
latent as predictors of sharing by ROC AUC (ties count one half):

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

``metrics/predictors.json``::

    {
      "rule": {"threshold": 0.7, "shared_with": "majority", "absolute": true},
      "configs": {
        "<config>": {
          "architecture": "topk", "seeds": [...], "d_sae": 1024,
          "min_other_seeds": 3,               # shared with at least this many other seeds
          "n_latents": 5120, "n_live": ..., "n_shared": ...,   # pooled over seeds
          "shared_count_histogram": {"0": n, ..., "<n-1>": n}, # other seeds shared with, all latents
          "per_seed": {"<seed>": {"n_live": ..., "n_shared": ...,
                                  "auc": {"<predictor>": float | null}}},
          "auc": {"<predictor>": VSTATS + {"pooled": float | null}},
          "n_shared_with_any": ..., # live latents shared with at least one other seed
          "auc_shared_with_any": {"<predictor>": pooled AUC for that looser label},
          "means": {"<predictor>": {"shared": float | null, "not_shared": float | null}},
          "shared_rate_by_decile": {"<predictor>": [{"low": .., "high": .., "n": ..,
                                                      "shared_rate": ..}, ...]}
        }
      }
    }

VSTATS: :meth:`husai.stats.SeedStats.to_dict` over the per-seed AUCs (mean, std,
seed-bootstrap 95% CI from 3 seeds on; seeds whose live latents are all shared or
all unshared have no AUC and are left out, ``n_seeds`` counts the rest);
``pooled`` is the AUC over the live latents of all seeds together. An AUC above
0.5 means larger values go with being shared. ``shared_rate_by_decile``: pooled
live latents cut at the deciles of the predictor (tied edges merged), the share
shared in each bin.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from stages._artifacts import load_activations
from stages._common import PARAMS_OPTION, console, load_params, setup, stage, write_json
from stages._pairs import load_config_saes

PREDICTORS = ("firing_frequency", "purity", "decoder_norm", "encoder_norm",
              "max_cos_ground_truth")


def latent_properties(sae, index: int, x, gt_dirs) -> dict[str, Any]:
    """Every predictor of :data:`PREDICTORS` for the latents of seed number ``index``,
    plus ``live`` ([d_sae] bool), as float64 tensors."""
    import numpy as np
    import torch

    from husai.recovery import latent_purity, live_latents
    from husai.stability import best_matches

    one = sae.select(index)
    acts = one.encode(x)[0]  # [p*p, d_sae]
    live = live_latents(acts)
    purity = torch.zeros(acts.shape[1], dtype=torch.float64)  # dead: constant, purity 0
    if bool(live.any()):
        purity[live] = latent_purity(acts[:, live]).purity.to(torch.float64)
    props = {
        "firing_frequency": (acts != 0).to(torch.float64).mean(0),
        "purity": purity,
        "decoder_norm": one.W_dec[0].to(torch.float64).norm(dim=1),
        "encoder_norm": one.W_enc[0].to(torch.float64).norm(dim=0),
        "max_cos_ground_truth": best_matches(one.W_dec[0], gt_dirs).cosine,
    }
    props = {k: torch.from_numpy(np.array([float(f"{v:.6g}") for v in t.tolist()]))
             for k, t in props.items()}
    props["live"] = live
    return props


def deciles(scores, labels) -> list[dict[str, Any]]:
    """Shared rate in the predictor's decile bins (module docstring)."""
    import numpy as np

    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels, dtype=bool)
    if len(s) == 0:
        return []
    edges = np.unique(np.quantile(s, np.linspace(0, 1, 11)))
    inner = edges[1:-1]
    bins = np.searchsorted(inner, s, side="right")
    out = []
    for b in range(len(inner) + 1):
        sel = bins == b
        if not sel.any():
            continue
        out.append({"low": float(s[sel].min()), "high": float(s[sel].max()),
                    "n": int(sel.sum()), "shared_rate": float(y[sel].mean())})
    return out


@stage("predictors")
def main(
    params: Path = PARAMS_OPTION,
    activations: Path = typer.Option(Path("data/activations.safetensors"),
                                      help="Activations with ground-truth directions."),
    models: Path = typer.Option(Path("models/saes"), help="SAE checkpoints of stage saes."),
    metrics: Path = typer.Option(Path("metrics/predictors.json"), help="Metrics JSON to write."),
) -> None:
    """Per-latent predictors of sharing across seeds (params.yaml `predictors`), by ROC AUC."""
    import numpy as np
    import torch

    from husai.geometry import one_thread
    from husai.predictors import min_shared, roc_auc, shared_counts
    from husai.recovery import present_directions
    from husai.stats import per_seed_stats

    prm = load_params(params)
    pred = prm.predictors
    configs = prm.analysis_configs("predictors")
    setup(prm)
    acts = load_activations(activations)
    saes = {name: load_config_saes(models, name, hp.seeds, acts.d_in)
            for name, hp in configs.items()}
    keep = present_directions(acts.gt_directions, acts.gt_energy_share)
    gt = acts.gt_directions[keep] if bool(keep.any()) else acts.gt_directions.new_zeros(
        1, acts.d_in)

    out: dict[str, Any] = {"rule": {"threshold": pred.threshold, "shared_with": pred.shared_with,
                                    "absolute": True},
                           "configs": {}}
    for name, sae in saes.items():
        seeds = list(configs[name].seeds)
        n = len(seeds)
        with one_thread():  # small eigh / matching work (husai.geometry.one_thread)
            counts = shared_counts(list(sae.decoder_atoms()), list(sae.encoder_atoms()),
                                   pred.threshold)
        need = min_shared(n, pred.shared_with)
        shared = counts >= need
        props = [latent_properties(sae, i, acts.x, gt) for i in range(n)]
        per_seed: dict[str, Any] = {}
        pooled: dict[str, list] = {k: [] for k in PREDICTORS}
        pooled_y: list = []
        for i, seed in enumerate(seeds):
            live = props[i]["live"]
            y = shared[i][live].numpy()
            per_seed[str(seed)] = {
                "n_live": int(live.sum()), "n_shared": int(shared[i][live].sum()),
                "auc": {k: roc_auc(props[i][k][live].numpy(), y) for k in PREDICTORS}}
            for k in PREDICTORS:
                pooled[k].append(props[i][k][live].numpy())
            pooled_y.append(y)
        y_all = np.concatenate(pooled_y)
        auc = {}
        means = {}
        by_decile = {}
        for k in PREDICTORS:
            v = np.concatenate(pooled[k])
            auc[k] = {**per_seed_stats([per_seed[str(s)]["auc"][k] for s in seeds]),
                      "pooled": roc_auc(v, y_all)}
            means[k] = {"shared": float(v[y_all].mean()) if y_all.any() else None,
                        "not_shared": float(v[~y_all].mean()) if (~y_all).any() else None}
            by_decile[k] = deciles(v, y_all)
        # the loosest rule as a second view (more positives when few latents are shared)
        any_y = np.concatenate([(counts[i] >= 1)[props[i]["live"]].numpy() for i in range(n)])
        auc_any = {k: roc_auc(np.concatenate(pooled[k]), any_y) for k in PREDICTORS}
        hist = torch.bincount(counts.flatten(), minlength=n).tolist()
        out["configs"][name] = {
            "architecture": sae.config.architecture,
            "seeds": seeds,
            "d_sae": sae.config.d_sae,
            "min_other_seeds": need,
            "n_latents": int(counts.numel()),
            "n_live": len(y_all),
            "n_shared": int(y_all.sum()),
            "shared_count_histogram": {str(c): h for c, h in enumerate(hist)},
            "per_seed": per_seed,
            "auc": auc,
            "n_shared_with_any": int(any_y.sum()),
            "auc_shared_with_any": auc_any,
            "means": means,
            "shared_rate_by_decile": by_decile,
        }
        shown = ", ".join(f"{k} {auc[k]['mean']:.3f}" if auc[k]["mean"] is not None
                          else f"{k} n/a" for k in PREDICTORS)
        console.print(f"predictors: {name}: {int(y_all.sum())}/{len(y_all)} live latents shared; "
                      f"AUC {shown}")
    write_json(metrics, out)
    console.print(f"predictors: {len(saes)} configurations -> {metrics}")
