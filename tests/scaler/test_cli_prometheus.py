"""``peakcast forecast`` and ``peakcast backtest`` end to end against a real Prometheus server.

The bundled ServeGen trace is backfilled with promtool as a gauge, shifted so that it starts
on 2024-03-01 (its own clock is nominal), and read back through the ``thanos`` source.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from scaler.cli.main import app
from tests.servers.prometheus import PrometheusServer, backfill_csv_trace

ROOT = Path(__file__).resolve().parents[2]
TRACE = ROOT / "data" / "servegen_m-large_10min.csv"
START = pd.Timestamp("2024-03-01T00:00:00Z")
METRIC = "peakcast_test_servegen_requests_per_second"

pytestmark = pytest.mark.prometheus


@pytest.fixture(scope="module")
def served_trace(prometheus_server: PrometheusServer) -> PrometheusServer:
    backfill_csv_trace(
        prometheus_server, TRACE, "req_per_s", METRIC, labels={"model": "m-large"}, start_at=START
    )
    prometheus_server.start()
    return prometheus_server


@pytest.fixture
def thanos_config(served_trace: PrometheusServer, tmp_path: Path) -> Path:
    raw = yaml.safe_load((ROOT / "config" / "peakcast.yaml").read_text())
    raw["sources"] = {
        "thanos-query": {
            "kind": "thanos",
            "url": served_trace.url,
            "scrape_interval_seconds": 60,
        }
    }
    workload = raw["workloads"][0]
    workload["demand"] = {
        "source": "thanos-query",
        "series": f'max_over_time({METRIC}{{model="m-large"}}[10m])',
        "unit": "requests_per_second",
        "step_seconds": 600,
    }
    path = tmp_path / "thanos.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_forecast_reads_history_from_prometheus(thanos_config: Path, tmp_path: Path) -> None:
    output = tmp_path / "forecast.csv"
    result = CliRunner().invoke(
        app,
        [
            "forecast",
            "--config",
            str(thanos_config),
            "--at",
            "2024-03-12T00:00:00Z",
            "-o",
            str(output),
        ],
    )

    assert result.exit_code == 0, result.output
    frame = pd.read_csv(output)
    forecast = yaml.safe_load(thanos_config.read_text())["forecast"]
    assert len(frame) == forecast["horizon_seconds"] // forecast["step_seconds"]
    assert (frame["q0.9"] >= frame["q0.5"]).all()
    assert frame["q0.9"].max() > 50  # the trace runs at roughly 50-600 requests/s


def test_backtest_replays_prometheus_history(thanos_config: Path, tmp_path: Path) -> None:
    output = tmp_path / "backtest.json"
    result = CliRunner().invoke(
        app,
        [
            "backtest",
            "--config",
            str(thanos_config),
            "--start",
            "2024-03-01T00:00:00Z",
            "--end",
            "2024-03-10T00:00:00Z",
            "--policies",
            "reactive,oracle,peakcast",
            "-o",
            str(output),
        ],
    )

    assert result.exit_code == 0, result.output
    records = {record["policy"]: record for record in json.loads(output.read_text())}
    assert set(records) == {"reactive", "oracle", "peakcast"}
    assert records["oracle"]["shortfall_gpu_minutes"] == 0
    assert records["peakcast"]["gpu_hours"] > 0


def test_forecast_reports_missing_history_not_zero(thanos_config: Path) -> None:
    result = CliRunner().invoke(
        app, ["forecast", "--config", str(thanos_config), "--at", "2023-01-01T00:00:00Z"]
    )

    assert result.exit_code == 3
    assert "not zero" in result.stderr or "no samples" in result.stderr
