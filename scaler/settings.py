"""The peakcast configuration: typed, grouped, frozen and validated once at load.

Units are in the field names. Every error names the key path, the value and what is allowed
(see ``scaler.config_loader``). Secrets are never part of this file: they come from files or
environment variables named here.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from forecaster.settings import (
    DAY_SECONDS,
    ForecastSettings,
    Frozen,
    SourceSettings,
    validate_zone,
)
from scaler.settings_guardrails import (
    CapacityMeasurementSettings,
    ClusterSettings,
    GuardrailSettings,
    check_guardrail_references,
    substitute_cluster_labels,
)
from scaler.settings_simulator import (
    PoolProvisioningSettings,
    WorkloadProvisioningSettings,
    check_simulator_references,
)
from scaler.signals.settings import (
    FastLoopSettings,
    PoolSignalSettings,
    WorkloadSignalSettings,
    check_signal_references,
)

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")

DemandUnit = Literal["requests_per_second", "tokens_per_second", "gpus"]


class InvalidReferenceError(ValueError):
    """A value that names something the config does not define; ``key`` is its key path."""

    def __init__(self, key: str, value: object, message: str) -> None:
        super().__init__(message)
        self.key = key
        self.value = value


def _dns_label(value: str) -> str:
    if not _DNS_LABEL.match(value):
        raise ValueError(
            "must be a DNS-1123 label: lower-case letters, digits and '-', at most 63 characters"
        )
    return value


class DemandSettings(Frozen):
    """Source and unit of a workload's demand series."""

    source: str = Field(description="Name of an entry under 'sources'.")
    series: str = Field(description="CSV column name, or a PromQL expression for Thanos.")
    unit: DemandUnit
    scale: float = Field(
        default=1.0,
        gt=0,
        description="Factor applied to every sample, e.g. 1/300 to turn requests per 5 min "
        "into requests per second.",
    )
    step_seconds: int | None = Field(
        default=None,
        gt=0,
        description="Sample step history is read at; unset uses a CSV trace's own step, "
        "or 60 s for Thanos.",
    )


class CapacityModel(Frozen):
    """Throughput one replica of a workload sustains, and the GPUs and replica bounds it needs."""

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


class PoolReadyGateSettings(Frozen):
    """Gate that passes once every pool the workload runs on holds its node target GPU-ready."""

    kind: Literal["pool_ready"] = "pool_ready"


PromqlOperator = Literal["<", "<=", ">", ">=", "==", "!="]


class PromqlGateSettings(Frozen):
    """Gate that passes while one PromQL instant query meets an objective (Thanos or Prometheus)."""

    kind: Literal["promql"]
    source: str = Field(
        description="Name of a 'thanos' entry under 'sources'; its URL and credentials are used."
    )
    query: str = Field(description="Instant query that returns exactly one sample.")
    operator: PromqlOperator
    threshold: float = Field(description="The sample passes when 'sample <operator> threshold'.")
    timeout_seconds: float = Field(default=10.0, gt=0, description="HTTP timeout of the query.")


class KeptnGateSettings(Frozen):
    """Gate that creates a Keptn ``metrics.keptn.sh/v1`` Analysis and reads its pass/fail."""

    kind: Literal["keptn"]
    analysis_definition: str = Field(description="Name of the AnalysisDefinition to run.")
    namespace: str | None = Field(
        default=None,
        description="Namespace of the AnalysisDefinition and of the Analysis peakcast creates; "
        "unset uses the workload's namespace.",
    )
    timeframe_seconds: int = Field(
        default=300, gt=0, description="Analysis timeframe ('recent'), ending at evaluation time."
    )
    timeout_seconds: float = Field(
        default=60.0,
        ge=0,
        description="How long one evaluation waits for the Analysis to complete before the "
        "floor is held; the next cycle reads the same Analysis again.",
    )
    poll_interval_seconds: float = Field(default=2.0, gt=0)
    args: dict[str, str] = Field(
        default_factory=dict,
        description="Template arguments of the AnalysisValueTemplates; 'workload' and "
        "'namespace' are always added.",
    )


GateSettings = Annotated[
    PoolReadyGateSettings | PromqlGateSettings | KeptnGateSettings, Field(discriminator="kind")
]


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
    gate: GateSettings = Field(
        default_factory=PoolReadyGateSettings,
        description="Check that must pass before the workload floor is raised.",
    )
    cluster: str | None = Field(
        default=None,
        description="Workload cluster the workload runs in (see 'clusters'); unset in a "
        "single-cluster config, or when exactly one workload cluster is defined.",
    )
    baseline_replicas: int | None = Field(
        default=None,
        ge=0,
        description="Replica floor an expired floor returns to; unset uses capacity.min_replicas.",
    )
    capacity_measurement: CapacityMeasurementSettings | None = Field(
        default=None,
        description="Where the history to estimate throughput_per_replica from is read.",
    )
    signals: WorkloadSignalSettings | None = Field(
        default=None,
        description="Live signals that raise the replica floor at once, beside the forecast.",
    )

    _name = field_validator("name")(_dns_label)

    @property
    def baseline(self) -> int:
        """Return the replica floor an expired floor returns to."""
        if self.baseline_replicas is not None:
            return self.baseline_replicas
        return self.capacity.min_replicas


PoolKind = Literal["static", "burst"]


class _PoolActuatorBase(Frozen):
    """Settings of every node-side actuator: how nodes are found, when they count as failed."""

    node_selector: dict[str, str] | None = Field(
        default=None,
        description="Labels of the pool's nodes; unset means {'peakcast.io/pool': <pool name>}.",
    )
    gpu_init_timeout_seconds: int = Field(
        default=900,
        gt=0,
        description="A node that is up but has no nvidia.com/gpu allocatable counts as coming "
        "for this long after it registered, then as failed (driver and device plugin start).",
    )
    node_arrival_timeout_seconds: int = Field(
        default=1800,
        gt=0,
        description="Nodes requested but not registered after this long mark the pool "
        "unavailable; raised to 1.5 x the measured p95 provisioning time when that is longer.",
    )
    capacity_error_backoff_seconds: int = Field(
        default=900,
        gt=0,
        description="After a capacity or quota error the pool is not raised for this long and "
        "burst pools listed after it take the missing GPUs.",
    )
    gpu_quota: int | None = Field(
        default=None,
        ge=0,
        description="GPUs the cloud quota allows for this pool; the node target is capped at "
        "gpu_quota // gpus_per_node. Unset means no known quota.",
    )


class GPUNodePoolActuatorSettings(_PoolActuatorBase):
    """The pool is peakcast's own Crossplane GPUNodePool; peakcast sets spec.desiredNodes."""

    mode: Literal["gpunodepool"]
    name: str
    namespace: str = "default"

    def describe(self) -> tuple[str, str]:
        """Return the object and field path peakcast writes."""
        return f"GPUNodePool {self.namespace}/{self.name}", "spec.desiredNodes"


class PlaceholderActuatorSettings(_PoolActuatorBase):
    """Pause pods of negative priority hold GPUs so a cluster autoscaler brings nodes early."""

    mode: Literal["placeholder"]
    deployment_name: str
    deployment_namespace: str = "default"
    gpus_per_pod: int | None = Field(
        default=None,
        ge=1,
        description="GPUs one placeholder pod requests; unset means gpus_per_node (one pod "
        "holds one node).",
    )

    def describe(self) -> tuple[str, str]:
        """Return the object and field path peakcast writes."""
        return f"Deployment {self.deployment_namespace}/{self.deployment_name}", "spec.replicas"


class CustomFieldActuatorSettings(_PoolActuatorBase):
    """An integer field of any other resource (a claim, a CapacityBuffer, an in-house pool API)."""

    mode: Literal["custom_field"]
    api_version: str = Field(description="For example 'example.org/v1'.")
    kind: str
    plural: str = Field(description="Resource name in the URL, for example 'capacitybuffers'.")
    name: str
    namespace: str | None = Field(default=None, description="Unset for cluster-scoped kinds.")
    field_path: str = Field(description="Dotted path of the integer field, e.g. 'spec.replicas'.")
    unit: Literal["nodes", "gpus"] = Field(
        default="nodes", description="Whether the field counts nodes or GPUs."
    )

    def describe(self) -> tuple[str, str]:
        """Return the object and field path peakcast writes."""
        where = f"{self.namespace}/{self.name}" if self.namespace else self.name
        return f"{self.kind} {where}", self.field_path

    @field_validator("api_version")
    @classmethod
    def _grouped(cls, value: str) -> str:
        if "/" not in value.strip("/"):
            raise ValueError(
                "must name an API group and version such as 'example.org/v1'; core (v1) "
                "resources are not supported as custom fields"
            )
        return value

    @field_validator("field_path")
    @classmethod
    def _dotted_path(cls, value: str) -> str:
        parts = value.split(".")
        if len(parts) < 2 or parts[0] in ("metadata", "status") or not all(parts):
            raise ValueError(
                "must be a dotted path below spec (or another top-level key), e.g. 'spec.replicas'"
            )
        return value


PoolActuatorSettings = Annotated[
    GPUNodePoolActuatorSettings | PlaceholderActuatorSettings | CustomFieldActuatorSettings,
    Field(discriminator="mode"),
]


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
    actuator: PoolActuatorSettings | None = Field(
        default=None,
        description="How peakcast gets this pool's nodes on the cluster; unset means the pool "
        "is not written (static base capacity, or planning only).",
    )
    signals: PoolSignalSettings | None = Field(
        default=None,
        description="Live signals that raise the node floor at once, beside the forecast; "
        "they act only on a pool with an actuator.",
    )

    cluster: str | None = Field(
        default=None,
        description="Workload cluster the pool's nodes join (see 'clusters'); a gpunodepool "
        "actuator's object is written to the management cluster when one is defined.",
    )
    baseline_nodes: int | None = Field(
        default=None,
        ge=0,
        description="Node floor an expired floor returns to; unset uses min_nodes.",
    )

    _name = field_validator("name")(_dns_label)

    @property
    def baseline(self) -> int:
        """Return the node floor an expired floor returns to."""
        return self.min_nodes if self.baseline_nodes is None else self.baseline_nodes

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
    """Rules that turn the plan into floors: lead-time margin, scale-down damping, missing data."""

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
    workload_floor_fills_nodes: bool = Field(
        default=True,
        description="Raise each workload's replica requirement to every replica that fits on "
        "the nodes its pools need anyway (pools no other workload uses), so GPUs that are "
        "billed in any case already serve when a burst comes; the node floor is unchanged.",
    )
    missing_data_hold_seconds: int = Field(
        default=1800,
        ge=0,
        description="How long the current floor is held on missing data before falling back "
        "to each pool's safe_min_nodes.",
    )
    stale_data_seconds: int = Field(
        default=300,
        ge=0,
        description="Data counts as missing when the newest sample's step ended longer ago than "
        "this (never less than one sample step), e.g. when a query starts to return nothing.",
    )


class SimulatorSettings(Frozen):
    """The provisioning simulator of backtests: scale-down delay, billing and random draws."""

    scale_down_delay_seconds: int = Field(
        default=600,
        ge=0,
        description="Unneeded nodes are released after this long (cluster-autoscaler's "
        "--scale-down-unneeded-time defaults to 10 min).",
    )
    reactive_stabilization_seconds: int = Field(
        default=300, ge=0, description="Scale-down window of the reactive HPA baseline."
    )
    seed: int = Field(
        default=0,
        ge=0,
        description="Seed of every random draw; one seed gives the same draws to every policy "
        "and every run.",
    )
    billing_granularity_seconds: int = Field(
        default=1,
        ge=1,
        description="Each burst node's billed lifetime is rounded up to a multiple of this: 1 "
        "bills per second, 3600 per started hour. Static pools are billed exactly.",
    )
    gpu_init_failure_probability: float = Field(
        default=0.0,
        ge=0,
        lt=1,
        description="Chance that a node's GPU initialisation never finishes; the node is "
        "billed, never usable, and replaced after the GPU-init timeout.",
    )
    gpu_init_timeout_seconds: int | None = Field(
        default=None,
        gt=0,
        description="Node Ready to the replacement of a node whose GPUs are not allocatable; "
        "unset uses the pool actuator's gpu_init_timeout_seconds (900 s without an actuator).",
    )
    stockout_probability: float = Field(
        default=0.0,
        ge=0,
        lt=1,
        description="Share of stockout_seconds-long blocks in which a burst pool has no "
        "capacity; a request made in such a block is fulfilled when the block ends.",
    )
    stockout_seconds: int = Field(
        default=1800, ge=60, description="Length of one stockout block (see stockout_probability)."
    )
    redraw_interval_seconds: int = Field(
        default=86400,
        ge=3600,
        description="Draws are made per pool position (or replica position) and per interval of "
        "this length: requests for the same position within one interval get the same draws.",
    )
    pools: dict[str, PoolProvisioningSettings] = Field(
        default_factory=dict,
        description="Per burst pool: node boot and GPU-init distributions, failure and stockout "
        "overrides.",
    )
    workloads: dict[str, WorkloadProvisioningSettings] = Field(
        default_factory=dict,
        description="Per workload: image pull and model load distributions.",
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
    peak_demand_quantile: float = Field(
        default=0.9,
        gt=0,
        lt=1,
        description="Peak windows for per-window metrics are the spans where total demand in "
        "GPUs reaches this quantile of the simulated span.",
    )
    peak_merge_gap_seconds: int = Field(
        default=3600,
        ge=0,
        description="Peak windows separated by less than this are merged into one.",
    )


class KubernetesSettings(Frozen):
    """Connection to the Kubernetes API and the labels of peakcast's writes."""

    kubeconfig_path: Path | None = Field(
        default=None,
        description="Kubeconfig file (a relative path is read from the working directory); "
        "unset uses the in-cluster service account when running in a pod, else $KUBECONFIG or "
        "~/.kube/config.",
    )
    context: str | None = Field(default=None, description="Kubeconfig context; unset = current.")
    host: str | None = Field(
        default=None,
        description="Plain API server URL without credentials (a local proxy or a test server); "
        "overrides kubeconfig and in-cluster config.",
    )
    field_manager: str = Field(
        default="peakcast",
        min_length=1,
        max_length=128,
        description="Server-side apply field manager; fields it owns are peakcast's.",
    )
    event_reporting_controller: str = Field(
        default="peakcast.io/peakcast", description="reportingController of emitted Events."
    )
    event_reporting_instance: str | None = Field(
        default=None,
        description="reportingInstance of emitted Events; unset uses $POD_NAME, then the "
        "host name.",
    )
    request_timeout_seconds: float = Field(
        default=15.0, gt=0, description="Timeout of one API request."
    )


class ServiceSettings(Frozen):
    """The in-cluster service (``peakcast run``): job schedule, workload timeout, leader lease."""

    refresh_interval_seconds: int = Field(
        default=300,
        gt=0,
        description="Every workload's history is read and its forecast updated this often.",
    )
    plan_interval_seconds: int | None = Field(
        default=None,
        gt=0,
        description="Plan-and-act period; unset uses policy.cycle_interval_seconds.",
    )
    refit_interval_seconds: int | None = Field(
        default=None,
        gt=0,
        description="Models are refitted (and re-selected with model 'auto') this often; unset "
        "uses forecast.refit_interval_seconds.",
    )
    jitter_seconds: int = Field(
        default=10,
        ge=0,
        description="Each job start is delayed by a random 0 to jitter_seconds, so replicas "
        "and restarts do not query Thanos in lockstep.",
    )
    misfire_grace_seconds: int = Field(
        default=30,
        ge=1,
        description="A job start missed by up to this long (busy process, paused VM) still "
        "runs; later ones are skipped, and missed starts are coalesced into one run.",
    )
    workload_timeout_seconds: float = Field(
        default=120.0,
        gt=0,
        description="Longest wait for one workload's history read and forecast. A slower "
        "workload holds its floors in that cycle and the others go on.",
    )
    max_parallel_workloads: int = Field(
        default=4, ge=1, description="Workloads whose history is read and forecast at once."
    )
    stall_seconds: int = Field(
        default=600,
        gt=0,
        description="/healthz fails once no planning cycle has started for this long, so the "
        "kubelet restarts a stuck process.",
    )
    metric_horizons_seconds: list[int] = Field(
        default_factory=lambda: [0, 1800, 3600, 7200, 21600],
        description="Horizons at which forecasts are exported as metrics, counted from the start "
        "of the first forecast step (cutoff + step); horizons past the forecast's end are left "
        "out.",
    )
    identity: str | None = Field(
        default=None,
        description="This replica's name in the lease; unset uses $POD_NAME, then the host name.",
    )
    lease_name: str = Field(
        default="peakcast", description="Name of the coordination.k8s.io Lease."
    )
    lease_namespace: str | None = Field(
        default=None,
        description="Namespace of the Lease; unset uses $POD_NAMESPACE, then 'default'.",
    )
    lease_duration_seconds: float = Field(
        default=15.0,
        gt=0,
        description="How long followers wait after the last renewal they saw before taking the "
        "lease over.",
    )
    renew_deadline_seconds: float = Field(
        default=10.0,
        gt=0,
        description="The leader stops acting when it has not renewed the lease for this long.",
    )
    retry_period_seconds: float = Field(
        default=2.0, gt=0, description="Wait between two attempts to acquire or renew the lease."
    )

    _lease_name = field_validator("lease_name")(_dns_label)

    @field_validator("metric_horizons_seconds")
    @classmethod
    def _horizons_not_negative(cls, horizons: list[int]) -> list[int]:
        if any(horizon < 0 for horizon in horizons):
            raise ValueError("horizons must be 0 or more seconds")
        return sorted(set(horizons))

    @model_validator(mode="after")
    def _lease_timing(self) -> ServiceSettings:
        # The leader must give up before a follower may take over, and must retry in between.
        if not self.lease_duration_seconds > self.renew_deadline_seconds:
            raise ValueError(
                f"lease_duration_seconds ({self.lease_duration_seconds}) must exceed "
                f"renew_deadline_seconds ({self.renew_deadline_seconds})"
            )
        if not self.renew_deadline_seconds > self.retry_period_seconds:
            raise ValueError(
                f"renew_deadline_seconds ({self.renew_deadline_seconds}) must exceed "
                f"retry_period_seconds ({self.retry_period_seconds})"
            )
        return self


class JournalSettings(Frozen):
    """The decision journal: one JSON line per planning cycle, and an Event per changed object."""

    enabled: bool = Field(
        default=False,
        description="Write a journal record for every planning cycle of 'peakcast run' and "
        "'peakcast plan'.",
    )
    path: Path | None = Field(
        default=None,
        description="File the JSON lines are appended to (a relative path is read from the "
        "working directory); unset or '-' writes them to standard output.",
    )
    events: bool = Field(
        default=True,
        description="Also create one Kubernetes Event per changed object that summarises the "
        "cycle's inputs; only when acting for real (dry_run false) on one cluster.",
    )


class Settings(Frozen):
    """The whole configuration file."""

    version: Literal[1] = 1
    timezone: str = Field(default="UTC", description="Zone used to read --at and report times.")
    dry_run: bool = Field(
        default=True, description="Print what would change instead of writing to the cluster."
    )
    sources: dict[str, SourceSettings] = Field(
        description="History sources by name: CSV traces or Thanos endpoints."
    )
    forecast: ForecastSettings = Field(
        default_factory=ForecastSettings, description="Model, model step, seasons, quantiles."
    )
    pools: list[PoolSettings] = Field(min_length=1, description="GPU node pools.")
    workloads: list[WorkloadSettings] = Field(min_length=1, description="Served models.")
    policy: PolicySettings = Field(
        default_factory=PolicySettings, description="How the plan becomes floors."
    )
    simulator: SimulatorSettings = Field(
        default_factory=SimulatorSettings, description="Provisioning simulator of backtests."
    )
    backtest: BacktestSettings = Field(
        default_factory=BacktestSettings, description="Rolling-origin replay of history."
    )
    kubernetes: KubernetesSettings = Field(default_factory=KubernetesSettings)
    service: ServiceSettings = Field(default_factory=ServiceSettings)
    guardrails: GuardrailSettings = Field(default_factory=GuardrailSettings)
    clusters: list[ClusterSettings] = Field(
        default_factory=list,
        description="Several clusters: one management cluster with the GPUNodePools and "
        "workload clusters with the serving workloads; empty uses 'kubernetes' alone.",
    )
    fast_loop: FastLoopSettings = Field(default_factory=FastLoopSettings)
    journal: JournalSettings = Field(default_factory=JournalSettings)

    _zone = field_validator("timezone")(validate_zone)

    @model_validator(mode="before")
    @classmethod
    def _cluster_labels(cls, raw: Any) -> Any:
        return substitute_cluster_labels(raw)

    @model_validator(mode="after")
    def _guardrail_references(self) -> Settings:
        check_guardrail_references(self)
        return self

    @model_validator(mode="after")
    def _simulator_references(self) -> Settings:
        check_simulator_references(self)
        return self

    @model_validator(mode="after")
    def _references(self) -> Settings:
        pool_names = [pool.name for pool in self.pools]
        _unique("pools", pool_names)
        _unique("workloads", [workload.name for workload in self.workloads])
        pools = {pool.name: pool for pool in self.pools}
        for index, workload in enumerate(self.workloads):
            key = f"workloads[{index}]"
            if workload.demand.source not in self.sources:
                raise InvalidReferenceError(
                    f"{key}.demand.source",
                    workload.demand.source,
                    f"workload {workload.name!r}: demand.source {workload.demand.source!r} is "
                    f"not defined under 'sources' (defined: {', '.join(sorted(self.sources))})",
                )
            gate = workload.gate
            if (
                isinstance(gate, PromqlGateSettings)
                and getattr(self.sources.get(gate.source), "kind", None) != "thanos"
            ):
                raise InvalidReferenceError(
                    f"{key}.gate.source",
                    gate.source,
                    f"workload {workload.name!r}: gate.source {gate.source!r} must name a "
                    f"'thanos' entry under 'sources'",
                )
            for pool_index, pool_name in enumerate(workload.pools):
                if pool_name not in pools:
                    raise InvalidReferenceError(
                        f"{key}.pools[{pool_index}]",
                        pool_name,
                        f"workload {workload.name!r}: pool {pool_name!r} is not defined under "
                        f"'pools' (defined: {', '.join(pool_names)})",
                    )
                gpus_per_node = pools[pool_name].gpus_per_node
                if workload.capacity.gpus_per_replica > gpus_per_node:
                    raise InvalidReferenceError(
                        f"{key}.capacity.gpus_per_replica",
                        workload.capacity.gpus_per_replica,
                        f"workload {workload.name!r}: capacity.gpus_per_replica "
                        f"({workload.capacity.gpus_per_replica}) exceeds gpus_per_node "
                        f"({gpus_per_node}) of pool {pool_name!r}; a replica must fit on a node",
                    )
        check_signal_references(self)
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
