"""The GraphQL side of the Aporia v1 SDK's protocol, with graphql-core.

The controller schema answers the operations the SDK sends: ``logPredictions``,
``modelVersionSchema``, ``logTrainingSet`` and ``logTestSet`` (and refuses
``logArbitraryData``). Its type names are those the SDK's documents declare
(``Prediction``, ``FieldTrainingData``, ``GenericScalar``, ``UUID``, ``DateTime``).
Arguments are nullable and fragment fields lenient JSON scalars: a variable that fails
coercion would reject a whole batch of 4,000 fragments, so each fragment is checked by
the resolver instead, and a bad one reported in ``warnings``.

Replies follow the SDK's reading: on success ``{"data": ...}`` with no ``errors`` key
(its mere presence fails the call), on failure ``errors`` entries whose ``message`` it
shows (``extensions.verbose_message`` with ``init(verbose=True)``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from graphql import (
    FieldNode,
    GraphQLError,
    GraphQLObjectType,
    GraphQLSchema,
    OperationDefinitionNode,
    OperationType,
    build_schema,
    execute_sync,
    parse,
    validate,
)
from graphql.language import DocumentNode

from labelwatch.errors import (
    AuthError,
    ConflictError,
    InvalidInputError,
    LabelwatchError,
    NotFoundError,
)
from labelwatch.monitor import Monitor
from labelwatch.monitor._schema import is_name
from labelwatch.server._aporia_ingest import log_fragments
from labelwatch.server._aporia_sets import (
    Aggregate,
    feature_summaries,
    label_sketch,
    parse_aggregates,
    score_sketch,
    sketch_edges,
)

__all__ = ["SCHEMA", "SDL", "NotSupportedError", "graphql_error", "hasura", "run"]

logger = logging.getLogger("labelwatch.server.aporia")

SDL = """
"Any JSON value."
scalar GenericScalar
scalar UUID
scalar DateTime

"One fragment of logPredictions: a prediction, actuals ({id, actuals}) or raw inputs."
input Prediction {
  id: GenericScalar
  predictions: GenericScalar
  metrics: GenericScalar
  rawInputs: GenericScalar
  actuals: GenericScalar
  features: GenericScalar
  occurredAt: GenericScalar
  confidence: GenericScalar
}

"The aggregates of one field (for a dict field, of one label: key) of a training or test set."
input FieldTrainingData {
  fieldName: GenericScalar
  key: GenericScalar
  bins: GenericScalar
  counts: GenericScalar
  min: GenericScalar
  max: GenericScalar
  sum: GenericScalar
  median: GenericScalar
  average: GenericScalar
  std: GenericScalar
  variance: GenericScalar
  numSamples: GenericScalar
  numMissingValues: GenericScalar
  numPosinfValues: GenericScalar
  numNeginfValues: GenericScalar
  numUniqueValues: GenericScalar
  numZeroValues: GenericScalar
}

type FieldSchema {
  name: String!
  type: String!
}

type ModelVersionSchema {
  features: [FieldSchema!]
  predictions: [FieldSchema!]
  rawInputs: [FieldSchema!]
}

type LogResult {
  warnings: [String!]!
}

type Query {
  modelVersionSchema(modelId: String, modelVersion: String): ModelVersionSchema
}

type Mutation {
  logPredictions(
    modelId: String, modelVersion: String, environment: String,
    predictions: [Prediction], isSync: Boolean
  ): LogResult
  logArbitraryData(
    modelId: String, modelVersion: String, environment: String, data: GenericScalar
  ): LogResult
  logTrainingSet(
    modelId: String, modelVersion: String, features: [FieldTrainingData],
    labels: [FieldTrainingData], rawInputs: [FieldTrainingData]
  ): LogResult
  logTestSet(
    modelId: String, modelVersion: String, features: [FieldTrainingData],
    predictions: [FieldTrainingData], labels: [FieldTrainingData],
    rawInputs: [FieldTrainingData]
  ): LogResult
}
"""

SCHEMA: GraphQLSchema = build_schema(SDL)
_ANSWERED = "logPredictions, modelVersionSchema, logTrainingSet and logTestSet"


class NotSupportedError(LabelwatchError):
    """A call of the Aporia SDK that labelwatch does not answer (HTTP 501)."""

    def __init__(self, what: str, hint: str | None = None) -> None:
        self.what = what
        self.hint = hint
        message = f"{what} is not supported by labelwatch"
        super().__init__(f"{message}; {hint}" if hint else message)


def _name(value: Any, what: str) -> str:
    if not is_name(value):
        raise InvalidInputError(what, "a non-empty str of at most 255 characters", value)
    return str(value)


def _version_hint(exc: NotFoundError) -> NotFoundError:
    """An unknown model or version, with what to do: labelwatch cannot infer a schema."""
    return NotFoundError(
        exc.kind,
        exc.key,
        hint="create it with aporia.create_model_version(...) before logging (labelwatch "
        "needs the version's schema and does not infer one)",
    )


class Controller:
    """The root value of the controller schema: one method per root field (graphql-core's
    default resolver calls ``root.<field>(info, **arguments)``)."""

    def __init__(self, monitor: Monitor, max_batch: int) -> None:
        self.monitor = monitor
        self.max_batch = max_batch

    def _version(self, model_id: Any, model_version: Any) -> dict[str, Any]:
        mid, ver = _name(model_id, "modelId"), _name(model_version, "modelVersion")
        try:
            return self.monitor.get_version(mid, ver)
        except NotFoundError as exc:
            raise _version_hint(exc) from None

    def logPredictions(
        self,
        info: Any,
        modelId: Any = None,
        modelVersion: Any = None,
        environment: Any = None,
        predictions: Any = None,
        isSync: Any = None,
    ) -> dict[str, Any]:
        mid, ver = _name(modelId, "modelId"), _name(modelVersion, "modelVersion")
        env = _name(environment, "environment")
        if not isinstance(predictions, list):
            raise InvalidInputError("predictions", "a list of fragments", predictions)
        if len(predictions) > self.max_batch:
            raise InvalidInputError(
                "predictions", f"at most {self.max_batch} fragments per call", len(predictions)
            )
        try:
            warnings = log_fragments(self.monitor, mid, ver, env, predictions)
        except NotFoundError as exc:
            raise _version_hint(exc) from None
        return {"warnings": warnings}

    def logArbitraryData(self, info: Any, **arguments: Any) -> dict[str, Any]:
        raise NotSupportedError(
            "log_json (logArbitraryData)",
            "labelwatch stores the predictions, actuals and raw inputs of a version's schema",
        )

    def modelVersionSchema(
        self, info: Any, modelId: Any = None, modelVersion: Any = None
    ) -> dict[str, Any]:
        version = self._version(modelId, modelVersion)

        def fields(types: Mapping[str, str]) -> list[dict[str, str]] | None:
            return [{"name": n, "type": t} for n, t in types.items()] or None

        return {
            "features": fields(version["features"]),
            "predictions": fields(version["predictions"]),
            "rawInputs": fields(version["raw_inputs"]),
        }

    def logTrainingSet(
        self,
        info: Any,
        modelId: Any = None,
        modelVersion: Any = None,
        features: Any = None,
        labels: Any = None,
        rawInputs: Any = None,
    ) -> dict[str, Any]:
        return self._log_set("training", modelId, modelVersion, features, labels, None, rawInputs)

    def logTestSet(
        self,
        info: Any,
        modelId: Any = None,
        modelVersion: Any = None,
        features: Any = None,
        predictions: Any = None,
        labels: Any = None,
        rawInputs: Any = None,
    ) -> dict[str, Any]:
        return self._log_set(
            "test", modelId, modelVersion, features, labels, predictions, rawInputs
        )

    def _log_set(
        self,
        kind: str,
        model_id: Any,
        model_version: Any,
        features: Any,
        labels: Any,
        predictions: Any,
        raw_inputs: Any,
    ) -> dict[str, Any]:
        """Store the ``kind`` baseline of each dict field from a set's aggregates."""
        version = self._version(model_id, model_version)
        mid, ver = version["model_id"], version["model_version"]
        feats, warnings = parse_aggregates(features, "features")
        stats, more = feature_summaries(feats, version["features"])
        warnings += more
        # training: the labels make the baseline; test: the predictions do (their labels
        # come as separate histograms and cannot be paired with the scores)
        what = "labels" if kind == "training" else "predictions"
        source, more = parse_aggregates(labels if kind == "training" else predictions, what)
        warnings += more
        types: dict[str, str] = version["predictions"]
        by_field: dict[str, list[Aggregate]] = {}
        for agg in source:
            if types.get(agg.field) == "dict":
                by_field.setdefault(agg.field, []).append(agg)
            elif agg.field not in by_field:
                by_field[agg.field] = []
                warnings.append(
                    f"{what}.{agg.field}: expected a dict prediction field of the version, "
                    f"among {[f for f, t in types.items() if t == 'dict']} (labelwatch keeps "
                    "baselines of dict fields); not stored"
                )
        stored = []
        for field_name, aggs in by_field.items():
            if not aggs:
                continue
            edges, bins = sketch_edges(version, field_name), int(version["bins"])
            build = label_sketch if kind == "training" else score_sketch
            sketch, more = build(aggs, edges, bins)
            warnings += more
            if sketch is not None:
                self.monitor.log_baseline(
                    mid, ver, kind, field_name, sketch, feature_stats=stats or None
                )
                stored.append(field_name)
        if stored:
            held = (
                "the training labels, each scored as itself (the set has no scores)"
                if kind == "training"
                else "the test predictions only (their labels cannot be paired with them)"
            )
            warnings.append(
                f"labelwatch stored the {kind} baseline of {', '.join(map(repr, stored))}: {held}"
            )
        elif stats:
            warnings.append(
                f"features not stored: labelwatch keeps them with the {kind} baseline of a "
                f"dict field, and no {what} of one came"
            )
        if kind == "test" and labels:
            warnings.append("the test set's labels are not stored")
        if raw_inputs:
            warnings.append(f"raw inputs of the {kind} set are not stored by labelwatch")
        return {"warnings": warnings}


# ------------------------------------------------------------------ execution
def _code(exc: BaseException | None) -> str:
    if isinstance(exc, NotSupportedError):
        return "not_supported"
    if isinstance(exc, InvalidInputError):
        return "invalid_input"
    if isinstance(exc, NotFoundError):
        return "not_found"
    if isinstance(exc, ConflictError):
        return "conflict"
    if isinstance(exc, AuthError):
        return "unauthorized" if exc.reason != "scope" else "forbidden"
    return "invalid_request" if exc is None else "error"


def graphql_error(
    message: str, code: str, verbose: str | None = None, **extra: Any
) -> dict[str, Any]:
    """One entry of ``errors`` as the SDK reads it."""
    return {
        "message": message,
        "extensions": {"code": code, "verbose_message": verbose or message},
        **extra,
    }


def _entry(error: GraphQLError) -> dict[str, Any]:
    original = error.original_error
    if original is not None and not isinstance(original, LabelwatchError | GraphQLError):
        logger.error("aporia graphql resolver failed", exc_info=original)
        message = "internal server error"
    else:
        message = str(original) if original is not None else error.message
    extra = {k: v for k, v in error.formatted.items() if k in ("locations", "path")}
    verbose = message if error.path is None else f"{'.'.join(map(str, error.path))}: {message}"
    return graphql_error(message, _code(original), verbose, **extra)


def _root_fields(document: DocumentNode) -> list[tuple[OperationType, str]]:
    return [
        (op.operation, sel.name.value)
        for op in document.definitions
        if isinstance(op, OperationDefinitionNode)
        for sel in op.selection_set.selections
        if isinstance(sel, FieldNode)
    ]


def _root_type(operation: OperationType) -> GraphQLObjectType | None:
    if operation == OperationType.QUERY:
        return SCHEMA.query_type
    if operation == OperationType.MUTATION:
        return SCHEMA.mutation_type
    return None


def _request(body: Any) -> tuple[DocumentNode, dict[str, Any] | None, str | None]:
    """The parsed document, variables and operation name of a request body."""
    if not isinstance(body, Mapping):
        raise InvalidInputError("body", "a JSON object with query and variables", body)
    query, variables = body.get("query"), body.get("variables")
    if not isinstance(query, str):
        raise InvalidInputError("query", "a GraphQL document (str)", query)
    if variables is not None and not isinstance(variables, Mapping):
        raise InvalidInputError("variables", "an object of variable values or null", variables)
    operation = body.get("operationName")
    if operation is not None and not isinstance(operation, str):
        raise InvalidInputError("operationName", "a str or null", operation)
    try:
        document = parse(query)
    except GraphQLError as exc:
        raise InvalidInputError("query", "a GraphQL document", exc.message) from None
    return document, None if variables is None else dict(variables), operation


def run(monitor: Monitor, max_batch: int, body: Any) -> tuple[int, dict[str, Any]]:
    """Execute one controller request: ``(HTTP status, reply body)``."""
    try:
        document, variables, operation = _request(body)
    except InvalidInputError as exc:
        return 400, {"data": None, "errors": [graphql_error(str(exc), "invalid_request")]}
    unknown = [
        name
        for op, name in _root_fields(document)
        if not name.startswith("__")
        and ((root := _root_type(op)) is None or name not in root.fields)
    ]
    if unknown:
        errors = [
            graphql_error(
                str(NotSupportedError(name)),
                "not_supported",
                f"{NotSupportedError(name)}: labelwatch answers {_ANSWERED}",
            )
            for name in dict.fromkeys(unknown)
        ]
        return 200, {"data": None, "errors": errors}
    invalid = validate(SCHEMA, document)
    if invalid:
        return 200, {"data": None, "errors": [_entry(e) for e in invalid]}
    result = execute_sync(
        SCHEMA,
        document,
        root_value=Controller(monitor, max_batch),
        variable_values=variables,
        operation_name=operation,
    )
    reply: dict[str, Any] = {"data": result.data}
    if result.errors:  # the key only when there are errors: its presence fails the call
        reply["errors"] = [_entry(e) for e in result.errors]
    return 200, reply


def hasura(body: Any) -> tuple[int, dict[str, Any]]:
    """The reply to a request for Aporia's experimental hasura helpers: not supported,
    naming the operation."""
    try:
        document, _variables, _operation = _request(body)
    except InvalidInputError as exc:
        return 400, {"data": None, "errors": [graphql_error(str(exc), "invalid_request")]}
    names = list(dict.fromkeys(name for _op, name in _root_fields(document))) or ["this query"]
    hint = "it is an experimental helper of the Aporia SDK, served by Aporia's hasura service"
    errors = [
        graphql_error(
            str(NotSupportedError(name)), "not_supported", str(NotSupportedError(name, hint))
        )
        for name in names
    ]
    return 200, {"data": None, "errors": errors}
