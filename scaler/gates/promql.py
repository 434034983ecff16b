"""Gate on a PromQL objective evaluated by Thanos Query (or any Prometheus HTTP API).

The query must return exactly one sample. No sample, several series, NaN, a non-success status
or Thanos ``warnings`` (a partial response) hold the floor: missing data is never read as a pass.
"""

from __future__ import annotations

import logging
import math
import operator
from collections.abc import Callable
from typing import Any

import requests

from forecaster.settings import ThanosSourceSettings
from scaler.gates.base import GateContext, GateResult
from scaler.settings import PromqlGateSettings

logger = logging.getLogger(__name__)

OPERATORS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}


class PromqlGate:
    """Runs one instant query per evaluation at the evaluation time."""

    name = "promql"

    def __init__(
        self,
        settings: PromqlGateSettings,
        source: ThanosSourceSettings,
        session: requests.Session | None = None,
    ) -> None:
        self._settings = settings
        self._source = source
        self._session = session or requests.Session()

    def evaluate(self, context: GateContext) -> GateResult:
        settings = self._settings
        try:
            value = self._query(context)
        except _NoSample as error:
            # The actuator logs the verdict with this reason, once per evaluation.
            return GateResult(False, f"promql: {error}")
        passed = OPERATORS[settings.operator](value, settings.threshold)
        verdict = "met" if passed else "not met"
        reason = f"promql: {value:g} {settings.operator} {settings.threshold:g} {verdict}"
        return GateResult(passed, reason)

    def _query(self, context: GateContext) -> float:
        source = self._source
        params = {
            "query": self._settings.query,
            "time": f"{context.now.timestamp():.3f}",
            "dedup": str(source.dedup).lower(),
            "partial_response": "false",
        }
        try:
            headers, auth = _headers(source), _basic_auth(source)
            response = self._session.get(
                source.url.rstrip("/") + "/api/v1/query",
                params=params,
                headers=headers,
                auth=auth,
                verify=_verify(source),
                timeout=(source.connect_timeout_seconds, self._settings.timeout_seconds),
            )
            payload = response.json()
        except (requests.RequestException, ValueError, OSError) as error:
            # OSError: an unreadable token or password file.
            raise _NoSample(f"query failed: {error}") from error
        return _single_value(payload, response.status_code)


class _NoSample(Exception):
    """The query produced no single usable sample."""


def _single_value(payload: Any, http_status: int) -> float:
    if not isinstance(payload, dict) or payload.get("status") != "success":
        error = payload.get("error") if isinstance(payload, dict) else payload
        raise _NoSample(f"query failed with HTTP {http_status}: {error}")
    if payload.get("warnings"):
        raise _NoSample(f"partial response, warnings: {'; '.join(payload['warnings'])}")
    data = payload.get("data") or {}
    result = data.get("result")
    samples: list[Any]
    if data.get("resultType") == "scalar":
        samples = [result]
    elif data.get("resultType") == "vector":
        samples = [series.get("value") for series in result or []]
    else:
        raise _NoSample(
            f"unsupported result type {data.get('resultType')!r}; use an instant vector"
        )
    if len(samples) != 1:
        raise _NoSample(f"expected exactly one sample, got {len(samples)} (missing, not zero)")
    try:
        value = float(samples[0][1])
    except (TypeError, ValueError, IndexError) as error:
        raise _NoSample(f"unreadable sample {samples[0]!r}") from error
    if math.isnan(value):
        raise _NoSample("the sample is NaN")
    return value


def _headers(source: ThanosSourceSettings) -> dict[str, str]:
    headers = dict(source.headers)
    if source.bearer_token_file is not None:
        token = source.bearer_token_file.read_text(encoding="utf-8").strip()
        headers["Authorization"] = f"Bearer {token}"
    return headers


def _basic_auth(source: ThanosSourceSettings) -> tuple[str, str] | None:
    if source.basic_auth_username is None or source.basic_auth_password_file is None:
        return None
    password = source.basic_auth_password_file.read_text(encoding="utf-8").strip()
    return source.basic_auth_username, password


def _verify(source: ThanosSourceSettings) -> bool | str:
    if source.insecure_skip_verify:
        return False
    return str(source.ca_file) if source.ca_file is not None else True
