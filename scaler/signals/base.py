"""The protocol every live signal implements, and the reading it returns.

A signal watches one pool (its node floor) or one workload (its replica floor). ``read`` returns
the samples the source supplied for this read and a rule that turns the current floor into the
floor the signal requests. Whether the signal may raise anything is decided afterwards, by
hysteresis over the samples (``scaler.signals.hysteresis``). A source that cannot be read
raises ``SignalUnavailableError``, and the fast loop reports it and changes nothing.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import pandas as pd

from forecaster.errors import TransientError
from scaler.core.decision import FloorKind
from scaler.signals.settings import HysteresisSettings


class SignalUnavailableError(TransientError):
    """The signal's source could not be read, or returned no usable sample (missing, not zero)."""


@dataclass(frozen=True)
class Sample:
    """One observation of a signal. NaN ``value`` marks a step without data, which ends a run."""

    at: pd.Timestamp
    value: float
    over: bool

    @classmethod
    def missing(cls, at: pd.Timestamp) -> Sample:
        return cls(at, math.nan, False)


@dataclass(frozen=True)
class Reading:
    """What one read of a signal returned.

    ``value`` and ``threshold`` are those of the newest sample, in the signal's unit.
    ``floor_for`` maps the current floor to the floor the signal requests while it holds.
    """

    samples: tuple[Sample, ...]
    value: float
    threshold: float
    unit: str
    floor_for: Callable[[int], int]
    detail: str = ""

    @property
    def over(self) -> bool:
        return bool(self.samples) and self.samples[-1].over


@dataclass(frozen=True)
class SignalKey:
    """Identity of one configured signal: its name, what it raises, and its index."""

    signal: str
    kind: FloorKind
    target: str
    index: int = 0

    @property
    def label(self) -> str:
        suffix = f"[{self.index}]" if self.index else ""
        return f"{self.kind} {self.target} {self.signal}{suffix}"


class Signal(Protocol):
    """A live signal of one pool or one workload."""

    key: SignalKey
    hysteresis: HysteresisSettings
    # After a raise the signal raises again only this long later; 0 for signals whose floor
    # does not grow with the current floor.
    cooldown_seconds: int

    def read(self, now: pd.Timestamp) -> Reading:
        """Read the signal at ``now``; raise ``SignalUnavailableError`` when it cannot be read."""
        ...
