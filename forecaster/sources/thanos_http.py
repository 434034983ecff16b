"""Range queries over HTTP through prometheus-api-client, with retries and error mapping.

``PrometheusConnect.custom_query_range`` returns only ``data.result`` and drops the response
envelope, where Thanos puts its ``warnings``. So a response hook on the session keeps each
response for the thread that sent it, and the warnings are read from that response. The
hook also raises for an HTTP error status, which makes the status code available to decide
on a retry.

A 5xx response, a timeout or a connection error is retried with exponential backoff; a 4xx
response never is. Every error message goes through ``Secrets.redact``.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd
import requests
from prometheus_api_client import PrometheusConnect
from urllib3.exceptions import MaxRetryError
from urllib3.util.retry import Retry

from forecaster.errors import ConfigError, DataError, PeakcastError, TransientError
from forecaster.settings import ThanosSourceSettings
from forecaster.sources.auth import CredentialAuth, Secrets, build_session, mount_adapter

logger = logging.getLogger(__name__)

MAX_DETAIL_CHARACTERS = 300


@dataclass(frozen=True)
class RangeRequest:
    """One query_range call. ``key`` is the config key of the query, used in ConfigError."""

    query: str
    start: pd.Timestamp
    end: pd.Timestamp
    step_seconds: int
    params: Mapping[str, str | list[str]]
    description: str
    key: str = "series"


@dataclass(frozen=True)
class RangeResponse:
    """The matrix ``result`` of a successful response and the envelope's ``warnings``."""

    result: list[dict[str, Any]]
    warnings: tuple[str, ...]
    attempts: int
    elapsed_seconds: float


@dataclass(frozen=True)
class _Failure:
    """Reason an attempt failed. A failure with an ``error`` is final, one without is retried."""

    reason: str
    error: PeakcastError | None = None
    retry_after_seconds: float | None = None


def _fails(error: PeakcastError) -> _Failure:
    return _Failure(str(error), error)


class _ResponseCapture:
    """Session hook that keeps the last response of each thread and raises on HTTP errors."""

    def __init__(self) -> None:
        self._local = threading.local()

    def hook(self, response: requests.Response, *args: Any, **kwargs: Any) -> requests.Response:
        self._local.response = response
        if response.status_code >= 400:
            raise requests.HTTPError(f"HTTP {response.status_code}", response=response)
        return response

    def take(self) -> requests.Response | None:
        response: requests.Response | None = getattr(self._local, "response", None)
        self._local.response = None
        return response


class QueryClient:
    """Sends range queries to one Thanos or Prometheus URL.

    At most ``max_concurrent_requests`` requests are in flight at once, across all threads.
    ``sleep`` is called with the backoff delay between attempts; tests pass a recorder.
    """

    def __init__(
        self,
        settings: ThanosSourceSettings,
        secrets: Secrets,
        *,
        key_prefix: str = "",
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._settings = settings
        self._secrets = secrets
        self._key_prefix = key_prefix
        self._sleep = sleep
        self._slots = threading.BoundedSemaphore(settings.max_concurrent_requests)
        self._capture = _ResponseCapture()
        session = build_session(settings, key_prefix)
        session.hooks["response"].append(self._capture.hook)
        self._client = PrometheusConnect(
            url=settings.url,
            session=session,
            auth=CredentialAuth(secrets),
            retry=Retry(total=0, read=False, redirect=False, raise_on_status=False),
            timeout=(settings.connect_timeout_seconds, settings.read_timeout_seconds),
        )
        # PrometheusConnect mounts its own adapter; put back the one sized for concurrency.
        mount_adapter(session, settings)

    def close(self) -> None:
        self._client.close()

    def query_range(self, request: RangeRequest) -> RangeResponse:
        """Run ``request``, retrying transient failures; raise a PeakcastError otherwise.

        Raises ConfigError for a rejected query, URL or credentials (4xx, TLS). Raises
        DataError for a response that is not a Prometheus API response or a query the server
        cannot evaluate (422). Raises TransientError when retries are used up or the server
        responds with 429.
        """
        attempts = self._settings.max_retries + 1
        where = f"Thanos query for {request.description}"
        attempt = 0
        while True:
            attempt += 1
            started = time.monotonic()
            try:
                result, warnings = self._send(request)
                return RangeResponse(result, warnings, attempt, time.monotonic() - started)
            except (requests.RequestException, ValueError, KeyError, TypeError) as error:
                failure = self._classify(error, request)
                if failure is None:
                    raise
                cause: Exception = error

            if failure.error is not None:
                raise failure.error from cause
            if attempt >= attempts:
                plural = "s" if attempt > 1 else ""
                raise TransientError(
                    f"{where} failed after {attempt} attempt{plural}: {failure.reason}",
                    retry_after_seconds=self._backoff(attempt),
                ) from cause
            delay = self._backoff(attempt, failure.retry_after_seconds)
            logger.warning(
                "Thanos query for %s failed on attempt %d of %d: %s; retrying in %.1f s",
                request.description,
                attempt,
                attempts,
                failure.reason,
                delay,
            )
            self._sleep(delay)

    def _send(self, request: RangeRequest) -> tuple[list[dict[str, Any]], tuple[str, ...]]:
        with self._slots:
            try:
                result = self._client.custom_query_range(
                    query=request.query,
                    start_time=request.start.to_pydatetime(),
                    end_time=request.end.to_pydatetime(),
                    step=str(request.step_seconds),
                    params=dict(request.params),
                )
            finally:
                response = self._capture.take()
        if not isinstance(result, list):
            raise DataError(
                f"Thanos query for {request.description}: data.result is "
                f"{type(result).__name__}, expected a list of series"
            )
        return result, _warnings(response)

    def _classify(self, error: Exception, request: RangeRequest) -> _Failure | None:
        """Map an exception to a failure; None for one this client does not know."""
        where = f"Thanos query for {request.description}"
        if isinstance(error, requests.HTTPError) and error.response is not None:
            return self._status_failure(error.response, request)
        if isinstance(error, requests.exceptions.SSLError):
            allowed = (
                "a CA bundle that verifies the server certificate, or insecure_skip_verify "
                f"({self._detail(str(error))})"
            )
            return _fails(ConfigError(self._key("ca_file"), self._settings.url, allowed))
        if isinstance(error, requests.Timeout):
            return _Failure(f"timed out: {self._detail(str(error))}")
        if isinstance(error, requests.ConnectionError):
            return _Failure(f"connection failed: {self._detail(_connection_reason(error))}")
        if isinstance(error, requests.exceptions.InvalidJSONError | json.JSONDecodeError):
            message = f"{where}: the response is not JSON; is {self._settings.url} a query API?"
            return _fails(DataError(message))
        if isinstance(error, KeyError | TypeError):
            message = f"{where}: the response has no data.result; is it a Prometheus API?"
            return _fails(DataError(message))
        if isinstance(error, requests.exceptions.InvalidURL | requests.exceptions.MissingSchema):
            return _fails(ConfigError(self._key("url"), self._settings.url, "a valid http(s) URL"))
        return None

    def _status_failure(self, response: requests.Response, request: RangeRequest) -> _Failure:
        status = response.status_code
        detail = self._detail(_error_text(response))
        where = f"Thanos query for {request.description}"
        if status >= 500:
            return _Failure(f"HTTP {status}: {detail}", retry_after_seconds=_retry_after(response))
        if status == 429:
            retry_after = _retry_after(response) or self._settings.retry_backoff_max_seconds
            message = f"{where} was rate-limited (HTTP 429): {detail}"
            return _fails(TransientError(message, retry_after))
        if status in (401, 403):
            key, value = self._credential_setting()
            allowed = f"credentials the server accepts (HTTP {status}: {detail})"
            return _fails(ConfigError(key, value, allowed))
        if status == 404:
            allowed = f"the base URL of a Prometheus query API (HTTP 404: {detail})"
            return _fails(ConfigError(self._key("url"), self._settings.url, allowed))
        if status == 422:
            message = f"{where}: the server cannot evaluate the query (HTTP 422): {detail}"
            return _fails(DataError(message))
        allowed = f"a query the server accepts (HTTP {status}: {detail})"
        return _fails(ConfigError(request.key, request.query, allowed))

    def _backoff(self, attempt: int, retry_after: float | None = None) -> float:
        settings = self._settings
        delay = settings.retry_backoff_seconds * 2 ** (attempt - 1)
        if retry_after is not None:
            delay = max(delay, retry_after)
        return float(min(delay, settings.retry_backoff_max_seconds))

    def _detail(self, text: str) -> str:
        text = " ".join(text.split())
        if len(text) > MAX_DETAIL_CHARACTERS:
            text = text[:MAX_DETAIL_CHARACTERS] + "..."
        return self._secrets.redact(text)

    def _key(self, field: str) -> str:
        return f"{self._key_prefix}.{field}" if self._key_prefix else field

    def _credential_setting(self) -> tuple[str, object]:
        """Return the key and value of the credential setting in use, for a 401 or 403."""
        settings = self._settings
        for field in (
            "bearer_token_file",
            "bearer_token_env",
            "basic_auth_password_file",
            "basic_auth_password_env",
        ):
            value = getattr(settings, field)
            if value is not None:
                return self._key(field), str(value)
        return self._key("bearer_token_file"), None


def _warnings(response: requests.Response | None) -> tuple[str, ...]:
    """Return the envelope's top-level ``warnings``; the body is parsed again only if present."""
    if response is None or b'"warnings"' not in response.content:
        return ()
    envelope = response.json()
    raw = envelope.get("warnings") if isinstance(envelope, dict) else None
    return tuple(str(warning) for warning in raw or ())


def _error_text(response: requests.Response) -> str:
    try:
        envelope = response.json()
    except ValueError:
        return response.text or response.reason or ""
    if isinstance(envelope, dict) and "error" in envelope:
        return f"{envelope.get('errorType', 'error')}: {envelope['error']}"
    return response.text


def _connection_reason(error: requests.ConnectionError) -> str:
    """Return the underlying reason of a connection error, without the request URL."""
    inner = error.args[0] if error.args else None
    if isinstance(inner, MaxRetryError) and inner.reason is not None:
        return str(inner.reason)
    return str(error)


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After", "")
    try:
        return max(0.0, float(value))
    except ValueError:
        return None
