"""Figures and the generated report of the HUSAI paper (stage ``paper``).

Independent of the ``husai`` library on purpose: it reads only the metric files in
``metrics/`` (and one params key), so the figures can be redrawn from a clone that
has the metrics but no models. The one exception is :mod:`husai.records`, the
metrics contract (standard library only, no torch): every metric file is checked
against its record when read (:mod:`paper.metrics`) and addressed by the layout it
declares (:mod:`paper.schema`). No other ``husai`` module may be imported here. ``paper.build.build`` returns every output as bytes;
``stages/paper.py`` writes them atomically.
"""

from paper.errors import PaperInputError, Skip

__all__ = ["PaperInputError", "Skip"]
