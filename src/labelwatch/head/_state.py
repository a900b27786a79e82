"""Streaming evaluation: TF 2's eval metric dict from mergeable sums.

Every TF metric of the head is a function of additive state: the weighted loss sum and
weight sum (``average_loss``), a ``ScoreSketch`` on TF's 199-bin grid with the head's
thresholds as extra edges (``auc``, ``auc_precision_recall``, accuracy / precision /
recall at thresholds, per-class AUCs), and per-class weighted probability sums
(``probability_mean/<class>``). So batches, shards and machines merge with ``+``, and the
result equals the one-shot :meth:`MultiLabelHead.metrics` of all the data at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from labelwatch.errors import IncompatibleMergeError, InvalidInputError
from labelwatch.head._tf_metrics import (
    TF_BINS,
    divide_no_nan,
    tf_confusion,
    tf_pr_auc,
    tf_roc_auc,
    threshold_key,
)
from labelwatch.metrics import SampleStats, ScoreSketch

if TYPE_CHECKING:
    from labelwatch.head._head import MultiLabelHead

__all__ = ["EvalBatch", "HeadMetricState", "sketch_engine"]

FloatArray = npt.NDArray[np.float64]
_SMALL_BATCH_CELLS = 1 << 18


@dataclass(frozen=True)
class EvalBatch:
    """One batch flattened to rows: probabilities (m, L), labels (m, L) bool, weights (m,)
    or None, and per-example losses (m,)."""

    probabilities: npt.NDArray[np.floating[Any]]
    labels: npt.NDArray[np.bool_]
    weights: FloatArray | None
    losses: FloatArray


def sketch_engine(cells: int) -> str | None:
    """The ScoreSketch engine for a batch of ``cells`` scores: NumPy for small batches
    (the compiled engine's JIT costs seconds on first use in a process), else the default."""
    return "numpy" if cells < _SMALL_BATCH_CELLS else None


def _float(x: Any) -> float:
    return float(np.asarray(x, dtype=np.float64))


class HeadMetricState:
    """TF 2's eval metrics of a :class:`MultiLabelHead`, accumulated over batches.

    ``update(logits, labels, features=None)`` adds a batch, ``result()`` gives the dict
    of :meth:`MultiLabelHead.metrics`, ``a + b`` (or ``a.merge(b)``) merges the states of
    the same head (e.g. from several workers). With ``extra=True`` it also keeps the
    sample sums behind ``f1/micro``, ``f1/macro``, ``hamming_loss`` and
    ``subset_accuracy`` (the exact AUCs need every score and come only from
    ``metrics(..., extra=True)``).

    >>> from labelwatch.head import MultiLabelHead
    >>> head = MultiLabelHead(2)
    >>> state = head.metric_state()
    >>> state.update([[-1.0, 1.0]], [[1, 0]])
    >>> state.update([[-1.5, 1.5]], [[1, 1]])
    >>> round(state.result()["average_loss"], 2)
    1.13
    """

    def __init__(self, head: MultiLabelHead, *, extra: bool = False) -> None:
        self.head = head
        self.extra = bool(extra)
        space = head.label_space
        edges = set(head.thresholds)
        if self.extra:
            edges |= {float(t) for t in head.decision_threshold}
        self.sketch = ScoreSketch.empty(space, thresholds=sorted(edges) or (0.5,), bins=TF_BINS)
        self.loss_sum = 0.0
        self.weight_sum = 0.0
        classes = head.classes_for_class_based_metrics
        self.probability_sums = np.zeros(len(classes))
        self.regularization_sum = 0.0
        self.regularization_count = 0
        self.samples: SampleStats | None = (
            SampleStats.empty(space, head.decision_threshold, cooccurrence=False)
            if self.extra
            else None
        )

    # ----------------------------------------------------------------- updating
    def update(
        self,
        logits: Any,
        labels: Any,
        features: Any = None,
        *,
        regularization_losses: Sequence[Any] | None = None,
    ) -> None:
        """Add one batch (the arguments of :meth:`MultiLabelHead.metrics`). Bad input
        raises and leaves the state as it was."""
        delta = HeadMetricState(self.head, extra=self.extra)
        for chunk in self.head._eval_chunks(logits, labels, features):
            delta.add_batch(chunk)
        delta.add_regularization(regularization_losses)
        self._absorb(delta)

    def add_batch(
        self, batch: EvalBatch, regularization_losses: Sequence[Any] | None = None
    ) -> None:
        """Add a batch already flattened to rows."""
        head = self.head
        p, y, w = batch.probabilities, batch.labels, batch.weights
        try:
            sketch = ScoreSketch.from_arrays(
                head.label_space,
                p,
                y,
                weights=w,
                thresholds=self.sketch.thresholds,
                bins=TF_BINS,
                engine=sketch_engine(p.size),
            )
        except InvalidInputError as exc:
            if exc.field != "scores":
                raise
            raise InvalidInputError(
                "logits", "finite numbers (or +-inf)", exc.got, row=exc.row, label=exc.label
            ) from None
        self.sketch = self.sketch + sketch
        if w is None:
            self.loss_sum += float(batch.losses.sum())
            self.weight_sum += float(len(batch.losses))
        else:
            self.loss_sum += float(w @ batch.losses)
            self.weight_sum += float(w.sum())
        classes = list(head.classes_for_class_based_metrics)
        if classes:
            cols = p[:, classes].astype(np.float64)
            self.probability_sums += cols.sum(axis=0) if w is None else w @ cols
        self.add_regularization(regularization_losses)
        if self.samples is not None:
            self.samples = self.samples + SampleStats.from_arrays(
                head.label_space,
                p,
                y,
                thresholds=head.decision_threshold,
                weights=w,
                cooccurrence=False,
            )

    def add_regularization(self, regularization_losses: Sequence[Any] | None) -> None:
        """Count one update's regularization losses (their sum; TF's Mean over updates)."""
        if regularization_losses is not None:
            self.regularization_sum += sum(_float(_numpy(r)) for r in regularization_losses)
            self.regularization_count += 1

    def reset(self) -> None:
        """Forget every batch."""
        self.__init__(self.head, extra=self.extra)  # type: ignore[misc]

    # ------------------------------------------------------------------ merging
    def _check_compatible(self, other: HeadMetricState) -> None:
        left, right = self.head._metric_config(), other.head._metric_config()
        if left != right or self.extra != other.extra:
            raise IncompatibleMergeError(
                "cannot merge the metric states of different heads: left "
                f"{self.head!r} (extra={self.extra}), right {other.head!r} (extra={other.extra})"
            )

    def _absorb(self, other: HeadMetricState) -> None:
        self.sketch = self.sketch + other.sketch
        self.loss_sum += other.loss_sum
        self.weight_sum += other.weight_sum
        self.probability_sums = self.probability_sums + other.probability_sums
        self.regularization_sum += other.regularization_sum
        self.regularization_count += other.regularization_count
        if self.samples is not None and other.samples is not None:
            self.samples = self.samples + other.samples

    def merge(self, other: HeadMetricState) -> HeadMetricState:
        """A new state holding both states' batches (same head configuration only)."""
        if not isinstance(other, HeadMetricState):
            raise InvalidInputError("other", "a HeadMetricState", other)
        self._check_compatible(other)
        out = HeadMetricState(self.head, extra=self.extra)
        out._absorb(self)
        out._absorb(other)
        return out

    def __add__(self, other: object) -> HeadMetricState:
        if not isinstance(other, HeadMetricState):
            return NotImplemented
        return self.merge(other)

    def __repr__(self) -> str:
        return f"HeadMetricState({self.head!r}, n={self.weight_sum:g}, extra={self.extra})"

    # ------------------------------------------------------------------ results
    def result(self) -> dict[str, float]:
        """TF 2's eval metric dict (undefined ratios are 0, as TF's ``divide_no_nan``),
        plus the extra keys when built with ``extra=True``."""
        head = self.head
        key = head._key
        sk = self.sketch
        out: dict[str, float] = {}
        out[key("average_loss")] = float(divide_no_nan(self.loss_sum, self.weight_sum))
        tp, fp, fn, tn = tf_confusion(sk)
        out[key("auc")] = tf_roc_auc(tp, fp, fn, tn)
        out[key("auc_precision_recall")] = tf_pr_auc(tp, fp, fn)
        if self.regularization_count:
            out[key("regularization_loss")] = self.regularization_sum / self.regularization_count
        for t in head.thresholds:
            at = [float(c.sum()) for c in sk.confusion(t)]  # tp, fp, fn, tn pooled
            out[key(threshold_key("accuracy", t))] = float(divide_no_nan(at[0] + at[3], sum(at)))
            out[key(threshold_key("precision", t))] = float(divide_no_nan(at[0], at[0] + at[1]))
            out[key(threshold_key("recall", t))] = float(divide_no_nan(at[0], at[0] + at[2]))
        for i, class_id in enumerate(head.classes_for_class_based_metrics):
            cname = head._class_key_name(class_id)
            mean = divide_no_nan(self.probability_sums[i], self.weight_sum)
            out[key(f"probability_mean/{cname}")] = float(mean)
            ctp, cfp, cfn, ctn = tf_confusion(sk, label=class_id)
            out[key(f"auc/{cname}")] = tf_roc_auc(ctp, cfp, cfn, ctn)
            out[key(f"auc_precision_recall/{cname}")] = tf_pr_auc(ctp, cfp, cfn)
        if self.samples is not None:
            decision = head.decision_threshold
            out[key("f1/micro")] = float(sk.f1(decision, average="micro"))
            out[key("f1/macro")] = float(sk.f1(decision, average="macro"))
            out[key("hamming_loss")] = self.samples.hamming_loss()
            out[key("subset_accuracy")] = self.samples.subset_accuracy()
        return out


def _numpy(x: Any) -> Any:
    return x.detach().cpu().numpy() if hasattr(x, "detach") else x
