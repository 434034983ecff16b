"""Pauses: a paused floor is held and never written; a resume lets the next cycle write again."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from kubernetes import client as k8s

from forecaster.errors import ConfigError
from scaler.actuators.base import ApplyResult
from scaler.config_loader import parse_settings
from scaler.core.decision import RULE_FORECAST, RULE_PAUSED, CycleDecision
from scaler.core.guardrails import OperatorControls
from scaler.core.policy import Floors, PolicyResult, PolicyState, decide
from scaler.kube.clusters import ClusterClients
from scaler.kube.controls import (
    PAUSED_ANNOTATION,
    guardrail_state_from,
    pause_reason,
    read_controls,
)
from scaler.kube.inventory import read_floor_objects
from scaler.kube.registry import build_actuator, build_kube_client
from scaler.settings import Settings
from tests.guardrails.helpers import T0, flat_requirements, floors, guarded, usable
from tests.kube import builders as b
from tests.servers.fake_kube import FakeKube

HPA = ("autoscaling/v2", "horizontalpodautoscalers", "llm", b.NAMESPACE)
POOL = ("platform.peakcast.io/v1alpha1", "gpunodepools", "cloud-h100", b.POOL_NAMESPACE)


def test_paused_config_holds_current_floor() -> None:
    config = guarded(paused=True)
    result = decide(
        T0, flat_requirements(40, 10, T0), floors(2, 8), PolicyState(), usable(T0), config
    )
    burst, workload = result.decision.pools[1], result.decision.workloads[0]
    assert (burst.desired, burst.rule) == (2, RULE_PAUSED)
    assert (workload.desired, workload.rule) == (8, RULE_PAUSED)
    assert "the plan was 10 nodes" in burst.reason
    assert "guardrails.paused is set" in burst.reason


def test_paused_workload_leaves_pools_planned() -> None:
    config = guarded(paused_workloads=["llm"])
    result = decide(
        T0, flat_requirements(40, 10, T0), floors(2, 8), PolicyState(), usable(T0), config
    )
    assert result.decision.pools[1].rule == RULE_FORECAST
    assert result.decision.pools[1].desired == 10
    assert result.decision.workloads[0].rule == RULE_PAUSED
    assert result.decision.workloads[0].desired == 8


def test_paused_keeps_forecasting() -> None:
    # While paused the policy still records recommendations, so a resume starts informed.
    config = guarded(paused=True)
    result = decide(
        T0, flat_requirements(40, 10, T0), floors(2, 8), PolicyState(), usable(T0), config
    )
    assert result.state.recommendations["pool/burst"][-1].value == 10
    assert result.state.recommendations["workload/llm"][-1].value == 40


def test_runtime_control_pauses_one_floor() -> None:
    controls = OperatorControls(paused={("pool", "burst"): "load test"})
    result = decide(
        T0,
        flat_requirements(40, 10, T0),
        floors(2, 8),
        PolicyState(),
        usable(T0),
        guarded(),
        controls=controls,
    )
    assert result.decision.pools[1].rule == RULE_PAUSED
    assert "load test" in result.decision.pools[1].reason
    assert result.decision.workloads[0].rule == RULE_FORECAST


def seed_cluster(kube: FakeKube, pool_nodes: int = 2, replicas: int = 4) -> None:
    """Seed the pool, the HPA of workload llm, and three GPU-ready nodes so its gate passes."""
    kube.seed(b.gpu_node_pool("cloud-h100", desired=pool_nodes))
    for index in range(3):
        kube.seed(b.node(f"gpu-{index}", "cloud-h100", 8))
    kube.seed(b.deployment("llm"))
    kube.seed(b.hpa("llm", min_replicas=replicas))


def floor_writes(kube: FakeKube) -> list[str]:
    """Return the resources of the writes to floor fields (status updates left out)."""
    floor_resources = ("horizontalpodautoscalers", "gpunodepools")
    return [
        e.resource for e in kube.writes() if e.resource in floor_resources and not e.subresource
    ]


def cycle(
    config: Settings, kube_api: k8s.ApiClient, clock: b.FakeClock, state: PolicyState
) -> tuple[PolicyResult, list[ApplyResult]]:
    """Read the floors, decide on a flat plan of 6 replicas and 3 burst nodes, and apply."""
    actuator = build_actuator(config, dry_run=False, api_client=kube_api, clock=clock)
    read = actuator.current_floors()
    current = Floors(
        pools={n: v for (k, n), v in read.items() if k == "pool" and v is not None},
        workloads={n: v for (k, n), v in read.items() if k == "workload" and v is not None},
    )
    now = clock()
    plan = flat_requirements(6, 3, now, burst="cloud-h100", static="onprem-h100")
    result = decide(now, plan, current, state, usable(now), config)
    return result, actuator.apply(result.decision)


def test_pause_freezes_writes_and_resume_continues(
    fake_kube: FakeKube, kube_api: k8s.ApiClient, clock: b.FakeClock
) -> None:
    seed_cluster(fake_kube)
    paused = guarded(b.settings(), paused=True)

    result, applied = cycle(paused, kube_api, clock, PolicyState())

    assert {r.status for r in applied} == {"held", "unchanged"}
    assert floor_writes(fake_kube) == []
    assert fake_kube.get(*HPA)["spec"]["minReplicas"] == 4
    assert fake_kube.get(*POOL)["spec"]["desiredNodes"] == 2

    clock.advance(60)
    resumed = guarded(b.settings(), paused=False)
    _, applied = cycle(resumed, kube_api, clock, result.state)

    assert fake_kube.get(*HPA)["spec"]["minReplicas"] == 6
    assert fake_kube.get(*POOL)["spec"]["desiredNodes"] == 3
    assert sorted(floor_writes(fake_kube)) == ["gpunodepools", "horizontalpodautoscalers"]


def test_paused_annotation_freezes_one_object(
    fake_kube: FakeKube, kube_api: k8s.ApiClient, clock: b.FakeClock
) -> None:
    seed_cluster(fake_kube)
    fake_kube.mutate(
        *HPA,
        lambda obj: (
            obj["metadata"]
            .setdefault("annotations", {})
            .update({PAUSED_ANNOTATION: "load test until 14:00"})
        ),
    )
    config = b.settings()
    actuator = build_actuator(config, dry_run=False, api_client=kube_api, clock=clock)

    results = actuator.apply(b.decision(3, 6, current_nodes=2, current_replicas=4))

    by_kind = {r.floor.kind: r for r in results}
    assert by_kind["workload"].status == "held"
    assert "load test until 14:00" in by_kind["workload"].message
    assert by_kind["pool"].status == "changed"
    assert fake_kube.get(*HPA)["spec"]["minReplicas"] == 4

    fake_kube.mutate(*HPA, lambda obj: obj["metadata"]["annotations"].pop(PAUSED_ANNOTATION))
    clock.advance(60)
    results = actuator.apply(b.decision(3, 6, current_nodes=3, current_replicas=4))
    assert {r.floor.kind: r.status for r in results}["workload"] == "changed"
    assert fake_kube.get(*HPA)["spec"]["minReplicas"] == 6


def test_read_controls_reports_annotation_pauses(
    fake_kube: FakeKube, kube_api: k8s.ApiClient
) -> None:
    seed_cluster(fake_kube)
    fake_kube.mutate(
        *POOL,
        lambda obj: (
            obj["metadata"].setdefault("annotations", {}).update({PAUSED_ANNOTATION: "true"})
        ),
    )
    config = b.settings()
    client = build_kube_client(config.kubernetes, kube_api)
    controls = read_controls(read_floor_objects(ClusterClients.single(config, client), config))
    assert controls.paused == {("pool", "cloud-h100"): f"annotation {PAUSED_ANNOTATION} is set"}


def test_pause_annotation_values() -> None:
    def obj(value: str) -> dict[str, object]:
        return {"metadata": {"annotations": {PAUSED_ANNOTATION: value}}}

    assert pause_reason(obj("false")) is None
    assert pause_reason(obj("")) is None
    assert pause_reason({"metadata": {}}) is None
    assert pause_reason(obj("yes")) == f"annotation {PAUSED_ANNOTATION} is set"
    assert pause_reason(obj("migration")) == f"annotation {PAUSED_ANNOTATION}: migration"


def test_paused_decision_never_written(
    fake_kube: FakeKube, kube_api: k8s.ApiClient, clock: b.FakeClock
) -> None:
    seed_cluster(fake_kube)
    actuator = build_actuator(b.settings(), dry_run=False, api_client=kube_api, clock=clock)
    decision = b.decision(5, 9)
    paused = CycleDecision(
        decision.at,
        tuple(replace(floor, rule=RULE_PAUSED) for floor in decision.pools),
        tuple(replace(floor, rule=RULE_PAUSED) for floor in decision.workloads),
    )
    results = actuator.apply(paused)
    assert {r.status for r in results} == {"held"}
    assert floor_writes(fake_kube) == []


def test_config_pause_of_unknown_workload_rejected() -> None:
    raw = b.settings_dict()
    raw["guardrails"] = {"paused_workloads": ["nope"]}
    with pytest.raises(ConfigError, match="workload 'nope' is not defined"):
        parse_settings(raw, Path("."))


def test_cooldown_clock_rebuilt_from_annotations(
    fake_kube: FakeKube, kube_api: k8s.ApiClient, clock: b.FakeClock
) -> None:
    seed_cluster(fake_kube)
    config = b.settings()
    actuator = build_actuator(config, dry_run=False, api_client=kube_api, clock=clock)
    actuator.apply(b.decision(3, 6, current_nodes=2, current_replicas=4))
    client = build_kube_client(config.kubernetes, kube_api)

    state = guardrail_state_from(read_floor_objects(ClusterClients.single(config, client), config))

    assert state.last_change == {("pool", "cloud-h100"): clock(), ("workload", "llm"): clock()}


def test_config_pause_holds_later_raises(
    fake_kube: FakeKube, kube_api: k8s.ApiClient, clock: b.FakeClock
) -> None:
    # A floor raised after decide (a live signal, say) still meets the configured pause.
    seed_cluster(fake_kube)
    paused = guarded(b.settings(), paused_workloads=["llm"])
    actuator = build_actuator(paused, dry_run=False, api_client=kube_api, clock=clock)

    results = actuator.apply(b.decision(3, 9, current_nodes=2, current_replicas=4))

    statuses = {r.floor.kind: r.status for r in results}
    assert statuses == {"pool": "changed", "workload": "held"}
    assert fake_kube.get(*HPA)["spec"]["minReplicas"] == 4
    assert fake_kube.get(*POOL)["spec"]["desiredNodes"] == 3
