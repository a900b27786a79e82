"""A model version's schema: field types, label vocabularies, thresholds; value checks.

Pure: validates what ``create_model_version`` receives into a :class:`VersionSpec`, and
checks the feature / raw-input / non-dict prediction values of a record against it.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from labelwatch.errors import InvalidInputError

__all__ = [
    "DEFAULT_THRESHOLD",
    "FEATURE_TYPES",
    "PREDICTION_TYPES",
    "UnknownLabels",
    "VersionSpec",
    "check_name",
    "check_value",
    "dumps",
    "is_name",
]

FEATURE_TYPES = (
    "numeric",
    "categorical",
    "boolean",
    "string",
    "datetime",
    "text",
    "vector",
    "dict",
)
PREDICTION_TYPES = ("dict", "numeric", "boolean", "categorical", "string")
SEGMENT_TYPES = ("categorical", "boolean", "string")
MODEL_TYPES = ("multi-label",)
UNKNOWN_LABELS = ("learn", "error", "ignore")
DEFAULT_THRESHOLD = 0.5
UnknownLabels = Literal["learn", "error", "ignore"]


_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), allow_nan=False)


def dumps(value: Any) -> str:
    """Canonical JSON (sorted keys, no spaces): equal values give equal text."""
    return _ENCODER.encode(value)  # one encoder: json.dumps(**options) builds one per call


NAME_FORM = "a non-empty str of at most 255 characters, without NUL or lone surrogates"
# what no database text column can hold (PostgreSQL: NUL; UTF-8: lone surrogates)
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def is_text(value: str) -> bool:
    """Whether ``value`` can be stored as database text."""
    return _UNSTORABLE.search(value) is None


def is_name(value: Any) -> bool:
    """Whether ``value`` can be an identifier (a model, version, environment, field, label
    or prediction id): a non-empty str of at most 255 characters that database text can
    hold (no NUL, which PostgreSQL refuses; no lone surrogate, which UTF-8 cannot encode)."""
    return isinstance(value, str) and 0 < len(value) <= 255 and is_text(value)


def check_name(value: Any, what: str, row: int | None = None) -> str:
    """``value`` if :func:`is_name`, else an InvalidInputError naming ``what``."""
    if not is_name(value):
        raise InvalidInputError(what, NAME_FORM, value, row=row)
    return value  # type: ignore[no-any-return]


def _check_types(
    value: Any, what: str, allowed: tuple[str, ...], *, required: bool
) -> dict[str, str]:
    if value is None and not required:
        return {}
    if not isinstance(value, Mapping) or (required and not value):
        raise InvalidInputError(
            what, "a non-empty dict of field name -> type" if required else "a dict", value
        )
    out: dict[str, str] = {}
    for name, kind in value.items():
        check_name(name, f"{what} name")
        if kind not in allowed:
            raise InvalidInputError(
                f"{what}.{name}", f"a type among {', '.join(map(repr, allowed))}", kind
            )
        out[name] = kind
    return out


def _check_threshold(value: Any, what: str, label: str | None = None) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not 0 <= value <= 1  # also refuses NaN
    ):
        raise InvalidInputError(what, "a number in [0, 1]", value, label=label)
    return float(value)


@dataclass(frozen=True)
class VersionSpec:
    """The validated schema of a model version (immutable once created)."""

    model_type: str
    features: dict[str, str]
    predictions: dict[str, str]
    actuals: dict[str, str]
    raw_inputs: dict[str, str]
    labels: dict[str, list[str]]
    thresholds: dict[str, float | dict[str, float]]
    unknown_labels: UnknownLabels
    bins: int
    dict_fields: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        dicts = tuple(f for f, t in self.predictions.items() if t == "dict")
        object.__setattr__(self, "dict_fields", dicts)

    @classmethod
    def create(
        cls,
        *,
        model_type: Any,
        features: Any,
        predictions: Any,
        actuals: Any,
        raw_inputs: Any,
        labels: Any,
        thresholds: Any,
        unknown_labels: Any,
        bins: Any,
    ) -> VersionSpec:
        """Validate the arguments of ``create_model_version``."""
        if model_type not in MODEL_TYPES:
            raise InvalidInputError("model_type", f"one of {list(MODEL_TYPES)}", model_type)
        feats = _check_types(features, "features", FEATURE_TYPES, required=False)
        preds = _check_types(predictions, "predictions", PREDICTION_TYPES, required=True)
        acts = (
            dict(preds)
            if actuals is None
            else _check_types(actuals, "actuals", PREDICTION_TYPES, required=True)
        )
        for name, kind in acts.items():
            if kind == "dict" and preds.get(name) != "dict":
                raise InvalidInputError(
                    f"actuals.{name}",
                    "the name of a 'dict' prediction field",
                    name,
                    hint=f"dict prediction fields: {[f for f, t in preds.items() if t == 'dict']}",
                )
        raws = _check_types(raw_inputs, "raw_inputs", FEATURE_TYPES, required=False)
        if unknown_labels not in UNKNOWN_LABELS:
            raise InvalidInputError(
                "unknown_labels", f"one of {list(UNKNOWN_LABELS)}", unknown_labels
            )
        if isinstance(bins, bool) or not isinstance(bins, int) or not 1 <= bins <= 10_000:
            raise InvalidInputError("bins", "an integer from 1 to 10000", bins)
        dict_fields = [f for f, t in preds.items() if t == "dict"]
        vocab: dict[str, list[str]] = {}
        if labels is not None:
            if not isinstance(labels, Mapping):
                raise InvalidInputError("labels", "a dict of field -> list of label names", labels)
            for name, names in labels.items():
                if name not in dict_fields:
                    raise InvalidInputError(
                        "labels", f"a dict prediction field among {dict_fields}", name
                    )
                if isinstance(names, str | bytes) or not isinstance(names, list | tuple):
                    raise InvalidInputError(f"labels.{name}", "a list of label names", names)
                seen: set[str] = set()
                for label in names:
                    check_name(label, f"labels.{name}")
                    if label in seen:
                        raise InvalidInputError(
                            f"labels.{name}", "unique label names", label, label=label
                        )
                    seen.add(label)
                vocab[name] = list(names)
        ths: dict[str, float | dict[str, float]] = {}
        if thresholds is not None:
            if not isinstance(thresholds, Mapping):
                raise InvalidInputError(
                    "thresholds", "a dict of field -> threshold or {label: threshold}", thresholds
                )
            for name, value in thresholds.items():
                if name not in dict_fields:
                    raise InvalidInputError(
                        "thresholds", f"a dict prediction field among {dict_fields}", name
                    )
                if isinstance(value, Mapping):
                    per: dict[str, float] = {}
                    for label, t in value.items():
                        check_name(label, f"thresholds.{name}")
                        per[label] = _check_threshold(t, f"thresholds.{name}", label)
                    ths[name] = per
                else:
                    ths[name] = _check_threshold(value, f"thresholds.{name}")
        return cls(
            model_type=model_type,
            features=feats,
            predictions=preds,
            actuals=acts,
            raw_inputs=raws,
            labels=vocab,
            thresholds=ths,
            unknown_labels=unknown_labels,
            bins=bins,
        )

    def to_json(self) -> dict[str, Any]:
        """The spec as JSON-able data (``from_json`` reads it back)."""
        return {
            "model_type": self.model_type,
            "features": self.features,
            "predictions": self.predictions,
            "actuals": self.actuals,
            "raw_inputs": self.raw_inputs,
            "labels": self.labels,
            "thresholds": self.thresholds,
            "unknown_labels": self.unknown_labels,
            "bins": self.bins,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> VersionSpec:
        """Inverse of :meth:`to_json` (trusted: written by this package)."""
        return cls(**data)

    # -------------------------------------------------------------- thresholds
    def threshold(self, field_name: str, label: str) -> float:
        """The decision threshold of ``label`` in ``field_name`` (default 0.5)."""
        value = self.thresholds.get(field_name, DEFAULT_THRESHOLD)
        if isinstance(value, dict):
            return value.get(label, DEFAULT_THRESHOLD)
        return value

    def edges(self, field_name: str) -> tuple[float, ...]:
        """Every threshold a label of the field can have: the sketch's exact edges."""
        value = self.thresholds.get(field_name, DEFAULT_THRESHOLD)
        if isinstance(value, dict):
            return tuple(sorted({DEFAULT_THRESHOLD, *value.values()}))
        return (value,)


def check_value(kind: str, value: Any, what: str, row: int) -> Any:
    """``value`` as stored for a field of type ``kind`` (None is always allowed).

    Raises an ``InvalidInputError`` naming ``what`` (e.g. ``features.year``) and ``row``.
    """
    if value is None:
        return None
    if type(value) is float and kind == "numeric" and math.isfinite(value):
        return value  # the common case first
    if kind == "numeric":
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or (isinstance(value, float) and not math.isfinite(value))  # an int is finite
        ):
            raise InvalidInputError(what, "a finite number", value, row=row)
        return value
    if kind == "boolean":
        if not isinstance(value, bool):
            raise InvalidInputError(what, "true or false", value, row=row)
        return value
    if kind == "categorical":
        if not isinstance(value, str | int | bool) or (
            isinstance(value, str) and _SURROGATE.search(value)
        ):
            raise InvalidInputError(
                what, "a category (str without lone surrogates, int or bool)", value, row=row
            )
        return value
    if kind in ("string", "text"):
        if not isinstance(value, str) or _SURROGATE.search(value):
            raise InvalidInputError(what, "a str without lone surrogates", value, row=row)
        return value
    if kind == "datetime":
        if isinstance(value, datetime):
            return value.isoformat()
        if isinstance(value, str):
            try:
                datetime.fromisoformat(value)
            except ValueError:
                raise InvalidInputError(what, "an ISO 8601 date-time", value, row=row) from None
            return value
        raise InvalidInputError(what, "a datetime or an ISO 8601 str", value, row=row)
    if kind == "vector":
        if not isinstance(value, list | tuple) or not all(
            not isinstance(v, bool) and isinstance(v, int | float) and math.isfinite(v)
            for v in value
        ):
            raise InvalidInputError(what, "a list of finite numbers", value, row=row)
        return list(value)
    if kind == "dict":
        if not isinstance(value, Mapping):
            raise InvalidInputError(what, "a dict", value, row=row)
        try:
            dumps(value)
        except (TypeError, ValueError):
            raise InvalidInputError(what, "a JSON-serializable dict", value, row=row) from None
        return dict(value)
    raise AssertionError(kind)  # pragma: no cover - kinds are validated at creation
