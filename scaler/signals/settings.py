"""Settings of the live signals: one optional group per pool and per workload, and the fast loop.

``scaler.settings`` composes them into ``PoolSettings.signals``, ``WorkloadSettings.signals``
and ``Settings.fast_loop``. Every signal is optional. A signal that is not configured is not
read, and a pool or workload without a ``signals`` group is left to the forecast alone.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import Field, field_validator, model_validator

from forecaster.settings import Frozen

if TYPE_CHECKING:
    from scaler.settings import Settings

GPU_RESOURCE = "nvidia.com/gpu"


class HysteresisSettings(Frozen):
    """How long a signal must stay over its threshold before it raises a floor."""

    hold_seconds: int = Field(
        default=60,
        ge=0,
        description="The signal must be over its threshold in every sample of a run that "
        "spans at least this long, from its first to its last sample.",
    )
    min_samples: int = Field(
        default=3,
        ge=1,
        description="The run must also contain at least this many consecutive samples, so a "
        "single noisy sample never raises a floor.",
    )


class PendingGpuPodsSignalSettings(Frozen):
    """Pods requesting GPUs that the scheduler cannot place (PodScheduled=False, Unschedulable).

    A pod belongs to the pool when it matches ``pod_label_selector``. Without a selector it
    belongs to the pool when its ``nodeSelector`` or required node affinity picks the pool's
    node labels, or when it tolerates ``toleration_key``.
    """

    namespaces: list[str] | None = Field(
        default=None, description="Namespaces to read pods from; unset reads all namespaces."
    )
    pod_label_selector: str | None = Field(
        default=None,
        description="Label selector of the pool's pods, e.g. 'peakcast.io/pool=cloud-h100'.",
    )
    toleration_key: str | None = Field(
        default=None,
        description="A pod that tolerates a taint with this key belongs to the pool, e.g. "
        "'nvidia.com/gpu' on a pool whose nodes carry that taint.",
    )
    min_pending_gpus: int = Field(
        default=1, ge=1, description="Threshold: pending GPUs at or above this count fire."
    )
    resource: str = Field(default=GPU_RESOURCE, description="Extended resource counted.")
    hysteresis: HysteresisSettings = Field(
        default_factory=lambda: HysteresisSettings(hold_seconds=30, min_samples=2)
    )


class GpuAllocationSignalSettings(Frozen):
    """Allocatable versus requested GPUs on the pool's GPU-ready nodes."""

    max_requested_ratio: float = Field(
        default=0.9,
        gt=0,
        le=1,
        description="Threshold: fires when requested / allocatable GPUs exceeds this, and the "
        "floor is raised until the requests fit under this share of the pool's GPUs.",
    )
    resource: str = Field(default=GPU_RESOURCE, description="Extended resource counted.")
    hysteresis: HysteresisSettings = Field(default_factory=HysteresisSettings)


class PoolSignalSettings(Frozen):
    """Live signals that raise one pool's node floor."""

    pending_gpu_pods: PendingGpuPodsSignalSettings | None = None
    gpu_allocation: GpuAllocationSignalSettings | None = None


SaturationMetric = Literal[
    "vllm_waiting_requests",
    "vllm_kv_cache_usage",
    "triton_queue_seconds",
    "triton_pending_requests",
    "dcgm_gpu_utilization",
    "promql",
]


class SaturationSignalSettings(Frozen):
    """A serving saturation metric read from Thanos; over its threshold it adds replicas.

    The built-in metrics average over the workload's series, so ``threshold`` is per replica:
    waiting requests (``vllm_waiting_requests``, ``triton_pending_requests``), a 0-1 ratio
    (``vllm_kv_cache_usage``, ``dcgm_gpu_utilization``) or seconds a request waits in the
    queue (``triton_queue_seconds``). While the signal holds, the floor becomes
    ``ceil(current x value / threshold)`` as an HPA computes it, at least one replica more
    and at most ``max_step_replicas`` more.
    """

    metric: SaturationMetric
    source: str = Field(description="Name of a 'thanos' entry under 'sources'.")
    selector: str = Field(
        default="",
        description="Label matchers put into the built-in query, e.g. "
        '\'namespace="serving",model_name="llama-3-70b"\'.',
    )
    query: str | None = Field(
        default=None,
        description="PromQL that returns one series; required with metric 'promql', and "
        "replaces the built-in query otherwise.",
    )
    threshold: float = Field(gt=0, description="Per-replica value above which the signal fires.")
    max_step_replicas: int = Field(
        default=4, ge=1, description="Most replicas one raise adds to the current floor."
    )
    cooldown_seconds: int = Field(
        default=300,
        ge=0,
        description="After a raise, this signal raises again only after this long, because "
        "new replicas need their workload start time before the queue drains.",
    )
    sample_step_seconds: int = Field(
        default=15,
        gt=0,
        description="Resolution of the query over the hysteresis window; use the scrape "
        "interval of the metric.",
    )
    hysteresis: HysteresisSettings = Field(default_factory=HysteresisSettings)

    @model_validator(mode="after")
    def _query_for_promql(self) -> SaturationSignalSettings:
        if self.metric == "promql" and not self.query:
            raise ValueError("metric 'promql' needs a query")
        return self


class ForecastMissSettings(Frozen):
    """Forecast-miss handling: live demand that stays above the forecast's upper quantile."""

    miss_after_seconds: int = Field(
        default=900,
        gt=0,
        description="Demand above the upper quantile for this long records a forecast miss, "
        "requests an early refit and widens the planning level by one step.",
    )
    widened_levels: list[float] | None = Field(
        default=None,
        description="Planning levels used after one, two, ... misses, e.g. [0.95, 0.99]; each "
        "must be in forecast.levels. Unset uses every forecast level above planning_level.",
    )
    recovery_seconds: int = Field(
        default=3600,
        gt=0,
        description="After this long without demand above the upper quantile, the planning "
        "level narrows by one step.",
    )
    refit: bool = Field(default=True, description="Request an early refit on each miss.")

    @field_validator("widened_levels")
    @classmethod
    def _sorted_levels(cls, levels: list[float] | None) -> list[float] | None:
        if levels is None:
            return None
        for level in levels:
            if not 0 < level < 1:
                raise ValueError(f"level {level} must be between 0 and 1 (exclusive)")
        return sorted(set(levels))


class DemandAboveForecastSignalSettings(Frozen):
    """Live demand compared with the forecast's upper quantile at the same time."""

    source: str | None = Field(
        default=None,
        description="Name of a 'thanos' entry under 'sources'; unset uses the workload's "
        "demand source, which must then be a 'thanos' source.",
    )
    query: str | None = Field(
        default=None,
        description="PromQL of live demand in the demand's unit before demand.scale; unset "
        "uses demand.series.",
    )
    level: float | None = Field(
        default=None,
        gt=0,
        lt=1,
        description="Upper quantile compared with; unset uses the highest of forecast.levels.",
    )
    sample_step_seconds: int = Field(
        default=30, gt=0, description="Resolution of the query over the hysteresis window."
    )
    hysteresis: HysteresisSettings = Field(default_factory=HysteresisSettings)
    misses: ForecastMissSettings = Field(default_factory=ForecastMissSettings)


class WorkloadSignalSettings(Frozen):
    """Live signals that raise one workload's replica floor."""

    saturation: list[SaturationSignalSettings] = Field(default_factory=list)
    demand_above_forecast: DemandAboveForecastSignalSettings | None = None


class FastLoopSettings(Frozen):
    """The fast loop that turns live signals into immediate floor raises."""

    interval_seconds: int = Field(
        default=15,
        gt=0,
        description="Signals are read and floors raised this often in 'peakcast run'.",
    )


def has_signals(settings: Settings) -> bool:
    """Tell whether any pool or workload configures a live signal."""
    pools = any(
        pool.signals is not None and (pool.signals.pending_gpu_pods or pool.signals.gpu_allocation)
        for pool in settings.pools
    )
    workloads = any(
        w.signals is not None and (w.signals.saturation or w.signals.demand_above_forecast)
        for w in settings.workloads
    )
    return pools or workloads


def check_signal_references(settings: Settings) -> None:
    """Raise ValueError when a signal names an unknown source or an unforecast level."""
    levels = settings.forecast.levels
    for workload in settings.workloads:
        signals = workload.signals
        if signals is None:
            continue
        where = f"workload {workload.name!r}: signals"
        for index, saturation in enumerate(signals.saturation):
            _check_thanos(settings, saturation.source, f"{where}.saturation[{index}].source")
        demand = signals.demand_above_forecast
        if demand is None:
            continue
        key = f"{where}.demand_above_forecast"
        if demand.source is None:
            _check_thanos(settings, workload.demand.source, f"{key} (from demand.source)")
        else:
            _check_thanos(settings, demand.source, f"{key}.source")
        if demand.level is not None and demand.level not in levels:
            raise ValueError(f"{key}.level {demand.level:g} is not in forecast.levels {levels}")
        for level in demand.misses.widened_levels or []:
            if level not in levels or level <= settings.forecast.planning_level:
                raise ValueError(
                    f"{key}.misses.widened_levels: {level:g} must be in forecast.levels "
                    f"{levels} and above forecast.planning_level "
                    f"{settings.forecast.planning_level:g}"
                )


def _check_thanos(settings: Settings, source: str, key: str) -> None:
    kind = getattr(settings.sources.get(source), "kind", None)
    if kind != "thanos":
        thanos = sorted(n for n, s in settings.sources.items() if s.kind == "thanos")
        raise ValueError(
            f"{key} {source!r} must name a 'thanos' entry under 'sources' "
            f"(defined: {', '.join(thanos) or 'none'})"
        )
