"""The fast-loop model in the backtest: demand above the forecast, widened levels, no leakage."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecaster.history import History
from scaler.backtest.policies import DEFAULT_POLICIES
from scaler.backtest.runner import BacktestResult, run_backtest
from scaler.settings import Settings
from tests.scaler.planning_fixtures import (
    StandInEngine,
    default_settings,
    history_from,
    servegen_history,
    small_settings,
)

DAY = 1440
FAST = "peakcast+fastloop"
COMBINED = "peakcast+reactive"


def _config(duration_minutes: int) -> Settings:
    # 10 req/s per replica, 4 replicas per node, a 15-minute node lead (10 + 5) and a
    # 30-minute stabilization window. The stand-in forecast's P90 and P95 are 1.2 and 1.225
    # times its point forecast.
    return small_settings(
        throughput=10.0,
        burst_max=20,
        max_replicas=200,
        provisioning_seconds=600,
        start_seconds=300,
        policy={"stabilization_window_seconds": 1800},
        simulator={"scale_down_delay_seconds": 600, "reactive_stabilization_seconds": 300},
        forecast={"levels": [0.5, 0.9, 0.95], "planning_level": 0.9},
        backtest={"warmup_seconds": DAY * 60, "duration_seconds": duration_minutes * 60},
    )


def _run(config: Settings, minutes: list[float], policies: list[str]) -> BacktestResult:
    history = history_from(minutes, step="1min")
    engine = StandInEngine(config.forecast)
    return run_backtest(config, {"llm": history}, policies, engine=engine)


def _series(result: BacktestResult, policy: str) -> tuple[np.ndarray, np.ndarray]:
    series = result.runs[policy].series
    return series.replica_targets["llm"], series.node_targets["burst"]


def test_fastloop_listed_after_combined() -> None:
    assert DEFAULT_POLICIES[-2:] == (COMBINED, FAST)


def test_surge_raises_and_holds_floors() -> None:
    # Flat 100 req/s (upper quantile 122.5), then 300 req/s in simulated minutes 10-19.
    demand = [100.0] * (DAY + 180)
    demand[DAY + 10 : DAY + 20] = [300.0] * 10
    result = _run(_config(180), demand, [COMBINED, FAST])
    fast_replicas, fast_nodes = _series(result, FAST)
    combined_replicas, combined_nodes = _series(result, COMBINED)

    # Minutes 10, 11 and 12 make a run of 3 samples over 120 s, which satisfies the
    # hysteresis at minute 12.
    assert fast_replicas[12] == 30
    assert fast_nodes[12] == 8
    # The last request is minute 19, so the raise is held through minute 19 + 29.
    assert list(fast_replicas[12:49]) == [30] * 37
    assert list(fast_nodes[12:49]) == [8] * 37
    assert fast_replicas[49] == combined_replicas[49]
    assert fast_nodes[49] == combined_nodes[49]
    # The HPA alone scales down after its 5-minute stabilization.
    assert combined_replicas[30] < 30
    assert combined_nodes[40] < 8
    assert result.runs[FAST].metrics.gpu_hours > result.runs[COMBINED].metrics.gpu_hours


@pytest.mark.parametrize(("spike_minutes", "raises"), [(1, False), (2, False), (3, True)])
def test_spike_shorter_than_hysteresis_raises_nothing(spike_minutes: int, raises: bool) -> None:
    demand = [100.0] * (DAY + 120)
    demand[DAY + 10 : DAY + 10 + spike_minutes] = [300.0] * spike_minutes
    result = _run(_config(120), demand, [COMBINED, FAST])
    fast_replicas, fast_nodes = _series(result, FAST)
    combined_replicas, combined_nodes = _series(result, COMBINED)
    raised = bool((fast_replicas > combined_replicas).any())
    assert raised == raises
    if not raises:
        assert list(fast_replicas) == list(combined_replicas)
        assert list(fast_nodes) == list(combined_nodes)


def test_sustained_miss_widens_level_a_lead_time_ahead() -> None:
    # Both days are 100 req/s with a 200 req/s hour at 12:00. On the simulated day, demand is
    # 130 req/s from 11:00, above the upper quantile of 122.5, so a miss is recorded at 11:15
    # and the planning level widens from P90 to P95. P90 of the 12:00 hour needs 24 replicas
    # on 6 nodes, P95 needs 25 on 7.
    warmup = [100.0] * DAY
    warmup[720:780] = [200.0] * 60
    day = [100.0] * 840
    day[660:720] = [130.0] * 60
    day[720:780] = [200.0] * 60
    result = _run(_config(840), warmup + day, [COMBINED, FAST])
    _, fast_nodes = _series(result, FAST)
    _, combined_nodes = _series(result, COMBINED)

    higher = np.flatnonzero(fast_nodes > combined_nodes)
    assert higher.size > 0
    # The node floor rises one node lead (15 minutes) before the 12:00 hour.
    assert higher[0] == 720 - 15
    assert set(range(705, 720)) <= set(higher.tolist())
    assert combined_nodes[705] == 6
    assert fast_nodes[705] == 7
    # Nothing differs before the miss.
    assert list(fast_nodes[:675]) == list(combined_nodes[:675])


def _servegen_config() -> Settings:
    # The real ServeGen trace with the configured forecast engine: the stand-in's quantiles are
    # too wide for demand to go above them on this trace.
    return default_settings(backtest={"warmup_seconds": 2 * 86400, "duration_seconds": 86400})


def test_floors_never_below_combined() -> None:
    config = _servegen_config()
    history = servegen_history(3.5)
    result = run_backtest(config, {"llm-m-large": history}, [COMBINED, FAST])
    fast = result.runs[FAST].series
    combined = result.runs[COMBINED].series
    fast_replicas = fast.replica_targets["llm-m-large"]
    combined_replicas = combined.replica_targets["llm-m-large"]
    assert (fast_replicas >= combined_replicas).all()
    assert (fast.node_targets["cloud-h100"] >= combined.node_targets["cloud-h100"]).all()
    assert (fast_replicas > combined_replicas).any()


def _poisoned(history: History, after: pd.Timestamp) -> History:
    values = history.values.copy()
    values[values.index > after] = values[values.index > after] * 50 + 1000
    return History(history.name, values, history.step)


def test_no_future_forecast_or_demand_read() -> None:
    # peakcast runs first, so every forecast of the day exists before the fast loop is
    # stepped. The fast loop must still use only forecasts made by each minute.
    config = _servegen_config()
    cut_minutes = 600
    clean = servegen_history(3.5)
    cut = pd.Timestamp("1970-01-03", tz="UTC") + pd.Timedelta(minutes=cut_minutes)
    runs = []
    for history in (clean, _poisoned(clean, cut)):
        policies = ["peakcast", COMBINED, FAST]
        runs.append(run_backtest(config, {"llm-m-large": history}, policies))
    clean_run, poisoned_run = (run.runs[FAST].series for run in runs)
    seen = slice(0, cut_minutes + 1)
    for field in ("replica_targets", "node_targets"):
        for key, values in getattr(clean_run, field).items():
            poisoned_values = getattr(poisoned_run, field)[key]
            assert list(values[seen]) == list(poisoned_values[seen]), (field, key)
    # The fast loop acted before the cut, so the comparison covers its raises.
    combined = runs[0].runs[COMBINED].series.replica_targets["llm-m-large"]
    assert (clean_run.replica_targets["llm-m-large"][seen] > combined[seen]).any()
