"""Forecast-miss handling: a pure state machine per workload, with time passed in.

Each fast cycle hands the newest live demand and the forecast's upper quantile at the same time
to ``step``:

- Demand above the upper quantile without a break for ``miss_after_seconds`` records a miss,
  requests an early refit of the workload, and widens its planning level by one step (for
  example 0.9 to 0.95, then 0.99). The timer then starts again, so each further step needs
  another full period above the quantile.
- Demand at or below the upper quantile without a break for ``recovery_seconds`` narrows the
  planning level by one step, back towards the configured ``forecast.planning_level``.
- A cycle without a usable observation (source down, no forecast) restarts both timers and
  changes nothing else, because missing data is no evidence either way.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import pandas as pd

from scaler.signals.settings import ForecastMissSettings

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class MissRule:
    """Planning levels (the configured one first) and the two durations of the machine."""

    levels: tuple[float, ...]
    miss_after_seconds: int
    recovery_seconds: int
    refit: bool = True

    @classmethod
    def from_settings(
        cls, settings: ForecastMissSettings, planning_level: float, forecast_levels: Sequence[float]
    ) -> MissRule:
        """Build the rule; unset ``widened_levels`` means every forecast level above planning."""
        widened = settings.widened_levels
        if widened is None:
            widened = [level for level in forecast_levels if level > planning_level]
        levels = (planning_level, *sorted(level for level in widened if level > planning_level))
        return cls(levels, settings.miss_after_seconds, settings.recovery_seconds, settings.refit)


@dataclass(frozen=True)
class MissState:
    """Miss-handling state of one workload: its level step, running timers and misses so far."""

    step: int = 0
    above_since: pd.Timestamp | None = None
    within_since: pd.Timestamp | None = None
    misses: int = 0


@dataclass(frozen=True)
class MissStep:
    """The state after one observation, and the actions it requests from the caller."""

    state: MissState
    level: float
    missed: bool = False
    refit: bool = False
    level_changed: bool = False


def step(
    state: MissState,
    rule: MissRule,
    now: pd.Timestamp,
    observed: float | None,
    upper: float | None,
) -> MissStep:
    """Advance ``state`` by one observation at ``now`` of demand against the upper quantile."""
    if observed is None or upper is None or not math.isfinite(observed + upper):
        restarted = replace(state, above_since=None, within_since=None)
        return MissStep(restarted, rule.levels[state.step])
    if observed > upper:
        return _above(state, rule, now)
    return _within(state, rule, now)


def _above(state: MissState, rule: MissRule, now: pd.Timestamp) -> MissStep:
    since = state.above_since or now
    if (now - since).total_seconds() < rule.miss_after_seconds:
        kept = replace(state, above_since=since, within_since=None)
        return MissStep(kept, rule.levels[state.step])
    wider = min(state.step + 1, len(rule.levels) - 1)
    missed = MissState(step=wider, above_since=now, within_since=None, misses=state.misses + 1)
    return MissStep(
        missed,
        rule.levels[wider],
        missed=True,
        refit=rule.refit,
        level_changed=wider != state.step,
    )


def _within(state: MissState, rule: MissRule, now: pd.Timestamp) -> MissStep:
    if state.step == 0:
        return MissStep(replace(state, above_since=None, within_since=None), rule.levels[0])
    since = state.within_since or now
    if (now - since).total_seconds() < rule.recovery_seconds:
        kept = replace(state, above_since=None, within_since=since)
        return MissStep(kept, rule.levels[state.step])
    narrower = state.step - 1
    recovered = replace(state, step=narrower, above_since=None, within_since=now)
    return MissStep(recovered, rule.levels[narrower], level_changed=True)
