"""Operator controls and limits applied to the floors the policy decided.

``apply_guardrails`` is pure: time comes in as ``now`` and what it remembers between cycles
comes in and goes out as a ``GuardrailState``. Rules, in the order they apply to one floor:

1. Overrides in force raise the floor to at least their value (``RULE_OVERRIDE``). They never
   lower a floor, and a budget never caps one.
2. A pool floor rises by at most ``max_nodes_added_per_cycle`` nodes per cycle
   (``RULE_MAX_NODES_ADDED``).
3. Cooldowns: a floor that changed less than ``scale_up_cooldown_seconds`` ago is not raised,
   and one that changed less than ``scale_down_cooldown_seconds`` ago is not lowered
   (``RULE_COOLDOWN``).
4. GPU-hour budgets cap burst pool floors, never below min_nodes or an override in force
   (``RULE_BUDGET``, see ``scaler.core.budget``). A budget never raises a floor.
5. A pause keeps the current floor (``RULE_PAUSED``); the reason names the floor the plan would
   have set, so a paused peakcast still shows what it forecasts. With an unknown current floor
   the planned value is kept and the actuator writes nothing for a paused floor.

Every floor a guardrail changed is logged at ``log_level`` in the first cycle it applies and at
DEBUG while the same guardrail keeps applying.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

import pandas as pd

from scaler.core.budget import BudgetUsage, account, budget_caps
from scaler.core.decision import (
    RULE_BUDGET,
    RULE_COOLDOWN,
    RULE_MAX_NODES_ADDED,
    RULE_OVERRIDE,
    RULE_PAUSED,
    FloorDecision,
)
from scaler.core.overrides import active_overrides, override_floors
from scaler.settings import Settings

logger = logging.getLogger(__name__)

GUARDRAIL_RULES = frozenset(
    {RULE_OVERRIDE, RULE_MAX_NODES_ADDED, RULE_COOLDOWN, RULE_BUDGET, RULE_PAUSED}
)

FloorKey = tuple[str, str]  # ("pool", name) or ("workload", name)


@dataclass(frozen=True)
class OperatorControls:
    """Pauses read at run time, added to the ones in ``guardrails``.

    ``paused`` maps (kind, name) of a floor to the reason, for example an operator's
    ``peakcast.io/paused`` annotation on the object that carries it. ``paused_all`` pauses
    every floor when set, and contains its reason.
    """

    paused_all: str | None = None
    paused: Mapping[FloorKey, str] = field(default_factory=dict)


@dataclass(frozen=True)
class GuardrailState:
    """State the guardrails keep between cycles.

    ``usage`` is keyed by burst pool name. ``last_change`` is keyed by (kind, name) and contains
    when each floor last changed. ``active`` contains the guardrail rule that set each floor in
    the previous cycle, so a guardrail is logged once when it starts to apply.
    """

    usage: Mapping[str, BudgetUsage] = field(default_factory=dict)
    last_change: Mapping[FloorKey, pd.Timestamp] = field(default_factory=dict)
    active: Mapping[FloorKey, str] = field(default_factory=dict)


@dataclass(frozen=True)
class GuardedFloors:
    """The floors after the guardrails, and the state for the next cycle."""

    pools: tuple[FloorDecision, ...]
    workloads: tuple[FloorDecision, ...]
    state: GuardrailState


def apply_guardrails(
    now: pd.Timestamp,
    pools: Sequence[FloorDecision],
    workloads: Sequence[FloorDecision],
    state: GuardrailState,
    settings: Settings,
    controls: OperatorControls | None = None,
    *,
    log_level: int = logging.INFO,
) -> GuardedFloors:
    """Apply overrides, step limits, cooldowns, budgets and pauses to one cycle's floors."""
    context = _Context(now, state, settings, controls or OperatorControls())
    usage = context.accounted_usage(pools)
    guarded_pools = [context.limit(context.raise_to_override(floor)) for floor in pools]
    guarded_pools = context.cap_by_budgets(guarded_pools, usage)
    guarded_workloads = [context.limit(context.raise_to_override(floor)) for floor in workloads]
    final_pools = tuple(context.pause(floor) for floor in guarded_pools)
    final_workloads = tuple(context.pause(floor) for floor in guarded_workloads)

    planned: dict[FloorKey, FloorDecision] = {
        (floor.kind, floor.name): floor for floor in (*pools, *workloads)
    }
    active = _log_guardrails((*final_pools, *final_workloads), planned, state.active, log_level)
    new_state = GuardrailState(
        usage=usage,
        last_change=_last_changes(now, (*final_pools, *final_workloads), state.last_change),
        active=active,
    )
    return GuardedFloors(final_pools, final_workloads, new_state)


class _Context:
    """The inputs one ``apply_guardrails`` call shares between its floors."""

    def __init__(
        self,
        now: pd.Timestamp,
        state: GuardrailState,
        settings: Settings,
        controls: OperatorControls,
    ) -> None:
        self.now = now
        self.state = state
        self.settings = settings
        self.controls = controls
        self.guardrails = settings.guardrails
        self.static = {pool.name for pool in settings.pools if pool.kind == "static"}
        self.overrides = active_overrides(settings, now)
        self.pool_overrides, self.workload_overrides = override_floors(settings, self.overrides)

    def accounted_usage(self, pools: Sequence[FloorDecision]) -> dict[str, BudgetUsage]:
        usage: dict[str, BudgetUsage] = {}
        for floor in pools:
            if floor.name in self.static:
                continue
            gpus_per_node = self.settings.pool(floor.name).gpus_per_node
            held = None if floor.current is None else floor.current * gpus_per_node
            usage[floor.name] = account(
                self.state.usage.get(floor.name), held, self.now, self.settings
            )
        return usage

    def raise_to_override(self, floor: FloorDecision) -> FloorDecision:
        found = self._override_of(floor)
        if found is None or found[0] <= floor.desired:
            return floor
        value, names = found
        described = "; ".join(
            f"{o.name} ({o.describe()}{': ' + o.reason if o.reason else ''})"
            for o in self.overrides
            if o.name in names.split(", ")
        )
        reason = (
            f"{floor.reason}; raised to {value} {floor.unit[:-1] if value == 1 else floor.unit} "
            f"by override {described or names} "
            f"(the plan was {floor.desired})"
        )
        return replace(floor, desired=value, rule=RULE_OVERRIDE, reason=reason)

    def _override_of(self, floor: FloorDecision) -> tuple[int, str] | None:
        if floor.kind == "pool":
            return self.pool_overrides.get(floor.name)
        return self.workload_overrides.get(floor.name)

    def lowest(self, floor: FloorDecision) -> int:
        """Return the floor no budget goes below: min_nodes or an override in force."""
        override = self._override_of(floor)
        pool = self.settings.pool(floor.name)
        return max(pool.min_nodes, override[0] if override else 0)

    def limit(self, floor: FloorDecision) -> FloorDecision:
        if floor.kind == "pool" and floor.name in self.static:
            return floor
        if floor.kind == "pool":
            floor = self._limit_step(floor)
        return self._cool_down(floor)

    def _limit_step(self, floor: FloorDecision) -> FloorDecision:
        step = self.guardrails.pool_limits(floor.name).max_nodes_added_per_cycle
        if step is None or floor.current is None or floor.desired <= floor.current + step:
            return floor
        limited = floor.current + step
        reason = (
            f"{floor.reason}; the raise is limited to {step} {'node' if step == 1 else 'nodes'} "
            f"per cycle (target {floor.desired})"
        )
        return replace(floor, desired=limited, rule=RULE_MAX_NODES_ADDED, reason=reason)

    def _cool_down(self, floor: FloorDecision) -> FloorDecision:
        last = self.state.last_change.get((floor.kind, floor.name))
        current = floor.current
        if last is None or current is None or floor.desired == current:
            return floor
        raising = floor.desired > current
        seconds = (
            self.guardrails.scale_up_cooldown_seconds
            if raising
            else self.guardrails.scale_down_cooldown_seconds
        )
        since = (self.now - last).total_seconds()
        if since >= seconds:
            return floor
        direction = "scale-up" if raising else "scale-down"
        reason = (
            f"{floor.reason}; held at {current} because the floor changed {since:.0f} s ago, "
            f"within the {seconds} s {direction} cooldown (target {floor.desired})"
        )
        return replace(floor, desired=current, rule=RULE_COOLDOWN, reason=reason)

    def cap_by_budgets(
        self, pools: list[FloorDecision], usage: Mapping[str, BudgetUsage]
    ) -> list[FloorDecision]:
        burst = [floor for floor in pools if floor.name not in self.static]
        desired = {floor.name: floor.desired for floor in burst}
        lowest = {floor.name: self.lowest(floor) for floor in burst}
        caps = budget_caps(desired, lowest, usage, self.settings)
        capped = []
        for floor in pools:
            cap = caps.get(floor.name)
            if cap is None:
                capped.append(floor)
                continue
            value = max(cap.nodes, lowest[floor.name])
            reason = (
                f"{floor.reason}; capped at {value} {'node' if value == 1 else 'nodes'} by the "
                f"{cap.scope} budget: {cap.used_gpu_hours:.1f} of {cap.limit_gpu_hours:g} "
                f"GPU-hours used today (target {floor.desired})"
            )
            capped.append(replace(floor, desired=value, rule=RULE_BUDGET, reason=reason))
        return capped

    def pause(self, floor: FloorDecision) -> FloorDecision:
        cause = self._pause_reason(floor)
        if cause is None:
            return floor
        kept = floor.desired if floor.current is None else floor.current
        holding = "the current floor is unknown" if floor.current is None else f"holding {kept}"
        reason = (
            f"paused ({cause}); {holding}; the plan was {floor.desired} "
            f"{floor.unit[:-1] if floor.desired == 1 else floor.unit} "
            f"(rule {floor.rule}): {floor.reason}"
        )
        return replace(floor, desired=kept, rule=RULE_PAUSED, reason=reason)

    def _pause_reason(self, floor: FloorDecision) -> str | None:
        key = (floor.kind, floor.name)
        if self.controls.paused_all is not None:
            return self.controls.paused_all
        if self.guardrails.paused:
            return "guardrails.paused is set"
        if key in self.controls.paused:
            return self.controls.paused[key]
        configured = (
            self.guardrails.paused_pools
            if floor.kind == "pool"
            else self.guardrails.paused_workloads
        )
        if floor.name in configured:
            return f"listed in guardrails.paused_{floor.kind}s"
        return None


def _last_changes(
    now: pd.Timestamp,
    floors: Sequence[FloorDecision],
    previous: Mapping[FloorKey, pd.Timestamp],
) -> dict[FloorKey, pd.Timestamp]:
    changes = dict(previous)
    for floor in floors:
        if floor.rule != RULE_PAUSED and floor.desired != floor.current:
            changes[(floor.kind, floor.name)] = now
    return changes


def _log_guardrails(
    floors: Sequence[FloorDecision],
    planned: Mapping[FloorKey, FloorDecision],
    previous: Mapping[FloorKey, str],
    log_level: int,
) -> dict[FloorKey, str]:
    active: dict[FloorKey, str] = {}
    for floor in floors:
        if floor.rule not in GUARDRAIL_RULES:
            continue
        key = (floor.kind, floor.name)
        active[key] = floor.rule
        level = log_level if previous.get(key) != floor.rule else logging.DEBUG
        logger.log(
            level,
            "%s %s: guardrail %s set the floor to %d %s (current %s, planned %d): %s",
            floor.kind,
            floor.name,
            floor.rule,
            floor.desired,
            floor.unit,
            "unknown" if floor.current is None else floor.current,
            planned[key].desired,
            floor.reason,
        )
    return active
