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


# ----------------------------------------------------------------------------- SAEs

SAE_CONFIG = "cfg.json"
SAE_WEIGHTS = "sae_weights.safetensors"


def sae_files(sae, prefix: str, metadata: dict | None = None) -> dict[str, bytes]:
    """SAELens folders ``<prefix>/seed<seed>/{cfg.json, sae_weights.safetensors}`` of every
    seed of a :class:`husai.sae.BatchedSAE`, as bytes for :func:`write_dir`.

    Deterministic: JSON in insertion order, safetensors without metadata.
    """
    from husai.sae.saelens import to_saelens

    files = {}
    for i, seed in enumerate(sae.seeds):
        cfg, state = to_saelens(sae, i, metadata)
        folder = f"{prefix}/seed{seed}" if prefix else f"seed{seed}"
        files[f"{folder}/{SAE_CONFIG}"] = (json.dumps(cfg, indent=2) + "\n").encode()
        files[f"{folder}/{SAE_WEIGHTS}"] = to_bytes(state)
    return files


def load_sae(path: Path, d_in: int | None = None):
    """One SAELens checkpoint folder as a batch of one SAE; ``d_in`` checks the width."""
    from husai.sae.saelens import from_saelens

    require_inputs(path / SAE_CONFIG, path / SAE_WEIGHTS)
    try:
        cfg = json.loads((path / SAE_CONFIG).read_text())
    except json.JSONDecodeError as err:
        raise HusaiError(f"{path / SAE_CONFIG} is not valid JSON: {err}") from None
    if d_in is not None and int(cfg.get("d_in", -1)) != d_in:
        raise HusaiError(f"{path}: checkpoint has d_in = {cfg.get('d_in')} but the activations "
                         f"have width {d_in}")
    state, _ = from_bytes((path / SAE_WEIGHTS).read_bytes())
    return from_saelens(cfg, state)


def load_saes(path: Path, d_in: int | None = None):
    """Every ``seed*`` checkpoint under folder ``path`` (one configuration), stacked by seed."""
    from husai.sae import BatchedSAE

    require_inputs(path)
    folders = sorted((p for p in path.iterdir() if p.is_dir() and p.name.startswith("seed")),
                     key=lambda p: int(p.name[4:]) if p.name[4:].isdigit() else -1)
    if not folders:
        raise HusaiError(f"{path}: no seed* checkpoint folders")
    return BatchedSAE.stack([load_sae(f, d_in) for f in folders])
