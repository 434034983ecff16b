"""Forecast misses over a backtest: the live state machine stepped once per simulated minute."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from forecaster.forecast import Forecast
from forecaster.history import History
from scaler.backtest.misses import find_misses, miss_rule, misses_in_series
from scaler.backtest.runner import run_backtest
from scaler.backtest.trace import to_minutes
from scaler.misses import MissState, step
from scaler.settings import Settings
from scaler.signals.settings import (
    DemandAboveForecastSignalSettings,
    ForecastMissSettings,
    WorkloadSignalSettings,
)
from tests.scaler.planning_fixtures import (
    StandInEngine,
    default_settings,
    servegen_history,
    small_settings,
)

START = pd.Timestamp("2024-01-01", tz="UTC")
STEP = pd.Timedelta(minutes=10)
MINUTE = pd.Timedelta(minutes=1)


def at(minute: int) -> pd.Timestamp:
    return START + minute * MINUTE


def flat_forecast(p90: float, p95: float, cutoff: pd.Timestamp = START - STEP) -> Forecast:
    """A one-day forecast of workload 'llm' with constant quantiles; row 0 starts at START."""
    h = 144
    point = np.full(h, p90 / 2)
    quantiles = {0.5: point, 0.9: np.full(h, p90), 0.95: np.full(h, p95)}
    return Forecast("llm", cutoff, STEP, point, quantiles, "flat")


def demand_with_surge(minutes: int, surge: range, base: float = 50.0, high: float = 150.0):
    demand = np.full(minutes, base)
    demand[surge.start : surge.stop] = high
    return demand


def with_signal(settings: Settings, signal: DemandAboveForecastSignalSettings) -> Settings:
    workload = settings.workloads[0].model_copy(
        update={"signals": WorkloadSignalSettings(demand_above_forecast=signal)}
    )
    return settings.model_copy(update={"workloads": [workload]})


def test_surge_longer_than_miss_after_recorded() -> None:
    settings = small_settings()
    demand = demand_with_surge(240, range(60, 80))

    replay = find_misses(
        settings, START, {"llm": demand}, [{"llm": flat_forecast(80, 100)}], [START]
    )

    [miss] = replay.misses["llm"]
    assert miss.workload == "llm"
    assert miss.above_since == at(60)
    assert miss.at == at(75)  # 900 s after the surge began
    assert miss.level == 0.95  # widened one step from planning_level 0.9
    assert miss.demand == 150.0
    assert miss.upper == 100.0
    assert replay.minutes_above["llm"] == 20


def test_surge_shorter_than_miss_after_not_recorded() -> None:
    settings = small_settings()
    demand = demand_with_surge(240, range(60, 75))  # 15 minutes: the last is 14 min after

    replay = find_misses(
        settings, START, {"llm": demand}, [{"llm": flat_forecast(80, 100)}], [START]
    )

    assert replay.misses["llm"] == ()
    assert replay.minutes_above["llm"] == 15


def test_missing_demand_restarts_timer() -> None:
    settings = small_settings()
    demand = demand_with_surge(240, range(60, 90))
    demand[70] = np.nan  # ten minutes above, one missing, then 19 more above

    replay = find_misses(
        settings, START, {"llm": demand}, [{"llm": flat_forecast(80, 100)}], [START]
    )

    [miss] = replay.misses["llm"]
    assert miss.above_since == at(71)
    assert miss.at == at(86)
    assert replay.minutes_above["llm"] == 29


def test_missing_demand_alone_records_nothing() -> None:
    settings = small_settings()
    demand = np.full(240, np.nan)

    replay = find_misses(
        settings, START, {"llm": demand}, [{"llm": flat_forecast(80, 100)}], [START]
    )

    assert replay.misses["llm"] == ()
    assert replay.minutes_above["llm"] == 0


def test_newest_forecast_at_each_minute_used() -> None:
    settings = small_settings()
    demand = np.full(240, 150.0)
    loose = {"llm": flat_forecast(150, 200)}
    tight = {"llm": flat_forecast(80, 100)}

    replay = find_misses(settings, START, {"llm": demand}, [loose, tight], [at(30), at(120)])

    misses = replay.misses["llm"]
    # Nothing before the tight forecast is made; the timer starts at its first minute.
    assert misses[0].above_since == at(120)
    assert misses[0].at == at(135)
    assert [miss.at for miss in misses] == [at(m) for m in range(135, 240, 15)]
    assert all(miss.upper == 100.0 for miss in misses)
    assert replay.minutes_above["llm"] == 120


def test_minutes_before_first_forecast_are_no_observation() -> None:
    settings = small_settings()
    demand = demand_with_surge(240, range(0, 40))

    replay = find_misses(
        settings, START, {"llm": demand}, [{"llm": flat_forecast(80, 100)}], [at(30)]
    )

    assert replay.misses["llm"] == ()  # above from minute 30 to 39 only, with a forecast
    assert replay.minutes_above["llm"] == 10


def test_minutes_past_horizon_are_no_observation() -> None:
    settings = small_settings()
    demand = np.full(1500, 150.0)  # the one-day forecast ends at minute 1440

    replay = find_misses(
        settings, START, {"llm": demand}, [{"llm": flat_forecast(80, 100)}], [START]
    )

    assert replay.misses["llm"][-1].at == at(1425)
    assert replay.minutes_above["llm"] == 1440


def test_default_compares_highest_level() -> None:
    settings = small_settings()
    demand = demand_with_surge(240, range(60, 120))  # 150: above P90 (100), below P95 (200)

    replay = find_misses(
        settings, START, {"llm": demand}, [{"llm": flat_forecast(100, 200)}], [START]
    )

    assert replay.misses["llm"] == ()
    assert replay.minutes_above["llm"] == 0


def test_signal_level_and_rule_used() -> None:
    signal = DemandAboveForecastSignalSettings(
        level=0.9, misses=ForecastMissSettings(miss_after_seconds=300)
    )
    settings = with_signal(small_settings(), signal)
    demand = demand_with_surge(240, range(60, 120))

    replay = find_misses(
        settings, START, {"llm": demand}, [{"llm": flat_forecast(100, 200)}], [START]
    )

    misses = replay.misses["llm"]
    assert misses[0].above_since == at(60)
    assert misses[0].at == at(65)
    assert misses[0].upper == 100.0
    assert len(misses) == 11  # every 5 minutes from 65 to 115
    assert replay.minutes_above["llm"] == 60


def test_forecast_times_must_match_forecasts() -> None:
    settings = small_settings()
    with pytest.raises(ValueError, match="1 forecast times"):
        find_misses(
            settings,
            START,
            {"llm": np.full(10, 1.0)},
            [{"llm": flat_forecast(80, 100)}] * 2,
            [START],
        )


def test_forecast_times_must_increase() -> None:
    settings = small_settings()
    with pytest.raises(ValueError, match="increasing order"):
        find_misses(
            settings,
            START,
            {"llm": np.full(10, 1.0)},
            [{"llm": flat_forecast(80, 100)}] * 2,
            [at(5), at(0)],
        )


# --- through run_backtest, on the bundled ServeGen trace -------------------------------------

SURGE_FROM = pd.Timestamp("1970-01-03 06:10", tz="UTC")
SURGE_SAMPLES = 4  # 06:10 to 06:50, four 10-minute samples


def surged_servegen(factor: float = 10.0) -> History:
    history = servegen_history(4)
    values = history.values.copy()
    position = values.index.get_loc(SURGE_FROM)
    values.iloc[position : position + SURGE_SAMPLES] *= factor
    return History(history.name, values, history.step)


@pytest.fixture(scope="module")
def one_day() -> Settings:
    return default_settings(backtest={"warmup_seconds": 2 * 86400, "duration_seconds": 86400})


def test_backtest_records_injected_surge(one_day: Settings) -> None:
    history = surged_servegen()
    engine = StandInEngine(one_day.forecast)

    result = run_backtest(one_day, {"llm-m-large": history}, ["peakcast"], engine=engine)

    misses = result.misses["llm-m-large"]
    assert [miss.at for miss in misses] == [
        SURGE_FROM + pd.Timedelta(minutes=15),
        SURGE_FROM + pd.Timedelta(minutes=30),
    ]
    assert misses[0].above_since == SURGE_FROM
    assert misses[1].above_since == misses[0].at
    # Demand is compared in the metric unit (requests/s), not in GPUs.
    sample = history.values[SURGE_FROM + pd.Timedelta(minutes=10)]
    assert misses[0].demand == pytest.approx(sample)
    assert misses[0].upper < misses[0].demand
    assert result.minutes_above_upper["llm-m-large"] == 10 * SURGE_SAMPLES


def test_backtest_without_surge_has_no_misses(one_day: Settings) -> None:
    engine = StandInEngine(one_day.forecast)

    result = run_backtest(
        one_day, {"llm-m-large": servegen_history(4)}, ["peakcast"], engine=engine
    )

    assert result.misses == {"llm-m-large": ()}
    assert result.minutes_above_upper == {"llm-m-large": 0}


def test_backtest_without_peakcast_has_empty_misses(one_day: Settings) -> None:
    result = run_backtest(one_day, {"llm-m-large": surged_servegen()}, ["reactive"])

    assert result.misses == {}
    assert result.minutes_above_upper == {}


def test_skipping_resting_minutes_matches_stepping_each() -> None:
    # Real per-minute demand against a seasonal-naive upper quantile (the day before, plus
    # 10 %) with random gaps, compared with a plain loop that steps every minute.
    rule = miss_rule(small_settings(), "llm")
    rule = replace(rule, levels=(0.9, 0.95, 0.99), miss_after_seconds=600, recovery_seconds=1200)
    demand = to_minutes(servegen_history(4), pd.Timestamp("1970-01-01", tz="UTC"), 4 * 1440)
    upper = np.roll(demand, 1440) * 1.1
    upper[:1440] = np.nan
    upper[np.random.default_rng(7).random(len(demand)) < 0.02] = np.nan

    found = misses_in_series("llm", rule, START, demand, upper)

    state = MissState()
    expected = []
    for minute in range(len(demand)):
        result = step(state, rule, at(minute), float(demand[minute]), float(upper[minute]))
        if result.missed:
            expected.append((state.above_since, at(minute), result.level))
        state = result.state
    assert {level for _, _, level in expected} == {0.95, 0.99}  # widened and narrowed again
    assert [(miss.above_since, miss.at, miss.level) for miss in found] == expected
