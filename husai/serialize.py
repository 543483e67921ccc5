"""Deterministic (de)serialisation: tensors with metadata, and the metric JSON and CSV.

safetensors writes its ``__metadata__`` map in hash order, which changes from
process to process when it has more than one key (measured: five runs, five
different files). Versioned outputs must be byte-identical, so metadata is
stored under a single key, ``husai``, as JSON with sorted keys.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from typing import Any

import torch
from safetensors.torch import load, save

META_KEY = "husai"
SIGNIFICANT_DIGITS = 6


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


def clean_numbers(obj: Any, digits: int = SIGNIFICANT_DIGITS) -> Any:
    """Round floats to ``digits`` significant digits and map NaN/inf to None, recursively."""
    if isinstance(obj, bool) or obj is None or isinstance(obj, str | int):
        return obj
    if isinstance(obj, float):
        if not math.isfinite(obj):
            return None
        return float(f"{obj:.{digits}g}")
    if isinstance(obj, Mapping):
        return {str(k): clean_numbers(v, digits) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [clean_numbers(v, digits) for v in obj]
    if hasattr(obj, "item"):  # numpy / torch scalar
        return clean_numbers(obj.item(), digits)
    raise TypeError(f"cannot write {type(obj).__name__} to JSON")


def json_bytes(obj: Any) -> bytes:
    """Deterministic JSON: rounded floats, insertion-ordered keys, trailing newline."""
    return (json.dumps(clean_numbers(obj), indent=2, allow_nan=False) + "\n").encode()


def csv_bytes(columns: list[str], rows: Iterable[Iterable[Any]]) -> bytes:
    """A small CSV for ``dvc plots``: header plus rows, floats rounded like the metrics
    (a missing or non-finite value is an empty cell)."""
    lines = [",".join(columns)]
    for row in rows:
        lines.append(",".join("" if v is None else str(v) for v in clean_numbers(list(row))))
    return ("\n".join(lines) + "\n").encode()
