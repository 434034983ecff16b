"""The backtest runner: spans, results, progress, the oracle as a lower bound, no leakage."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forecaster.errors import ConfigError, InsufficientHistoryError
from forecaster.history import History
from scaler.backtest.policies import DEFAULT_POLICIES
from scaler.backtest.runner import run_backtest
from scaler.backtest.trace import TraceView, build_trace
from scaler.core.policy import assess_history
from tests.scaler.planning_fixtures import (
    StandInEngine,
    default_settings,
    history_from,
    servegen_history,
    small_settings,
)

CAUSAL_POLICIES = [name for name in DEFAULT_POLICIES if name != "oracle"]


def _servegen_settings(warmup_days: float, duration_days: float):
    return default_settings(
        backtest={
            "warmup_seconds": int(warmup_days * 86400),
            "duration_seconds": int(duration_days * 86400),
        }
    )


def test_result_spans_and_series() -> None:
    config = _servegen_settings(2, 1)
    engine = StandInEngine(config.forecast)
    result = run_backtest(config, {"llm-m-large": servegen_history(4)}, engine=engine)
    assert result.start == pd.Timestamp("1970-01-03", tz="UTC")
    assert result.minutes == 1440
    assert len(result.index) == 1440
    assert list(result.runs) == list(DEFAULT_POLICIES)
    assert list(result.summary().index) == list(DEFAULT_POLICIES)
    assert len(result.forecasts) == 24  # one replan an hour
    assert result.demand_gpus["llm-m-large"].dtype == np.float32
    for run in result.runs.values():
        assert len(run.series.billed_nodes["cloud-h100"]) == 1440
        assert len(run.series.serving_gpus["llm-m-large"]) == 1440
        assert set(run.metrics.pools) == {"onprem-h100", "cloud-h100"}
        assert len(run.metrics.window_shortfall_gpu_minutes) == len(result.peak_windows)
    assert result.peak_windows
    assert sum(result.runs["peakcast"].rule_counts.values()) == 3 * 1440


def test_progress_reaches_total() -> None:
    config = small_settings(backtest={"warmup_seconds": 86400, "duration_seconds": 3 * 86400})
    calls: list[tuple[int, int]] = []
    history = history_from([100.0] * (5 * 144))
    run_backtest(
        config, {"llm": history}, ["reactive", "static"], progress=lambda d, t: calls.append((d, t))
    )
    done = [d for d, _ in calls]
    assert done == sorted(done)
    assert calls[-1] == (2 * 3 * 1440, 2 * 3 * 1440)


def test_short_horizon_rejected() -> None:
    config = small_settings(
        forecast={"horizon_seconds": 3600}, backtest={"replan_interval_seconds": 3600}
    )
    with pytest.raises(ConfigError, match=r"forecast\.horizon_seconds"):
        run_backtest(config, {"llm": history_from([1.0] * 400)}, ["reactive"])


def test_unknown_policy_rejected() -> None:
    config = small_settings()
    with pytest.raises(KeyError, match="allowed: holt_winters_replicas"):
        run_backtest(config, {"llm": history_from([1.0] * 400)}, ["hpa"])


def test_trace_too_short_for_warmup_rejected() -> None:
    config = small_settings(backtest={"warmup_seconds": 7 * 86400})
    with pytest.raises(InsufficientHistoryError, match="nothing to simulate"):
        run_backtest(config, {"llm": history_from([1.0] * 400)}, ["reactive"])


def test_oracle_lower_bound_on_real_trace() -> None:
    config = _servegen_settings(2, 2)
    engine = StandInEngine(config.forecast)
    result = run_backtest(config, {"llm-m-large": servegen_history(4)}, engine=engine)
    oracle = result.runs["oracle"].metrics
    assert oracle.shortfall_gpu_minutes == 0.0
    for name, run in result.runs.items():
        assert oracle.shortfall_gpu_minutes <= run.metrics.shortfall_gpu_minutes, name


@given(
    levels=st.lists(st.floats(0, 2000), min_size=4, max_size=12),
    provisioning_minutes=st.integers(0, 20),
    start_minutes=st.integers(0, 10),
    gpus_per_replica=st.sampled_from([1, 2, 3]),
)
@settings(max_examples=15, deadline=None)
def test_oracle_never_worse_on_synthetic_traces(
    levels: list[float], provisioning_minutes: int, start_minutes: int, gpus_per_replica: int
) -> None:
    config = small_settings(
        static_nodes=1,
        burst_max=40,
        gpus_per_replica=gpus_per_replica,
        provisioning_seconds=provisioning_minutes * 60,
        start_seconds=start_minutes * 60,
        backtest={"warmup_seconds": 86400, "duration_seconds": 6 * 3600},
    )
    # A day of warm-up, then the drawn levels for 30 minutes each.
    minutes = [levels[0]] * 1440 + [level for level in levels for _ in range(30)]
    minutes += [levels[-1]] * (1440 + 360 - len(minutes))
    history = history_from(minutes, step="1min")
    result = run_backtest(config, {"llm": history}, engine=StandInEngine(config.forecast))
    oracle = result.runs["oracle"].metrics.shortfall_gpu_minutes
    assert oracle == 0.0
    for run in result.runs.values():
        assert oracle <= run.metrics.shortfall_gpu_minutes


def _poisoned(history: History, after: pd.Timestamp) -> History:
    values = history.values.copy()
    values[values.index > after] = values[values.index > after] * 50 + 1000
    return History(history.name, values, history.step)


@pytest.mark.parametrize(
    "cut_minutes", [pytest.param(600, id="mid-day"), pytest.param(1000, id="evening")]
)
def test_poisoned_future_does_not_change_decisions(cut_minutes: int) -> None:
    config = _servegen_settings(2, 1)
    clean = servegen_history(3.5)
    cut = pd.Timestamp("1970-01-03", tz="UTC") + pd.Timedelta(minutes=cut_minutes)
    poisoned = _poisoned(clean, cut)
    results = []
    engines = []
    for history in (clean, poisoned):
        engine = StandInEngine(config.forecast)
        engines.append(engine)
        results.append(
            run_backtest(config, {"llm-m-large": history}, CAUSAL_POLICIES, engine=engine)
        )
    for name in CAUSAL_POLICIES:
        before = [results[0].runs[name].series, results[1].runs[name].series]
        for field in ("replica_targets", "node_targets"):
            first = getattr(before[0], field)
            second = getattr(before[1], field)
            for key in first:
                assert list(first[key][: cut_minutes + 1]) == list(
                    second[key][: cut_minutes + 1]
                ), (name, field, key)
    # At each hourly replan the engine saw no sample whose step ends after that minute.
    ends = engines[0].history_ends
    assert len(ends) == 24
    for k, end in enumerate(ends):
        replan = results[0].start + pd.Timedelta(hours=k)
        assert end + clean.step <= replan + pd.Timedelta(minutes=1), k


def test_data_status_paths_agree() -> None:
    config = small_settings(
        forecast={"history_seconds": 86400},
        backtest={"warmup_seconds": 3600, "duration_seconds": 86400},
    )
    values = np.full(3 * 144, 100.0)
    values[150:190] = np.nan
    history = history_from(values)
    trace = build_trace(config, {"llm": history})
    view = TraceView(trace, config)
    for minute in range(0, trace.minutes, 37):
        observation = view.at(minute)
        fast = observation.data_status("llm")
        slow = assess_history(observation.history("llm"), observation.now, config)
        assert fast.usable == slow.usable, minute
        assert fast.coverage == pytest.approx(slow.coverage), minute
        assert fast.last_observed == slow.last_observed, minute


def test_trace_expands_steps_to_minutes() -> None:
    config = small_settings(backtest={"warmup_seconds": 600})
    history = history_from([1.0, np.nan, 3.0])
    trace = build_trace(config, {"llm": history})
    demand = trace.demand["llm"]
    assert trace.minutes == 30
    assert list(demand[:10]) == [1.0] * 10
    assert np.isnan(demand[10:20]).all()
    assert list(demand[20:]) == [3.0] * 10


def test_trace_averages_sub_minute_samples() -> None:
    config = small_settings(backtest={"warmup_seconds": 60})
    history = history_from([1.0, 3.0, np.nan, 5.0, 7.0, 9.0, 11.0, 13.0], step="30s")
    trace = build_trace(config, {"llm": history})
    assert list(trace.demand["llm"]) == [2.0, 5.0, 8.0, 12.0]
