"""Performance estimation without actuals (CBPE): oracles, band coverage, shifts, errors."""

from __future__ import annotations

import json
import warnings

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.isotonic import IsotonicRegression

from labelwatch.errors import IncompatibleMergeError, InvalidInputError
from labelwatch.metrics import ScoreSketch, estimate_performance, fit_calibration
from labelwatch.metrics._estimate import isotonic

N_LABELS = 20
NAMES = [f"l{i}" for i in range(N_LABELS)]


def _traffic(
    rng: np.random.Generator, n: int, power: float = 1.0
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_]]:
    """Calibrated traffic: scores from per-label Beta laws (``**power`` moves them),
    labels drawn as Bernoulli(score)."""
    a = np.linspace(0.5, 3, N_LABELS)
    s = rng.beta(a, 4.5 - a, size=(n, N_LABELS)) ** power
    return s, rng.random((n, N_LABELS)) < s


def _realized_f1(sk: ScoreSketch, average: str | None = None) -> npt.NDArray[np.float64]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return np.asarray(sk.f1(0.5, average=average))  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def calibration_and_rng() -> tuple[object, np.random.Generator]:
    rng = np.random.default_rng(0)
    base = ScoreSketch.from_arrays(NAMES, *_traffic(rng, 20000))
    return fit_calibration(base), rng


# ----------------------------------------------------------------- oracles
@settings(max_examples=30, deadline=None)
@given(st.integers(0, 10_000), st.integers(2, 60))
def test_isotonic_equals_sklearn(seed: int, m: int) -> None:
    rng = np.random.default_rng(seed)
    y = rng.random((3, m))
    w = rng.uniform(0.1, 5, size=(3, m))
    got = isotonic(y, w)
    x = np.arange(m)
    for i in range(3):
        want = IsotonicRegression().fit(x, y[i], sample_weight=w[i]).predict(x)
        np.testing.assert_allclose(got[i], want, rtol=1e-10, atol=1e-12)


def test_calibration_is_monotone_and_near_identity_for_a_calibrated_model() -> None:
    rng = np.random.default_rng(1)
    base = ScoreSketch.from_arrays(NAMES, *_traffic(rng, 20000), bins=20)
    cal = fit_calibration(base)
    assert (np.diff(cal.probability, axis=1) >= -1e-12).all()
    centers = np.r_[0, (base.edges[1:] + base.edges[:-1]) / 2]
    full = base.counts[:, :2].sum(axis=1) >= 200  # well-filled bins
    assert np.abs(cal.probability - centers)[full].max() < 0.08


def test_expected_counts_equal_a_slow_loop() -> None:
    rng = np.random.default_rng(2)
    base = ScoreSketch.from_arrays(NAMES[:3], *(a[:, :3] for a in _traffic(rng, 3000)), bins=10)
    win = ScoreSketch.from_arrays(NAMES[:3], _traffic(rng, 500)[0][:, :3], bins=10)
    cal = fit_calibration(base)
    est = estimate_performance(cal, win)
    counts = win.counts.sum(axis=1)
    for i in range(3):
        tp = fp = fn = tn = 0.0
        for b, e in enumerate(win.edges):
            c, p = counts[i, b], cal.probability[i, b]
            if b > 0 and win.edges[b - 1] >= 0.5:  # the bin lies above the threshold
                tp, fp = tp + c * p, fp + c * (1 - p)
            else:
                fn, tn = fn + c * p, tn + c * (1 - p)
            assert e >= 0
        assert (est.tp[i], est.fp[i], est.fn[i], est.tn[i]) == pytest.approx((tp, fp, fn, tn))
        assert est.f1[i] == pytest.approx(2 * tp / (2 * tp + fp + fn))
        assert est.f1_lower[i] < est.f1[i] < est.f1_upper[i]
    assert est.micro["f1"][0] == pytest.approx(
        2 * est.tp.sum() / (2 * est.tp.sum() + est.fp.sum() + est.fn.sum())
    )
    assert est.macro["recall"][0] == pytest.approx(est.recall.mean())
    d = json.loads(json.dumps(est.to_dict(), allow_nan=False))
    assert d["labels"] == NAMES[:3] and d["micro"]["f1"][0] == pytest.approx(est.micro["f1"][0])


# ---------------------------------------------------------------- coverage
def test_band_covers_the_realized_f1_on_calibrated_traffic(
    calibration_and_rng: tuple[object, np.random.Generator],
) -> None:
    """A calibration fitted on 20000 labelled rows; 200 windows of 1000 rows of the same
    calibrated traffic. The 95% band holds the realized F1 in 95.4% of the 4000
    (window, label) pairs here, the micro F1 in 94% and the macro F1 in 95% of windows;
    mean per-label band width 0.08."""
    cal, rng = calibration_and_rng
    hits, micro, macro = [], [], []
    for _ in range(200):
        win = ScoreSketch.from_arrays(NAMES, *_traffic(rng, 1000))
        est = estimate_performance(cal, win)  # type: ignore[arg-type]
        real = _realized_f1(win)
        hits.append((real >= est.f1_lower) & (real <= est.f1_upper))
        _, lo, hi = est.micro["f1"]
        micro.append(lo <= float(_realized_f1(win, "micro")) <= hi)
        _, lo, hi = est.macro["f1"]
        macro.append(lo <= float(_realized_f1(win, "macro")) <= hi)
    coverage = float(np.mean(hits))
    print(
        f"coverage per label {coverage:.3f}, micro {np.mean(micro):.3f}, macro {np.mean(macro):.3f}"
    )
    assert 0.9 <= coverage <= 0.99  # a 95% band: neither too narrow nor uselessly wide
    assert np.mean(micro) >= 0.85 and np.mean(macro) >= 0.85


def test_estimate_moves_with_a_shift(
    calibration_and_rng: tuple[object, np.random.Generator],
) -> None:
    """Scores pushed down (score ** 2, still calibrated: labels follow the new scores)
    lower the realized F1 of every label; the estimate falls too, and stays in its band
    for most labels."""
    cal, rng = calibration_and_rng
    same = ScoreSketch.from_arrays(NAMES, *_traffic(rng, 5000))
    shifted = ScoreSketch.from_arrays(NAMES, *_traffic(rng, 5000, power=2.0))
    before = estimate_performance(cal, same)  # type: ignore[arg-type]
    after = estimate_performance(cal, shifted)  # type: ignore[arg-type]
    real_before, real_after = _realized_f1(same), _realized_f1(shifted)
    assert (real_after < real_before).all()
    assert (after.f1 < before.f1).all()
    assert after.macro["f1"][0] < before.macro["f1"][0] - 0.05
    inside = (real_after >= after.f1_lower) & (real_after <= after.f1_upper)
    assert inside.mean() >= 0.8


def test_unlabeled_outcome_uses_only_pending_rows() -> None:
    rng = np.random.default_rng(3)
    base = ScoreSketch.from_arrays(NAMES, *_traffic(rng, 5000))
    s, y = _traffic(rng, 600)
    labelled = ScoreSketch.from_arrays(NAMES, s[:400], y[:400])
    pending = ScoreSketch.from_arrays(NAMES, s[400:])
    cal = fit_calibration(base)
    est = estimate_performance(cal, labelled + pending, outcome="unlabeled")
    np.testing.assert_allclose(est.tp, estimate_performance(cal, pending).tp)
    np.testing.assert_allclose(est.n, 200)


# ------------------------------------------------------------------ errors
def test_bad_input_names_the_field() -> None:
    rng = np.random.default_rng(4)
    base = ScoreSketch.from_arrays(NAMES, *_traffic(rng, 500))
    cal = fit_calibration(base)
    cases = [
        (lambda: fit_calibration("sketch"), "baseline"),  # type: ignore[arg-type]
        (lambda: fit_calibration(base, prior_strength=0), "prior_strength"),
        (lambda: estimate_performance("cal", base), "calibration"),  # type: ignore[arg-type]
        (lambda: estimate_performance(cal, None), "window"),  # type: ignore[arg-type]
        (lambda: estimate_performance(cal, base, 0.4321), "t"),
        (lambda: estimate_performance(cal, base, level=1.5), "level"),
        (lambda: estimate_performance(cal, base, outcome="maybe"), "outcome"),
        (
            lambda: estimate_performance(cal, ScoreSketch.empty(["new"])),
            "window",
        ),
    ]
    for call, field in cases:
        with pytest.raises(InvalidInputError) as err:
            call()
        assert err.value.field == field, field
    with pytest.raises(
        IncompatibleMergeError, match=r"calibration has bins=200.*window has bins=50"
    ):
        estimate_performance(cal, ScoreSketch.empty(NAMES, bins=50))
