"""The SDK's errors: refused records raise at the next call or flush with the server's
envelope, the others are stored; embedded mode raises bad input at the call (buffered or
not) and a conflict with what is stored when it writes."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

import labelwatch.client as labelwatch
from labelwatch.errors import ConflictError, InvalidInputError, LabelwatchError, NotFoundError
from labelwatch.monitor import Monitor
from tests.client.conftest import Served


def version(model: str = "m") -> labelwatch.Model:
    return labelwatch.create_model_version(
        model_id=model, model_version="v1", predictions={"genres": "dict"},
        labels={"genres": ["a", "b"]}, unknown_labels="error",
    )


def test_http_refused_records_raise_at_flush_and_the_rest_is_stored(
    served: Served, caplog: pytest.LogCaptureFixture
) -> None:
    token = served.admin.headers["Authorization"].split()[1]
    labelwatch.init(host=served.url, token=token)
    try:
        model = version()
        model.log_prediction(id="ok-1", predictions={"genres": {"a": 0.9}})
        model.log_prediction(id="bad", predictions={"genres": {"a": 1.5}})
        model.log_prediction(id="ok-2", predictions={"genres": {"b": 0.1}})
        with caplog.at_level(logging.ERROR, "labelwatch.client"), \
                pytest.raises(InvalidInputError) as info:
            model.flush()
        err = info.value
        assert isinstance(err, labelwatch.InvalidInputAPIError)
        assert (err.status, err.field, err.label, err.got) == (422, "predictions.genres", "a", 1.5)
        assert err.ids == ["bad"]
        assert err.envelope["error"]["code"] == "invalid_input"
        assert "bad" in caplog.text
        assert model.sketch("genres").count().sum() == 2  # ok-1 and ok-2 stored
        model.log_prediction(id="ok-1", predictions={"genres": {"a": 0.1}})  # a conflict
        with pytest.raises(ConflictError):
            model.flush()
        with pytest.raises(NotFoundError):
            labelwatch.Model("m", "v9")
        with pytest.raises(NotFoundError):
            model.sketch("tags")
    finally:
        labelwatch.shutdown()


def test_http_wrong_scope_is_an_auth_error(served: Served) -> None:
    token = served.read.headers["Authorization"].split()[1]
    labelwatch.init(host=served.url, token=token)
    try:
        with pytest.raises(LabelwatchError) as info:
            version()
        assert isinstance(info.value, labelwatch.AuthAPIError)
        assert info.value.status == 403
    finally:
        labelwatch.shutdown()


def test_embedded_raises_bad_input_at_the_call_and_conflicts_at_flush(tmp_path: Path) -> None:
    for buffer_size in (0, 100):  # unbuffered, and buffered
        labelwatch.init(path=str(tmp_path / f"a{buffer_size}.db"), buffer_size=buffer_size)
        try:
            model = version()
            with pytest.raises(InvalidInputError) as info:
                model.log_prediction(id="x", predictions={"genres": {"c": 0.5}})
            assert (info.value.field, info.value.label, info.value.row) == (
                "predictions.genres", "c", 0
            )
            with pytest.raises(InvalidInputError) as info:
                model.log_actuals(id="x", actuals={"genres": {"a": 0.5}})
            assert (info.value.field, info.value.label) == ("actuals.genres", "a")
        finally:
            labelwatch.shutdown()
    labelwatch.init(path=str(tmp_path / "b.db"), buffer_size=100)
    try:
        model = version()
        model.log_prediction(id="ok", predictions={"genres": {"a": 0.5}})
        with pytest.raises(InvalidInputError) as info:
            model.log_prediction(id="bad", predictions={"genres": {"a": 2.0}})
        assert (info.value.field, info.value.label) == ("predictions.genres", "a")
        model.flush()
        assert model.sketch("genres").count().sum() == 1
        # a conflict with what is stored is found when writing: raised by flush()
        model.log_prediction(id="ok", predictions={"genres": {"a": 0.9}})
        model.log_prediction(id="new", predictions={"genres": {"a": 0.1}})
        with pytest.raises(ConflictError) as conflict:
            model.flush()
        assert "'ok'" in str(conflict.value.__notes__)
        assert model.sketch("genres").count().sum() == 2
    finally:
        labelwatch.shutdown()


def test_embedded_buffer_is_written_at_flush_at_size_and_at_shutdown(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'c.db'}"
    labelwatch.init(db_url=url, buffer_size=3)
    try:
        model = version()
        monitor = Monitor(url)
        stored = lambda: monitor.sketch("m", "v1", "production", "genres").count().sum()  # noqa: E731
        model.log_prediction(id="p0", predictions={"genres": {"a": 0.5}})
        model.log_prediction(id="p1", predictions={"genres": {"a": 0.5}})
        assert stored() == 0  # buffered: not acknowledged yet
        model.log_prediction(id="p2", predictions={"genres": {"a": 0.5}})
        assert stored() == 3  # the third filled the buffer
        model.log_prediction(id="p3", predictions={"genres": {"a": 0.5}})
        assert stored() == 3
        model.flush()
        assert stored() == 4
        model.log_prediction(id="p4", predictions={"genres": {"a": 0.5}})
    finally:
        labelwatch.shutdown()
    assert stored() == 5  # written at shutdown (and so at exit)
    monitor.close()


def test_init_is_required_and_checked() -> None:
    labelwatch.shutdown()
    with pytest.raises(LabelwatchError, match="init"):
        labelwatch.Model("m", "v1")
    with pytest.raises(InvalidInputError):
        labelwatch.init(host="localhost:8765")
