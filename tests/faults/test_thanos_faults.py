"""History source faults: down, slower than the timeout, 5xx, partial or empty responses.

Each test raises the floors at the 12:00 peak, then runs two cycles in the evening while the
source fails. Trusted data would lower the floors in the first of them (the control case
shows it), so a held floor proves the fault was read as missing data. Once the fault ends,
the next cycle uses the data again without any help.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pandas as pd
import pytest

from scaler.core.decision import RULE_FORECAST, RULE_MISSING_DATA_HOLD
from tests.faults import rig as r
from tests.servers.thanos_replay import (
    STORE_UNAVAILABLE_WARNING,
    RecordedRequest,
    Reply,
    ThanosReplay,
    error_reply,
    matrix_series,
    success,
)

pytestmark = pytest.mark.timeout(60)

HOUR = pd.Timedelta(hours=1)
FAULT_TIMES = (r.EVENING, r.EVENING + HOUR)
RECOVERED_AT = r.EVENING + 2 * HOUR
SLOW_SECONDS = 2 * r.TIMEOUT_SECONDS + 0.5


def server_error(request: RecordedRequest) -> Reply:
    return error_reply(503, "unavailable", "no store gateway is ready")


def slow(request: RecordedRequest) -> Reply:
    reply = r.serve_demand(request)
    reply.delay_seconds = SLOW_SECONDS
    return reply


def partial(request: RecordedRequest) -> Reply:
    times = request.grid()
    body = success(
        [matrix_series({}, times, r.demand_at(times))], warnings=[STORE_UNAVAILABLE_WARNING]
    )
    return Reply(body=body)


def empty(request: RecordedRequest) -> Reply:
    return Reply(body=success([]))


FAULTS: dict[str, Callable[[RecordedRequest], Reply]] = {
    "server_error": server_error,
    "slower_than_timeout": slow,
    "partial_with_warnings": partial,
    "empty_result": empty,
}


def assert_held(rig: r.Rig, at: pd.Timestamp, peak_floors: tuple[int | None, int | None]) -> None:
    outcome = rig.run(at)
    rules = r.floor_rules(outcome)

    assert not outcome.decision.data[0].usable
    assert rules[r.POOL] == RULE_MISSING_DATA_HOLD
    assert rules[r.WORKLOAD] == RULE_MISSING_DATA_HOLD
    assert "changed" not in r.statuses(outcome).values()
    assert rig.floors() == peak_floors


def assert_recovered(rig: r.Rig) -> None:
    outcome = rig.run(RECOVERED_AT)
    rules = r.floor_rules(outcome)
    desired = {floor.name: floor.desired for floor in outcome.decision.all_floors()}

    assert outcome.decision.data[0].usable
    assert rules[r.POOL] == RULE_FORECAST
    assert rules[r.WORKLOAD] == RULE_FORECAST
    assert rig.floors() == (desired[r.POOL], desired[r.WORKLOAD])


def test_trusted_evening_data_lowers_floors(rig: r.Rig) -> None:
    """The control: without a fault the evening cycle lowers both floors at once."""
    rig.run(r.PEAK)
    peak_floors = rig.floors()

    outcome = rig.run(r.EVENING)

    assert peak_floors == (r.PEAK_POOL_NODES, r.PEAK_REPLICAS)
    assert outcome.decision.data[0].usable
    pool, replicas = rig.floors()
    assert pool is not None
    assert replicas is not None
    assert pool < r.PEAK_POOL_NODES
    assert replicas < r.PEAK_REPLICAS


@pytest.mark.parametrize("fault", list(FAULTS), ids=list(FAULTS))
def test_source_fault_holds_then_recovers(rig: r.Rig, replay: ThanosReplay, fault: str) -> None:
    rig.run(r.PEAK)
    peak_floors = rig.floors()

    replay.responder = FAULTS[fault]
    for at in FAULT_TIMES:
        assert_held(rig, at, peak_floors)
    replay.responder = r.serve_demand
    assert_recovered(rig)

    assert peak_floors == (r.PEAK_POOL_NODES, r.PEAK_REPLICAS)


def test_source_down_holds_then_recovers(rig: r.Rig, replay: ThanosReplay) -> None:
    """Connections are refused while the source is down; it comes back on the same port."""
    rig.run(r.PEAK)
    peak_floors = rig.floors()
    port = int(replay.url.rsplit(":", 1)[1])

    replay.stop()
    for at in FAULT_TIMES:
        assert_held(rig, at, peak_floors)
    with ThanosReplay(r.serve_demand, port=port):
        assert_recovered(rig)


def test_slow_source_cycle_stays_bounded(rig: r.Rig, replay: ThanosReplay) -> None:
    """A source slower than its timeout costs at most (retries + 1) timeouts per refresh."""
    rig.run(r.PEAK)
    replay.responder = slow
    workload = rig.settings.workloads[0]
    started = time.monotonic()

    view = rig.cycle.refresh(workload, r.EVENING)

    elapsed = time.monotonic() - started
    assert view.error_kind == "source_unavailable"
    assert elapsed < 2 * r.TIMEOUT_SECONDS + 2.0
