"""Labels in every form TF's ``multi_label_head`` takes (and Python's natural ones) as one
dense multi-hot array of shape ``logits.shape[:-1] + (n_classes,)``.

Forms: a dense multi-hot array (NumPy, torch, scipy sparse, nested lists) of 0/1
values; :class:`SparseLabels` (the triple of a ``tf.SparseTensor``, or any object with
``indices``, ``values`` and ``dense_shape``) holding class ids, or names with a
vocabulary; and, for rank-2 logits, ragged lists of ids or of names, and dicts of
name -> 0/1 (through :class:`~labelwatch.labels.LabelSpace`). Every error names what was
wrong and where.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from labelwatch.errors import InvalidInputError
from labelwatch.head._losses import is_torch
from labelwatch.labels import Form, LabelSpace

__all__ = ["SparseLabels", "to_multi_hot"]

BoolArray = npt.NDArray[np.bool_]
_NONE_HINT = "pass the labels of the batch (multi-hot, class ids or names)"


def _as_numpy(x: Any) -> npt.NDArray[Any]:
    if is_torch(x):
        import torch

        t = x.detach()
        if t.layout != torch.strided:
            t = t.to_dense()
        if t.dtype == torch.bfloat16:  # numpy has no bfloat16
            t = t.float()
        return np.asarray(t.cpu().numpy())
    if hasattr(x, "numpy") and not isinstance(x, np.ndarray):  # an eager tf.Tensor
        return np.asarray(x.numpy())
    return np.asarray(x)


@dataclass(frozen=True, eq=False)
class SparseLabels:
    """The class ids (or names) of each example, as the triple of a ``tf.SparseTensor``.

    ``indices`` (nnz, R) int: the position of each value; ``values`` (nnz,): class ids in
    ``[0, n_classes)``, or label names when the head has a ``label_vocabulary``;
    ``dense_shape`` (R,): ``logits.shape[:-1] + (max labels per example,)``. The last
    index column only orders the values within an example.

    >>> SparseLabels.from_lists([[0, 2], []]).indices.tolist()
    [[0, 0], [0, 1]]
    """

    indices: npt.NDArray[np.int64]
    values: npt.NDArray[Any]
    dense_shape: tuple[int, ...]

    def __init__(self, indices: Any, values: Any, dense_shape: Any) -> None:
        try:
            shape = tuple(int(d) for d in _as_numpy(dense_shape).ravel())
        except (TypeError, ValueError):
            raise InvalidInputError("dense_shape", "a sequence of ints", dense_shape) from None
        if len(shape) < 2 or min(shape) < 0:
            raise InvalidInputError(
                "dense_shape",
                "at least 2 non-negative sizes, [D0, ..., DN, max labels per example]",
                list(shape),
            )
        vals = _as_numpy(values)
        if vals.ndim != 1:
            raise InvalidInputError("values", "a 1-D array, one value per index", vals.shape)
        if vals.dtype.kind == "S" or vals.dtype == object:
            vals = np.array([v.decode() if isinstance(v, bytes) else v for v in vals.tolist()])
        idx = _as_numpy(indices)
        if idx.size == 0:
            idx = idx.reshape(0, len(shape))
        if idx.ndim != 2 or idx.shape != (len(vals), len(shape)) or idx.dtype.kind not in "iu":
            raise InvalidInputError(
                "indices",
                f"an int array of shape (nnz, {len(shape)}) = (len(values), len(dense_shape))",
                f"{idx.dtype} array of shape {idx.shape}",
            )
        idx = idx.astype(np.int64, copy=False)
        bad = (idx < 0) | (idx >= np.asarray(shape, dtype=np.int64))
        if bad.any():
            k, col = np.argwhere(bad)[0]
            raise InvalidInputError(
                "indices",
                f"positions inside dense_shape {list(shape)}",
                idx[k].tolist(),
                hint=f"entry {int(k)}, dimension {int(col)}",
            )
        object.__setattr__(self, "indices", idx)
        object.__setattr__(self, "values", vals)
        object.__setattr__(self, "dense_shape", shape)

    @classmethod
    def from_lists(cls, labels: Sequence[Sequence[Any]]) -> SparseLabels:
        """Ragged rows of class ids or names, one row per example (dense_shape [n, max])."""
        if isinstance(labels, str | bytes) or not isinstance(labels, Sequence):
            raise InvalidInputError(
                "labels", "a list of rows (lists of class ids or names)", labels
            )
        indices: list[tuple[int, int]] = []
        values: list[Any] = []
        width = 0
        for i, row in enumerate(labels):
            if isinstance(row, str | bytes | Mapping) or not isinstance(row, Collection):
                raise InvalidInputError("labels", "a list of class ids or names", row, row=i)
            for j, v in enumerate(row):
                indices.append((i, j))
                values.append(v)
            width = max(width, len(row))
        return cls(
            np.asarray(indices, dtype=np.int64).reshape(-1, 2),
            np.asarray(values) if values else np.zeros(0, dtype=np.int64),
            (len(labels), width),
        )

    def __repr__(self) -> str:
        return (
            f"SparseLabels(nnz={len(self.values)}, dense_shape={list(self.dense_shape)}, "
            f"values dtype={self.values.dtype})"
        )


def _is_sparse_triple(x: object) -> bool:
    return all(hasattr(x, a) for a in ("indices", "values", "dense_shape")) and not callable(
        getattr(x, "indices", None)
    )


def to_multi_hot(
    labels: Any,
    batch_shape: tuple[int, ...],
    space: LabelSpace,
    *,
    vocabulary: bool,
) -> BoolArray:
    """``labels`` in any accepted form as a bool array ``batch_shape + (n_classes,)``.

    ``space`` names the classes (the vocabulary, or "0".."n-1"); ``vocabulary`` says
    whether string labels are allowed (TF accepts names only with a vocabulary).
    """
    n = len(space)
    expected = (*batch_shape, n)
    if labels is None:
        raise InvalidInputError("labels", f"labels of shape {expected}", None, hint=_NONE_HINT)
    if isinstance(labels, SparseLabels) or _is_sparse_triple(labels):
        sp = (
            labels
            if isinstance(labels, SparseLabels)
            else SparseLabels(labels.indices, labels.values, labels.dense_shape)
        )
        return _from_sparse(sp, batch_shape, space, vocabulary=vocabulary)
    module = type(labels).__module__
    if module.startswith("scipy.sparse"):
        labels = labels.toarray()
    if not isinstance(labels, list | tuple) or _is_dense_list(labels, batch_shape, len(space)):
        arr = _as_numpy(labels)
        if arr.dtype.kind in "biuf" or arr.size == 0:
            return _check_dense(arr, expected, space)
        if arr.dtype.kind in "US" and len(batch_shape) == 1 and arr.ndim == 2:
            return _from_rows(arr.tolist(), batch_shape, space, vocabulary=vocabulary)
        raise InvalidInputError(
            "labels",
            f"0/1 values of shape {expected}",
            f"{arr.dtype} array of shape {arr.shape}",
        )
    return _from_rows(list(labels), batch_shape, space, vocabulary=vocabulary)


def _is_dense_list(rows: Sequence[Any], batch_shape: tuple[int, ...], n: int) -> bool:
    """Whether nested lists are a dense array (as TF reads them) rather than ragged rows.

    Rectangular numbers are multi-hot, except, for rank-2 logits, rows of ints whose width
    is not ``n_classes``: those are class ids (like ``LabelSpace``'s "auto" form).
    """
    try:
        arr = np.asarray(rows)
    except (TypeError, ValueError):
        return False  # ragged
    if arr.dtype == object or arr.size == 0:
        return len(batch_shape) != 1
    if len(batch_shape) == 1 and arr.ndim == 2 and arr.dtype.kind in "iu" and arr.shape[1] != n:
        return False
    return arr.dtype.kind != "U" or len(batch_shape) != 1


def _check_dense(arr: npt.NDArray[Any], expected: tuple[int, ...], space: LabelSpace) -> BoolArray:
    if arr.shape != expected:
        hint = None
        if arr.shape == expected[:-1] or arr.shape == (*expected[:-1], 1):
            hint = (
                "multi-label labels hold one 0/1 per class; for class ids per example "
                "pass lists of ids or SparseLabels"
            )
        raise InvalidInputError(
            "labels",
            f"shape {expected} (logits.shape[:-1] + (n_classes,))",
            arr.shape,
            hint=hint,
        )
    if arr.dtype.kind == "b":
        return np.ascontiguousarray(arr)
    if arr.size:
        with np.errstate(invalid="ignore"):
            lo, hi = arr.min(), arr.max()
            ok = bool(lo >= 0) and bool(hi <= 1)
            if ok and arr.dtype.kind == "f":
                ok = bool(((arr == 0) | (arr == 1)).all())
        if not ok:
            with np.errstate(invalid="ignore"):
                bad = ~((arr == 0) | (arr == 1))
            pos = tuple(int(i) for i in np.argwhere(bad)[0])
            value = arr[pos].item()
            hint = (
                "soft labels are not multi-hot; threshold them first"
                if 0 < value < 1
                else "class ids per example go in lists of ids or SparseLabels"
                if float(value).is_integer() and value > 1
                else None
            )
            raise InvalidInputError(
                "labels",
                "0 or 1",
                value,
                row=pos[0] if len(pos) == 2 else None,
                label=space.names[pos[-1]],
                hint=hint
                if len(pos) == 2
                else f"at index {list(pos)}" + (f"; {hint}" if hint else ""),
            )
    return np.asarray(arr != 0)


def _from_rows(
    rows: list[Any], batch_shape: tuple[int, ...], space: LabelSpace, *, vocabulary: bool
) -> BoolArray:
    if len(batch_shape) != 1:
        raise InvalidInputError(
            "labels",
            f"a dense array of shape {(*batch_shape, len(space))} or SparseLabels "
            "(ragged lists need rank-2 logits)",
            f"ragged lists for logits of rank {len(batch_shape) + 1}",
        )
    if len(rows) != batch_shape[0]:
        raise InvalidInputError(
            "labels", f"{batch_shape[0]} rows, one per example (as the logits)", len(rows)
        )
    first = next((r for r in rows if isinstance(r, Collection) and len(r)), None)
    has_names = False
    if isinstance(first, Mapping):
        has_names = True
    elif first is not None and not isinstance(first, str | bytes):
        has_names = isinstance(next(iter(first)), str | bytes | np.str_)
    if has_names and not vocabulary:
        raise InvalidInputError(
            "labels",
            "class ids or multi-hot rows (the head has no label_vocabulary)",
            first,
            hint="string labels need MultiLabelHead(..., label_vocabulary=[...])",
        )
    rows = [_decode_row(r) for r in rows]
    form: Form = "dict" if isinstance(first, Mapping) else "names" if has_names else "indices"
    return space.encode_labels(rows, form=form)


def _decode_row(row: Any) -> Any:
    if isinstance(row, Collection) and not isinstance(row, str | bytes | Mapping):
        return [v.decode() if isinstance(v, bytes) else v for v in row]
    return row


def _from_sparse(
    sp: SparseLabels, batch_shape: tuple[int, ...], space: LabelSpace, *, vocabulary: bool
) -> BoolArray:
    n = len(space)
    if sp.dense_shape[:-1] != batch_shape:
        raise InvalidInputError(
            "labels",
            f"SparseLabels with dense_shape {[*batch_shape, '?']} (logits.shape[:-1] + [?])",
            list(sp.dense_shape),
        )
    vals = sp.values
    if vals.dtype.kind in "U":
        if not vocabulary:
            raise InvalidInputError(
                "labels",
                "an integer SparseLabels (the head has no label_vocabulary)",
                vals[0].item() if len(vals) else "strings",
                hint="string labels need MultiLabelHead(..., label_vocabulary=[...])",
            )
        ids = np.empty(len(vals), dtype=np.int64)
        for k, name in enumerate(vals.tolist()):
            if name not in space:
                raise InvalidInputError(
                    "labels",
                    f"one of the {n} names of label_vocabulary",
                    name,
                    row=int(sp.indices[k, 0]) if len(batch_shape) == 1 else None,
                    hint=f"SparseLabels entry {k} at {sp.indices[k].tolist()}",
                )
            ids[k] = space.index(name)
    elif vals.dtype.kind in "iu" or len(vals) == 0:
        ids = vals.astype(np.int64, copy=False)
        bad = (ids < 0) | (ids >= n)
        if bad.any():
            k = int(np.argmax(bad))
            raise InvalidInputError(
                "labels",
                f"class ids in [0, {n})",
                int(ids[k]),
                row=int(sp.indices[k, 0]) if len(batch_shape) == 1 else None,
                hint=f"SparseLabels entry {k} at {sp.indices[k].tolist()}",
            )
    else:
        raise InvalidInputError(
            "labels",
            "SparseLabels values of integer class ids (or names with a label_vocabulary)",
            f"values of dtype {vals.dtype}",
        )
    out = np.zeros((*batch_shape, n), dtype=bool)
    out[(*sp.indices[:, :-1].T, ids)] = True
    return out
