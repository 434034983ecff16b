"""Forecast-miss state machine: pure, with time passed in."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from scaler.misses import MissRule, MissState, step
from scaler.signals.settings import ForecastMissSettings

T0 = pd.Timestamp("2026-03-02T08:00:00Z")
RULE = MissRule(levels=(0.9, 0.95, 0.99), miss_after_seconds=600, recovery_seconds=1800)


def at(seconds: float) -> pd.Timestamp:
    return T0 + pd.Timedelta(seconds=seconds)


def run(observations: list[tuple[float, float | None]], state: MissState | None = None):
    """Step through (seconds, observed) pairs against an upper quantile of 100."""
    state = state or MissState()
    results = []
    for seconds, observed in observations:
        result = step(state, RULE, at(seconds), observed, 100.0)
        results.append(result)
        state = result.state
    return results


def test_miss_recorded_after_configured_time() -> None:
    results = run([(s, 150.0) for s in range(0, 601, 60)])

    assert [r.missed for r in results[:-1]] == [False] * 10
    last = results[-1]
    assert last.missed
    assert last.refit
    assert last.level == 0.95
    assert last.state.misses == 1


def test_short_excursion_records_no_miss() -> None:
    above = [(s, 150.0) for s in range(0, 541, 60)]
    results = run([*above, (600, 90.0), (660, 150.0)])

    assert not any(r.missed for r in results)
    assert results[-1].level == 0.9


def test_level_widens_one_step_per_miss_and_stops_at_widest() -> None:
    results = run([(s, 150.0) for s in range(0, 3001, 60)])

    levels = [r.level for r in results if r.missed]
    assert levels == [0.95, 0.99, 0.99, 0.99, 0.99]
    assert results[-1].state.misses == 5


def test_level_returns_after_accuracy_recovers() -> None:
    widened = run([(s, 150.0) for s in range(0, 1201, 60)])[-1].state
    assert RULE.levels[widened.step] == 0.99

    results = run([(1200 + s, 80.0) for s in range(60, 3661, 60)], widened)

    changes = [(r.level, r.state.within_since) for r in results if r.level_changed]
    assert [level for level, _ in changes] == [0.95, 0.9]
    assert results[-1].level == 0.9
    narrowed_at = next(r for r in results if r.level_changed)
    assert narrowed_at.state.within_since == at(1200 + 60 + 1800)


def test_missing_observation_restarts_timers() -> None:
    results = run([(0, 150.0), (300, None), (360, 150.0), (900, 150.0), (960, 150.0)])

    assert [r.missed for r in results] == [False, False, False, False, True]
    assert results[1].state.above_since is None


@pytest.mark.parametrize(
    ("observed", "upper"),
    [
        pytest.param(None, 100.0, id="no-demand"),
        pytest.param(150.0, None, id="no-forecast"),
        pytest.param(math.nan, 100.0, id="nan-demand"),
        pytest.param(150.0, math.inf, id="inf-forecast"),
    ],
)
def test_unusable_observation_changes_no_level(observed: float | None, upper: float | None) -> None:
    widened = MissState(step=1, above_since=at(0), within_since=None, misses=1)

    result = step(widened, RULE, at(60), observed, upper)

    assert result.level == 0.95
    assert not result.missed
    assert not result.level_changed


def test_rule_defaults_to_forecast_levels_above_planning() -> None:
    rule = MissRule.from_settings(ForecastMissSettings(), 0.9, [0.5, 0.9, 0.95, 0.99])

    assert rule.levels == (0.9, 0.95, 0.99)


observations = st.lists(
    st.tuples(
        st.integers(min_value=1, max_value=900),
        st.one_of(st.none(), st.floats(min_value=0, max_value=300)),
    ),
    max_size=60,
)


@given(observations)
def test_level_moves_one_step_at_most(steps: list[tuple[int, float | None]]) -> None:
    state = MissState()
    seconds = 0
    for gap, observed in steps:
        seconds += gap
        before = state.step
        result = step(state, RULE, at(seconds), observed, 100.0)
        state = result.state
        assert abs(state.step - before) <= 1
        assert result.level == RULE.levels[state.step]
        assert 0 <= state.step < len(RULE.levels)
        if state.step > before:
            assert result.missed
        if state.step < before:
            assert observed is not None and observed <= 100.0


@given(observations)
def test_misses_never_decrease(steps: list[tuple[int, float | None]]) -> None:
    state = MissState()
    seconds = 0
    for gap, observed in steps:
        seconds += gap
        result = step(state, RULE, at(seconds), observed, 100.0)
        assert result.state.misses >= state.misses
        state = result.state
