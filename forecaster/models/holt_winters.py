"""Holt-Winters: additive level, damped (or no) trend and additive season.

Fitting has three parts:

1. statsmodels' ``ExponentialSmoothing`` computes the initial level, trend and seasonal
   states of the gap-filled series (gaps filled from earlier seasons, see
   ``forecaster.impute``) with its heuristic initialisation.
2. With ``estimation="multistep"`` (the default) the smoothing weights are chosen from a grid
   by the mean squared error of forecasts up to one season ahead (see
   ``forecaster.models.multistep``). ``"likelihood"`` lets statsmodels estimate them by
   maximum likelihood instead, which favours one-step accuracy.
3. The state is run through ``forecaster.models.smoothing`` on the series with its gaps left
   as NaN, so ``fit``, ``update`` and ``refilter`` share one filter. ``update`` never
   re-estimates: it feeds the new steps with the weights fixed.

Every configured season that the history contains twice is a candidate when
``season_choice="best"`` (the default). The one with the lower multi-step error wins, so a
series with a weekday/weekend pattern can get a weekly season. ``"shortest"`` always uses the
shortest period (daily by default). Fitting raises ``InsufficientHistoryError`` without two
full seasons.

Costs on 1,344 steps (statsmodels 0.15, 2 shared cores, measured by hand): the heuristic
initial states take about 7 ms per season and the multi-step grid about 30 ms. A likelihood
fit without statsmodels' brute-force search for starting values takes about 15 ms on an idle
machine, against 150 ms with it and 60-230 ms with ``initialization="estimated"``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd
from statsmodels.tsa.holtwinters import ExponentialSmoothing

from forecaster.errors import ConfigError, InsufficientHistoryError, MissingDataError
from forecaster.impute import impute
from forecaster.models.base import ModelContext
from forecaster.models.multistep import candidate_grid, multistep_errors
from forecaster.models.smoothing import SmoothingParams, SmoothingState, forecast, run_filter

logger = logging.getLogger(__name__)

Trend = Literal["damped", "none"]
Initialization = Literal["heuristic", "estimated"]
Estimation = Literal["multistep", "likelihood"]
SeasonChoice = Literal["best", "shortest"]

# Weights statsmodels filters with when only its initial states are wanted; any valid values do.
PLACEHOLDER_WEIGHTS: dict[bool, dict[str, float]] = {
    True: {
        "smoothing_level": 0.1,
        "smoothing_trend": 0.01,
        "smoothing_seasonal": 0.1,
        "damping_trend": 0.9,
    },
    False: {"smoothing_level": 0.1, "smoothing_seasonal": 0.1},
}


@dataclass(frozen=True)
class FittedHoltWinters:
    """Estimated weights, the initial state of the fit, and the state after the last step."""

    params: SmoothingParams
    initial: SmoothingState
    state: SmoothingState
    notes: tuple[str, ...] = ()

    def update(self, y_new: pd.Series) -> FittedHoltWinters:
        state, _ = run_filter(self.params, self.state, y_new.to_numpy(dtype=float))
        return replace(self, state=state)

    def predict(self, h: int) -> np.ndarray:
        return forecast(self.params, self.state, h)

    def refilter(self, y: pd.Series) -> FittedHoltWinters:
        state, _ = run_filter(self.params, self.initial, y.to_numpy(dtype=float))
        return replace(self, state=state)


@dataclass(frozen=True)
class _Candidate:
    params: SmoothingParams
    initial: SmoothingState
    score: float


class HoltWinters:
    """Additive Holt-Winters; see the module docstring."""

    name: ClassVar[str] = "holt_winters"

    def __init__(
        self,
        trend: Trend = "damped",
        initialization: Initialization = "heuristic",
        use_brute: bool = False,
        estimation: Estimation = "multistep",
        season_choice: SeasonChoice = "best",
    ) -> None:
        if estimation == "multistep" and initialization != "heuristic":
            raise ConfigError(
                "model_options.holt_winters.initialization",
                initialization,
                "only 'heuristic' works with estimation='multistep'; "
                "use estimation='likelihood' for 'estimated'",
            )
        self.trend = trend
        self.initialization = initialization
        self.use_brute = use_brute
        self.estimation = estimation
        self.season_choice = season_choice

    def fit(self, y: pd.Series, context: ModelContext) -> FittedHoltWinters:
        values = y.to_numpy(dtype=float)
        seasons = _fitting_seasons(len(values), context)
        if not np.isfinite(values).any():
            raise MissingDataError("Holt-Winters needs at least one observed value")
        if self.season_choice == "shortest":
            seasons = seasons[:1]

        # Initial states come from the first cycles only, and every candidate is scored on the
        # same forecast origins after all of those cycles, so no score uses its own start-up
        # data. A history too short for that is scored from its middle on.
        spans = {m: _initial_span(len(values), m) for m in seasons}
        first_origin = max(spans.values())
        if first_origin > len(values) - 2:
            first_origin = len(values) // 2
        h = seasons[0]
        candidates = [self._fit_season(values, m, spans[m], h, first_origin) for m in seasons]
        best = min(candidates, key=lambda candidate: candidate.score)

        state, _ = run_filter(best.params, best.initial, values)
        params = best.params
        logger.debug(
            "Holt-Winters fitted on %d steps: season=%d alpha=%.3f beta=%.3f gamma=%.3f phi=%.3f",
            len(values),
            params.season_length,
            params.alpha,
            params.beta,
            params.gamma,
            params.phi,
        )
        return FittedHoltWinters(params, best.initial, state)

    def _fit_season(
        self, values: np.ndarray, season_length: int, span: int, h: int, first_origin: int
    ) -> _Candidate:
        damped = self.trend == "damped"
        start_up = values if self.estimation == "likelihood" else values[:span]
        model = ExponentialSmoothing(
            impute(start_up, season_length),
            trend="add" if damped else None,
            damped_trend=damped,
            seasonal="add",
            seasonal_periods=season_length,
            initialization_method=self.initialization,
        )
        if self.estimation == "multistep":
            # Only the initial states are needed from statsmodels: the weights come from the
            # grid, so its likelihood optimiser (most of its cost) is skipped.
            result = model.fit(optimized=False, **PLACEHOLDER_WEIGHTS[damped])
            start, initial = _smoothing_from(result.params, damped, season_length)
            grid = candidate_grid(damped)
        else:
            result = model.fit(use_brute=self.use_brute)
            start, initial = _smoothing_from(result.params, damped, season_length)
            grid = np.asarray([[start.alpha, start.beta, start.gamma, start.phi]])

        # Scored even for a single row, because the score decides between seasons.
        errors = multistep_errors(values, initial, grid, damped, season_length, h, first_origin)
        row = grid[int(np.argmin(errors))]
        params = replace(start, alpha=row[0], beta=row[1], gamma=row[2], phi=row[3])
        return _Candidate(params, initial, float(np.min(errors)))


def _fitting_seasons(n: int, context: ModelContext) -> list[int]:
    """Return the configured seasons (ascending) that fit twice; raise when none does."""
    seasons = sorted(m for m in context.season_lengths if m > 1)
    if not seasons:
        raise InsufficientHistoryError(
            "Holt-Winters needs a seasonal period of at least 2 model steps that the history "
            "contains twice; no configured season is left (none is configured, or each was "
            "dropped because the history is too short or the period spans too few steps)"
        )
    fitting = [m for m in seasons if n >= _needed_steps(m)]
    if not fitting:
        shortest = seasons[0]
        raise InsufficientHistoryError(
            f"Holt-Winters with a season of {shortest} steps needs {_needed_steps(shortest)} "
            f"steps (two full seasons); history has {n}"
        )
    return fitting


def _initial_span(n: int, season_length: int) -> int:
    """Return how many leading steps set the initial states: 2 to 5 cycles, leaving 2 to score."""
    cycles = min(5, max(2, n // season_length - 2))
    return min(n, cycles * season_length)


def _needed_steps(season_length: int) -> int:
    # statsmodels' heuristic initialisation needs two full seasons and 10 adjusted points.
    return max(2 * season_length, 10 + 2 * (season_length // 2))


def _smoothing_from(
    fitted: dict[str, Any], damped: bool, season_length: int
) -> tuple[SmoothingParams, SmoothingState]:
    """Translate statsmodels' fitted parameters into the shared filter's terms."""
    params = SmoothingParams(
        alpha=float(fitted["smoothing_level"]),
        beta=float(fitted["smoothing_trend"]) if damped else 0.0,
        gamma=float(fitted["smoothing_seasonal"]),
        phi=float(fitted["damping_trend"]) if damped else 1.0,
        has_trend=damped,
        season_length=season_length,
    )
    initial = SmoothingState(
        level=float(fitted["initial_level"]),
        trend=float(fitted["initial_trend"]) if damped else 0.0,
        season=tuple(np.asarray(fitted["initial_seasons"], dtype=float).tolist()),
        n_seen=0,
    )
    return params, initial
