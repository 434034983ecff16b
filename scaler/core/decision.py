"""The decision one planning cycle produces, shared by the policy, actuators, CLI and reports."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import pandas as pd

FloorKind = Literal["pool", "workload"]

# Machine-readable tags of the rule that set a floor; the CLI, logs and metrics use them.
RULE_FORECAST = "forecast"  # the forecast quantile over the lead-time window
RULE_STABILIZATION = "stabilization"  # held at the highest requirement in the window
RULE_MAX_STEP = "max_step"  # scale-down limited to the per-cycle step
RULE_BOUNDS = "bounds"  # clamped to min/max
RULE_MISSING_DATA_HOLD = "missing_data_hold"  # data missing: current floor held
RULE_SAFE_FLOOR = "safe_floor"  # data missing for too long: configured safe floor
RULE_STATIC = "static"  # static pool: fixed size
RULE_REACTIVE = "reactive"  # a live signal raised the floor above the forecast
RULE_OVERRIDE = "override"  # an operator override raised the floor inside its window
RULE_BUDGET = "budget"  # capped by a GPU-hour budget of the pool, its cluster or the fleet
RULE_MAX_NODES_ADDED = "max_nodes_added"  # scale-up limited to the per-cycle node step
RULE_COOLDOWN = "cooldown"  # held because the floor changed too recently
RULE_PAUSED = "paused"  # paused by the operator: the current floor is kept, nothing written
RULE_EXPIRED = "expired"  # not renewed in time: returned to the configured baseline


@dataclass(frozen=True)
class FloorDecision:
    """The floor to hold now for one pool (in nodes) or one workload (in replicas)."""

    kind: FloorKind
    name: str
    desired: int
    current: int | None
    rule: str
    reason: str
    forecast_level: float | None = None
    forecast_value: float | None = None
    window_start: pd.Timestamp | None = None
    window_end: pd.Timestamp | None = None

    @property
    def unit(self) -> str:
        return "nodes" if self.kind == "pool" else "replicas"

    @property
    def changes(self) -> bool:
        return self.current != self.desired


@dataclass(frozen=True)
class DataStatus:
    """How trustworthy one workload's history was in this cycle."""

    workload: str
    coverage: float
    last_observed: pd.Timestamp | None
    usable: bool
    reason: str = ""


@dataclass(frozen=True)
class CycleDecision:
    """Everything one cycle decided at ``at``: pool floors, workload floors, data status."""

    at: pd.Timestamp
    pools: tuple[FloorDecision, ...]
    workloads: tuple[FloorDecision, ...]
    data: tuple[DataStatus, ...] = field(default_factory=tuple)

    def all_floors(self) -> tuple[FloorDecision, ...]:
        return self.pools + self.workloads
