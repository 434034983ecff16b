"""Live-signal raises obey the guardrails: budgets, step limits, cooldowns and pauses."""

from __future__ import annotations

import datetime as dt
import io
import json
from typing import Any

import pandas as pd
import pytest

from scaler.actuators.dry_run import DryRunActuator
from scaler.core.budget import BudgetUsage
from scaler.core.decision import (
    RULE_BUDGET,
    RULE_FORECAST,
    RULE_MAX_NODES_ADDED,
    RULE_REACTIVE,
    FloorDecision,
)
from scaler.core.guardrails import GuardrailState
from scaler.cycle import LiveCycle
from scaler.fastloop import FastLoop
from scaler.histories import HistoryLoader
from scaler.journal import DecisionJournal
from scaler.settings_guardrails import GuardrailSettings
from scaler.signals.base import SignalKey
from scaler.signals.raised import CombinedActuator, RaisedFloor, RaisedFloors, lift_floor
from tests.service.test_cycle import CURRENT, NOW, refresh_all, two_workload_settings
from tests.signals import builders as sb
from tests.signals.fakes import MemoryActuator
from tests.signals.test_fast_loop import ScriptedSignal, floors

T0 = pd.Timestamp("2026-03-02T10:00:00Z")
POOL_KEY = ("pool", sb.POOL)


def pool_signal(target: int, samples: int = 40) -> ScriptedSignal:
    """A pool signal over its threshold in every sample, asking for ``target`` nodes."""
    return ScriptedSignal(
        [20.0] * samples, key=SignalKey("scripted", "pool", sb.POOL), floor=lambda _: target
    )


def loop_for(
    guardrails: dict[str, Any], signal: ScriptedSignal, actuator: MemoryActuator
) -> FastLoop:
    settings = sb.settings(guardrails=guardrails)
    raised = RaisedFloors(settings.policy.stabilization_window_seconds)
    return FastLoop(settings, [signal], CombinedActuator(actuator, raised))


def run(loop: FastLoop, seconds: list[int]) -> None:
    for offset in seconds:
        loop.run_once(T0 + pd.Timedelta(seconds=offset))


def test_budget_caps_a_live_signal_raise() -> None:
    # 0.8 GPU-hours left pays for 6 nodes of 8 GPUs over the next 60 s cycle.
    actuator = MemoryActuator(floors())
    loop = loop_for({"pools": {sb.POOL: {"max_gpu_hours_per_day": 0.8}}}, pool_signal(9), actuator)

    run(loop, [0, 15, 30])

    assert actuator.floors[POOL_KEY] == 6
    written = actuator.applied[-1].pools[0]
    assert written.rule == RULE_BUDGET
    assert "budget" in written.reason


def test_spent_budget_cancels_the_raise() -> None:
    actuator = MemoryActuator(floors())
    loop = loop_for({"pools": {sb.POOL: {"max_gpu_hours_per_day": 0.8}}}, pool_signal(9), actuator)
    spent = BudgetUsage(dt.date(2026, 3, 2), 0.79, T0 - pd.Timedelta(seconds=30))
    loop.use_guardrail_state(lambda: GuardrailState(usage={sb.POOL: spent}))

    run(loop, [0, 15, 30, 45])

    assert actuator.applied == []
    assert actuator.floors[POOL_KEY] == 1


def test_step_limit_counts_a_whole_cycle_interval() -> None:
    # max 2 nodes per 60 s planning interval: 1 -> 3 at once, 3 held for the rest of the
    # interval, then 3 -> 5.
    actuator = MemoryActuator(floors())
    loop = loop_for({"max_nodes_added_per_cycle": 2}, pool_signal(9), actuator)

    run(loop, [0, 15, 30])
    assert actuator.floors[POOL_KEY] == 3
    assert actuator.applied[-1].pools[0].rule == RULE_MAX_NODES_ADDED

    run(loop, [45, 60])
    assert actuator.floors[POOL_KEY] == 3

    run(loop, [90])
    assert actuator.floors[POOL_KEY] == 5


def test_scale_up_cooldown_holds_a_raise() -> None:
    actuator = MemoryActuator(floors())
    loop = loop_for({"scale_up_cooldown_seconds": 300}, pool_signal(4), actuator)
    changed = T0 - pd.Timedelta(seconds=60)
    loop.use_guardrail_state(lambda: GuardrailState(last_change={POOL_KEY: changed}))

    run(loop, [0, 15, 30])
    assert actuator.applied == []

    run(loop, [240, 255, 270])
    assert actuator.floors[POOL_KEY] == 4


def test_paused_pool_is_not_raised() -> None:
    actuator = MemoryActuator(floors())
    loop = loop_for({"paused_pools": [sb.POOL]}, pool_signal(4), actuator)

    run(loop, [0, 15, 30, 45])

    assert actuator.applied == []
    # The record contains the allowed value, so the planning cycle is not lifted past the pause.
    planned = FloorDecision("pool", sb.POOL, 1, 1, RULE_FORECAST, "P90 forecast")
    assert loop.lift(planned, T0 + pd.Timedelta(seconds=60)).desired == 1


@pytest.mark.parametrize(
    ("guardrails", "expected"),
    [
        pytest.param({}, (12, RULE_REACTIVE), id="lifted"),
        # 0.8 GPU-hours pay for 6 nodes of 8 GPUs over one 60 s cycle.
        pytest.param(
            {"pools": {"burst-a": {"max_gpu_hours_per_day": 0.8}}}, (6, RULE_BUDGET), id="capped"
        ),
    ],
)
def test_planning_cycle_caps_the_lifted_floor(
    guardrails: dict[str, Any], expected: tuple[int, str]
) -> None:
    """A reactive floor held from earlier lifts the plan, and the cycle's budget caps it."""
    base = two_workload_settings()
    settings = base.model_copy(update={"guardrails": GuardrailSettings.model_validate(guardrails)})
    raised = RaisedFloors(settings.policy.stabilization_window_seconds)
    raised.record(("pool", "burst-a"), RaisedFloor(NOW, 12, "scripted", "pending GPU pods"))
    cycle = LiveCycle(
        settings,
        HistoryLoader(settings),
        DryRunActuator(settings, CURRENT),
        lift=lambda floor, now: lift_floor(floor, raised, now),
    )
    refresh_all(cycle, settings, NOW)

    outcome = cycle.plan(NOW, lambda: True)

    assert outcome is not None
    pool = next(f for f in outcome.decision.pools if f.name == "burst-a")
    assert (pool.desired, pool.rule) == expected


def test_fast_loop_raise_is_journaled() -> None:
    settings = sb.settings(journal={"enabled": True})
    stream = io.StringIO()
    journal = DecisionJournal(settings, stream=stream)
    actuator = MemoryActuator(floors())
    raised = RaisedFloors(settings.policy.stabilization_window_seconds)
    loop = FastLoop(settings, [pool_signal(4)], CombinedActuator(actuator, raised), journal=journal)

    run(loop, [0, 15, 30, 45])

    records = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert len(records) == 1
    record = records[0]
    assert record["source"] == "fast_loop"
    assert record["workloads"] == []
    assert record["floors"][0]["name"] == sb.POOL
    assert record["floors"][0]["desired"] == 4
    assert record["floors"][0]["rule"] == RULE_REACTIVE
    assert record["summary"] == {"changed": 1}
