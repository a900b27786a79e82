"""The multi-label head: TensorFlow's ``multi_label_head`` semantics on NumPy and PyTorch.

>>> import numpy as np
>>> from labelwatch.head import MultiLabelHead
>>> head = MultiLabelHead(2, thresholds=[0.5])
>>> logits = np.array([[-1.0, 1.0], [-1.5, 1.5]])
>>> round(head.loss(logits, [[1, 0], [1, 1]]), 2)
1.13
>>> sorted(head.metrics(logits, [[1, 0], [1, 1]]))[:3]
['accuracy/positive_threshold_0.5', 'auc', 'auc_precision_recall']
"""

from labelwatch.head._head import HeadSummary, MultiLabelHead
from labelwatch.head._labels import SparseLabels
from labelwatch.head._losses import AsymmetricLoss, BuiltinLoss, FocalLoss, SigmoidCrossEntropy
from labelwatch.head._state import HeadMetricState
from labelwatch.head._tf_metrics import tf_pr_auc, tf_roc_auc

__all__ = [
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
]
