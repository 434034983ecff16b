"""An orderly stop of the service object: what a cycle in flight does, and the Lease."""

from __future__ import annotations

import logging

import pytest

from scaler.kube.client import build_api_client
from tests.kube.builders import FakeClock
from tests.servers.fake_kube import FakeKube
from tests.service import harness as h
from tests.service.conftest import TracePrometheus

pytestmark = [pytest.mark.prometheus, pytest.mark.timeout(120)]

# Reading the current floors takes three requests, so a cycle spends over half a second there.
SLOW_SECONDS = 0.2


def cycle_started(caplog: pytest.LogCaptureFixture) -> bool:
    return any(
        r.getMessage().startswith("Cycle at") and r.getMessage().endswith(" started")
        for r in caplog.records
    )


def test_stop_before_applying_abandons_cycle(
    trace_prometheus: TracePrometheus, fake_kube: FakeKube, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="scaler")
    h.seed_cluster(fake_kube, pool_nodes=0, min_replicas=2)
    settings = h.settings(trace_prometheus.server.url, fake_kube.url)
    clock = FakeClock(trace_prometheus.end)
    fake_kube.delay_next(1000, SLOW_SECONDS)
    api = build_api_client(host=fake_kube.url)
    app = h.make_app(settings, api, clock, "replica-a")
    try:
        app.start()
        h.wait_until(lambda: cycle_started(caplog), "the first cycle to start")
        app.request_stop()
        app.shutdown()
    finally:
        if not app.stopping.is_set():
            app.shutdown()
        api.close()

    messages = [r.getMessage() for r in caplog.records]
    assert any("abandoned before applying" in m for m in messages)
    assert not any(" applied: " in m for m in messages)
    assert h.floor_writes(fake_kube) == []
    assert h.pool_floor(fake_kube) == 0
    assert h.workload_floor(fake_kube) == 2
    assert h.lease_holder(fake_kube) is None
    assert app.last_outcome is not None
    assert not app.last_outcome.applied
