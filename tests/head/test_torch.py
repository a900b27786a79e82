"""The head in a PyTorch training loop: the loss and its gradients equal a reference built
on ``binary_cross_entropy_with_logits``, stay finite at logits of +-100, and a short
training run on real data (yeast) lowers the loss and beats chance."""

from __future__ import annotations

import sys
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from labelwatch import InvalidInputError
from labelwatch.datasets import load_yeast
from labelwatch.head import FocalLoss, MultiLabelHead, SparseLabels
from labelwatch.head import _torch as head_torch


def reference(
    x: torch.Tensor,
    y: torch.Tensor,
    w: torch.Tensor | None = None,
    reduction: str = "sum_over_batch_size",
    pos_weight: torch.Tensor | None = None,
) -> torch.Tensor:
    """TF 2's reduction written on torch's own cross-entropy."""
    per = F.binary_cross_entropy_with_logits(x, y, reduction="none", pos_weight=pos_weight).mean(
        dim=-1
    )
    total = (per * w).sum() if w is not None else per.sum()
    return total / per.numel() if reduction == "sum_over_batch_size" else total


def grad_of(fn: Any, x0: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    x = x0.clone().requires_grad_(True)
    loss = fn(x)
    loss.backward()
    assert x.grad is not None
    return loss.detach(), x.grad


CASES = [
    # (shape, weighted, reduction, pos_weight)
    ((64, 7), False, "sum_over_batch_size", False),
    ((64, 7), True, "sum_over_batch_size", False),
    ((64, 7), False, "sum", False),
    ((64, 7), True, "sum", True),
    ((64, 7), False, "sum_over_batch_size", True),
    ((4, 5, 7), True, "sum_over_batch_size", False),
]


@pytest.mark.parametrize(("shape", "weighted", "reduction", "use_q"), CASES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_loss_and_gradients_equal_the_reference(
    shape: tuple[int, ...], weighted: bool, reduction: str, use_q: bool, dtype: torch.dtype
) -> None:
    g = torch.Generator().manual_seed(0)
    x0 = torch.randn(*shape, generator=g, dtype=dtype) * 3
    y = (torch.rand(*shape, generator=g) < 0.3).to(dtype)
    w = torch.rand(*shape[:-1], generator=g, dtype=dtype) * 2 if weighted else None
    q = torch.linspace(0.5, 3.0, shape[-1], dtype=dtype) if use_q else None
    head = MultiLabelHead(
        shape[-1],
        weight_column="w" if weighted else None,
        loss_reduction=reduction,
        pos_weight=None if q is None else q.numpy(),
    )
    features = {"w": w} if weighted else None
    got, got_grad = grad_of(lambda x: head.loss(x, y, features), x0)
    want, want_grad = grad_of(lambda x: reference(x, y, w, reduction, q), x0)
    assert got.dtype == dtype and got.shape == ()
    tol = {"rtol": 1e-5, "atol": 1e-7} if dtype == torch.float32 else {"rtol": 1e-12, "atol": 1e-15}
    torch.testing.assert_close(got, want, **tol)
    torch.testing.assert_close(got_grad, want_grad, **tol)
    # the NumPy path gives the same number
    np_loss = head.loss(x0.numpy(), y.numpy(), None if w is None else {"w": w.numpy()})
    assert np_loss == pytest.approx(float(want), rel=1e-5 if dtype == torch.float32 else 1e-12)


@pytest.mark.parametrize(
    "labels",
    [
        lambda y: y.bool(),
        lambda y: y.long(),
        lambda y: y.numpy().astype(bool),
        lambda y: [list(np.flatnonzero(r)) for r in y.numpy()],
        lambda y: SparseLabels.from_lists([list(np.flatnonzero(r)) for r in y.numpy()]),
    ],
    ids=["bool", "long", "numpy", "lists", "sparse"],
)
def test_every_label_form_with_torch_logits(labels: Any) -> None:
    g = torch.Generator().manual_seed(1)
    x0 = torch.randn(16, 5, generator=g)
    y = (torch.rand(16, 5, generator=g) < 0.4).float()
    head = MultiLabelHead(5)
    got, got_grad = grad_of(lambda x: head.loss(x, labels(y)), x0)
    want, want_grad = grad_of(lambda x: reference(x, y), x0)
    torch.testing.assert_close(got, want)
    torch.testing.assert_close(got_grad, want_grad)


def test_stable_at_extreme_logits() -> None:
    x0 = torch.tensor([[100.0, -100.0, 100.0, -100.0], [-100.0, 100.0, 0.0, 30.0]])
    y = torch.tensor([[1.0, 0.0, 0.0, 1.0], [0.0, 1.0, 1.0, 0.0]])
    head = MultiLabelHead(4, weight_column="w")
    w = torch.tensor([1.0, 0.5])
    got, got_grad = grad_of(lambda x: head.loss(x, y, {"w": w}), x0)
    want, want_grad = grad_of(lambda x: reference(x, y, w), x0)
    assert torch.isfinite(got) and torch.isfinite(got_grad).all()
    torch.testing.assert_close(got, want)
    torch.testing.assert_close(got_grad, want_grad)
    # d loss / d x = w (sigmoid(x) - y) / (n_classes * batch)
    expected = w[:, None] * (torch.sigmoid(x0) - y) / (4 * 2)
    torch.testing.assert_close(got_grad, expected)
    m = head.metrics(x0, y, {"w": w})
    assert all(np.isfinite(v) for v in m.values())
    assert m["average_loss"] == pytest.approx(float(want) * 2 / 1.5, rel=1e-6)


def test_torch_outputs() -> None:
    g = torch.Generator().manual_seed(2)
    x = torch.randn(8, 3, generator=g, requires_grad=True)
    y = torch.rand(8, 3, generator=g) < 0.5
    head = MultiLabelHead(3, thresholds=[0.5], loss_fn=FocalLoss())
    un = head.unreduced_loss(x, y)
    assert isinstance(un, torch.Tensor) and un.shape == (8, 1) and un.requires_grad
    loss = head.loss(x, y)
    assert isinstance(loss, torch.Tensor) and loss.requires_grad
    torch.testing.assert_close(loss, un.mean())
    preds = head.predictions(x)
    assert isinstance(preds["probabilities"], torch.Tensor)
    assert preds["predicted_labels"].dtype == torch.bool
    torch.testing.assert_close(preds["probabilities"], torch.sigmoid(x))
    assert head.metrics(x, y) == pytest.approx(
        head.metrics(x.detach().numpy(), y.numpy()), rel=1e-6
    )


def test_custom_torch_loss_fn() -> None:
    def loss_fn(labels: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        return ((torch.sigmoid(logits) - labels) ** 2).sum(dim=-1, keepdim=True)

    x0 = torch.randn(6, 4, generator=torch.Generator().manual_seed(3))
    y = (x0 > 0).float()
    head = MultiLabelHead(4, loss_fn=loss_fn)
    got, got_grad = grad_of(lambda x: head.loss(x, y), x0)
    want, want_grad = grad_of(lambda x: loss_fn(y, x).mean(), x0)
    torch.testing.assert_close(got, want)
    torch.testing.assert_close(got_grad, want_grad)


def test_validate_false_skips_only_the_checks() -> None:
    x = torch.randn(5, 3)
    y = (torch.rand(5, 3) < 0.5).float()
    head = MultiLabelHead(3)
    torch.testing.assert_close(head.loss(x, y, validate=False), head.loss(x, y))
    bad = y.clone()
    bad[2, 1] = 0.5
    with pytest.raises(
        InvalidInputError, match=r"^labels row 2, label '1': expected 0 or 1, got 0.5"
    ):
        head.loss(x, bad)
    with pytest.raises(InvalidInputError, match=r"^labels: expected shape \(5, 3\).*got \(5, 4\)"):
        head.loss(x, torch.zeros(5, 4))


def test_missing_torch_prints_the_install_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(ImportError, match=r"pip install 'labelwatch\[torch\]'"):
        head_torch.require_torch()


@pytest.fixture
def one_thread() -> Any:
    """Tiny models train ~100x faster on one thread when the CPUs are shared (OpenMP spin)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.mark.usefixtures("one_thread")
def test_short_training_run_on_yeast() -> None:
    ds = load_yeast()
    rng = np.random.default_rng(0)
    order = rng.permutation(len(ds.X))
    train, test = order[:1800], order[1800:]
    mean, std = ds.X[train].mean(0), ds.X[train].std(0) + 1e-9
    X = torch.tensor((ds.X - mean) / std, dtype=torch.float32)
    Y = torch.tensor(ds.Y)
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(X.shape[1], 64), torch.nn.ReLU(), torch.nn.Linear(64, Y.shape[1])
    )
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    head = MultiLabelHead(Y.shape[1], label_vocabulary=list(ds.labels), thresholds=[0.5])
    with torch.no_grad():
        before = head.metrics(model(X[test]), Y[test])
    losses = []
    for _ in range(30):
        for batch in torch.split(torch.as_tensor(train), 256):
            opt.zero_grad()
            loss = head.loss(model(X[batch]), Y[batch])
            loss.backward()
            opt.step()
        losses.append(loss.item())
    with torch.no_grad():
        after = head.metrics(model(X[test]), Y[test])
    assert losses[-1] < 0.8 * losses[0]
    assert after["average_loss"] < before["average_loss"]
    assert after["auc"] > 0.75 > before["auc"] - 0.25  # well above chance (0.5)
    assert after["precision/positive_threshold_0.5"] > 0.5


@pytest.mark.parametrize(
    "value",
    [
        0.5,
        1 - 2**-24,
        2**-149,
        1 + 2**-23,
        2.0,
        -1.0,
        -0.0 - 1e-45,
        float("nan"),
        float("inf"),
        1e30,
    ],
)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16])
def test_float_label_check_catches_every_non_0_1_value(value: float, dtype: torch.dtype) -> None:
    y = torch.zeros(3, 4, dtype=dtype)
    y[0, 0] = 1
    y[1, 2] = value
    if y[1, 2].item() in (0.0, 1.0):  # the value does not exist in this dtype
        pytest.skip(f"{value!r} rounds to {y[1, 2].item()} in {dtype}")
    assert head_torch._is_0_1(y[:1])
    assert not head_torch._is_0_1(y)
    with pytest.raises(InvalidInputError, match=r"^labels row 1, label '2': expected 0 or 1"):
        MultiLabelHead(4).loss(torch.zeros(3, 4), y)


@pytest.mark.parametrize("dtype", [torch.int8, torch.uint8, torch.int64])
def test_integer_label_check(dtype: torch.dtype) -> None:
    y = torch.zeros(2, 3, dtype=dtype)
    y[0, 1] = 1
    assert head_torch._is_0_1(y)
    y[1, 0] = 2
    assert not head_torch._is_0_1(y)
