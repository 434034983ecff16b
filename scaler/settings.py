"""The peakcast configuration: typed, grouped, frozen and validated once at load.

Units are in the field names. Every error names the key path, the value and what is allowed
(see ``scaler.config_loader``). Secrets are never part of this file: they come from files or
environment variables named here.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from forecaster.settings import (
    DAY_SECONDS,
    ForecastSettings,
    Frozen,
    SourceSettings,
    validate_zone,
)

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")

DemandUnit = Literal["requests_per_second", "tokens_per_second", "gpus"]


def _dns_label(value: str) -> str:
    if not _DNS_LABEL.match(value):
        raise ValueError(
            "must be a DNS-1123 label: lower-case letters, digits and '-', at most 63 characters"
        )
    return value


class DemandSettings(Frozen):
    """Where a workload's demand series comes from and what unit it is in."""

    source: str = Field(description="Name of an entry under 'sources'.")
    series: str = Field(description="CSV column name, or a PromQL expression for Thanos.")
    unit: DemandUnit
    scale: float = Field(
        default=1.0,
        gt=0,
        description="Factor applied to every sample, e.g. 1/300 to turn requests per 5 min "
        "into requests per second.",
    )


class CapacityModel(Frozen):
    """What one replica of a workload sustains and needs."""

    throughput_per_replica: float = Field(
        gt=0, description="Demand one replica sustains at its SLO, in the demand's unit."
    )
    target_utilization: float = Field(
        default=0.8,
        gt=0,
        le=1,
        description="Share of throughput_per_replica planned for; the rest is headroom.",
    )
    gpus_per_replica: int = Field(default=1, ge=1)
    min_replicas: int = Field(default=1, ge=0)
    max_replicas: int = Field(default=100, ge=1)

    @model_validator(mode="after")
    def _min_not_above_max(self) -> CapacityModel:
        if self.min_replicas > self.max_replicas:
            raise ValueError(
                f"min_replicas ({self.min_replicas}) must not exceed "
                f"max_replicas ({self.max_replicas})"
            )
        return self


WorkloadTargetKind = Literal["hpa", "keda", "kserve", "deployment"]


class WorkloadTarget(Frozen):
    """The object that owns the workload's replicas; peakcast writes its floor there."""

    kind: WorkloadTargetKind
    name: str
    namespace: str = "default"


class WorkloadSettings(Frozen):
    """One served model: its demand, capacity model, pools and start-up lead time."""

    name: str
    namespace: str = "default"
    demand: DemandSettings
    capacity: CapacityModel
    pools: list[str] = Field(
        min_length=1,
        description="Pools the workload's replicas may run on; static pools are filled first, "
        "then burst pools in the listed order.",
    )
    workload_start_seconds: int = Field(
        default=300,
        ge=0,
        description="Lead-time phase 2: pod scheduled to serving (image pull, model load).",
    )
    target: WorkloadTarget | None = None

    _name = field_validator("name")(_dns_label)


PoolKind = Literal["static", "burst"]


class PoolSettings(Frozen):
    """A GPU node pool: fixed base capacity ('static') or scaled by peakcast ('burst')."""

    name: str
    kind: PoolKind
    gpus_per_node: int = Field(ge=1)
    min_nodes: int = Field(default=0, ge=0)
    max_nodes: int = Field(ge=1)
    node_provisioning_seconds: int = Field(
        default=600,
        ge=0,
        description="Lead-time phase 1: floor raised to nodes Ready with GPUs allocatable.",
    )
    price_per_node_hour: float = Field(default=0.0, ge=0)
    gpu_type: str | None = None
    safe_min_nodes: int | None = Field(
        default=None,
        ge=0,
        description="Node floor held once data has been missing for "
        "policy.missing_data_hold_seconds; unset keeps the current floor.",
    )

    _name = field_validator("name")(_dns_label)

    @model_validator(mode="after")
    def _bounds(self) -> PoolSettings:
        if self.min_nodes > self.max_nodes:
            raise ValueError(
                f"min_nodes ({self.min_nodes}) must not exceed max_nodes ({self.max_nodes})"
            )
        if self.safe_min_nodes is not None and not (
            self.min_nodes <= self.safe_min_nodes <= self.max_nodes
        ):
            raise ValueError(
                f"safe_min_nodes ({self.safe_min_nodes}) must lie within "
                f"[min_nodes, max_nodes] = [{self.min_nodes}, {self.max_nodes}]"
            )
        return self


class PolicySettings(Frozen):
    """How the plan becomes floors: lead-time margin, scale-down damping, missing data."""

    cycle_interval_seconds: int = Field(default=60, gt=0, description="Plan-and-act period.")
    lead_time_margin_seconds: int = Field(
        default=120, ge=0, description="Added to both lead-time phases for the node floor."
    )
    stabilization_window_seconds: int = Field(
        default=1800,
        ge=0,
        description="A floor only drops to the highest requirement seen in this window.",
    )
    max_scale_down_nodes_per_cycle: int = Field(default=1, ge=1)
    max_scale_down_replicas_per_cycle: int = Field(default=2, ge=1)
    missing_data_hold_seconds: int = Field(
        default=1800,
        ge=0,
        description="How long the current floor is held on missing data before falling back "
        "to each pool's safe_min_nodes.",
    )


class SimulatorSettings(Frozen):
    """Constants of the provisioning simulator used by backtests."""

    scale_down_delay_seconds: int = Field(
        default=600,
        ge=0,
        description="Unneeded nodes are released after this long (cluster-autoscaler's "
        "--scale-down-unneeded-time defaults to 10 min).",
    )
    reactive_stabilization_seconds: int = Field(
        default=300, ge=0, description="Scale-down window of the reactive HPA baseline."
    )


class BacktestSettings(Frozen):
    """Rolling-origin replay of a trace through the simulator."""

    replan_interval_seconds: int = Field(
        default=3600, gt=0, description="Forecasts are updated and re-predicted this often."
    )
    warmup_seconds: int = Field(
        default=7 * DAY_SECONDS,
        gt=0,
        description="History before the first replan; nothing is simulated during it.",
    )
    duration_seconds: int | None = Field(
        default=None, gt=0, description="Simulated span after the warm-up; unset = to the end."
    )


class Settings(Frozen):
    """The whole configuration file."""

    version: Literal[1] = 1
    timezone: str = Field(default="UTC", description="Zone used to read --at and report times.")
    dry_run: bool = Field(
        default=True, description="Print what would change instead of writing to the cluster."
    )
    sources: dict[str, SourceSettings]
    forecast: ForecastSettings = Field(default_factory=ForecastSettings)
    pools: list[PoolSettings] = Field(min_length=1)
    workloads: list[WorkloadSettings] = Field(min_length=1)
    policy: PolicySettings = Field(default_factory=PolicySettings)
    simulator: SimulatorSettings = Field(default_factory=SimulatorSettings)
    backtest: BacktestSettings = Field(default_factory=BacktestSettings)

    _zone = field_validator("timezone")(validate_zone)

    @model_validator(mode="after")
    def _references(self) -> Settings:
        pool_names = [pool.name for pool in self.pools]
        _unique("pools", pool_names)
        _unique("workloads", [workload.name for workload in self.workloads])
        pools = {pool.name: pool for pool in self.pools}
        for workload in self.workloads:
            if workload.demand.source not in self.sources:
                raise ValueError(
                    f"workload {workload.name!r}: demand.source {workload.demand.source!r} is "
                    f"not defined under 'sources' (defined: {', '.join(sorted(self.sources))})"
                )
            for pool_name in workload.pools:
                if pool_name not in pools:
                    raise ValueError(
                        f"workload {workload.name!r}: pool {pool_name!r} is not defined under "
                        f"'pools' (defined: {', '.join(pool_names)})"
                    )
                gpus_per_node = pools[pool_name].gpus_per_node
                if workload.capacity.gpus_per_replica > gpus_per_node:
                    raise ValueError(
                        f"workload {workload.name!r}: capacity.gpus_per_replica "
                        f"({workload.capacity.gpus_per_replica}) exceeds gpus_per_node "
                        f"({gpus_per_node}) of pool {pool_name!r}; a replica must fit on a node"
                    )
        return self

    def pool(self, name: str) -> PoolSettings:
        """Return the pool called ``name``."""
        for pool in self.pools:
            if pool.name == name:
                return pool
        raise KeyError(name)

    def workload(self, name: str) -> WorkloadSettings:
        """Return the workload called ``name``."""
        for workload in self.workloads:
            if workload.name == name:
                return workload
        raise KeyError(name)


def _unique(key: str, names: list[str]) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise ValueError(f"{key}: name {name!r} is used twice; names must be unique")
        seen.add(name)
