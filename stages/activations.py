"""Stage ``activations``: the SAE training data and the ground-truth directions."""

from __future__ import annotations

from pathlib import Path

import torch
import typer

from stages._artifacts import Activations, load_task, load_transformer, read_json, save_activations
from stages._common import PARAMS_OPTION, console, load_params, setup, stage


@stage("activations")
def main(
    params: Path = PARAMS_OPTION,
    task_path: Path = typer.Option(Path("data/task.safetensors"), "--task", help="Task dataset."),
    model_path: Path = typer.Option(Path("models/transformer"), "--model", help="Checkpoint."),
    fourier_path: Path = typer.Option(
        Path("metrics/fourier.json"), "--fourier", help="Fourier metrics (for the key frequencies)."
    ),
    out: Path = typer.Option(Path("data/domains/modular.safetensors"), help="Dataset to write."),
) -> None:
    """Cache activations at the configured hook and position over all p^2 inputs."""
    from husai.fourier import ground_truth_directions
    from husai.transformer import grid_activations

    prm = load_params(params)
    device = setup(prm)
    task = load_task(task_path)
    keys = [int(k) for k in read_json(fourier_path)["key_frequencies"]]
    model, _ = load_transformer(model_path, device)
    hook, pos, p = prm.activations.hook, prm.activations.position, task.p

    x = grid_activations(model, task, hook, pos)
    gt = ground_truth_directions(x.reshape(p, p, -1), keys)
    acts = Activations(
        x=x,
        a=task.a.clone(),
        b=task.b.clone(),
        gt_directions=gt.directions.to(torch.float32),
        gt_frequency=gt.frequency,
        gt_u=gt.u,
        gt_v=gt.v,
        gt_energy_share=gt.energy_share,
        p=p,
        hook=hook,
        position=pos,
        key_frequencies=keys,
    )
    save_activations(out, acts)
    console.print(
        f"activations: {hook}[{pos}] -> {tuple(x.shape)}; {len(gt.frequency)} ground-truth "
        f"directions for key frequencies {keys} holding {float(gt.energy_share.sum()):.1%} of the "
        f"variance -> {out}"
    )
