"""Holt-Winters: additive level, damped (or no) trend and additive season.

Parameters and initial states are estimated by statsmodels' ``ExponentialSmoothing`` on the
gap-filled series (gaps filled from earlier seasons, see ``forecaster.impute``). The state is
then run through ``forecaster.models.smoothing`` on the series with its gaps left as NaN, so
``fit``, ``update`` and ``refilter`` all share one filter. ``update`` never re-estimates: it
feeds the new steps with the parameters fixed.

The season is the shortest period in ``ModelContext.season_lengths`` (the daily one by
default). Fitting needs two full seasons and raises ``InsufficientHistoryError`` otherwise.
The default is ``initialization_method="heuristic"`` without statsmodels' brute-force search
for starting values. On 1,440 steps with a season of 48 it fits in about 15 ms, against
150 ms with the brute-force search and 60-230 ms for ``"estimated"`` (statsmodels 0.15,
2 shared cores, measured by hand on the bundled traces and a synthetic series). On those
series it reached the same sum of squared errors as the brute-force search.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd
from statsmodels.tsa.holtwinters import ExponentialSmoothing

from forecaster.errors import InsufficientHistoryError, MissingDataError
from forecaster.impute import impute
from forecaster.models.base import ModelContext
from forecaster.models.smoothing import SmoothingParams, SmoothingState, forecast, run_filter

logger = logging.getLogger(__name__)

Trend = Literal["damped", "none"]
Initialization = Literal["heuristic", "estimated"]


@dataclass(frozen=True)
class FittedHoltWinters:
    """Estimated parameters, the initial state of the fit, and the state after the last step."""

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


class HoltWinters:
    """Additive Holt-Winters; see the module docstring."""

    name: ClassVar[str] = "holt_winters"

    def __init__(
        self,
        trend: Trend = "damped",
        initialization: Initialization = "heuristic",
        use_brute: bool = False,
    ) -> None:
        self.trend = trend
        self.initialization = initialization
        self.use_brute = use_brute

    def fit(self, y: pd.Series, context: ModelContext) -> FittedHoltWinters:
        values = y.to_numpy(dtype=float)
        season_length = self._season_length(len(values), context)
        if not np.isfinite(values).any():
            raise MissingDataError("Holt-Winters needs at least one observed value")

        model = ExponentialSmoothing(
            impute(values, season_length),
            trend="add" if self.trend == "damped" else None,
            damped_trend=self.trend == "damped",
            seasonal="add",
            seasonal_periods=season_length,
            initialization_method=self.initialization,
        )
        result = model.fit(use_brute=self.use_brute)
        params, initial = _smoothing_from(result.params, self.trend == "damped", season_length)
        state, _ = run_filter(params, initial, values)
        logger.debug(
            "Holt-Winters fitted on %d steps: alpha=%.3f beta=%.3f gamma=%.3f phi=%.3f",
            len(values),
            params.alpha,
            params.beta,
            params.gamma,
            params.phi,
        )
        return FittedHoltWinters(params, initial, state)

    @staticmethod
    def _season_length(n: int, context: ModelContext) -> int:
        seasons = sorted(m for m in context.season_lengths if m > 1)
        if not seasons:
            raise InsufficientHistoryError(
                "Holt-Winters needs a seasonal period of at least 2 steps; none is configured"
            )
        season_length = seasons[0]
        needed = max(2 * season_length, 10 + 2 * (season_length // 2))
        if n < needed:
            raise InsufficientHistoryError(
                f"Holt-Winters with a season of {season_length} steps needs {needed} steps "
                f"(two full seasons); history has {n}"
            )
        return season_length


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
