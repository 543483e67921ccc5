"""Render every figure and the report from the metric files, as bytes (nothing written here)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from paper.errors import Skip
from paper.figures import FIGURES
from paper.metrics import Metrics
from paper.style import FORMATS, figure_bytes, style

REPORT = "report.md"
SOURCES = "report_sources.json"


@dataclass
class Build:
    figures: dict[str, bytes] = field(default_factory=dict)  # file name -> bytes
    rendered: list[str] = field(default_factory=list)  # figure names
    skipped: dict[str, str] = field(default_factory=dict)  # figure name -> reason
    report: str = ""
    sources: list[dict] = field(default_factory=list)

    def sources_json(self) -> str:
        return (
            json.dumps({"report": REPORT, "citations": self.sources}, indent=2, allow_nan=False)
            + "\n"
        )


def render_figures(m: Metrics, build: Build) -> None:
    with style():
        for spec in FIGURES:
            missing = [f for f in spec.needs if not m.exists(f)]
            if missing:
                build.skipped[spec.name] = f"{', '.join(missing)} not there yet"
                continue
            try:
                fig = spec.draw(m)
            except Skip as why:
                build.skipped[spec.name] = str(why)
                continue
            for fmt, data in figure_bytes(fig).items():
                build.figures[f"{spec.name}.{fmt}"] = data
            build.rendered.append(spec.name)


def build(root: Path, figures_dir: str = "paper/figures") -> Build:
    """Figures and report of the repository at ``root`` (metric files read from there)."""
    from paper.report import write_report

    m = Metrics(root)
    out = Build()
    render_figures(m, out)
    out.report, out.sources = write_report(m, out, figures_dir)
    return out


__all__ = ["FORMATS", "Build", "build"]
