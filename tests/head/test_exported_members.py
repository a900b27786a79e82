"""The head package exports exactly its ``__all__``, every name defined in labelwatch.head."""

from __future__ import annotations

import labelwatch.head


def test_head_exports() -> None:
    assert set(labelwatch.head.__all__) == {
        "AsymmetricLoss",
        "BuiltinLoss",
        "FocalLoss",
        "HeadMetricState",
        "HeadSummary",
        "MultiLabelHead",
        "SigmoidCrossEntropy",
        "SparseLabels",
        "tf_pr_auc",
        "tf_roc_auc",
    }
    for name in labelwatch.head.__all__:
        assert getattr(labelwatch.head, name).__module__.startswith("labelwatch.head._")
