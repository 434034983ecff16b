"""Prophet with the settings a demand forecast needs.

- Seasonal periods come from ``ModelContext`` in model steps and are passed to Prophet in days
  (Prophet's unit), so a daily period is 1.0 whatever the sample rate.
- Timestamps are converted to UTC and made tz-naive before fitting, because Prophet rejects
  tz-aware ``ds``. Forecast rows are placed on the UTC grid again by the engine.
- ``changepoint_range`` defaults to 0.95, not Prophet's 0.8, so a level shift in the last days
  of history still moves the trend.
- ``uncertainty_samples=0``: the engine calibrates quantiles from rolling-origin residuals,
  and Prophet's sampled intervals cost memory and time on long minute-level histories.
- Holidays of a country and known events (launches, sales) are optional keyword arguments.

``update`` does not refit and does not change the fitted curve: it only moves the cutoff, so
later forecasts read the same curve further ahead. Refit on the schedule to use new data.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd

from forecaster.errors import ConfigError, InsufficientHistoryError, MissingDataError
from forecaster.models.base import ModelContext

# Prophet logs an error at import when plotly is missing; plots are not used here.
logging.getLogger("prophet.plot").setLevel(logging.CRITICAL)

from cmdstanpy.utils import get_logger as cmdstanpy_logger  # noqa: E402
from prophet import Prophet as ProphetModel  # noqa: E402  (after the logger level above)

# cmdstanpy logs two INFO lines per Stan run through a handler of its own. Its get_logger() is
# cached (cmdstanpy 1.3), so the level set here stays in place.
cmdstanpy_logger().setLevel(logging.WARNING)

logger = logging.getLogger(__name__)

DAY = pd.Timedelta(days=1)
WEEK = pd.Timedelta(days=7)
# Fourier terms per seasonal period; the daily shape of serving traffic needs more than
# Prophet's default of 4 to follow a sharp peak.
FOURIER_ORDER = {DAY: 8, WEEK: 4}
DEFAULT_FOURIER_ORDER = 5
# Prophet needs a handful of observed points to estimate its trend.
MIN_OBSERVED = 10


@dataclass(frozen=True)
class FittedProphet:
    """A fitted Prophet model and the last step it has seen (tz-naive UTC)."""

    model: Any
    last_seen: pd.Timestamp
    step: pd.Timedelta
    notes: tuple[str, ...] = ()

    def update(self, y_new: pd.Series) -> FittedProphet:
        if y_new.empty:
            return self
        return replace(self, last_seen=_naive_utc(y_new.index)[-1])

    def predict(self, h: int) -> np.ndarray:
        future = pd.DataFrame(
            {"ds": pd.date_range(self.last_seen + self.step, periods=h, freq=self.step)}
        )
        return self.model.predict(future)["yhat"].to_numpy(dtype=float)


class Prophet:
    """Prophet configured for demand; see the module docstring."""

    name: ClassVar[str] = "prophet"

    def __init__(
        self,
        holidays_country: str | None = None,
        events: Sequence[Mapping[str, Any]] = (),
        changepoint_range: float = 0.95,
        changepoint_prior_scale: float = 0.05,
        seasonality_mode: Literal["additive", "multiplicative"] = "additive",
    ) -> None:
        self.holidays_country = holidays_country
        self.events = _events_frame(events)
        self.changepoint_range = changepoint_range
        self.changepoint_prior_scale = changepoint_prior_scale
        self.seasonality_mode = seasonality_mode

    def fit(self, y: pd.Series, context: ModelContext) -> FittedProphet:
        frame = pd.DataFrame({"ds": _naive_utc(y.index), "y": y.to_numpy(dtype=float)})
        observed = frame.dropna()
        if observed.empty:
            raise MissingDataError("Prophet needs at least one observed value")
        if len(observed) < MIN_OBSERVED:
            raise InsufficientHistoryError(
                f"Prophet needs {MIN_OBSERVED} observed steps; history has {len(observed)}"
            )

        model = self._build(context)
        model.fit(observed)
        logger.debug("Prophet fitted on %d observed steps", len(observed))
        return FittedProphet(model, frame["ds"].iloc[-1], context.step)

    def _build(self, context: ModelContext) -> Any:
        model = ProphetModel(
            growth="linear",
            changepoint_range=self.changepoint_range,
            changepoint_prior_scale=self.changepoint_prior_scale,
            yearly_seasonality=False,
            weekly_seasonality=False,
            daily_seasonality=False,
            holidays=self.events,
            seasonality_mode=self.seasonality_mode,
            uncertainty_samples=0,
        )
        for steps in context.season_lengths:
            period = steps * context.step
            model.add_seasonality(
                name=_season_name(period),
                period=period / DAY,
                fourier_order=FOURIER_ORDER.get(period, DEFAULT_FOURIER_ORDER),
            )
        if self.holidays_country:
            model.add_country_holidays(country_name=self.holidays_country)
        return model


def _naive_utc(index: pd.Index) -> pd.DatetimeIndex:
    """Convert to UTC and drop the zone, as Prophet requires."""
    timestamps = pd.DatetimeIndex(index)
    if timestamps.tz is not None:
        timestamps = timestamps.tz_convert("UTC").tz_localize(None)
    return timestamps


def _season_name(period: pd.Timedelta) -> str:
    if period == DAY:
        return "daily"
    if period == WEEK:
        return "weekly"
    return f"period_{int(period.total_seconds())}s"


def _events_frame(events: Sequence[Mapping[str, Any]]) -> pd.DataFrame | None:
    """Build Prophet's holidays frame from events with ``name``, ``ds`` and optional windows.

    ``lower_window`` and ``upper_window`` are whole days before and after ``ds``.
    """
    if not events:
        return None
    rows = []
    for position, event in enumerate(events):
        if "name" not in event or "ds" not in event:
            raise ConfigError(
                f"model_options.prophet.events[{position}]",
                dict(event),
                "an event needs the keys 'name' and 'ds' (its date)",
            )
        day = pd.Timestamp(event["ds"])
        if day.tzinfo is not None:
            day = day.tz_convert("UTC").tz_localize(None)
        rows.append(
            {
                "holiday": str(event["name"]),
                "ds": day,
                "lower_window": int(event.get("lower_window", 0)),
                "upper_window": int(event.get("upper_window", 0)),
            }
        )
    return pd.DataFrame(rows)
