"""plan_at: the dry-run decision at a past timestamp of a trace."""

from __future__ import annotations

import numpy as np
import pandas as pd

from forecaster.history import History
from scaler.core.decision import RULE_MISSING_DATA_HOLD, RULE_STATIC
from scaler.replay import plan_at, replay_start
from tests.scaler.planning_fixtures import StandInEngine, default_settings, servegen_history

SETTINGS = default_settings()
DAY3 = pd.Timestamp("1970-01-03", tz="UTC")


def _with_gap(start: pd.Timestamp, end: pd.Timestamp) -> History:
    history = servegen_history(4)
    values = history.values.copy()
    values[(values.index >= start) & (values.index < end)] = np.nan
    return History(history.name, values, history.step)


def _plan(history: History, at: pd.Timestamp | str):
    return plan_at(SETTINGS, {"llm-m-large": history}, at, engine=StandInEngine(SETTINGS.forecast))


def test_plan_inside_gap_holds_and_reports_coverage() -> None:
    gap_start, gap_end = DAY3 + pd.Timedelta(hours=6), DAY3 + pd.Timedelta(hours=12)
    decision = _plan(_with_gap(gap_start, gap_end), gap_start + pd.Timedelta(hours=2))

    status = decision.data[0]
    assert not status.usable
    assert status.last_observed == gap_start - pd.Timedelta(minutes=10)
    assert 0.9 < status.coverage < 1.0
    assert "staleness limit" in status.reason

    cloud = next(floor for floor in decision.pools if floor.name == "cloud-h100")
    onprem = next(floor for floor in decision.pools if floor.name == "onprem-h100")
    workload = decision.workloads[0]
    assert cloud.rule == RULE_MISSING_DATA_HOLD
    assert cloud.desired == cloud.current
    assert workload.rule == RULE_MISSING_DATA_HOLD
    assert workload.desired == workload.current
    assert workload.current is not None and workload.current > 2
    assert onprem.rule == RULE_STATIC


def test_plan_holds_floors_decided_before_gap() -> None:
    gap_start = DAY3 + pd.Timedelta(hours=6)
    history = _with_gap(gap_start, DAY3 + pd.Timedelta(hours=12))
    last_good = _plan(history, gap_start + pd.Timedelta(minutes=5))
    held = _plan(history, gap_start + pd.Timedelta(minutes=50))
    assert last_good.data[0].usable
    assert held.workloads[0].desired >= last_good.workloads[0].desired


def test_plan_outside_gap_follows_forecast() -> None:
    decision = _plan(servegen_history(4), DAY3 + pd.Timedelta(hours=14))
    workload = decision.workloads[0]
    assert decision.data[0].usable
    assert workload.forecast_level == 0.9
    assert workload.window_end == decision.at + pd.Timedelta(seconds=420)
    cloud = next(floor for floor in decision.pools if floor.name == "cloud-h100")
    assert cloud.window_end == decision.at + pd.Timedelta(seconds=900 + 420 + 120)


def test_plan_ignores_data_after_at() -> None:
    at = DAY3 + pd.Timedelta(hours=14, minutes=7)
    clean = servegen_history(4)
    values = clean.values.copy()
    values[values.index > at] = 5000.0
    poisoned = History(clean.name, values, clean.step)
    assert _plan(clean, at) == _plan(poisoned, at)


def test_naive_at_read_in_config_timezone() -> None:
    berlin = SETTINGS.model_copy(update={"timezone": "Europe/Berlin"})
    decision = plan_at(
        berlin,
        {"llm-m-large": servegen_history(4)},
        pd.Timestamp("1970-01-03 15:00"),
        engine=StandInEngine(berlin.forecast),
    )
    assert decision.at == DAY3 + pd.Timedelta(hours=14)


def test_plan_before_any_data_holds_minimum() -> None:
    decision = _plan(servegen_history(4), pd.Timestamp("1969-12-31 23:00", tz="UTC"))
    assert not decision.data[0].usable
    assert decision.workloads[0].desired == 2  # min_replicas: nothing is known
    assert decision.workloads[0].rule == RULE_MISSING_DATA_HOLD


def test_replay_starts_before_the_gap() -> None:
    gap_start = DAY3 + pd.Timedelta(hours=6)
    history = _with_gap(gap_start, DAY3 + pd.Timedelta(hours=12))
    at = gap_start + pd.Timedelta(hours=5)
    start = replay_start(SETTINGS, {"llm-m-large": history.until(at)}, at)
    lookback = pd.Timedelta(seconds=1800 + 3600)
    assert start == gap_start - pd.Timedelta(minutes=10) - lookback
