"""MultiLabelHead on hand-computed cases and TF's documented example (no TF needed):
loss, unreduced loss, reductions, weights, every metric key and value, name suffixes,
predictions, the extra metrics against scikit-learn, the summary, and every validation
error."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score, hamming_loss, roc_auc_score

from labelwatch import InvalidInputError, LabelSpace, SampleStats, ScoreSketch
from labelwatch.head import (
    FocalLoss,
    HeadSummary,
    MultiLabelHead,
    SigmoidCrossEntropy,
    SparseLabels,
)

# TF's documented example (tf.estimator.MultiLabelHead docstring)
DOC_LOGITS = np.array([[-1.0, 1.0], [-1.5, 1.5]], dtype=np.float32)
DOC_LABELS = np.array([[1, 0], [1, 1]])
# per-example losses by hand: mean over classes of log(1 + exp(-x)) / log(1 + exp(x))
EX1 = (math.log1p(math.exp(1)) + math.log1p(math.exp(1))) / 2  # 1.31326169
EX2 = (math.log1p(math.exp(1.5)) + math.log1p(math.exp(-1.5))) / 2  # 0.95141327


def sig(x: float) -> float:
    return 1 / (1 + math.exp(-x))


# ------------------------------------------------------------------------ loss
def test_tf_documented_example() -> None:
    head = MultiLabelHead(2)
    features = {"x": np.array([[41], [42]], dtype=np.int32)}
    loss = head.loss(DOC_LOGITS, DOC_LABELS, features=features)
    assert f"{loss:.2f}" == "1.13"  # TF's doctest
    assert loss == pytest.approx((EX1 + EX2) / 2, rel=1e-7)
    metrics = head.metrics(DOC_LOGITS, DOC_LABELS, features)
    assert {k: f"{v:.2f}" for k, v in sorted(metrics.items())} == {
        "auc": "0.33",
        "auc_precision_recall": "0.77",
        "average_loss": "1.13",
    }
    assert metrics["auc_precision_recall"] == pytest.approx(0.7689509391784668, abs=1e-6)


def test_unreduced_loss_shape_and_values() -> None:
    head = MultiLabelHead(2)
    out = head.unreduced_loss(DOC_LOGITS, DOC_LABELS)
    assert out.shape == (2, 1)
    np.testing.assert_allclose(out[:, 0], [EX1, EX2], rtol=1e-7)


@pytest.mark.parametrize(
    ("reduction", "weights", "expected"),
    [
        ("sum_over_batch_size", None, (EX1 + EX2) / 2),
        ("sum", None, EX1 + EX2),
        # TF 2 divides the weighted sum by the number of examples, not by the weight sum
        ("sum_over_batch_size", [1.0, 2.0], (EX1 + 2 * EX2) / 2),
        ("sum_over_batch_size", [[1.0], [2.0]], (EX1 + 2 * EX2) / 2),
        ("sum", [1.0, 2.0], EX1 + 2 * EX2),
        ("sum", [0.0, 0.0], 0.0),
    ],
)
def test_reductions_and_weights(reduction: str, weights: Any, expected: float) -> None:
    head = MultiLabelHead(
        2, weight_column=None if weights is None else "w", loss_reduction=reduction
    )
    features = None if weights is None else {"w": np.asarray(weights)}
    assert head.loss(DOC_LOGITS, DOC_LABELS, features) == pytest.approx(expected, rel=1e-7)
    if weights is not None:  # average_loss is the weighted mean (weight sum, TF's Mean)
        w = np.ravel(weights)
        avg = head.metrics(DOC_LOGITS, DOC_LABELS, features)["average_loss"]
        assert avg == pytest.approx((w[0] * EX1 + w[1] * EX2) / w.sum() if w.sum() else 0.0)


def test_regularization_losses_are_added() -> None:
    head = MultiLabelHead(2)
    loss = head.loss(DOC_LOGITS, DOC_LABELS, regularization_losses=[0.5, 0.25])
    assert loss == pytest.approx((EX1 + EX2) / 2 + 0.75)
    m = head.metrics(DOC_LOGITS, DOC_LABELS, regularization_losses=[0.5, 0.25])
    assert m["regularization_loss"] == pytest.approx(0.75)
    assert m["average_loss"] == pytest.approx((EX1 + EX2) / 2)  # without regularization


def test_higher_rank_logits() -> None:
    x = np.stack([DOC_LOGITS, DOC_LOGITS[::-1]])  # (2, 2, 2)
    y = np.stack([DOC_LABELS, DOC_LABELS[::-1]])
    head = MultiLabelHead(2, weight_column="w")
    w = np.array([[1.0, 2.0], [3.0, 4.0]])
    per = np.array([[EX1, EX2], [EX2, EX1]])
    np.testing.assert_allclose(head.unreduced_loss(x, y, {"w": w})[..., 0], per, rtol=1e-7)
    assert head.loss(x, y, {"w": w}) == pytest.approx((w * per).sum() / 4, rel=1e-7)
    assert head.loss(x, y, {"w": w[..., None]}) == pytest.approx((w * per).sum() / 4, rel=1e-7)
    flat = head.metrics(x.reshape(-1, 2), y.reshape(-1, 2), {"w": w.reshape(-1)})
    assert head.metrics(x, y, {"w": w}) == pytest.approx(flat, rel=1e-12)


def test_custom_loss_fn_replaces_the_per_example_loss() -> None:
    def loss_fn(labels: Any, logits: Any) -> Any:
        return np.sum(np.abs(labels - logits), axis=-1, keepdims=True)

    head = MultiLabelHead(2, loss_fn=loss_fn, weight_column="w")
    per = np.abs(DOC_LABELS - DOC_LOGITS).sum(axis=1)
    w = np.array([2.0, 1.0])
    assert head.loss(DOC_LOGITS, DOC_LABELS, {"w": w}) == pytest.approx((per * w).sum() / 2)
    avg = head.metrics(DOC_LOGITS, DOC_LABELS, {"w": w})["average_loss"]
    assert avg == pytest.approx((per * w).sum() / 3)

    def with_features(labels: Any, logits: Any, features: Any) -> Any:
        return np.asarray(features["s"]).reshape(-1, 1) * np.ones((len(labels), 1))

    head2 = MultiLabelHead(2, loss_fn=with_features)
    assert head2.loss(DOC_LOGITS, DOC_LABELS, {"s": [1.0, 3.0]}) == pytest.approx(2.0)


def test_custom_loss_fn_must_return_per_example_shape() -> None:
    head = MultiLabelHead(2, loss_fn=lambda labels, logits: np.zeros(len(labels)))
    with pytest.raises(
        InvalidInputError, match=r"^loss_fn: .*\(2, 1\).*got 'a result of shape \(2,\)'"
    ):
        head.loss(DOC_LOGITS, DOC_LABELS)


def test_builtin_losses_by_name_and_pos_weight() -> None:
    x, y = DOC_LOGITS.astype(np.float64), DOC_LABELS
    q = np.array([2.0, 0.5])
    head = MultiLabelHead(2, pos_weight=q)
    # -[q z log σ(x) + (1 - z) log(1 - σ(x))], averaged over classes
    cells = -(q * y * np.log(1 / (1 + np.exp(-x))) + (1 - y) * np.log(1 - 1 / (1 + np.exp(-x))))
    assert head.loss(x, y) == pytest.approx(cells.mean(axis=1).mean(), rel=1e-12)
    assert head.metrics(x, y)["average_loss"] == pytest.approx(cells.mean(), rel=1e-12)
    focal = MultiLabelHead(2, loss_fn="focal")
    assert focal.loss(x, y) == pytest.approx(MultiLabelHead(2, loss_fn=FocalLoss()).loss(x, y))
    assert isinstance(focal.loss_fn, FocalLoss)
    assert MultiLabelHead(2, loss_fn="asl").loss(x, y) < MultiLabelHead(2).loss(x, y)


def test_pos_weight_on_the_head_or_on_the_loss_is_the_same() -> None:
    import torch

    q = np.array([3.0, 0.5])
    a = MultiLabelHead(2, pos_weight=q)
    b = MultiLabelHead(2, loss_fn=SigmoidCrossEntropy(q))
    np.testing.assert_array_equal(a.pos_weight, b.pos_weight)
    assert a.loss(DOC_LOGITS, DOC_LABELS) == pytest.approx(b.loss(DOC_LOGITS, DOC_LABELS))
    xt, yt = torch.tensor(DOC_LOGITS), torch.tensor(DOC_LABELS)
    torch.testing.assert_close(a.loss(xt, yt), b.loss(xt, yt))
    assert a.loss(xt, yt).item() == pytest.approx(a.loss(DOC_LOGITS, DOC_LABELS), rel=1e-6)
    assert a.metrics(DOC_LOGITS, DOC_LABELS) == b.metrics(DOC_LOGITS, DOC_LABELS)
    plain = MultiLabelHead(2).metrics(DOC_LOGITS, DOC_LABELS)["average_loss"]
    assert a.metrics(DOC_LOGITS, DOC_LABELS)["average_loss"] != pytest.approx(plain)


# --------------------------------------------------------------------- metrics
def test_every_metric_key_by_hand() -> None:
    """Three examples, three classes, weights, two thresholds, two per-class classes."""
    x = np.array([[2.0, -1.0, 0.5], [-0.5, 1.0, -2.0], [0.3, 0.2, 3.0]])
    y = np.array([[1, 0, 0], [0, 1, 1], [1, 0, 1]], dtype=bool)
    w = np.array([1.0, 2.0, 0.5])
    head = MultiLabelHead(
        3,
        weight_column="w",
        thresholds=[0.5, 0.6],
        label_vocabulary=["a", "b", "c"],
        classes_for_class_based_metrics=["c", "a"],
        name="h",
    )
    m = head.metrics(x, y, {"w": w})
    assert list(m) == [
        "average_loss/h",
        "auc/h",
        "auc_precision_recall/h",
        "accuracy/positive_threshold_0.5/h",
        "precision/positive_threshold_0.5/h",
        "recall/positive_threshold_0.5/h",
        "accuracy/positive_threshold_0.6/h",
        "precision/positive_threshold_0.6/h",
        "recall/positive_threshold_0.6/h",
        "probability_mean/c/h",
        "auc/c/h",
        "auc_precision_recall/c/h",
        "probability_mean/a/h",
        "auc/a/h",
        "auc_precision_recall/a/h",
    ]
    p = 1 / (1 + np.exp(-x))
    per = (np.maximum(x, 0) - x * y + np.log1p(np.exp(-np.abs(x)))).mean(axis=1)
    assert m["average_loss/h"] == pytest.approx(w @ per / w.sum(), rel=1e-12)
    W = np.broadcast_to(w[:, None], y.shape)
    for t in (0.5, 0.6):
        pred = p > t
        tp, fp = (W * (pred & y)).sum(), (W * (pred & ~y)).sum()
        fn = (W * (~pred & y)).sum()
        assert m[f"accuracy/positive_threshold_{t}/h"] == pytest.approx(
            (W * (pred == y)).sum() / W.sum()
        )
        assert m[f"precision/positive_threshold_{t}/h"] == pytest.approx(tp / (tp + fp))
        assert m[f"recall/positive_threshold_{t}/h"] == pytest.approx(tp / (tp + fn))
    assert m["probability_mean/c/h"] == pytest.approx(w @ p[:, 2] / w.sum(), rel=1e-12)
    assert m["probability_mean/a/h"] == pytest.approx(w @ p[:, 0] / w.sum(), rel=1e-12)
    # every score in its own TF bucket: TF's binned AUC is the exact weighted AUC here
    assert m["auc/h"] == pytest.approx(roc_auc_score(y.ravel(), p.ravel(), sample_weight=W.ravel()))
    assert m["auc/c/h"] == pytest.approx(roc_auc_score(y[:, 2], p[:, 2], sample_weight=w))
    assert m["auc/a/h"] == pytest.approx(roc_auc_score(y[:, 0], p[:, 0], sample_weight=w))
    # a class without negatives: TF's divide_no_nan makes its ROC AUC 0
    y[1, 0] = True
    assert head.metrics(x, y, {"w": w})["auc/a/h"] == 0.0


def test_pr_auc_by_hand() -> None:
    """One positive below one negative: TF's interpolated PR AUC is 1 - ln 2."""
    head = MultiLabelHead(2, classes_for_class_based_metrics=[0])
    x = np.array([[np.log(0.2 / 0.8), 0.0], [np.log(0.9 / 0.1), 0.0]])
    y = np.array([[1, 0], [0, 0]])
    m = head.metrics(x, y)
    assert m["auc_precision_recall/class0"] == pytest.approx(1 - math.log(2), abs=1e-12)
    assert m["auc/class0"] == 0.0
    m = head.metrics(x, 1 - y)  # perfect ranking
    assert m["auc_precision_recall/class0"] == pytest.approx(1.0)
    assert m["auc/class0"] == pytest.approx(1.0)


def test_undefined_metrics_are_zero_as_in_tf() -> None:
    head = MultiLabelHead(2, thresholds=[0.5], weight_column="w")
    m = head.metrics(DOC_LOGITS, DOC_LABELS, {"w": [0.0, 0.0]})
    assert set(m.values()) == {0.0}
    m = head.metrics(np.full((2, 2), -3.0), np.zeros((2, 2)), {"w": [1.0, 1.0]})
    assert m["auc"] == 0.0 and m["precision/positive_threshold_0.5"] == 0.0
    assert m["accuracy/positive_threshold_0.5"] == 1.0


@pytest.mark.parametrize(
    ("threshold", "suffix"),
    [(0.5, "0.5"), (0.25, "0.25"), (0.1234567, "0.123457"), (1e-5, "1e-05"), (0.9999999, "1")],
)
def test_threshold_keys_are_formatted_like_tf(threshold: float, suffix: str) -> None:
    head = MultiLabelHead(2, thresholds=[threshold], name="x")
    keys = list(head.metrics(DOC_LOGITS, DOC_LABELS))
    assert f"accuracy/positive_threshold_{suffix}/x" in keys
    assert all(k.endswith("/x") for k in keys)


def test_extra_metrics_against_sklearn(yeast_scored: Any) -> None:
    s = yeast_scored
    x = np.log(s.scores / (1 - s.scores))
    head = MultiLabelHead(len(s.labels), weight_column="w")
    m = head.metrics(x, s.y, {"w": s.weights}, extra=True)
    pred = s.scores > 0.5
    kw = {"sample_weight": s.weights}
    assert m["f1/micro"] == pytest.approx(f1_score(s.y, pred, average="micro", **kw), rel=1e-9)
    assert m["f1/macro"] == pytest.approx(f1_score(s.y, pred, average="macro", **kw), rel=1e-9)
    assert m["hamming_loss"] == pytest.approx(hamming_loss(s.y, pred, **kw), rel=1e-9)
    assert m["subset_accuracy"] == pytest.approx(accuracy_score(s.y, pred, **kw), rel=1e-9)
    for avg in ("micro", "macro"):
        want = roc_auc_score(s.y, s.scores, average=avg, **kw)
        assert m[f"auc_exact/{avg}"] == pytest.approx(want, rel=1e-9)
    # TF's binned pooled AUC is close to the exact pooled one
    assert m["auc"] == pytest.approx(m["auc_exact/micro"], abs=2e-3)
    # the TF keys are unchanged by extra=True
    plain = head.metrics(x, s.y, {"w": s.weights})
    assert {k: m[k] for k in plain} == plain


# ----------------------------------------------------------------- predictions
def test_predictions() -> None:
    head = MultiLabelHead(3, label_vocabulary=["a", "b", "c"], decision_threshold=[0.5, 0.9, 0.1])
    x = np.array([[0.0, 1.0, -1.0], [2.0, 3.0, -3.0]])
    out = head.predictions(x)
    assert list(out) == ["logits", "probabilities", "classes", "predicted_labels"]
    np.testing.assert_allclose(out["probabilities"], 1 / (1 + np.exp(-x)), rtol=1e-15)
    np.testing.assert_array_equal(out["classes"], [["a", "b", "c"], ["a", "b", "c"]])
    # sigmoid(0) = 0.5 is not above 0.5: positive means strictly above, as TF compares
    np.testing.assert_array_equal(
        out["predicted_labels"], [[False, False, True], [True, True, False]]
    )
    assert head.predictions(x, threshold=0.6)["predicted_labels"].tolist() == [
        [False, True, False],
        [True, True, False],
    ]
    assert list(head.predictions(x, keys=["classes"])) == ["classes"]
    with pytest.raises(InvalidInputError, match=r"^keys: .*got 'class_ids'"):
        head.predictions(x, keys=["class_ids"])
    # TF tiles the names over logits.shape[0] rows, whatever the rank
    rank3 = MultiLabelHead(2).predictions(np.zeros((4, 3, 2)))
    assert rank3["classes"].shape == (4, 2) and rank3["classes"][0].tolist() == ["0", "1"]
    assert rank3["probabilities"].shape == (4, 3, 2)


def test_summary_is_the_monitor_baseline() -> None:
    rng = np.random.default_rng(0)
    x, y, w = rng.normal(size=(200, 4)), rng.random((200, 4)) < 0.3, rng.uniform(0, 2, 200)
    head = MultiLabelHead(4, weight_column="w", thresholds=[0.3], decision_threshold=0.4)
    summary = head.summary(x, y, {"w": w})
    assert isinstance(summary, HeadSummary)
    p = 1 / (1 + np.exp(-x))
    space = LabelSpace.range(4)
    want = ScoreSketch.from_arrays(space, p, y, weights=w, thresholds=[0.3, 0.4], engine="numpy")
    assert summary.sketch.labels == space and summary.sketch.bins == 200
    np.testing.assert_allclose(summary.sketch.counts, want.counts)
    samples = SampleStats.from_arrays(space, p, y, thresholds=0.4, weights=w)
    assert summary.samples.subset_accuracy() == pytest.approx(samples.subset_accuracy())
    assert summary.samples.hamming_loss() == pytest.approx(samples.hamming_loss())


def test_tune_thresholds_then_use_them() -> None:
    rng = np.random.default_rng(1)
    y = rng.random((300, 3)) < [0.1, 0.3, 0.6]
    x = rng.normal(size=(300, 3)) + 1.5 * y - 1.0
    head = MultiLabelHead(3)
    t = head.tune_thresholds(x, y, objective="f1")
    tuned = head.with_decision_threshold(t)
    np.testing.assert_array_equal(tuned.decision_threshold, t)
    pred = tuned.predictions(x)["predicted_labels"]
    f1_tuned = f1_score(y, pred, average=None)
    f1_default = f1_score(y, head.predictions(x)["predicted_labels"], average=None)
    assert np.all(f1_tuned >= f1_default - 1e-12)
    assert tuned.metrics(x, y, extra=True)["f1/macro"] == pytest.approx(f1_tuned.mean())


def test_input_errors() -> None:
    head = MultiLabelHead(2, weight_column="w")
    ok = {"w": [1.0, 1.0]}
    with pytest.raises(InvalidInputError, match=r"^logits: .*got \(2, 3\)"):
        head.loss(np.zeros((2, 3)), DOC_LABELS, ok)
    with pytest.raises(InvalidInputError, match=r"^logits: .*single example"):
        head.loss(np.zeros(2), [[1, 0]], ok)
    with pytest.raises(InvalidInputError, match=r"^features: .*weight_column 'w'.*got 'None'"):
        head.loss(DOC_LOGITS, DOC_LABELS)
    with pytest.raises(InvalidInputError, match=r"^features\['w'\]: .*got \(3,\)"):
        head.loss(DOC_LOGITS, DOC_LABELS, {"w": [1.0, 2.0, 3.0]})
    with pytest.raises(
        InvalidInputError, match=r"^features\['w'\]: expected finite weights >= 0, got -1.0"
    ):
        head.loss(DOC_LOGITS, DOC_LABELS, {"w": [1.0, -1.0]})
    with pytest.raises(
        InvalidInputError, match=r"^logits row 0, label '1': expected finite numbers.*got nan"
    ):
        head.metrics(np.array([[0.0, np.nan], [0.0, 0.0]]), DOC_LABELS, ok)


def test_sparse_labels_class_is_the_tf_triple() -> None:
    sp = SparseLabels([[0, 0], [1, 0], [1, 1]], [1, 0, 1], [2, 2])
    head = MultiLabelHead(2)
    assert head.loss(DOC_LOGITS, sp) == pytest.approx(head.loss(DOC_LOGITS, [[0, 1], [1, 1]]))
    assert "nnz=3" in repr(sp)
