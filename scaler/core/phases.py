"""The two lead-time phases as the simulator draws them, resolved from the settings.

A burst pool's node phase is node boot plus GPU initialisation, with GPU-init failures and
stockouts. A workload's start phase is image pull plus model load. When a pool or workload has
no ``simulator.pools`` or ``simulator.workloads`` entry, its phase is the fixed lead time that
the policies plan with (``node_provisioning_seconds``, ``workload_start_seconds``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from scaler.settings import GPUNodePoolActuatorSettings, PoolSettings, Settings, WorkloadSettings
from scaler.settings_simulator import Duration, FixedDuration

# GPU-init timeout of a pool that has no actuator: the actuators' default.
DEFAULT_GPU_INIT_TIMEOUT_SECONDS: int = GPUNodePoolActuatorSettings.model_fields[
    "gpu_init_timeout_seconds"
].default


@dataclass(frozen=True)
class PhaseModel:
    """Drawing rules of one pool's node phase or one workload's start phase.

    ``first`` and ``second`` are the parts of the phase: node boot and GPU initialisation, or
    image pull and model load. ``stream`` names the random streams, e.g. ("pool", "cloud-h100").
    Failures and stockouts apply to node phases only.
    """

    stream: tuple[str, str]
    first: Duration
    second: Duration
    failure_probability: float = 0.0
    timeout_seconds: float = math.inf
    stockout_probability: float = 0.0
    stockout_minutes: int = 1

    def fixed_minutes(self) -> int | None:
        """Return the phase in whole minutes when every draw gives it, else None."""
        if not (isinstance(self.first, FixedDuration) and isinstance(self.second, FixedDuration)):
            return None
        if self.failure_probability > 0 or self.stockout_probability > 0:
            return None
        if self.second.seconds > self.timeout_seconds:
            return None  # every GPU initialisation times out
        return math.ceil((self.first.seconds + self.second.seconds) / 60)


def _fixed(seconds: float) -> FixedDuration:
    return FixedDuration(distribution="fixed", seconds=seconds)


def pool_phase(settings: Settings, pool: PoolSettings) -> PhaseModel:
    """Resolve a burst pool's node phase: overrides, then simulator settings, then lead time."""
    simulator = settings.simulator
    override = simulator.pools.get(pool.name)
    first: Duration = _fixed(pool.node_provisioning_seconds)
    second: Duration = _fixed(0)
    if override is not None and (
        override.node_boot_seconds is not None or override.gpu_init_seconds is not None
    ):
        first = override.node_boot_seconds or _fixed(0)
        second = override.gpu_init_seconds or _fixed(0)

    def pick(name: str, fallback: float) -> float:
        value = getattr(override, name, None) if override is not None else None
        return fallback if value is None else value

    return PhaseModel(
        stream=("pool", pool.name),
        first=first,
        second=second,
        failure_probability=pick(
            "gpu_init_failure_probability", simulator.gpu_init_failure_probability
        ),
        timeout_seconds=pick("gpu_init_timeout_seconds", _default_timeout(settings, pool)),
        stockout_probability=pick("stockout_probability", simulator.stockout_probability),
        stockout_minutes=math.ceil(pick("stockout_seconds", simulator.stockout_seconds) / 60),
    )


def _default_timeout(settings: Settings, pool: PoolSettings) -> float:
    if settings.simulator.gpu_init_timeout_seconds is not None:
        return settings.simulator.gpu_init_timeout_seconds
    if pool.actuator is not None:
        return pool.actuator.gpu_init_timeout_seconds
    return DEFAULT_GPU_INIT_TIMEOUT_SECONDS


def workload_phase(settings: Settings, workload: WorkloadSettings) -> PhaseModel:
    """Resolve a workload's start phase: image pull and model load, or its fixed lead time."""
    override = settings.simulator.workloads.get(workload.name)
    first: Duration = _fixed(workload.workload_start_seconds)
    second: Duration = _fixed(0)
    if override is not None and (
        override.image_pull_seconds is not None or override.model_load_seconds is not None
    ):
        first = override.image_pull_seconds or _fixed(0)
        second = override.model_load_seconds or _fixed(0)
    return PhaseModel(stream=("workload", workload.name), first=first, second=second)


def lead_times_are_nominal(settings: Settings) -> bool:
    """Return whether every phase is fixed and equal, in minutes, to the configured lead time.

    Then the simulator is the deterministic model the policies plan with.
    """
    for pool in settings.pools:
        if pool.kind != "burst":
            continue
        nominal = math.ceil(pool.node_provisioning_seconds / 60)
        if pool_phase(settings, pool).fixed_minutes() != nominal:
            return False
    for workload in settings.workloads:
        nominal = math.ceil(workload.workload_start_seconds / 60)
        if workload_phase(settings, workload).fixed_minutes() != nominal:
            return False
    return True
