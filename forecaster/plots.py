"""Forecast plots: observed history, quantile bands and shaded peak windows on one axes.

The functions draw on a matplotlib ``Axes`` the caller owns, so they work with any backend and
never touch pyplot's global state.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import matplotlib.dates as mdates
import numpy as np
import pandas as pd
from matplotlib.axes import Axes

from forecaster.columns import DS

# Fill opacity of the band nearest the median, then of each band further out.
_BAND_ALPHAS = (0.40, 0.20, 0.10)
_MEDIAN_LEVEL = 0.5


def quantile_levels(frame: pd.DataFrame) -> list[float]:
    """Return the quantile levels of a ``Forecast.frame()`` layout, ascending."""
    levels = []
    for column in frame.columns:
        name = str(column)
        if name.startswith("q"):
            try:
                levels.append(float(name[1:]))
            except ValueError:
                continue
    return sorted(levels)


def band_pairs(levels: Sequence[float]) -> list[tuple[float, float]]:
    """Pair neighbouring upper levels from the median outwards: P50–P90, P90–P95, …"""
    upper = [level for level in sorted(levels) if level >= _MEDIAN_LEVEL]
    return list(itertools.pairwise(upper))


def draw_forecast(
    ax: Axes,
    history: pd.Series,
    frame: pd.DataFrame | None,
    *,
    step: pd.Timedelta | None = None,
    spans: Sequence[tuple[pd.Timestamp, pd.Timestamp]] = (),
    unit: str = "",
    history_label: str = "observed",
) -> None:
    """Draw ``history`` as a line and the forecast ``frame`` as quantile bands over it.

    ``frame`` has the ``Forecast.frame()`` layout, and each row covers the model ``step`` that
    starts at ``ds``, so bands are drawn as steps. ``spans`` are shaded as peak windows.
    """
    ax.plot(
        history.index, history.to_numpy(dtype=float), color="black", lw=0.8, label=history_label
    )
    if frame is not None and len(frame):
        _draw_bands(ax, frame, step)
    shade_windows(ax, spans)
    ax.set_ylabel(unit)
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    legend_above(ax)


def shade_windows(
    ax: Axes, spans: Sequence[tuple[pd.Timestamp, pd.Timestamp]], label: str = "peak window"
) -> None:
    """Shade each span lightly over the full height and mark it with a strip at the bottom.

    The strip keeps windows visible where the light shading meets bands of other colours.
    """
    for number, (start, end) in enumerate(spans):
        left, right = mdates.date2num(start), mdates.date2num(end)
        ax.axvspan(left, right, color="tab:orange", alpha=0.08, lw=0, zorder=0)
        ax.axvspan(
            left,
            right,
            ymin=0.0,
            ymax=0.035,
            color="tab:orange",
            alpha=0.9,
            lw=0,
            label=label if number == 0 else None,
        )


def legend_above(ax: Axes, columns: int = 6) -> None:
    """Place the legend in one row above the axes, where it hides no data."""
    ax.legend(
        loc="lower left",
        bbox_to_anchor=(0.0, 1.0),
        ncols=columns,
        frameon=False,
        fontsize="small",
    )


def _draw_bands(ax: Axes, frame: pd.DataFrame, step: pd.Timedelta | None) -> None:
    times = pd.DatetimeIndex(frame[DS])
    if step is not None:
        # Repeat the last row at the end of its step, so the last step is drawn in full.
        times = pd.DatetimeIndex(times.append(pd.DatetimeIndex([times[-1] + step])))
    levels = quantile_levels(frame)

    def values(level: float) -> np.ndarray:
        column = frame[f"q{level:g}"].to_numpy(dtype=float)
        return np.append(column, column[-1]) if step is not None else column

    for number, (low, high) in enumerate(band_pairs(levels)):
        alpha = _BAND_ALPHAS[min(number, len(_BAND_ALPHAS) - 1)]
        ax.fill_between(
            times,
            values(low),
            values(high),
            step="post",
            color="tab:blue",
            alpha=alpha,
            lw=0,
            label=f"P{low * 100:g}–P{high * 100:g}",
        )
    if _MEDIAN_LEVEL in levels:
        ax.step(
            times,
            values(_MEDIAN_LEVEL),
            where="post",
            color="tab:blue",
            lw=1.0,
            label="P50 forecast",
        )
