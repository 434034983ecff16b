"""Two replicas and one Lease: only the holder acts, and a follower takes over when it goes."""

from __future__ import annotations

import time

import pytest

from scaler.service.leader import FOLLOWER_JITTER
from tests.kube.builders import FakeClock
from tests.servers.fake_kube import FakeKube
from tests.service import harness as h
from tests.service.conftest import TracePrometheus

pytestmark = [pytest.mark.prometheus, pytest.mark.timeout(120)]

FOLLOW_SECONDS = 2.0


def test_follower_waits_then_takes_over_after_stop(
    trace_prometheus: TracePrometheus, fake_kube: FakeKube
) -> None:
    h.seed_cluster(fake_kube)
    settings = h.settings(trace_prometheus.server.url, fake_kube.url)
    clock = FakeClock(trace_prometheus.end)
    lease_duration = settings.service.lease_duration_seconds

    with h.running_app(settings, fake_kube, clock, identity="replica-a") as first:
        # The second replica starts only once the first leads, so the roles are not a race.
        h.wait_until(first.leadership.is_leader, "the first replica to take the lease")
        with h.running_app(settings, fake_kube, clock, identity="replica-b") as second:
            h.wait_for_cycle(first, clock.now)
            h.wait_until(lambda: second.ready()[0], "the follower to turn ready")
            time.sleep(FOLLOW_SECONDS)
            assert second.last_outcome is None
            assert not second.leadership.is_leader()
            assert h.lease_holder(fake_kube) == "replica-a"
            follower = h.scrape(second)
            assert h.sample(follower, "peakcast_leader") == 0.0
            assert h.http_get(f"{h.base_url(second)}/readyz").status_code == 200

            stopped = time.monotonic()
            first.shutdown()
            # Released: the holder is cleared, or the follower has already taken it.
            assert h.lease_holder(fake_kube) != "replica-a"
            h.wait_until(second.leadership.is_leader, "the follower to take the lease")
            took_over = time.monotonic() - stopped
            h.wait_until(lambda: second.last_outcome is not None, "the new leader's first cycle")

    assert took_over < lease_duration
    assert second.last_outcome is not None
    assert second.last_outcome.applied
    assert h.lease_holder(fake_kube) is None


def test_follower_takes_over_after_leader_crash(
    trace_prometheus: TracePrometheus, fake_kube: FakeKube
) -> None:
    h.seed_cluster(fake_kube)
    settings = h.settings(trace_prometheus.server.url, fake_kube.url)
    clock = FakeClock(trace_prometheus.end)
    service = settings.service
    # The follower saw the last renewal up to one jittered retry period late, and tries again
    # every jittered retry period; half a second covers the requests themselves.
    jittered_retry = FOLLOWER_JITTER * service.retry_period_seconds
    limit = service.lease_duration_seconds + 2 * jittered_retry + 0.5

    with h.running_app(settings, fake_kube, clock, identity="replica-a") as first:
        # The second replica starts only once the first leads, so the roles are not a race.
        h.wait_until(first.leadership.is_leader, "the first replica to take the lease")
        with h.running_app(settings, fake_kube, clock, identity="replica-b") as second:
            h.wait_for_cycle(first, clock.now)
            h.wait_until(lambda: second.ready()[0], "the follower to turn ready")

            crashed = time.monotonic()
            first.shutdown(release_lease=False)
            assert h.lease_holder(fake_kube) == "replica-a"
            h.wait_until(second.leadership.is_leader, "the follower to take the expired lease")
            took_over = time.monotonic() - crashed

    assert took_over >= service.renew_deadline_seconds
    assert took_over < limit


def test_lost_lease_stops_acting(trace_prometheus: TracePrometheus, fake_kube: FakeKube) -> None:
    h.seed_cluster(fake_kube)
    settings = h.settings(trace_prometheus.server.url, fake_kube.url)
    clock = FakeClock(trace_prometheus.end)
    renew_deadline = settings.service.renew_deadline_seconds

    with h.running_app(settings, fake_kube, clock) as app:
        h.wait_for_cycle(app, clock.now)
        fake_kube.deny("update", "leases")
        denied = time.monotonic()
        h.wait_until(lambda: not app.jobs.may_act(), "the leader to stop acting")
        stopped_after = time.monotonic() - denied
        cycles_then = app.last_outcome
        writes_then = len(fake_kube.writes())
        time.sleep(2 * settings.service.plan_interval_seconds)  # type: ignore[operator]
        assert app.last_outcome is cycles_then
        lease_writes = [e for e in fake_kube.writes()[writes_then:] if e.resource == "leases"]
        assert len(fake_kube.writes()) - writes_then == len(lease_writes)
        assert h.sample(h.scrape(app), "peakcast_leader") == 0.0

    assert stopped_after <= renew_deadline + settings.service.retry_period_seconds
