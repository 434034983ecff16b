"""The default gate: every pool written this cycle has its node target in GPU-ready nodes."""

from __future__ import annotations

from scaler.gates.base import GateContext, GateResult


class PoolReadyGate:
    """Passes when each of the workload's written pools has its target in GPU-ready nodes.

    A pool held back by a capacity error has its target lowered to what it has, and the GPUs
    moved to a fallback pool are part of that pool's target, so the gate waits for them there.
    """

    name = "pool_ready"

    def evaluate(self, context: GateContext) -> GateResult:
        reasons = []
        for pool in context.workload.pools:
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
        return GateResult(True, "; ".join(reasons) or "no written pool to wait for")
