"""Budgets and limits: GPU-hour caps, the per-cycle node step, cooldowns, and the backtest."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scaler.backtest.runner import run_backtest
from scaler.core.budget import BudgetUsage, account
from scaler.core.decision import (
    RULE_BUDGET,
    RULE_COOLDOWN,
    RULE_FORECAST,
    RULE_MAX_NODES_ADDED,
)
from scaler.core.guardrails import GuardrailState
from scaler.core.policy import Floors, PolicyState, decide
from scaler.settings import Settings
from tests.guardrails.helpers import T0, flat_requirements, floors, guarded, usable
from tests.scaler.planning_fixtures import (
    StandInEngine,
    default_settings,
    servegen_history,
    settings_from,
    small_settings,
)


def state_with_usage(gpu_hours: float, at: pd.Timestamp = T0) -> PolicyState:
    usage = {"burst": BudgetUsage(at.date(), gpu_hours, at)}
    return PolicyState(guardrails=GuardrailState(usage=usage))


def test_budget_caps_pool_floor() -> None:
    # 100 GPU-hours a day, 99.5 used: one more minute at N nodes of 8 GPUs costs N * 8 / 60.
    config = guarded(pools={"burst": {"max_gpu_hours_per_day": 100.0}})
    result = decide(
        T0,
        flat_requirements(40, 10, T0),
        floors(10, 40),
        state_with_usage(99.5),
        usable(T0),
        config,
    )
    burst = result.decision.pools[1]
    assert burst.desired == 3  # floor(0.5 GPU-hours / (1/60 h) / 8 GPUs) = 3 nodes
    assert burst.rule == RULE_BUDGET
    assert "pool burst budget" in burst.reason
    assert "99.5 of 100 GPU-hours" in burst.reason


def test_budget_exhausted_drops_to_min_nodes() -> None:
    config = guarded(small_settings_with_min(2), pools={"burst": {"max_gpu_hours_per_day": 50.0}})
    result = decide(
        T0,
        flat_requirements(40, 10, T0),
        floors(10, 40),
        state_with_usage(60.0),
        usable(T0),
        config,
    )
    assert result.decision.pools[1].desired == 2
    assert result.decision.pools[1].rule == RULE_BUDGET


def small_settings_with_min(min_nodes: int) -> Settings:
    return small_settings(static_nodes=1, burst_min=min_nodes, burst_max=20, max_replicas=80)


def test_usage_resets_at_local_midnight() -> None:
    config = guarded(
        budget_timezone="Europe/Berlin", pools={"burst": {"max_gpu_hours_per_day": 1e6}}
    )
    usage = None
    at = pd.Timestamp("2026-03-02T21:00", tz="UTC")  # 22:00 in Berlin
    for _ in range(61):  # one hour of one-minute cycles holding 2 nodes of 8 GPUs
        usage = account(usage, 16, at, config)
        at += pd.Timedelta(minutes=1)
    assert usage is not None
    assert usage.gpu_hours == pytest.approx(16.0)
    # 23:00 UTC is midnight in Berlin: the new day starts from zero.
    late = account(usage, 16, pd.Timestamp("2026-03-02T23:30", tz="UTC"), config)
    assert late.day == pd.Timestamp("2026-03-03").date()
    assert late.gpu_hours == pytest.approx(8.0)  # only the half hour after midnight


def test_unknown_floor_adds_no_usage() -> None:
    config = guarded()
    start = account(None, None, T0, config)
    later = account(start, None, T0 + pd.Timedelta(hours=3), config)
    assert later.gpu_hours == 0.0


def two_pool_settings(**guardrails: Any) -> Settings:
    pool = {"kind": "burst", "gpus_per_node": 8, "min_nodes": 0, "max_nodes": 20}
    raw = {
        "pools": [{"name": "a", **pool}, {"name": "b", **pool}],
        "workloads": [
            {
                "name": "llm",
                "demand": {"source": "trace", "series": "req_per_s", "unit": "requests_per_second"},
                "capacity": {"throughput_per_replica": 100.0, "gpus_per_replica": 2},
                "pools": ["a", "b"],
            }
        ],
        "guardrails": guardrails,
    }
    return settings_from(raw)


def test_fleet_budget_shared_in_pool_order() -> None:
    config = two_pool_settings(max_gpu_hours_per_day=10.0)
    requirements = flat_requirements(40, 0, T0)
    requirements = type(requirements)(
        start=requirements.start,
        step=requirements.step,
        level=requirements.level,
        demand=requirements.demand,
        replicas=requirements.replicas,
        nodes={"a": requirements.nodes["burst"] + 6, "b": requirements.nodes["burst"] + 6},
        unplaced=requirements.unplaced,
    )
    current = Floors(pools={"a": 6, "b": 6}, workloads={"llm": 40})
    result = decide(T0, requirements, current, PolicyState(), usable(T0), config)
    a, b = result.decision.pools
    # 10 GPU-hours for the next minute allow 600 GPUs = 75 nodes in total: no cap yet.
    assert (a.desired, b.desired) == (6, 6)

    # 1.2 GPU-hours left pay for 72 GPUs (9 nodes) over the next one-minute cycle. Pool a
    # comes first in the config and keeps its 6 nodes; pool b gets the remaining 3.
    used = {"a": BudgetUsage(T0.date(), 8.8, T0), "b": BudgetUsage(T0.date(), 0.0, T0)}
    state = PolicyState(guardrails=GuardrailState(usage=used))
    result = decide(T0, requirements, current, state, usable(T0), config)
    a, b = result.decision.pools
    assert (a.desired, b.desired) == (6, 3)
    assert a.rule == RULE_FORECAST
    assert b.rule == RULE_BUDGET
    assert "fleet budget" in b.reason


def test_nodes_added_per_cycle_limited() -> None:
    config = guarded(max_nodes_added_per_cycle=3)
    result = decide(
        T0, flat_requirements(40, 10, T0), floors(2, 40), PolicyState(), usable(T0), config
    )
    burst = result.decision.pools[1]
    assert burst.desired == 5
    assert burst.rule == RULE_MAX_NODES_ADDED
    assert "target 10" in burst.reason


def test_nodes_added_limit_per_pool_overrides_fleet() -> None:
    config = guarded(max_nodes_added_per_cycle=3, pools={"burst": {"max_nodes_added_per_cycle": 1}})
    result = decide(
        T0, flat_requirements(40, 10, T0), floors(2, 40), PolicyState(), usable(T0), config
    )
    assert result.decision.pools[1].desired == 3


def test_scale_up_cooldown_holds_then_releases() -> None:
    config = guarded(scale_up_cooldown_seconds=300)
    state = PolicyState()
    first = decide(T0, flat_requirements(20, 4, T0), floors(2, 20), state, usable(T0), config)
    assert first.decision.pools[1].desired == 4  # no earlier change: raised at once

    soon = T0 + pd.Timedelta(minutes=2)
    second = decide(
        soon, flat_requirements(20, 8, T0), floors(4, 20), first.state, usable(soon), config
    )
    assert second.decision.pools[1].desired == 4
    assert second.decision.pools[1].rule == RULE_COOLDOWN
    assert "300 s scale-up cooldown" in second.decision.pools[1].reason

    later = T0 + pd.Timedelta(minutes=5)
    third = decide(
        later, flat_requirements(20, 8, T0), floors(4, 20), second.state, usable(later), config
    )
    assert third.decision.pools[1].desired == 8
    assert third.decision.pools[1].rule == RULE_FORECAST


@settings(max_examples=80, deadline=None)
@given(
    replicas=st.integers(1, 80),
    nodes=st.integers(0, 20),
    current_nodes=st.one_of(st.none(), st.integers(0, 20)),
    used=st.floats(0, 300),
    limit=st.floats(1, 300),
    step=st.one_of(st.none(), st.integers(1, 5)),
)
def test_budget_never_raises_a_plan(
    replicas: int,
    nodes: int,
    current_nodes: int | None,
    used: float,
    limit: float,
    step: int | None,
) -> None:
    plain = guarded()
    budgeted = guarded(
        max_gpu_hours_per_day=limit,
        max_nodes_added_per_cycle=step,
        pools={"burst": {"max_gpu_hours_per_day": limit * 0.7}},
    )
    requirements = flat_requirements(replicas, nodes, T0)
    current = floors(current_nodes, None)
    state = state_with_usage(used)
    before = decide(T0, requirements, current, state, usable(T0), plain).decision
    after = decide(T0, requirements, current, state, usable(T0), budgeted).decision
    for planned, capped in zip(before.all_floors(), after.all_floors(), strict=True):
        assert capped.desired <= planned.desired
        assert capped.desired >= 0


def test_budget_caps_backtest() -> None:
    config = default_settings(backtest={"warmup_seconds": 2 * 86400, "duration_seconds": 86400})
    history = {"llm-m-large": servegen_history(4)}
    free = run_backtest(config, history, ["peakcast"], engine=StandInEngine(config.forecast))
    # The burst pool's floors hold about 540 GPU-hours on this day without a budget.
    limited = guarded(config, max_gpu_hours_per_day=300.0)
    capped = run_backtest(limited, history, ["peakcast"], engine=StandInEngine(limited.forecast))

    free_run, capped_run = free.runs["peakcast"], capped.runs["peakcast"]
    assert capped_run.metrics.gpu_hours < free_run.metrics.gpu_hours - 100
    assert capped_run.rule_counts.get(RULE_BUDGET, 0) > 0
    assert free_run.rule_counts.get(RULE_BUDGET, 0) == 0
