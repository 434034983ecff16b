"""The forecast result type shared by models, the planner and reports."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from forecaster.columns import DS, YHAT, quantile_column


@dataclass(frozen=True)
class Forecast:
    """Point and quantile forecasts for ``h`` model steps after ``cutoff``.

    Row ``i`` is the forecast for ``cutoff + (i + 1) * step`` and covers the model step that
    starts there. ``quantiles`` maps a level in (0, 1) to an array of length ``h``. Values are
    in the demand's unit and never negative.
    """

    name: str
    cutoff: pd.Timestamp
    step: pd.Timedelta
    point: np.ndarray
    quantiles: dict[float, np.ndarray]
    model: str
    notes: tuple[str, ...] = ()
    scores: dict[str, float] = field(default_factory=dict)

    @property
    def h(self) -> int:
        return len(self.point)

    @property
    def index(self) -> pd.DatetimeIndex:
        return pd.date_range(self.cutoff + self.step, periods=self.h, freq=self.step, tz="UTC")

    def quantile(self, level: float) -> pd.Series:
        """Return the forecast at quantile ``level`` as a series indexed by time."""
        if level not in self.quantiles:
            known = ", ".join(f"{q:g}" for q in sorted(self.quantiles))
            raise KeyError(f"forecast {self.name!r} has no quantile {level:g}; it has {known}")
        return pd.Series(self.quantiles[level], index=self.index, name=quantile_column(level))

    def frame(self) -> pd.DataFrame:
        """Return a frame with ``ds``, ``yhat`` and one ``q<level>`` column per quantile."""
        data: dict[str, object] = {DS: self.index, YHAT: self.point}
        for level in sorted(self.quantiles):
            data[quantile_column(level)] = self.quantiles[level]
        return pd.DataFrame(data)


def align_forecasts(
    forecasts: Mapping[str, Forecast],
) -> tuple[dict[str, Forecast], str | None]:
    """Cut every forecast to start after the newest cutoff and to the shortest common horizon.

    Workloads are refreshed one by one, so a refresh across a model-step boundary leaves
    forecasts with different cutoffs; the requirement schedule needs one grid. Returns the
    cut forecasts, or a problem sentence when they share no step.
    """
    steps = {forecast.step for forecast in forecasts.values()}
    if len(steps) != 1:
        return {}, f"the forecasts use different steps ({', '.join(map(str, sorted(steps)))})"
    step = steps.pop()
    cutoff = max(forecast.cutoff for forecast in forecasts.values())
    skips = {name: int((cutoff - f.cutoff) / step) for name, f in forecasts.items()}
    h = min(f.h - skips[name] for name, f in forecasts.items())
    if h < 1:
        oldest = min(forecasts.values(), key=lambda f: f.cutoff)
        return {}, (
            f"the forecast of workload {oldest.name} (cutoff {oldest.cutoff.isoformat()}) ends "
            f"before the newest cutoff {cutoff.isoformat()}"
        )
    aligned = {}
    for name, forecast in forecasts.items():
        rows = slice(skips[name], skips[name] + h)
        aligned[name] = replace(
            forecast,
            cutoff=cutoff,
            point=forecast.point[rows],
            quantiles={level: values[rows] for level, values in forecast.quantiles.items()},
        )
    return aligned, None
