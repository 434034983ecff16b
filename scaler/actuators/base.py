"""The protocol every actuator implements."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

from scaler.core.decision import CycleDecision, FloorDecision
from scaler.core.guardrails import GuardrailState

ApplyStatus = Literal["changed", "unchanged", "dry_run", "conflict", "held", "failed"]


@dataclass(frozen=True)
class ApplyResult:
    """Outcome for one floor: the object and field written, old and new value, status."""

    floor: FloorDecision
    target: str  # e.g. "GPUNodePool serving/cloud-h100" or "HorizontalPodAutoscaler serving/llm"
    field_path: str  # e.g. "spec.desiredNodes" or "spec.minReplicas"
    old: int | None
    new: int
    status: ApplyStatus
    message: str = ""


class Actuator(Protocol):
    """Reads current floors and applies a decision."""

    def current_floors(self) -> dict[tuple[str, str], int | None]:
        """Return the floor now held per (kind, name); None where it cannot be read."""
        ...

    def apply(self, decision: CycleDecision) -> list[ApplyResult]:
        """Apply every floor of ``decision``; never raises for one failed floor."""
        ...


@runtime_checkable
class RestoresGuardrailState(Protocol):
    """An actuator that reads the guardrails' cooldown clocks and budget usage back from the
    cluster (``KubeActuator``), so a restarted process starts with them."""

    def guardrail_state(self) -> GuardrailState:
        """Return the state recorded on the floor objects; raises ``PeakcastError`` on failure."""
        ...
