"""The cases run through TensorFlow's own MultiLabelHead (tools/tf_oracle/oracle.py) and
through labelwatch's, in one subprocess call for the whole session.

A case is JSON-able: ``head`` (TF's constructor arguments; ``loss_fn`` by name, see
``LOSS_FNS``) and ``batches`` of float32 logits, labels (``{"dense": ...}`` or
``{"sparse": {"indices", "values", "dense_shape"}}``) and features.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from labelwatch.head import SparseLabels


# ------------------------------------------------- the custom loss_fns, both sides
def squared(labels: Any, logits: Any) -> Any:
    """Mean squared error between labels and sigmoid(logits) (oracle: ``squared``)."""
    p = 1 / (1 + np.exp(-np.asarray(logits, dtype=np.float64)))
    return np.mean((np.asarray(labels) - p) ** 2, axis=-1, keepdims=True)


def weighted_by_feature(labels: Any, logits: Any, features: Any) -> Any:
    """Cross-entropy times features['scale'] (oracle: ``weighted_by_feature``)."""
    x = np.asarray(logits, dtype=np.float64)
    z = np.asarray(labels, dtype=np.float64)
    ce = np.maximum(x, 0) - x * z + np.log1p(np.exp(-np.abs(x)))
    return ce.mean(axis=-1, keepdims=True) * np.asarray(features["scale"]).reshape(-1, 1)


def bad_args(labels: Any, logits: Any, foo: Any) -> Any:  # pragma: no cover - never called
    return labels


LOSS_FNS = {"squared": squared, "weighted_by_feature": weighted_by_feature, "bad_args": bad_args}


# ------------------------------------------------------------------- building
def _sparse_from_dense(y: np.ndarray) -> dict[str, Any]:
    """The [D0, ..., DN, ?] int SparseTensor of class ids of a multi-hot array."""
    flat = y.reshape(-1, y.shape[-1])
    indices, values, width = [], [], 0
    for r, row in enumerate(flat):
        ids = np.flatnonzero(row)
        pos = np.unravel_index(r, y.shape[:-1])
        for j, c in enumerate(ids):
            indices.append([*map(int, pos), j])
            values.append(int(c))
        width = max(width, len(ids))
    return {"indices": indices, "values": values, "dense_shape": [*y.shape[:-1], width]}


def _random(seed: int, shape: tuple[int, ...], scale: float = 2.0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.random(shape) < rng.uniform(0.1, 0.6, size=shape[-1])
    x = (rng.normal(size=shape) * scale + 1.5 * y).astype(np.float32)
    return x, y


def _batch(
    x: np.ndarray, y: np.ndarray | dict[str, Any], features: dict[str, Any] | None = None, **kw: Any
) -> dict[str, Any]:
    labels = {"sparse": y} if isinstance(y, dict) else {"dense": y.astype(int).tolist()}
    out: dict[str, Any] = {"logits": x.tolist(), "labels": labels, **kw}
    if features is not None:
        out["features"] = {k: np.asarray(v).tolist() for k, v in features.items()}
    return out


def build_cases() -> list[dict[str, Any]]:
    """Every oracle case, deterministic."""
    cases: list[dict[str, Any]] = []

    def add(id_: str, head: dict[str, Any], batches: list[dict[str, Any]]) -> None:
        cases.append({"id": id_, "head": head, "batches": batches})

    # TF's documented example: loss 1.13, auc 0.33, auc_precision_recall 0.77
    doc_x = np.array([[-1.0, 1.0], [-1.5, 1.5]], dtype=np.float32)
    doc_y = np.array([[1, 0], [1, 1]])
    add("doc", {"n_classes": 2}, [_batch(doc_x, doc_y, {"x": [[41], [42]]})])
    add("doc_sum", {"n_classes": 2, "loss_reduction": "sum"}, [_batch(doc_x, doc_y)])

    x, y = _random(1, (40, 5))
    w = np.random.default_rng(11).uniform(0.0, 3.0, size=40).round(3)
    add(
        "weighted_thresholds_classes_name",
        {
            "n_classes": 5,
            "weight_column": "w",
            "thresholds": [0.3, 0.5, 0.7, 0.1234567, 1e-05],
            "classes_for_class_based_metrics": [0, 3, 4],
            "name": "head1",
        },
        [_batch(x, y, {"w": w})],
    )
    add(
        "weights_column_shape_sum",
        {"n_classes": 5, "weight_column": "w", "loss_reduction": "sum", "thresholds": [0.5]},
        [_batch(x, y, {"w": w.reshape(-1, 1)})],
    )
    add(
        "sparse_int_labels",
        {"n_classes": 5, "thresholds": [0.5], "classes_for_class_based_metrics": [1]},
        [_batch(x, _sparse_from_dense(y))],
    )
    vocab = ["action", "drama", "horror", "comedy", "war"]
    sp = _sparse_from_dense(y)
    sp_names = {**sp, "values": [vocab[v] for v in sp["values"]]}
    add(
        "vocabulary_string_sparse",
        {
            "n_classes": 5,
            "label_vocabulary": vocab,
            "classes_for_class_based_metrics": ["drama", "war"],
            "thresholds": [0.4],
        },
        [_batch(x, sp_names)],
    )
    add(
        "vocabulary_dense_labels",
        {"n_classes": 5, "label_vocabulary": vocab, "classes_for_class_based_metrics": [2]},
        [_batch(x, y)],
    )
    x3, y3 = _random(2, (4, 3, 3))
    w3 = np.random.default_rng(12).uniform(0.5, 2.0, size=(4, 3)).round(3)
    add(
        "rank3_weights",
        {
            "n_classes": 3,
            "weight_column": "w",
            "thresholds": [0.5],
            "classes_for_class_based_metrics": [1],
        },
        [_batch(x3, y3, {"w": w3})],
    )
    add(
        "rank3_sparse_weights_trailing_1",
        {"n_classes": 3, "weight_column": "w", "thresholds": [0.25]},
        [_batch(x3, _sparse_from_dense(y3), {"w": w3[..., None]})],
    )
    xn, yn = _random(3, (30, 4))
    yn[:, 2] = False  # a class without positives: TF's per-class AUC is 0
    add(
        "class_without_positives",
        {"n_classes": 4, "thresholds": [0.5], "classes_for_class_based_metrics": [2]},
        [_batch(xn, yn)],
    )
    add(
        "all_negative",
        {"n_classes": 3, "thresholds": [0.5], "classes_for_class_based_metrics": [0]},
        [_batch(xn[:, :3], np.zeros((30, 3), dtype=bool))],
    )
    add(
        "zero_weights",
        {
            "n_classes": 4,
            "weight_column": "w",
            "thresholds": [0.5],
            "classes_for_class_based_metrics": [0],
        },
        [_batch(xn, yn, {"w": np.zeros(30)})],
    )
    xe = np.array([[100, -100, 0], [-100, 100, 30], [20, -20, -100]], dtype=np.float32)
    ye = np.array([[1, 0, 1], [1, 1, 0], [0, 0, 1]])
    add("extreme_logits", {"n_classes": 3, "thresholds": [0.5]}, [_batch(xe, ye)])
    batches = []
    for seed in range(3):
        xb, yb = _random(20 + seed, (25 + 10 * seed, 6))
        wb = np.random.default_rng(30 + seed).uniform(0, 2, size=len(xb)).round(3)
        batches.append(_batch(xb, yb, {"w": wb}))
    add(
        "three_batches",
        {
            "n_classes": 6,
            "weight_column": "w",
            "thresholds": [0.2, 0.5],
            "classes_for_class_based_metrics": [0, 5],
            "name": "eval",
        },
        batches,
    )
    add(
        "regularization",
        {"n_classes": 5, "thresholds": [0.5]},
        [
            _batch(x, y, regularization_losses=[0.25, 0.5]),
            _batch(x[:10], y[:10], regularization_losses=[1.0]),
        ],
    )
    add(
        "loss_fn_squared",
        {"n_classes": 5, "loss_fn": "squared", "thresholds": [0.5]},
        [_batch(x, y)],
    )
    scale = np.random.default_rng(13).uniform(0.5, 2, size=40).round(3)
    add(
        "loss_fn_features",
        {"n_classes": 5, "loss_fn": "weighted_by_feature", "weight_column": "w"},
        [_batch(x, y, {"w": w, "scale": scale})],
    )
    xl, yl = _random(5, (300, 8), scale=3.0)
    add(
        "larger",
        {
            "n_classes": 8,
            "thresholds": [0.1, 0.5, 0.9],
            "classes_for_class_based_metrics": list(range(8)),
        },
        [_batch(xl, yl)],
    )

    # errors: TF raises, so must labelwatch (and say which argument)
    ok_batch = [_batch(doc_x, doc_y)]
    add("err_n_classes_1", {"n_classes": 1}, ok_batch)
    add("err_threshold_0", {"n_classes": 2, "thresholds": [0.0]}, ok_batch)
    add("err_threshold_1", {"n_classes": 2, "thresholds": [0.5, 1.0]}, ok_batch)
    add("err_vocab_length", {"n_classes": 2, "label_vocabulary": ["a", "b", "c"]}, ok_batch)
    add("err_vocab_type", {"n_classes": 2, "label_vocabulary": "ab"}, ok_batch)
    add("err_reduction_none", {"n_classes": 2, "loss_reduction": "none"}, ok_batch)
    add("err_reduction_bogus", {"n_classes": 2, "loss_reduction": "mean"}, ok_batch)
    add("err_loss_fn_args", {"n_classes": 2, "loss_fn": "bad_args"}, ok_batch)
    add("err_class_id_range", {"n_classes": 2, "classes_for_class_based_metrics": [2]}, ok_batch)
    add("err_class_negative", {"n_classes": 2, "classes_for_class_based_metrics": [-1]}, ok_batch)
    add(
        "err_class_names_no_vocab",
        {"n_classes": 2, "classes_for_class_based_metrics": ["a"]},
        ok_batch,
    )
    add("err_dense_label_2", {"n_classes": 2}, [_batch(doc_x, np.array([[2, 0], [1, 1]]))])
    add("err_dense_label_negative", {"n_classes": 2}, [_batch(doc_x, np.array([[-1, 0], [1, 1]]))])
    add(
        "err_dense_label_shape", {"n_classes": 2}, [_batch(doc_x, np.array([[1, 0, 1], [1, 1, 0]]))]
    )
    add(
        "err_sparse_id_range",
        {"n_classes": 2},
        [_batch(doc_x, {"indices": [[0, 0], [1, 0]], "values": [0, 2], "dense_shape": [2, 1]})],
    )
    add(
        "err_sparse_unknown_name",
        {"n_classes": 2, "label_vocabulary": ["a", "b"]},
        [
            _batch(
                doc_x, {"indices": [[0, 0], [1, 0]], "values": ["a", "zz"], "dense_shape": [2, 1]}
            )
        ],
    )
    add(
        "err_sparse_batch_shape",
        {"n_classes": 2},
        [_batch(doc_x, {"indices": [[0, 0], [2, 0]], "values": [0, 1], "dense_shape": [3, 1]})],
    )
    add(
        "err_weights_shape",
        {"n_classes": 2, "weight_column": "w"},
        [_batch(doc_x, doc_y, {"w": [1.0, 2.0, 3.0]})],
    )
    add(
        "err_weights_missing",
        {"n_classes": 2, "weight_column": "w"},
        [_batch(doc_x, doc_y, {"x": [1.0, 2.0]})],
    )
    add("err_logits_dim", {"n_classes": 3}, [_batch(doc_x, np.array([[1, 0, 0], [1, 1, 0]]))])
    return cases


def to_json(cases: list[dict[str, Any]]) -> dict[str, Any]:
    """The oracle's stdin document."""
    return {"cases": cases}


# ------------------------------------------------------------- our side of a case
def head_kwargs(case: dict[str, Any]) -> dict[str, Any]:
    kwargs = dict(case["head"])
    if "loss_fn" in kwargs:
        kwargs["loss_fn"] = LOSS_FNS[kwargs["loss_fn"]]
    return kwargs


def batch_inputs(batch: dict[str, Any]) -> tuple[np.ndarray, Any, dict[str, Any] | None]:
    """(logits float32, labels as labelwatch takes them, features) of a batch."""
    x = np.asarray(batch["logits"], dtype=np.float32)
    spec = batch["labels"]
    if "sparse" in spec:
        sp = spec["sparse"]
        labels: Any = SparseLabels(
            np.asarray(sp["indices"], dtype=np.int64).reshape(-1, len(sp["dense_shape"])),
            np.asarray(sp["values"]) if sp["values"] else np.zeros(0, dtype=np.int64),
            sp["dense_shape"],
        )
    else:
        labels = np.asarray(spec["dense"])
    features = batch.get("features")
    if features is not None:
        features = {k: np.asarray(v, dtype=np.float32) for k, v in features.items()}
    return x, labels, features
