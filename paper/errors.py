"""The two ways a figure or a report section can fail."""

from __future__ import annotations


class PaperInputError(ValueError):
    """A metric file that cannot be read at all (not JSON, not a table): a one-line error."""


class Skip(Exception):
    """A figure or section whose metrics are absent or lack a field: skipped, and said so."""
