"""Baseline policies on synthetic traces: reactive HPA, static, schedule, Holt-Winters, oracle."""

from __future__ import annotations

import numpy as np
import pytest

from scaler.backtest.policies.holt_winters_replicas import OnlineHoltWinters
from scaler.backtest.runner import BacktestResult, run_backtest
from scaler.settings import Settings
from tests.scaler.planning_fixtures import history_from, small_settings

DAY = 1440


def _config(**overrides: object) -> Settings:
    options: dict[str, object] = {
        "static_nodes": 0,
        "burst_max": 20,
        "min_replicas": 1,
        "max_replicas": 200,
        "provisioning_seconds": 600,
        "start_seconds": 300,
        "simulator": {"scale_down_delay_seconds": 600, "reactive_stabilization_seconds": 300},
        "backtest": {"warmup_seconds": DAY * 60},
    }
    options.update(overrides)
    return small_settings(**options)  # type: ignore[arg-type]


def _run(config: Settings, minutes: list[float], policies: list[str]) -> BacktestResult:
    history = history_from(minutes, start="2024-01-01", step="1min")
    return run_backtest(config, {"llm": history}, policies)


def test_reactive_follows_demand_with_scale_down_stabilization() -> None:
    demand = [100.0] * DAY + [1000.0] * 30 + [100.0] * 30
    demand[DAY + 40] = np.nan
    result = _run(_config(), demand, ["reactive"])
    replicas = result.runs["reactive"].series.replica_targets["llm"]
    assert replicas[0] == 10
    assert replicas[33] == 10  # the last 1000 req/s minute (29) is still in the 5-minute window
    assert replicas[34] == 1
    assert replicas[40] == 1  # a missing minute keeps the last recommendation
    nodes = result.runs["reactive"].series.node_targets["burst"]
    assert nodes[0] == 3  # 10 replicas at 4 per node


def test_static_sized_for_warmup_peak() -> None:
    demand = [100.0] * (DAY - 10) + [500.0] * 10 + [1000.0] * 60
    result = _run(_config(), demand, ["static"])
    series = result.runs["static"].series
    assert set(series.replica_targets["llm"]) == {5}
    assert set(series.node_targets["burst"]) == {2}
    assert result.runs["static"].metrics.shortfall_gpu_minutes > 0


def test_schedule_raises_floors_a_lead_time_before_the_hour() -> None:
    # Warm-up day: 1000 req/s from 10:00 to 11:00, 100 otherwise; the second day is flat.
    warmup = [100.0] * DAY
    warmup[600:660] = [1000.0] * 60
    result = _run(_config(), warmup + [100.0] * DAY, ["schedule"])
    series = result.runs["schedule"].series
    replicas, nodes = series.replica_targets["llm"], series.node_targets["burst"]
    assert replicas[594] == 1
    assert replicas[595] == 10  # workload start: 5 minutes
    assert nodes[584] == 1
    assert nodes[585] == 3  # node provisioning + workload start: 15 minutes
    assert replicas[659] == 10
    assert replicas[660] == 1


def test_online_holt_winters_learns_a_season() -> None:
    season = [1.0, 5.0, 9.0, 5.0]
    model = OnlineHoltWinters(season_length=4)
    for value in season * 2:
        assert model.forecast() is None
        model.observe(value)
    for value in season * 20:
        model.observe(value)
    # After a whole number of seasons the next value is the season's first.
    assert model.forecast() == pytest.approx(1.0, abs=0.05)
    model.observe(1.0)
    assert model.forecast() == pytest.approx(5.0, abs=0.05)


def test_holt_winters_without_two_seasons_is_the_hpa() -> None:
    # One warm-up day is less than the two daily seasons the model needs.
    demand = [100.0] * DAY + [900.0] * 20 + [100.0] * 40
    result = _run(_config(), demand, ["reactive", "holt_winters_replicas"])
    reactive = result.runs["reactive"].series.replica_targets["llm"]
    predictive = result.runs["holt_winters_replicas"].series.replica_targets["llm"]
    assert list(predictive) == list(reactive)


def test_holt_winters_scales_ahead_of_a_daily_peak() -> None:
    day = [100.0] * DAY
    day[600:660] = [1000.0] * 60
    config = _config(backtest={"warmup_seconds": 3 * DAY * 60})
    result = _run(config, day * 4, ["reactive", "holt_winters_replicas"])
    reactive = result.runs["reactive"].series.replica_targets["llm"]
    predictive = result.runs["holt_winters_replicas"].series.replica_targets["llm"]
    assert reactive[599] == 1
    assert predictive[599] > 1


def test_oracle_holds_max_of_lead_window() -> None:
    demand = [100.0] * DAY + [100.0] * 30 + [1000.0] * 10 + [100.0] * 30
    result = _run(_config(), demand, ["oracle"])
    series = result.runs["oracle"].series
    replicas, nodes = series.replica_targets["llm"], series.node_targets["burst"]
    assert replicas[24] == 1
    assert replicas[25] == 10  # 5 minutes ahead of the peak at minute 30
    assert replicas[39] == 10
    assert replicas[40] == 1
    assert nodes[14] == 1
    assert nodes[15] == 3  # 15 minutes ahead
    assert result.runs["oracle"].metrics.shortfall_gpu_minutes == 0.0
