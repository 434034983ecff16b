"""Prometheus killed mid-run: floors hold, missing data is reported, and planning recovers."""

from __future__ import annotations

import logging

import pandas as pd
import pytest

from scaler.core.decision import RULE_MISSING_DATA_HOLD
from tests.kube.builders import FakeClock
from tests.servers import prometheus
from tests.servers.fake_kube import FakeKube
from tests.service import harness as h
from tests.service.conftest import TracePrometheus

pytestmark = [pytest.mark.prometheus, pytest.mark.timeout(120)]

HOUR = pd.Timedelta(hours=1)
OUTAGE_CYCLES = 3


def test_outage_holds_floors_and_recovers(
    trace_prometheus: TracePrometheus,
    fake_kube: FakeKube,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    caplog.set_level(logging.INFO, logger="scaler")
    server = trace_prometheus.server
    h.seed_cluster(fake_kube, pool_nodes=0, min_replicas=2)
    settings = h.settings(server.url, fake_kube.url)
    # The forecast drops an hour after the start (see the run test), so a hold shows.
    clock = FakeClock(trace_prometheus.end - 32 * HOUR)
    # The restarted server must come back on the port the config names.
    monkeypatch.setattr(prometheus, "free_port", lambda: server.port)

    with h.running_app(settings, fake_kube, clock) as app:
        h.wait_for_cycle(app, clock.now)
        pool_before, replicas_before = h.pool_floor(fake_kube), h.workload_floor(fake_kube)
        server.stop()
        try:
            held, cluster = [], []
            for _ in range(OUTAGE_CYCLES):
                clock.advance(3600)
                held.append(h.wait_for_cycle(app, clock.now))
                cluster.append((h.pool_floor(fake_kube), h.workload_floor(fake_kube)))
            during = h.scrape(app)
        finally:
            server.start()
        clock.advance(3600)
        recovered = h.wait_for_cycle(app, clock.now)
        after = h.scrape(app)

    for outcome in held:
        status = outcome.decision.data[0]
        assert not status.usable
        floors = {f.name: f for f in outcome.decision.all_floors()}
        assert floors[h.POOL].rule == RULE_MISSING_DATA_HOLD, floors[h.POOL].reason
        assert floors[h.POOL].desired == pool_before
        assert floors[h.WORKLOAD].rule == RULE_MISSING_DATA_HOLD
        assert floors[h.WORKLOAD].desired == replicas_before
    assert cluster == [(pool_before, replicas_before)] * OUTAGE_CYCLES
    assert all(status.usable for status in recovered.decision.data)
    assert recovered.decision.workloads[0].rule != RULE_MISSING_DATA_HOLD

    assert h.sample(during, "peakcast_data_usable", workload=h.WORKLOAD) == 0.0
    unavailable = h.sample(during, "peakcast_errors_total", kind="source_unavailable")
    assert unavailable is not None
    assert unavailable >= OUTAGE_CYCLES
    assert h.sample(after, "peakcast_data_usable", workload=h.WORKLOAD) == 1.0
    failures = [r for r in caplog.records if "failed (source_unavailable)" in r.getMessage()]
    assert failures
    assert failures[0].levelno == logging.WARNING
    assert all(getattr(r, "workload", None) == h.WORKLOAD for r in failures)
