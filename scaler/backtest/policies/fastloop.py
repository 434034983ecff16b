"""peakcast with the HPA and cluster autoscaler above its floors, plus a model of the fast loop.

``peakcast+fastloop`` takes the targets of ``peakcast+reactive`` each minute and adds the part
of the fast loop (``scaler.fastloop``) that a demand trace can drive:

- **Demand above the forecast.** Each simulated minute gives one sample: that minute's demand
  against the upper quantile of the newest forecast made by then (the level is
  ``signals.demand_above_forecast.level``, or the highest forecast level). A run of samples over
  the quantile raises floors once it holds under the signal's hysteresis
  (``scaler.signals.hysteresis``). The workload floor then rises to the replicas the current
  demand needs, and the floors of the workload's burst pools to the nodes those replicas need.
- **Forecast misses.** ``scaler.misses.step`` is stepped once a minute with the same two values.
  While a workload's planning level is widened, ``scaler.signals.widened.widened_floors``
  gives its replica floor and its pools' node floors from the newest forecasts.

Every such floor is held for ``policy.stabilization_window_seconds`` after it was last
requested, as the live fast loop holds it through ``RaisedFloors`` and ``CombinedActuator``.
The targets are the maximum of ``peakcast+reactive``'s targets, the held floors and the nodes
the resulting replicas need, so this layer never lowers anything.

A workload without ``signals.demand_above_forecast`` is modelled with that group's defaults, so
the policy shows what the fast loop would add on a config that does not configure it yet. In
``peakcast run`` such a workload has no demand-above-forecast signal.

NOTE: the backtest sees one demand value per minute, so each minute is one hysteresis sample.
With ``min_samples: 3`` a run holds at its third minute even when ``hold_seconds`` is shorter,
while the live signal samples every ``sample_step_seconds`` and can hold sooner. Three parts of
the live fast loop are not modelled. The pending-pod, GPU-allocation and saturation signals have
no counterpart in a trace, and the HPA and cluster-autoscaler model plays their role. The early
refit that a miss requests is left out, because the forecasts are shared with the other
peakcast policies. When a held floor expires, the targets drop to ``peakcast+reactive``'s at
once, where a cluster's policy lowers the floor by its bounded scale-down steps.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import Mapping
from typing import ClassVar

import numpy as np
import pandas as pd

from forecaster.forecast import Forecast
from scaler.backtest.misses import miss_rule
from scaler.backtest.policies.base import NodeSizer, PolicyContext, Targets
from scaler.backtest.policies.peakcast import PeakcastReactivePolicy
from scaler.backtest.trace import MINUTE, Observation
from scaler.core.capacity import Fleet, replicas_for_value
from scaler.misses import MissState, step
from scaler.settings import Settings, WorkloadSettings
from scaler.signals.demand_above_forecast import forecast_at, upper_level
from scaler.signals.hysteresis import Run
from scaler.signals.raised import FloorId
from scaler.signals.settings import DemandAboveForecastSignalSettings
from scaler.signals.widened import widened_floors

logger = logging.getLogger(__name__)


class _UpperQuantile:
    """One workload's upper quantile per minute from one forecast, computed once per forecast."""

    def __init__(self, forecast: Forecast, level: float | None) -> None:
        self.forecast = forecast
        self._start_ns = 0
        self._values = np.empty(0)
        chosen = upper_level(forecast, level)
        if chosen not in forecast.quantiles:
            # Every minute is then missing, as for a live signal that cannot be read.
            return
        start = forecast.cutoff + forecast.step
        minutes = int((forecast.step * forecast.h) / MINUTE)
        times = pd.date_range(start, periods=minutes, freq=MINUTE)
        self._start_ns = start.value
        self._values = forecast_at(forecast, chosen, times)

    def at(self, now: pd.Timestamp) -> float:
        """Return the upper quantile at ``now``, or NaN outside the forecast's horizon."""
        index = (now.value - self._start_ns) // MINUTE.value
        if 0 <= index < len(self._values):
            return float(self._values[index])
        return math.nan


class _DemandSignal:
    """The demand-above-forecast signal of one workload, one sample per minute."""

    def __init__(self, workload: WorkloadSettings, settings: Settings) -> None:
        signals = workload.signals
        configured = signals.demand_above_forecast if signals is not None else None
        self.settings = configured or DemandAboveForecastSignalSettings()
        # The same rule the report's miss replay uses, so both find the same misses.
        self.rule = miss_rule(settings, workload.name)
        self.misses = MissState()
        self.run_samples = 0
        self.run_start: pd.Timestamp | None = None
        self.upper: _UpperQuantile | None = None

    def upper_at(self, forecast: Forecast | None, now: pd.Timestamp) -> float:
        if forecast is None:
            return math.nan
        if self.upper is None or self.upper.forecast is not forecast:
            self.upper = _UpperQuantile(forecast, self.settings.level)
        return self.upper.at(now)

    def holds(self, now: pd.Timestamp, demand: float, upper: float) -> bool:
        """Add this minute's sample and tell whether the run over the quantile holds.

        A missing value on either side ends the run, as a missing sample does live.
        """
        if not (math.isfinite(demand) and math.isfinite(upper)) or demand <= upper:
            self.run_samples = 0
            self.run_start = None
            return False
        if self.run_start is None:
            self.run_start = now
        self.run_samples += 1
        return Run(self.run_samples, self.run_start, now).holds(self.settings.hysteresis)

    def planning_level(self, now: pd.Timestamp, demand: float, upper: float) -> float:
        """Step the forecast-miss machine with this minute's values; return the planning level."""
        observed = demand if math.isfinite(demand) else None
        bound = upper if math.isfinite(upper) else None
        result = step(self.misses, self.rule, now, observed, bound)
        self.misses = result.state
        return result.level


class HeldFloors:
    """The highest floor requested per pool or workload within the stabilization window.

    The rule is that of ``scaler.signals.raised.RaisedFloors``: a floor counts while it was
    requested less than the window ago. This class applies it on the minute clock with a
    sliding-window maximum per floor, because ``RaisedFloors`` compares timestamps entry by
    entry, which is too slow for tens of thousands of minutes.
    """

    def __init__(self, window_seconds: int) -> None:
        self._window_seconds = window_seconds
        # Per floor: (minute, value) pairs with values strictly decreasing from the front.
        self._recent: dict[FloorId, deque[tuple[int, int]]] = {}

    def record(self, floor: FloorId, minute: int, value: int) -> None:
        """Record that ``floor`` was requested at ``value`` in ``minute``."""
        recent = self._recent.setdefault(floor, deque())
        while recent and recent[-1][1] <= value:
            recent.pop()
        recent.append((minute, value))

    def held(self, floor: FloorId, minute: int) -> int:
        """Return the highest value requested within the window before ``minute``, else 0."""
        recent = self._recent.get(floor)
        if not recent:
            return 0
        while recent and (minute - recent[0][0]) * 60 >= self._window_seconds:
            recent.popleft()
        return recent[0][1] if recent else 0


class PeakcastFastLoopPolicy:
    """``peakcast+reactive`` with demand-above-forecast raises and widened planning levels."""

    name: ClassVar[str] = "peakcast+fastloop"
    sees_future: ClassVar[bool] = False

    def __init__(self, context: PolicyContext) -> None:
        settings = context.settings
        self._settings = settings
        self._fleet: Fleet = context.fleet
        self._log_level = context.log_level
        self._base = PeakcastReactivePolicy(context)
        self._sizer = NodeSizer(settings, context.fleet)
        self._raised = HeldFloors(settings.policy.stabilization_window_seconds)
        self._signals = {w.name: _DemandSignal(w, settings) for w in settings.workloads}
        self._burst_pools = {
            w.name: [p for p in w.pools if settings.pool(p).kind == "burst"]
            for w in settings.workloads
        }
        self._planning = settings.forecast.planning_level

    def step(self, observation: Observation) -> Targets:
        base = self._base.step(observation)
        now = observation.now
        minute = observation.minute
        forecasts = self._base.floors.forecasts_at(minute)
        holding: dict[str, int] = {}
        widened: dict[str, float] = {}
        for name, signal in self._signals.items():
            demand = observation.current_demand(name)
            forecast = forecasts.get(name) if forecasts is not None else None
            upper = signal.upper_at(forecast, now)
            if signal.holds(now, demand, upper):
                holding[name] = replicas_for_value(demand, self._settings.workload(name).capacity)
            level = signal.planning_level(now, demand, upper)
            if level > self._planning:
                widened[name] = level

        for name, value in holding.items():
            self._raised.record(("workload", name), minute, value)
        if widened and forecasts is not None:
            self._record_widened(forecasts, widened, now, minute)

        replicas = {
            name: max(value, self._raised.held(("workload", name), minute))
            for name, value in base.replicas.items()
        }
        needed = self._sizer.nodes(replicas)
        for name in holding:
            for pool in self._burst_pools[name]:
                self._raised.record(("pool", pool), minute, needed[pool])
        nodes = {
            pool: max(value, needed[pool], self._raised.held(("pool", pool), minute))
            for pool, value in base.nodes.items()
        }
        return Targets(nodes=nodes, replicas=replicas)

    def _record_widened(
        self,
        forecasts: Mapping[str, Forecast],
        widened: Mapping[str, float],
        now: pd.Timestamp,
        minute: int,
    ) -> None:
        floors, problem = widened_floors(self._settings, self._fleet, forecasts, widened, now)
        if problem is not None:
            logger.log(
                self._log_level,
                "%s: widened planning levels raise nothing: %s",
                now.isoformat(),
                problem,
            )
        for floor in floors:
            self._raised.record((floor.kind, floor.name), minute, floor.value)
