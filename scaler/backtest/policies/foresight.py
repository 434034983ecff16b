"""The oracle's targets when the simulator draws lead times: foresight of demand and of draws.

Under random provisioning a fixed lead window is not enough for a lower bound, because a node
may take longer than any window, fail, or meet a stockout. The oracle therefore reads the same
draws the simulator uses (``scaler.core.positions``) and, per position, requests each node and
replica at the latest minute from which it is ready when it is first needed.

Because a hold's ready minute never decreases with its start (no overtaking), the best any
policy can do for position ``k`` at minute ``t`` is to have held it since minute 0. Call the
ready minute of that hold the position's earliest ready minute. The oracle:

1. needs the replicas of the actual demand. A needed replica position that cannot be serving
   yet is backed by the next position that can (``lift``), as a policy holding more replicas
   would be;
2. holds each replica position from the latest start that serves it by the minute it is needed,
   or from minute 0 when no start does;
3. places those replicas on the nodes that can be usable at each minute, and treats the nodes
   they need the same way (lift, then the latest start).

For one workload per pool this serves, at every minute, at least
``min(needed replicas, replicas any policy can have serving)``, so its shortfall is never above
another policy's. NOTE: with workloads competing for the same pool's capacity, or with several
burst pools per workload whose draws favour the later pool, it is a good policy but not proven
a lower bound.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from scaler.core.capacity import Fleet, FloatArray, IntArray
from scaler.core.phases import pool_phase, workload_phase
from scaler.core.positions import NEVER, PositionDraws, hold_intervals
from scaler.core.simulator import InitialState, minutes_for
from scaler.settings import Settings


def foresight_targets(
    settings: Settings,
    fleet: Fleet,
    demand: Mapping[str, FloatArray],
    initial: InitialState,
) -> tuple[dict[str, IntArray], dict[str, IntArray]]:
    """Return node targets per burst pool and replica targets per workload for each minute.

    ``demand`` covers the simulated minutes, with missing minutes already filled.
    """
    minutes = len(next(iter(demand.values())))
    redraw = minutes_for(settings.simulator.redraw_interval_seconds)
    seed = settings.simulator.seed
    burst = [pool for pool in settings.pools if pool.kind == "burst"]
    node_draws = {
        pool.name: PositionDraws(pool_phase(settings, pool), seed, redraw, minutes)
        for pool in burst
    }
    start_nodes = {
        pool.name: min(max(initial.nodes.get(pool.name, 0), pool.min_nodes), pool.max_nodes)
        for pool in burst
    }
    node_first = {
        pool.name: node_draws[pool.name].ready(
            np.arange(1, pool.max_nodes + 1), 0, start_nodes[pool.name]
        )
        for pool in burst
    }
    available = {
        pool.name: np.full(minutes, pool.max_nodes, dtype=np.int64) for pool in settings.pools
    }
    for name, first in node_first.items():
        available[name] = _ready_by(first, minutes)

    needed = fleet.replicas_for_demand(demand)
    replicas: dict[str, IntArray] = {}
    for workload in settings.workloads:
        draws = PositionDraws(workload_phase(settings, workload), seed, redraw, minutes)
        before = initial.replicas.get(workload.name, 0)
        first = _earliest_serving(fleet, workload.name, available, draws, before)
        replicas[workload.name] = hold_targets(draws, lift(needed[workload.name], first), before)

    placement = fleet.place(replicas, available_nodes=available)
    nodes = {
        name: hold_targets(draws, lift(placement.nodes[name], node_first[name]), start_nodes[name])
        for name, draws in node_draws.items()
    }
    return nodes, replicas


def _ready_by(first_ready: IntArray, minutes: int) -> IntArray:
    """Count, per minute, the positions whose earliest ready minute has passed."""
    arrivals = np.clip(first_ready[first_ready < minutes], 0, minutes)
    return np.cumsum(np.bincount(arrivals, minlength=minutes)[:minutes]).astype(np.int64)


def _earliest_serving(
    fleet: Fleet,
    workload: str,
    available: Mapping[str, IntArray],
    draws: PositionDraws,
    before: int,
) -> IntArray:
    """Return, per replica position, the earliest minute it can serve (NEVER if it cannot).

    Position ``j`` can run once the usable nodes of a fleet held since minute 0 have a slot for
    ``j`` replicas, and serves a start phase later.
    """
    top = fleet.workloads[workload].capacity.max_replicas
    alone = {name: 0 for name in fleet.workloads}
    alone[workload] = top
    slots = fleet.place(alone, available_nodes=available).placed_replicas(workload)
    positions = np.arange(1, top + 1)
    first_slot = np.searchsorted(slots, positions, side="left")
    reachable = first_slot < len(slots)
    serving = np.full(top, NEVER, dtype=np.int64)
    serving[reachable] = draws.ready(positions[reachable], first_slot[reachable], before)
    return serving


def lift(need: IntArray, first_ready: IntArray) -> IntArray:
    """Raise ``need`` so that at each minute enough of the held positions can be ready.

    ``first_ready[k - 1]`` is position k's earliest ready minute. When a needed position cannot
    be ready at minute t but a higher one can, a policy holding more positions would have more
    ready ones, so the need is raised to cover as many ready positions as are needed.
    """
    lifted = np.asarray(need, dtype=np.int64).copy()
    finite = first_ready < NEVER
    settled = int(first_ready[finite].max(initial=-1)) + 1
    for minute in range(min(settled, len(lifted))):
        feasible = np.flatnonzero(first_ready <= minute) + 1
        lifted[minute] = _lifted(lifted[minute], feasible)
    if settled < len(lifted):
        feasible = np.flatnonzero(finite) + 1
        tail = lifted[settled:]
        count = np.minimum(tail, len(feasible))
        covering = feasible[np.maximum(count - 1, 0)] if len(feasible) else tail
        lifted[settled:] = np.where(count > 0, np.maximum(tail, covering), tail)
    return lifted


def _lifted(need: int, feasible: IntArray) -> int:
    count = min(int(need), len(feasible))
    if count == 0:
        return int(need)
    return max(int(need), int(feasible[count - 1]))


def hold_targets(draws: PositionDraws, need: IntArray, initial: int) -> IntArray:
    """Hold each position from the latest start that makes it ready when it is needed."""
    holds = hold_intervals(need, 0)
    start = latest_start(draws, holds.position, holds.start, initial)
    targets = np.asarray(need, dtype=np.int64).copy()
    early = start < holds.start
    lengths = holds.start[early] - start[early]
    offsets = np.arange(int(lengths.sum())) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    minutes = np.repeat(start[early], lengths) + offsets
    np.maximum.at(targets, minutes, np.repeat(holds.position[early], lengths))
    return targets


def latest_start(
    draws: PositionDraws, positions: IntArray, needed_at: IntArray, initial: int
) -> IntArray:
    """Return the latest minute s <= needed_at with R(k, s) <= needed_at, or 0 if none.

    R never decreases in s, so a bisection per position finds it.
    """
    low = np.zeros(len(positions), dtype=np.int64)
    high = np.where(draws.ready(positions, low, initial) <= needed_at, needed_at, 0)
    active = np.flatnonzero(high > low)
    while active.size:
        middle = (low[active] + high[active] + 1) // 2
        ready = draws.ready(positions[active], middle, initial) <= needed_at[active]
        low[active] = np.where(ready, middle, low[active])
        high[active] = np.where(ready, high[active], middle - 1)
        active = active[high[active] > low[active]]
    return low
