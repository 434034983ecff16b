"""API server faults while a cycle reads or writes floors: 409, 500, 403 and timeouts.

A fault during the writes of a raise leaves each floor either written or reported as failed
(never silently dropped), and the next cycle after the fault writes the rest. A floor that
could not be read when the cycle decided is never lowered by that cycle.
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
import pytest

from scaler.core.decision import RULE_MISSING_DATA_HOLD
from tests.faults import rig as r
from tests.servers.fake_kube import FakeKube
from tests.servers.thanos_replay import RecordedRequest, Reply, ThanosReplay, success
from tests.service import harness as h

pytestmark = pytest.mark.timeout(60)

MINUTES_10 = pd.Timedelta(minutes=10)
FAULT_REQUESTS = 100  # more than one cycle sends, so the whole apply fails
# The Kubernetes client retries an idempotent request (GET, not PATCH) 3 times after a read
# timeout, so 4 delayed responses make one read fail.
TIMED_OUT_REQUESTS = 4
FAILED_STATUSES = {"failed", "conflict"}


def arm_500(kube: FakeKube) -> None:
    kube.fail_next(FAULT_REQUESTS, 500)


def arm_409(kube: FakeKube) -> None:
    kube.fail_next(FAULT_REQUESTS, 409)


def arm_403(kube: FakeKube) -> None:
    kube.deny("apply", "gpunodepools")
    kube.deny("apply", "horizontalpodautoscalers")


def clear_faults(kube: FakeKube) -> None:
    with kube.lock:
        kube.faults.errors.clear()
        kube.faults.delays.clear()
        kube.faults.denied.clear()


FAULTS: dict[str, Callable[[FakeKube], None]] = {
    "http_500": arm_500,
    "http_409": arm_409,
    "http_403": arm_403,
}


def arm_before_apply(kube: FakeKube, arm: Callable[[FakeKube], None]) -> Callable[[], bool]:
    """Return a ``may_apply`` that arms the fault at its second call, right before the writes."""
    calls: list[int] = []

    def may_apply() -> bool:
        calls.append(1)
        if len(calls) == 2:
            arm(kube)
        return True

    return may_apply


def floor_applies(kube: FakeKube) -> int:
    return len(h.floor_writes(kube))


@pytest.mark.parametrize("fault", list(FAULTS), ids=list(FAULTS))
def test_write_fault_reported_then_converges(rig: r.Rig, fault: str) -> None:
    before = rig.floors()

    faulted = rig.run(r.PEAK, arm_before_apply(rig.kube, FAULTS[fault]))
    during = rig.floors()
    clear_faults(rig.kube)
    recovered = rig.run(r.PEAK + MINUTES_10)
    applies = floor_applies(rig.kube)
    repeated = rig.run(r.PEAK + 2 * MINUTES_10)

    statuses = r.statuses(faulted)
    assert statuses[r.POOL] in FAILED_STATUSES
    assert statuses[r.WORKLOAD] in FAILED_STATUSES
    assert during == before
    assert r.statuses(recovered)[r.POOL] == "changed"
    assert r.statuses(recovered)[r.WORKLOAD] == "changed"
    assert rig.floors() == (r.PEAK_POOL_NODES, r.PEAK_REPLICAS)
    assert set(r.statuses(repeated).values()) == {"unchanged"}
    assert floor_applies(rig.kube) == applies


def test_half_applied_plan_completed_next_cycle(rig: r.Rig) -> None:
    """The pool floor is written, the workload floor is forbidden; the next cycle writes it."""

    def deny_workload(kube: FakeKube) -> None:
        kube.deny("apply", "horizontalpodautoscalers")

    faulted = rig.run(r.PEAK, arm_before_apply(rig.kube, deny_workload))
    half = rig.floors()
    clear_faults(rig.kube)
    rig.run(r.PEAK + MINUTES_10)

    assert r.statuses(faulted) == {
        "onprem-h100": "unchanged",
        r.POOL: "changed",
        r.WORKLOAD: "failed",
    }
    failed = next(result for result in faulted.results if result.floor.name == r.WORKLOAD)
    assert "403" in failed.message
    assert half == (r.PEAK_POOL_NODES, 2)
    assert rig.floors() == (r.PEAK_POOL_NODES, r.PEAK_REPLICAS)


def empty_answer(request: RecordedRequest) -> Reply:
    return Reply(body=success([]))


def deny_floor_reads(kube: FakeKube) -> None:
    kube.deny("get", "gpunodepools")
    kube.deny("get", "horizontalpodautoscalers")


def time_out_first_read(kube: FakeKube) -> None:
    kube.delay_next(TIMED_OUT_REQUESTS, r.TIMEOUT_SECONDS + 0.5)


READ_FAULTS: dict[str, Callable[[FakeKube], None]] = {
    "forbidden": deny_floor_reads,
    "timeout": time_out_first_read,
}


def fault_while_deciding(kube: FakeKube, arm: Callable[[FakeKube], None]) -> Callable[[], bool]:
    """Return a ``may_apply`` that arms the fault before the reads and clears it before writes."""
    calls: list[int] = []

    def may_apply() -> bool:
        calls.append(1)
        if len(calls) == 1:
            arm(kube)
        else:
            clear_faults(kube)
        return True

    return may_apply


@pytest.mark.parametrize("read_fault", list(READ_FAULTS), ids=list(READ_FAULTS))
def test_unreadable_floor_never_lowered_on_missing_data(
    rig: r.Rig, replay: ThanosReplay, read_fault: str
) -> None:
    """Floors unreadable while the cycle decides, data missing: the cycle lowers nothing."""
    rig.run(r.PEAK)
    replay.responder = empty_answer

    outcome = rig.run(r.EVENING, fault_while_deciding(rig.kube, READ_FAULTS[read_fault]))

    floors = {floor.name: floor for floor in outcome.decision.all_floors()}
    # The timeout hits the first read only, the pool's; 403 hits both floor objects.
    unreadable = [r.POOL] if read_fault == "timeout" else [r.POOL, r.WORKLOAD]
    for name in unreadable:
        assert floors[name].current is None
        assert floors[name].rule == RULE_MISSING_DATA_HOLD
        assert r.statuses(outcome)[name] == "held"
    assert floors[r.POOL].desired < r.PEAK_POOL_NODES
    assert rig.floors() == (r.PEAK_POOL_NODES, r.PEAK_REPLICAS)


def test_unreadable_floor_recovers_once_read(rig: r.Rig, replay: ThanosReplay) -> None:
    """After the held cycle, the next ones read the floor: held while data is missing, then
    lowered by the forecast once data is back."""
    rig.run(r.PEAK)
    replay.responder = empty_answer
    rig.run(r.EVENING, fault_while_deciding(rig.kube, deny_floor_reads))

    still_missing = rig.run(r.EVENING + MINUTES_10)
    replay.responder = r.serve_demand
    recovered = rig.run(r.EVENING + 2 * MINUTES_10)

    workload = next(floor for floor in still_missing.decision.workloads)
    assert workload.current == r.PEAK_REPLICAS
    assert workload.rule == RULE_MISSING_DATA_HOLD
    assert r.statuses(recovered)[r.WORKLOAD] == "changed"
    replicas = rig.floors()[1]
    assert replicas is not None
    assert replicas < r.PEAK_REPLICAS


def test_timed_out_read_fails_floor_then_converges(rig: r.Rig) -> None:
    """The pool's object does not respond within the timeout: its floor fails, then converges."""

    def time_out(kube: FakeKube) -> None:
        kube.delay_next(TIMED_OUT_REQUESTS, r.TIMEOUT_SECONDS + 0.5)

    faulted = rig.run(r.PEAK, arm_before_apply(rig.kube, time_out))
    pool_during = rig.floors()[0]
    rig.run(r.PEAK + MINUTES_10)

    failed = next(result for result in faulted.results if result.floor.name == r.POOL)
    assert failed.status == "failed"
    assert "timed out" in failed.message.lower()
    assert pool_during == 0
    assert rig.floors() == (r.PEAK_POOL_NODES, r.PEAK_REPLICAS)
