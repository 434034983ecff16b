"""Saturation signals against a real Prometheus server, with history backfilled by promtool."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest

from forecaster.errors import ConfigError
from scaler.core.decision import CycleDecision, FloorDecision
from scaler.fastloop import FastLoop
from scaler.kube.client import KubeClient
from scaler.settings import Settings
from scaler.signals.wiring import build_fast_loop, combine_with_signals
from tests.kube import builders as b
from tests.servers.prometheus import PrometheusServer, Series, free_port
from tests.signals import builders as sb
from tests.signals.fakes import MemoryActuator

pytestmark = pytest.mark.prometheus

NOW = b.START
STEP_SECONDS = 15
WAITING = "vllm:num_requests_waiting"
OLD_KV_CACHE = "vllm:gpu_cache_usage_perc"


def _series(name: str, model: str, values: dict[int, float], default: float) -> Series:
    """Samples every 15 s over the 30 minutes before NOW; ``values`` maps seconds-before-NOW."""
    offsets = np.arange(30 * 60, -1, -STEP_SECONDS)
    stamps = NOW.timestamp() - offsets
    samples = np.array([values.get(int(offset), default) for offset in offsets], dtype=float)
    return Series(name, {"model_name": model, "namespace": "serving"}, stamps, samples)


@pytest.fixture(scope="module")
def prometheus(prometheus_server: PrometheusServer) -> Iterator[PrometheusServer]:
    busy = {offset: 20.0 for offset in range(0, 121, STEP_SECONDS)}
    spike = {30: 50.0}
    rising = {offset: 20.0 for offset in range(0, 61, STEP_SECONDS)}
    kv_cache = {offset: 0.97 for offset in range(0, 121, STEP_SECONDS)}
    prometheus_server.backfill(
        [
            _series(WAITING, "busy", busy, 1.0),
            _series(WAITING, "spike", spike, 1.0),
            _series(WAITING, "rising", rising, 1.0),
            _series(OLD_KV_CACHE, "busy", kv_cache, 0.3),
        ]
    )
    prometheus_server.start()
    yield prometheus_server


def saturation(model: str, metric: str = "vllm_waiting_requests", threshold: float = 5.0) -> dict:
    return {
        "saturation": [
            {
                "metric": metric,
                "source": "thanos",
                "selector": f'namespace="serving",model_name="{model}"',
                "threshold": threshold,
                "sample_step_seconds": STEP_SECONDS,
                "hysteresis": {"hold_seconds": 60, "min_samples": 3},
            }
        ]
    }


def thanos_settings(url: str, workload_signals: dict) -> Settings:
    raw = sb.settings_dict(workload_signals=workload_signals)
    raw["sources"]["thanos"] = {"kind": "thanos", "url": url, "max_retries": 0}
    return sb.settings(workload_signals=workload_signals, sources=raw["sources"])


def loop_for(settings: Settings, actuator: MemoryActuator) -> FastLoop:
    return build_fast_loop(
        settings, actuator, kube=None, forecasts=lambda name: None, sleep=lambda s: None
    )


def floors(replicas: int = 2) -> dict[tuple[str, str], int | None]:
    return {("pool", sb.POOL): 1, ("pool", "onprem-h100"): 2, ("workload", "llm"): replicas}


def test_queue_over_threshold_raises_workload_floor(prometheus: PrometheusServer) -> None:
    actuator = MemoryActuator(floors())
    loop = loop_for(thanos_settings(prometheus.url, saturation("busy")), actuator)

    outcome = loop.run_once(NOW)

    report = outcome.reports[0]
    assert report.status == "raised"
    assert report.value == 20
    assert report.run_seconds >= 60
    # ceil(2 x 20 / 5) = 8, limited to max_step_replicas (4) above the current floor.
    assert actuator.floors[("workload", "llm")] == 6
    assert outcome.raised[0].rule == "reactive"
    assert "over the threshold 5" in outcome.raised[0].reason


def test_single_spike_raises_nothing(prometheus: PrometheusServer) -> None:
    actuator = MemoryActuator(floors())
    loop = loop_for(thanos_settings(prometheus.url, saturation("spike")), actuator)

    during = loop.run_once(NOW - pd.Timedelta(seconds=30))
    after = loop.run_once(NOW)

    assert during.reports[0].status == "holding"
    assert during.reports[0].value == 50
    assert after.reports[0].status == "below"
    assert actuator.applied == []
    assert actuator.floors[("workload", "llm")] == 2


def test_rising_queue_raises_once_hysteresis_holds(prometheus: PrometheusServer) -> None:
    actuator = MemoryActuator(floors())
    loop = loop_for(thanos_settings(prometheus.url, saturation("rising")), actuator)

    statuses = []
    for seconds in (-60, -45, -30, -15, 0):
        outcome = loop.run_once(NOW + pd.Timedelta(seconds=seconds))
        statuses.append(outcome.reports[0].status)

    assert statuses == ["holding", "holding", "holding", "holding", "raised"]
    assert actuator.floors[("workload", "llm")] == 6


def test_cooldown_keeps_floor_from_compounding(prometheus: PrometheusServer) -> None:
    actuator = MemoryActuator(floors())
    loop = loop_for(thanos_settings(prometheus.url, saturation("busy")), actuator)

    loop.run_once(NOW - pd.Timedelta(seconds=15))
    outcome = loop.run_once(NOW)

    assert outcome.reports[0].status == "cooldown"
    assert actuator.floors[("workload", "llm")] == 6
    assert len(actuator.applied) == 1


def test_old_kv_cache_name_is_read(prometheus: PrometheusServer) -> None:
    actuator = MemoryActuator(floors())
    signals = saturation("busy", metric="vllm_kv_cache_usage", threshold=0.9)
    loop = loop_for(thanos_settings(prometheus.url, signals), actuator)

    outcome = loop.run_once(NOW)

    assert outcome.reports[0].value == pytest.approx(0.97)
    assert outcome.reports[0].status == "raised"


def test_missing_series_is_unreadable_not_zero(prometheus: PrometheusServer) -> None:
    actuator = MemoryActuator(floors(replicas=5))
    loop = loop_for(thanos_settings(prometheus.url, saturation("absent")), actuator)

    outcome = loop.run_once(NOW)

    assert outcome.reports[0].status == "unreadable"
    assert "no series" in outcome.reports[0].message
    assert actuator.floors[("workload", "llm")] == 5


def test_prometheus_down_changes_nothing() -> None:
    actuator = MemoryActuator(floors(replicas=5))
    closed = f"http://127.0.0.1:{free_port()}"
    loop = loop_for(thanos_settings(closed, saturation("busy")), actuator)

    outcome = loop.run_once(NOW)

    assert outcome.reports[0].status == "unreadable"
    assert "connection failed" in outcome.reports[0].message
    assert actuator.applied == []
    assert actuator.floors[("workload", "llm")] == 5


# --- live demand above the forecast, forecast misses, and the plan step -------------------


@pytest.fixture(scope="module")
def demand_server(prometheus: PrometheusServer) -> PrometheusServer:
    high = {offset: 150.0 for offset in range(0, 121, STEP_SECONDS)}
    prometheus.backfill([_series("demand_rps", "llm", high, 90.0)])
    return prometheus


def demand_settings(url: str) -> Settings:
    signals = {
        "demand_above_forecast": {
            "source": "thanos",
            "query": 'sum(demand_rps{model_name="llm"})',
            "level": 0.95,
            "sample_step_seconds": STEP_SECONDS,
            "hysteresis": {"hold_seconds": 60, "min_samples": 3},
            "misses": {
                "miss_after_seconds": 60,
                "recovery_seconds": 600,
                "widened_levels": [0.99],
            },
        }
    }
    raw = sb.settings_dict(workload_signals=signals)
    raw["sources"]["thanos"] = {"kind": "thanos", "url": url, "max_retries": 0}
    raw["forecast"] = {"levels": [0.5, 0.9, 0.95, 0.99]}
    # Replicas follow the widened quantile exactly, without filling the nodes' spare slots.
    policy = {"workload_floor_fills_nodes": False}
    return sb.settings(
        workload_signals=signals, sources=raw["sources"], forecast=raw["forecast"], policy=policy
    )


FORECAST = sb.flat_forecast(
    "llm", NOW - pd.Timedelta(hours=1), {0.5: 50.0, 0.9: 100.0, 0.95: 120.0, 0.99: 200.0}
)


def test_demand_above_forecast_raises_floor_and_records_miss(
    demand_server: PrometheusServer,
) -> None:
    actuator = MemoryActuator(floors())
    refits: list[str] = []
    loop = build_fast_loop(
        demand_settings(demand_server.url),
        actuator,
        kube=None,
        forecasts=lambda name: FORECAST,
        on_refit=refits.append,
        sleep=lambda s: None,
    )

    outcomes = [loop.run_once(NOW + pd.Timedelta(seconds=s)) for s in (-60, -30, 0)]

    first, last = outcomes[0], outcomes[-1]
    # Demand has been above the forecast since NOW - 120 s, so the window read at NOW - 60 s
    # already holds for the hysteresis; the miss needs 60 s of fast cycles above it.
    assert first.reports[0].status == "raised"
    assert first.reports[0].threshold == 120
    assert first.raised[0].desired == 8
    assert [o.misses for o in outcomes] == [(), (), ("llm",)]
    assert refits == ["llm"]
    assert last.levels == {"llm": 0.99}
    # The demand signal requests ceil(150 / 20) = 8 replicas, and planning at P99 requests
    # ceil(200 / 20) = 10 over the workload's lead window.
    assert actuator.floors[("workload", "llm")] == 10
    assert any("P99" in floor.reason for floor in last.raised)


def test_demand_signal_without_forecast_is_unreadable(demand_server: PrometheusServer) -> None:
    actuator = MemoryActuator(floors())
    loop = build_fast_loop(
        demand_settings(demand_server.url), actuator, kube=None, forecasts=lambda name: None
    )

    outcome = loop.run_once(NOW)

    assert outcome.reports[0].status == "unreadable"
    assert "no forecast" in outcome.reports[0].message
    assert actuator.applied == []


def test_plan_step_combines_signals_with_forecast(prometheus: PrometheusServer) -> None:
    settings = thanos_settings(prometheus.url, saturation("busy"))
    pool = FloorDecision("pool", sb.POOL, 3, 1, "forecast", "P90 forecast")
    workload = FloorDecision("workload", "llm", 2, 2, "forecast", "P90 forecast")
    decision = CycleDecision(NOW, (pool,), (workload,))

    combined, outcome = combine_with_signals(
        settings, decision, kube_client=_no_cluster, sleep=lambda s: None
    )

    assert outcome.reports[0].status == "raised"
    assert combined.pools == decision.pools
    assert combined.workloads[0].desired == 6
    assert combined.workloads[0].rule == "reactive"


def _no_cluster() -> KubeClient:
    raise ConfigError("kubernetes.kubeconfig_path", None, "a usable Kubernetes client config")
