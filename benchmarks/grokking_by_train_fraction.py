"""When does the default transformer grok, by train fraction? (run by hand, minutes per run)

    python benchmarks/grokking_by_train_fraction.py 0.6 2500          # frac, epochs
    python benchmarks/grokking_by_train_fraction.py 0.4 2500 0.003    # ... and lr

Prints the grokking epoch (first test accuracy >= 0.99), the share of MLP neurons with
Fourier purity >= 0.85 every 500 epochs, and test accuracy every 250 epochs. Same
model, seeds (transformer 999, split 598) and training loop as the `transformer` stage.
Results: benchmarks/RESULTS-grokking.md.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from husai import fourier as fr
from husai import transformer as tf
from husai.determinism import configure
from husai.task import make_task


def main() -> None:
    frac, epochs = float(sys.argv[1]), int(sys.argv[2])
    lr = float(sys.argv[3]) if len(sys.argv) > 3 else 1e-3
    configure("cpu", 2)
    task = make_task(113, frac, 598)
    model = tf.build_model(tf.model_config(113))
    marks: dict[int, float] = {}

    def on_epoch(epoch: int, _record: object) -> None:
        if epoch % 500 == 0 and epoch > 0:
            neurons = tf.grid_activations(model, task, "blocks.0.mlp.hook_post", -1)
            purity = fr.purity(neurons.reshape(113, 113, -1)).purity
            marks[epoch] = round(float((purity >= 0.85).float().mean()), 3)

    start = time.time()
    result = tf.train(model, task, tf.TrainConfig(epochs=epochs, lr=lr, log_every=50), on_epoch)
    curve = [(r.epoch, round(r.test_accuracy, 3)) for r in result.curve if r.epoch % 250 == 0]
    print(
        f"frac={frac} lr={lr} grok={result.grokking_epoch} time={time.time() - start:.0f}s "
        f"purity={marks} test_accuracy={curve}"
    )


if __name__ == "__main__":
    main()
