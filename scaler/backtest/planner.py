"""peakcast's planning cycle replayed on a trace: forecast schedule, requirements, policy.

The backtest's peakcast policy and ``scaler.replay.plan_at`` both drive this class, so a dry-run
plan at a timestamp and the backtest make the same decisions from the same data.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import replace

import pandas as pd

from forecaster.errors import DataError
from forecaster.forecast import Forecast
from forecaster.history import History
from scaler.backtest.forecasting import ForecastEngine, ForecastSchedule
from scaler.core.capacity import Fleet
from scaler.core.decision import CycleDecision, DataStatus
from scaler.core.policy import Floors, PolicyState, decide
from scaler.core.requirements import Requirements, requirements_from_forecasts
from scaler.settings import Settings

logger = logging.getLogger(__name__)


class PeakcastPlanner:
    """A replayed controller: forecasts on replan, decides floors each cycle, keeps the state.

    Floors start unknown. After each cycle they are what the cycle decided, as if every
    decision had been applied. With ``keep_forecasts`` every replan's forecasts are kept in
    ``forecasts``, and the time of that replan at the same position in ``forecast_times``.
    """

    def __init__(
        self,
        settings: Settings,
        fleet: Fleet,
        engine: ForecastEngine,
        *,
        log_level: int = logging.DEBUG,
        keep_forecasts: bool = False,
    ) -> None:
        self._settings = settings
        self._fleet = fleet
        self._schedule = ForecastSchedule(settings, engine)
        self.log_level = log_level
        self._keep_forecasts = keep_forecasts
        self.requirements: Requirements | None = None
        self.forecast_problem: str | None = "no forecast has been made yet"
        self.floors = Floors()
        self.state = PolicyState()
        self.forecasts: list[Mapping[str, Forecast]] = []
        self.forecast_times: list[pd.Timestamp] = []
        self.rule_counts: Counter[str] = Counter()

    def replan(self, now: pd.Timestamp, histories: Mapping[str, History]) -> None:
        """Forecast every workload from ``histories`` (cut at ``now``) and rebuild requirements.

        A ``DataError`` from the engine leaves no requirements, so the next cycles hold.
        """
        try:
            forecasts = self._schedule.predict(now, histories)
        except DataError as error:
            self.requirements = None
            self.forecast_problem = f"the forecast failed: {error}"
            logger.log(
                self.log_level, "replan at %s failed, so floors hold: %s", now.isoformat(), error
            )
            return
        self.requirements = requirements_from_forecasts(self._settings, self._fleet, forecasts)
        self.forecast_problem = None
        if self._keep_forecasts:
            self.forecasts.append(forecasts)
            self.forecast_times.append(now)

    def cycle(self, now: pd.Timestamp, data: Sequence[DataStatus]) -> CycleDecision:
        """Decide every floor at ``now`` and keep the decided floors as the current ones."""
        if self.forecast_problem is not None:
            data = [
                replace(status, usable=False, reason=self.forecast_problem)
                if status.usable
                else status
                for status in data
            ]
        result = decide(
            now,
            self.requirements,
            self.floors,
            self.state,
            data,
            self._settings,
            log_level=self.log_level,
        )
        self.state = result.state
        self.floors = Floors.from_decision(result.decision)
        self.rule_counts.update(floor.rule for floor in result.decision.all_floors())
        return result.decision
