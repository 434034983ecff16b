"""The scaling policy: bounds, monotonicity, stabilisation, step limits and missing data."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scaler.core.decision import (
    RULE_BOUNDS,
    RULE_FORECAST,
    RULE_MAX_STEP,
    RULE_MISSING_DATA_HOLD,
    RULE_SAFE_FLOOR,
    RULE_STABILIZATION,
    RULE_STATIC,
    DataStatus,
    FloorDecision,
)
from scaler.core.policy import (
    Floors,
    PolicyState,
    Recommendation,
    assess_data,
    decide,
)
from scaler.core.requirements import Requirements
from tests.scaler.planning_fixtures import small_settings

T0 = pd.Timestamp("2024-01-01 00:00", tz="UTC")
STEP = pd.Timedelta(minutes=10)
CYCLE = pd.Timedelta(minutes=1)
WINDOW_SECONDS = 300

SETTINGS = small_settings(
    static_nodes=1,
    burst_min=1,
    burst_max=20,
    min_replicas=2,
    max_replicas=60,
    safe_min_nodes=4,
    policy={
        "stabilization_window_seconds": WINDOW_SECONDS,
        "max_scale_down_nodes_per_cycle": 1,
        "max_scale_down_replicas_per_cycle": 2,
        "missing_data_hold_seconds": 1800,
    },
)
USABLE = (DataStatus("llm", 1.0, T0, True),)
MISSING = (DataStatus("llm", 0.5, T0, False, "coverage too low"),)

values = st.integers(0, 100)
schedules = st.lists(values, min_size=6, max_size=6)
currents = st.one_of(st.none(), st.integers(0, 100))


def _requirements(replicas: list[int], nodes: list[int], start: pd.Timestamp = T0) -> Requirements:
    replica_array = np.asarray(replicas, dtype=np.int64)
    return Requirements(
        start=start,
        step=STEP,
        level=0.9,
        demand={"llm": replica_array * 100.0},
        replicas={"llm": replica_array},
        nodes={"burst": np.asarray(nodes, dtype=np.int64), "base": np.ones(len(nodes), np.int64)},
        unplaced={"llm": np.zeros(len(replicas), dtype=np.int64)},
    )


def _floors(pool: int | None, workload: int | None) -> Floors:
    return Floors(
        pools={} if pool is None else {"burst": pool},
        workloads={} if workload is None else {"llm": workload},
    )


def _floor(decision_floors: tuple[FloorDecision, ...], name: str) -> FloorDecision:
    return next(floor for floor in decision_floors if floor.name == name)


def _decide_once(
    replicas: list[int],
    nodes: list[int],
    current: Floors,
    state: PolicyState | None = None,
    data: tuple[DataStatus, ...] = USABLE,
    now: pd.Timestamp = T0,
) -> tuple[FloorDecision, FloorDecision, PolicyState]:
    result = decide(
        now, _requirements(replicas, nodes), current, state or PolicyState(), data, SETTINGS
    )
    pool = _floor(result.decision.pools, "burst")
    workload = _floor(result.decision.workloads, "llm")
    return pool, workload, result.state


@given(replicas=schedules, nodes=schedules, pool=currents, workload=currents, usable=st.booleans())
@settings(max_examples=150, deadline=None)
def test_floors_within_bounds(
    replicas: list[int], nodes: list[int], pool: int | None, workload: int | None, usable: bool
) -> None:
    data = USABLE if usable else MISSING
    pool_floor, workload_floor, _ = _decide_once(
        replicas, nodes, _floors(pool, workload), data=data
    )
    assert 1 <= pool_floor.desired <= 20
    assert 2 <= workload_floor.desired <= 60


@given(
    replicas=schedules,
    nodes=schedules,
    more_replicas=schedules,
    more_nodes=schedules,
    pool=currents,
    workload=currents,
    recorded=st.lists(values, max_size=4),
)
@settings(max_examples=150, deadline=None)
def test_floor_monotone_in_demand(
    replicas: list[int],
    nodes: list[int],
    more_replicas: list[int],
    more_nodes: list[int],
    pool: int | None,
    workload: int | None,
    recorded: list[int],
) -> None:
    history = tuple(Recommendation(T0 - (i + 1) * CYCLE, value) for i, value in enumerate(recorded))
    state = PolicyState(recommendations={"pool/burst": history, "workload/llm": history})
    higher_replicas = [a + b for a, b in zip(replicas, more_replicas, strict=True)]
    higher_nodes = [a + b for a, b in zip(nodes, more_nodes, strict=True)]
    current = _floors(pool, workload)
    low_pool, low_workload, _ = _decide_once(replicas, nodes, current, state)
    high_pool, high_workload, _ = _decide_once(higher_replicas, higher_nodes, current, state)
    assert high_pool.desired >= low_pool.desired
    assert high_workload.desired >= low_workload.desired


def _run_cycles(levels: list[int], start: Floors) -> list[tuple[FloorDecision, FloorDecision]]:
    """Run one cycle a minute; at cycle k every requirement equals ``levels[k]``."""
    state = PolicyState()
    current = start
    out = []
    for k, level in enumerate(levels):
        now = T0 + k * CYCLE
        requirements = _requirements([level] * 6, [level] * 6, start=now)
        result = decide(now, requirements, current, state, USABLE, SETTINGS)
        state = result.state
        current = Floors.from_decision(result.decision)
        out.append(
            (_floor(result.decision.pools, "burst"), _floor(result.decision.workloads, "llm"))
        )
    return out


@given(
    levels=st.lists(values, min_size=1, max_size=20),
    more=st.lists(st.integers(0, 30), min_size=20, max_size=20),
)
@settings(max_examples=100, deadline=None)
def test_floor_sequence_monotone_in_demand(levels: list[int], more: list[int]) -> None:
    higher = [level + extra for level, extra in zip(levels, more, strict=False)]
    low = _run_cycles(levels, Floors())
    high = _run_cycles(higher, Floors())
    for (low_pool, low_workload), (high_pool, high_workload) in zip(low, high, strict=True):
        assert high_pool.desired >= low_pool.desired
        assert high_workload.desired >= low_workload.desired


@given(levels=st.lists(values, min_size=2, max_size=25))
@settings(max_examples=100, deadline=None)
def test_no_scale_down_inside_stabilization_window(levels: list[int]) -> None:
    decisions = _run_cycles(levels, Floors())
    window_cycles = WINDOW_SECONDS // 60
    for k, (pool, workload) in enumerate(decisions):
        recent = levels[max(0, k - window_cycles + 1) : k + 1]
        assert pool.desired >= min(max(max(recent), 1), 20)
        assert workload.desired >= min(max(max(recent), 2), 60)


@given(levels=st.lists(values, min_size=2, max_size=25))
@settings(max_examples=100, deadline=None)
def test_scale_up_immediate_and_down_by_bounded_steps(levels: list[int]) -> None:
    decisions = _run_cycles(levels, Floors())
    for k in range(1, len(decisions)):
        for index, step in ((0, 1), (1, 2)):
            before, after = decisions[k - 1][index].desired, decisions[k][index].desired
            assert after >= before - step
        assert decisions[k][1].desired >= min(max(levels[k], 2), 60)


@given(
    replicas=schedules,
    nodes=schedules,
    pool=st.integers(0, 30),
    workload=st.integers(0, 80),
    missing_minutes=st.integers(0, 600),
)
@settings(max_examples=150, deadline=None)
def test_missing_data_never_lowers_a_floor(
    replicas: list[int], nodes: list[int], pool: int, workload: int, missing_minutes: int
) -> None:
    since = T0 - pd.Timedelta(minutes=missing_minutes)
    state = PolicyState(missing_since={"llm": since})
    pool_floor, workload_floor, new_state = _decide_once(
        replicas, nodes, _floors(pool, workload), state, data=MISSING
    )
    # Only the configured max bounds may lower a held floor.
    assert pool_floor.desired >= min(pool, 20)
    assert workload_floor.desired >= min(workload, 60)
    assert pool_floor.rule in (RULE_MISSING_DATA_HOLD, RULE_SAFE_FLOOR, RULE_BOUNDS)
    assert new_state.missing_since["llm"] == since


def test_missing_data_holds_then_safe_floor_raises() -> None:
    state = PolicyState(missing_since={"llm": T0})
    early = T0 + pd.Timedelta(minutes=29)
    late = T0 + pd.Timedelta(minutes=30)
    pool, workload, _ = _decide_once([0] * 6, [0] * 6, _floors(2, 8), state, MISSING, now=early)
    assert (pool.desired, pool.rule) == (2, RULE_MISSING_DATA_HOLD)
    assert (workload.desired, workload.rule) == (8, RULE_MISSING_DATA_HOLD)
    assert "coverage too low" in pool.reason

    pool, workload, _ = _decide_once([0] * 6, [0] * 6, _floors(2, 8), state, MISSING, now=late)
    assert (pool.desired, pool.rule) == (4, RULE_SAFE_FLOOR)
    assert (workload.desired, workload.rule) == (8, RULE_MISSING_DATA_HOLD)


def test_safe_floor_below_current_keeps_current() -> None:
    state = PolicyState(missing_since={"llm": T0})
    now = T0 + pd.Timedelta(hours=2)
    pool, _, _ = _decide_once([0] * 6, [0] * 6, _floors(9, 8), state, MISSING, now=now)
    assert (pool.desired, pool.rule) == (9, RULE_MISSING_DATA_HOLD)
    assert "never lowers a floor" in pool.reason


def test_missing_data_with_unknown_floor_uses_safe_floor() -> None:
    pool, workload, state = _decide_once([50] * 6, [9] * 6, Floors(), data=MISSING)
    assert (pool.desired, pool.rule) == (4, RULE_SAFE_FLOOR)
    assert (workload.desired, workload.rule) == (2, RULE_MISSING_DATA_HOLD)
    assert state.missing_since == {"llm": T0}


def test_data_returning_clears_missing_since() -> None:
    state = PolicyState(missing_since={"llm": T0 - pd.Timedelta(hours=1)})
    _, _, new_state = _decide_once([3] * 6, [1] * 6, _floors(1, 3), state)
    assert new_state.missing_since == {}


def test_no_requirements_hold() -> None:
    result = decide(T0, None, _floors(3, 10), PolicyState(), USABLE, SETTINGS)
    pool = _floor(result.decision.pools, "burst")
    assert (pool.desired, pool.rule) == (3, RULE_MISSING_DATA_HOLD)
    assert "no forecast" in pool.reason


def test_expired_forecast_holds() -> None:
    later = T0 + 6 * STEP
    result = decide(
        later, _requirements([1] * 6, [1] * 6), _floors(3, 10), PolicyState(), USABLE, SETTINGS
    )
    workload = _floor(result.decision.workloads, "llm")
    assert (workload.desired, workload.rule) == (10, RULE_MISSING_DATA_HOLD)
    assert "forecast ends" in workload.reason


def test_static_pool_keeps_fixed_size() -> None:
    result = decide(T0, _requirements([0] * 6, [0] * 6), Floors(), PolicyState(), MISSING, SETTINGS)
    base = _floor(result.decision.pools, "base")
    assert (base.desired, base.rule) == (1, RULE_STATIC)


def test_forecast_rule_records_window_and_level() -> None:
    pool, workload, state = _decide_once([3, 7, 1, 1, 1, 1], [1, 2, 5, 1, 1, 1], Floors())
    # Workload window: 300 s from T0 meets row 0 only; pool window: 900 s meets rows 0 and 1.
    assert (workload.desired, workload.rule) == (3, RULE_FORECAST)
    assert (pool.desired, pool.rule) == (2, RULE_FORECAST)
    assert workload.forecast_level == 0.9
    assert workload.forecast_value == 300.0
    assert workload.window_end == T0 + pd.Timedelta(seconds=300)
    assert pool.window_end == T0 + pd.Timedelta(seconds=900)
    assert state.recommendations["workload/llm"] == (Recommendation(T0, 3),)


def test_scale_down_limited_per_cycle() -> None:
    pool, workload, _ = _decide_once([2] * 6, [1] * 6, _floors(5, 20))
    assert (pool.desired, pool.rule) == (4, RULE_MAX_STEP)
    assert (workload.desired, workload.rule) == (18, RULE_MAX_STEP)


def test_scale_down_held_by_stabilization() -> None:
    recorded = (Recommendation(T0 - CYCLE, 6),)
    state = PolicyState(recommendations={"pool/burst": recorded, "workload/llm": recorded})
    pool, workload, _ = _decide_once([2] * 6, [1] * 6, _floors(6, 6), state)
    assert (pool.desired, pool.rule) == (6, RULE_STABILIZATION)
    assert (workload.desired, workload.rule) == (6, RULE_STABILIZATION)


def test_old_recommendations_leave_window() -> None:
    old = (Recommendation(T0 - pd.Timedelta(seconds=WINDOW_SECONDS), 6),)
    state = PolicyState(recommendations={"pool/burst": old})
    pool, _, new_state = _decide_once([2] * 6, [5] * 6, _floors(6, 6), state)
    assert (pool.desired, pool.rule) == (5, RULE_FORECAST)
    assert new_state.recommendations["pool/burst"] == (Recommendation(T0, 5),)


def test_requirement_above_max_clamped() -> None:
    pool, workload, _ = _decide_once([500] * 6, [99] * 6, Floors())
    assert (pool.desired, pool.rule) == (20, RULE_BOUNDS)
    assert (workload.desired, workload.rule) == (60, RULE_BOUNDS)


def test_decisions_logged_at_chosen_level(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="scaler.core.policy"):
        decide(
            T0,
            _requirements([3] * 6, [1] * 6),
            Floors(),
            PolicyState(),
            USABLE,
            SETTINGS,
            log_level=logging.DEBUG,
        )
    records = [r for r in caplog.records if r.name == "scaler.core.policy"]
    assert len(records) == 3
    assert all(r.levelno == logging.DEBUG for r in records)
    assert "pool burst: floor unknown -> 1 nodes" in records[1].getMessage()


@pytest.mark.parametrize(
    ("age_minutes", "step_minutes", "usable"),
    [
        pytest.param(4, 1, True, id="one-minute-step-fresh"),
        pytest.param(6, 1, False, id="one-minute-step-stale"),
        pytest.param(9, 10, True, id="ten-minute-step-waits-one-step"),
        pytest.param(11, 10, False, id="ten-minute-step-stale"),
    ],
)
def test_assess_data_staleness(age_minutes: int, step_minutes: int, usable: bool) -> None:
    step = pd.Timedelta(minutes=step_minutes)
    now = T0 + step + pd.Timedelta(minutes=age_minutes)
    status = assess_data(
        "llm", coverage=1.0, last_observed=T0, step=step, now=now, settings=SETTINGS
    )
    assert status.usable is usable
    if not usable:
        assert "staleness limit" in status.reason


def test_assess_data_low_coverage() -> None:
    status = assess_data(
        "llm", coverage=0.5, last_observed=T0, step=STEP, now=T0 + STEP, settings=SETTINGS
    )
    assert not status.usable
    assert "coverage 50.0% over the last 6 h is below forecast.min_coverage" in status.reason


@pytest.mark.parametrize(
    ("coverage", "recent", "reason"),
    [
        pytest.param(0.7, 1.0, "", id="old-gap-covered-again"),
        pytest.param(0.3, 1.0, "below forecast.min_history_coverage", id="sparse-history"),
        pytest.param(0.9, 0.5, "over the last 6 h is below", id="spotty-recent-data"),
    ],
)
def test_assess_data_coverage_windows(coverage: float, recent: float, reason: str) -> None:
    status = assess_data(
        "llm",
        coverage=coverage,
        last_observed=T0,
        step=STEP,
        now=T0 + STEP,
        settings=SETTINGS,
        recent_coverage=recent,
    )
    assert status.usable is (reason == "")
    assert reason in status.reason
    assert status.coverage == coverage


def test_assess_data_no_sample() -> None:
    status = assess_data(
        "llm", coverage=0.0, last_observed=None, step=STEP, now=T0, settings=SETTINGS
    )
    assert not status.usable
    assert status.last_observed is None
