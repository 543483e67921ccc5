"""Deterministic (de)serialisation of tensors with metadata.

safetensors writes its ``__metadata__`` map in hash order, which changes from
process to process when it has more than one key (measured: five runs, five
different files). Versioned outputs must be byte-identical, so metadata is
stored under a single key, ``husai``, as JSON with sorted keys.
"""

from __future__ import annotations

import json
from typing import Any

import torch
from safetensors.torch import load, save

META_KEY = "husai"


def to_bytes(tensors: dict[str, torch.Tensor], meta: dict[str, Any] | None = None) -> bytes:
    """safetensors bytes of contiguous CPU copies of ``tensors``, plus JSON ``meta``."""
    flat = {name: t.detach().to("cpu").contiguous() for name, t in tensors.items()}
    header = {META_KEY: json.dumps(meta, sort_keys=True)} if meta is not None else None
    return save(flat, metadata=header)


def from_bytes(data: bytes) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Inverse of :func:`to_bytes`: the tensors and the metadata dict (empty if none)."""
    tensors = load(data)
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + n])
    raw = header.get("__metadata__", {}).get(META_KEY)
    return tensors, (json.loads(raw) if raw is not None else {})
