"""The service end to end: real Prometheus, fake API server, real scheduler, a test clock.

The test sets the clock an hour further after each applied cycle. The plan job finds the
workload's refresh older than the status age limit and refreshes it at the new time first, so
every cycle plans from history read at exactly its own ``now``.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pandas as pd
import pytest

from scaler.core.capacity import replicas_for_value
from scaler.core.decision import RULE_FORECAST
from scaler.cycle import CycleOutcome
from scaler.service.app import ServiceApp
from tests.kube.builders import FakeClock
from tests.servers.fake_kube import FakeKube
from tests.service import harness as h
from tests.service.conftest import TracePrometheus

pytestmark = [pytest.mark.prometheus, pytest.mark.timeout(120)]

METRICS_DOC = Path(__file__).resolve().parents[2] / "docs" / "METRICS.md"
CYCLES = 6
HOUR = pd.Timedelta(hours=1)


def documented_metric_names() -> list[str]:
    """Return the metric names docs/METRICS.md lists in its tables."""
    text = METRICS_DOC.read_text(encoding="utf-8")
    return sorted(set(re.findall(r"^\| `(peakcast_[a-z0-9_]+)`", text, flags=re.MULTILINE)))


def run_cycles(
    app: ServiceApp, kube: FakeKube, clock: FakeClock, count: int
) -> list[tuple[CycleOutcome, int | None, int | None]]:
    """Run ``count`` cycles an hour apart; return each outcome and the cluster floors after it."""
    seen = []
    for _ in range(count):
        outcome = h.wait_for_cycle(app, clock.now)
        seen.append((outcome, h.pool_floor(kube), h.workload_floor(kube)))
        clock.advance(3600)
    return seen


def test_floors_follow_forecast_over_cycles(
    trace_prometheus: TracePrometheus, fake_kube: FakeKube, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="scaler")
    h.seed_cluster(fake_kube, pool_nodes=0, min_replicas=2)
    settings = h.settings(trace_prometheus.server.url, fake_kube.url)
    # The replica floor is compared with the forecast's own replica count, so it must not be
    # raised to fill the spare slots of nodes the pool holds anyway.
    policy = settings.policy.model_copy(update={"workload_floor_fills_nodes": False})
    settings = settings.model_copy(update={"policy": policy})
    clock = FakeClock(trace_prometheus.end - 32 * HOUR)

    with h.running_app(settings, fake_kube, clock) as app:
        seen = run_cycles(app, fake_kube, clock, CYCLES)

    capacity = settings.workload(h.WORKLOAD).capacity
    pool_values, workload_values = set(), set()
    for outcome, pool_nodes, replicas in seen:
        pool = next(f for f in outcome.decision.pools if f.name == h.POOL)
        workload = outcome.decision.workloads[0]
        assert all(status.usable for status in outcome.decision.data), outcome.decision.data
        assert pool_nodes == pool.desired, pool.reason
        assert replicas == workload.desired, workload.reason
        if workload.rule == RULE_FORECAST:
            assert workload.forecast_value is not None
            assert workload.desired == replicas_for_value(workload.forecast_value, capacity)
        pool_values.add(pool.desired)
        workload_values.add(workload.desired)

    assert len(pool_values) >= 2, f"the pool floor never changed: {pool_values}"
    assert len(workload_values) >= 2, f"the workload floor never changed: {workload_values}"
    decision_lines = [r for r in caplog.records if r.getMessage().startswith(f"pool {h.POOL}:")]
    assert len(decision_lines) == CYCLES


def test_metrics_expose_documented_series(
    trace_prometheus: TracePrometheus, fake_kube: FakeKube
) -> None:
    h.seed_cluster(fake_kube, pool_nodes=1, min_replicas=2)
    settings = h.settings(trace_prometheus.server.url, fake_kube.url)
    clock = FakeClock(trace_prometheus.end - 10 * HOUR)

    with h.running_app(settings, fake_kube, clock) as app:
        url = h.base_url(app)
        outcome = h.wait_for_cycle(app, clock.now)
        ready = h.http_get(f"{url}/readyz")
        healthy = h.http_get(f"{url}/healthz")
        samples = h.scrape(app)

    assert ready.status_code == 200, ready.text
    assert healthy.status_code == 200, healthy.text
    names = {name for name, _ in samples}
    documented = documented_metric_names()
    assert len(documented) >= 15
    missing = [name for name in documented if not any(n.startswith(name) for n in names)]
    assert missing == []
    pool = next(f for f in outcome.decision.pools if f.name == h.POOL)
    assert h.sample(samples, "peakcast_planned_floor", kind="pool", name=h.POOL) == pool.desired
    assert h.sample(samples, "peakcast_data_usable", workload=h.WORKLOAD) == 1.0
    assert h.sample(samples, "peakcast_leader") == 1.0
    expected_time = clock.now.value / 1e9
    assert h.sample(samples, "peakcast_last_successful_cycle_timestamp_seconds") == expected_time
    p90_now = h.sample(
        samples,
        "peakcast_forecast_demand",
        workload=h.WORKLOAD,
        quantile="0.9",
        horizon_seconds="0",
    )
    assert p90_now is not None
    assert p90_now > 0


def test_readyz_waits_for_first_refresh(
    trace_prometheus: TracePrometheus, fake_kube: FakeKube
) -> None:
    h.seed_cluster(fake_kube)
    settings = h.settings(trace_prometheus.server.url, fake_kube.url, refresh_interval_seconds=3600)
    clock = FakeClock(trace_prometheus.end)
    with h.running_app(settings, fake_kube, clock) as app:
        url = h.base_url(app)
        h.wait_until(lambda: h.http_get(f"{url}/readyz").status_code == 200, "/readyz to pass")
        assert app.jobs.warm.is_set()
        app.shutdown()
        assert app.ready() == (False, "stopping")
