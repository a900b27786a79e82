"""Every argument of MultiLabelHead is validated as TF 2 does it; each error names the
argument, what was expected and what came (``labelwatch.head._config``)."""

from __future__ import annotations

from typing import Any

import pytest

from labelwatch import InvalidInputError
from labelwatch.head import MultiLabelHead


@pytest.mark.parametrize(
    ("kwargs", "field", "pattern"),
    [
        ({"n_classes": 1}, "n_classes", r"an int > 1 .*got 1 \(int\)"),
        ({"n_classes": 0}, "n_classes", "got 0"),
        ({"n_classes": "3"}, "n_classes", "got '3' \\(str\\)"),
        ({"n_classes": True}, "n_classes", "got True"),
        ({"n_classes": 2.0}, "n_classes", "got 2.0"),
        ({"n_classes": 2, "thresholds": [0.0]}, "thresholds", r"open interval \(0, 1\), got 0.0"),
        ({"n_classes": 2, "thresholds": [0.5, 1]}, "thresholds", "got 1 .*at position 1"),
        ({"n_classes": 2, "thresholds": [-0.1]}, "thresholds", "got -0.1"),
        ({"n_classes": 2, "thresholds": ["0.5"]}, "thresholds", "got '0.5'"),
        ({"n_classes": 2, "thresholds": 0.5}, "thresholds", "iterable"),
        ({"n_classes": 2, "label_vocabulary": "ab"}, "label_vocabulary", "list or tuple"),
        (
            {"n_classes": 2, "label_vocabulary": ["a"]},
            "label_vocabulary",
            "n_classes=2.*got '1 names'",
        ),
        ({"n_classes": 2, "label_vocabulary": ["a", "a"]}, "label_vocabulary", "unique.*got 'a'"),
        ({"n_classes": 2, "label_vocabulary": ["a", 1]}, "label_vocabulary", "strings, got 1"),
        ({"n_classes": 2, "label_vocabulary": ["a", ""]}, "label_vocabulary", "non-empty"),
        (
            {"n_classes": 2, "loss_reduction": "none"},
            "loss_reduction",
            "got 'none'.*unreduced_loss",
        ),
        ({"n_classes": 2, "loss_reduction": "auto"}, "loss_reduction", "'auto' means"),
        ({"n_classes": 2, "loss_reduction": "mean"}, "loss_reduction", "sum_over_batch_size"),
        ({"n_classes": 2, "loss_fn": "hinge"}, "loss_fn", "got 'hinge'"),
        ({"n_classes": 2, "loss_fn": 3}, "loss_fn", "got 3"),
        (
            {"n_classes": 2, "loss_fn": lambda logits: logits},
            "loss_fn",
            "must contain argument: labels",
        ),
        (
            {"n_classes": 2, "loss_fn": lambda labels, logits, foo: 0},
            "loss_fn",
            r"unexpected arguments \['foo'\]",
        ),
        (
            {"n_classes": 2, "classes_for_class_based_metrics": [2]},
            "classes_for_class_based_metrics",
            r"\[0, 1\], got 2",
        ),
        (
            {"n_classes": 2, "classes_for_class_based_metrics": [-1]},
            "classes_for_class_based_metrics",
            "got -1",
        ),
        (
            {"n_classes": 2, "classes_for_class_based_metrics": ["a"]},
            "classes_for_class_based_metrics",
            "label_vocabulary",
        ),
        (
            {
                "n_classes": 2,
                "label_vocabulary": ["ab", "cd"],
                "classes_for_class_based_metrics": ["abc"],
            },
            "classes_for_class_based_metrics",
            "got 'abc'.*did you mean 'ab'",
        ),
        (
            {"n_classes": 2, "classes_for_class_based_metrics": [0, "1"]},
            "classes_for_class_based_metrics",
            "not a mix",
        ),
        ({"n_classes": 2, "weight_column": 3}, "weight_column", "got 3"),
        ({"n_classes": 2, "name": 3}, "name", "got 3"),
        ({"n_classes": 2, "pos_weight": [1.0, 2.0, 3.0]}, "pos_weight", r"\(2,\)"),
        (
            {"n_classes": 2, "pos_weight": [1.0, 0.0]},
            "pos_weight",
            "label .1.: expected finite numbers > 0, got 0.0",
        ),
        (
            {"n_classes": 2, "pos_weight": 2.0, "loss_fn": lambda labels, logits: 0},
            "pos_weight",
            "custom loss_fn",
        ),
        ({"n_classes": 2, "decision_threshold": 1.5}, "decision_threshold", "got 1.5"),
        ({"n_classes": 2, "decision_threshold": [0.5] * 3}, "decision_threshold", r"\(2,\)"),
    ],
)
def test_validation_errors_name_argument_and_value(
    kwargs: dict[str, Any], field: str, pattern: str
) -> None:
    with pytest.raises(ValueError, match=pattern) as info:
        MultiLabelHead(**kwargs)
    assert isinstance(info.value, InvalidInputError)
    assert info.value.field == field
    assert str(info.value).startswith(field)
    assert ": expected " in str(info.value)


def test_valid_configurations() -> None:
    head = MultiLabelHead(
        3,
        thresholds=(0.1, 0.9),
        label_vocabulary=("x", "y", "z"),
        classes_for_class_based_metrics=["z"],
        loss_reduction="sum",
        loss_fn=lambda labels, logits, features, loss_reduction=None: labels[..., :1],
    )
    assert head.classes_for_class_based_metrics == (2,)
    assert head.logits_dimension == head.n_classes == 3
    assert head.label_space.names == ("x", "y", "z")
    assert "n_classes=3" in repr(head)
