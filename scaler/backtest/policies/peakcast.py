"""peakcast in the backtest, alone and combined with the reactive HPA.

``peakcast`` is predictive alone: the replica target is the workload floor and the node target
is the pool floor that the policy decides. ``peakcast+reactive`` is what a cluster runs with the
HPA still active above the floor. Its replicas are the larger of the floor and the HPA's
recommendation. Its nodes are the larger of the pool floor and the nodes those replicas need
(the cluster autoscaler's part).

The forecast engine is refitted every ``forecast.refit_interval_seconds``, updated and
re-predicted every ``backtest.replan_interval_seconds``, and the policy runs every
``policy.cycle_interval_seconds``, all counted from the first simulated minute. Both variants of
one backtest share one planner, so the forecasts are computed once.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Mapping
from typing import ClassVar

from forecaster.forecast import Forecast
from scaler.backtest.planner import PeakcastPlanner
from scaler.backtest.policies.base import NodeSizer, PolicyContext, Targets
from scaler.backtest.policies.reactive import ReactivePolicy
from scaler.backtest.trace import MINUTE, Observation
from scaler.core.simulator import minutes_for

_SHARED_KEY = "peakcast_floors"


class PeakcastFloors:
    """The planner driven minute by minute, with its floors recorded so they can be read again.

    Minutes must be requested in increasing order the first time. A minute already computed
    returns the recorded floors, which only used data up to that minute. The planner records
    the time of every kept forecast, so ``forecasts_at`` returns the forecasts a minute could
    see even after later replans have run.
    """

    def __init__(self, context: PolicyContext) -> None:
        if context.engine is None:
            raise ValueError("peakcast policies need a forecast engine in PolicyContext.engine")
        settings = context.settings
        self._workloads = [w.name for w in settings.workloads]
        self._burst = [p.name for p in settings.pools if p.kind == "burst"]
        self._first_minute = context.warmup.minute + 1
        self._replan_minutes = minutes_for(settings.backtest.replan_interval_seconds)
        self._cycle_minutes = minutes_for(settings.policy.cycle_interval_seconds)
        self.planner = PeakcastPlanner(
            settings,
            context.fleet,
            context.engine,
            log_level=context.log_level,
            keep_forecasts=True,
        )
        self._recorded: list[Targets] = []
        self._minute_zero = context.warmup.now - context.warmup.minute * MINUTE

    def at(self, observation: Observation) -> Targets:
        """Return the floors held during the observation's minute."""
        elapsed = observation.minute - self._first_minute
        if elapsed < len(self._recorded):
            return self._recorded[elapsed]
        if elapsed != len(self._recorded):
            raise ValueError(
                f"peakcast floors were requested for minute {observation.minute} before minute "
                f"{self._first_minute + len(self._recorded)}; step minutes in order"
            )
        targets = self._recorded[-1] if self._recorded else None
        if elapsed % self._replan_minutes == 0:
            histories = {name: observation.history(name) for name in self._workloads}
            self.planner.replan(observation.now, histories)
        if elapsed % self._cycle_minutes == 0 or targets is None:
            data = [observation.data_status(name) for name in self._workloads]
            self.planner.cycle(observation.now, data)
            floors = self.planner.floors
            decided = Targets(
                nodes={name: floors.pools[name] for name in self._burst},
                replicas=dict(floors.workloads),
            )
            # Reuse the previous object while nothing changes, to keep the record small.
            targets = targets if decided == targets else decided
        self._recorded.append(targets)
        return targets

    def forecasts_at(self, minute: int) -> Mapping[str, Forecast] | None:
        """Return the newest forecasts made at or before ``minute``; None before the first.

        The result is only complete for minutes already passed to ``at``, because later replans
        have not run yet.
        """
        count = bisect_right(self.planner.forecast_times, self._minute_zero + minute * MINUTE)
        if count == 0:
            return None
        return self.planner.forecasts[count - 1]


def shared_floors(context: PolicyContext) -> PeakcastFloors:
    """Return the backtest's one ``PeakcastFloors``, creating it on first use."""
    found = context.shared.get(_SHARED_KEY)
    if not isinstance(found, PeakcastFloors):
        found = PeakcastFloors(context)
        context.shared[_SHARED_KEY] = found
    return found


class PeakcastPolicy:
    """The floors peakcast decides, with nothing reactive on top."""

    name: ClassVar[str] = "peakcast"
    sees_future: ClassVar[bool] = False

    def __init__(self, context: PolicyContext) -> None:
        self.floors = shared_floors(context)

    def step(self, observation: Observation) -> Targets:
        return self.floors.at(observation)


class PeakcastReactivePolicy:
    """peakcast's floors with the HPA and the cluster autoscaler active above them."""

    name: ClassVar[str] = "peakcast+reactive"
    sees_future: ClassVar[bool] = False

    def __init__(self, context: PolicyContext) -> None:
        self.floors = shared_floors(context)
        self._reactive = ReactivePolicy(context)
        self._sizer = NodeSizer(context.settings, context.fleet)

    def step(self, observation: Observation) -> Targets:
        floors = self.floors.at(observation)
        hpa = self._reactive.replicas(observation)
        replicas = {name: max(floors.replicas[name], hpa[name]) for name in hpa}
        needed = self._sizer.nodes(replicas)
        nodes = {name: max(floors.nodes[name], needed[name]) for name in floors.nodes}
        return Targets(nodes=nodes, replicas=replicas)
