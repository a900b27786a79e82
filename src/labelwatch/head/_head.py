"""``MultiLabelHead``: TensorFlow's ``multi_label_head`` semantics on NumPy and PyTorch.

The head turns a model's logits ``[D0, ..., DN, n_classes]`` into what a training loop
and an evaluation need: labels in every form (:mod:`labelwatch.head._labels`), the loss
(per-example mean over classes of the sigmoid cross-entropy, weighted and reduced like
TF 2), predictions, and TF 2's eval metric dict, computed from the package's one summary
(``ScoreSketch``) so that it streams and merges. NumPy logits give NumPy results; torch
logits give a differentiable torch loss.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from labelwatch.errors import InvalidInputError
from labelwatch.head import _torch
from labelwatch.head._config import (
    check_classes,
    check_decision,
    check_loss_fn,
    check_n_classes,
    check_pos_weight,
    check_reduction,
    check_thresholds,
    check_vocabulary,
)
from labelwatch.head._kernels import probabilities_and_loss
from labelwatch.head._labels import to_multi_hot
from labelwatch.head._losses import BuiltinLoss, SigmoidCrossEntropy, is_torch, sigmoid
from labelwatch.head._state import EvalBatch, HeadMetricState, sketch_engine
from labelwatch.head._thresholds import best_thresholds
from labelwatch.labels import LabelSpace
from labelwatch.metrics import SampleStats, ScoreSketch
from labelwatch.metrics._exact import roc_auc_score

__all__ = ["HeadSummary", "MultiLabelHead"]

FloatArray = npt.NDArray[np.float64]
PREDICTION_KEYS = ("logits", "probabilities", "classes", "predicted_labels")
_CHUNK_CELLS = 1 << 24  # evaluation goes through large batches 16M scores (64-128 MB) at a time


class HeadSummary(NamedTuple):
    """What the monitor takes as a training baseline: the ``ScoreSketch`` of the
    probabilities and the ``SampleStats`` at the head's decision thresholds."""

    sketch: ScoreSketch
    samples: SampleStats


class MultiLabelHead:
    """A multi-label head with the semantics of TF's ``multi_label_head``.

    ``n_classes`` (> 1) logits per example; ``weight_column``: the key of the example
    weights in ``features`` (shape ``[D0, ..., DN]`` or ``[..., 1]``); ``thresholds``:
    probabilities in (0, 1) at which accuracy, precision and recall are reported;
    ``label_vocabulary``: the n_classes class names (then labels may be names);
    ``name``: suffix ``/name`` of every metric key; ``loss_reduction``:
    ``"sum_over_batch_size"`` (TF 2: weighted sum / number of examples) or ``"sum"``
    (TF 1.4); ``loss_fn``: a custom ``loss_fn(labels, logits[, features])`` returning
    per-example losses ``[D0, ..., DN, 1]``, a built-in loss object
    (:class:`~labelwatch.head.FocalLoss`, :class:`~labelwatch.head.AsymmetricLoss`, ...)
    or its name (``"sigmoid_cross_entropy"``, ``"focal"``, ``"asymmetric"``);
    ``classes_for_class_based_metrics``: class ids, or names with a vocabulary, that get
    per-class metrics.

    Beyond TF (keyword-only): ``pos_weight`` (n_classes,) multiplies the positive term of
    a built-in loss; ``decision_threshold`` (one or per class, default 0.5) gives
    ``predicted_labels`` and the extra metrics.

    Unlike TF's ``loss(labels, logits)``, the methods take ``(logits, labels)``.

    >>> head = MultiLabelHead(2)
    >>> round(head.loss(np.array([[-1.0, 1.0], [-1.5, 1.5]]), [[1, 0], [1, 1]]), 2)
    1.13
    """

    def __init__(
        self,
        n_classes: int,
        weight_column: str | None = None,
        thresholds: Iterable[float] | None = None,
        label_vocabulary: Sequence[str] | None = None,
        name: str | None = None,
        loss_reduction: str = "sum_over_batch_size",
        loss_fn: Callable[..., Any] | str | None = None,
        classes_for_class_based_metrics: Iterable[int | str] | None = None,
        *,
        pos_weight: npt.ArrayLike | None = None,
        decision_threshold: float | npt.ArrayLike = 0.5,
    ) -> None:
        self._n_classes = check_n_classes(n_classes)
        if weight_column is not None and not isinstance(weight_column, str):
            raise InvalidInputError(
                "weight_column", "a str (a key of features) or None", weight_column
            )
        self._weight_column = weight_column
        self._thresholds = check_thresholds(thresholds)
        self._vocabulary = check_vocabulary(label_vocabulary, self._n_classes)
        self._space = (
            LabelSpace(self._vocabulary)
            if self._vocabulary is not None
            else LabelSpace.range(self._n_classes)
        )
        if name is not None and not isinstance(name, str):
            raise InvalidInputError("name", "a str or None", name)
        self._name = name or None
        self._loss_reduction = check_reduction(loss_reduction)
        self._pos_weight = check_pos_weight(pos_weight, self._space)
        self._loss_fn_arg = loss_fn
        self._builtin, self._custom, self._custom_args = check_loss_fn(loss_fn, self._pos_weight)
        vocab = self._vocabulary is not None
        self._classes = check_classes(classes_for_class_based_metrics, self._space, vocab)
        self._decision = check_decision(decision_threshold, self._space)

    # -------------------------------------------------------------- properties
    @property
    def n_classes(self) -> int:
        """The number of classes (logits per example)."""
        return self._n_classes

    @property
    def logits_dimension(self) -> int:
        """TF's name for ``n_classes``."""
        return self._n_classes

    @property
    def name(self) -> str | None:
        """The suffix of every metric key, or None."""
        return self._name

    @property
    def weight_column(self) -> str | None:
        """The key of the example weights in ``features``, or None."""
        return self._weight_column

    @property
    def thresholds(self) -> tuple[float, ...]:
        """The thresholds of the accuracy / precision / recall metrics."""
        return self._thresholds

    @property
    def label_vocabulary(self) -> tuple[str, ...] | None:
        """The class names given, or None."""
        return self._vocabulary

    @property
    def loss_reduction(self) -> str:
        """``"sum_over_batch_size"`` or ``"sum"``."""
        return self._loss_reduction

    @property
    def loss_fn(self) -> Callable[..., Any]:
        """The per-example loss in use (a built-in loss object or the custom function)."""
        fn = self._builtin if self._builtin is not None else self._custom
        assert fn is not None
        return fn

    @property
    def pos_weight(self) -> FloatArray | None:
        """The per-class weight of positives of the built-in loss, or None."""
        return None if self._builtin is None else self._builtin.pos_weight

    @property
    def classes_for_class_based_metrics(self) -> tuple[int, ...]:
        """The class ids with per-class metrics."""
        return self._classes

    @property
    def decision_threshold(self) -> FloatArray:
        """Per-class thresholds (n_classes,) of ``predicted_labels`` and the extra metrics."""
        return self._decision

    @property
    def label_space(self) -> LabelSpace:
        """The classes as a ``LabelSpace``: the vocabulary, or "0".."n-1" (TF's classes)."""
        return self._space

    def with_decision_threshold(self, threshold: float | npt.ArrayLike) -> MultiLabelHead:
        """The same head with other decision thresholds (e.g. from :meth:`tune_thresholds`)."""
        return MultiLabelHead(
            self._n_classes,
            self._weight_column,
            self._thresholds,
            self._vocabulary,
            self._name,
            self._loss_reduction,
            self._loss_fn_arg,
            self._classes,
            pos_weight=None if isinstance(self._loss_fn_arg, BuiltinLoss) else self._pos_weight,
            decision_threshold=threshold,
        )

    def __repr__(self) -> str:
        parts = [f"n_classes={self._n_classes}"]
        if self._vocabulary is not None:
            parts.append(f"label_vocabulary={list(self._space.names)!r}"[:80])
        if self._weight_column is not None:
            parts.append(f"weight_column={self._weight_column!r}")
        if self._thresholds:
            parts.append(f"thresholds={list(self._thresholds)}")
        if self._name is not None:
            parts.append(f"name={self._name!r}")
        if self._loss_reduction != "sum_over_batch_size":
            parts.append(f"loss_reduction={self._loss_reduction!r}")
        if self._custom is not None or not isinstance(self._builtin, SigmoidCrossEntropy):
            parts.append(f"loss_fn={getattr(self.loss_fn, '__name__', self.loss_fn)!r}")
        if self._classes:
            parts.append(f"classes_for_class_based_metrics={list(self._classes)}")
        return f"MultiLabelHead({', '.join(parts)})"

    # ------------------------------------------------------------------ inputs
    def _logits(self, logits: Any) -> Any:
        """Validated logits: a float tensor (torch) or a float ndarray, rank >= 2."""
        if is_torch(logits):
            if not logits.is_floating_point():
                logits = logits.float()
            shape = tuple(logits.shape)
        else:
            try:
                arr = np.asarray(logits)
            except (TypeError, ValueError):
                raise InvalidInputError(
                    "logits", f"an array of shape [D0, ..., DN, {self._n_classes}]", logits
                ) from None
            if arr.dtype.kind in "biu":
                arr = arr.astype(np.float64)
            elif arr.dtype == np.float16:
                arr = arr.astype(np.float32)
            elif arr.dtype.kind != "f":
                raise InvalidInputError("logits", "an array of numbers", f"{arr.dtype} array")
            logits, shape = arr, arr.shape
        if len(shape) < 2 or shape[-1] != self._n_classes:
            raise InvalidInputError(
                "logits",
                f"shape [D0, ..., DN, {self._n_classes}] (rank >= 2, last = n_classes)",
                shape,
                hint="a single example needs shape (1, n_classes)" if len(shape) == 1 else None,
            )
        return logits

    def _weights_np(self, features: Any, batch_shape: tuple[int, ...]) -> FloatArray | None:
        """Example weights of shape ``batch_shape`` (float64), or None without a column."""
        col = self._weight_column
        if col is None:
            return None
        field = f"features[{col!r}]"
        if not isinstance(features, Mapping) or col not in features:
            got = "None" if features is None else f"keys {sorted(map(str, features))}"
            raise InvalidInputError(
                "features",
                f"a dict with the weight_column {col!r}",
                got if isinstance(features, Mapping) or features is None else features,
            )
        raw = features[col]
        if is_torch(raw):
            raw = raw.detach().cpu().numpy()
        try:
            w = np.asarray(raw, dtype=np.float64)
        except (TypeError, ValueError):
            raise InvalidInputError(field, "numbers castable to float", raw) from None
        if w.shape == (*batch_shape, 1):
            w = w[..., 0]
        if w.shape != batch_shape:
            raise InvalidInputError(
                field,
                f"shape {batch_shape} or {(*batch_shape, 1)} (logits.shape[:-1] [+ (1,)])",
                w.shape,
            )
        bad = ~(np.isfinite(w) & (w >= 0))
        if bad.any():
            pos = tuple(int(i) for i in np.argwhere(bad)[0])
            raise InvalidInputError(
                field, "finite weights >= 0", float(w[pos]), hint=f"at index {list(pos)}"
            )
        return w

    def _labels_np(self, labels: Any, batch_shape: tuple[int, ...]) -> npt.NDArray[np.bool_]:
        return to_multi_hot(
            labels, batch_shape, self._space, vocabulary=self._vocabulary is not None
        )

    def _call_custom(self, y: Any, logits: Any, features: Any) -> Any:
        assert self._custom is not None
        kwargs: dict[str, Any] = {"labels": y, "logits": logits}
        if "features" in self._custom_args:
            kwargs["features"] = features
        out = self._custom(**kwargs)
        expected = (*tuple(logits.shape[:-1]), 1)
        shape = tuple(out.shape) if hasattr(out, "shape") else np.shape(out)
        if shape != expected:
            raise InvalidInputError(
                "loss_fn",
                f"a function returning per-example losses of shape {expected} "
                "(logits.shape[:-1] + (1,))",
                f"a result of shape {shape}",
            )
        return out if is_torch(out) else np.asarray(out, dtype=np.float64)

    # -------------------------------------------------------------------- loss
    def unreduced_loss(self, logits: Any, labels: Any, features: Any = None) -> Any:
        """Per-example losses, shape ``logits.shape[:-1] + (1,)``, before example weights.

        A torch tensor (differentiable) for torch logits, else a float64 ndarray.
        """
        x = self._logits(logits)
        if is_torch(x):
            y = _torch.float_labels(labels, x, self._space, vocabulary=self._vocabulary is not None)
            return self._per_example(y, x, features)
        y_np = self._labels_np(labels, x.shape[:-1]).astype(x.dtype)
        return np.asarray(self._per_example(y_np, x, features), dtype=np.float64)

    def _per_example(self, y: Any, x: Any, features: Any) -> Any:
        if self._builtin is not None:
            return self._builtin(y, x)
        return self._call_custom(y, x, features)

    def loss(
        self,
        logits: Any,
        labels: Any,
        features: Any = None,
        *,
        regularization_losses: Sequence[Any] | None = None,
        validate: bool = True,
    ) -> Any:
        """The training loss: ``sum(w * per-example loss)``, divided by the number of
        examples for ``"sum_over_batch_size"`` (TF 2; not by the weight sum), plus the
        sum of ``regularization_losses``.

        A differentiable torch scalar for torch logits, else a float. ``validate=False``
        skips the value check of dense tensor labels (hot loops with known-good labels).
        """
        x = self._logits(logits)
        batch_shape = tuple(x.shape[:-1])
        w = self._weights_np(features, batch_shape)
        if is_torch(x):
            y = _torch.float_labels(
                labels, x, self._space, vocabulary=self._vocabulary is not None, validate=validate
            )
            wt = None if w is None else _torch.tensor_weights(w, x)
            if isinstance(self._builtin, SigmoidCrossEntropy):
                q = self._builtin.pos_weight
                total = _torch.reduce_loss(x, y, wt, self._loss_reduction, q)
            else:
                per_example = self._per_example(y, x, features)[..., 0]
                total = _torch.weighted_reduce(per_example, wt, self._loss_reduction)
            for r in regularization_losses or ():
                total = total + r
            return total
        y_np = self._labels_np(labels, batch_shape).astype(x.dtype)
        per = np.asarray(self._per_example(y_np, x, features), dtype=np.float64)[..., 0]
        total_np = float(np.sum(per * w) if w is not None else np.sum(per))
        if self._loss_reduction == "sum_over_batch_size":
            total_np /= max(per.size, 1)
        for r in regularization_losses or ():
            total_np += float(np.asarray(r.detach().cpu() if is_torch(r) else r))
        return total_np

    # ------------------------------------------------------------- predictions
    def predictions(
        self,
        logits: Any,
        keys: Iterable[str] | None = None,
        *,
        threshold: float | npt.ArrayLike | None = None,
    ) -> dict[str, Any]:
        """``logits``, ``probabilities`` (sigmoid), ``classes`` (the class names, one row
        per ``logits.shape[0]``, as TF 2) and ``predicted_labels`` (probability > the
        decision threshold, or ``threshold``); ``keys`` selects some of them."""
        wanted = PREDICTION_KEYS if keys is None else tuple(keys)
        for k in wanted:
            if k not in PREDICTION_KEYS:
                raise InvalidInputError("keys", f"prediction keys among {list(PREDICTION_KEYS)}", k)
        x = self._logits(logits)
        out: dict[str, Any] = {}
        if "logits" in wanted:
            out["logits"] = x
        p = sigmoid(x) if {"probabilities", "predicted_labels"} & set(wanted) else None
        if "probabilities" in wanted:
            out["probabilities"] = p
        if "classes" in wanted:
            out["classes"] = np.tile(np.array(self._space.names), (int(x.shape[0]), 1))
        if "predicted_labels" in wanted:
            assert p is not None
            t = self._decision if threshold is None else check_decision(threshold, self._space)
            if is_torch(x):
                out["predicted_labels"] = p > _torch.tensor_weights(t, x)
            else:
                out["predicted_labels"] = p > t
        return out

    # ---------------------------------------------------------------- metrics
    def _key(self, key: str) -> str:
        return f"{key}/{self._name}" if self._name else key

    def _class_key_name(self, class_id: int) -> str:
        if self._vocabulary is None:
            return f"class{class_id}"
        return self._vocabulary[class_id]

    def _metric_config(self) -> tuple[Any, ...]:
        """What must agree for two metric states to merge (label space, keys, loss)."""
        loss: Any = self._custom
        if self._builtin is not None:
            q = None if self._builtin.pos_weight is None else tuple(self._builtin.pos_weight)
            loss = (self._builtin, q)
        return (
            self._space,
            self._thresholds,
            self._classes,
            self._name,
            self._weight_column,
            tuple(self._decision.tolist()),
            loss,
        )

    def _eval_chunks(
        self, logits: Any, labels: Any, features: Any, *, chunk_cells: int | None = _CHUNK_CELLS
    ) -> Iterator[EvalBatch]:
        """A batch as NumPy rows (probabilities, labels, weights, per-example losses), in
        chunks of about ``chunk_cells`` cells (None: one chunk) whose probability and
        loss buffers are reused: consume each chunk before asking for the next.

        Everything is validated before the first chunk comes out.
        """
        x = self._logits(logits)
        batch_shape = tuple(x.shape[:-1])
        w = self._weights_np(features, batch_shape)
        n = self._n_classes
        losses: FloatArray | None = None
        if is_torch(x):
            import torch

            with torch.no_grad():
                y_t = _torch.float_labels(
                    labels, x, self._space, vocabulary=self._vocabulary is not None
                )
                y = y_t.cpu().numpy().reshape(-1, n) != 0
                if not self._default_loss():
                    losses = self._per_example(y_t, x, features).float().cpu().numpy()
                x_t = x.detach().cpu()
                if x_t.dtype not in (torch.float32, torch.float64):  # half, bfloat16
                    x_t = x_t.float()
                x_np = x_t.numpy()
        else:
            x_np = x
            y = self._labels_np(labels, batch_shape).reshape(-1, n)
            if not self._default_loss():
                losses = np.asarray(
                    self._per_example(y.reshape(x.shape).astype(x.dtype), x, features)
                )
        x2 = x_np.reshape(-1, n)
        if x2.dtype not in (np.float32, np.float64):
            x2 = x2.astype(np.float64)
        rows_total = x2.shape[0]
        w1 = None if w is None else w.reshape(-1)
        loss1 = None if losses is None else np.asarray(losses, np.float64).reshape(-1)
        rows = rows_total if chunk_cells is None else max(1, chunk_cells // n)
        rows = max(1, min(rows, rows_total))
        p_buf = np.empty((rows, n), dtype=x2.dtype)
        loss_buf = np.empty(rows, dtype=np.float64)
        for start in range(0, max(rows_total, 1), rows):
            stop = min(rows_total, start + rows)
            m = stop - start
            p, default_losses = probabilities_and_loss(
                x2[start:stop], y[start:stop], p_buf[:m], loss_buf[:m]
            )
            yield EvalBatch(
                p,
                y[start:stop],
                None if w1 is None else w1[start:stop],
                default_losses if loss1 is None else loss1[start:stop],
            )

    def _eval_batch(self, logits: Any, labels: Any, features: Any) -> EvalBatch:
        """The whole batch as one :class:`EvalBatch` (for what needs every score)."""
        return next(iter(self._eval_chunks(logits, labels, features, chunk_cells=None)))

    def _default_loss(self) -> bool:
        """Whether the per-example loss is plain sigmoid cross-entropy (the fused kernel's)."""
        builtin = self._builtin
        return isinstance(builtin, SigmoidCrossEntropy) and builtin.pos_weight is None

    def metric_state(self, *, extra: bool = False) -> HeadMetricState:
        """An empty streaming state: ``update(logits, labels, features)`` per batch, then
        ``result()`` (the dict of :meth:`metrics`); states merge with ``+``."""
        return HeadMetricState(self, extra=extra)

    def metrics(
        self,
        logits: Any,
        labels: Any,
        features: Any = None,
        *,
        regularization_losses: Sequence[Any] | None = None,
        extra: bool = False,
    ) -> dict[str, float]:
        """TF 2's eval metric dict of one batch (or a whole data set).

        Keys (each suffixed ``/name`` when the head has a name): ``average_loss``,
        ``auc``, ``auc_precision_recall`` (every cell pooled, TF's 200 thresholds and
        summation), ``regularization_loss`` (when given), ``accuracy/ precision/
        recall/positive_threshold_<t>`` per threshold, ``probability_mean/ auc/
        auc_precision_recall/<class>`` per class of ``classes_for_class_based_metrics``.
        Undefined ratios are 0, as in TF. ``extra=True`` adds ``f1/micro``, ``f1/macro``,
        ``hamming_loss``, ``subset_accuracy`` (at the decision thresholds) and the exact
        ROC AUCs ``auc_exact/micro``, ``auc_exact/macro``.
        """
        state = HeadMetricState(self, extra=extra)
        if not extra:
            state.update(logits, labels, features, regularization_losses=regularization_losses)
            return state.result()
        batch = self._eval_batch(logits, labels, features)  # the exact AUCs need every score
        state.add_batch(batch, regularization_losses)
        out = state.result()
        p, y, w = batch.probabilities, batch.labels, batch.weights
        for average in ("micro", "macro"):
            auc = roc_auc_score(y, p, sample_weight=w, average=average)
            out[self._key(f"auc_exact/{average}")] = float(auc)
        return out

    # ------------------------------------------------------------ beyond TF
    def summary(
        self, logits: Any, labels: Any, features: Any = None, *, bins: int = 200
    ) -> HeadSummary:
        """The training baseline for the monitor: a ``ScoreSketch`` of the probabilities
        (``bins`` bins, the head's thresholds and decision thresholds as exact edges) and
        the ``SampleStats`` at the decision thresholds, both weighted like the loss."""
        edges = sorted(set(self._thresholds) | {float(t) for t in self._decision})
        sketch = ScoreSketch.empty(self._space, thresholds=edges, bins=bins)
        samples = SampleStats.empty(self._space, self._decision)
        for chunk in self._eval_chunks(logits, labels, features):
            sketch = sketch + ScoreSketch.from_arrays(
                self._space,
                chunk.probabilities,
                chunk.labels,
                weights=chunk.weights,
                thresholds=edges,
                bins=bins,
                engine=sketch_engine(chunk.probabilities.size),
            )
            samples = samples + SampleStats.from_arrays(
                self._space,
                chunk.probabilities,
                chunk.labels,
                thresholds=self._decision,
                weights=chunk.weights,
            )
        return HeadSummary(sketch, samples)

    def tune_thresholds(
        self, logits: Any, labels: Any, objective: str = "f1", features: Any = None
    ) -> FloatArray:
        """Per-class thresholds (n_classes,) maximising ``objective`` on validation data.

        ``objective``: ``"f1"``, ``"f<beta>"`` (e.g. ``"f2"``), ``"accuracy"``,
        ``"youden"`` (tpr - fpr) or ``"mcc"``; exact over every distinct probability,
        weighted by the weight column. Use the result with
        ``head.with_decision_threshold(t)`` or ``predictions(logits, threshold=t)``.
        """
        batch = self._eval_batch(logits, labels, features)
        thresholds, _ = best_thresholds(
            batch.probabilities.astype(np.float64),
            batch.labels,
            batch.weights,
            objective,
            self._decision,
            self._space.names,
        )
        return thresholds
