"""The thanos source's HTTP behaviour: retries, error mapping, credentials, concurrency, and
secrets kept out of logs and error messages."""

from __future__ import annotations

import base64
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from forecaster.errors import ConfigError, DataError, PeakcastError, TransientError
from forecaster.settings import ThanosSourceSettings
from forecaster.sources.thanos import ThanosSource
from tests.servers.prometheus import free_port
from tests.servers.thanos_replay import (
    RecordedRequest,
    Reply,
    ThanosReplay,
    error_reply,
    matrix_series,
    success,
)

MINUTE = pd.Timedelta(minutes=1)
NOW = pd.Timestamp("2024-06-15T00:00:00Z")
START = NOW - 30 * MINUTE
TOKEN = "tok-8f2d1c0e9b7a6f5e4d3c2b1a"
PASSWORD = "pw-Zq9xW3vR7tK1mN5b"


def _ok(request: RecordedRequest) -> Reply:
    times = request.grid()
    return Reply(body=success([matrix_series({}, times, np.full(len(times), 4.0))]))


class SleepRecorder:
    def __init__(self) -> None:
        self.delays: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


def _source(url: str, sleep: SleepRecorder | None = None, **overrides: object) -> ThanosSource:
    values: dict[str, object] = {"kind": "thanos", "url": url, "stale_after_seconds": None}
    values.update(overrides)
    return ThanosSource(
        ThanosSourceSettings.model_validate(values),
        clock=lambda: NOW,
        sleep=sleep or SleepRecorder(),
    )


def _retry_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [record for record in caplog.records if "retrying in" in record.getMessage()]


class TestRetries:
    def test_server_errors_retried_then_success(
        self, thanos_replay: ThanosReplay, caplog: pytest.LogCaptureFixture
    ) -> None:
        thanos_replay.enqueue(
            error_reply(503, "unavailable", "store gateway restarting"),
            error_reply(500, "internal", "query engine panic"),
        )
        thanos_replay.responder = _ok
        sleep = SleepRecorder()
        with (
            caplog.at_level(logging.WARNING),
            _source(thanos_replay.url, sleep, retry_backoff_seconds=1.0) as thanos,
        ):
            history, report = thanos.fetch_with_report("gpu", "avg(gpu_util)", START, NOW, MINUTE)

        assert history.values.eq(4.0).all()
        assert report.chunks[0].attempts == 3
        assert sleep.delays == [1.0, 2.0]
        messages = [record.getMessage() for record in _retry_records(caplog)]
        assert len(messages) == 2
        assert "attempt 1 of 4" in messages[0]
        assert "HTTP 503" in messages[0]
        assert "attempt 2 of 4" in messages[1]
        assert "HTTP 500" in messages[1]

    def test_retry_after_header_sets_delay(self, thanos_replay: ThanosReplay) -> None:
        thanos_replay.enqueue(error_reply(503, "unavailable", "busy", **{"Retry-After": "7"}))
        thanos_replay.responder = _ok
        sleep = SleepRecorder()
        with _source(thanos_replay.url, sleep, retry_backoff_seconds=1.0) as thanos:
            thanos.fetch("gpu", "avg(gpu_util)", START, NOW, MINUTE)

        assert sleep.delays == [7.0]

    def test_backoff_is_capped(self, thanos_replay: ThanosReplay) -> None:
        thanos_replay.responder = lambda request: error_reply(502, "bad_gateway", "down")
        sleep = SleepRecorder()
        settings = {"retry_backoff_seconds": 4.0, "retry_backoff_max_seconds": 10.0}
        with (
            _source(thanos_replay.url, sleep, max_retries=4, **settings) as thanos,
            pytest.raises(TransientError, match="after 5 attempts"),
        ):
            thanos.fetch("gpu", "avg(gpu_util)", START, NOW, MINUTE)

        assert sleep.delays == [4.0, 8.0, 10.0, 10.0]

    @pytest.mark.parametrize(
        ("status", "error_type", "expected"),
        [
            pytest.param(400, "bad_data", ConfigError, id="400-bad-query"),
            pytest.param(401, "unauthorized", ConfigError, id="401-credentials"),
            pytest.param(403, "forbidden", ConfigError, id="403-credentials"),
            pytest.param(404, "not_found", ConfigError, id="404-url"),
            pytest.param(422, "execution", DataError, id="422-execution"),
            pytest.param(429, "too_many_requests", TransientError, id="429-rate-limited"),
        ],
    )
    def test_client_errors_never_retried(
        self,
        thanos_replay: ThanosReplay,
        status: int,
        error_type: str,
        expected: type[PeakcastError],
    ) -> None:
        thanos_replay.responder = lambda request: error_reply(status, error_type, "rejected")
        sleep = SleepRecorder()
        with _source(thanos_replay.url, sleep) as thanos, pytest.raises(expected) as raised:
            thanos.fetch("gpu", "avg(gpu_util)", START, NOW, MINUTE)

        assert len(thanos_replay.data_requests()) == 1
        assert sleep.delays == []
        assert f"HTTP {status}" in str(raised.value)

    def test_bad_query_error_names_the_query(self, thanos_replay: ThanosReplay) -> None:
        thanos_replay.responder = lambda request: error_reply(
            400, "bad_data", 'invalid parameter "query": 1:8: parse error'
        )
        with _source(thanos_replay.url) as thanos, pytest.raises(ConfigError) as raised:
            thanos.fetch("gpu", "avg(gpu_util)", START, NOW, MINUTE)

        assert raised.value.key == "workloads[gpu].demand.series"
        assert raised.value.value == "avg(gpu_util)"
        assert "parse error" in str(raised.value)

    def test_timeouts_retried_then_transient_error(
        self, thanos_replay: ThanosReplay, caplog: pytest.LogCaptureFixture
    ) -> None:
        thanos_replay.responder = lambda request: Reply(body=success([]), delay_seconds=1.0)
        sleep = SleepRecorder()
        with (
            caplog.at_level(logging.WARNING),
            _source(thanos_replay.url, sleep, read_timeout_seconds=0.2, max_retries=2) as thanos,
            pytest.raises(TransientError, match="after 3 attempts") as raised,
        ):
            thanos.fetch("gpu", "avg(gpu_util)", START, NOW, MINUTE)

        assert "timed out" in str(raised.value)
        assert len(thanos_replay.data_requests()) == 3
        assert len(_retry_records(caplog)) == 2
        assert all("timed out" in record.getMessage() for record in _retry_records(caplog))

    def test_slow_answer_then_success(self, thanos_replay: ThanosReplay) -> None:
        thanos_replay.enqueue(Reply(body=success([]), delay_seconds=1.0))
        thanos_replay.responder = _ok
        with _source(thanos_replay.url, read_timeout_seconds=0.2) as thanos:
            history, report = thanos.fetch_with_report("gpu", "avg(gpu_util)", START, NOW, MINUTE)

        assert report.chunks[0].attempts == 2
        assert history.values.eq(4.0).all()

    def test_refused_connection_is_transient(self) -> None:
        url = f"http://127.0.0.1:{free_port()}"
        sleep = SleepRecorder()
        with (
            _source(url, sleep, max_retries=1, retry_backoff_seconds=0.5) as thanos,
            pytest.raises(TransientError, match="Connection refused"),
        ):
            thanos.fetch("gpu", "avg(gpu_util)", START, NOW, MINUTE)

        assert sleep.delays == [0.5]

    def test_html_answer_is_data_error(self, thanos_replay: ThanosReplay) -> None:
        thanos_replay.responder = lambda request: Reply(body="<html>login</html>")
        with (
            _source(thanos_replay.url) as thanos,
            pytest.raises(DataError, match="not JSON"),
        ):
            thanos.fetch("gpu", "avg(gpu_util)", START, NOW, MINUTE)


class TestConcurrency:
    def test_requests_in_flight_stay_within_limit(self, thanos_replay: ThanosReplay) -> None:
        lock = threading.Lock()
        in_flight = [0]
        peak = [0]

        def respond(request: RecordedRequest) -> Reply:
            with lock:
                in_flight[0] += 1
                peak[0] = max(peak[0], in_flight[0])
            time.sleep(0.1)
            with lock:
                in_flight[0] -= 1
            return _ok(request)

        thanos_replay.responder = respond
        start = NOW - pd.Timedelta(hours=10)
        with _source(
            thanos_replay.url, max_points_per_request=60, max_concurrent_requests=2
        ) as thanos:
            history, report = thanos.fetch_with_report("gpu", "avg(gpu_util)", start, NOW, MINUTE)

        assert len(report.chunks) == 11
        assert peak[0] == 2
        assert history.values.notna().all()


@pytest.fixture
def token_file(tmp_path: Path) -> Path:
    path = tmp_path / "token"
    path.write_text(TOKEN + "\n", encoding="utf-8")
    return path


@pytest.fixture
def password_file(tmp_path: Path) -> Path:
    path = tmp_path / "password"
    path.write_text(PASSWORD + "\n", encoding="utf-8")
    return path


class TestCredentials:
    def test_bearer_token_and_tenant_header_sent(
        self, thanos_replay: ThanosReplay, token_file: Path
    ) -> None:
        thanos_replay.responder = _ok
        with _source(
            thanos_replay.url, bearer_token_file=token_file, headers={"X-Scope-OrgID": "team-a"}
        ) as thanos:
            thanos.fetch("gpu", "avg(gpu_util)", START, NOW, MINUTE)

        headers = thanos_replay.data_requests()[0].headers
        assert headers["Authorization"] == f"Bearer {TOKEN}"
        assert headers["X-Scope-OrgID"] == "team-a"

    def test_rotated_token_file_is_read_again(
        self, thanos_replay: ThanosReplay, token_file: Path
    ) -> None:
        thanos_replay.responder = _ok
        with _source(thanos_replay.url, bearer_token_file=token_file) as thanos:
            thanos.fetch("gpu", "avg(gpu_util)", START, NOW, MINUTE)
            token_file.write_text("rotated-token-value-123\n", encoding="utf-8")
            thanos.fetch("gpu", "avg(gpu_util)", START, NOW, MINUTE)

        sent = [request.headers["Authorization"] for request in thanos_replay.data_requests()]
        assert sent == [f"Bearer {TOKEN}", "Bearer rotated-token-value-123"]

    def test_token_from_environment(
        self, thanos_replay: ThanosReplay, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("PEAKCAST_TEST_TOKEN", TOKEN)
        thanos_replay.responder = _ok
        with _source(thanos_replay.url, bearer_token_env="PEAKCAST_TEST_TOKEN") as thanos:
            thanos.fetch("gpu", "avg(gpu_util)", START, NOW, MINUTE)

        assert thanos_replay.data_requests()[0].headers["Authorization"] == f"Bearer {TOKEN}"

    def test_basic_auth_and_header_file_sent(
        self, thanos_replay: ThanosReplay, password_file: Path, token_file: Path
    ) -> None:
        thanos_replay.responder = _ok
        with _source(
            thanos_replay.url,
            basic_auth_username="peakcast",
            basic_auth_password_file=password_file,
            header_files={"X-Api-Key": token_file},
        ) as thanos:
            thanos.fetch("gpu", "avg(gpu_util)", START, NOW, MINUTE)

        headers = thanos_replay.data_requests()[0].headers
        expected = base64.b64encode(f"peakcast:{PASSWORD}".encode()).decode()
        assert headers["Authorization"] == f"Basic {expected}"
        assert headers["X-Api-Key"] == TOKEN

    def test_missing_token_file_is_config_error(
        self, thanos_replay: ThanosReplay, tmp_path: Path
    ) -> None:
        missing = tmp_path / "absent-token"
        with (
            _source(thanos_replay.url, bearer_token_file=missing) as thanos,
            pytest.raises(ConfigError) as raised,
        ):
            thanos.fetch("gpu", "avg(gpu_util)", START, NOW, MINUTE)

        assert raised.value.key == "bearer_token_file"
        assert thanos_replay.requests == []

    def test_empty_password_file_is_config_error(
        self, thanos_replay: ThanosReplay, tmp_path: Path
    ) -> None:
        empty = tmp_path / "empty"
        empty.write_text("\n", encoding="utf-8")
        with (
            _source(
                thanos_replay.url, basic_auth_username="u", basic_auth_password_file=empty
            ) as thanos,
            pytest.raises(ConfigError, match="not empty"),
        ):
            thanos.fetch("gpu", "avg(gpu_util)", START, NOW, MINUTE)


def _echoing(status: int) -> Callable[[RecordedRequest], Reply]:
    """Respond as a misconfigured proxy does: echo the credentials received in the body."""

    def respond(request: RecordedRequest) -> Reply:
        received = request.headers.get("Authorization", "")
        return Reply(
            status,
            f"proxy rejected request with Authorization: {received} token={TOKEN}",
        )

    return respond


class TestSecretsStayOut:
    @pytest.mark.parametrize(
        ("status", "expected"),
        [
            pytest.param(500, TransientError, id="500-retried"),
            pytest.param(401, ConfigError, id="401-rejected"),
        ],
    )
    def test_bearer_token_not_in_logs_or_errors(
        self,
        thanos_replay: ThanosReplay,
        token_file: Path,
        caplog: pytest.LogCaptureFixture,
        status: int,
        expected: type[PeakcastError],
    ) -> None:
        thanos_replay.responder = _echoing(status)
        with (
            caplog.at_level(logging.DEBUG),
            _source(thanos_replay.url, bearer_token_file=token_file, max_retries=2) as thanos,
            pytest.raises(expected) as raised,
        ):
            thanos.fetch("gpu", "avg(gpu_util)", START, NOW, MINUTE)

        texts = [record.getMessage() for record in caplog.records]
        texts += [str(raised.value), repr(raised.value), repr(thanos)]
        cause = raised.value.__cause__
        while cause is not None:
            texts.append(str(cause))
            cause = cause.__cause__
        assert any("<redacted>" in text for text in texts)
        assert not [text for text in texts if TOKEN in text]

    def test_password_not_in_logs_or_errors(
        self,
        thanos_replay: ThanosReplay,
        password_file: Path,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        thanos_replay.responder = _echoing(503)
        encoded = base64.b64encode(f"peakcast:{PASSWORD}".encode()).decode()
        with (
            caplog.at_level(logging.DEBUG),
            _source(
                thanos_replay.url,
                basic_auth_username="peakcast",
                basic_auth_password_file=password_file,
                max_retries=1,
            ) as thanos,
            pytest.raises(TransientError) as raised,
        ):
            thanos.fetch("gpu", "avg(gpu_util)", START, NOW, MINUTE)

        texts = [record.getMessage() for record in caplog.records]
        texts += [str(raised.value), str(raised.value.__cause__), repr(thanos)]
        assert thanos_replay.data_requests()[0].headers["Authorization"] == f"Basic {encoded}"
        assert not [text for text in texts if PASSWORD in text or encoded in text]

    def test_settings_hold_paths_not_secrets(self, token_file: Path) -> None:
        settings = ThanosSourceSettings(
            kind="thanos", url="http://127.0.0.1:9", bearer_token_file=token_file
        )

        assert TOKEN not in repr(settings)
        assert TOKEN not in settings.model_dump_json()
