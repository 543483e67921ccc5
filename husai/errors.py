"""Errors that a user can cause and fix, as opposed to bugs.

Every stage catches :class:`HusaiError` and prints its message as one line, so
messages must name the offending key or value and say what was expected.
"""

from __future__ import annotations


class HusaiError(Exception):
    """A problem with the user's input (params, files, shapes). One line, no traceback."""


MISSING = object()
"""Sentinel value for a key that is absent."""


class ParamError(HusaiError):
    """A value in params.yaml is missing, of the wrong type, or out of range."""

    def __init__(self, key: str, value: object, reason: str) -> None:
        self.key = key
        self.value = value
        self.reason = reason
        shown = f"{key}" if value is MISSING else f"{key} = {value!r}"
        super().__init__(f"{shown}: {reason}")


class DivergedError(HusaiError):
    """Training of one SAE diverged: a non-finite loss, weight or metric, or a
    reconstruction far worse than predicting the mean. A result is never written."""

    def __init__(self, what: str, seed: int, step: int, total: int, reason: str) -> None:
        self.seed = seed
        self.step = step
        super().__init__(
            f"{what} seed {seed} diverged at step {step} of {total}: {reason} "
            "(lower the learning rate, or check the activations); nothing was written"
        )
