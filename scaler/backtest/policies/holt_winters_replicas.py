"""The older predictive-HPA baseline: one-step-ahead Holt-Winters on replica counts.

The series is the HPA's per-minute replica recommendation (the raw one, before stabilisation).
An additive Holt-Winters model with fixed smoothing factors follows it online, with the shortest
configured season (``forecast.season_lengths_seconds``) in minutes. Each minute the policy holds
the larger of the stabilised HPA recommendation and the rounded-up forecast for the next minute.
Until two full seasons have been seen the model cannot start, and the policy is the HPA alone.
Nodes come from a cluster autoscaler, as in the reactive baseline.
"""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np

from scaler.backtest.policies.base import NodeSizer, PolicyContext, Targets
from scaler.backtest.policies.reactive import HpaRecommender, hpa_recommenders
from scaler.backtest.trace import Observation
from scaler.core.simulator import minutes_for

# Fixed smoothing factors, because the predictive HPA takes them from its configuration rather
# than estimating them: level, trend and season.
ALPHA = 0.3
BETA = 0.01
GAMMA = 0.3


class OnlineHoltWinters:
    """Additive Holt-Winters updated one observation at a time; starts after two seasons."""

    def __init__(self, season_length: int) -> None:
        self.season_length = season_length
        self._buffer: list[float] = []
        self._level = 0.0
        self._trend = 0.0
        self._season: list[float] = []
        self._t = 0
        self.ready = False

    def observe(self, value: float) -> None:
        """Feed the next observation."""
        if self.ready:
            self._update(value)
            return
        self._buffer.append(value)
        if len(self._buffer) >= 2 * self.season_length:
            self._start()

    def forecast(self) -> float | None:
        """Return the forecast for the next step, or None before the model has started."""
        if not self.ready:
            return None
        return self._level + self._trend + self._season[self._t % self.season_length]

    def _start(self) -> None:
        length = self.season_length
        values = np.asarray(self._buffer, dtype=np.float64)
        first, second = values[:length], values[length : 2 * length]
        self._level = float(first.mean())
        self._trend = float(second.mean() - first.mean()) / length
        self._season = [float(v) - self._level for v in first]
        self._t = length
        self.ready = True
        for value in values[length:]:
            self._update(float(value))
        self._buffer = []

    def _update(self, value: float) -> None:
        slot = self._t % self.season_length
        level = ALPHA * (value - self._season[slot]) + (1 - ALPHA) * (self._level + self._trend)
        self._trend = BETA * (level - self._level) + (1 - BETA) * self._trend
        self._season[slot] = GAMMA * (value - level) + (1 - GAMMA) * self._season[slot]
        self._level = level
        self._t += 1


class HoltWintersReplicasPolicy:
    """max(HPA, one-step-ahead Holt-Winters forecast of the HPA's replica recommendations)."""

    name: ClassVar[str] = "holt_winters_replicas"
    sees_future: ClassVar[bool] = False

    def __init__(self, context: PolicyContext) -> None:
        settings = context.settings
        season = minutes_for(min(settings.forecast.season_lengths_seconds))
        self._hpas: dict[str, HpaRecommender] = hpa_recommenders(context)
        self._models = {w.name: OnlineHoltWinters(season) for w in settings.workloads}
        self._capacity = {w.name: w.capacity for w in settings.workloads}
        self._sizer = NodeSizer(settings, context.fleet)
        for name, model in self._models.items():
            hpa = self._hpas[name]
            for demand in context.warmup.demand(name):
                hpa.last_raw = hpa.raw(float(demand))
                model.observe(float(hpa.last_raw))

    def step(self, observation: Observation) -> Targets:
        replicas = {}
        for name, hpa in self._hpas.items():
            current = hpa.recommend(observation.minute, observation.current_demand(name))
            model = self._models[name]
            model.observe(float(hpa.last_raw))
            predicted = model.forecast()
            target = current
            if predicted is not None and math.isfinite(predicted):
                capacity = self._capacity[name]
                ahead = min(max(math.ceil(predicted), capacity.min_replicas), capacity.max_replicas)
                target = max(current, ahead)
            replicas[name] = target
        return Targets(nodes=self._sizer.nodes(replicas), replicas=replicas)
