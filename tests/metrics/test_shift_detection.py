"""Synthetic traffic with known shifts: each check flags exactly the shifted labels.

20 labels of prevalence 0.1 to 0.4 and scores sigmoid(N(-1, 1) + 2 y); in the window a
shift is injected into two labels (or one pair), separately for (a) the score
distribution, (b) prevalence, (c) co-occurrence, (d) cardinality; (e) unchanged traffic
stays quiet under the default distances. Over 50 seeds each,
every shift must be found and false alarms on the other labels stay within the bound
Benjamini-Hochberg gives: a null entry is rejected only if its p-value <= alpha R / m, so
with the m1 shifted entries always rejected (R ~ m1 + 1) each null entry's rate is about
alpha (m1 + 1) / m, and at most alpha. Each test states the rates measured on its seeds
(printed with ``-s``); the asserted bounds leave room for chance but would fail if BH were
not applied (raw p < alpha gives about alpha per null entry).
"""

from __future__ import annotations

import numpy as np

from labelwatch.metrics import (
    SampleStats,
    ScoreSketch,
    cardinality_drift,
    cooccurrence_drift,
    drift,
    rate_drift,
)

N_LABELS, ALPHA, SEEDS, ROWS = 20, 0.05, 50, 4000
NAMES = [f"l{i}" for i in range(N_LABELS)]
PREVALENCE = np.linspace(0.1, 0.4, N_LABELS)


def _traffic(
    rng: np.random.Generator,
    n: int = ROWS,
    *,
    offset: dict[int, float] | None = None,
    prevalence: dict[int, float] | None = None,
    tie: tuple[int, int] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Scores (n, L) and actuals (n, L). ``offset``: added to some labels' logits (the
    model's scores move, the labels do not); ``prevalence``: added to some prevalences;
    ``tie``: label j copies label i in 30% of rows and is drawn elsewhere so that its
    marginal stays p_j (both marginals unchanged, their co-occurrence up)."""
    p = PREVALENCE.copy()
    for k, dp in (prevalence or {}).items():
        p[k] += dp
    if tie is not None:
        i, j = tie
        p[j] = (p[j] - 0.3 * p[i]) / 0.7  # 0.3 p_i + 0.7 p'_j = p_j
    y = rng.random((n, N_LABELS)) < p
    if tie is not None:
        tied = rng.random(n) < 0.3
        y[tied, j] = y[tied, i]
    logits = rng.normal(-1.0, 1.0, size=(n, N_LABELS)) + 2.0 * y
    for k, d in (offset or {}).items():
        logits[:, k] += d
    return 1 / (1 + np.exp(-logits)), y


def _mask(*idx: int) -> np.ndarray:
    return np.isin(np.arange(N_LABELS), idx)


def _rate(false: int, trials: int) -> float:
    return false / trials


def test_a_score_shift_is_flagged_by_ks_and_psi_only_on_its_labels() -> None:
    """Scores of labels 3 and 7 move (+0.5 logit), their labels do not. KS (BH at 0.05),
    the predicted-positive-rate z-test and PSI on baseline deciles (threshold 0.1) flag
    exactly {3, 7}; the prevalence test nothing. Measured on 50 seeds, false alarms per
    null label: KS 0.0022 (2 of 900), predicted positive rate 0.0033 (3 of 900; BH bound
    about alpha 3 / 20 = 0.0075), PSI 0; prevalence 1 of 1000 (with no shifted label BH
    bounds the chance of any alarm in a seed by alpha). No shift missed."""
    want = _mask(3, 7)
    false_ks = false_ppr = false_psi = false_rate = seeds_with_rate_alarm = missed = 0
    for seed in range(SEEDS):
        rng = np.random.default_rng(seed)
        base = ScoreSketch.from_arrays(NAMES, *_traffic(rng), bins=100)
        cur = ScoreSketch.from_arrays(NAMES, *_traffic(rng, offset={3: 0.5, 7: 0.5}), bins=100)
        ks = drift(base, cur, "ks", alpha=ALPHA).significant
        psi = drift(base, cur, "psi", groups=10, threshold=0.1).significant
        rate = rate_drift(base, cur, "prevalence", alpha=ALPHA).significant
        ppr = rate_drift(base, cur, "predicted_positive_rate", alpha=ALPHA).significant
        false_ks += int((ks & ~want).sum())
        false_ppr += int((ppr & ~want).sum())
        false_psi += int((psi & ~want).sum())
        false_rate += int(rate.sum())
        seeds_with_rate_alarm += int(rate.any())
        missed += int((want & ~ks).sum() + (want & ~psi).sum() + (want & ~ppr).sum())
    ks_rate, ppr_rate = _rate(false_ks, SEEDS * 18), _rate(false_ppr, SEEDS * 18)
    print(
        f"(a) ks {ks_rate:.4f}, predicted positive rate {ppr_rate:.4f}, psi {false_psi}, "
        f"prevalence {false_rate}, missed {missed}"
    )
    assert missed == 0 and false_psi == 0
    assert ks_rate <= 2 * ALPHA * 3 / N_LABELS and ppr_rate <= 2 * ALPHA * 3 / N_LABELS
    assert seeds_with_rate_alarm <= 2 * ALPHA * SEEDS


def test_b_a_prevalence_shift_is_flagged_on_its_labels() -> None:
    """Prevalence of labels 11 and 15 rises by 0.1 (their score distributions follow).
    The two-proportion z-test (BH at 0.05) flags exactly {11, 15}, and so does KS.
    Measured on 50 seeds, false alarms per null label: prevalence 0.0100 (9 of 900), KS
    0.0044 (4 of 900); BH bound about alpha 3 / 20 = 0.0075. No shift missed."""
    want = _mask(11, 15)
    false_rate = false_ks = missed = 0
    for seed in range(SEEDS):
        rng = np.random.default_rng(1000 + seed)
        base = ScoreSketch.from_arrays(NAMES, *_traffic(rng), bins=100)
        cur = ScoreSketch.from_arrays(
            NAMES, *_traffic(rng, prevalence={11: 0.1, 15: 0.1}), bins=100
        )
        rate = rate_drift(base, cur, "prevalence", alpha=ALPHA).significant
        ks = drift(base, cur, "ks", alpha=ALPHA).significant
        false_rate += int((rate & ~want).sum())
        false_ks += int((ks & ~want).sum())
        missed += int((want & ~rate).sum() + (want & ~ks).sum())
    prev_rate, ks_rate = _rate(false_rate, SEEDS * 18), _rate(false_ks, SEEDS * 18)
    print(f"(b) prevalence {prev_rate:.4f}, ks {ks_rate:.4f}, missed {missed}")
    assert missed == 0
    assert prev_rate <= 2 * ALPHA * 3 / N_LABELS and ks_rate <= 2 * ALPHA * 3 / N_LABELS


def test_c_a_cooccurrence_shift_is_flagged_on_its_pair() -> None:
    """Labels 4 and 5 (prevalence 0.16, 0.18) get tied in 30% of rows, both marginals
    unchanged: their pair rate goes 0.029 -> 0.070. The pair z-test (BH over the 190
    pairs) flags exactly "l4&l5", the conditional one exactly "l5|l4" and "l4|l5"; the
    prevalence test nothing. Measured on 50 seeds: 6 false pairs of 9450 (0.00063; bound
    about alpha 2 / 190 = 0.00053), conditional 8 of 18900 (0.00042; about 0.0004),
    prevalence 2 alarms of 1000, cardinality (mean unchanged, variance up) 2 of 50 seeds.
    No shift missed."""
    pair = "l4&l5"
    false_pairs = false_cond = false_rate = false_card = missed = 0
    for seed in range(SEEDS):
        rng = np.random.default_rng(2000 + seed)
        s0, y0 = _traffic(rng)
        s1, y1 = _traffic(rng, tie=(4, 5))
        b, c = SampleStats.from_arrays(NAMES, s0, y0), SampleStats.from_arrays(NAMES, s1, y1)
        res = cooccurrence_drift(b, c, alpha=ALPHA)
        cond = cooccurrence_drift(b, c, measure="conditional", alpha=ALPHA)
        want_cond = np.isin(cond.labels, ["l5|l4", "l4|l5"])
        missed += int(pair not in res.flagged) + int((want_cond & ~cond.significant).sum())
        false_pairs += len(set(res.flagged) - {pair})
        false_cond += int((cond.significant & ~want_cond).sum())
        sk0 = ScoreSketch.from_arrays(NAMES, s0, y0, bins=20)
        sk1 = ScoreSketch.from_arrays(NAMES, s1, y1, bins=20)
        false_rate += int(rate_drift(sk0, sk1, alpha=ALPHA).significant.sum())
        false_card += int(cardinality_drift(b, c, "actual", alpha=ALPHA).significant[0])
    pair_rate = _rate(false_pairs, SEEDS * 189)
    print(
        f"(c) pairs {false_pairs} ({pair_rate:.5f}), conditional {false_cond}, "
        f"rate {false_rate}, cardinality {false_card}"
    )
    assert missed == 0
    assert (
        pair_rate <= 2 * ALPHA * 2 / 190 and _rate(false_cond, SEEDS * 378) <= 2 * ALPHA * 3 / 380
    )
    assert false_rate <= 2 * ALPHA * SEEDS
    assert false_card <= 6  # mean unchanged, variance up: one test per seed at alpha


def test_d_a_cardinality_shift_is_flagged_and_attributed() -> None:
    """Prevalence of labels 8 and 16 rises by 0.15 each: mean actual cardinality +0.3.
    The cardinality z-test flags every shifted window, actual and predicted (scores over
    0.5); on a second unshifted window it false-alarms in 1 (actual) and 3 (predicted) of
    50 seeds (bound alpha = 0.05, one test per seed). The prevalence test attributes the
    change to exactly {8, 16}: 0.0100 false alarms per null label (9 of 900)."""
    want = _mask(8, 16)
    missed = false_card = false_pred = false_rate = 0
    for seed in range(SEEDS):
        rng = np.random.default_rng(3000 + seed)
        base, null = _traffic(rng), _traffic(rng)
        shifted = _traffic(rng, prevalence={8: 0.15, 16: 0.15})
        s0, s_null, s1 = (SampleStats.from_arrays(NAMES, *t) for t in (base, null, shifted))
        missed += int(not cardinality_drift(s0, s1, "actual", alpha=ALPHA).significant[0])
        missed += int(not cardinality_drift(s0, s1, "predicted", alpha=ALPHA).significant[0])
        false_card += int(cardinality_drift(s0, s_null, "actual", alpha=ALPHA).significant[0])
        false_pred += int(cardinality_drift(s0, s_null, alpha=ALPHA).significant[0])
        sk0 = ScoreSketch.from_arrays(NAMES, *base, bins=20)
        sk1 = ScoreSketch.from_arrays(NAMES, *shifted, bins=20)
        rate = rate_drift(sk0, sk1, alpha=ALPHA).significant
        missed += int((want & ~rate).sum())
        false_rate += int((rate & ~want).sum())
    prev_rate = _rate(false_rate, SEEDS * 18)
    print(f"(d) cardinality {false_card}/{SEEDS}, predicted {false_pred}/{SEEDS}, {prev_rate:.4f}")
    assert missed == 0
    # one test per seed at alpha: 50 Bernoulli(0.05) draws exceed 6 with chance ~1%
    assert false_card <= 6 and false_pred <= 6
    assert prev_rate <= 2 * ALPHA * 3 / N_LABELS


def test_unchanged_traffic_is_quiet_under_the_default_distances() -> None:
    """No shift; the sketch's default 200 bins, 1000 rows a side, 50 seeds. psi, js and
    hellinger at their default thresholds on baseline deciles (``drift``'s default) flag 1
    of 3000 (label, distance) entries; on the 200 raw bins (``groups=None``, the default
    before) sampling noise alone passed every threshold: 3000 of 3000."""
    quiet = noisy = 0
    for seed in range(SEEDS):
        rng = np.random.default_rng(4000 + seed)
        base = ScoreSketch.from_arrays(NAMES, *_traffic(rng, 1000))
        cur = ScoreSketch.from_arrays(NAMES, *_traffic(rng, 1000))
        for method in ("psi", "js", "hellinger"):
            quiet += int(drift(base, cur, method).significant.sum())  # type: ignore[arg-type]
            noisy += int(drift(base, cur, method, groups=None).significant.sum())  # type: ignore[arg-type]
    print(f"(e) deciles {quiet} of {3 * SEEDS * N_LABELS}, raw bins {noisy}")
    assert quiet <= ALPHA * 3 * SEEDS * N_LABELS / 10
    assert noisy == 3 * SEEDS * N_LABELS
