"""Deterministic matplotlib: fixed style, bundled font, metadata-free PNG and PDF.

Byte-identical reruns need (1) the same rcParams whatever the user's matplotlibrc
says: every figure is drawn inside :func:`style`, which starts from matplotlib's
defaults; (2) the same font: DejaVu Sans, bundled with matplotlib, never a system
font; PDF fonts embedded as Type 42 subsets; (3) no timestamps or version strings:
PNG ``Software`` and PDF ``Creator``/``Producer``/``CreationDate`` are dropped, and
``svg.hashsalt`` is fixed for SVG ids. Only the Agg and PDF backends are used.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator

import matplotlib

matplotlib.use("Agg", force=True)

from matplotlib.figure import Figure

DPI = 150
FORMATS = ("png", "pdf")

RC = {
    "backend": "Agg",
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans"],
    "mathtext.fontset": "dejavusans",
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "legend.fontsize": 8,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "figure.dpi": DPI,
    "savefig.dpi": DPI,
    "savefig.bbox": None,
    "pdf.fonttype": 42,
    "pdf.compression": 6,
    "ps.fonttype": 42,
    "svg.fonttype": "path",
    "svg.hashsalt": "husai",
    "path.simplify": True,
    "image.cmap": "viridis",
    "axes.prop_cycle": matplotlib.cycler(
        color=[
            "#1f77b4",
            "#ff7f0e",
            "#2ca02c",
            "#d62728",
            "#9467bd",
            "#8c564b",
            "#e377c2",
            "#7f7f7f",
            "#bcbd22",
            "#17becf",
        ]
    ),
}

PNG_METADATA = {"Software": None}
PDF_METADATA = {"Creator": None, "Producer": None, "CreationDate": None, "ModDate": None}


@contextlib.contextmanager
def style() -> Iterator[None]:
    """matplotlib defaults plus :data:`RC`, whatever the environment set."""
    with matplotlib.rc_context():
        matplotlib.rcdefaults()
        matplotlib.rcParams.update(RC)
        yield


def new_figure(width: float = 6.4, height: float = 4.0, **kwargs) -> Figure:
    """A figure that is not registered with pyplot's state (so nothing leaks between figures)."""
    return Figure(figsize=(width, height), dpi=DPI, layout="constrained", **kwargs)


def figure_bytes(fig: Figure) -> dict[str, bytes]:
    """The figure as ``{"png": ..., "pdf": ...}``, free of timestamps and version strings."""
    out = {}
    for fmt in FORMATS:
        buf = io.BytesIO()
        metadata = PNG_METADATA if fmt == "png" else PDF_METADATA
        fig.savefig(buf, format=fmt, dpi=DPI, metadata=metadata)
        out[fmt] = buf.getvalue()
    return out
