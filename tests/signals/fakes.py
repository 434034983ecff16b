"""An in-memory actuator for fast-loop tests that need no cluster: it stores the floors it gets."""

from __future__ import annotations

from scaler.actuators.base import ApplyResult
from scaler.core.decision import CycleDecision


class MemoryActuator:
    """Implements the Actuator protocol with a dict of floors; ``broken`` makes reads fail."""

    def __init__(self, floors: dict[tuple[str, str], int | None]) -> None:
        self.floors = dict(floors)
        self.applied: list[CycleDecision] = []
        self.broken: Exception | None = None

    def current_floors(self) -> dict[tuple[str, str], int | None]:
        if self.broken is not None:
            raise self.broken
        return dict(self.floors)

    def apply(self, decision: CycleDecision) -> list[ApplyResult]:
        self.applied.append(decision)
        results = []
        for floor in decision.all_floors():
            old = self.floors.get((floor.kind, floor.name))
            self.floors[(floor.kind, floor.name)] = floor.desired
            status = "unchanged" if old == floor.desired else "changed"
            results.append(ApplyResult(floor, floor.name, "floor", old, floor.desired, status))
        return results
