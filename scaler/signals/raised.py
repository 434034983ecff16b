"""Reactive floors held through the stabilisation window, and the actuator both loops share.

The fast loop records every floor a live signal requests in ``RaisedFloors``, after the
guardrails (``scaler.core.raise_guard``), including one it did not need to write because the
floor was already there. The planning cycle lifts each floor the policy decides to the highest
reactive floor recorded within ``policy.stabilization_window_seconds`` (``lift_floor``, passed
to ``decide`` as its ``lift``) before its guardrails apply. So the plan is
``max(predictive, reactive)``, and budgets, step limits, cooldowns and pauses cap both parts.
A floor a signal raised is lowered by the forecast policy only once the signal has stopped
requesting it for a whole stabilisation window, and then by the policy's bounded scale-down
steps from the floor the cluster holds.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import pandas as pd

from scaler.actuators.base import Actuator, ApplyResult
from scaler.core.decision import RULE_REACTIVE, CycleDecision, FloorDecision, FloorKind

logger = logging.getLogger(__name__)

FloorId = tuple[FloorKind, str]


@dataclass(frozen=True)
class RaisedFloor:
    """One reactive floor recorded at ``at`` by ``signal``."""

    at: pd.Timestamp
    value: int
    signal: str
    reason: str


class RaisedFloors:
    """Reactive floors per pool and workload, and the newest predictive floor of each."""

    def __init__(self, window_seconds: int) -> None:
        self._window = pd.Timedelta(seconds=window_seconds)
        self._lock = threading.Lock()
        self._entries: dict[FloorId, list[RaisedFloor]] = {}
        self._predictive: dict[FloorId, int] = {}

    @property
    def window_seconds(self) -> float:
        return self._window.total_seconds()

    def record(self, floor: FloorId, raised: RaisedFloor) -> None:
        """Record a reactive floor; entries older than the window are dropped."""
        with self._lock:
            entries = [e for e in self._entries.get(floor, []) if e.at > raised.at - self._window]
            entries.append(raised)
            self._entries[floor] = entries

    def held(self, floor: FloorId, now: pd.Timestamp) -> RaisedFloor | None:
        """Return the highest reactive floor recorded within the window before ``now``."""
        with self._lock:
            recent = [e for e in self._entries.get(floor, []) if now - self._window < e.at <= now]
        if not recent:
            return None
        return max(recent, key=lambda entry: (entry.value, entry.at))

    def note_predictive(self, floor: FloorId, value: int) -> None:
        with self._lock:
            self._predictive[floor] = value

    def combined(self, floor: FloorId, now: pd.Timestamp) -> int | None:
        """Return ``max(predictive, reactive)``; None when neither is known."""
        with self._lock:
            predictive = self._predictive.get(floor)
        held = self.held(floor, now)
        values = [v for v in (predictive, held.value if held else None) if v is not None]
        return max(values) if values else None


def combine_decision(decision: CycleDecision, raised: RaisedFloors) -> CycleDecision:
    """Return ``decision`` with every floor raised to its held reactive floor where that is higher.

    The predictive floors of ``decision`` are noted in ``raised`` first.
    """
    now = decision.at
    pools = tuple(lift_floor(floor, raised, now) for floor in decision.pools)
    workloads = tuple(lift_floor(floor, raised, now) for floor in decision.workloads)
    return replace(decision, pools=pools, workloads=workloads)


def lift_floor(floor: FloorDecision, raised: RaisedFloors, now: pd.Timestamp) -> FloorDecision:
    """Return ``floor`` raised to its held reactive floor where that is higher.

    ``floor.desired`` is noted in ``raised`` as the predictive floor first.
    """
    key: FloorId = (floor.kind, floor.name)
    raised.note_predictive(key, floor.desired)
    held = raised.held(key, now)
    if held is None or held.value <= floor.desired:
        return floor
    reason = (
        f"live signal {held.signal} requested {held.value} {floor.unit} at "
        f"{held.at.isoformat()} ({held.reason}); held for the {raised.window_seconds:.0f} s "
        f"stabilization window above the forecast's {floor.desired} (rule {floor.rule})"
    )
    logger.info(
        "%s %s: floor held at %d %s by live signal %s, above the forecast's %d",
        floor.kind,
        floor.name,
        held.value,
        floor.unit,
        held.signal,
        floor.desired,
        extra={floor.kind: floor.name},
    )
    return replace(floor, desired=held.value, rule=RULE_REACTIVE, reason=reason)


class CombinedActuator:
    """Wraps the actuator that the planning cycle and the fast loop share.

    ``lock`` serialises the two loops, so their writes never interleave. The decisions it
    applies are already combined: the cycle's through ``lift_floor`` before its guardrails, the
    fast loop's raises through ``guard_raises``. ``on_combined`` receives each applied decision,
    to export the combined floors. Other attributes (``lead_times``, ``pool_readiness``) are
    those of the wrapped actuator.
    """

    def __init__(
        self,
        inner: Actuator,
        raised: RaisedFloors,
        on_combined: Callable[[CycleDecision], None] | None = None,
    ) -> None:
        self.inner = inner
        self.raised = raised
        self.lock = threading.RLock()
        self._on_combined = on_combined

    def current_floors(self) -> dict[tuple[str, str], int | None]:
        with self.lock:
            return self.inner.current_floors()

    def apply(self, decision: CycleDecision) -> list[ApplyResult]:
        with self.lock:
            results = self.inner.apply(decision)
        if self._on_combined is not None:
            self._on_combined(decision)
        return results

    def __getattr__(self, name: str) -> Any:
        # Only called for attributes not found here: forward to the wrapped actuator.
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)
