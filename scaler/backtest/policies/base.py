"""The protocol every backtest policy implements, and the helpers policies share.

A policy is stepped once per simulated minute with an ``Observation`` that contains nothing
after that minute, and returns its targets: a node target per burst pool and a replica target per
workload. Only the oracle is also given the future, through ``PolicyContext.future``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import ClassVar, Protocol

from scaler.backtest.forecasting import ForecastEngine
from scaler.backtest.trace import Observation, Trace
from scaler.core.capacity import Fleet
from scaler.settings import Settings


@dataclass(frozen=True)
class Targets:
    """The targets of one minute: nodes per burst pool, replicas per workload."""

    nodes: Mapping[str, int]
    replicas: Mapping[str, int]


@dataclass(frozen=True)
class PolicyContext:
    """The inputs a policy is built from.

    ``warmup`` is the trace as seen at the last warm-up minute. ``future`` is the whole trace
    and is set only for a policy whose class sets ``sees_future``. ``shared`` contains components
    that several policies of one backtest reuse, such as peakcast's planner.
    """

    settings: Settings
    fleet: Fleet
    warmup: Observation
    engine: ForecastEngine | None = None
    log_level: int = logging.DEBUG
    future: Trace | None = None
    shared: dict[str, object] = field(default_factory=dict)


class BacktestPolicy(Protocol):
    """A scaling policy replayed on a trace, one call per simulated minute."""

    name: ClassVar[str]
    sees_future: ClassVar[bool]

    def __init__(self, context: PolicyContext) -> None: ...

    def step(self, observation: Observation) -> Targets:
        """Return the targets to hold during the observation's minute."""
        ...


class NodeSizer:
    """Nodes per burst pool that host given replica counts, as a cluster autoscaler adds them.

    A cluster autoscaler adds nodes when replicas are pending and counts nodes still booting
    as upcoming capacity, so its node target is the placement of the replica targets.
    Results are cached, because replica counts repeat.
    """

    def __init__(self, settings: Settings, fleet: Fleet) -> None:
        self._fleet = fleet
        self._burst = [pool.name for pool in settings.pools if pool.kind == "burst"]
        self._cache: dict[tuple[int, ...], dict[str, int]] = {}

    def nodes(self, replicas: Mapping[str, int]) -> dict[str, int]:
        key = tuple(replicas[name] for name in self._fleet.workloads)
        found = self._cache.get(key)
        if found is None:
            placement = self._fleet.place(replicas)
            found = {name: int(placement.nodes[name]) for name in self._burst}
            self._cache[key] = found
        return found
