"""Numbers with a source: every number in the report is made here and recorded.

``Citer.num(file, path, fmt)`` reads the value at json path ``path`` of metric
file ``file``, formats it with ``fmt`` and returns the text followed by a hidden
marker ``<!--nK-->`` (an HTML comment: invisible when the Markdown is rendered).
Citation K is recorded as ``{"id", "text", "kind": "value", "file", "path",
"format", "value"}``. ``Citer.derived(op, refs, fmt)`` records a mean / sample
standard deviation / min / max / count / sum over several cited values (``"refs"``:
a list of ``{"file", "path"}``), and ``Citer.quote(text, document)`` a number
quoted from a document that is not a metric file (a claim, kind ``"quote"``).
``report_sources.json`` holds the list, so a test can re-read each file and
check every number in the report against it.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from typing import Any

from paper.errors import Skip
from paper.metrics import JsonPath, Metrics, number

MISSING = "n/a"
OPS = ("mean", "std", "min", "max", "count", "sum")


def format_value(value: Any, fmt: str) -> str:
    """``format(value, fmt)``; ``"n/a"`` for None; integers printed without a fraction."""
    if value is None:
        return MISSING
    if isinstance(value, float) and not math.isfinite(value):
        return MISSING
    if fmt == "d":
        if float(value) != int(value):
            raise Skip(f"{value} is not an integer")
        return str(int(value))
    return format(value, fmt)


def apply_op(op: str, values: Sequence[Any]) -> float | int | None:
    if op == "count":
        return len(values)
    vals = [float(v) for v in values if v is not None]
    if not vals or (op == "std" and len(vals) < 2):
        return None
    if op == "mean":
        return statistics.fmean(vals)
    if op == "std":
        return statistics.stdev(vals)
    if op == "min":
        return min(vals)
    if op == "max":
        return max(vals)
    if op == "sum":
        return sum(vals)
    raise ValueError(f"unknown op {op!r} (one of {', '.join(OPS)})")


class Citer:
    """Formats numbers from the metric files and records where each came from."""

    def __init__(self, metrics: Metrics) -> None:
        self.m = metrics
        self.sources: list[dict[str, Any]] = []

    def _record(self, text: str, entry: dict[str, Any]) -> str:
        k = len(self.sources)
        self.sources.append({"id": k, "text": text, **entry})
        return f"{text}<!--n{k}-->"

    def value(self, file: str, path: JsonPath) -> Any:
        """The raw value (for decisions in the prose, never printed as such)."""
        return self.m.get(file, path)

    def num(self, file: str, path: JsonPath, fmt: str = ".3f") -> str:
        raw = self.m.get(file, path)
        value = number(raw, f"{file}:{'/'.join(map(str, path))}")
        text = format_value(value, fmt)
        return self._record(
            text, {"kind": "value", "file": file, "path": list(path), "format": fmt, "value": raw}
        )

    def derived(self, op: str, refs: Sequence[tuple[str, JsonPath]], fmt: str = ".3f") -> str:
        if op not in OPS:
            raise ValueError(f"unknown op {op!r} (one of {', '.join(OPS)})")
        values = [number(self.m.get(f, p), f"{f}:{'/'.join(map(str, p))}") for f, p in refs]
        value = apply_op(op, values)
        text = format_value(value, fmt)
        return self._record(
            text,
            {
                "kind": "derived",
                "op": op,
                "refs": [{"file": f, "path": list(p)} for f, p in refs],
                "format": fmt,
                "value": value,
            },
        )

    def quote(self, text: str, document: str) -> str:
        """A number stated by another document (a claim to compare with), not a measurement."""
        return self._record(text, {"kind": "quote", "document": document})
