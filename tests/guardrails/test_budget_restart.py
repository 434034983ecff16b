"""Budget usage and cooldowns survive a restart through annotations on the floor objects."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pandas as pd
import pytest
from kubernetes import client as k8s

from scaler.config_loader import parse_settings
from scaler.core.decision import RULE_BUDGET, RULE_MISSING_DATA_HOLD
from scaler.cycle import LiveCycle
from scaler.histories import HistoryLoader
from scaler.kube.budget_usage import BUDGET_USAGE_ANNOTATION
from scaler.kube.registry import build_actuator
from scaler.settings import Settings
from tests.guardrails.test_pause import seed_cluster
from tests.kube import builders as b
from tests.servers.fake_kube import FakeKube

POOL = ("platform.peakcast.io/v1alpha1", "gpunodepools", "cloud-h100", b.POOL_NAMESPACE)


def config(limit: float | None = None) -> Settings:
    raw = b.settings_dict()
    if limit is not None:
        raw["guardrails"] = {"pools": {"cloud-h100": {"max_gpu_hours_per_day": limit}}}
    return parse_settings(raw, Path("."))


def usage_record(kube: FakeKube) -> dict[str, object]:
    annotations = kube.get(*POOL)["metadata"].get("annotations") or {}
    return json.loads(annotations[BUDGET_USAGE_ANNOTATION])


def run_day(kube_api: k8s.ApiClient, clock: b.FakeClock, settings: Settings) -> None:
    """Hold 3 nodes for one hour, then raise to 5: 3 x 8 GPUs x 1 h = 24 GPU-hours."""
    actuator = build_actuator(settings, dry_run=False, api_client=kube_api, clock=clock)
    actuator.apply(b.decision(3, 4, current_nodes=2, current_replicas=4, at=clock()))
    clock.advance(3600)
    actuator.apply(b.decision(5, 4, current_nodes=3, current_replicas=4, at=clock()))


def test_floor_change_records_usage(
    fake_kube: FakeKube, kube_api: k8s.ApiClient, clock: b.FakeClock
) -> None:
    seed_cluster(fake_kube)
    run_day(kube_api, clock, config())

    record = usage_record(fake_kube)

    assert record["day"] == "2026-03-02"
    assert record["gpu_hours"] == pytest.approx(24.0)
    assert record["nodes"] == 5
    assert record["at"] == b.iso(clock())


def test_unchanged_floor_writes_no_record(
    fake_kube: FakeKube, kube_api: k8s.ApiClient, clock: b.FakeClock
) -> None:
    seed_cluster(fake_kube, pool_nodes=3)
    actuator = build_actuator(config(), dry_run=False, api_client=kube_api, clock=clock)

    actuator.apply(b.decision(3, 4, current_nodes=3, current_replicas=4, at=clock()))

    annotations = fake_kube.get(*POOL)["metadata"].get("annotations") or {}
    assert BUDGET_USAGE_ANNOTATION not in annotations


def test_restart_reads_usage_and_cooldowns(
    fake_kube: FakeKube, kube_api: k8s.ApiClient, clock: b.FakeClock
) -> None:
    seed_cluster(fake_kube)
    run_day(kube_api, clock, config())
    raised_at = clock()
    clock.advance(1800)  # 5 nodes x 8 GPUs x 0.5 h = 20 more GPU-hours

    restarted = build_actuator(config(), dry_run=False, api_client=kube_api, clock=clock)
    state = restarted.guardrail_state()

    assert state.usage["cloud-h100"].gpu_hours == pytest.approx(44.0)
    assert state.usage["cloud-h100"].at == clock()
    assert state.last_change[("pool", "cloud-h100")] == raised_at


def test_usage_from_yesterday_counts_from_midnight(
    fake_kube: FakeKube, kube_api: k8s.ApiClient, clock: b.FakeClock
) -> None:
    seed_cluster(fake_kube)
    run_day(kube_api, clock, config())
    clock.now = pd.Timestamp("2026-03-03T02:00:00Z")

    restarted = build_actuator(config(), dry_run=False, api_client=kube_api, clock=clock)
    usage = restarted.guardrail_state().usage["cloud-h100"]

    assert usage.day.isoformat() == "2026-03-03"
    assert usage.gpu_hours == pytest.approx(5 * 8 * 2)


def test_unreadable_record_is_ignored(
    fake_kube: FakeKube,
    kube_api: k8s.ApiClient,
    clock: b.FakeClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    seed_cluster(fake_kube)
    fake_kube.mutate(
        *POOL,
        lambda obj: (
            obj["metadata"]
            .setdefault("annotations", {})
            .update({BUDGET_USAGE_ANNOTATION: '{"day": "yesterday"}'})
        ),
    )
    actuator = build_actuator(config(), dry_run=False, api_client=kube_api, clock=clock)

    with caplog.at_level(logging.WARNING):
        state = actuator.guardrail_state()

    assert "cloud-h100" not in state.usage
    assert "is unreadable and is ignored" in caplog.text


@pytest.mark.parametrize(
    ("restored", "expected"),
    [pytest.param(True, (3, RULE_BUDGET), id="restored"), pytest.param(False, None, id="fresh")],
)
def test_restarted_cycle_keeps_the_budget(
    fake_kube: FakeKube,
    kube_api: k8s.ApiClient,
    clock: b.FakeClock,
    restored: bool,
    expected: tuple[int, str] | None,
) -> None:
    """44 of 44.5 GPU-hours used: the next 60 s cycle affords 3 nodes of 8 GPUs, not 5."""
    seed_cluster(fake_kube)
    run_day(kube_api, clock, config())
    clock.advance(1800)
    if not restored:
        fake_kube.mutate(
            *POOL,
            lambda obj: obj["metadata"]["annotations"].pop(BUDGET_USAGE_ANNOTATION),
        )
    settings = config(limit=44.5)
    actuator = build_actuator(settings, dry_run=False, api_client=kube_api, clock=clock)
    cycle = LiveCycle(settings, HistoryLoader(settings), actuator)

    outcome = cycle.plan(clock(), lambda: True)

    assert outcome is not None
    pool = next(floor for floor in outcome.decision.pools if floor.name == "cloud-h100")
    if expected is None:
        # Without the record the day counts from zero, so the budget does not bind yet.
        assert (pool.desired, pool.rule) == (5, RULE_MISSING_DATA_HOLD)
    else:
        assert (pool.desired, pool.rule) == expected
