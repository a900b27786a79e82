"""The package's exception and warning classes.

Every error about input carries the field, what was expected and what came, in its
message and as attributes, so callers (and the HTTP API later) can report it as data.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "IncompatibleMergeError",
    "InvalidInputError",
    "LabelwatchError",
    "UndefinedMetricWarning",
]


class LabelwatchError(Exception):
    """Base class of every error labelwatch raises on purpose."""


def _show(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class InvalidInputError(LabelwatchError, ValueError):
    """Input that does not have the expected form.

    >>> str(InvalidInputError("scores", "a number in [0, 1]", 1.5, row=3, label="drama"))
    "scores row 3, label 'drama': expected a number in [0, 1], got 1.5 (float)"
    """

    def __init__(
        self,
        field: str,
        expected: str,
        got: Any,
        *,
        row: int | None = None,
        label: str | int | None = None,
        hint: str | None = None,
    ) -> None:
        self.field = field
        self.expected = expected
        self.got = got
        self.row = row
        self.label = label
        self.hint = hint
        where = field
        if row is not None:
            where += f" row {row}"
        if label is not None:
            where += f", label {label!r}"
        message = f"{where}: expected {expected}, got {_show(got)} ({type(got).__name__})"
        if hint:
            message += f"; {hint}"
        super().__init__(message)


class IncompatibleMergeError(LabelwatchError, ValueError):
    """Two summaries that cannot be merged (different label spaces, edges or thresholds)."""


class UndefinedMetricWarning(UserWarning):
    """A metric is undefined for some labels or samples (e.g. no positives); it is NaN there.

    NaN values are left out of averages. Silence with
    ``warnings.simplefilter("ignore", labelwatch.UndefinedMetricWarning)``.
    """
