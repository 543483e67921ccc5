"""Stage ``transformer``: train the Nanda et al. model until it has grokked and cleaned up.

``metrics/transformer.json``: :class:`husai.records.TransformerMetrics`.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import torch
import typer

from husai.records import TransformerMetrics
from stages._artifacts import ModelSpec, load_task, save_transformer
from stages._common import PARAMS_OPTION, console, load_params, setup, stage, write_csv, write_json
from stages._progress import progress

GROK_ACCURACY = 0.99  # grokking_epoch: first epoch with test accuracy >= this
ACCEPT_ACCURACY = 0.999  # SCIENCE.md section 1 acceptance


@stage("transformer")
def main(
    params: Path = PARAMS_OPTION,
    task_path: Path = typer.Option(Path("data/task.safetensors"), "--task", help="Task dataset."),
    out: Path = typer.Option(Path("models/transformer"), help="Checkpoint folder to write."),
    metrics: Path = typer.Option(Path("metrics/transformer.json"), help="Metrics JSON to write."),
    curve: Path = typer.Option(Path("metrics/curves/transformer.csv"), help="Training curve CSV."),
) -> None:
    """Train the 1-layer transformer full batch (AdamW, float64 loss) and evaluate it."""
    from husai import transformer as tf

    prm = load_params(params)
    device = setup(prm)
    task = load_task(task_path)
    if task.p != prm.task.p:
        raise_mismatch(task_path, task.p, prm.task.p)
    t = prm.transformer
    spec = ModelSpec(
        p=task.p, d_model=t.d_model, n_heads=t.n_heads, d_head=t.d_head, d_mlp=t.d_mlp, seed=t.seed
    )
    model = tf.build_model(tf.model_config(device=str(device), **asdict(spec)))
    cfg = tf.TrainConfig(
        epochs=t.epochs,
        lr=t.lr,
        weight_decay=t.weight_decay,
        betas=(t.beta1, t.beta2),
        warmup_epochs=t.warmup_epochs,
        log_every=t.log_every,
        train_biases=t.train_biases,
        grok_accuracy=GROK_ACCURACY,
    )

    with progress() as bar:
        epochs = bar.add_task("transformer epochs", total=cfg.epochs)

        def on_epoch(epoch: int, record: tf.TrainRecord | None) -> None:
            if record is not None:
                bar.update(
                    epochs, description=f"transformer epochs, test acc {record.test_accuracy:.3f}"
                )
            bar.update(epochs, completed=epoch)

        result = tf.train(model, task, cfg, on_epoch)

    model.eval()
    final = tf.evaluate(model, task)
    with torch.no_grad():
        fast = tf.last_position_logits(model, task.tokens.to(device))
        full = model(task.tokens.to(device))[:, -1]
    summary = {
        **final,
        "grokking_epoch": result.grokking_epoch,
        "epochs": cfg.epochs,
        "grokked": final["test_accuracy"] >= ACCEPT_ACCURACY,
        "fast_forward_max_abs_error": float((fast - full).abs().max()),
    }
    save_transformer(out, spec, {k: v.detach() for k, v in model.state_dict().items()})
    write_csv(
        curve,
        ["epoch", "train_loss", "test_loss", "train_accuracy", "test_accuracy"],
        (
            [r.epoch, r.train_loss, r.test_loss, r.train_accuracy, r.test_accuracy]
            for r in result.curve
        ),
    )
    write_json(metrics, summary, TransformerMetrics)

    verdict = "[green]grokked[/]" if summary["grokked"] else "[bold red]NOT grokked[/]"
    console.print(
        f"transformer: {verdict}: test accuracy {final['test_accuracy']:.4f}, "
        f"test loss {final['test_loss']:.2e}, grokking epoch {result.grokking_epoch} "
        f"of {cfg.epochs} -> {out}"
    )


def raise_mismatch(path: Path, found: int, expected: int) -> None:
    from husai.errors import HusaiError

    raise HusaiError(f"{path} was made for p = {found} but task.p = {expected}: run `dvc repro`")
