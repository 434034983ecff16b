"""Two replicas against one API server: at most one acts, and no write is lost.

Both replicas start at the same moment with no Lease yet, so both try to create it. The API
server's optimistic concurrency (409 on a second create or on a stale resourceVersion) lets
exactly one win. When the winner dies without releasing the Lease, the other takes over and
its floors, not stale ones of the dead replica, are what the cluster keeps.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from kubernetes import client as k8s

from scaler.kube.client import build_api_client
from scaler.service.leader import LeaseConfig, LeaseElector
from tests.faults import rig as r
from tests.kube.builders import FakeClock
from tests.servers.fake_kube import FakeKube
from tests.servers.thanos_replay import ThanosReplay
from tests.service import harness as h

pytestmark = pytest.mark.timeout(90)

ROUNDS = 10
SETTLE_SECONDS = 2.5  # more than two plan intervals of 1 s


def elector(api: k8s.ApiClient, lease: str, identity: str) -> LeaseElector:
    config = LeaseConfig(
        name=lease,
        namespace=h.LEASE_NAMESPACE,
        identity=identity,
        lease_duration_seconds=3,
        renew_deadline_seconds=2,
        retry_period_seconds=0.5,
    )
    return LeaseElector(k8s.CoordinationV1Api(api), config)


def lease_holder(kube: FakeKube, name: str) -> str | None:
    lease = kube.get("coordination.k8s.io/v1", "leases", name, h.LEASE_NAMESPACE)
    return None if lease is None else lease.get("spec", {}).get("holderIdentity")


def test_simultaneous_lease_attempts_have_one_winner(fake_kube: FakeKube) -> None:
    api = build_api_client(host=fake_kube.url)
    winners = []
    try:
        with ThreadPoolExecutor(max_workers=2) as pool:
            for round_number in range(ROUNDS):
                lease = f"race-{round_number}"
                pair = [elector(api, lease, "replica-a"), elector(api, lease, "replica-b")]
                start = threading.Barrier(2)

                def attempt(candidate: LeaseElector, start: threading.Barrier = start) -> bool:
                    start.wait()
                    return candidate.attempt()

                won = list(pool.map(attempt, pair))
                holder = lease_holder(fake_kube, lease)
                winners.append((won, holder))
    finally:
        api.close()

    for won, holder in winners:
        assert won.count(True) == 1
        assert holder == ("replica-a" if won[0] else "replica-b")


def test_one_replica_acts_and_takeover_keeps_its_floors(
    replay: ThanosReplay, fake_kube: FakeKube
) -> None:
    h.seed_cluster(fake_kube)
    settings = r.make_settings(replay.url, fake_kube.url)
    clock = FakeClock(r.PEAK)

    with (
        h.running_app(settings, fake_kube, clock, identity="replica-a") as first,
        h.running_app(settings, fake_kube, clock, identity="replica-b") as second,
    ):
        h.wait_until(
            lambda: first.last_outcome is not None or second.last_outcome is not None,
            "one replica's first cycle",
        )
        time.sleep(SETTLE_SECONDS)
        leader, follower = (first, second) if first.last_outcome is not None else (second, first)
        acted_both = first.last_outcome is not None and second.last_outcome is not None
        holder = h.lease_holder(fake_kube)
        floors_at_peak = (h.pool_floor(fake_kube), h.workload_floor(fake_kube))

        leader.shutdown(release_lease=False)
        leader_outcome = leader.last_outcome
        writes_after_crash = len(fake_kube.writes())
        clock.now = r.EVENING
        takeover = h.wait_for_cycle(follower, r.EVENING)

    assert not acted_both
    assert holder == leader.leadership.config.identity  # type: ignore[attr-defined]
    assert floors_at_peak == (r.PEAK_POOL_NODES, r.PEAK_REPLICAS)
    assert leader.last_outcome is leader_outcome
    desired = {floor.name: floor.desired for floor in takeover.decision.all_floors()}
    assert (h.pool_floor(fake_kube), h.workload_floor(fake_kube)) == (
        desired[r.POOL],
        desired[r.WORKLOAD],
    )
    assert len(fake_kube.writes()) > writes_after_crash
