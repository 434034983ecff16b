"""Backtest policies, one module each, chosen by name.

Every policy sees only data up to the current minute, except ``oracle``, which sees the whole
trace by design.
"""

from __future__ import annotations

from scaler.backtest.policies.base import BacktestPolicy, PolicyContext, Targets
from scaler.backtest.policies.fastloop import PeakcastFastLoopPolicy
from scaler.backtest.policies.holt_winters_replicas import HoltWintersReplicasPolicy
from scaler.backtest.policies.oracle import OraclePolicy
from scaler.backtest.policies.peakcast import PeakcastPolicy, PeakcastReactivePolicy
from scaler.backtest.policies.reactive import ReactivePolicy
from scaler.backtest.policies.schedule import SchedulePolicy
from scaler.backtest.policies.static import StaticPolicy

# Name used on the command line and in results -> policy class. Keep sorted by name.
_REGISTRY: dict[str, type[BacktestPolicy]] = {
    HoltWintersReplicasPolicy.name: HoltWintersReplicasPolicy,
    OraclePolicy.name: OraclePolicy,
    PeakcastPolicy.name: PeakcastPolicy,
    PeakcastFastLoopPolicy.name: PeakcastFastLoopPolicy,
    PeakcastReactivePolicy.name: PeakcastReactivePolicy,
    ReactivePolicy.name: ReactivePolicy,
    SchedulePolicy.name: SchedulePolicy,
    StaticPolicy.name: StaticPolicy,
}

# The order results are reported in: baselines first, then peakcast.
DEFAULT_POLICIES = (
    "reactive",
    "static",
    "schedule",
    "holt_winters_replicas",
    "oracle",
    "peakcast",
    "peakcast+reactive",
    "peakcast+fastloop",
)


def policy_names() -> list[str]:
    """Return the registered policy names, sorted."""
    return sorted(_REGISTRY)


def policy_class(name: str) -> type[BacktestPolicy]:
    """Return the policy class registered as ``name``."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown policy {name!r}; allowed: {', '.join(policy_names())}") from None


__all__ = [
    "DEFAULT_POLICIES",
    "BacktestPolicy",
    "PolicyContext",
    "Targets",
    "policy_class",
    "policy_names",
]
