"""The package's exception and warning classes.

Every error about input carries the field, what was expected and what came, in its
message and as attributes, so callers (and the HTTP API later) can report it as data.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AuthError",
    "ConflictError",
    "IncompatibleMergeError",
    "InvalidInputError",
    "LabelwatchError",
    "NotFoundError",
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


class NotFoundError(LabelwatchError, LookupError):
    """A model, version, prediction, baseline or field that does not exist.

    >>> str(NotFoundError("model", "movie-genres"))
    "model 'movie-genres' not found"
    """

    def __init__(self, kind: str, key: str, *, hint: str | None = None) -> None:
        self.kind = kind
        self.key = key
        self.hint = hint
        message = f"{kind} {key!r} not found"
        super().__init__(f"{message}; {hint}" if hint else message)


class ConflictError(LabelwatchError):
    """A write that contradicts what is stored (a different record under the same id).

    ``field`` names what differs, ``expected`` what is stored, ``got`` what came.

    >>> str(ConflictError("prediction", "p-1", "predictions", {"a": 0.1}, {"a": 0.2}))
    "prediction 'p-1': predictions differ from the stored ones: stored {'a': 0.1}, got {'a': 0.2}"
    """

    def __init__(
        self,
        kind: str,
        key: str,
        field: str,
        expected: Any,
        got: Any,
        *,
        row: int | None = None,
    ) -> None:
        self.kind = kind
        self.key = key
        self.field = field
        self.expected = expected
        self.got = got
        self.row = row
        where = f"{kind} {key!r}" + (f" (row {row})" if row is not None else "")
        super().__init__(
            f"{where}: {field} differ from the stored ones: stored {_show(expected)}, "
            f"got {_show(got)}"
        )


class AuthError(LabelwatchError):
    """A missing or unknown token, or one whose scope does not allow the call.

    ``scope`` is the scope the call needs; ``reason`` is ``"missing"``, ``"invalid"`` or
    ``"scope"``.
    """

    def __init__(self, scope: str, reason: str) -> None:
        self.scope = scope
        self.reason = reason
        why = {
            "missing": "no token given",
            "invalid": "unknown token",
            "scope": f"the token's scope does not include {scope!r}",
        }.get(reason, reason)
        super().__init__(f"{why}: this call needs a token with scope {scope!r}")


class UndefinedMetricWarning(UserWarning):
    """A metric is undefined for some labels or samples (e.g. no positives); it is NaN there.

    NaN values are left out of averages. Silence with
    ``warnings.simplefilter("ignore", labelwatch.UndefinedMetricWarning)``.
    """
