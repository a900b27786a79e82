"""Streaming metrics over batches equal one-shot metrics, for any split and merge order."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from labelwatch import IncompatibleMergeError, InvalidInputError
from labelwatch.head import HeadMetricState, MultiLabelHead


def data(seed: int, n: int = 120, n_classes: int = 5) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.random((n, n_classes)) < rng.uniform(0.1, 0.6, n_classes)
    x = rng.normal(size=(n, n_classes)) * 2 + 1.5 * y
    w = rng.uniform(0, 2, n).round(2)
    return x, y, w


HEAD = MultiLabelHead(
    5,
    weight_column="w",
    thresholds=[0.3, 0.5],
    classes_for_class_based_metrics=[0, 4],
    name="eval",
)


def assert_same(a: dict[str, float], b: dict[str, float]) -> None:
    assert list(a) == list(b)
    for key in a:
        assert a[key] == pytest.approx(b[key], rel=1e-9, abs=1e-12), key


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 10**6), cuts=st.lists(st.integers(0, 120), max_size=5), extra=st.booleans()
)
def test_streaming_equals_one_shot(seed: int, cuts: list[int], extra: bool) -> None:
    x, y, w = data(seed)
    bounds = [0, *sorted(cuts), 120]
    state = HEAD.metric_state(extra=extra)
    for lo, hi in itertools.pairwise(bounds):
        state.update(x[lo:hi], y[lo:hi], {"w": w[lo:hi]})
    one_shot = HEAD.metrics(x, y, {"w": w}, extra=extra)
    if extra:  # the exact AUCs need every score: one-shot only
        one_shot = {k: v for k, v in one_shot.items() if not k.startswith("auc_exact")}
    assert_same(state.result(), one_shot)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10**6), order=st.permutations([0, 1, 2]))
def test_merge_is_order_free(seed: int, order: list[int]) -> None:
    x, y, w = data(seed)
    parts = []
    for lo, hi in ((0, 30), (30, 31), (31, 120)):
        s = HEAD.metric_state(extra=True)
        s.update(x[lo:hi], y[lo:hi], {"w": w[lo:hi]})
        parts.append(s)
    a, b, c = (parts[i] for i in order)
    left, right = (a + b) + c, a.merge(b.merge(c))
    assert_same(left.result(), right.result())
    whole = HEAD.metric_state(extra=True)
    whole.update(x, y, {"w": w})
    assert_same(left.result(), whole.result())


def test_regularization_and_reset() -> None:
    x, y, w = data(0)
    state = HEAD.metric_state()
    state.update(x[:50], y[:50], {"w": w[:50]}, regularization_losses=[1.0])
    state.update(x[50:], y[50:], {"w": w[50:]}, regularization_losses=[2.0, 1.0])
    assert state.result()["regularization_loss/eval"] == pytest.approx(2.0)
    state.reset()
    assert set(state.result().values()) == {0.0}
    assert "n=0" in repr(state)


def test_merging_other_heads_is_refused_naming_both() -> None:
    other = MultiLabelHead(5, weight_column="w", thresholds=[0.3])
    with pytest.raises(
        IncompatibleMergeError,
        match=r"left MultiLabelHead\(.*thresholds=\[0.3, 0.5\].*right MultiLabelHead\(.*thresholds=\[0.3\]",
    ):
        HEAD.metric_state() + other.metric_state()
    with pytest.raises(IncompatibleMergeError, match=r"extra=True.*extra=False"):
        HEAD.metric_state(extra=True).merge(HEAD.metric_state())
    with pytest.raises(InvalidInputError, match=r"^other: expected a HeadMetricState"):
        HEAD.metric_state().merge({})  # type: ignore[arg-type]
    assert HEAD.metric_state().__add__(1) is NotImplemented


def test_state_class_is_exported_and_typed() -> None:
    state: Any = HEAD.metric_state()
    assert isinstance(state, HeadMetricState)


def test_bad_batch_leaves_the_state_unchanged() -> None:
    x, y, w = data(1)
    state = HEAD.metric_state()
    state.update(x, y, {"w": w})
    before = state.result()
    bad = x.copy()
    bad[-1, 2] = np.nan  # found only when the last rows are binned
    with pytest.raises(InvalidInputError, match=r"^logits row 119, label '2'"):
        state.update(bad, y, {"w": w})
    assert state.result() == before


def test_heads_with_other_losses_do_not_merge() -> None:
    focal = MultiLabelHead(
        5,
        weight_column="w",
        thresholds=[0.3, 0.5],
        classes_for_class_based_metrics=[0, 4],
        name="eval",
        loss_fn="focal",
    )
    with pytest.raises(IncompatibleMergeError):
        HEAD.metric_state() + focal.metric_state()
    same = MultiLabelHead(
        5,
        weight_column="w",
        thresholds=[0.3, 0.5],
        classes_for_class_based_metrics=[0, 4],
        name="eval",
    )
    assert isinstance(HEAD.metric_state() + same.metric_state(), HeadMetricState)
