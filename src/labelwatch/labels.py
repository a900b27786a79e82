"""``LabelSpace``: the ordered label names, and every multi-label input form as dense arrays.

A label space turns multi-hot arrays, ragged lists of indices or names, dicts of
label -> score, scipy sparse matrices and torch tensors into one dense ``(n, L)``
array (bool for labels, float for scores) and back, validating at the boundary: every
error is an :class:`~labelwatch.errors.InvalidInputError` naming the row, the label
and the value. Dense inputs are checked with whole-array reductions only, so a valid
float array of the right dtype passes through without a copy.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from typing import Any, Literal, cast

import numpy as np
import numpy.typing as npt

from labelwatch.errors import InvalidInputError

__all__ = ["Form", "LabelSpace", "Unknown"]

Form = Literal["auto", "multi_hot", "indices", "names", "dict"]
Unknown = Literal["error", "ignore"]

_FORMS = ("auto", "multi_hot", "indices", "names", "dict")
_UNKNOWN = ("error", "ignore")
_ROWS_EXPECTED = "an (n, L) array, a list of rows (lists of names or indices, or dicts)"
_ONE_ROW_HINT = "each row is one example; wrap a single example in a list, e.g. [[...]]"
_ONE_EXAMPLE = "a single example needs shape (1, L): x.reshape(1, -1)"
_REPR_MAX = 8


def _is_int(v: object) -> bool:
    return isinstance(v, int | np.integer) and not isinstance(v, bool | np.bool_)


def _is_number(v: object) -> bool:
    return isinstance(v, int | float | np.integer | np.floating | np.bool_)


def _readable(v: object, check: Callable[[object], bool]) -> bool:
    """``check(v)``, and not a Python int too large for numpy (which makes it an object)."""
    return check(v) and not (isinstance(v, int) and not -(2**63) <= v < 2**64)


def _item(v: Any) -> Any:
    """A numpy scalar as a Python one, so messages read ``1.5`` and not ``np.float64(1.5)``."""
    return v.item() if isinstance(v, np.generic) else v


def _first_invalid(a: npt.NDArray[Any], *, binary: bool) -> int | None:
    """Flat (C-order) position of the first value outside {0, 1} / [0, 1], or None.

    Valid input costs two reductions (min and max; NaN propagates through both) and,
    for binary floats, one comparison: no Python loop, no copy of the input.
    """
    if a.size == 0 or a.dtype.kind == "b":
        return None
    with np.errstate(invalid="ignore"):
        lo, hi = a.min(), a.max()
        in_range = bool(lo >= 0) and bool(hi <= 1)
        if in_range and (not binary or a.dtype.kind in "iu"):
            return None
        ok = (a == 0) | (a == 1) if binary else (a >= 0) & (a <= 1)
        if in_range and binary and ok.all():
            return None
    return int(np.argmin(ok.ravel()))


class LabelSpace:
    """An ordered set of unique, non-empty label names.

    Equal (and hashing equal) to another label space with the same names in the same
    order. Immutable; pickles and round-trips through JSON.

    >>> space = LabelSpace(["action", "drama", "horror"])
    >>> space.encode_labels([["drama"], ["action", "horror"]]).astype(int)
    array([[0, 1, 0],
           [1, 0, 1]])
    """

    __slots__ = ("_index", "_names")

    _names: tuple[str, ...]
    _index: dict[str, int]

    def __init__(self, labels: Iterable[str]) -> None:
        if isinstance(labels, str | bytes) or not isinstance(labels, Iterable):
            n: Any = labels
            hint = (
                f"LabelSpace.range({n}) names labels '0'..'{n - 1}'"
                if _is_int(n) and n > 0
                else "pass a list of names, e.g. LabelSpace(['action', 'drama'])"
            )
            raise InvalidInputError("names", "an iterable of label names", labels, hint=hint)
        names: list[str] = []
        index: dict[str, int] = {}
        for i, name in enumerate(labels):
            if not isinstance(name, str) or not name:
                raise InvalidInputError("names", "a non-empty str", name, hint=f"at position {i}")
            name = str(name)  # plain str, also for subclasses such as np.str_
            if name in index:
                raise InvalidInputError(
                    "names",
                    "unique label names",
                    name,
                    label=name,
                    hint=f"it is at positions {index[name]} and {i}",
                )
            index[name] = i
            names.append(name)
        self._names = tuple(names)
        self._index = index

    # ------------------------------------------------------------------ basics
    @classmethod
    def range(cls, n: int) -> LabelSpace:
        """``n`` labels named ``"0"``, ``"1"``, ..., ``"n-1"``.

        >>> LabelSpace.range(3).names
        ('0', '1', '2')
        """
        if not _is_int(n) or n < 0:
            raise InvalidInputError("n", "a non-negative int", n)
        # valid and distinct by construction: built without the per-name checks (a time
        # series makes one of 20 labels x 720 hours per query)
        space = cls.__new__(cls)
        space._names = tuple(map(str, range(int(n))))
        space._index = dict(zip(space._names, range(int(n)), strict=True))
        return space

    @property
    def names(self) -> tuple[str, ...]:
        """The label names, in column order."""
        return self._names

    def __len__(self) -> int:
        return len(self._names)

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __contains__(self, name: object) -> bool:
        try:
            return name in self._index
        except TypeError:  # unhashable
            return False

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, LabelSpace):
            return NotImplemented
        return self._names == other._names

    def __hash__(self) -> int:
        return hash(self._names)

    def __reduce__(self) -> tuple[type[LabelSpace], tuple[tuple[str, ...]]]:
        return (LabelSpace, (self._names,))

    def __repr__(self) -> str:
        n = len(self._names)
        if n <= _REPR_MAX:
            return f"LabelSpace({list(self._names)!r})"

        def show(name: str) -> str:
            return repr(name if len(name) <= 20 else name[:17] + "...")

        head = ", ".join(show(s) for s in self._names[:3])
        tail = ", ".join(show(s) for s in self._names[-2:])
        return f"LabelSpace({n} labels: {head}, ..., {tail})"

    def index(self, name: str) -> int:
        """The column of label ``name``.

        >>> LabelSpace(["action", "drama"]).index("drama")
        1
        """
        j = self._index.get(name) if isinstance(name, str) else None
        if j is None:
            raise InvalidInputError(
                "label", f"one of the {len(self)} label names", name, hint=self._did_you_mean(name)
            )
        return j

    def to_json(self) -> list[str]:
        """The names as a JSON-ready list; ``LabelSpace.from_json`` reads it back."""
        return list(self._names)

    @classmethod
    def from_json(cls, data: Sequence[str]) -> LabelSpace:
        """The label space of ``to_json()`` output (a list of names).

        >>> LabelSpace.from_json(["a", "b"]) == LabelSpace(["a", "b"])
        True
        """
        if not isinstance(data, list | tuple):
            raise InvalidInputError("names", "a JSON list of label names", data)
        return cls(data)

    # ---------------------------------------------------------------- encoding
    def encode_labels(
        self, x: Any, *, unknown: Unknown = "error", form: Form = "auto"
    ) -> npt.NDArray[np.bool_]:
        """Actual labels in any form as a dense ``(n, L)`` bool array.

        ``x``: a multi-hot ``(n, L)`` array / sparse matrix / tensor / list of 0/1 rows;
        ragged lists of label indices or of names; a dict of label -> 0/1 (one row) or
        a list of them. ``form="auto"`` guesses (rows of ints that all have width L are
        multi-hot, other int rows are indices); name the form to remove the ambiguity.
        ``unknown="ignore"`` drops names outside the space instead of raising. A valid
        C-contiguous bool array is returned as is (not copied: do not mutate it).

        >>> space = LabelSpace(["action", "drama", "horror"])
        >>> space.encode_labels([[0, 2], []], form="indices").astype(int)
        array([[1, 0, 1],
               [0, 0, 0]])
        """
        out = self._encode(x, "labels", True, unknown, form, 0.0, np.dtype(np.bool_))
        return cast(npt.NDArray[np.bool_], out)

    def encode_scores(
        self,
        x: Any,
        *,
        unknown: Unknown = "error",
        form: Form = "auto",
        missing: float = 0.0,
        dtype: npt.DTypeLike | None = np.float64,
    ) -> npt.NDArray[np.floating[Any]]:
        """Scores in [0, 1] in any form as a dense ``(n, L)`` float array.

        ``x``: an ``(n, L)`` array / sparse matrix / tensor / list of rows of L numbers
        (``form="multi_hot"`` names this dense form here too); a dict of label -> score
        (one row) or a list of them, where labels absent from a dict get ``missing``
        (default 0.0); lists of names or indices give 1.0 to the labels listed.
        ``dtype`` (default float64); ``None`` keeps a float32 input float32. A valid
        C-contiguous input of the requested dtype is returned without a copy.

        >>> space = LabelSpace(["action", "drama"])
        >>> space.encode_scores([{"action": 0.8}, {"drama": 0.25}])
        array([[0.8 , 0.  ],
               [0.  , 0.25]])
        """
        target = None
        if dtype is not None:
            try:
                target = np.dtype(dtype)
            except TypeError:
                target = None
            if target is None or target.kind != "f":
                raise InvalidInputError("dtype", "a float dtype such as np.float32", dtype)
        if not (_is_number(missing) and 0 <= missing <= 1):
            raise InvalidInputError("missing", "a number in [0, 1]", missing)
        out = self._encode(x, "scores", False, unknown, form, float(missing), target)
        return cast(npt.NDArray[np.floating[Any]], out)

    # ---------------------------------------------------------------- decoding
    def decode_labels(self, arr: Any) -> list[list[str]]:
        """Names of the positive labels of each row of an ``(n, L)`` multi-hot array.

        >>> LabelSpace(["action", "drama"]).decode_labels([[True, True], [False, False]])
        [['action', 'drama'], []]
        """
        names = self._names
        return [[names[j] for j in row] for row in self._positives(arr)]

    def decode_indices(self, arr: Any) -> list[list[int]]:
        """Columns of the positive labels of each row of an ``(n, L)`` multi-hot array.

        >>> LabelSpace(["action", "drama"]).decode_indices([[0, 1], [1, 1]])
        [[1], [0, 1]]
        """
        return self._positives(arr)

    def decode_scores(self, arr: Any) -> list[dict[str, float]]:
        """Each row of an ``(n, L)`` score array as a dict of every label -> score.

        >>> LabelSpace(["action", "drama"]).decode_scores([[0.5, 0.25]])
        [{'action': 0.5, 'drama': 0.25}]
        """
        a = self.encode_scores(arr, form="multi_hot", dtype=None)
        return [dict(zip(self._names, row, strict=True)) for row in a.tolist()]

    def _positives(self, arr: Any) -> list[list[int]]:
        a = self.encode_labels(arr, form="multi_hot")
        cols: list[int] = np.nonzero(a)[1].tolist()
        ends: list[int] = np.cumsum(a.sum(axis=1)).tolist()
        return [cols[start:end] for start, end in zip([0, *ends], ends, strict=False)]

    # ----------------------------------------------------------- implementation
    def _encode(
        self,
        x: Any,
        field: str,
        binary: bool,
        unknown: str,
        form: str,
        missing: float,
        dtype: np.dtype[Any] | None,
    ) -> npt.NDArray[Any]:
        if unknown not in _UNKNOWN:
            raise InvalidInputError("unknown", "'error' or 'ignore'", unknown)
        if form not in _FORMS:
            raise InvalidInputError("form", f"one of {', '.join(map(repr, _FORMS))}", form)
        dense = _as_dense(x)
        if dense is not None and dense.dtype == object and dense.ndim == 1:
            rows: list[Any] = list(dense)  # e.g. a pandas Series of lists
        elif dense is not None and form in ("indices", "names"):
            rows = dense.tolist()
        elif dense is not None and form == "dict":
            raise InvalidInputError(field, "a dict or a list of dicts for form='dict'", x)
        elif dense is not None:
            return self._from_dense(dense, field, binary, dtype)
        else:
            rows = _as_rows(x, field)
        kind = form if form != "auto" else self._detect(rows, field)
        out_dtype = (
            np.dtype(np.bool_) if binary else dtype if dtype is not None else np.dtype(np.float64)
        )
        if kind == "dict":
            return self._from_dicts(rows, field, binary, unknown, missing, out_dtype)
        if kind == "names":
            return self._from_names(rows, field, unknown, out_dtype)
        if kind == "indices":
            return self._from_indices(rows, field, out_dtype)
        return self._from_dense_rows(rows, field, binary, dtype, auto=form == "auto")

    def _detect(self, rows: list[Any], field: str) -> str:
        first: Any = None
        for i, row in enumerate(rows):
            if isinstance(row, Mapping):
                return "dict"
            _check_row(row, field, i)
            if len(row):
                first = next(iter(row))
                break
        if first is None:
            return "indices"  # every row empty: no positives, in any form
        if isinstance(first, str):
            return "names"
        if _is_int(first):
            n_labels = len(self)
            return "multi_hot" if all(_width(r) == n_labels for r in rows) else "indices"
        if _is_number(first):
            return "multi_hot"
        raise InvalidInputError(
            field, "a label name, a label index or a number", _item(first), row=i
        )

    def _from_dense(
        self,
        a: npt.NDArray[Any],
        field: str,
        binary: bool,
        dtype: np.dtype[Any] | None,
        hint: str | None = None,
    ) -> npt.NDArray[Any]:
        n_labels = len(self)
        if a.ndim != 2:
            raise InvalidInputError(
                field,
                f"an (n, L) array with L={n_labels}",
                a.shape,
                hint=_ONE_EXAMPLE if a.ndim == 1 else None,
            )
        if a.shape[1] != n_labels:
            raise InvalidInputError(
                field, f"an (n, {n_labels}) array, one column per label", a.shape
            )
        if a.dtype.kind not in "biuf":
            raise InvalidInputError(
                field,
                "a bool, integer or float array",
                str(a.dtype),
                hint="for rows of label names pass form='names'" if a.dtype.kind in "US" else None,
            )
        self._check_values(a, field, binary, hint)
        if binary:
            return np.ascontiguousarray(a) if a.dtype.kind == "b" else a != 0
        if dtype is None:
            dtype = a.dtype if a.dtype in (np.float32, np.float64) else np.dtype(np.float64)
        return np.ascontiguousarray(a, dtype=dtype)

    def _from_dense_rows(
        self,
        rows: list[Any],
        field: str,
        binary: bool,
        dtype: np.dtype[Any] | None,
        *,
        auto: bool,
    ) -> npt.NDArray[Any]:
        n_labels = len(self)
        for i, row in enumerate(rows):
            if isinstance(row, Mapping):
                raise InvalidInputError(field, f"a row of {n_labels} values", row, row=i)
            _check_row(row, field, i)
            if len(row) != n_labels:
                hint = (
                    "every multi-hot row needs one 0/1 per label; "
                    "for lists of label indices pass form='indices'"
                    if binary
                    else "every row of dense scores needs one score per label; "
                    "use a dict per row to give only some labels"
                )
                raise InvalidInputError(
                    field, f"{n_labels} values, one per label", row, row=i, hint=hint
                )
        try:
            a = np.asarray(rows)
        except (TypeError, ValueError):
            a = np.asarray([], dtype=object)
        if a.shape != (len(rows), n_labels) or a.dtype.kind not in "biuf":
            for i, row in enumerate(rows):
                for j, v in enumerate(row):
                    if not _readable(v, _is_number):
                        raise InvalidInputError(field, "a number", v, row=i, label=self._names[j])
            raise InvalidInputError(field, f"(n, {n_labels}) numbers", "rows numpy cannot read")
        as_indices = "if these are label indices, pass form='indices'" if auto and binary else None
        return self._from_dense(a, field, binary, dtype, as_indices)

    def _from_indices(self, rows: list[Any], field: str, dtype: np.dtype[Any]) -> npt.NDArray[Any]:
        n_labels = len(self)
        lengths: list[int] = []
        flat: list[Any] = []
        for i, row in enumerate(rows):
            _check_row(row, field, i, what="a list of label indices")
            lengths.append(len(row))
            flat.extend(row)
        ends = np.cumsum(lengths)

        def row_of(k: int) -> int:
            return int(np.searchsorted(ends, k, side="right"))

        try:
            v = np.asarray(flat)
        except (TypeError, ValueError):
            v = np.asarray([], dtype=object)
        if v.ndim != 1 or len(v) != len(flat) or (flat and v.dtype.kind not in "iu"):
            k = next((k for k, e in enumerate(flat) if not _readable(e, _is_int)), 0)
            hint = (
                "rows of 0/1 values or scores must have one value per label"
                if _is_number(flat[k]) and not _is_int(flat[k])
                else None
            )
            raise InvalidInputError(
                field, "an integer label index", _item(flat[k]), row=row_of(k), hint=hint
            )
        out = np.zeros((len(rows), n_labels), dtype=dtype)
        if not flat:
            return out
        bad = (v < 0) | (v >= n_labels)
        if bad.any():
            k = int(np.argmax(bad))
            raise InvalidInputError(
                field, f"a label index in [0, {n_labels})", _item(v[k]), row=row_of(k)
            )
        out[np.repeat(np.arange(len(rows)), lengths), v] = 1
        return out

    def _from_names(
        self, rows: list[Any], field: str, unknown: str, dtype: np.dtype[Any]
    ) -> npt.NDArray[Any]:
        index = self._index
        r_idx: list[int] = []
        c_idx: list[int] = []
        for i, row in enumerate(rows):
            _check_row(row, field, i, what="a list of label names")
            for name in row:
                j = index.get(name) if isinstance(name, str) else None
                if j is not None:
                    r_idx.append(i)
                    c_idx.append(j)
                elif not isinstance(name, str):
                    raise InvalidInputError(field, "a label name (str)", _item(name), row=i)
                elif unknown == "error":
                    self._unknown(field, name, i)
        out = np.zeros((len(rows), len(self)), dtype=dtype)
        out[r_idx, c_idx] = 1
        return out

    def _from_dicts(
        self,
        rows: list[Any],
        field: str,
        binary: bool,
        unknown: str,
        missing: float,
        dtype: np.dtype[Any],
    ) -> npt.NDArray[Any]:
        index = self._index
        r_idx: list[int] = []
        c_idx: list[int] = []
        values: list[Any] = []
        for i, row in enumerate(rows):
            if not isinstance(row, Mapping):
                raise InvalidInputError(
                    field, "a dict of label -> score", row, row=i, hint=_ONE_ROW_HINT
                )
            for name, value in row.items():
                j = index.get(name) if isinstance(name, str) else None
                if j is not None:
                    r_idx.append(i)
                    c_idx.append(j)
                    values.append(value)
                elif unknown == "error":
                    self._unknown(field, name, i)
        out = np.full((len(rows), len(self)), missing, dtype=dtype)
        if not values:
            return out
        try:
            v = np.asarray(values)
        except (TypeError, ValueError):
            v = np.asarray([], dtype=object)
        if v.shape != (len(values),) or v.dtype.kind not in "biuf":
            k = next((k for k, e in enumerate(values) if not _readable(e, _is_number)), 0)
            raise InvalidInputError(
                field, "a number", values[k], row=r_idx[k], label=self._names[c_idx[k]]
            )
        k_bad = _first_invalid(v, binary=binary)
        if k_bad is not None:
            self._raise_value(field, binary, _item(values[k_bad]), r_idx[k_bad], c_idx[k_bad])
        out[r_idx, c_idx] = v
        return out

    def _check_values(
        self, a: npt.NDArray[Any], field: str, binary: bool, hint: str | None = None
    ) -> None:
        k = _first_invalid(a, binary=binary)
        if k is not None:
            i, j = np.unravel_index(k, a.shape)
            self._raise_value(field, binary, _item(a[i, j]), int(i), int(j), hint)

    def _raise_value(
        self, field: str, binary: bool, value: Any, row: int, col: int, hint: str | None = None
    ) -> None:
        label = self._names[col]
        if not np.isfinite(value):
            raise InvalidInputError(
                field,
                "0 or 1" if binary else "a finite number in [0, 1]",
                value,
                row=row,
                label=label,
                hint="fill missing values before encoding",
            )
        if binary:
            if 0 < value < 1:
                hint = "these look like scores: threshold them, or use encode_scores"
            raise InvalidInputError(field, "0 or 1", value, row=row, label=label, hint=hint)
        raise InvalidInputError(
            field,
            "a number in [0, 1]",
            value,
            row=row,
            label=label,
            hint="scores are probabilities: apply a sigmoid to logits first",
        )

    def _unknown(self, field: str, name: str, row: int) -> None:
        close = difflib.get_close_matches(name, self._names, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        hint += "pass unknown='ignore' to drop labels outside the label space"
        raise InvalidInputError(
            field, f"one of the {len(self)} label names", name, row=row, label=name, hint=hint
        )

    def _did_you_mean(self, name: object) -> str | None:
        if not isinstance(name, str):
            return None
        close = difflib.get_close_matches(name, self._names, n=1)
        return f"did you mean {close[0]!r}?" if close else None


def _width(row: Any) -> int:
    return len(row) if isinstance(row, Collection) and not isinstance(row, Mapping) else -1


def _check_row(row: Any, field: str, i: int, what: str = "a list of labels") -> None:
    if isinstance(row, str | bytes | Mapping) or not isinstance(row, Collection):
        raise InvalidInputError(field, what, row, row=i, hint=_ONE_ROW_HINT)


def _as_rows(x: Any, field: str) -> list[Any]:
    if isinstance(x, Mapping):
        return [x]  # one dict is one row
    if not isinstance(x, str | bytes) and isinstance(x, Iterable):
        return list(x)
    hint = _ONE_ROW_HINT if isinstance(x, str | bytes) else None
    raise InvalidInputError(field, _ROWS_EXPECTED, x, hint=hint)


def _as_dense(x: Any) -> npt.NDArray[Any] | None:
    """``x`` as an ndarray if it is array-like (ndarray, sparse, tensor, ``__array__``)."""
    if isinstance(x, np.ndarray):
        return np.asarray(x)  # drop subclasses such as np.matrix, without a copy
    module = type(x).__module__
    if module.startswith("scipy.sparse"):
        import scipy.sparse

        if scipy.sparse.issparse(x):
            return np.asarray(x.toarray())
    if module.startswith("torch") and hasattr(x, "detach"):
        return _torch_to_numpy(x)
    if hasattr(x, "__array__") and not isinstance(x, Mapping | list | tuple):
        return np.asarray(x)
    return None


def _torch_to_numpy(x: Any) -> npt.NDArray[Any]:
    import torch

    t = x.detach()
    if t.layout != torch.strided:
        t = t.to_dense()
    if t.dtype == torch.bfloat16:  # numpy has no bfloat16
        t = t.float()
    # CPU tensors share memory with the array: valid float scores are not copied.
    return np.asarray(t.numpy(force=True))
