"""Random provisioning of the backtest simulator: duration distributions and per-pool overrides.

``SimulatorSettings`` (in ``scaler.settings``) contains these under ``simulator.pools`` and
``simulator.workloads``. Left unset, every phase is the fixed lead time of the pool or workload,
and the simulator behaves exactly as its deterministic model (docs/SIMULATOR.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BeforeValidator, Field, model_validator

from forecaster.settings import Frozen

if TYPE_CHECKING:
    from scaler.settings import Settings


class FixedDuration(Frozen):
    """A duration that is the same at every draw."""

    distribution: Literal["fixed"]
    seconds: float = Field(ge=0)


class LognormalDuration(Frozen):
    """A right-skewed duration given by its median and its 95th percentile."""

    distribution: Literal["lognormal"]
    median_seconds: float = Field(gt=0)
    p95_seconds: float = Field(gt=0)

    @model_validator(mode="after")
    def _ordered(self) -> LognormalDuration:
        if self.p95_seconds < self.median_seconds:
            raise ValueError(
                f"p95_seconds ({self.p95_seconds}) must not be below median_seconds "
                f"({self.median_seconds})"
            )
        return self


class UniformDuration(Frozen):
    """A duration drawn evenly from ``[min_seconds, max_seconds]``."""

    distribution: Literal["uniform"]
    min_seconds: float = Field(ge=0)
    max_seconds: float = Field(ge=0)

    @model_validator(mode="after")
    def _ordered(self) -> UniformDuration:
        if self.max_seconds < self.min_seconds:
            raise ValueError(
                f"max_seconds ({self.max_seconds}) must not be below min_seconds "
                f"({self.min_seconds})"
            )
        return self


def _number_as_fixed(value: Any) -> Any:
    """Read a bare number of seconds as a fixed duration."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return {"distribution": "fixed", "seconds": value}
    return value


Duration = Annotated[
    FixedDuration | LognormalDuration | UniformDuration,
    Field(discriminator="distribution"),
    BeforeValidator(_number_as_fixed),
]


class PoolProvisioningSettings(Frozen):
    """Provisioning draws of one burst pool; unset fields use the simulator-wide settings."""

    node_boot_seconds: Duration | None = Field(
        default=None,
        description="Request fulfilled to node Ready. When node_boot_seconds and "
        "gpu_init_seconds are both unset, the node phase is the pool's fixed "
        "node_provisioning_seconds; when one is set, the other counts as 0.",
    )
    gpu_init_seconds: Duration | None = Field(
        default=None,
        description="Node Ready to nvidia.com/gpu allocatable (driver and device plugin). A "
        "draw above the GPU-init timeout counts as a failed initialisation.",
    )
    gpu_init_failure_probability: float | None = Field(
        default=None, ge=0, lt=1, description="Overrides simulator.gpu_init_failure_probability."
    )
    gpu_init_timeout_seconds: int | None = Field(
        default=None, gt=0, description="Overrides simulator.gpu_init_timeout_seconds."
    )
    stockout_probability: float | None = Field(
        default=None, ge=0, lt=1, description="Overrides simulator.stockout_probability."
    )
    stockout_seconds: int | None = Field(
        default=None, ge=60, description="Overrides simulator.stockout_seconds."
    )


class WorkloadProvisioningSettings(Frozen):
    """Start-phase draws of one workload.

    When both fields are unset, the start phase is the workload's fixed
    ``workload_start_seconds``; when one is set, the other counts as 0.
    """

    image_pull_seconds: Duration | None = Field(
        default=None, description="Pod scheduled to image pulled."
    )
    model_load_seconds: Duration | None = Field(
        default=None, description="Image pulled to the replica serving (weights loaded)."
    )


def check_simulator_references(settings: Settings) -> None:
    """Raise ValueError for a simulator override that names no burst pool or no workload."""
    pools = {pool.name: pool for pool in settings.pools}
    for name in settings.simulator.pools:
        if name not in pools:
            raise ValueError(
                f"simulator.pools: pool {name!r} is not defined under 'pools' "
                f"(defined: {', '.join(pools)})"
            )
        if pools[name].kind != "burst":
            raise ValueError(
                f"simulator.pools: pool {name!r} is static; its nodes are always usable, so "
                "only burst pools take provisioning settings"
            )
    workloads = [workload.name for workload in settings.workloads]
    for name in settings.simulator.workloads:
        if name not in workloads:
            raise ValueError(
                f"simulator.workloads: workload {name!r} is not defined under 'workloads' "
                f"(defined: {', '.join(workloads)})"
            )
