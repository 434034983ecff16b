"""Build the gate a workload's config names."""

from __future__ import annotations

from collections.abc import Callable

from forecaster.errors import ConfigError
from forecaster.settings import ThanosSourceSettings
from scaler.gates.base import Gate
from scaler.gates.keptn import KeptnGate
from scaler.gates.pool_ready import PoolReadyGate
from scaler.gates.promql import PromqlGate
from scaler.kube.client import KubeClient
from scaler.settings import (
    KeptnGateSettings,
    PromqlGateSettings,
    Settings,
    WorkloadSettings,
)

GATE_KINDS = ("keptn", "pool_ready", "promql")


def build_gate(
    settings: Settings,
    workload: WorkloadSettings,
    client: KubeClient,
    sleep: Callable[[float], None] | None = None,
    monotonic: Callable[[], float] | None = None,
) -> Gate:
    gate = workload.gate
    if isinstance(gate, PromqlGateSettings):
        source = settings.sources.get(gate.source)
        if not isinstance(source, ThanosSourceSettings):
            raise ConfigError(
                f"workloads[{workload.name}].gate.source", gate.source, "a 'thanos' source name"
            )
        return PromqlGate(gate, source)
    if isinstance(gate, KeptnGateSettings):
        timing = {k: v for k, v in {"sleep": sleep, "monotonic": monotonic}.items() if v}
        return KeptnGate(gate, client, **timing)  # type: ignore[arg-type]
    return PoolReadyGate()
