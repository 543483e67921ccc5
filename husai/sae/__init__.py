"""The SAE zoo: batched SAEs of six architectures, their training engine and metrics.

Importing this package loads torch only (no TransformerLens, no SAELens), so that
each of the many sweep stages starts fast. See SCIENCE.md section 6.
"""

from __future__ import annotations

import importlib

from husai.sae.base import INFERENCE_KIND, Architecture, BatchedSAE, init_saes
from husai.sae.config import ARCHITECTURES, SAEConfig, SAEHyperparams
from husai.sae.metrics import METRICS, evaluate
from husai.sae.train import TrainHistory, activation_scale, steps_per_epoch, train_saes

_MODULES = {
    "standard": ("husai.sae.standard", "Standard"),
    "topk": ("husai.sae.topk", "TopK"),
    "batchtopk": ("husai.sae.batchtopk", "BatchTopK"),
    "jumprelu": ("husai.sae.jumprelu", "JumpReLU"),
    "gated": ("husai.sae.gated", "Gated"),
    "matryoshka_batchtopk": ("husai.sae.matryoshka_batchtopk", "MatryoshkaBatchTopK"),
}


def architecture(name: str) -> Architecture:
    """The training-side implementation of architecture ``name``."""
    module, cls = _MODULES[name]
    return getattr(importlib.import_module(module), cls)()


__all__ = [
    "ARCHITECTURES",
    "INFERENCE_KIND",
    "METRICS",
    "Architecture",
    "BatchedSAE",
    "SAEConfig",
    "SAEHyperparams",
    "TrainHistory",
    "activation_scale",
    "architecture",
    "evaluate",
    "init_saes",
    "steps_per_epoch",
    "train_saes",
]
