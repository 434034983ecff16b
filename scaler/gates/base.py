"""The protocol every gate implements, and what it is given to decide."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

import pandas as pd

from scaler.kube.readiness import PoolReadiness
from scaler.settings import WorkloadSettings


@dataclass(frozen=True)
class GateContext:
    """One workload floor about to be raised, with the state of the pools it runs on.

    ``pool_targets`` contains the node count written for each of the workload's pools this cycle
    (after quota caps and fallbacks). Pools that peakcast does not write are absent.
    ``unread_pools`` maps each of the workload's pools whose read failed this cycle to the error.
    Such a pool has an actuator but is absent from ``pools`` and ``pool_targets``.
    """

    workload: WorkloadSettings
    current: int | None
    desired: int
    now: pd.Timestamp
    pools: Mapping[str, PoolReadiness] = field(default_factory=dict)
    pool_targets: Mapping[str, int] = field(default_factory=dict)
    unread_pools: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class GateResult:
    """Whether the floor may be raised now, and why (shown in results, logs and Events)."""

    passed: bool
    reason: str


class Gate(Protocol):
    """Decides whether a workload floor may be raised now."""

    name: str

    def evaluate(self, context: GateContext) -> GateResult:
        """Return pass or hold. A gate that cannot decide returns hold, with the reason."""
        ...
