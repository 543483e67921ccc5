"""Stage ``activations@<domain>``: one transformer hook's SAE training data and its
ground truth (params ``activations.hooks.<domain>``; ``modular`` is the primary hook).

Ground truth: the key frequencies' 2-D Fourier block directions
(:func:`husai.fourier.ground_truth_directions`, the old atom-level reference) and the
planes that are really there (:func:`husai.planes.modular_planes`: per key frequency,
the circles of a, b, a + b and a - b holding at least ``MODULAR_MIN_SHARE`` of the
variance), the unit of the plane metrics (SCIENCE.md section 9).
"""

from __future__ import annotations

from pathlib import Path

import torch
import typer

from stages._artifacts import (
    Activations,
    domain_path,
    load_task,
    load_transformer,
    read_json,
    save_activations,
)
from stages._common import PARAMS_OPTION, console, load_params, setup, stage


@stage("activations")
def main(
    domain: str = typer.Option("modular", help="Domain: a key of params activations.hooks."),
    params: Path = PARAMS_OPTION,
    task_path: Path = typer.Option(Path("data/task.safetensors"), "--task", help="Task dataset."),
    model_path: Path = typer.Option(Path("models/transformer"), "--model", help="Checkpoint."),
    fourier_path: Path = typer.Option(
        Path("metrics/fourier.json"), "--fourier", help="Fourier metrics (for the key frequencies)."
    ),
    out: Path | None = typer.Option(
        None, help="Dataset to write [data/domains/<domain>.safetensors]."
    ),
) -> None:
    """Cache activations at the domain's hook and position over all p^2 inputs."""
    from husai.errors import HusaiError
    from husai.fourier import ground_truth_directions
    from husai.planes import MODULAR_MIN_SHARE, VARIABLES, modular_planes
    from husai.transformer import grid_activations

    prm = load_params(params)
    hooks = prm.activations.hooks
    if domain not in hooks:
        raise HusaiError(
            f"activations: {domain!r} is not a key of params activations.hooks "
            f"(known: {', '.join(hooks)})"
        )
    device = setup(prm)
    out = domain_path(domain) if out is None else out
    task = load_task(task_path)
    keys = [int(k) for k in read_json(fourier_path)["key_frequencies"]]
    model, _ = load_transformer(model_path, device)
    hook, pos, p = hooks[domain], prm.activations.position, task.p

    x = grid_activations(model, task, hook, pos)
    grid = x.reshape(p, p, -1)
    gt = ground_truth_directions(grid, keys)
    planes = modular_planes(grid, keys, MODULAR_MIN_SHARE)
    acts = Activations(
        x=x,
        a=task.a.clone(),
        b=task.b.clone(),
        gt_directions=gt.directions.to(torch.float32),
        gt_frequency=gt.frequency,
        gt_u=gt.u,
        gt_v=gt.v,
        gt_energy_share=gt.energy_share,
        plane_basis=planes.basis,
        plane_frequency=planes.frequency,
        plane_variable=planes.variable,
        plane_share=planes.share,
        p=p,
        hook=hook,
        position=pos,
        key_frequencies=keys,
    )
    save_activations(out, acts)
    names = ", ".join(
        f"{VARIABLES[int(v)]}@{int(k)} {float(s):.1%}"
        for k, v, s in zip(planes.frequency, planes.variable, planes.share, strict=True)
    )
    console.print(
        f"activations {domain}: {hook}[{pos}] -> {tuple(x.shape)}; key frequencies {keys}; "
        f"{len(planes.share)} planes holding {float(planes.share.sum()):.1%} of the variance "
        f"({names}) -> {out}"
    )
