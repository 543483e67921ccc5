"""The SAE zoo: batched SAEs of six architectures, their training engine and metrics.

Importing this package loads nothing heavy: the names below are imported on first
use (PEP 562), so that the torch-free modules ``husai.sae.config``,
``husai.sae.registry`` and ``husai.sae.specs`` (params validation) never load torch.
Using a training or inference name loads torch only (no TransformerLens, no
SAELens), so that each of the many sweep stages starts fast. See SCIENCE.md section 6.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from husai.sae.base import Architecture

_LAZY = {
    "ARCHITECTURES": "husai.sae.config",
    "SAEConfig": "husai.sae.config",
    "SAEHyperparams": "husai.sae.config",
    "INFERENCE_KIND": "husai.sae.base",
    "Architecture": "husai.sae.base",
    "BatchedSAE": "husai.sae.base",
    "init_saes": "husai.sae.base",
    "METRICS": "husai.sae.metrics",
    "evaluate": "husai.sae.metrics",
    "TrainHistory": "husai.sae.train",
    "activation_scale": "husai.sae.train",
    "steps_per_epoch": "husai.sae.train",
    "train_saes": "husai.sae.train",
}
"""Public name -> the module that defines it."""


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


def architecture(name: str) -> Architecture:
    """The training-side implementation of architecture ``name`` (a fresh instance)."""
    from husai.sae.registry import training_class

    return training_class(name)()


__all__ = sorted([*_LAZY, "architecture"])
