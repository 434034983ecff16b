"""The report data model that ``peakcast report`` and ``peakcast backtest`` fill.

Renderers (HTML, Markdown, JSON) read only these types, so every format shows the same
numbers. Times are UTC timestamps. GPU counts are whole GPUs unless a field says GPU-minutes
or GPU-hours. Costs are in the currency of ``pools[].price_per_node_hour``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from scaler.backtest.metrics import RunMetrics
from scaler.backtest.misses import BacktestMiss
from scaler.core import decision

ReportKind = Literal["forecast", "backtest"]

# A 30-day month, so that monthly cost is a fixed multiple of daily cost.
MONTH_DAYS = 30

# The floor rules of ``scaler.core.decision`` in the order reports list them: the forecast
# path, the data holds, the live-signal and guardrail rules, then static pools.
FLOOR_RULES = (
    decision.RULE_FORECAST,
    decision.RULE_STABILIZATION,
    decision.RULE_MAX_STEP,
    decision.RULE_BOUNDS,
    decision.RULE_MISSING_DATA_HOLD,
    decision.RULE_SAFE_FLOOR,
    decision.RULE_REACTIVE,
    decision.RULE_OVERRIDE,
    decision.RULE_BUDGET,
    decision.RULE_MAX_NODES_ADDED,
    decision.RULE_COOLDOWN,
    decision.RULE_PAUSED,
    decision.RULE_EXPIRED,
    decision.RULE_STATIC,
)
# The rules that set a floor while a workload's data was unusable or no forecast was available.
UNUSABLE_DATA_RULES = (decision.RULE_MISSING_DATA_HOLD, decision.RULE_SAFE_FLOOR)


@dataclass(frozen=True)
class PoolInfo:
    """A configured GPU node pool as the report shows it."""

    name: str
    kind: str
    gpus_per_node: int
    min_nodes: int
    max_nodes: int
    price_per_node_hour: float


@dataclass(frozen=True)
class WorkloadInfo:
    """A configured workload: its demand unit and what one replica serves and needs."""

    name: str
    unit: str
    throughput_per_replica: float
    target_utilization: float
    gpus_per_replica: int
    pools: tuple[str, ...]


@dataclass(frozen=True)
class LeadTime:
    """The lead time a pool's node floor looks ahead by, split into its phases, in seconds.

    ``source`` is ``configured`` while the values come from the config file.
    """

    pool: str
    node_provisioning_seconds: int
    workload_start_seconds: int
    margin_seconds: int
    source: str = "configured"

    @property
    def total_seconds(self) -> int:
        return self.node_provisioning_seconds + self.workload_start_seconds + self.margin_seconds


@dataclass(frozen=True)
class DemandView:
    """One workload's observed demand and the forecast shown beside it.

    ``history`` is indexed by UTC time in ``unit``. ``forecast`` has the layout of
    ``Forecast.frame()`` (``ds``, ``yhat`` and one ``q<level>`` column per level) in the same
    unit, or is None when no forecast was made. ``spans`` are the shaded peak windows.
    ``misses`` are the forecast misses to mark, as (recorded at, demand in ``unit``).
    """

    workload: str
    unit: str
    history: pd.Series
    forecast: pd.DataFrame | None
    forecast_label: str
    model: str
    spans: tuple[tuple[pd.Timestamp, pd.Timestamp], ...] = ()
    misses: tuple[tuple[pd.Timestamp, float], ...] = ()


@dataclass(frozen=True)
class PlanWindow:
    """A forecast peak window above the base capacity and what it needs at its peak.

    ``peak_demand`` is the highest planning-level forecast per workload (demand unit).
    ``gpus`` counts the GPUs the replicas use per pool and ``nodes`` the nodes per pool, both
    the maximum over the window.
    """

    start: pd.Timestamp
    end: pd.Timestamp
    peak_time: pd.Timestamp
    peak_demand: Mapping[str, float]
    gpus: Mapping[str, int]
    nodes: Mapping[str, int]

    @property
    def duration(self) -> pd.Timedelta:
        return self.end - self.start


@dataclass(frozen=True)
class PoolPlan:
    """One pool's recommended bounds, reserved nodes and cost over the plan's horizon.

    ``recommended_min_nodes`` is the node count needed at every step at the planning level,
    ``recommended_max_nodes`` the highest need at the plan's high level, and
    ``reserved_nodes`` the reserve quantile of the daily peak need. ``mean_nodes`` is the
    mean planning-level requirement within the configured bounds, which the cost is based on.
    Static pools keep their fixed size in every field but the GPUs used.
    """

    name: str
    kind: str
    gpus_per_node: int
    price_per_node_hour: float
    configured_min_nodes: int
    configured_max_nodes: int
    recommended_min_nodes: int
    recommended_max_nodes: int
    peak_nodes: int
    reserved_nodes: int
    mean_nodes: float
    peak_gpus_used: int
    mean_gpus_used: float

    @property
    def base_nodes(self) -> int:
        """Nodes the pool holds at every step: its fixed size, or the burst pool's floor."""
        if self.kind == "static":
            return self.configured_max_nodes
        return max(self.configured_min_nodes, self.recommended_min_nodes)

    @property
    def node_hours_per_day(self) -> float:
        return self.mean_nodes * 24

    @property
    def cost_per_day(self) -> float:
        return self.node_hours_per_day * self.price_per_node_hour

    @property
    def cost_per_month(self) -> float:
        return self.cost_per_day * MONTH_DAYS


@dataclass(frozen=True)
class ReservedCapacity:
    """GPUs to reserve: the reserve quantile of the daily peaks, split into static and burst.

    ``daily_peak_gpus`` holds, per day of the horizon, the highest GPUs held over all pools
    (whole nodes) at the planning level. ``static_gpus`` is the static pools' fixed size and
    ``burst_gpus`` the GPUs of the reserved burst nodes.
    """

    quantile: float
    daily_peak_gpus: tuple[int, ...]
    static_gpus: int
    burst_gpus: int

    @property
    def total_gpus(self) -> int:
        return self.static_gpus + self.burst_gpus


@dataclass(frozen=True)
class CapacityPlan:
    """What the forecast needs per pool over its horizon, at the planning and the high level.

    ``index`` contains the start of every forecast step, ``held_gpus`` the GPUs held per pool at
    each step (whole nodes, planning level, within the configured bounds) and ``needed_gpus``
    the GPUs the replicas use per pool without the configured node bounds.
    """

    cutoff: pd.Timestamp
    step: pd.Timedelta
    planning_level: float
    high_level: float
    index: pd.DatetimeIndex
    windows: tuple[PlanWindow, ...]
    pools: tuple[PoolPlan, ...]
    reserved: ReservedCapacity
    held_gpus: Mapping[str, np.ndarray]
    needed_gpus: Mapping[str, np.ndarray]
    notes: tuple[str, ...] = ()

    @property
    def start(self) -> pd.Timestamp:
        return self.index[0]

    @property
    def end(self) -> pd.Timestamp:
        return self.index[-1] + self.step

    @property
    def cost_per_day(self) -> float:
        return sum(pool.cost_per_day for pool in self.pools)

    @property
    def cost_per_month(self) -> float:
        return self.cost_per_day * MONTH_DAYS


@dataclass(frozen=True)
class BacktestWindow:
    """A high-demand span of the simulated trace (see ``scaler.backtest.metrics``)."""

    start: pd.Timestamp
    end: pd.Timestamp
    peak_demand_gpus: float


@dataclass(frozen=True)
class TargetCheck:
    """The backtest target for one peakcast policy against the reactive and oracle policies.

    The target is met when the policy's under-provisioned GPU-minutes are at most
    ``max_shortfall_share`` of reactive's and its GPU-hours at most ``max_gpu_hours_ratio``
    times the oracle's.
    """

    policy: str
    shortfall_share: float | None
    gpu_hours_ratio: float | None
    max_shortfall_share: float = 0.20
    max_gpu_hours_ratio: float = 1.15

    @property
    def shortfall_met(self) -> bool | None:
        if self.shortfall_share is None:
            return None
        return self.shortfall_share <= self.max_shortfall_share

    @property
    def gpu_hours_met(self) -> bool | None:
        if self.gpu_hours_ratio is None:
            return None
        return self.gpu_hours_ratio <= self.max_gpu_hours_ratio

    @property
    def met(self) -> bool | None:
        if self.shortfall_met is None or self.gpu_hours_met is None:
            return None
        return self.shortfall_met and self.gpu_hours_met


@dataclass(frozen=True)
class CapacityTrace:
    """Per-minute GPUs of a backtest, summed over workloads and pools, for plots.

    ``needed_gpus`` is the demand in GPUs at the SLO (NaN where missing), ``serving_gpus``
    the GPUs of serving replicas per policy, ``billed_gpus`` the GPUs of billed nodes per
    policy (static pools included).
    """

    start: pd.Timestamp
    needed_gpus: np.ndarray
    serving_gpus: Mapping[str, np.ndarray]
    billed_gpus: Mapping[str, np.ndarray]

    @property
    def minutes(self) -> int:
        return len(self.needed_gpus)

    @property
    def index(self) -> pd.DatetimeIndex:
        return pd.date_range(self.start, periods=self.minutes, freq="min")


@dataclass(frozen=True)
class WorkloadMisses:
    """One workload's forecast misses in a backtest (see ``scaler.backtest.misses``).

    ``upper_level`` is the forecast quantile demand was compared with, ``miss_after_seconds``
    how long demand had to stay above it, and ``minutes_above`` the simulated minutes it was
    above. ``demand`` and ``upper`` of each miss are in ``unit``.
    """

    workload: str
    unit: str
    upper_level: float
    planning_level: float
    miss_after_seconds: int
    minutes_above: int
    misses: tuple[BacktestMiss, ...]

    @property
    def count(self) -> int:
        return len(self.misses)

    @property
    def first_at(self) -> pd.Timestamp | None:
        return self.misses[0].at if self.misses else None

    @property
    def last_at(self) -> pd.Timestamp | None:
        return self.misses[-1].at if self.misses else None

    @property
    def widest_level(self) -> float:
        """Widest planning level the misses reached, or the planning level without misses."""
        return max([self.planning_level, *(miss.level for miss in self.misses)])


@dataclass(frozen=True)
class FloorRuleCounts:
    """How many floor decisions of one peakcast policy each rule set, keyed by rule name.

    Each policy cycle decides one floor per pool and per workload, and ``counts`` contains
    them all, the ``static`` floors of static pools included.
    """

    policy: str
    counts: Mapping[str, int]

    @property
    def decisions(self) -> int:
        """Floor decisions without the ``static`` ones, which never depend on data."""
        return sum(n for rule, n in self.counts.items() if rule != decision.RULE_STATIC)

    def share(self, rule: str) -> float | None:
        """Return the share of ``decisions`` set by ``rule``, or None without decisions."""
        if self.decisions == 0:
            return None
        return self.counts.get(rule, 0) / self.decisions

    @property
    def unusable_data_count(self) -> int:
        """Decisions set by ``missing_data_hold`` or ``safe_floor``."""
        return sum(self.counts.get(rule, 0) for rule in UNUSABLE_DATA_RULES)

    @property
    def unusable_data_share(self) -> float | None:
        """Share of ``decisions`` set by ``missing_data_hold`` or ``safe_floor``."""
        if self.decisions == 0:
            return None
        return self.unusable_data_count / self.decisions

    def ordered_counts(self) -> dict[str, int]:
        """Return a count for every rule of ``FLOOR_RULES`` in that order, zeros included.

        A rule outside ``FLOOR_RULES`` follows them, in name order.
        """
        extra = sorted(rule for rule in self.counts if rule not in FLOOR_RULES)
        return {rule: self.counts.get(rule, 0) for rule in (*FLOOR_RULES, *extra)}


@dataclass(frozen=True)
class BacktestSection:
    """Every policy's metrics on one trace, the peak windows and the target checks.

    ``misses`` contains the forecast misses per workload, or is None when no peakcast policy
    ran, so no forecast was compared with demand. ``floor_rules`` contains the rule counts of
    each peakcast policy, or is None when none ran.
    """

    start: pd.Timestamp
    minutes: int
    policies: Mapping[str, RunMetrics]
    windows: tuple[BacktestWindow, ...]
    targets: tuple[TargetCheck, ...]
    capacity: CapacityTrace
    wall_seconds: float | None = None
    misses: tuple[WorkloadMisses, ...] | None = None
    floor_rules: tuple[FloorRuleCounts, ...] | None = None

    @property
    def days(self) -> float:
        return self.minutes / 1440

    @property
    def end(self) -> pd.Timestamp:
        return self.start + pd.Timedelta(minutes=self.minutes)


@dataclass(frozen=True)
class Report:
    """Everything one report shows. ``plan`` and ``backtest`` are the optional sections."""

    kind: ReportKind
    title: str
    source: str
    timezone: str
    start: pd.Timestamp
    end: pd.Timestamp
    pools: tuple[PoolInfo, ...]
    workloads: tuple[WorkloadInfo, ...]
    lead_times: tuple[LeadTime, ...]
    demand: tuple[DemandView, ...]
    summary: tuple[str, ...]
    plan: CapacityPlan | None = None
    backtest: BacktestSection | None = None
    notes: tuple[str, ...] = ()
