"""Stage ``paper``: the figures (PNG + PDF) and ``paper/report.md`` from the metric files.

Reads only ``metrics/`` (whichever files exist) and ``params.yaml`` keys
``task.p`` and ``task.frac_train`` (quoted in the report). A figure whose metric file is
absent, or lacks an optional field it needs, is skipped and the report says so; a metric
file that is not valid JSON / CSV, or does not follow its record of the metrics contract
(``husai/records.py``, checked by ``paper/metrics.py``), is a one-line error. Outputs
are byte-identical on rerun (``paper/style.py``) and written atomically:
``paper/figures/`` as a whole folder,
``paper/report.md``, and ``paper/report_sources.json`` (the citation of every number).
"""

from __future__ import annotations

from pathlib import Path

import typer

from stages._common import console, stage, write_dir, write_text


@stage("paper")
def main(
    root: Path = typer.Option(Path("."), help="Repository root holding metrics/ and params.yaml."),
    figures: Path = typer.Option(Path("paper/figures"), help="Figure folder to write."),
    report: Path = typer.Option(Path("paper/report.md"), help="Report to write."),
    sources: Path = typer.Option(
        Path("paper/report_sources.json"), help="Citations of the report's numbers."
    ),
) -> None:
    """Render every figure whose metrics exist, and the report."""
    from husai.errors import HusaiError
    from paper import PaperInputError
    from paper.build import build

    try:
        out = build(root, figures_dir=figures.as_posix())
    except PaperInputError as err:
        raise HusaiError(str(err)) from None
    write_dir(figures, out.figures)
    write_text(report, out.report)
    write_text(sources, out.sources_json())
    for name in out.rendered:
        console.print(f"paper: [green]rendered[/] {name}")
    for name, why in out.skipped.items():
        console.print(f"paper: [yellow]skipped[/] {name}: {why}")
    console.print(
        f"paper: {len(out.rendered)} figures -> {figures}, "
        f"{len(out.sources)} cited numbers -> {report}"
    )
