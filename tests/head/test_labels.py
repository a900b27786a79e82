"""Labels in every form give the same multi-hot array; every wrong form says what and where."""

from __future__ import annotations

from collections import namedtuple
from typing import Any

import numpy as np
import pytest
import scipy.sparse
import torch

from labelwatch import InvalidInputError, LabelSpace
from labelwatch.head import MultiLabelHead, SparseLabels
from labelwatch.head._labels import to_multi_hot

VOCAB = ["action", "drama", "horror"]
SPACE = LabelSpace(VOCAB)
DENSE = np.array([[1, 0, 1], [0, 0, 0], [0, 1, 0]], dtype=bool)
Triple = namedtuple("Triple", "indices values dense_shape")


def convert(labels: Any, batch_shape: tuple[int, ...] = (3,), vocabulary: bool = True) -> Any:
    return to_multi_hot(labels, batch_shape, SPACE, vocabulary=vocabulary)


@pytest.mark.parametrize(
    "labels",
    [
        DENSE,
        DENSE.astype(np.int64),
        DENSE.astype(np.float32),
        DENSE.astype(int).tolist(),
        torch.tensor(DENSE),
        torch.tensor(DENSE, dtype=torch.float32),
        torch.tensor(DENSE).to_sparse(),
        scipy.sparse.csr_matrix(DENSE),
        [[0, 2], [], [1]],  # ragged class ids
        [[2, 0], [], [1, 1]],  # order and repeats do not matter
        [["action", "horror"], [], ["drama"]],  # ragged names
        [[b"action", b"horror"], [], [b"drama"]],  # bytes, as TF strings arrive
        [{"action": 1, "horror": 1}, {}, {"drama": 1}],  # dicts of name -> 0/1
        SparseLabels([[0, 0], [0, 1], [2, 0]], [0, 2, 1], [3, 2]),
        SparseLabels([[0, 0], [0, 1], [2, 0]], ["action", "horror", "drama"], [3, 2]),
        SparseLabels([[0, 0], [0, 1], [2, 0]], np.array([b"action", b"horror", b"drama"]), [3, 2]),
        SparseLabels.from_lists([[0, 2], [], [1]]),
        SparseLabels.from_lists([["action", "horror"], [], ["drama"]]),
        Triple(np.array([[0, 0], [0, 1], [2, 0]]), np.array([0, 2, 1]), np.array([3, 2])),
    ],
    ids=lambda v: type(v).__name__,
)
def test_every_form_gives_the_same_multi_hot(labels: Any) -> None:
    np.testing.assert_array_equal(convert(labels), DENSE)


def test_rectangular_int_rows_are_multi_hot_unless_their_width_differs() -> None:
    # width n_classes: multi-hot, as TF reads a dense tensor
    np.testing.assert_array_equal(convert([[1, 0, 1], [0, 0, 0], [0, 1, 0]]), DENSE)
    # any other width: class ids
    np.testing.assert_array_equal(
        convert([[0, 2], [1, 1], [1, 1]]), [[1, 0, 1], [0, 1, 0], [0, 1, 0]]
    )
    np.testing.assert_array_equal(convert([[], [], []]), np.zeros((3, 3), bool))


def test_higher_rank_dense_and_sparse() -> None:
    y = np.zeros((2, 2, 3), dtype=bool)
    y[0, 1, 2] = y[1, 0, 0] = y[1, 0, 1] = True
    np.testing.assert_array_equal(convert(y.astype(int), (2, 2)), y)
    sp = SparseLabels([[0, 1, 0], [1, 0, 0], [1, 0, 1]], [2, 0, 1], [2, 2, 2])
    np.testing.assert_array_equal(convert(sp, (2, 2)), y)
    names = SparseLabels(
        [[0, 1, 0], [1, 0, 0], [1, 0, 1]], ["horror", "action", "drama"], [2, 2, 5]
    )
    np.testing.assert_array_equal(convert(names, (2, 2)), y)


@pytest.mark.parametrize(
    ("labels", "vocabulary", "pattern"),
    [
        (None, True, r"^labels: expected labels of shape \(3, 3\), got None"),
        (np.zeros((3, 2)), True, r"^labels: expected shape \(3, 3\) .*got \(3, 2\)"),
        (np.zeros((2, 3)), True, r"got \(2, 3\)"),
        (np.zeros(3), True, r"got \(3,\).*one 0/1 per class"),
        (
            np.array([[1, 0, 2], [0, 0, 0], [0, 0, 0]]),
            True,
            r"^labels row 0, label 'horror': expected 0 or 1, got 2 \(int\).*lists of ids",
        ),
        (
            np.array([[1, 0, 0], [0, -1, 0], [0, 0, 0]]),
            True,
            r"^labels row 1, label 'drama': expected 0 or 1, got -1",
        ),
        (
            np.array([[1, 0, 0], [0, 0.5, 0], [0, 0, 0]]),
            True,
            r"row 1, label 'drama': expected 0 or 1, got 0.5.*soft labels",
        ),
        (
            np.array([[1, 0, 0], [0, 0, np.nan], [0, 0, 0]]),
            True,
            r"row 1, label 'horror': expected 0 or 1, got nan",
        ),
        ([[0, 3], [], [1]], True, r"^labels row 0: expected a label index in \[0, 3\), got 3"),
        ([[0], [], [-1]], True, r"^labels row 2: .*got -1"),
        (
            [["action"], [], ["comedy"]],
            True,
            r"^labels row 2, label 'comedy': expected one of the 3 label names",
        ),
        ([["acton"], [], []], True, r"did you mean 'action'"),
        ([["action"], [], []], False, r"^labels: .*no label_vocabulary.*label_vocabulary=\["),
        ([[0], [1]], True, r"^labels: expected 3 rows, one per example .*got 2"),
        (np.array([["a", "b", "c"]] * 3), False, r"no label_vocabulary"),
        (
            SparseLabels([[0, 0]], [3], [3, 1]),
            True,
            r"^labels row 0: expected class ids in \[0, 3\), got 3",
        ),
        (
            SparseLabels([[1, 0]], ["comedy"], [3, 1]),
            True,
            r"^labels row 1: .*label_vocabulary, got 'comedy'",
        ),
        (
            SparseLabels([[1, 0]], ["drama"], [3, 1]),
            False,
            r"^labels: expected an integer SparseLabels.*got 'drama'",
        ),
        (
            SparseLabels([[1, 0]], [1.0], [3, 1]),
            True,
            r"^labels: expected SparseLabels values of integer class ids",
        ),
        (
            SparseLabels([[1, 0]], [1], [4, 1]),
            True,
            r"^labels: expected SparseLabels with dense_shape \[3, '\?'\].*got \[4, 1\]",
        ),
        (
            torch.tensor([[1, 0, 2], [0, 0, 0], [0, 0, 0]]),
            True,
            r"row 0, label 'horror': expected 0 or 1, got 2",
        ),
    ],
)
def test_wrong_labels_say_which(labels: Any, vocabulary: bool, pattern: str) -> None:
    with pytest.raises(InvalidInputError, match=pattern):
        convert(labels, vocabulary=vocabulary)


def test_sparse_labels_validation() -> None:
    with pytest.raises(InvalidInputError, match=r"^dense_shape: expected at least 2"):
        SparseLabels([[0]], [1], [3])
    with pytest.raises(
        InvalidInputError, match=r"^indices: expected an int array of shape \(nnz, 2\)"
    ):
        SparseLabels([[0, 0, 0]], [1], [3, 1])
    with pytest.raises(
        InvalidInputError,
        match=r"^indices: expected positions inside dense_shape \[3, 1\], got \[3, 0\]",
    ):
        SparseLabels([[3, 0]], [1], [3, 1])
    with pytest.raises(InvalidInputError, match=r"^values: expected a 1-D array"):
        SparseLabels([[0, 0]], [[1]], [3, 1])
    with pytest.raises(
        InvalidInputError, match=r"^labels row 1: expected a list of class ids or names, got .ab."
    ):
        SparseLabels.from_lists([[0], "ab"])
    empty = SparseLabels.from_lists([[], []])
    assert empty.dense_shape == (2, 0) and len(empty.values) == 0


def test_head_accepts_torch_labels_with_numpy_logits() -> None:
    head = MultiLabelHead(3, label_vocabulary=VOCAB)
    x = np.random.default_rng(0).normal(size=(3, 3))
    want = head.loss(x, DENSE)
    for labels in (
        torch.tensor(DENSE, dtype=torch.int64),
        SparseLabels.from_lists([["action", "horror"], [], ["drama"]]),
    ):
        assert head.loss(x, labels) == pytest.approx(want, rel=1e-15)
