"""The fragments of the Aporia v1 SDK's ``logPredictions`` -> the monitor's log calls.

One call carries up to 4,000 fragments of three kinds in call order: predictions
(``{id, predictions, features, occurredAt, rawInputs, actuals, metrics, confidence}``),
actuals (``{id, actuals}``) and raw inputs (``{id, rawInputs}``). They are stored with the
native calls (``log_predictions``, ``log_actuals``, ``log_raw_inputs``: predictions
first, so actuals and raw inputs of the same call find them), which makes a resent batch
a no-op: an id already stored with the same values is a duplicate.

The SDK cannot report an error of a logging call except as one log line, and drops the
batch. So a bad fragment is refused alone: the others are stored and each refused one
is a warning (the SDK logs each at WARNING in the user's process) naming its id, the
field, what was expected and what came. Only a problem of the whole call (an unknown
model version, a bad token) is an error.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from labelwatch.errors import ConflictError, InvalidInputError, LabelwatchError
from labelwatch.monitor import Monitor

__all__ = ["MAX_WARNINGS", "Fragments", "log_fragments", "split_fragments"]

MAX_WARNINGS = 20
"""Warnings listed one by one per call; the others are counted in a last one."""
_MIN_CHUNK = 4
MAX_REFUSALS = 256
"""Refusals tried one by one per kind of record and call (each costs a write attempt);
beyond, the rest of the call is written at once, or refused at once."""

logger = logging.getLogger("labelwatch.server.aporia")

Record = dict[str, Any]


@dataclass
class Fragments:
    """The fragments of one call as native records, each with its position in the call."""

    predictions: list[tuple[int, Record]] = field(default_factory=list)
    actuals: list[tuple[int, Record]] = field(default_factory=list)
    raw_inputs: list[tuple[int, Record]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    refused: int = 0
    unscored: dict[str, int] = field(default_factory=dict)  # confidence / metrics: counts
    no_time: list[str] = field(default_factory=list)  # ids whose occurredAt was NaT
    bulk: list[str] = field(default_factory=list)  # refusals of many fragments at once


def _id(value: Any) -> str:
    """A prediction id as stored: a str as is, an int as its decimal text."""
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise InvalidInputError("id", "a str or an int", value)


def _scores(values: Any) -> Any:
    """``{field: value}`` with true/false inside dict fields as 1/0 (scores and labels)."""
    if not isinstance(values, Mapping):
        return values
    return {
        name: (
            {k: int(v) if isinstance(v, bool) else v for k, v in value.items()}
            if isinstance(value, Mapping)
            else value
        )
        for name, value in values.items()
    }


def split_fragments(fragments: Any) -> Fragments:
    """Classify the fragments by their keys (``features``: a prediction, else ``actuals``,
    else ``rawInputs``) and turn each into a native record; malformed ones are warnings."""
    out = Fragments()
    for i, frag in enumerate(fragments):
        try:
            if not isinstance(frag, Mapping):
                raise InvalidInputError("predictions", "a prediction, actuals or raw inputs", frag)
            pid = _id(frag.get("id"))
        except InvalidInputError as exc:
            out.warnings.append(f"fragment {i} not stored: {exc}")
            out.refused += 1
            continue
        if "features" in frag:
            stamp = frag.get("occurredAt")
            if stamp == "NaT":  # a missing pandas timestamp: stored at the time received
                out.no_time.append(pid)
                stamp = None
            record: Record = {
                "id": pid,
                "features": frag.get("features"),
                "predictions": _scores(frag.get("predictions")),
                "timestamp": stamp,
            }
            if frag.get("rawInputs") is not None:
                record["raw_inputs"] = frag["rawInputs"]
            out.predictions.append((i, record))
            if frag.get("actuals") is not None:
                out.actuals.append((i, {"id": pid, "actuals": _scores(frag["actuals"])}))
            for key in ("confidence", "metrics"):
                if frag.get(key) is not None:
                    out.unscored[key] = out.unscored.get(key, 0) + 1
        elif "actuals" in frag:
            out.actuals.append((i, {"id": pid, "actuals": _scores(frag.get("actuals"))}))
        elif "rawInputs" in frag:
            out.raw_inputs.append((i, {"id": pid, "raw_inputs": frag.get("rawInputs")}))
        else:
            out.warnings.append(
                f"fragment {i} (id {pid!r}) not stored: expected the key features "
                f"(a prediction), actuals or rawInputs, got {sorted(map(str, frag))}"
            )
            out.refused += 1
    return out


def _without_row(exc: LabelwatchError) -> str:
    """The error's message without its row (the row of a sub-batch means nothing to the
    caller; the warning names the fragment instead)."""
    if isinstance(exc, InvalidInputError):
        return str(
            InvalidInputError(exc.field, exc.expected, exc.got, label=exc.label, hint=exc.hint)
        )
    if isinstance(exc, ConflictError):
        return str(ConflictError(exc.kind, exc.key, exc.field, exc.expected, exc.got))
    return str(exc)


Call = Callable[[list[Record]], Any]


class _Writer:
    """Validates and stores one kind of record, refusing bad ones one by one."""

    def __init__(self, name: str, kind: str, validate: Call, write: Call, out: Fragments) -> None:
        self.name = name
        self.kind = kind
        self.validate = validate
        self.write = write
        self.out = out
        self.results: list[Any] = []
        self.refusals = 0

    def refuse(self, item: tuple[int, Record], exc: LabelwatchError) -> None:
        i, record = item
        self.out.warnings.append(
            f"{self.kind} {record['id']!r} (fragment {i}) not stored: {_without_row(exc)}"
        )
        self.out.refused += 1

    def valid(self, items: list[tuple[int, Record]]) -> list[tuple[int, Record]]:
        """The items that pass validation: the whole batch at once, else one by one."""
        try:
            self.validate([r for _, r in items])
            return items
        except InvalidInputError:
            pass
        good = []
        for item in items:
            try:
                self.validate([item[1]])
                good.append(item)
            except InvalidInputError as exc:
                self.refuse(item, exc)
        return good

    def store(self, items: list[tuple[int, Record]]) -> None:
        """Write the valid items. A write is refused whole at its first conflicting row,
        before writing anything, and the rows before that one pass: that row is refused,
        the rows before it kept for one write at the end, the rest tried again. Each try
        checks all it is given, so the rest goes in chunks that shrink at each conflict
        and grow back after each clean write: a batch resent with other values (a script
        run again without timestamps) costs a small try per row, up to ``MAX_REFUSALS``
        rows; then the rest is written, or refused, at once (a reply within the SDK's
        timeout)."""
        passed: list[tuple[int, Record]] = []
        rest, size = items, len(items)
        while rest:
            if self.refusals >= MAX_REFUSALS:
                self._all_or_none(rest)
                break
            todo, rest = rest[:size], rest[size:]
            row = self._try(todo)
            if row is None:
                size = min(2 * size, len(items))
                continue
            passed += todo[:row]
            rest = todo[row + 1 :] + rest
            size = max(_MIN_CHUNK, size // 4)
        if passed:  # shorter than items: a row was refused
            # checked against what was stored then, not against the chunks written
            # since: the same loop again (a conflict there refuses one more row)
            self.store(passed)

    def _try(self, todo: list[tuple[int, Record]]) -> int | None:
        """Write ``todo``; None when written, else the refused row's position."""
        try:
            self.results.append(self.write([r for _, r in todo]))
            return None
        except (ConflictError, InvalidInputError) as exc:
            row = exc.row
            if row is None or not 0 <= row < len(todo):
                raise
            self.refuse(todo[row], exc)
            self.refusals += 1
            return row

    def _all_or_none(self, rest: list[tuple[int, Record]]) -> None:
        try:
            self.results.append(self.write([r for _, r in rest]))
        except (ConflictError, InvalidInputError) as exc:
            if exc.row is None:
                raise
            self.out.bulk.append(
                f"{len(rest)} more fragments ({self.name}) not stored: after {self.refusals} "
                f"refused one by one, they were tried at once and one was refused too "
                f"({_without_row(exc)}); resend them to have each one checked"
            )
            self.out.refused += len(rest)

    def run(self, items: list[tuple[int, Record]]) -> None:
        if items:
            self.store(self.valid(items))


def log_fragments(
    monitor: Monitor, model_id: str, model_version: str, environment: str, fragments: Any
) -> list[str]:
    """Store the fragments of one ``logPredictions`` call; -> the warnings to return.

    Raises only for the whole call (e.g. ``NotFoundError`` for an unknown version)."""
    out = split_fragments(fragments)
    args = (model_id, model_version, environment)

    def call(method: Callable[..., Any]) -> Call:
        return lambda records: method(*args, records)

    # an unknown version or a bad environment name is an error of the whole call
    monitor.validate_raw_inputs(model_id, model_version, environment, [])
    writers = {
        name: _Writer(name.replace("_", " "), kind, call(validate), call(write), out)
        for name, kind, validate, write in (
            ("predictions", "prediction", monitor.validate_predictions, monitor.log_predictions),
            ("actuals", "actuals of", monitor.validate_actuals, monitor.log_actuals),
            ("raw_inputs", "raw inputs of", monitor.validate_raw_inputs, monitor.log_raw_inputs),
        )
    }
    writers["predictions"].run(out.predictions)
    writers["actuals"].run(out.actuals)
    writers["raw_inputs"].run(out.raw_inputs)
    missing = sum(int(r.get("missing", 0)) for r in writers["raw_inputs"].results)
    notes = list(out.bulk)
    if missing:
        notes.append(
            f"{missing} raw inputs not stored: their prediction is not stored (log raw inputs "
            "after their prediction)"
        )
    if out.no_time:
        notes.append(
            f"{len(out.no_time)} predictions had occurredAt NaT (no time), stored at the time "
            f"received: {', '.join(map(repr, out.no_time[:5]))}"
        )
    for key, count in out.unscored.items():
        notes.append(f"{count} predictions carried {key}, which labelwatch does not store")
    listed = out.warnings[:MAX_WARNINGS]
    if len(out.warnings) > MAX_WARNINGS:
        listed.append(
            f"... and {len(out.warnings) - MAX_WARNINGS} more warnings "
            f"({out.refused} fragments not stored in all)"
        )
    if out.refused or missing:
        logger.warning(
            "logPredictions %s/%s (%s): %d of %d fragments not stored; first: %s",
            model_id,
            model_version,
            environment,
            out.refused + missing,
            len(fragments),
            (out.warnings or notes)[0],
        )
    return listed + notes
