"""``MultiClusterActuator``: one ``KubeActuator`` per workload cluster behind one interface.

One peakcast decides every floor in one cycle; each cluster's actuator then writes the floors
of its own pools and workloads. An error in one cluster is reported in that cluster's results
and does not stop the others.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

import pandas as pd

from scaler.actuators.base import ApplyResult
from scaler.core.budget import BudgetUsage
from scaler.core.decision import CycleDecision
from scaler.core.guardrails import GuardrailState
from scaler.kube.actuator import KubeActuator
from scaler.kube.leadtime import LeadTimeStats
from scaler.kube.pool_cycle import PoolCondition
from scaler.kube.readiness import PoolReadiness
from scaler.settings import Settings


class MultiClusterActuator:
    """Splits each decision by cluster and merges what the clusters report."""

    def __init__(self, actuators: Mapping[str, tuple[Settings, KubeActuator]]) -> None:
        self.actuators = {name: actuator for name, (_, actuator) in actuators.items()}
        self._pools = {name: {p.name for p in s.pools} for name, (s, _) in actuators.items()}
        self._workloads = {
            name: {w.name for w in s.workloads} for name, (s, _) in actuators.items()
        }

    @property
    def conditions(self) -> list[PoolCondition]:
        return [c for actuator in self.actuators.values() for c in actuator.conditions]

    def pool_readiness(self) -> dict[str, PoolReadiness]:
        merged: dict[str, PoolReadiness] = {}
        for actuator in self.actuators.values():
            merged.update(actuator.pool_readiness())
        return merged

    def current_floors(self) -> dict[tuple[str, str], int | None]:
        merged: dict[tuple[str, str], int | None] = {}
        for actuator in self.actuators.values():
            merged.update(actuator.current_floors())
        return merged

    def lead_times(self) -> dict[tuple[str, str], LeadTimeStats]:
        merged: dict[tuple[str, str], LeadTimeStats] = {}
        for actuator in self.actuators.values():
            merged.update(actuator.lead_times())
        return merged

    def guardrail_state(self) -> GuardrailState:
        usage: dict[str, BudgetUsage] = {}
        last_change: dict[tuple[str, str], pd.Timestamp] = {}
        for actuator in self.actuators.values():
            found = actuator.guardrail_state()
            usage.update(found.usage)
            last_change.update(found.last_change)
        return GuardrailState(usage=usage, last_change=last_change)

    def apply(self, decision: CycleDecision) -> list[ApplyResult]:
        results: list[ApplyResult] = []
        for name, actuator in self.actuators.items():
            part = replace(
                decision,
                pools=tuple(f for f in decision.pools if f.name in self._pools[name]),
                workloads=tuple(f for f in decision.workloads if f.name in self._workloads[name]),
            )
            results.extend(actuator.apply(part))
        return results
