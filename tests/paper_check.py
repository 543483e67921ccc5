"""Independent checks of the paper stage's outputs (used by the unit and pipeline tests)."""

from __future__ import annotations

import csv
import io
import json
import math
import re
import statistics
from pathlib import Path

from ruamel.yaml import YAML

MARK = re.compile(r"<!--n(\d+)-->")
# digits that are structure, not measurements: figure/section/question labels, "95% CI"
# (the bootstrap's level), L0/L1, p², figure file names, `code` (config names)
STRUCTURAL = re.compile(
    r"`[^`]*`|Figure \d+|fig\d+[ab]?_[a-z_]+(?:\.(?:png|pdf))?|section \d+|RQ\d|95% CI|\bL[01]\b|p²"
)


def _load(root: Path, file: str):
    text = (root / file).read_text()
    if file.endswith((".yaml", ".yml")):
        return YAML(typ="safe", pure=True).load(text)
    if file.endswith(".csv"):
        return list(csv.DictReader(io.StringIO(text)))
    return json.loads(text)


def _at(obj, path):
    for key in path:
        obj = obj[key]
    return obj


def _parse(text: str) -> float | None:
    if text == "n/a":
        return None
    if text.endswith("%"):
        return float(text[:-1]) / 100
    return float(text)


def _resolution(text: str) -> float:
    """Half a unit in the last printed digit (what rounding for display may lose)."""
    body = text.rstrip("%")
    mant = body.split("e")[0]
    decimals = len(mant.split(".")[1]) if "." in mant else 0
    exp = int(body.split("e")[1]) if "e" in body else 0
    unit = 10.0 ** (exp - decimals)
    return 0.5 * unit / (100 if text.endswith("%") else 1) * 1.0001


def _op(op: str, vals: list):
    nums = [float(v) for v in vals if v is not None]
    if op == "count":
        return len(vals)
    if op == "std":
        return statistics.stdev(nums) if len(nums) > 1 else None
    if not nums:
        return None
    return {"mean": statistics.fmean, "min": min, "max": max, "sum": sum}[op](nums)


def check_report(
    root: Path, report: str = "paper/report.md", sources: str = "paper/report_sources.json"
) -> int:
    """Every number in the report is cited and equals its cited value; returns the count."""
    text = (root / report).read_text()
    cites = json.loads((root / sources).read_text())["citations"]
    ids = [int(k) for k in MARK.findall(text)]
    assert sorted(ids) == list(range(len(cites))), "markers and citations differ"
    assert len(set(ids)) == len(ids), "a citation marker is used twice"
    for c in cites:
        shown = f"{c['text']}<!--n{c['id']}-->"
        assert shown in text, f"citation {c['id']} ({c['text']}) not in the report"
        if c["kind"] == "quote":
            assert c["document"], c
            continue
        if c["kind"] == "value":
            value = _at(_load(root, c["file"]), c["path"])
        else:
            assert c["kind"] == "derived", c
            vals = [_at(_load(root, r["file"]), r["path"]) for r in c["refs"]]
            value = _op(c["op"], vals)
        shown_value = _parse(c["text"])
        if value is None:
            assert shown_value is None, c
            continue
        assert shown_value is not None and math.isfinite(float(value)), c
        assert abs(shown_value - float(value)) <= _resolution(c["text"]), (
            f"citation {c['id']}: report says {c['text']}, {c.get('file')} has {value}"
        )
    bare = STRUCTURAL.sub("", re.sub(r"[^\s|(\[,/]*<!--n\d+-->", "", text))
    stray = re.findall(r".{0,30}\d.{0,30}", bare)
    assert not stray, f"uncited numbers in the report: {stray[:5]}"
    return len(cites)
