"""TensorFlow's own ``tf.estimator.MultiLabelHead`` as an oracle for labelwatch's tests.

Run with the oracle's interpreter (``tools/tf_oracle/setup.sh`` creates it)::

    .venv-tf/bin/python tools/tf_oracle/oracle.py < cases.json > results.json

Input: ``{"cases": [case, ...]}``; a case is::

    {"id": "any string",
     "head": {"n_classes": 3, "weight_column": "w", "thresholds": [0.5],
              "label_vocabulary": [...], "loss_reduction": "sum_over_batch_size",
              "classes_for_class_based_metrics": [...], "name": "h",
              "loss_fn": "squared"},                 # a loss named in LOSS_FNS below
     "batches": [{"logits": [[...]],
                  "labels": {"dense": [[...]]}       # or {"sparse": {"indices": [[...]],
                                                     #     "values": [...], "dense_shape": [...]}}
                  "features": {"w": [...]},
                  "regularization_losses": [0.5]}]}  # optional

Output: ``{"tf_version": ..., "results": [result, ...]}``, one result per case, in order:
``{"id", "loss": [per batch], "unreduced_loss": [per batch, nested], "metrics": {key:
value after updating with every batch}, "predictions": [per batch {"logits",
"probabilities", "classes"}]}``, or ``{"id", "error": {"stage", "type", "message"}}``
when TF raises (``stage`` is "init", "loss", "metrics" or "predictions").
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")  # plain float32 kernels, reproducible

import numpy as np
import tensorflow as tf


def _squared(labels: Any, logits: Any) -> Any:
    """A custom loss_fn: mean squared error between labels and sigmoid(logits)."""
    diff = tf.cast(labels, tf.float32) - tf.math.sigmoid(logits)
    return tf.reduce_mean(tf.square(diff), axis=-1, keepdims=True)


def _weighted_by_feature(labels: Any, logits: Any, features: Any) -> Any:
    """A custom loss_fn using features: sigmoid cross-entropy times features['scale']."""
    ce = tf.nn.sigmoid_cross_entropy_with_logits(labels=tf.cast(labels, tf.float32), logits=logits)
    scale = tf.cast(features["scale"], tf.float32)
    return tf.reduce_mean(ce, axis=-1, keepdims=True) * tf.reshape(scale, [-1, 1])


def _bad_args(labels: Any, logits: Any, foo: Any) -> Any:  # pragma: no cover - never called
    """A loss_fn with an argument TF does not allow (init raises)."""
    return labels


LOSS_FNS = {
    "squared": _squared,
    "weighted_by_feature": _weighted_by_feature,
    "bad_args": _bad_args,
}


def _labels(spec: dict[str, Any]) -> Any:
    if "sparse" in spec:
        sp = spec["sparse"]
        values = sp["values"]
        is_str = bool(values) and isinstance(values[0], str)
        return tf.sparse.SparseTensor(
            indices=tf.constant(
                np.asarray(sp["indices"], dtype=np.int64).reshape(-1, len(sp["dense_shape"]))
            ),
            values=tf.constant(values, dtype=tf.string if is_str else tf.int64),
            dense_shape=tf.constant(sp["dense_shape"], dtype=tf.int64),
        )
    return tf.constant(np.asarray(spec["dense"], dtype=np.int64))


def _features(spec: dict[str, Any] | None) -> dict[str, Any]:
    return {k: tf.constant(np.asarray(v, dtype=np.float32)) for k, v in (spec or {}).items()}


def _tolist(t: Any) -> Any:
    a = t.numpy() if hasattr(t, "numpy") else np.asarray(t)
    if a.dtype.kind in "SO":
        return np.vectorize(lambda b: b.decode() if isinstance(b, bytes) else str(b))(a).tolist()
    return a.astype(np.float64).tolist()


def run_case(case: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"id": case.get("id")}
    stage = "init"
    try:
        kwargs = dict(case["head"])
        if "loss_fn" in kwargs:
            kwargs["loss_fn"] = LOSS_FNS[kwargs["loss_fn"]]
        head = tf.estimator.MultiLabelHead(**kwargs)
        eval_metrics = head.metrics(
            regularization_losses=[]
            if any("regularization_losses" in b for b in case["batches"])
            else None
        )
        out["loss"], out["unreduced_loss"], out["predictions"] = [], [], []
        for batch in case["batches"]:
            logits = tf.constant(np.asarray(batch["logits"], dtype=np.float32))
            labels = _labels(batch["labels"])
            features = _features(batch.get("features"))
            reg = batch.get("regularization_losses")
            reg_t = [tf.constant(r, dtype=tf.float32) for r in reg] if reg is not None else None
            stage = "loss"
            out["loss"].append(
                float(head.loss(labels, logits, features=features, regularization_losses=reg_t))
            )
            processed = head._processed_labels(tf.cast(logits, tf.float32), labels)
            unreduced, _ = head._unweighted_loss_and_weights(
                tf.cast(logits, tf.float32), processed, features
            )
            out["unreduced_loss"].append(_tolist(unreduced))
            stage = "metrics"
            eval_metrics = head.update_metrics(
                eval_metrics, features, logits, labels, regularization_losses=reg_t
            )
            stage = "predictions"
            preds = head.predictions(logits)
            out["predictions"].append({k: _tolist(v) for k, v in preds.items()})
        out["metrics"] = {k: float(m.result().numpy()) for k, m in eval_metrics.items()}
    except Exception as exc:  # the oracle reports TF's errors as data
        out = {
            "id": case.get("id"),
            "error": {"stage": stage, "type": type(exc).__name__, "message": str(exc)},
        }
    return out


def main() -> None:
    cases = json.load(sys.stdin)["cases"]
    results = [run_case(c) for c in cases]
    json.dump({"tf_version": tf.__version__, "results": results}, sys.stdout)


if __name__ == "__main__":
    main()
