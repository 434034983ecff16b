"""Guardrails for floors that live signals raise between planning cycles.

The fast loop raises a floor at once, but never past the operator's limits. ``guard_raises``
runs the planning cycle's guardrails (``apply_guardrails``: pauses, step limits, cooldowns,
budgets) over every known floor, each raised floor at its target and the others at their
current value, and then:

- keeps only the floors that still rise. A guardrail may shrink or cancel a raise here, but
  never lowers a floor: lowering is the planning cycle's job;
- limits a pool to ``max_nodes_added_per_cycle`` nodes above the floor it held when its first
  raise of the current ``policy.cycle_interval_seconds`` began, so a run of fast cycles adds no
  more nodes per interval than one planning cycle may.

Budgets count the GPU-hours the last planning cycle accounted plus the current floors held
since then. Time comes in as ``now`` and the state goes in and out as a ``RaiseState``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

import pandas as pd

from scaler.core.decision import RULE_MAX_NODES_ADDED, RULE_REACTIVE, FloorDecision, FloorKind
from scaler.core.guardrails import FloorKey, GuardrailState, apply_guardrails
from scaler.settings import Settings

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RaiseWindow:
    """The floor a pool held when the current interval of raises started at ``started``."""

    started: pd.Timestamp
    base: int


@dataclass(frozen=True)
class RaiseState:
    """State that ``guard_raises`` keeps between fast cycles.

    ``windows`` is keyed by pool name. ``last_raise`` is keyed by (kind, name) and records
    when the fast loop last raised each floor, for the scale-up cooldown. ``limited`` contains
    the guardrail rule that limited each floor's raise in the previous fast cycle, so the
    warning is logged once when a guardrail starts to apply.
    """

    windows: Mapping[str, RaiseWindow] = field(default_factory=dict)
    last_raise: Mapping[FloorKey, pd.Timestamp] = field(default_factory=dict)
    limited: Mapping[FloorKey, str] = field(default_factory=dict)


@dataclass(frozen=True)
class GuardedRaises:
    """The raises to write, the value allowed for every requested raise, and the new state.

    ``allowed`` maps each requested floor to the highest value the guardrails let it reach
    now. That value is the current floor when a guardrail cancelled the raise.
    """

    raises: tuple[FloorDecision, ...]
    allowed: Mapping[FloorKey, int]
    state: RaiseState


def guard_raises(
    now: pd.Timestamp,
    raises: Sequence[FloorDecision],
    current: Mapping[FloorKey, int | None],
    cycle: GuardrailState,
    state: RaiseState,
    settings: Settings,
) -> GuardedRaises:
    """Apply the guardrails to ``raises`` (each with ``current`` set and ``desired`` above it).

    ``current`` contains every floor's current value, so shared budgets see every pool.
    ``cycle`` is the guardrail state of the last planning cycle.
    """
    if not raises:
        # Nothing to guard: skip the guardrails, which the fast loop would run every cycle.
        return GuardedRaises((), {}, replace(state, limited={}))
    requested: dict[FloorKey, FloorDecision] = {(f.kind, f.name): f for f in raises}
    pools, workloads = _all_floors(requested, current, settings)
    merged = replace(cycle, last_change=_latest(cycle.last_change, state.last_raise))
    guarded = apply_guardrails(now, pools, workloads, merged, settings, log_level=logging.DEBUG)

    windows = dict(state.windows)
    last_raise = dict(state.last_raise)
    limited: dict[FloorKey, str] = {}
    allowed: dict[FloorKey, int] = {}
    to_write = []
    for floor in (*guarded.pools, *guarded.workloads):
        key = (floor.kind, floor.name)
        held = floor.current
        if key not in requested or held is None:
            continue
        floor = _limit_interval(now, floor, held, windows, settings)
        allowed[key] = max(floor.desired, held)
        if floor.desired < requested[key].desired:
            limited[key] = floor.rule
            level = logging.WARNING if state.limited.get(key) != floor.rule else logging.DEBUG
            _log_limited(level, requested[key], floor)
        if floor.desired > held:
            last_raise[key] = now
            to_write.append(floor)
    return GuardedRaises(tuple(to_write), allowed, RaiseState(windows, last_raise, limited))


def _all_floors(
    requested: Mapping[FloorKey, FloorDecision],
    current: Mapping[FloorKey, int | None],
    settings: Settings,
) -> tuple[list[FloorDecision], list[FloorDecision]]:
    """Return every known floor: the requested raises, and the other floors held as they are."""
    pools: list[FloorDecision] = []
    workloads: list[FloorDecision] = []
    names: list[tuple[FloorKind, str]] = [("pool", p.name) for p in settings.pools]
    names += [("workload", w.name) for w in settings.workloads]
    for kind, name in names:
        key = (kind, name)
        floor = requested.get(key)
        if floor is None:
            value = current.get(key)
            if value is None:
                continue
            floor = FloorDecision(kind, name, value, value, RULE_REACTIVE, "not raised")
        (pools if kind == "pool" else workloads).append(floor)
    return pools, workloads


def _latest(
    first: Mapping[FloorKey, pd.Timestamp], second: Mapping[FloorKey, pd.Timestamp]
) -> dict[FloorKey, pd.Timestamp]:
    merged = dict(first)
    for key, at in second.items():
        if key not in merged or at > merged[key]:
            merged[key] = at
    return merged


def _limit_interval(
    now: pd.Timestamp,
    floor: FloorDecision,
    held: int,
    windows: dict[str, RaiseWindow],
    settings: Settings,
) -> FloorDecision:
    """Limit a pool's raise to the per-cycle step above its floor at the interval's start."""
    if floor.kind != "pool" or floor.desired <= held:
        return floor
    if settings.pool(floor.name).kind == "static":
        return floor
    interval = pd.Timedelta(seconds=settings.policy.cycle_interval_seconds)
    window = windows.get(floor.name)
    if window is None or now - window.started >= interval:
        window = RaiseWindow(now, held)
        windows[floor.name] = window
    step = settings.guardrails.pool_limits(floor.name).max_nodes_added_per_cycle
    if step is None or floor.desired <= window.base + step:
        return floor
    limited = max(window.base + step, held)
    reason = (
        f"{floor.reason}; live-signal raises are limited to {step} "
        f"{'node' if step == 1 else 'nodes'} per {interval.total_seconds():.0f} s cycle "
        f"interval above the {window.base} held at {window.started.isoformat()} "
        f"(target {floor.desired})"
    )
    return replace(floor, desired=limited, rule=RULE_MAX_NODES_ADDED, reason=reason)


def _log_limited(level: int, requested: FloorDecision, floor: FloorDecision) -> None:
    outcome = (
        "held back" if floor.desired <= (floor.current or 0) else f"limited to {floor.desired}"
    )
    logger.log(
        level,
        "%s %s: the live-signal raise from %s to %d %s is %s by guardrail %s: %s",
        floor.kind,
        floor.name,
        floor.current,
        requested.desired,
        floor.unit,
        outcome,
        floor.rule,
        floor.reason,
        extra={floor.kind: floor.name},
    )
