"""Reading the metric files: absent files skip, unreadable ones are a one-line error.

Each metric JSON is checked, when first read, against its record of the metrics
contract (:mod:`husai.records`, the one module of ``husai`` that ``paper/`` imports): a
file that is not valid JSON or does not follow its record is a one-line
:class:`~paper.errors.PaperInputError` naming the file and the json path at fault, so
the figures and the report can address values by the declared layout.

Every value the report prints is read through :class:`Metrics` by a *json path*:
a tuple of keys and list indices from the file's root (``("saes", "topk/seed42",
"metrics", "l0")``). CSV curves are read as ``{column: [values]}`` with empty
cells as None. Files are named relative to the repository root
(``metrics/fourier.json``), which is also how the report cites them.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from husai.records import RecordError, record_for, validate
from paper.errors import PaperInputError, Skip

JsonPath = tuple[str | int, ...]


class Metrics:
    """The metric files under a repository root, each read once."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._cache: dict[str, Any] = {}

    def exists(self, name: str) -> bool:
        return (self.root / name).is_file()

    def json(self, name: str) -> Any:
        """Parsed JSON of ``name``, checked against its record when it has one
        (:func:`husai.records.record_for`: :data:`husai.records.FILES` and the per-domain
        files); :class:`Skip` if the file is absent."""
        if name not in self._cache:
            path = self.root / name
            if not path.is_file():
                raise Skip(f"{name} is not there yet")
            try:
                doc = json.loads(path.read_text())
            except (json.JSONDecodeError, UnicodeDecodeError) as err:
                raise PaperInputError(f"{name} is not valid JSON: {err}") from None
            try:
                record = record_for(name)
            except KeyError:  # not a metric file of the contract
                record = None
            if record is not None:
                try:
                    validate(doc, record, name)
                except RecordError as err:
                    raise PaperInputError(f"{err} (its record: husai/records.py)") from None
            self._cache[name] = doc
        return self._cache[name]

    def yaml(self, name: str) -> Any:
        """Parsed YAML (params.yaml); :class:`Skip` if absent."""
        if name not in self._cache:
            path = self.root / name
            if not path.is_file():
                raise Skip(f"{name} is not there")
            from ruamel.yaml import YAML, YAMLError

            try:
                self._cache[name] = YAML(typ="safe", pure=True).load(path.read_text())
            except YAMLError as err:
                first = str(err).strip().splitlines()[0] if str(err).strip() else "YAML error"
                raise PaperInputError(f"{name} is not valid YAML: {first}") from None
        return self._cache[name]

    def load(self, name: str) -> Any:
        return self.yaml(name) if name.endswith((".yaml", ".yml")) else self.json(name)

    def csv(self, name: str) -> dict[str, list[float | None]]:
        """Columns of a numeric CSV; :class:`Skip` if absent, error if not numeric."""
        if name not in self._cache:
            path = self.root / name
            if not path.is_file():
                raise Skip(f"{name} is not there yet")
            rows = list(csv.reader(io.StringIO(path.read_text())))
            if not rows or not rows[0]:
                raise PaperInputError(f"{name} has no header row")
            header = rows[0]
            cols: dict[str, list[float | None]] = {h: [] for h in header}
            for i, row in enumerate(rows[1:], start=2):
                if len(row) != len(header):
                    raise PaperInputError(
                        f"{name} line {i}: {len(row)} cells, header has {len(header)}"
                    )
                for h, cell in zip(header, row, strict=True):
                    try:
                        cols[h].append(float(cell) if cell != "" else None)
                    except ValueError:
                        raise PaperInputError(
                            f"{name} line {i}: {h} = {cell!r} is not a number"
                        ) from None
            self._cache[name] = cols
        return self._cache[name]

    def get(self, name: str, path: JsonPath) -> Any:
        """The value at ``path`` in file ``name``; :class:`Skip` naming the missing key."""
        return lookup(self.load(name), path, name)


def lookup(obj: Any, path: JsonPath, name: str = "metrics") -> Any:
    node = obj
    for i, key in enumerate(path):
        ok = (isinstance(node, Mapping) and isinstance(key, str) and key in node) or (
            isinstance(node, Sequence)
            and not isinstance(node, str)
            and isinstance(key, int)
            and -len(node) <= key < len(node)
        )
        if not ok:
            where = "/".join(str(k) for k in path[: i + 1])
            raise Skip(f"{name} has no field {where}")
        node = node[key]
    return node


def number(value: Any, what: str) -> float | None:
    """A finite float, None for JSON null; :class:`Skip` for anything else."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Skip(f"{what} is not a number ({type(value).__name__})")
    return float(value) if math.isfinite(value) else None
