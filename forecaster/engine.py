"""The forecast engine: aggregate history to the model step, fit on a schedule, update and
predict every cycle, and calibrate quantiles from rolling-origin residuals.

Contract (implemented by the forecasting work; the scaler layer only uses these names):

    engine = ForecastEngine(settings)                 # ForecastSettings
    fitted = engine.fit(history)                      # expensive; scheduled (e.g. daily)
    fitted = fitted.update(history)                   # cheap: feeds grid points after the last seen
    forecast = fitted.predict(h=None)                 # Forecast after fitted.cutoff, calibrated

``fit`` and ``update`` accept a full History and only use points up to its end; they never
read past it. ``predict`` returns values clamped at zero, quantiles for every level in
settings.levels, and notes explaining fallbacks (cold start, low coverage).

The model step is ``forecast.step_seconds``, or the history's own step when that is coarser,
because a model step cannot be shorter than the samples it combines. The forecast notes then
record the raised step.

Only complete model steps are used: a step still in progress at ``history.end`` waits for the
next ``update``. Quantile offsets are calibrated at ``fit`` and kept by ``update``; they are
refreshed at the next scheduled fit.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from forecaster.aggregate import complete_steps
from forecaster.calibration import Calibration, CalibrationPlan, calibrate
from forecaster.errors import DataError, MissingDataError
from forecaster.fitting import ModelFit, fit_with_fallback
from forecaster.forecast import Forecast
from forecaster.history import History
from forecaster.models import AUTO
from forecaster.models.base import FittedModel, ModelContext
from forecaster.models.refilter import Refilterable
from forecaster.seasons import season_steps
from forecaster.settings import ForecastSettings

logger = logging.getLogger(__name__)

# Steps of training history every calibration cutoff keeps when the model has no season.
MIN_TRAIN_WITHOUT_SEASON = 10


@dataclass(frozen=True)
class FittedForecaster:
    """A fitted model with its calibration, positioned at ``cutoff``.

    ``cutoff`` is the start of the last complete model step seen. ``fitted_at`` is the cutoff
    of the fit itself: the data time, never the wall clock, so a caller compares it with its
    own clock to decide when to refit.
    """

    name: str
    settings: ForecastSettings
    model_name: str
    model: FittedModel
    calibration: Calibration
    cutoff: pd.Timestamp
    fitted_at: pd.Timestamp
    notes: tuple[str, ...] = ()
    scores: dict[str, float] = field(default_factory=dict)
    step_seconds: int | None = None  # the model step of the fit; None means the configured one

    @property
    def step(self) -> pd.Timedelta:
        return pd.Timedelta(seconds=self.step_seconds or self.settings.step_seconds)

    @property
    def default_h(self) -> int:
        return math.ceil(self.settings.horizon_seconds / self.step.total_seconds())

    def update(self, history: History) -> FittedForecaster:
        """Feed the complete model steps of ``history`` after ``cutoff``; parameters stay fixed.

        Steps between ``cutoff`` and the first step ``history`` covers count as missing.
        Returns ``self`` when ``history`` has no complete step after ``cutoff``.
        """
        y = complete_steps(history, self.step, self.settings.aggregation)
        y = y[y.index > self.cutoff]
        if y.empty:
            return self
        grid = pd.date_range(self.cutoff + self.step, y.index[-1], freq=self.step, tz="UTC")
        y_new = y.reindex(grid.as_unit("ns"))
        logger.debug("Updating %r with %d steps up to %s", self.name, len(y_new), grid[-1])
        return replace(self, model=self.model.update(y_new), cutoff=grid[-1])

    def predict(self, h: int | None = None) -> Forecast:
        """Forecast ``h`` model steps after ``cutoff`` (default: the configured horizon)."""
        steps = self.default_h if h is None else h
        if steps < 1:
            raise ValueError(f"h must be a positive number of model steps, got {steps}")

        point = np.asarray(self.model.predict(steps), dtype=float)
        if not np.isfinite(point).all():
            raise DataError(
                f"model {self.model_name} returned a non-finite forecast for {self.name!r}; "
                "hold current capacity and refit"
            )
        quantiles = self.calibration.quantiles(point)
        notes = self.notes + _clamp_note([point, *quantiles.values()])
        return Forecast(
            name=self.name,
            cutoff=self.cutoff,
            step=self.step,
            point=np.maximum(point, 0.0),
            quantiles={level: np.maximum(q, 0.0) for level, q in quantiles.items()},
            model=self.model_name,
            notes=notes,
            scores=dict(self.scores),
        )


class ForecastEngine:
    """Fits forecasters for one ``ForecastSettings``.

    ``model_options`` maps a model name to keyword arguments of its constructor, e.g.
    ``{"prophet": {"holidays_country": "US"}}``.
    """

    def __init__(
        self,
        settings: ForecastSettings,
        model_options: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        self.settings = settings
        self.model_options = dict(model_options or {})

    @property
    def step(self) -> pd.Timedelta:
        return pd.Timedelta(seconds=self.settings.step_seconds)

    @property
    def h(self) -> int:
        return math.ceil(self.settings.horizon_seconds / self.settings.step_seconds)

    def step_for(self, history: History) -> pd.Timedelta:
        """Return the model step for ``history``: the configured step, or its own when coarser."""
        return max(self.step, history.step)

    def fit(self, history: History) -> FittedForecaster:
        """Aggregate ``history``, fit the configured model (or a fallback) and calibrate it.

        Raises MissingDataError when no complete model step has an observed value.
        """
        y = self.model_steps(history)
        step = self.step_for(history)
        seasons, notes = season_steps(self.settings.season_lengths_seconds, step, len(y))
        if step != self.step:
            notes = (
                f"model step raised from {self.settings.step_seconds} s to the history step of "
                f"{step.total_seconds():g} s",
                *notes,
            )
        context = ModelContext(step=step, season_lengths=seasons)

        name, scores, selection_notes = self._model_name(y, context)
        fit = fit_with_fallback(
            name, y, context, self.settings.min_coverage, self.model_options.get(name)
        )
        calibration, calibration_notes = calibrate(
            fit.model, fit.fitted, y, context, self._calibration_plan(fit, context)
        )
        cutoff = y.index[-1]
        all_notes = (*notes, *selection_notes, *fit.notes, *calibration_notes)
        logger.info(
            "Fitted %s for %r on %d model steps up to %s with %d calibration windows",
            fit.name,
            history.name,
            len(y),
            cutoff,
            calibration.windows,
        )
        return FittedForecaster(
            name=history.name,
            settings=self.settings,
            model_name=fit.name,
            model=fit.fitted,
            calibration=calibration,
            cutoff=cutoff,
            fitted_at=cutoff,
            notes=all_notes,
            scores=scores,
            step_seconds=int(step.total_seconds()),
        )

    def model_steps(self, history: History) -> pd.Series:
        """Return the complete model steps of the last ``history_seconds`` of ``history``.

        Raises MissingDataError when none of them has an observed value.
        """
        y = complete_steps(history, self.step_for(history), self.settings.aggregation)
        y = y.where(np.isfinite(y.to_numpy(dtype=float)))  # an infinite step counts as missing
        if not y.empty:
            oldest = y.index[-1] - pd.Timedelta(seconds=self.settings.history_seconds)
            y = y[y.index > oldest]
        observed = np.flatnonzero(np.isfinite(y.to_numpy(dtype=float)))
        if observed.size:
            # Steps before the first observation carry no information, so fitting on them only
            # adds gaps. They occur when a series started recently or a window reaches before it.
            y = y.iloc[observed[0] :]
        else:
            raise MissingDataError(
                f"history {history.name!r} has no observed value in a complete model step "
                f"of {self.settings.step_seconds} s between {history.start} and {history.end}"
                if len(history.values)
                else f"history {history.name!r} is empty"
            )
        return y.rename(history.name)

    def _model_name(
        self, y: pd.Series, context: ModelContext
    ) -> tuple[str, dict[str, float], tuple[str, ...]]:
        if self.settings.model != AUTO:
            return self.settings.model, {}, ()
        from forecaster.selection import select_model

        selection = select_model(y, context, self.settings, self.model_options)
        return selection.name, selection.scores, selection.notes

    def _calibration_plan(self, fit: ModelFit, context: ModelContext) -> CalibrationPlan:
        """Space calibration cutoffs a horizon apart when the model can be refiltered.

        Refiltering reuses the fitted parameters, so older cutoffs cost nothing and give
        residuals from more varied days. A model that must be fitted again on the prefix
        before the first cutoff gets cutoffs half a horizon apart, to keep that prefix long.
        """
        h = math.ceil(self.settings.horizon_seconds / context.step.total_seconds())
        longest = max(context.season_lengths, default=0)
        min_train = 2 * longest if longest else MIN_TRAIN_WITHOUT_SEASON
        spacing = h if isinstance(fit.fitted, Refilterable) else h // 2
        return CalibrationPlan(
            h=h,
            levels=tuple(self.settings.levels),
            windows=self.settings.calibration_windows,
            step_size=max(1, spacing),
            min_train=min_train,
        )


def _clamp_note(paths: list[np.ndarray]) -> tuple[str, ...]:
    clamped = sum(int((path < 0).sum()) for path in paths)
    if not clamped:
        return ()
    return (f"{clamped} forecast values below zero were clamped to 0",)
