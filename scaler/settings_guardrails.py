"""Settings of the operator's controls and limits: pauses, overrides, floor expiry, budgets,
measured capacity and several clusters.

``scaler.settings`` composes these classes into the full configuration and calls
``check_guardrail_references`` once every pool and workload is known.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, field_validator, model_validator

from forecaster.settings import Frozen, validate_zone

if TYPE_CHECKING:
    from scaler.settings import Settings

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
ClusterRole = Literal["management", "workload"]

# Written in demand.series or a PromQL gate query, it is replaced by the label value of the
# workload's cluster (clusters[].thanos_label_value) when the config is loaded.
CLUSTER_PLACEHOLDER = "$cluster"


def parse_time_of_day(text: str) -> dt.time:
    """Parse ``HH:MM`` (or ``HH:MM:SS``) as a time of day."""
    try:
        return dt.time.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a time of day such as '09:00'") from None


def parse_local_datetime(text: str) -> dt.datetime:
    """Parse an ISO 8601 date and time without an offset, such as ``2026-05-08T09:00``."""
    try:
        parsed = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a date and time such as '2026-05-08T09:00'") from None
    if parsed.tzinfo is not None:
        raise ValueError(
            f"{text!r} carries a UTC offset; write the local time and set 'timezone' instead, "
            "so the window follows daylight saving time"
        )
    return parsed


class OverrideSettings(Frozen):
    """A floor an operator sets for a time window: a launch, a load test, a known event.

    Inside its window the floor is at least the override; outside it the override does
    nothing. Without ``days`` the window is one span of local date-times, from ``start`` to
    ``end``. With ``days`` it repeats every week on those days, from time ``start`` to time
    ``end``, and a window whose end is not after its start runs past midnight.
    """

    name: str
    pool: str | None = Field(default=None, description="Burst pool the floor applies to.")
    workload: str | None = Field(default=None, description="Workload the floor applies to.")
    min_nodes: int | None = Field(default=None, ge=0, description="Node floor of the pool.")
    min_gpus: int | None = Field(
        default=None,
        ge=1,
        description="GPUs needed: ceil(min_gpus / gpus_per_node) nodes of a pool, or "
        "ceil(min_gpus / gpus_per_replica) replicas of a workload.",
    )
    min_replicas: int | None = Field(default=None, ge=0, description="Replica floor.")
    timezone: str = Field(default="UTC", description="IANA zone that start and end are read in.")
    start: str = Field(description="Local date-time, or a time of day such as '09:00' with days.")
    end: str = Field(description="Local date-time, or a time of day such as '18:00' with days.")
    days: list[Weekday] | None = Field(
        default=None, description="Weekdays of a weekly window; unset means a one-off window."
    )
    reason: str = Field(default="", description="Shown in logs, Events and 'peakcast status'.")

    _zone = field_validator("timezone")(validate_zone)

    @field_validator("start", "end", mode="before")
    @classmethod
    def _as_text(cls, value: Any) -> Any:
        # YAML reads an unquoted 2026-05-08T09:00:00 as a datetime and 09:00 as the integer 540.
        if isinstance(value, dt.datetime | dt.date):
            return value.isoformat()
        if isinstance(value, int):
            raise ValueError("quote times of day, such as '09:00'; YAML reads 09:00 as a number")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> OverrideSettings:
        if (self.pool is None) == (self.workload is None):
            raise ValueError("set exactly one of 'pool' and 'workload'")
        if self.pool is not None:
            _exactly_one(self, ("min_nodes", "min_gpus"), "a pool override")
        else:
            _exactly_one(self, ("min_replicas", "min_gpus"), "a workload override")
        if self.days is not None:
            if not self.days:
                raise ValueError("days must name at least one weekday, or be left out")
            if parse_time_of_day(self.start) == parse_time_of_day(self.end):
                raise ValueError("start and end must differ")
        elif parse_local_datetime(self.end) <= parse_local_datetime(self.start):
            raise ValueError("end must be after start")
        return self

    @property
    def target(self) -> tuple[str, str]:
        """Return (kind, name) of the floor: ("pool", name) or ("workload", name)."""
        if self.pool is not None:
            return "pool", self.pool
        return "workload", str(self.workload)

    def describe(self) -> str:
        """Return the window in words, such as 'fri 09:00-18:00 Europe/Berlin'."""
        if self.days is None:
            return f"{self.start} to {self.end} {self.timezone}"
        return f"{','.join(self.days)} {self.start}-{self.end} {self.timezone}"


def _exactly_one(model: Frozen, names: tuple[str, str], subject: str) -> None:
    present = [name for name in names if getattr(model, name) is not None]
    if len(present) != 1:
        raise ValueError(f"{subject} sets exactly one of {names[0]!r} and {names[1]!r}")


class PoolLimitSettings(Frozen):
    """Limits of one pool that override the fleet-wide ones."""

    max_gpu_hours_per_day: float | None = Field(
        default=None,
        gt=0,
        description="GPU-hours the pool's floor may hold per day (see budget_timezone).",
    )
    max_nodes_added_per_cycle: int | None = Field(
        default=None, ge=1, description="Largest raise of the pool's node floor in one cycle."
    )


class GuardrailSettings(Frozen):
    """Operator controls and spending limits that apply on top of the forecast."""

    paused: bool = Field(
        default=False,
        description="Freeze every floor: peakcast keeps forecasting and reporting but writes "
        "nothing. The annotation 'peakcast.io/paused' on one object pauses that object alone.",
    )
    paused_pools: list[str] = Field(
        default_factory=list, description="Pools whose floor is frozen."
    )
    paused_workloads: list[str] = Field(
        default_factory=list, description="Workloads whose floor is frozen."
    )
    overrides: list[OverrideSettings] = Field(default_factory=list)
    floor_ttl_seconds: int = Field(
        default=3600,
        ge=60,
        description="A floor peakcast wrote expires this long after its last renewal. Each "
        "write renews it, and a cycle renews it once less than half of it is left. "
        "'peakcast expire-floors' returns expired floors to their baseline.",
    )
    revert_backoff_seconds: int = Field(
        default=3600,
        ge=0,
        description="After another field manager reverted a floor peakcast wrote (a GitOps "
        "sync, a manual edit), peakcast leaves that field alone for this long.",
    )
    budget_timezone: str = Field(
        default="UTC", description="Zone whose midnight starts a new GPU-hour budget day."
    )
    max_gpu_hours_per_day: float | None = Field(
        default=None,
        gt=0,
        description="GPU-hours all burst pools' floors may hold per day together; with "
        "'clusters', each cluster's own limit applies as well.",
    )
    max_nodes_added_per_cycle: int | None = Field(
        default=None, ge=1, description="Largest raise of any pool's node floor in one cycle."
    )
    pools: dict[str, PoolLimitSettings] = Field(
        default_factory=dict, description="Limits per pool name, overriding the ones above."
    )
    scale_up_cooldown_seconds: int = Field(
        default=0, ge=0, description="A floor is not raised again sooner after its last change."
    )
    scale_down_cooldown_seconds: int = Field(
        default=0, ge=0, description="A floor is not lowered sooner after its last change."
    )

    _zone = field_validator("budget_timezone")(validate_zone)

    def pool_limits(self, pool: str) -> PoolLimitSettings:
        """Return the limits of ``pool``, with the fleet-wide values filled in."""
        own = self.pools.get(pool, PoolLimitSettings())
        return PoolLimitSettings(
            max_gpu_hours_per_day=own.max_gpu_hours_per_day,
            max_nodes_added_per_cycle=own.max_nodes_added_per_cycle
            or self.max_nodes_added_per_cycle,
        )


class ClusterSettings(Frozen):
    """One Kubernetes cluster peakcast writes to, and its label value in Thanos."""

    name: str
    role: ClusterRole = Field(
        description="'management' holds the Crossplane GPUNodePools; 'workload' runs the "
        "serving workloads, their HPAs and the GPU nodes."
    )
    kubeconfig_path: Path | None = Field(
        default=None, description="Kubeconfig file; unset uses $KUBECONFIG or ~/.kube/config."
    )
    context: str | None = Field(default=None, description="Kubeconfig context; unset = current.")
    host: str | None = Field(
        default=None,
        description="Plain API server URL without credentials (a local proxy or a test server); "
        "overrides the kubeconfig.",
    )
    thanos_label_value: str | None = Field(
        default=None,
        description="Value of the cluster label in Thanos, substituted for $cluster in the "
        "queries of this cluster's workloads; unset uses the name.",
    )
    max_gpu_hours_per_day: float | None = Field(
        default=None, gt=0, description="GPU-hours the cluster's burst pools may hold per day."
    )

    @property
    def label_value(self) -> str:
        return self.thanos_label_value or self.name


class CapacityMeasurementSettings(Frozen):
    """History from which the throughput one replica sustains at its SLO is estimated.

    Demand must count arrivals (queued and rejected requests too): completions stop growing
    at capacity, so they hide the load at which latency breaks the SLO.
    """

    source: str = Field(description="Name of an entry under 'sources'.")
    replicas_series: str = Field(description="Serving replicas: a CSV column or a query.")
    latency_p95_series: str = Field(description="p95 latency in seconds: a CSV column or query.")
    slo_p95_latency_seconds: float = Field(gt=0, description="The SLO on p95 latency.")
    version_series: str | None = Field(
        default=None,
        description="Model version per step (a CSV column or query); a change starts a new "
        "estimate from the samples after it.",
    )
    bootstrap_samples: int = Field(default=200, ge=20, le=5000)
    min_samples: int = Field(
        default=100, ge=20, description="Steps needed since the newest version change."
    )


def substitute_cluster_labels(raw: Any) -> Any:
    """Replace ``$cluster`` in the queries of each workload with its cluster's label value.

    Runs on the raw config mapping before validation. A workload without a cluster keeps the
    placeholder, and ``check_guardrail_references`` then reports it.
    """
    if not isinstance(raw, dict) or not isinstance(raw.get("clusters"), list):
        return raw
    clusters = [
        c for c in raw["clusters"] if isinstance(c, dict) and isinstance(c.get("name"), str)
    ]
    labels = {c["name"]: c.get("thanos_label_value") or c["name"] for c in clusters}
    serving = [c["name"] for c in clusters if c.get("role") == "workload"]
    default = serving[0] if len(serving) == 1 else None
    workloads = raw.get("workloads")
    if not isinstance(workloads, list):
        return raw
    copied = dict(raw)
    copied["workloads"] = [_with_label(w, labels, default) for w in workloads]
    return copied


def _with_label(workload: Any, labels: Mapping[str, str], default: str | None) -> Any:
    if not isinstance(workload, dict):
        return workload
    label = labels.get(workload.get("cluster") or default or "")
    if label is None:
        return workload
    updated = dict(workload)
    for key, field in (("demand", "series"), ("gate", "query")):
        part = updated.get(key)
        if isinstance(part, dict) and isinstance(part.get(field), str):
            updated[key] = {**part, field: part[field].replace(CLUSTER_PLACEHOLDER, label)}
    return updated


def workload_cluster(settings: Settings, workload: str) -> str | None:
    """Return the cluster a workload runs in; None in a single-cluster config."""
    if not settings.clusters:
        return None
    named = settings.workload(workload).cluster
    return named or _only_workload_cluster(settings)


def pool_cluster(settings: Settings, pool: str) -> str | None:
    """Return the cluster a pool's nodes join; None in a single-cluster config."""
    if not settings.clusters:
        return None
    named = settings.pool(pool).cluster
    return named or _only_workload_cluster(settings)


def management_cluster(settings: Settings) -> str | None:
    """Return the name of the cluster with role 'management', if one is configured."""
    for cluster in settings.clusters:
        if cluster.role == "management":
            return cluster.name
    return None


def _only_workload_cluster(settings: Settings) -> str | None:
    serving = [c.name for c in settings.clusters if c.role == "workload"]
    return serving[0] if len(serving) == 1 else None


def check_guardrail_references(settings: Settings) -> None:
    """Raise ValueError for a name in guardrails or clusters that the config does not define.

    A workload that names an unknown pool is left to the pool check of ``Settings``, which
    reports it.
    """
    known = {pool.name for pool in settings.pools}
    if any(name not in known for workload in settings.workloads for name in workload.pools):
        return
    _check_clusters(settings)
    _check_controls(settings)
    _check_baselines(settings)
    ttl = settings.guardrails.floor_ttl_seconds
    cycle = settings.policy.cycle_interval_seconds
    if ttl < 2 * cycle:
        raise ValueError(
            f"guardrails.floor_ttl_seconds ({ttl}) must be at least twice "
            f"policy.cycle_interval_seconds ({cycle}), so a floor is renewed before it expires"
        )


def _check_controls(settings: Settings) -> None:
    guardrails = settings.guardrails
    pools = {pool.name: pool for pool in settings.pools}
    workloads = {workload.name for workload in settings.workloads}
    for name in [*guardrails.paused_pools, *guardrails.pools]:
        if name not in pools:
            raise ValueError(f"guardrails: pool {name!r} is not defined under 'pools'")
    for name in guardrails.paused_workloads:
        if name not in workloads:
            raise ValueError(f"guardrails: workload {name!r} is not defined under 'workloads'")
    for override in guardrails.overrides:
        kind, name = override.target
        if kind == "workload" and name not in workloads:
            raise ValueError(
                f"guardrails.overrides {override.name!r}: workload {name!r} is not defined"
            )
        if kind == "pool" and name not in pools:
            raise ValueError(
                f"guardrails.overrides {override.name!r}: pool {name!r} is not defined"
            )
        if kind == "pool" and pools[name].kind == "static":
            raise ValueError(
                f"guardrails.overrides {override.name!r}: pool {name!r} is static, so its size "
                "is fixed at max_nodes; set the override on a burst pool"
            )


def _check_baselines(settings: Settings) -> None:
    for pool in settings.pools:
        if pool.baseline_nodes is not None and not (
            pool.min_nodes <= pool.baseline_nodes <= pool.max_nodes
        ):
            raise ValueError(
                f"pool {pool.name!r}: baseline_nodes ({pool.baseline_nodes}) must lie within "
                f"[min_nodes, max_nodes] = [{pool.min_nodes}, {pool.max_nodes}]"
            )
    for workload in settings.workloads:
        capacity = workload.capacity
        baseline = workload.baseline_replicas
        if baseline is not None and not (
            capacity.min_replicas <= baseline <= capacity.max_replicas
        ):
            raise ValueError(
                f"workload {workload.name!r}: baseline_replicas ({baseline}) must lie within "
                f"[min_replicas, max_replicas] = [{capacity.min_replicas}, "
                f"{capacity.max_replicas}]"
            )
        if CLUSTER_PLACEHOLDER in workload.demand.series:
            raise ValueError(
                f"workload {workload.name!r}: demand.series uses {CLUSTER_PLACEHOLDER} but the "
                "workload has no cluster; set 'cluster', or define exactly one workload cluster"
            )
        measurement = workload.capacity_measurement
        if measurement is not None and measurement.source not in settings.sources:
            raise ValueError(
                f"workload {workload.name!r}: capacity_measurement.source "
                f"{measurement.source!r} is not defined under 'sources'"
            )


def _check_clusters(settings: Settings) -> None:
    names = [cluster.name for cluster in settings.clusters]
    if len(set(names)) != len(names):
        raise ValueError("clusters: every cluster needs its own name")
    roles = {cluster.name: cluster.role for cluster in settings.clusters}
    if sum(1 for role in roles.values() if role == "management") > 1:
        raise ValueError("clusters: at most one cluster may have role 'management'")
    named = [("pool", p.name, p.cluster) for p in settings.pools] + [
        ("workload", w.name, w.cluster) for w in settings.workloads
    ]
    if not settings.clusters:
        for kind, name, cluster in named:
            if cluster is not None:
                raise ValueError(f"{kind} {name!r}: cluster {cluster!r} is set but no 'clusters'")
        return
    for kind, name, cluster in named:
        if cluster is not None and roles.get(cluster) != "workload":
            raise ValueError(
                f"{kind} {name!r}: cluster {cluster!r} must name a cluster with role 'workload' "
                f"(defined: {', '.join(names)})"
            )
    for workload in settings.workloads:
        home = workload_cluster(settings, workload.name)
        if home is None:
            raise ValueError(
                f"workload {workload.name!r}: set 'cluster', because several workload clusters "
                "are defined"
            )
        for pool in workload.pools:
            if pool_cluster(settings, pool) != home:
                raise ValueError(
                    f"workload {workload.name!r} runs in cluster {home!r} but its pool "
                    f"{pool!r} is in cluster {pool_cluster(settings, pool)!r}"
                )
