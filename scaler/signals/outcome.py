"""The outcome of one fast cycle, and the observer that exports it (the service's metrics)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

import pandas as pd

from scaler.actuators.base import ApplyResult
from scaler.core.decision import FloorDecision
from scaler.signals.base import SignalKey

SignalStatus = Literal[
    "raised",  # held long enough and requested more than the current floor
    "at_floor",  # held long enough; the current floor already covers it
    "holding",  # over its threshold, but not yet for the hysteresis
    "below",  # under its threshold
    "cooldown",  # held, but raised less than cooldown_seconds ago
    "floor_unknown",  # held, but the current floor could not be read, so nothing was raised
    "unreadable",  # the source could not be read; nothing changed
]


@dataclass(frozen=True)
class SignalReport:
    """One signal in one fast cycle: its newest value, its run, and what it did."""

    key: SignalKey
    status: SignalStatus
    value: float | None = None
    threshold: float | None = None
    unit: str = ""
    run_seconds: float = 0.0
    run_samples: int = 0
    floor: int | None = None
    message: str = ""


@dataclass(frozen=True)
class FastCycleOutcome:
    """One fast cycle at ``at``.

    ``raised`` contains only floors above the current floor, and ``results`` what the actuator
    did with them. ``levels`` is the planning level in force per workload with miss handling,
    and ``misses`` the workloads whose forecast miss was recorded in this cycle. ``error`` is
    set when the current floors could not be read, and then nothing was written.
    """

    at: pd.Timestamp
    reports: tuple[SignalReport, ...]
    raised: tuple[FloorDecision, ...] = ()
    results: tuple[ApplyResult, ...] = ()
    levels: Mapping[str, float] = field(default_factory=dict)
    misses: tuple[str, ...] = ()
    combined: Mapping[str, int] = field(default_factory=dict)
    error: str | None = None

    @property
    def unreadable(self) -> tuple[SignalReport, ...]:
        return tuple(report for report in self.reports if report.status == "unreadable")


class FastLoopObserver:
    """Receives what the fast loop does; the service's metrics implement it. Does nothing here."""

    def fast_cycle(self, outcome: FastCycleOutcome) -> None:
        """Called after every fast cycle, also one that changed nothing."""

    def combined_floors(self, floors: Mapping[str, int]) -> None:
        """Called with ``max(predictive, reactive)`` replicas per workload when it is known."""
