"""The default gate: every pool written this cycle has its node target in GPU-ready nodes."""

from __future__ import annotations

from scaler.gates.base import GateContext, GateResult


class PoolReadyGate:
    """Passes when each of the workload's written pools has its target in GPU-ready nodes.

    A pool held back by a capacity error has its target lowered to what it has, and the GPUs
    moved to a fallback pool are part of that pool's target, so the gate waits for them there.
    A pool with an actuator that could not be read holds the floor. When no pool of the
    workload has an actuator there is no GPU readiness to check, and the gate passes.
    """

    name = "pool_ready"

    def evaluate(self, context: GateContext) -> GateResult:
        reasons = []
        for pool in context.workload.pools:
            if pool in context.unread_pools:
                error = context.unread_pools[pool]
                return GateResult(False, f"pool {pool}: readiness could not be read ({error})")
            target = context.pool_targets.get(pool)
            readiness = context.pools.get(pool)
            if target is None:
                continue
            if readiness is None:
                return GateResult(False, f"pool {pool}: readiness could not be read")
            ready, reason = readiness.holds(target)
            if not ready:
                return GateResult(False, reason)
            reasons.append(reason)
        if not reasons:
            return GateResult(
                True,
                "no pool of this workload has an actuator, so the gate cannot check GPU "
                "readiness and passes",
            )
        return GateResult(True, "; ".join(reasons))
