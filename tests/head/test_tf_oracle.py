"""labelwatch's MultiLabelHead against TensorFlow's own, case by case (see tf_cases.py).

TF computes in float32, labelwatch in the logits' dtype with float64 sums, so values
agree to float32 precision: loss and probability within 2e-6 relative, metric values
within 1e-5 absolute.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from labelwatch import InvalidInputError
from labelwatch.head import MultiLabelHead
from tests.head import tf_cases

CASES = {c["id"]: c for c in tf_cases.build_cases()}
OK = [i for i in CASES if not i.startswith("err_")]
ERR = [i for i in CASES if i.startswith("err_")]

# the argument each error must name (our message), by case
ERR_FIELD = {
    "err_n_classes_1": "n_classes",
    "err_threshold_0": "thresholds",
    "err_threshold_1": "thresholds",
    "err_vocab_length": "label_vocabulary",
    "err_vocab_type": "label_vocabulary",
    "err_reduction_none": "loss_reduction",
    "err_reduction_bogus": "loss_reduction",
    "err_loss_fn_args": "loss_fn",
    "err_class_id_range": "classes_for_class_based_metrics",
    "err_class_negative": "classes_for_class_based_metrics",
    "err_class_names_no_vocab": "classes_for_class_based_metrics",
    "err_dense_label_2": "labels",
    "err_dense_label_negative": "labels",
    "err_dense_label_shape": "labels",
    "err_sparse_id_range": "labels",
    "err_sparse_unknown_name": "labels",
    "err_sparse_batch_shape": "labels",
    "err_weights_shape": "features['w']",
    "err_weights_missing": "features",
    "err_logits_dim": "logits",
}


def _ours(case: dict[str, Any]) -> dict[str, Any]:
    head = MultiLabelHead(**tf_cases.head_kwargs(case))
    state = head.metric_state()
    out: dict[str, Any] = {"loss": [], "unreduced_loss": [], "predictions": []}
    for batch in case["batches"]:
        x, labels, features = tf_cases.batch_inputs(batch)
        reg = batch.get("regularization_losses")
        out["loss"].append(head.loss(x, labels, features, regularization_losses=reg))
        out["unreduced_loss"].append(head.unreduced_loss(x, labels, features))
        state.update(x, labels, features, regularization_losses=reg)
        out["predictions"].append(head.predictions(x))
        if len(case["batches"]) == 1:
            out["one_shot"] = head.metrics(x, labels, features, regularization_losses=reg)
    out["metrics"] = state.result()
    return out


def test_every_error_case_names_its_argument() -> None:
    assert set(ERR) == set(ERR_FIELD)


@pytest.mark.parametrize("case_id", OK)
def test_loss_and_unreduced_loss_match_tf(case_id: str, tf_results: dict[str, Any]) -> None:
    tf, ours = tf_results[case_id], _ours(CASES[case_id])
    assert "error" not in tf, tf.get("error")
    np.testing.assert_allclose(ours["loss"], tf["loss"], rtol=2e-6, atol=1e-6)
    for got, want in zip(ours["unreduced_loss"], tf["unreduced_loss"], strict=True):
        assert got.shape == np.shape(want)
        np.testing.assert_allclose(got, want, rtol=2e-6, atol=1e-6)


@pytest.mark.parametrize("case_id", [i for i in OK if "loss_fn" not in CASES[i]["head"]])
def test_torch_loss_and_metrics_match_tf(case_id: str, tf_results: dict[str, Any]) -> None:
    """The same cases with torch logits (and labels as tensors where dense)."""
    torch = pytest.importorskip("torch")
    case, tf = CASES[case_id], tf_results[case_id]
    head = MultiLabelHead(**tf_cases.head_kwargs(case))
    state = head.metric_state()
    for batch, want in zip(case["batches"], tf["loss"], strict=True):
        x, labels, features = tf_cases.batch_inputs(batch)
        xt = torch.tensor(x, requires_grad=True)
        yt = torch.tensor(labels) if isinstance(labels, np.ndarray) else labels
        ft = None if features is None else {k: torch.tensor(v) for k, v in features.items()}
        reg = batch.get("regularization_losses")
        loss = head.loss(xt, yt, ft, regularization_losses=reg)
        loss.backward()
        assert loss.item() == pytest.approx(want, rel=2e-6, abs=1e-6)
        state.update(xt, yt, ft, regularization_losses=reg)
    for key, want in tf["metrics"].items():
        assert state.result()[key] == pytest.approx(want, abs=1e-5), key


@pytest.mark.parametrize("case_id", OK)
def test_metric_keys_and_values_match_tf(case_id: str, tf_results: dict[str, Any]) -> None:
    tf, ours = tf_results[case_id], _ours(CASES[case_id])
    assert list(ours["metrics"]) == list(tf["metrics"])  # the same keys, in TF's order
    for key, want in tf["metrics"].items():
        assert ours["metrics"][key] == pytest.approx(want, abs=1e-5), key
    if "one_shot" in ours:  # one-shot metrics() and the streaming state agree exactly
        assert ours["one_shot"] == ours["metrics"]


@pytest.mark.parametrize("case_id", OK)
def test_predictions_match_tf(case_id: str, tf_results: dict[str, Any]) -> None:
    tf, ours = tf_results[case_id], _ours(CASES[case_id])
    for got, want in zip(ours["predictions"], tf["predictions"], strict=True):
        np.testing.assert_array_equal(got["logits"], np.asarray(want["logits"], np.float32))
        np.testing.assert_allclose(
            got["probabilities"], want["probabilities"], rtol=1e-6, atol=1e-7
        )
        np.testing.assert_array_equal(got["classes"], np.asarray(want["classes"]))


@pytest.mark.parametrize("case_id", ERR)
def test_errors_where_tf_raises(case_id: str, tf_results: dict[str, Any]) -> None:
    tf = tf_results[case_id]
    assert "error" in tf, f"TF accepted {case_id}"
    case = CASES[case_id]
    field = ERR_FIELD[case_id]
    with pytest.raises(InvalidInputError) as info:
        head = MultiLabelHead(**tf_cases.head_kwargs(case))
        assert tf["error"]["stage"] != "init", "TF raised in its constructor, we did not"
        x, labels, features = tf_cases.batch_inputs(case["batches"][0])
        head.loss(x, labels, features)
    assert info.value.field == field
    assert str(info.value).startswith(field)
    # the metrics path rejects the same input
    if tf["error"]["stage"] != "init":
        with pytest.raises(InvalidInputError):
            head.metrics(x, labels, features)
