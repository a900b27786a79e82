"""Monitors declared as data, their runs, incidents and webhooks, on SQLite and PostgreSQL.

Oracles: scikit-learn's F1 on the same rows, scipy-free direct counts, and a local HTTP
receiver that records what the webhook POSTs.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from sklearn.metrics import f1_score

from labelwatch.errors import InvalidInputError, NotFoundError
from labelwatch.metrics import SampleStats, ScoreSketch
from labelwatch.monitor import Monitor
from labelwatch.monitor._monitors import MonitorSpec, parse_specs
from labelwatch.monitor._webhooks import sign
from tests.webhooks import Receiver

T0 = 1_700_006_400.0  # 2023-11-15 00:00 UTC
H = 3600.0
NAMES = [f"l{j}" for j in range(8)]


def _version(mon: Monitor, **kw: Any) -> None:
    args: dict[str, Any] = {"features": {"country": "categorical"}, "predictions": {"genres": "dict"}}
    args.update(kw)
    mon.create_model_version("m", "v1", **args)


def _traffic(
    rng: np.random.Generator, n: int, hour: int, *, prefix: str, shift: dict[str, float] | None = None
) -> tuple[list[dict[str, Any]], np.ndarray, np.ndarray]:
    """``n`` predictions in hour ``hour`` after T0 with calibrated scores (actual ~
    Bernoulli(score)); ``shift`` adds to some labels' scores (clipped)."""
    base = np.linspace(0.15, 0.6, len(NAMES))
    s = np.clip(rng.beta(2, 2, size=(n, len(NAMES))) * base * 1.6, 0.001, 0.999)
    for name, d in (shift or {}).items():
        j = NAMES.index(name)
        s[:, j] = np.clip(s[:, j] + d, 0.001, 0.999)
    s = np.round(s, 4)
    y = (rng.random(s.shape) < s).astype(int)
    recs = [
        {
            "id": f"{prefix}{i}",
            "timestamp": T0 + hour * H + float(rng.integers(0, 3600)),
            "features": {"country": "US"},
            "predictions": {"genres": dict(zip(NAMES, s[i].tolist(), strict=True))},
        }
        for i in range(n)
    ]
    return recs, s, y


def _actuals(recs: list[dict[str, Any]], y: np.ndarray) -> list[dict[str, Any]]:
    return [
        {"id": r["id"], "actuals": {"genres": dict(zip(NAMES, map(float, y[i]), strict=True))}}
        for i, r in enumerate(recs)
    ]


def _baseline(mon: Monitor, s: np.ndarray, y: np.ndarray) -> None:
    sk = ScoreSketch.from_arrays(NAMES, s, y, thresholds=[0.5])
    st = SampleStats.from_arrays(NAMES, s, y, thresholds=0.5)
    mon.log_baseline("m", "v1", "training", "genres", sk, st)


# ------------------------------------------------------------------ the spec
def test_specs_from_yaml_and_json_round_trip_and_bad_keys_are_named() -> None:
    text = """
monitors:
  - name: f1-floor
    model_id: m
    model_version: v1
    metric: f1
    labels: {top_k: 3}
    window: 2d
    condition: {below: 0.4}
    severity: high
  - name: drift
    model_id: m
    model_version: v1
    metric: psi
"""
    specs = [MonitorSpec.from_dict(d) for d in parse_specs(text)]
    assert specs[0].labels == 3 and specs[0].window_hours == 48
    assert specs[0].condition.kind == "below" and specs[0].condition.value == 0.4
    assert specs[1].condition.kind == "significant"  # a drift metric's default
    for spec in specs:
        assert MonitorSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec
    one = parse_specs(json.dumps(specs[1].to_dict()))
    assert MonitorSpec.from_dict(one[0]) == specs[1]
    good = {"name": "x", "model_id": "m", "model_version": "v1", "metric": "f1",
            "condition": {"below": 0.5}}
    cases = [
        ({"window": "3 weeks"}, "monitor.window"),
        ({"metric": "f2"}, "monitor.metric"),
        ({"severity": "urgent"}, "monitor.severity"),
        ({"labels": {"top_k": 0}}, "monitor.labels.top_k"),
        ({"condition": {"below": 0.5, "above": 0.9}}, "monitor.condition"),
        ({"condition": {"significant": True}}, "monitor.condition"),
        ({"colour": "red"}, "monitor"),
        ({"min_samples": -1}, "monitor.min_samples"),
        ({"average": "samples"}, "monitor.average"),
    ]
    for change, field in cases:
        with pytest.raises(InvalidInputError) as err:
            MonitorSpec.from_dict({**good, **change})
        assert err.value.field == field, change
    with pytest.raises(InvalidInputError) as err:
        parse_specs("monitors: [unclosed")
    assert err.value.field == "monitors"


def test_apply_is_idempotent_and_checks_the_version(mon: Monitor) -> None:
    _version(mon)
    spec = {"name": "f1", "model_id": "m", "model_version": "v1", "metric": "f1",
            "condition": {"below": 0.5}}
    assert mon.apply_monitors(spec) == [{"name": "f1", "action": "created"}]
    assert mon.apply_monitors([spec]) == [{"name": "f1", "action": "unchanged"}]
    assert mon.apply_monitors({**spec, "severity": "high"}) == [{"name": "f1", "action": "updated"}]
    assert mon.get_monitor("f1")["severity"] == "high"
    with pytest.raises(NotFoundError):
        mon.apply_monitors({**spec, "name": "g", "model_version": "v9"})
    with pytest.raises(InvalidInputError) as err:
        mon.apply_monitors([{**spec, "name": "g"}, {**spec, "name": "h", "field": "nope"}])
    assert err.value.field == "monitors[1].field"
    assert [m["name"] for m in mon.list_monitors()] == ["f1"]  # nothing half-applied
    mon.delete_monitor("f1")
    assert mon.list_monitors() == []


# ------------------------------------------------------- runs and incidents
def test_f1_monitor_flags_exactly_the_labels_below_the_bound_as_one_incident(mon: Monitor) -> None:
    """Per label F1 in the window equals scikit-learn's; the labels below the bound with
    enough labelled rows are the incident's breaches, most severe first."""
    _version(mon)
    rng = np.random.default_rng(3)
    recs, s, y = [], [], []
    for hour in range(3):
        r, sc, yy = _traffic(rng, 150, hour, prefix=f"h{hour}-")
        recs += r
        s.append(sc)
        y.append(yy)
    scores, truth = np.vstack(s), np.vstack(y)
    mon.log_predictions("m", "v1", "production", recs)
    mon.log_actuals("m", "v1", "production", _actuals(recs, truth))
    f1 = f1_score(truth, scores > 0.5, average=None, zero_division=np.nan)
    bound = float(np.nanmedian(f1))
    mon.apply_monitors({"name": "f1-floor", "model_id": "m", "model_version": "v1",
                        "metric": "f1", "window": "3h", "condition": {"below": bound},
                        "min_samples": 50, "severity": "high"})
    [run] = mon.run_monitors(now=T0 + 3 * H)
    # each result states the method, the condition, the sample sizes
    assert (run["metric"], run["condition"], run["min_samples"]) == ("f1", {"below": bound}, 50)
    assert [e["n"] for e in run["entries"]] == [450.0] * len(NAMES)
    values = {e["label"]: e["value"] for e in run["entries"]}
    for j, name in enumerate(NAMES):
        if np.isnan(f1[j]):
            assert values[name] is None
        else:
            assert values[name] == pytest.approx(f1[j], abs=1e-12)
    expected = {NAMES[j] for j in range(len(NAMES)) if f1[j] < bound}
    assert run["status"] == "breach"
    [incident] = mon.incidents()
    assert incident["id"] == run["incident"] and incident["status"] == "open"
    breaches = incident["breaches"]
    assert {b["label"] for b in breaches} == expected
    excess = [b["excess"] for b in breaches]
    assert excess == sorted(excess, reverse=True)
    assert excess[0] == pytest.approx(bound - np.nanmin(f1))
    # the same window again: deduplicated into the same incident, nothing new
    [again] = mon.run_monitors(now=T0 + 3 * H)
    assert again["incident"] == incident["id"]
    assert mon.incidents()[0]["runs"] == 1 and len(mon.incidents()) == 1
    # acknowledged, then a clear window resolves it; a new breach opens a new incident
    mon.acknowledge_incident(incident["id"], by="alice")
    assert mon.get_incident(incident["id"])["acknowledged_by"] == "alice"
    mon.apply_monitors({"name": "f1-floor", "model_id": "m", "model_version": "v1",
                        "metric": "f1", "window": "3h", "condition": {"below": 0.0},
                        "min_samples": 50, "severity": "high"})
    [clear] = mon.run_monitors(now=T0 + 3 * H)
    assert clear["status"] == "ok"
    assert mon.get_incident(incident["id"])["status"] == "resolved"
    history = mon.monitor_history("f1-floor")
    # the same metric: the window's stored evaluation is replaced, not duplicated
    assert [h["status"] for h in history] == ["ok"]
    assert mon.incidents(status="open") == []


def test_too_few_samples_is_a_stated_result_not_an_alarm(mon: Monitor) -> None:
    _version(mon)
    rng = np.random.default_rng(4)
    recs, _s, y = _traffic(rng, 30, 0, prefix="p")
    mon.log_predictions("m", "v1", "production", recs)
    mon.log_actuals("m", "v1", "production", _actuals(recs, y))
    mon.apply_monitors({"name": "f1", "model_id": "m", "model_version": "v1", "metric": "f1",
                        "window": "1h", "condition": {"below": 1.01}, "min_samples": 100})
    [run] = mon.run_monitors(now=T0 + H)
    assert run["status"] == "too_few"
    assert {e["status"] for e in run["entries"]} == {"too_few"}
    assert all(e["n"] == 30 for e in run["entries"])
    assert mon.incidents() == []


def test_drift_monitor_against_training_flags_the_shifted_labels(mon: Monitor) -> None:
    _version(mon)
    rng = np.random.default_rng(5)
    _r, s_base, y_base = _traffic(rng, 4000, 0, prefix="b")
    _baseline(mon, s_base, y_base)
    recs, _s, _y = _traffic(rng, 2000, 10, prefix="p", shift={"l2": 0.3, "l5": -0.25})
    mon.log_predictions("m", "v1", "production", recs)
    mon.apply_monitors([
        {"name": "psi", "model_id": "m", "model_version": "v1", "metric": "psi",
         "window": "1d", "condition": {"above": 0.25}},
        {"name": "ks", "model_id": "m", "model_version": "v1", "metric": "ks", "window": "1d"},
    ])
    runs = {r["monitor"]: r for r in mon.run_monitors(now=T0 + 12 * H)}
    for name in ("psi", "ks"):
        flagged = {e["label"] for e in runs[name]["entries"] if e["status"] == "breach"}
        assert flagged == {"l2", "l5"}, name
    res = mon.drift("m", "v1", "production", start=T0, end=T0 + 12 * H, metric="js")
    assert set(res["flagged"]) == {"l2", "l5"}
    assert len(mon.incidents()) == 2


def test_relative_change_and_anomaly_of_volume(mon: Monitor) -> None:
    _version(mon)
    rng = np.random.default_rng(6)
    recs = []
    for hour in range(24):
        n = 40 if hour < 23 else 120
        r, _s, _y = _traffic(rng, n, hour, prefix=f"h{hour}-")
        recs += r
    mon.log_predictions("m", "v1", "production", recs)
    mon.apply_monitors([
        {"name": "vol-anomaly", "model_id": "m", "model_version": "v1", "metric": "volume",
         "window": "1h", "condition": {"anomaly": {"z": 4, "history": 20}}, "min_samples": 0},
        {"name": "vol-change", "model_id": "m", "model_version": "v1", "metric": "volume",
         "window": "1h", "condition": {"relative_change": 1.5, "direction": "up"},
         "min_samples": 0},
    ])
    runs = {r["monitor"]: r for r in mon.run_monitors(now=T0 + 24 * H)}
    [entry] = runs["vol-change"]["entries"]
    assert (entry["value"], entry["reference"]) == (120, 40)
    assert entry["change"] == pytest.approx(2.0) and entry["status"] == "breach"
    [anomaly] = runs["vol-anomaly"]["entries"]
    assert anomaly["reference"] == 40 and anomaly["status"] == "breach"
    # an ordinary hour is no anomaly
    quiet = {r["monitor"]: r for r in mon.run_monitors(now=T0 + 23 * H)}
    assert quiet["vol-anomaly"]["status"] == "ok"


# --------------------------------------------------------------- webhooks
@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver(fail=1) as r:
        yield r


def test_a_breach_delivers_one_signed_webhook_retried_after_a_failure(
    mon: Monitor, receiver: Receiver
) -> None:
    _version(mon)
    hook = mon.create_webhook("ops", receiver.url, secret="s3cret-value", min_severity="medium")
    assert hook["secret"] == "s3cret-value"
    assert mon.list_webhooks() == [
        {"name": "ops", "url": receiver.url, "min_severity": "medium",
         "created_at": hook["created_at"]}
    ]
    mon.create_webhook("pager", receiver.url + "/pager", secret="another-secret",
                       min_severity="critical")  # gets nothing: the monitor is high
    rng = np.random.default_rng(7)
    recs, _s, _y = _traffic(rng, 200, 0, prefix="p")
    mon.log_predictions("m", "v1", "production", recs)
    mon.apply_monitors({"name": "vol", "model_id": "m", "model_version": "v1",
                        "metric": "volume", "window": "1h", "condition": {"above": 100},
                        "severity": "high", "min_samples": 0})
    [run] = mon.run_monitors(now=T0 + H)
    assert run["status"] == "breach"
    first = mon.deliver_webhooks(now=T0 + H)
    assert first == {"delivered": 0, "retrying": 1, "failed": 0, "pending": 1}
    assert mon.deliver_webhooks(now=T0 + H + 1) == {
        "delivered": 0, "retrying": 0, "failed": 0, "pending": 1}  # backing off
    second = mon.deliver_webhooks(now=T0 + H + 2)
    assert second == {"delivered": 1, "retrying": 0, "failed": 0, "pending": 0}
    assert [c[2] for c in receiver.calls] == [500, 204]
    headers, body, _ = receiver.calls[1]
    assert receiver.calls[0][1] == body  # the retry resends the same bytes
    assert headers["X-Labelwatch-Signature"] == sign("s3cret-value", body)
    expected = hmac.new(b"s3cret-value", body, hashlib.sha256).hexdigest()
    assert headers["X-Labelwatch-Signature"] == "sha256=" + expected
    payload = json.loads(body)
    assert payload["event"] == "incident.opened"
    assert payload["incident"]["id"] == run["incident"]
    assert payload["incident"]["breaches"][0]["value"] == 200
    [delivery] = mon.deliveries(run["incident"])
    assert (delivery["status"], delivery["attempts"], delivery["webhook"]) == ("delivered", 2, "ops")
    # resolving through the API notifies too; nothing is sent twice
    mon.resolve_incident(run["incident"], by="bob")  # now: the wall clock's
    assert mon.deliver_webhooks()["delivered"] == 1
    events = [json.loads(c[1])["event"] for c in receiver.calls]
    assert events == ["incident.opened", "incident.opened", "incident.resolved"]


def test_an_unreachable_webhook_gives_up_after_max_attempts(mon: Monitor) -> None:
    _version(mon)
    mon.create_webhook("dead", "http://127.0.0.1:9/nothing-listens", secret="12345678")
    recs, _s, _y = _traffic(np.random.default_rng(8), 10, 0, prefix="p")
    mon.log_predictions("m", "v1", "production", recs)
    mon.apply_monitors({"name": "vol", "model_id": "m", "model_version": "v1",
                        "metric": "volume", "window": "1h", "condition": {"above": 1},
                        "min_samples": 0})
    mon.run_monitors(now=T0 + H)
    at = T0 + H
    for _ in range(3):
        out = mon.deliver_webhooks(now=at, max_attempts=3, timeout=1.0)
        at += 3600
    assert out == {"delivered": 0, "retrying": 0, "failed": 1, "pending": 0}
    [d] = mon.deliveries()
    assert d["status"] == "failed" and d["attempts"] == 3 and "Connect" in d["last_error"]


# ------------------------------------------------- late actuals, estimation
def test_late_actuals_re_evaluate_the_windows_they_touch(mon: Monitor) -> None:
    _version(mon)
    rng = np.random.default_rng(9)
    recs, s, _y = _traffic(rng, 300, 0, prefix="p")
    mon.log_predictions("m", "v1", "production", recs)
    mon.apply_monitors({"name": "recall", "model_id": "m", "model_version": "v1",
                        "metric": "recall", "average": "micro", "window": "1h",
                        "condition": {"below": 0.9}, "min_samples": 100})
    [run] = mon.run_monitors(now=T0 + H)
    assert run["status"] == "too_few"  # no actuals yet
    # the actuals come hours later: every label positive, so recall = share above 0.5
    ones = np.ones_like(s, dtype=int)
    mon.log_actuals("m", "v1", "production", _actuals(recs, ones))
    runs = mon.run_monitors(now=T0 + 5 * H)
    latest = [r for r in runs if not r["reevaluation"]]
    again = [r for r in runs if r["reevaluation"]]
    assert [r["window_start"] for r in latest] != [r["window_start"] for r in again]
    [old] = again
    assert old["window_end"] == run["window_end"] and old["status"] == "breach"
    [entry] = old["entries"]
    assert entry["value"] == pytest.approx(float((s > 0.5).mean()))
    [incident] = mon.incidents()
    assert incident["breaches"][0]["value"] == pytest.approx(entry["value"])
    # processed: a further run does not evaluate that window again
    assert all(not r["reevaluation"] for r in mon.run_monitors(now=T0 + 6 * H))


def test_estimated_performance_sits_beside_the_realized_one(mon: Monitor) -> None:
    """Calibrated traffic: the estimate of each label's F1 is within its band of the
    realized F1 for most labels; before actuals the realized value is None."""
    _version(mon)
    rng = np.random.default_rng(10)
    _r, s_base, y_base = _traffic(rng, 6000, 0, prefix="b")
    _baseline(mon, s_base, y_base)
    recs, s, y = _traffic(rng, 3000, 5, prefix="p")
    mon.log_predictions("m", "v1", "production", recs)
    before = mon.performance("m", "v1", start=T0, end=T0 + 6 * H)
    assert before["realized"]["f1"] == [None] * len(NAMES)
    assert before["labels"] == NAMES
    mon.log_actuals("m", "v1", "production", _actuals(recs, y))
    after = mon.performance("m", "v1", start=T0, end=T0 + 6 * H)
    realized = f1_score(y, s > 0.5, average=None, zero_division=np.nan)
    inside = 0
    for j in range(len(NAMES)):
        if np.isnan(realized[j]):
            assert after["realized"]["f1"][j] is None
            continue
        assert after["realized"]["f1"][j] == pytest.approx(realized[j])
        lo, hi = after["f1_lower"][j], after["f1_upper"][j]
        inside += lo <= realized[j] <= hi
    assert inside >= len(NAMES) - 2
    micro = f1_score(y, s > 0.5, average="micro")
    est, lo, hi = after["micro"]["f1"]
    assert lo <= micro <= hi and after["realized_micro"]["f1"] == pytest.approx(micro)
    # the estimated metric as a monitor: no actuals needed
    mon.apply_monitors({"name": "est", "model_id": "m", "model_version": "v1",
                        "metric": "estimated_f1", "average": "micro", "window": "1d",
                        "condition": {"below": 0.99}})
    [run] = mon.run_monitors(now=T0 + 6 * H)
    [entry] = run["entries"]
    assert entry["value"] == pytest.approx(est) and entry["status"] == "breach"
    assert entry["realized"] == pytest.approx(micro)


def test_top_k_prevalence_drift_and_new_labels(mon: Monitor) -> None:
    _version(mon)
    rng = np.random.default_rng(11)
    _r, s_base, y_base = _traffic(rng, 5000, 0, prefix="b")
    _baseline(mon, s_base, y_base)
    recs, _s, y = _traffic(rng, 3000, 3, prefix="p")
    y[:, NAMES.index("l7")] = (rng.random(len(y)) < 0.05).astype(int)  # prevalence falls
    for r in recs[:200]:
        r["predictions"]["genres"]["brand-new"] = 0.9
    mon.log_predictions("m", "v1", "production", recs)
    mon.log_actuals("m", "v1", "production", _actuals(recs, y))
    mon.apply_monitors([
        {"name": "prev", "model_id": "m", "model_version": "v1", "metric": "prevalence_drift",
         "labels": {"top_k": 3}, "window": "1d"},
        {"name": "new", "model_id": "m", "model_version": "v1", "metric": "new_labels",
         "window": "1d"},
    ])
    runs = {r["monitor"]: r for r in mon.run_monitors(now=T0 + 6 * H)}
    base_rate = y_base.mean(axis=0)
    top3 = [NAMES[j] for j in np.argsort(-base_rate, kind="stable")[:3]]
    assert [e["label"] for e in runs["prev"]["entries"]] == top3
    assert {e["label"] for e in runs["prev"]["entries"] if e["status"] == "breach"} == {"l7"}
    [entry] = [e for e in runs["prev"]["entries"] if e["label"] == "l7"]
    assert entry["value"] == pytest.approx(y[:, 7].mean() - base_rate[7])
    assert [e["label"] for e in runs["new"]["entries"]] == ["brand-new"]


def test_align_edges_folds_exactly_onto_the_common_thresholds() -> None:
    """A baseline edged at other thresholds than the window (a head's summary lacks the
    version's default 0.5) is compared on the common edges: the folded sketches equal
    sketches built directly at those edges."""
    from labelwatch.monitor._sketch_views import align_edges

    rng = np.random.default_rng(12)
    s = rng.random((400, 3))
    y = rng.random((400, 3)) < s
    a = ScoreSketch.from_arrays(["a", "b", "c"], s, y, thresholds=[0.1, 0.37])
    b = ScoreSketch.from_arrays(["a", "b", "c"], s[:100], y[:100], thresholds=[0.37, 0.5])
    a2, b2 = align_edges(a, b)
    assert a2 == ScoreSketch.from_arrays(["a", "b", "c"], s, y, thresholds=[0.37])
    assert b2 == ScoreSketch.from_arrays(["a", "b", "c"], s[:100], y[:100], thresholds=[0.37])
    assert align_edges(a, a) == (a, a)


def test_concurrent_schedulers_run_each_due_monitor_and_send_each_webhook_once(
    db_url: str,
) -> None:
    """Several processes' schedulers over one database (here: four facades in threads)
    claim each due monitor and each delivery: one evaluation, one incident, one POST."""
    mons = [Monitor(db_url) for _ in range(4)]
    try:
        with Receiver(fail=0) as receiver:
            _version(mons[0])
            mons[0].create_webhook("ops", receiver.url, secret="12345678")
            recs, _s, _y = _traffic(np.random.default_rng(13), 50, 0, prefix="p")
            mons[0].log_predictions("m", "v1", "production", recs)
            mons[0].apply_monitors({"name": "vol", "model_id": "m", "model_version": "v1",
                                    "metric": "volume", "window": "1h",
                                    "condition": {"above": 1}, "min_samples": 0})
            runs: list[list[dict[str, Any]]] = []
            sent: list[dict[str, int]] = []
            barrier = threading.Barrier(len(mons))

            def tick(m: Monitor) -> None:
                barrier.wait()
                runs.append(m.run_monitors(now=T0 + H, due_only=True))
                barrier.wait()
                sent.append(m.deliver_webhooks(now=T0 + H))

            threads = [threading.Thread(target=tick, args=(m,)) for m in mons]
            for th in threads:
                th.start()
            for th in threads:
                th.join()
            assert sum(len(r) for r in runs) == 1
            assert len(mons[0].incidents()) == 1
            assert sum(s["delivered"] for s in sent) == 1
            assert len(receiver.calls) == 1
    finally:
        for m in mons:
            m.close()


def test_query_and_webhook_errors_name_the_parameter(mon: Monitor) -> None:
    _version(mon)
    with pytest.raises(InvalidInputError) as err:
        mon.drift("m", "v1", metric="f1")
    assert err.value.field == "metric"
    with pytest.raises(InvalidInputError) as err:
        mon.drift("m", "v1", baseline="yesterday")
    assert err.value.field == "baseline"
    for url in ("http://exa\x00mple.com/h", "http:///nohost", "ftp://example.com"):
        with pytest.raises(InvalidInputError) as err:
            mon.create_webhook("w", url)
        assert err.value.field == "url"
    with pytest.raises(InvalidInputError) as err:
        mon.create_webhook("w", "http://example.com/h", secret="short")
    assert err.value.field == "secret"
    # a fixed reference range without data is stated, not a zero drift
    recs, _s, _y = _traffic(np.random.default_rng(14), 300, 5, prefix="p")
    mon.log_predictions("m", "v1", "production", recs)
    res = mon.drift("m", "v1", start=T0, end=T0 + 6 * H,
                    baseline={"start": T0 - 48 * H, "end": T0 - 24 * H})
    assert res["entries"] == [] and res["note"] == "the baseline has no data"


def test_cooccurrence_drift_flags_the_pair_that_started_to_go_together(mon: Monitor) -> None:
    """Production couples l4 and l5 (one shared draw, same marginals): the actual
    co-occurrence monitor flags exactly that pair; cardinality drift is exact there."""
    _version(mon)
    rng = np.random.default_rng(15)
    _r, s_base, y_base = _traffic(rng, 4000, 0, prefix="b")
    _baseline(mon, s_base, y_base)
    recs, s, y = _traffic(rng, 4000, 5, prefix="p")
    u = rng.random(len(s))
    y[:, 4] = u < s[:, 4]
    y[:, 5] = u < s[:, 5]
    mon.log_predictions("m", "v1", "production", recs)
    mon.log_actuals("m", "v1", "production", _actuals(recs, y))
    mon.apply_monitors([
        # significant and a change of the pair's share above 0.05 (a pair's share also
        # moves with its labels' prevalences: sampling noise alone flags small changes)
        {"name": "pairs", "model_id": "m", "model_version": "v1",
         "metric": "cooccurrence_drift", "window": "1d",
         "condition": {"significant": True, "value": 0.05}},
        {"name": "card", "model_id": "m", "model_version": "v1",
         "metric": "cardinality_drift", "window": "1d"},
    ])
    runs = {r["monitor"]: r for r in mon.run_monitors(now=T0 + 12 * H)}
    flagged = [e["label"] for e in runs["pairs"]["entries"] if e["status"] == "breach"]
    assert flagged == ["l4&l5"]
    [pair] = [e for e in runs["pairs"]["entries"] if e["label"] == "l4&l5"]
    both = float((y[:, 4] & y[:, 5]).mean())
    assert pair["current"] == pytest.approx(both)
    assert len(runs["pairs"]["entries"]) == len(NAMES) * (len(NAMES) - 1) // 2
    [card] = runs["card"]["entries"]
    assert card["value"] == pytest.approx(
        float((s > 0.5).sum(axis=1).mean() - (s_base > 0.5).sum(axis=1).mean())
    )


def _feature_rows(rng: np.random.Generator, n: int, shift: float) -> list[dict[str, Any]]:
    years = rng.normal(1995 + shift, 8, size=n).round()
    countries = rng.choice(["US", "FR", "JP"], p=[0.6, 0.3, 0.1], size=n)
    return [{"year": float(y), "country": str(c)} for y, c in zip(years, countries, strict=True)]


def test_feature_drift_and_missing_rate_from_feature_cells(mon: Monitor) -> None:
    """Year shifts, country does not: the feature-drift monitor flags only year, with the
    value of ``feature_drift`` on summaries of the same rows; a fifth of the predictions
    lack year: the missing-rate monitor says so. The cells' merged summary equals the
    summary of all rows, byte for byte."""
    from labelwatch.client._baseline import feature_stats
    from labelwatch.metrics import CategoricalCounts, NumericSketch, feature_drift

    mon.create_model_version("m", "v1", features={"year": "numeric", "country": "categorical"},
                             predictions={"genres": "dict"}, segments=["country"])
    rng = np.random.default_rng(16)
    base_rows = _feature_rows(rng, 3000, 0.0)
    types = {"year": "numeric", "country": "categorical"}
    s_base = rng.random((3000, len(NAMES)))
    _baseline_stats = feature_stats(base_rows, types)
    mon.log_baseline("m", "v1", "training", "genres",
                     ScoreSketch.from_arrays(NAMES, s_base, None, thresholds=[0.5]),
                     feature_stats=_baseline_stats)
    prod = _feature_rows(rng, 2000, 15.0)
    for i in range(0, 2000, 5):
        del prod[i]["year"]
    recs = [
        {"id": f"p{i}", "timestamp": T0 + 3 * H + i, "features": f,
         "predictions": {"genres": {"l0": 0.5}}}
        for i, f in enumerate(prod)
    ]
    mon.log_predictions("m", "v1", "production", recs[:1200])
    mon.log_predictions("m", "v1", "production", recs[1200:])
    years = [f.get("year") for f in prod]
    whole = NumericSketch.from_values(np.array([np.nan if y is None else y for y in years]))
    cells = mon.feature_summary("m", "v1", "production", "year", T0, T0 + 24 * H)
    assert cells is not None and cells.to_bytes() == whole.to_bytes()
    us = mon.feature_summary("m", "v1", "production", "country", segment=("country", "US"))
    assert isinstance(us, CategoricalCounts)
    assert us.counts == {"US": float(sum(f["country"] == "US" for f in prod))}
    mon.apply_monitors([
        {"name": "features", "model_id": "m", "model_version": "v1",
         "metric": "feature_drift", "method": "ks", "window": "1d"},
        {"name": "features-psi", "model_id": "m", "model_version": "v1",
         "metric": "feature_drift", "window": "1d", "condition": {"above": 0.2}},
        {"name": "missing", "model_id": "m", "model_version": "v1", "metric": "missing_rate",
         "window": "1d", "condition": {"above": 0.1}},
    ])
    runs = {r["monitor"]: r for r in mon.run_monitors(now=T0 + 12 * H)}
    for name in ("features", "features-psi"):
        flagged = [e["label"] for e in runs[name]["entries"] if e["status"] == "breach"]
        assert flagged == ["year"], name
    base_year = NumericSketch.from_dict(_baseline_stats["year"]["sketch"])
    expected = feature_drift(base_year, whole, method="psi", name="year")
    [year] = [e for e in runs["features-psi"]["entries"] if e["label"] == "year"]
    assert year["value"] == pytest.approx(float(expected.value[0]))
    missing = {e["label"]: e for e in runs["missing"]["entries"]}
    assert missing["year"]["value"] == pytest.approx(0.2) and missing["year"]["status"] == "breach"
    assert missing["country"]["value"] == 0.0 and missing["country"]["status"] == "ok"
    with pytest.raises(InvalidInputError) as err:
        mon.apply_monitors({"name": "x", "model_id": "m", "model_version": "v1",
                            "metric": "f1", "features": ["year"],
                            "condition": {"below": 0.5}})
    assert err.value.field == "monitors[0].features"


@pytest.mark.parametrize("thresholds", [{}, {NAMES[0]: 0.3}], ids=["one", "several"])
def test_performance_series_equals_performance_of_each_period(
    mon: Monitor, thresholds: dict[str, float]
) -> None:
    """One read for every period: each point equals ``performance`` of its own window
    (clipped to the query's), per hour and per day; ``last`` and ``per_label``."""
    _version(mon, thresholds={"genres": thresholds})
    rng = np.random.default_rng(11)
    _r, s_base, y_base = _traffic(rng, 4000, 0, prefix="b")
    _baseline(mon, s_base, y_base)
    for hour, n in ((1, 300), (2, 200), (5, 250), (30, 150)):  # a gap, and the next day
        recs, _s, y = _traffic(rng, n, hour, prefix=f"h{hour}-")
        mon.log_predictions("m", "v1", "production", recs)
        mon.log_actuals("m", "v1", "production", _actuals(recs, y)[: n // 2])
    start, end = T0 + 1.5 * H, T0 + 40 * H  # starts inside hour 1: that hour is left out
    hourly = mon.performance_series("m", "v1", start=start, end=end, granularity="hour")
    assert [p["window_start"] for p in hourly] == [
        mon.performance("m", "v1", start=T0 + h * H, end=T0 + (h + 1) * H)["window_start"]
        for h in (2, 5, 30)
    ]
    for p, h in zip(hourly, (2, 5, 30), strict=True):
        assert p == mon.performance("m", "v1", start=T0 + h * H, end=T0 + (h + 1) * H)
    daily = mon.performance_series("m", "v1", start=start, end=end, granularity="day")
    first_day = mon.performance("m", "v1", start=T0 + 2 * H, end=T0 + 24 * H)
    second_day = mon.performance("m", "v1", start=T0 + 24 * H, end=T0 + 40 * H)
    assert daily == [first_day, second_day]
    [last] = mon.performance_series("m", "v1", start=start, end=end, granularity="day", last=1)
    assert last == second_day
    brief = mon.performance_series("m", "v1", start=start, end=end, per_label=False)
    assert [b["micro"] for b in brief] == [first_day["micro"], second_day["micro"]]
    assert [b["macro"] for b in brief] == [first_day["macro"], second_day["macro"]]
    assert "f1_lower" not in brief[0] and "realized" not in brief[0]
    with pytest.raises(InvalidInputError, match="granularity"):
        mon.performance_series("m", "v1", granularity="week")
    with pytest.raises(InvalidInputError, match="last"):
        mon.performance_series("m", "v1", last=0)
    with pytest.raises(NotFoundError, match="baseline"):
        mon.performance_series("m", "v1", baseline="test")
