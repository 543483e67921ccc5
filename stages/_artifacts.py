"""Reading and writing the pipeline's datasets and checkpoints (file formats live here)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from husai.errors import HusaiError
from husai.serialize import from_bytes, to_bytes
from husai.task import ModularAddition
from stages._common import require_inputs, write_bytes, write_dir

MODEL_WEIGHTS = "model.safetensors"
MODEL_CONFIG = "config.json"


# ----------------------------------------------------------------------------- task


def save_task(path: Path, task: ModularAddition, frac_train: float, seed: int) -> None:
    tensors = {"tokens": task.tokens, "labels": task.labels,
               "train_idx": task.train_idx, "test_idx": task.test_idx}
    write_bytes(path, to_bytes(tensors, {"p": task.p, "frac_train": frac_train, "seed": seed}))


def load_task(path: Path) -> ModularAddition:
    require_inputs(path)
    tensors, meta = from_bytes(path.read_bytes())
    return ModularAddition(meta["p"], tensors["tokens"], tensors["labels"],
                           tensors["train_idx"], tensors["test_idx"])


# ----------------------------------------------------------------------------- transformer


@dataclass(frozen=True)
class ModelSpec:
    """Arguments of :func:`husai.transformer.model_config`, saved beside the weights."""

    p: int
    d_model: int
    n_heads: int
    d_head: int
    d_mlp: int
    seed: int


def save_transformer(path: Path, spec: ModelSpec, state: dict[str, torch.Tensor]) -> None:
    config = json.dumps({"format": "husai-hooked-transformer-v1", **asdict(spec)}, indent=2) + "\n"
    write_dir(path, {MODEL_CONFIG: config.encode(), MODEL_WEIGHTS: to_bytes(state)})


def load_transformer(path: Path, device: torch.device | str = "cpu"):
    """The saved ``HookedTransformer`` (eval mode) and its spec."""
    from husai.transformer import build_model, model_config

    require_inputs(path / MODEL_CONFIG, path / MODEL_WEIGHTS)
    raw = json.loads((path / MODEL_CONFIG).read_text())
    raw.pop("format", None)
    spec = ModelSpec(**raw)
    model = build_model(model_config(device=str(device), **asdict(spec)))
    state, _ = from_bytes((path / MODEL_WEIGHTS).read_bytes())
    model.load_state_dict({k: v.to(device) for k, v in state.items()}, strict=True)
    model.eval()
    return model, spec


# ----------------------------------------------------------------------------- activations


@dataclass(frozen=True)
class Activations:
    """The SAE training data: activations over the whole input grid plus the ground truth."""

    x: torch.Tensor  # [p*p, d] float32, row a*p+b
    a: torch.Tensor  # [p*p] int64
    b: torch.Tensor  # [p*p] int64
    gt_directions: torch.Tensor  # [n, d] float32, unit rows
    gt_frequency: torch.Tensor  # [n] int64
    gt_u: torch.Tensor
    gt_v: torch.Tensor
    gt_energy_share: torch.Tensor  # [n] float64
    p: int
    hook: str
    position: int
    key_frequencies: list[int]

    @property
    def d_in(self) -> int:
        return self.x.shape[1]

    def grid(self, values: torch.Tensor) -> torch.Tensor:
        """Reshape per-row values ``[p*p, ...]`` to the grid ``[p, p, ...]``."""
        return values.reshape(self.p, self.p, *values.shape[1:])


def save_activations(path: Path, acts: Activations) -> None:
    tensors = {"x": acts.x, "a": acts.a, "b": acts.b, "gt_directions": acts.gt_directions,
               "gt_frequency": acts.gt_frequency, "gt_u": acts.gt_u, "gt_v": acts.gt_v,
               "gt_energy_share": acts.gt_energy_share}
    meta = {"p": acts.p, "hook": acts.hook, "position": acts.position,
            "key_frequencies": acts.key_frequencies}
    write_bytes(path, to_bytes(tensors, meta))


def load_activations(path: Path) -> Activations:
    require_inputs(path)
    t, meta = from_bytes(path.read_bytes())
    if t["x"].ndim != 2 or t["x"].shape[0] != meta["p"] ** 2:
        raise HusaiError(f"{path}: expected activations of shape [p*p, d], got {tuple(t['x'].shape)}")
    return Activations(**t, **meta)


def read_json(path: Path):
    require_inputs(path)
    return json.loads(path.read_text())
