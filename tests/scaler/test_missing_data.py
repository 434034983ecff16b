"""Missing data through the whole planning cycle: an outage at peak never scales down.

The scenario is a metrics outage during a peak: 60 minutes at 800 requests/s with 8 replicas,
then 10 minutes in which the query returns nothing.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from scaler.backtest.planner import PeakcastPlanner
from scaler.backtest.trace import visible_cutoff
from scaler.core.capacity import Fleet
from scaler.core.decision import RULE_MISSING_DATA_HOLD, CycleDecision
from scaler.core.policy import assess_history
from scaler.replay import plan_at
from tests.scaler.planning_fixtures import StandInEngine, history_from, small_settings

T0 = pd.Timestamp("2024-01-01 00:00", tz="UTC")
SETTINGS = small_settings(
    throughput=125.0,
    utilization=0.8,
    gpus_per_replica=2,
    min_replicas=1,
    policy={"stabilization_window_seconds": 600, "stale_data_seconds": 300},
    # The stand-in's median is its point forecast, so 800 requests/s plan as 8 replicas.
    forecast={"planning_level": 0.5, "levels": [0.5, 0.9]},
)
OUTAGE = history_from([800.0] * 60 + [np.nan] * 10, start="2024-01-01", step="1min")


def _run_cycles(minutes: int) -> list[CycleDecision]:
    fleet = Fleet(SETTINGS.pools, SETTINGS.workloads)
    planner = PeakcastPlanner(SETTINGS, fleet, StandInEngine(SETTINGS.forecast))
    decisions = []
    for minute in range(minutes + 1):
        now = T0 + pd.Timedelta(minutes=minute)
        visible = OUTAGE.until(visible_cutoff(now, OUTAGE.step))
        if minute % 10 == 0:
            planner.replan(now, {"llm": visible})
        decisions.append(planner.cycle(now, [assess_history(visible, now, SETTINGS)]))
    return decisions


def test_outage_at_peak_holds_replicas_and_nodes() -> None:
    decisions = _run_cycles(70)
    before = decisions[60]
    assert before.workloads[0].desired == 8
    assert before.pools[0].desired == 2  # 8 replicas x 2 GPUs on 8-GPU nodes
    for decision in decisions[61:]:
        assert decision.workloads[0].desired == 8
        assert decision.pools[0].desired == before.pools[0].desired


def test_outage_reported_once_data_is_stale() -> None:
    decisions = _run_cycles(70)
    fresh, stale = decisions[65], decisions[66]
    assert fresh.data[0].usable
    assert not stale.data[0].usable
    assert "staleness limit" in stale.data[0].reason
    assert stale.workloads[0].rule == RULE_MISSING_DATA_HOLD
    assert stale.pools[0].rule == RULE_MISSING_DATA_HOLD


def test_plan_at_during_outage_holds() -> None:
    decision = plan_at(
        SETTINGS,
        {"llm": OUTAGE},
        T0 + pd.Timedelta(minutes=70),
        engine=StandInEngine(SETTINGS.forecast),
    )
    workload = decision.workloads[0]
    assert (workload.desired, workload.current, workload.rule) == (8, 8, RULE_MISSING_DATA_HOLD)
    assert not decision.data[0].usable
    assert decision.data[0].coverage == 60 / 70
