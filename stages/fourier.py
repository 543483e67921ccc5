"""Stage ``fourier``: validate the ground truth (SCIENCE.md section 2).

``metrics/fourier.json``: :class:`husai.records.FourierMetrics`.
"""

from __future__ import annotations

from pathlib import Path

import typer

from husai.records import FourierMetrics
from stages._artifacts import load_task, load_transformer
from stages._common import PARAMS_OPTION, console, load_params, setup, stage, write_csv, write_json


@stage("fourier")
def main(
    params: Path = PARAMS_OPTION,
    task_path: Path = typer.Option(Path("data/task.safetensors"), "--task", help="Task dataset."),
    model_path: Path = typer.Option(Path("models/transformer"), "--model", help="Checkpoint."),
    metrics: Path = typer.Option(Path("metrics/fourier.json"), help="Metrics JSON to write."),
    spectrum: Path = typer.Option(
        Path("metrics/curves/fourier_spectrum.csv"), help="Per-frequency spectrum CSV to write."
    ),
) -> None:
    """Key frequencies, their share of the embedding and of the activations, neuron purity."""
    from husai import fourier as fr
    from husai.config import MODULAR
    from husai.transformer import build_model, grid_activations

    prm = load_params(params)
    device = setup(prm)
    task = load_task(task_path)
    model, _ = load_transformer(model_path, device)
    untrained = build_model(model.cfg)  # the same seed: this model's own initialisation
    untrained.eval()
    p, hook, pos = task.p, prm.activations.hooks[MODULAR], prm.activations.position

    energy, const = fr.frequency_energy(model.embed.W_E[:p].detach().cpu())
    keys = fr.key_frequencies(energy, prm.fourier.key_threshold)
    emb_share = energy / (energy.sum() + const)

    def grid(m, name):
        return grid_activations(m, task, name, pos).reshape(p, p, -1)

    acts, acts0 = grid(model, hook), grid(untrained, hook)
    neurons = grid_activations(model, task, "blocks.0.mlp.hook_post", -1).reshape(p, p, -1)
    pur = fr.purity(neurons)
    pure = pur.purity >= prm.fourier.purity_threshold
    per_freq = {k: int((pure & (pur.frequency == k)).sum()) for k in keys}

    def freq_shares(x):
        coeffs = fr.fourier_2d(fr.centre_grid(x))
        return fr.block_energy(coeffs).flatten(1).sum(1) / coeffs.pow(2).sum()

    act_share, act0_share = freq_shares(acts), freq_shares(acts0)
    result = {
        "key_frequencies": keys,
        "embedding_key_frequency_share": float(emb_share[[k - 1 for k in keys]].sum()),
        "activation_hook": hook,
        "activation_position": pos,
        "activation_key_frequency_variance_share": fr.key_frequency_variance_share(acts, keys),
        "untrained_activation_key_frequency_variance_share": fr.key_frequency_variance_share(
            acts0, keys
        ),
        "neuron_purity_fraction": float(pure.to(float).mean()),
        "pure_neurons_per_key_frequency": {str(k): v for k, v in per_freq.items()},
        "pure_neurons_off_key_frequencies": int(pure.sum()) - sum(per_freq.values()),
        "activation_effective_rank": fr.effective_rank(acts.reshape(p * p, -1)),
        "untrained_activation_effective_rank": fr.effective_rank(acts0.reshape(p * p, -1)),
        "activation_dim": int(acts.shape[-1]),
    }
    write_csv(
        spectrum,
        ["frequency", "embedding_share", "activation_share", "untrained_activation_share", "key"],
        (
            [k, emb_share[k - 1], act_share[k - 1], act0_share[k - 1], int(k in keys)]
            for k in range(1, fr.n_frequencies(p) + 1)
        ),
    )
    write_json(metrics, result, FourierMetrics)
    console.print(
        f"fourier: key frequencies {keys} carry {result['embedding_key_frequency_share']:.1%} of "
        f"the embedding and {result['activation_key_frequency_variance_share']:.1%} of the "
        f"activation variance (untrained "
        f"{result['untrained_activation_key_frequency_variance_share']:.1%}); "
        f"{result['neuron_purity_fraction']:.1%} of neurons pure; effective rank "
        f"{result['activation_effective_rank']:.1f}"
    )
