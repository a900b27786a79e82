"""LabelSpace: every input form gives the same dense arrays; bad input names row, label, value."""

from __future__ import annotations

import pickle
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from labelwatch import InvalidInputError, LabelSpace

NAMES = ("action", "drama", "horror", "comedy")
SPACE = LabelSpace(NAMES)
# Rows: two labels, one label, none, all: the empty row and the full row are edge cases.
Y = np.array(
    [[1, 0, 1, 0], [0, 1, 0, 0], [0, 0, 0, 0], [1, 1, 1, 1]],
    dtype=bool,
)
INDICES = [[0, 2], [1], [], [0, 1, 2, 3]]
LABEL_NAMES = [["action", "horror"], ["drama"], [], list(NAMES)]
SCORES = np.array(
    [[0.9, 0.1, 0.7, 0.0], [0.2, 0.8, 0.0, 0.3], [0.0, 0.0, 0.0, 0.0], [1.0, 0.5, 0.25, 0.6]]
)


def _sparse(a: Any) -> Any:
    scipy_sparse = pytest.importorskip("scipy.sparse")
    return scipy_sparse.csr_matrix(a)


# ------------------------------------------------------------------ the label space
def test_label_space_basics() -> None:
    assert SPACE.names == NAMES
    assert len(SPACE) == 4
    assert list(SPACE) == list(NAMES)
    assert "drama" in SPACE
    assert "thriller" not in SPACE
    assert 1 not in SPACE
    assert [] not in SPACE  # unhashable: simply not a label
    assert SPACE.index("horror") == 2
    assert LabelSpace(NAMES) == SPACE
    assert hash(LabelSpace(NAMES)) == hash(SPACE)
    assert LabelSpace(reversed(NAMES)) != SPACE  # order matters
    assert list(NAMES) != SPACE
    assert LabelSpace(SPACE) == SPACE
    assert LabelSpace([]).names == ()


def test_range_json_pickle_and_repr() -> None:
    assert LabelSpace.range(3).names == ("0", "1", "2")
    assert LabelSpace.range(0).names == ()
    assert LabelSpace.from_json(SPACE.to_json()) == SPACE
    assert SPACE.to_json() == list(NAMES)
    assert pickle.loads(pickle.dumps(SPACE)) == SPACE
    assert repr(SPACE) == "LabelSpace(['action', 'drama', 'horror', 'comedy'])"
    big = repr(LabelSpace.range(1000))
    assert big == "LabelSpace(1000 labels: '0', '1', '2', ..., '998', '999')"
    assert LabelSpace.range(3).encode_labels([["0", "2"]]).tolist() == [[True, False, True]]
    # built without the per-name checks: the same space as from the names
    for n in (1, 7, 14_400):
        fast, slow = LabelSpace.range(n), LabelSpace([str(i) for i in range(n)])
        assert fast == slow and fast.names == slow.names and hash(fast) == hash(slow)
        assert [fast.index(str(i)) for i in (0, n // 2, n - 1)] == [0, n // 2, n - 1]
        assert pickle.loads(pickle.dumps(fast)) == slow


@pytest.mark.parametrize(
    ("labels", "pattern"),
    [
        (
            ["a", "b", "a"],
            r"names, label 'a': expected unique label names, got 'a'.*positions 0 and 2",
        ),
        (["a", ""], r"names: expected a non-empty str, got '' \(str\); at position 1"),
        (["a", 3], r"names: expected a non-empty str, got 3 \(int\); at position 1"),
        ("abc", r"names: expected an iterable of label names, got 'abc' \(str\)"),
        (5, r"got 5 \(int\); LabelSpace.range\(5\)"),
    ],
)
def test_constructor_rejects_bad_names(labels: Any, pattern: str) -> None:
    with pytest.raises(InvalidInputError, match=pattern):
        LabelSpace(labels)


def test_index_from_json_and_range_reject_bad_input() -> None:
    with pytest.raises(InvalidInputError, match=r"label: .* got 'dramma'.*did you mean 'drama'"):
        SPACE.index("dramma")
    with pytest.raises(InvalidInputError, match="names: expected a JSON list"):
        LabelSpace.from_json("action")
    with pytest.raises(InvalidInputError, match="n: expected a non-negative int, got -1"):
        LabelSpace.range(-1)


# ------------------------------------------------------------------ forms agree
def _label_forms() -> dict[str, Any]:
    return {
        "bool array": Y,
        "int array": Y.astype(np.int8),
        "float array": Y.astype(np.float32),
        "fortran array": np.asfortranarray(Y),
        "0/1 lists": Y.astype(int).tolist(),
        "bool lists": Y.tolist(),
        "tuples": tuple(tuple(r) for r in Y.astype(int).tolist()),
        "indices": INDICES,
        "index arrays": [np.array(r, dtype=np.int64) for r in INDICES],
        "names": LABEL_NAMES,
        "name tuples": [tuple(r) for r in LABEL_NAMES],
        "name sets": [set(r) for r in LABEL_NAMES],
        "object array of lists": np.array(LABEL_NAMES, dtype=object),
        "dicts of 0/1": [dict(zip(NAMES, map(int, r), strict=True)) for r in Y],
        "dicts of positives": [dict.fromkeys(r, True) for r in LABEL_NAMES],
        "csr": "csr",
    }


@pytest.mark.parametrize("form", list(_label_forms()))
def test_every_label_form_encodes_to_the_same_matrix(form: str) -> None:
    x = _label_forms()[form]
    if isinstance(x, str):
        x = _sparse(Y.astype(np.int8))
    out = SPACE.encode_labels(x)
    assert out.dtype == np.bool_
    assert out.flags.c_contiguous
    np.testing.assert_array_equal(out, Y)


@pytest.mark.parametrize(
    ("x", "form"),
    [
        (Y.astype(int).tolist(), "multi_hot"),
        (INDICES, "indices"),
        (LABEL_NAMES, "names"),
        ([dict.fromkeys(r, 1) for r in LABEL_NAMES], "dict"),
        (np.array([[0, 2], [1, 1], [3, 3], [0, 3]]), "indices"),
    ],
)
def test_explicit_forms(x: Any, form: Any) -> None:
    expected = (
        Y
        if form != "indices" or isinstance(x, list)
        else np.array([[1, 0, 1, 0], [0, 1, 0, 0], [0, 0, 0, 1], [1, 0, 0, 1]], dtype=bool)
    )
    np.testing.assert_array_equal(SPACE.encode_labels(x, form=form), expected)


def test_auto_reads_full_width_int_rows_as_multi_hot_and_others_as_indices() -> None:
    rows = [[0, 1, 1, 0], [1, 1, 0, 0]]
    assert SPACE.encode_labels(rows).tolist() == [
        [False, True, True, False],
        [True, True, False, False],
    ]
    assert SPACE.encode_labels(rows, form="indices").tolist() == [
        [True, True, False, False],
        [True, True, False, False],
    ]
    assert SPACE.encode_labels([[0, 1, 1]]).tolist() == [[True, True, False, False]]


def test_every_score_form_encodes_to_the_same_matrix() -> None:
    dicts = [{k: v for k, v in zip(NAMES, row, strict=True) if v} for row in SCORES.tolist()]
    forms: dict[str, Any] = {
        "array": SCORES,
        "float32": SCORES.astype(np.float32),
        "lists": SCORES.tolist(),
        "dicts": dicts,
        "csr": _sparse(SCORES),
    }
    for name, x in forms.items():
        out = SPACE.encode_scores(x)
        assert out.dtype == np.float64, name
        np.testing.assert_allclose(out, SCORES, rtol=1e-6, err_msg=name)
    # labels in any form are valid scores (1.0 for the listed labels)
    for x in (Y, INDICES, LABEL_NAMES, Y.astype(int).tolist()):
        np.testing.assert_array_equal(SPACE.encode_scores(x), Y.astype(float))


def test_a_single_dict_is_one_row_and_missing_labels_get_missing() -> None:
    out = SPACE.encode_scores({"action": 0.8, "drama": 0.1})
    np.testing.assert_array_equal(out, [[0.8, 0.1, 0.0, 0.0]])
    out = SPACE.encode_scores([{"action": 0.8}, {}], missing=0.5)
    np.testing.assert_array_equal(out, [[0.8, 0.5, 0.5, 0.5], [0.5, 0.5, 0.5, 0.5]])
    assert SPACE.encode_labels({"drama": 1}).tolist() == [[False, True, False, False]]


def test_torch_tensors_encode_like_arrays() -> None:
    torch = pytest.importorskip("torch")
    t = torch.tensor(SCORES, dtype=torch.float32, requires_grad=True)
    out = SPACE.encode_scores(t, dtype=None)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, SCORES, rtol=1e-6)
    np.testing.assert_array_equal(SPACE.encode_labels(torch.tensor(Y)), Y)
    np.testing.assert_array_equal(SPACE.encode_labels(torch.tensor(Y).to_sparse()), Y)
    bf16 = SPACE.encode_scores(torch.tensor(SCORES, dtype=torch.bfloat16))
    np.testing.assert_allclose(bf16, SCORES, atol=1e-2)
    plain = torch.tensor(SCORES)
    assert np.shares_memory(SPACE.encode_scores(plain), plain.numpy())  # no copy


def test_empty_input_gives_zero_rows() -> None:
    empties: list[Any] = [[], (), np.zeros((0, 4)), _sparse(np.zeros((0, 4)))]
    for x in empties:
        assert SPACE.encode_labels(x).shape == (0, 4)
        assert SPACE.encode_scores(x).shape == (0, 4)
    assert SPACE.decode_labels(np.zeros((0, 4), dtype=bool)) == []
    assert SPACE.encode_labels([[], []]).tolist() == [[False] * 4] * 2


# ------------------------------------------------------------------ dtype, copies
def test_valid_float_arrays_are_not_copied() -> None:
    s64 = np.ascontiguousarray(SCORES)
    assert SPACE.encode_scores(s64) is s64
    assert SPACE.encode_scores(s64, dtype=None) is s64
    s32 = s64.astype(np.float32)
    assert SPACE.encode_scores(s32, dtype=None) is s32
    assert SPACE.encode_scores(s32, dtype=np.float32) is s32
    widened = SPACE.encode_scores(s32)
    assert widened.dtype == np.float64
    assert not np.shares_memory(widened, s32)
    assert SPACE.encode_scores(s64, dtype=np.float32).dtype == np.float32
    assert SPACE.encode_scores(s64.astype(np.float16), dtype=None).dtype == np.float64
    assert SPACE.encode_scores(SCORES.tolist(), dtype=None).dtype == np.float64
    assert SPACE.encode_scores(SCORES.tolist(), dtype=np.float32).dtype == np.float32
    assert SPACE.encode_scores([{"drama": 0.5}], dtype=np.float32).dtype == np.float32
    fortran = np.asfortranarray(s64)
    out = SPACE.encode_scores(fortran)
    assert out.flags.c_contiguous
    np.testing.assert_array_equal(out, s64)
    assert SPACE.encode_labels(Y) is Y
    view = np.ascontiguousarray(np.tile(SCORES, (2, 1)))[::2]  # strided: copied to C order
    assert SPACE.encode_scores(view).flags.c_contiguous


def test_scores_of_only_zeros_and_ones_are_valid() -> None:
    ones = Y.astype(np.float64)
    assert SPACE.encode_scores(ones) is ones


# ------------------------------------------------------------------ unknown labels
def test_unknown_ignore_drops_labels_outside_the_space() -> None:
    names = [["action", "thriller"], ["western"]]
    assert SPACE.encode_labels(names, unknown="ignore").tolist() == [
        [True, False, False, False],
        [False] * 4,
    ]
    scores = SPACE.encode_scores([{"drama": 0.4, "thriller": 7}], unknown="ignore")
    np.testing.assert_array_equal(scores, [[0.0, 0.4, 0.0, 0.0]])
    with pytest.raises(
        InvalidInputError, match=r"labels row 0, label 'thriller': .*unknown='ignore'"
    ):
        SPACE.encode_labels(names)
    with pytest.raises(InvalidInputError, match=r"label 'dramma'.*did you mean 'drama'"):
        SPACE.encode_scores([{"dramma": 0.4}])


# ------------------------------------------------------------------ bad input
BAD_INPUTS: list[tuple[str, Any, dict[str, Any], str]] = [
    # scores outside [0, 1], NaN, inf: in arrays, lists and dicts
    (
        "scores",
        [[0.1, 0.2, 0.3, 0.4], [0.5, 1.5, 0.0, 0.0]],
        {},
        r"scores row 1, label 'drama': expected a number in \[0, 1\], got 1\.5 .*sigmoid",
    ),
    (
        "scores",
        np.array([[0.1, 0.2, 0.3, -0.2]]),
        {},
        r"scores row 0, label 'comedy': expected a number in \[0, 1\], got -0\.2",
    ),
    (
        "scores",
        np.array([[0.1, 0.2, 0.3, 0.4], [0.1, 0.2, np.nan, 0.4]]),
        {},
        r"scores row 1, label 'horror': expected a finite number in \[0, 1\], got nan",
    ),
    (
        "scores",
        np.array([[np.inf, 0.2, 0.3, 0.4]], dtype=np.float32),
        {"dtype": None},
        r"scores row 0, label 'action': expected a finite number in \[0, 1\], got inf",
    ),
    (
        "scores",
        [{"action": 0.5}, {"horror": 2}],
        {},
        r"scores row 1, label 'horror': expected a number in \[0, 1\], got 2 ",
    ),
    (
        "scores",
        [{"action": float("nan")}],
        {},
        r"scores row 0, label 'action': expected a finite number in \[0, 1\], got nan",
    ),
    (
        "scores",
        np.array([[0, 1, 3, 0]]),
        {},
        r"scores row 0, label 'horror': expected a number in \[0, 1\], got 3 \(int\)",
    ),
    # multi-hot values other than 0/1
    (
        "labels",
        np.array([[0, 1, 0, 0], [0, 0, 2, 0]]),
        {},
        r"labels row 1, label 'horror': expected 0 or 1, got 2 \(int\)",
    ),
    (
        "labels",
        [[0, 1, 0, 0], [0, 0, 0, 5]],
        {},
        r"labels row 1, label 'comedy': expected 0 or 1, got 5 .*form='indices'",
    ),
    (
        "labels",
        np.array([[0.0, 0.7, 0.0, 0.0]]),
        {},
        r"labels row 0, label 'drama': expected 0 or 1, got 0\.7 .*encode_scores",
    ),
    ("labels", [{"drama": 0.3}], {}, r"labels row 0, label 'drama': expected 0 or 1, got 0\.3"),
    # unknown names
    (
        "labels",
        [["action"], ["drama", "thriller"]],
        {},
        r"labels row 1, label 'thriller': expected one of the 4 label names, got 'thriller'",
    ),
    (
        "scores",
        [{"action": 0.1}, {"thriller": 0.3}],
        {},
        r"scores row 1, label 'thriller': .* got 'thriller'",
    ),
    # indices out of range, negative, non-integer
    ("labels", [[0, 2], [4]], {}, r"labels row 1: expected a label index in \[0, 4\), got 4"),
    ("labels", [[0], [1, -1]], {}, r"labels row 1: expected a label index in \[0, 4\), got -1"),
    (
        "labels",
        [[0], [1.0]],
        {"form": "indices"},
        r"labels row 1: expected an integer label index, got 1\.0",
    ),
    (
        "labels",
        [[0], ["drama"]],
        {"form": "indices"},
        r"labels row 1: expected an integer label index, got 'drama'",
    ),
    ("labels", [["action"], [1]], {}, r"labels row 1: expected a label name \(str\), got 1"),
    # ragged widths of dense rows
    (
        "scores",
        [[0.1, 0.2, 0.3, 0.4], [0.1, 0.2]],
        {},
        r"scores row 1: expected 4 values, one per label, got \[0\.1, 0\.2\]",
    ),
    (
        "labels",
        [[0, 1, 0, 1], [1, 0]],
        {"form": "multi_hot"},
        r"labels row 1: expected 4 values, one per label, got \[1, 0\].*form='indices'",
    ),
    # wrong dtypes: strings, objects, complex
    (
        "scores",
        [[0.1, "0.2", 0.3, 0.4]],
        {},
        r"scores row 0, label 'drama': expected a number, got '0\.2' \(str\)",
    ),
    (
        "scores",
        [{"drama": "high"}],
        {},
        r"scores row 0, label 'drama': expected a number, got 'high'",
    ),
    ("scores", [{"drama": None}], {}, r"scores row 0, label 'drama': expected a number, got None"),
    (
        "scores",
        np.array([["a", "b", "c", "d"]]),
        {},
        r"scores: expected a bool, integer or float array, got '<U1'",
    ),
    (
        "scores",
        np.zeros((2, 4), dtype=object),
        {},
        r"scores: expected a bool, integer or float array, got 'object'",
    ),
    (
        "labels",
        np.zeros((2, 4), dtype=np.complex128),
        {},
        r"labels: expected a bool, integer or float array, got 'complex128'",
    ),
    # wrong number of dimensions / columns
    (
        "scores",
        np.array([0.1, 0.2, 0.3, 0.4]),
        {},
        r"scores: expected an \(n, L\) array with L=4, got \(4,\).*reshape\(1, -1\)",
    ),
    (
        "labels",
        np.zeros((2, 4, 1)),
        {},
        r"labels: expected an \(n, L\) array with L=4, got \(2, 4, 1\)",
    ),
    (
        "scores",
        np.zeros((2, 3)),
        {},
        r"scores: expected an \(n, 4\) array, one column per label, got \(2, 3\)",
    ),
    # not rows at all
    (
        "labels",
        ["action", "drama"],
        {},
        r"labels row 0: expected a list of labels, got 'action'.*\[\[\.\.\.\]\]",
    ),
    ("labels", "action", {}, r"labels: expected an \(n, L\) array, a list of rows"),
    ("labels", 3, {}, r"labels: expected .* got 3 \(int\)"),
    ("labels", [{"action": 1}, ["drama"]], {}, r"labels row 1: expected a dict of label -> score"),
    ("labels", Y, {"form": "dict"}, r"labels: expected a dict or a list of dicts"),
    # bad arguments
    ("labels", Y, {"unknown": "skip"}, r"unknown: expected 'error' or 'ignore', got 'skip'"),
    ("labels", Y, {"form": "dense"}, r"form: expected one of 'auto', .* got 'dense'"),
    ("scores", SCORES, {"dtype": np.int64}, r"dtype: expected a float dtype"),
    ("scores", [{}], {"missing": 2.0}, r"missing: expected a number in \[0, 1\], got 2\.0"),
]


@pytest.mark.parametrize(
    ("field", "x", "kwargs", "pattern"),
    BAD_INPUTS,
    ids=[f"{i}-{case[3][:30]}" for i, case in enumerate(BAD_INPUTS)],
)
def test_bad_input_names_row_label_and_value(
    field: str, x: Any, kwargs: dict[str, Any], pattern: str
) -> None:
    encode = SPACE.encode_labels if field == "labels" else SPACE.encode_scores
    with pytest.raises(InvalidInputError, match=pattern) as info:
        encode(x, **kwargs)
    assert isinstance(info.value, ValueError)


def test_error_carries_its_parts_as_attributes() -> None:
    with pytest.raises(InvalidInputError) as info:
        SPACE.encode_scores(np.array([[0.1, 0.2, 0.3, 0.4], [0.1, 0.2, 0.3, 1.25]]))
    err = info.value
    assert (err.field, err.row, err.label, err.got) == ("scores", 1, "comedy", 1.25)
    assert type(err.got) is float  # a plain float, not np.float64, in messages and JSON


def test_sparse_values_are_validated() -> None:
    with pytest.raises(
        InvalidInputError, match=r"labels row 0, label 'horror': expected 0 or 1, got 3"
    ):
        SPACE.encode_labels(_sparse(np.array([[0, 0, 3, 0]])))


# ------------------------------------------------------------------ decoding, round trips
def test_decoders() -> None:
    assert SPACE.decode_labels(Y) == LABEL_NAMES
    assert SPACE.decode_indices(Y) == INDICES
    assert SPACE.decode_labels(Y.astype(int).tolist()) == LABEL_NAMES
    decoded = SPACE.decode_scores(SCORES)
    assert decoded[0] == {"action": 0.9, "drama": 0.1, "horror": 0.7, "comedy": 0.0}
    assert all(type(v) is float for row in decoded for v in row.values())
    with pytest.raises(InvalidInputError, match=r"labels row 0, label 'drama': expected 0 or 1"):
        SPACE.decode_labels(np.array([[0, 2, 0, 0]]))
    with pytest.raises(InvalidInputError, match=r"scores: expected an \(n, 4\) array"):
        SPACE.decode_scores(np.zeros((1, 3)))


def test_round_trips_through_every_form() -> None:
    names = SPACE.decode_labels(Y)
    indices = SPACE.decode_indices(Y)
    dicts = SPACE.decode_scores(Y.astype(float))
    np.testing.assert_array_equal(SPACE.encode_labels(names), Y)
    np.testing.assert_array_equal(SPACE.encode_labels(indices, form="indices"), Y)
    np.testing.assert_array_equal(SPACE.encode_labels(dicts), Y)
    np.testing.assert_array_equal(SPACE.encode_scores(SPACE.decode_scores(SCORES)), SCORES)
    assert SPACE.decode_labels(SPACE.encode_labels(LABEL_NAMES)) == LABEL_NAMES
    assert SPACE.decode_indices(SPACE.encode_labels(INDICES, form="indices")) == INDICES


# ------------------------------------------------------------------ properties
@st.composite
def spaces_and_matrices(draw: st.DrawFn) -> tuple[LabelSpace, np.ndarray]:
    names = draw(st.lists(st.text(min_size=1, max_size=5), min_size=1, max_size=8, unique=True))
    n = draw(st.integers(0, 12))
    y = draw(hnp.arrays(np.bool_, (n, len(names))))
    return LabelSpace(names), y


@settings(max_examples=60, deadline=None)
@given(spaces_and_matrices())
def test_multi_hot_to_names_indices_dicts_and_back_is_identity(
    case: tuple[LabelSpace, np.ndarray],
) -> None:
    space, y = case
    np.testing.assert_array_equal(space.encode_labels(space.decode_labels(y), form="names"), y)
    np.testing.assert_array_equal(space.encode_labels(space.decode_labels(y)), y)
    np.testing.assert_array_equal(space.encode_labels(space.decode_indices(y), form="indices"), y)
    np.testing.assert_array_equal(space.encode_labels(space.decode_scores(y)), y)


@settings(max_examples=60, deadline=None)
@given(spaces_and_matrices(), st.randoms(use_true_random=False))
def test_permuting_the_label_space_permutes_columns(
    case: tuple[LabelSpace, np.ndarray], rnd: Any
) -> None:
    space, y = case
    perm = list(range(len(space)))
    rnd.shuffle(perm)
    permuted = LabelSpace([space.names[p] for p in perm])
    names = space.decode_labels(y)
    np.testing.assert_array_equal(permuted.encode_labels(names, form="names"), y[:, perm])
    scores = y * 0.5
    dicts = space.decode_scores(scores)
    np.testing.assert_array_equal(permuted.encode_scores(dicts), scores[:, perm])
