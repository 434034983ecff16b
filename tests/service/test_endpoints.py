"""The HTTP endpoints and the forecast series, without the scheduler."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest

from forecaster.forecast import Forecast
from scaler.actuators.dry_run import DryRunActuator
from scaler.config_loader import parse_settings
from scaler.core.decision import DataStatus
from scaler.service.app import ServiceApp
from scaler.service.forecasts import WorkloadView
from scaler.service.http import ServiceHTTPServer
from scaler.service.metrics import ServiceMetrics
from tests.service import harness as h
from tests.service.test_cycle import CURRENT, NOW, ROOT, two_workload_settings

CUTOFF = pd.Timestamp("1970-01-12T12:00:00Z")
STEP = pd.Timedelta(minutes=30)


@pytest.fixture
def metrics() -> ServiceMetrics:
    return ServiceMetrics(two_workload_settings())


@pytest.fixture
def server(metrics: ServiceMetrics) -> Iterator[str]:
    http = ServiceHTTPServer(
        "127.0.0.1",
        0,
        metrics.registry,
        healthy=lambda: (False, "no planning cycle has started for 700 s (limit 600 s)"),
        ready=lambda: (True, "ok"),
    )
    http.start()
    host, port = http.address
    try:
        yield f"http://{host}:{port}"
    finally:
        http.stop()


def test_failing_check_answers_503_with_reason(server: str) -> None:
    response = h.http_get(f"{server}/healthz")

    assert response.status_code == 503
    assert response.text == "no planning cycle has started for 700 s (limit 600 s)\n"


def test_passing_check_answers_200(server: str) -> None:
    response = h.http_get(f"{server}/readyz")

    assert response.status_code == 200
    assert response.text == "ok\n"


def test_unknown_path_answers_404(server: str) -> None:
    assert h.http_get(f"{server}/metricz").status_code == 404


def test_metrics_in_text_format(server: str) -> None:
    response = h.http_get(f"{server}/metrics")

    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    assert 'peakcast_errors_total{kind="source_unavailable"} 0.0' in response.text
    # 600 s node provisioning + 300 s workload start + 120 s margin, the defaults.
    assert 'peakcast_pool_lead_time_seconds{pool="burst-a"} 1020.0' in response.text


def view(forecast: Forecast) -> WorkloadView:
    status = DataStatus("trace", 0.95, CUTOFF, True)
    return WorkloadView("trace", CUTOFF, status, forecast, observed=210.0)


def test_forecast_series_per_horizon(metrics: ServiceMetrics) -> None:
    point = np.array([100.0, 200.0, 300.0, 400.0])
    forecast = Forecast("trace", CUTOFF, STEP, point, {0.9: point + 50}, "test")
    now = CUTOFF + STEP + pd.Timedelta(minutes=10)  # inside the first row

    metrics.refreshed(view(forecast), now)

    def value(name: str, **labels: str) -> float | None:
        return metrics.registry.get_sample_value(name, {"workload": "trace", **labels})

    assert value("peakcast_forecast_point_demand", horizon_seconds="0") == 100.0
    assert value("peakcast_forecast_point_demand", horizon_seconds="3600") == 300.0
    assert value("peakcast_forecast_demand", quantile="0.9", horizon_seconds="1800") == 250.0
    # 6 h lies past the four 30-minute rows.
    assert value("peakcast_forecast_point_demand", horizon_seconds="21600") is None
    assert value("peakcast_observed_demand") == 210.0
    assert value("peakcast_data_coverage_ratio") == 0.95
    assert value("peakcast_data_usable") == 1.0
    # The workload-start window of 300 s stays inside the first row: 150 / 20 per replica.
    assert value("peakcast_forecast_replicas", namespace="default") == 8.0


def test_healthz_fails_when_planning_stalls() -> None:
    raw = two_workload_settings().model_dump(mode="json")
    raw["service"].update(
        refresh_interval_seconds=3600, plan_interval_seconds=3600, stall_seconds=600
    )
    settings = parse_settings(raw, ROOT)
    ticks = [1000.0]
    app = ServiceApp(
        settings,
        DryRunActuator(settings, CURRENT),
        lease=None,
        clock=lambda: NOW,
        port=0,
        monotonic=lambda: ticks[0],
    )
    app.start()
    try:
        h.wait_until(lambda: app.last_outcome is not None, "the first planning cycle")
        healthy_before = app.healthy()
        ticks[0] += 601
        healthy_after = app.healthy()
    finally:
        app.shutdown()

    assert healthy_before == (True, "ok")
    assert healthy_after == (
        False,
        "no planning cycle has started for 601 s (limit 600 s)",
    )
