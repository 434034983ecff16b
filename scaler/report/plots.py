"""The report's plots as PNG images: demand and forecast, capacity per policy, plan, lead times.

Figures are built with ``matplotlib.figure.Figure`` and saved through the Agg canvas, so no
pyplot state or display is involved. Times are drawn in the report's time zone.
"""

from __future__ import annotations

import io
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import matplotlib as mpl
import matplotlib.dates as mdates
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from forecaster.plots import draw_forecast, legend_above, shade_windows
from scaler.report.model import (
    BacktestSection,
    BacktestWindow,
    CapacityPlan,
    DemandView,
    LeadTime,
    Report,
)

logger = logging.getLogger(__name__)

# 10 inches at 120 dpi gives a 1200-pixel image, about the width of the HTML page, so that
# the browser shows it near its natural size and 10-point text stays legible.
WIDTH_INCHES = 10.0
DPI = 120
# Long series are cut into bins so that a panel shows at most this many points.
MAX_POINTS = 2500
# How much of the time before and after the zoomed peak window is shown.
ZOOM_BEFORE = pd.Timedelta(hours=2)
ZOOM_AFTER = pd.Timedelta(hours=1)
ZOOM_MAX_SPAN = pd.Timedelta(hours=12)
_ROUND_BIN_SIZES = (1, 2, 5, 10, 15, 30, 60)

_POLICY_COLORS = {
    "reactive": "tab:red",
    "static": "tab:gray",
    "schedule": "tab:purple",
    "holt_winters_replicas": "tab:brown",
    "oracle": "tab:green",
    "peakcast": "tab:blue",
    "peakcast+reactive": "tab:cyan",
}
_FALLBACK_COLORS = ("tab:olive", "tab:pink", "gold", "navy")
_STATIC_POOL_COLOR = "#b0b0b0"
_BURST_POOL_COLORS = ("tab:blue", "tab:cyan", "tab:olive", "tab:purple")
# Drawn thicker in the zoom plot, so the policies under test stand out.
_EMPHASISED_PREFIX = "peakcast"


@dataclass(frozen=True)
class Plot:
    """One rendered plot: a heading, a caption that says how to read it, and PNG bytes."""

    title: str
    caption: str
    png: bytes


def render_plots(report: Report) -> list[Plot]:
    """Render every plot the report has data for, in reading order."""
    zone = ZoneInfo(report.timezone)
    with mpl.rc_context({"font.size": 10, "axes.titlesize": 10, "axes.titleweight": "bold"}):
        plots = [_demand_plot(view, zone) for view in report.demand]
        if report.plan is not None:
            plots.append(_plan_plot(report.plan, zone))
        if report.backtest is not None:
            plots.append(_capacity_plot(report.backtest, zone))
            zoom = _zoom_plot(report.backtest, zone)
            if zoom is not None:
                plots.append(zoom)
        if report.lead_times:
            plots.append(_lead_time_plot(report.lead_times))
    logger.info("rendered %d plots", len(plots))
    return plots


def policy_color(name: str, position: int) -> str:
    """Return the fixed colour of a known policy, else a fallback by position."""
    return _POLICY_COLORS.get(name, _FALLBACK_COLORS[position % len(_FALLBACK_COLORS)])


def new_figure(height_inches: float) -> Figure:
    """Return a report-wide figure with constrained layout, so titles and legends never clash."""
    return Figure(figsize=(WIDTH_INCHES, height_inches), layout="constrained")


def to_png(figure: Figure) -> bytes:
    """Save ``figure`` as PNG through the Agg canvas."""
    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


def bin_size(points: int) -> int:
    """Return how many points go into one bin so that at most ``MAX_POINTS`` bins remain.

    The size is a round number (1, 2, 5, 10, 15, 30, 60, then multiples of 60), so that a bin
    of one-minute points is a familiar duration.
    """
    needed = max(1, math.ceil(points / MAX_POINTS))
    for size in _ROUND_BIN_SIZES:
        if size >= needed:
            return size
    return math.ceil(needed / 60) * 60


def binned(values: np.ndarray, size: int, how: str) -> np.ndarray:
    """Reduce ``values`` over consecutive bins of ``size`` with ``max``, ``min`` or ``mean``.

    NaN is ignored inside a bin, and a bin with no value stays NaN.
    """
    if size == 1:
        return np.asarray(values, dtype=float)
    padded = np.full(math.ceil(len(values) / size) * size, np.nan)
    padded[: len(values)] = values
    table = padded.reshape(-1, size)
    empty = np.all(np.isnan(table), axis=1)
    filled = np.where(np.isnan(table), -np.inf if how == "max" else np.inf, table)
    if how == "max":
        reduced = filled.max(axis=1)
    elif how == "min":
        reduced = filled.min(axis=1)
    else:
        with np.errstate(invalid="ignore"):
            reduced = np.nanmean(table, axis=1)
    return np.where(empty, np.nan, reduced)


def _format_time_axis(ax: Axes, zone: ZoneInfo) -> None:
    locator = mdates.AutoDateLocator(tz=zone, minticks=5, maxticks=12)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator, tz=zone))


def _demand_plot(view: DemandView, zone: ZoneInfo) -> Plot:
    history = view.history
    size = bin_size(len(history))
    shown = history
    label = "observed"
    if size > 1:
        values = binned(history.to_numpy(dtype=float), size, "max")
        shown = pd.Series(values, index=history.index[::size][: len(values)])
        if len(history) > 1:
            label = f"observed (max per {_duration(size * (history.index[1] - history.index[0]))})"
    step = None
    if view.forecast is not None and len(view.forecast) > 1:
        times = pd.DatetimeIndex(view.forecast["ds"])
        step = times[1] - times[0]

    figure = new_figure(3.6)
    ax = figure.add_subplot()
    draw_forecast(
        ax,
        shown,
        view.forecast,
        step=step,
        spans=view.spans,
        unit=view.unit,
        history_label=label,
    )
    draw_misses(ax, view)
    _format_time_axis(ax, zone)
    caption = (
        f"Black: observed demand of {view.workload} in {view.unit}. Blue: the {view.model} "
        f"forecast ({view.forecast_label}). The dark band spans P50 to P90, the light one P90 "
        "to P95, the line is the median. Orange: peak windows."
    )
    if view.misses:
        caption += (
            f" Red triangles: the {len(view.misses)} forecast misses, at the minute each was "
            "recorded and the demand then."
        )
    return Plot(f"Demand and forecast: {view.workload}", caption, to_png(figure))


def draw_misses(ax: Axes, view: DemandView) -> None:
    """Mark each forecast miss of ``view`` with a red triangle and add it to the legend."""
    if not view.misses:
        return
    times = mdates.date2num([at for at, _ in view.misses])
    values = [value for _, value in view.misses]
    ax.scatter(times, values, marker="v", s=36, color="tab:red", zorder=5, label="forecast miss")
    legend_above(ax)


def _plan_plot(plan: CapacityPlan, zone: ZoneInfo) -> Plot:
    figure = new_figure(3.6)
    ax = figure.add_subplot()
    times = plan.index.append(pd.DatetimeIndex([plan.end]))
    stacked = np.zeros(len(plan.index))
    kinds = {pool.name: pool.kind for pool in plan.pools}
    burst = 0
    for pool, gpus in plan.held_gpus.items():
        if kinds[pool] == "static":
            color = _STATIC_POOL_COLOR
        else:
            color = _BURST_POOL_COLORS[burst % len(_BURST_POOL_COLORS)]
            burst += 1
        upper = stacked + gpus
        ax.fill_between(
            times,
            np.append(stacked, stacked[-1]),
            np.append(upper, upper[-1]),
            step="post",
            alpha=0.35,
            color=color,
            lw=0,
            label=f"held on {pool}",
        )
        stacked = upper
    needed = np.sum(list(plan.needed_gpus.values()), axis=0)
    ax.step(
        times,
        np.append(needed, needed[-1]),
        where="post",
        color="black",
        lw=1.2,
        label=f"GPUs used by replicas at P{plan.planning_level * 100:g}",
    )
    ax.axhline(
        plan.reserved.total_gpus,
        color="tab:red",
        ls="--",
        lw=1.2,
        label=f"reserve ({plan.reserved.quantile:.0%} of daily peaks)",
    )
    shade_windows(ax, [(window.start, window.end) for window in plan.windows])
    ax.set_ylabel("GPUs")
    ax.set_ylim(0, max(float(stacked.max()), float(needed.max()), plan.reserved.total_gpus) * 1.1)
    ax.grid(alpha=0.3)
    legend_above(ax, columns=3)
    _format_time_axis(ax, zone)
    caption = (
        f"Stacked areas: GPUs of the nodes each pool holds for the P{plan.planning_level * 100:g} "
        "forecast within the configured bounds (whole nodes). Black: GPUs the replicas use "
        "without node bounds. Red dashed: the recommended reserve. Orange: peak windows above "
        "the base capacity."
    )
    return Plot("Capacity plan", caption, to_png(figure))


def _capacity_plot(section: BacktestSection, zone: ZoneInfo) -> Plot:
    trace = section.capacity
    names = list(trace.serving_gpus)
    size = bin_size(trace.minutes)
    index = trace.index[::size]
    needed = binned(trace.needed_gpus, size, "max")
    top = np.nanmax([np.nanmax(needed), *[np.max(b) for b in trace.billed_gpus.values()]])

    figure = new_figure(1.6 * len(names) + 0.9)
    axes = figure.subplots(len(names), 1, sharex=True, squeeze=False)[:, 0]
    for position, (ax, name) in enumerate(zip(axes, names, strict=True)):
        serving = binned(trace.serving_gpus[name].astype(float), size, "min")
        billed = binned(trace.billed_gpus[name].astype(float), size, "max")
        color = policy_color(name, position)
        ax.fill_between(
            index, 0, billed, step="post", color=color, alpha=0.12, lw=0, label="billed"
        )
        ax.step(index, serving, where="post", color=color, lw=1.0, label="serving")
        ax.step(index, needed, where="post", color="black", lw=0.7, label="needed")
        short = np.nan_to_num(needed) > serving
        ax.fill_between(
            index,
            serving,
            needed,
            where=short,
            step="post",
            color="red",
            alpha=0.6,
            lw=0,
            label="short",
        )
        metrics = section.policies[name]
        ax.set_title(
            f"{name}: short {metrics.shortfall_gpu_minutes:,.0f} GPU-min, "
            f"{metrics.gpu_hours:,.0f} GPU-h",
            loc="left",
            fontsize="medium",
        )
        ax.set_ylim(0, top * 1.08)
        ax.set_ylabel("GPUs")
        ax.grid(alpha=0.3)
    figure.legend(
        *axes[0].get_legend_handles_labels(),
        loc="outside upper right",
        ncols=4,
        frameon=False,
        fontsize="small",
    )
    _format_time_axis(axes[-1], zone)
    binning = (
        ""
        if size == 1
        else (
            f" Each point covers {size} minutes: needed is its maximum, serving its minimum and "
            "billed its maximum, so short minutes stay visible."
        )
    )
    caption = (
        "Per policy: GPUs serving replicas (line), GPUs of billed nodes (light fill), the GPUs "
        "demand needs at the SLO (black), and the minutes short of it (red)." + binning
    )
    return Plot("Capacity held and needed per policy", caption, to_png(figure))


def zoom_window(section: BacktestSection) -> BacktestWindow | None:
    """Return the peak window with the largest shortfall of any policy, else the highest."""
    if not section.windows:
        return None
    worst = [
        max(metrics.window_shortfall_gpu_minutes[k] for metrics in section.policies.values())
        for k in range(len(section.windows))
    ]
    if max(worst) > 0:
        return section.windows[int(np.argmax(worst))]
    return max(section.windows, key=lambda window: window.peak_demand_gpus)


def _zoom_plot(section: BacktestSection, zone: ZoneInfo) -> Plot | None:
    window = zoom_window(section)
    if window is None:
        return None
    trace = section.capacity
    start = max(window.start - ZOOM_BEFORE, trace.start)
    end = min(window.end, window.start + ZOOM_MAX_SPAN) + ZOOM_AFTER
    first = int((start - trace.start) / pd.Timedelta(minutes=1))
    last = min(trace.minutes, int((end - trace.start) / pd.Timedelta(minutes=1)))
    index = trace.index[first:last]

    figure = new_figure(4.0)
    ax = figure.add_subplot()
    shade_windows(ax, [(window.start, window.end)])
    ax.step(
        index, trace.needed_gpus[first:last], where="post", color="black", lw=2.0, label="needed"
    )
    for position, (name, serving) in enumerate(trace.serving_gpus.items()):
        ax.step(
            index,
            serving[first:last],
            where="post",
            lw=2.0 if name.startswith(_EMPHASISED_PREFIX) else 1.1,
            color=policy_color(name, position),
            label=name,
        )
    ax.set_ylabel("GPUs")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    legend_above(ax, columns=5)
    _format_time_axis(ax, zone)
    caption = (
        "Minute by minute around the peak window where some policy was short the most (or the "
        "highest one): GPUs serving replicas per policy against the GPUs demand needs (black). "
        "A policy line below the black line is under-provisioned."
    )
    started = f"{window.start.tz_convert(zone):%Y-%m-%d %H:%M}"
    return Plot(f"Zoom on the peak window from {started}", caption, to_png(figure))


def _lead_time_plot(lead_times: Sequence[LeadTime]) -> Plot:
    figure = new_figure(0.45 * len(lead_times) + 1.2)
    ax = figure.add_subplot()
    names = [lead.pool for lead in lead_times]
    phases = (
        ("node provisioning", "node_provisioning_seconds", "tab:blue"),
        ("workload start", "workload_start_seconds", "tab:orange"),
        ("margin", "margin_seconds", "tab:gray"),
    )
    left = np.zeros(len(lead_times))
    for label, field, color in phases:
        minutes = np.array([getattr(lead, field) / 60 for lead in lead_times])
        ax.barh(names, minutes, left=left, color=color, label=label, height=0.6)
        for row, (start, width) in enumerate(zip(left, minutes, strict=True)):
            if width >= 1:
                ax.text(
                    start + width / 2,
                    row,
                    f"{width:g} min",
                    ha="center",
                    va="center",
                    color="white",
                )
        left = left + minutes
    ax.set_xlabel("minutes before the capacity must serve")
    ax.invert_yaxis()
    ax.grid(axis="x", alpha=0.3)
    legend_above(ax, columns=3)
    sources = ", ".join(sorted({lead.source for lead in lead_times}))
    caption = (
        "How far ahead each pool's node floor is raised: node provisioning (floor raised to "
        "GPUs allocatable), the longest workload start on the pool (image pull, model load) "
        f"and the policy margin. Source of the values: {sources}."
    )
    return Plot("Lead time per pool", caption, to_png(figure))


def _duration(delta: pd.Timedelta) -> str:
    minutes = delta / pd.Timedelta(minutes=1)
    return f"{minutes:g} min" if minutes < 120 else f"{minutes / 60:g} h"
