"""Capacity arithmetic: demand to replicas, replicas to GPU slots, slots to nodes per pool.

Every function accepts scalars or numpy arrays (one value per time step) so that the same
arithmetic serves one planning cycle, a forecast horizon and a 28-day simulation.

Placement rules:

- A workload's replicas go to its static pools first, then to its burst pools in the order the
  workload lists them.
- A static pool has a fixed size of ``max_nodes`` nodes. A burst pool has at most ``max_nodes``
  nodes, and its node requirement is clamped to ``[min_nodes, max_nodes]``.
- Workloads that share a pool are placed in configuration order, so an earlier workload's
  replicas take precedence, as pod priority would give them.
- A pool's nodes are counted in slot units: one node has ``L`` units, where ``L`` is the least
  common multiple of ``floor(gpus_per_node / gpus_per_replica)`` over the workloads on the pool.
  A replica takes ``L / replicas_per_node`` units. Replicas of different workloads may share a
  node, and the GPUs left over when ``gpus_per_replica`` does not divide ``gpus_per_node`` are
  charged to the replicas of that node.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from scaler.settings import CapacityModel, PoolSettings, WorkloadSettings

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]

# Demand ratios are rounded to this many decimals before ceil(), so that 40 / (25 * 0.8) gives
# 2 replicas and not 3 from a floating-point error in the last bit.
_RATIO_DECIMALS = 9


def replicas_for_demand(demand: npt.ArrayLike, capacity: CapacityModel) -> IntArray:
    """Convert demand to replicas: ceil(demand / (throughput x target utilisation)), clamped.

    The result lies in ``[min_replicas, max_replicas]``. ``demand`` must be finite and not
    negative, because missing demand is the caller's to handle (the policy keeps the floor).
    """
    values = np.asarray(demand, dtype=np.float64)
    if not np.all(np.isfinite(values)) or np.any(values < 0):
        raise ValueError(
            "demand must be finite and not negative; handle missing samples (NaN) before "
            "converting demand to replicas"
        )
    per_replica = capacity.throughput_per_replica * capacity.target_utilization
    ratio = np.ceil(np.round(values / per_replica, _RATIO_DECIMALS))
    # Clamped before the cast: a ratio above 2**63 (a runaway forecast) would wrap around.
    bounded = np.clip(ratio, capacity.min_replicas, capacity.max_replicas)
    return bounded.astype(np.int64)


def replicas_for_value(demand: float, capacity: CapacityModel) -> int:
    """Convert one demand value to replicas (the scalar fast path of ``replicas_for_demand``)."""
    if not math.isfinite(demand) or demand < 0:
        raise ValueError(
            f"demand must be finite and not negative, got {demand}; handle missing samples "
            "(NaN) before converting demand to replicas"
        )
    per_replica = capacity.throughput_per_replica * capacity.target_utilization
    raw = math.ceil(round(demand / per_replica, _RATIO_DECIMALS))
    return min(max(raw, capacity.min_replicas), capacity.max_replicas)


def demand_in_gpus(demand: npt.ArrayLike, capacity: CapacityModel) -> FloatArray:
    """Convert demand to the GPUs that serve it at the SLO: demand / throughput x GPUs/replica.

    This is capacity at full SLO throughput, not at target utilisation, so it measures what is
    really needed. NaN stays NaN.
    """
    values = np.asarray(demand, dtype=np.float64)
    return values / capacity.throughput_per_replica * capacity.gpus_per_replica


def replicas_per_node(gpus_per_node: int, gpus_per_replica: int) -> int:
    """Return how many replicas fit on one node: floor(gpus_per_node / gpus_per_replica)."""
    if gpus_per_replica > gpus_per_node:
        raise ValueError(
            f"a replica needs {gpus_per_replica} GPUs but a node has only {gpus_per_node}"
        )
    return gpus_per_node // gpus_per_replica


def nodes_for_replicas(replicas: npt.ArrayLike, per_node: int) -> IntArray:
    """Return the nodes that host ``replicas`` of one workload alone: ceil(replicas / per_node)."""
    values = np.asarray(replicas, dtype=np.int64)
    return -(-values // per_node)


@dataclass(frozen=True)
class Placement:
    """Placed replicas per workload and pool, slot units and nodes used per pool, and leftovers.

    ``nodes`` is the node requirement per pool: ceil(used units / units per node), clamped to
    ``[min_nodes, max_nodes]`` for burst pools and equal to the fixed size for static pools.
    """

    placed: Mapping[tuple[str, str], IntArray]  # (workload, pool) -> replicas on that pool
    used_units: Mapping[str, IntArray]
    nodes: Mapping[str, IntArray]
    unplaced: Mapping[str, IntArray]  # workload -> replicas that did not fit

    def placed_replicas(self, workload: str) -> IntArray:
        """Return the replicas of ``workload`` placed over all its pools."""
        parts = [value for (name, _), value in self.placed.items() if name == workload]
        return np.sum(parts, axis=0).astype(np.int64)


class Fleet:
    """The pools and workloads of one configuration, with the slot arithmetic precomputed."""

    def __init__(self, pools: Sequence[PoolSettings], workloads: Sequence[WorkloadSettings]):
        self.pools = {pool.name: pool for pool in pools}
        self.workloads = {workload.name: workload for workload in workloads}
        self.units_per_node: dict[str, int] = {}
        self.units_per_replica: dict[tuple[str, str], int] = {}
        self.pool_order: dict[str, tuple[str, ...]] = {}
        self._set_up_units()

    def _set_up_units(self) -> None:
        per_node: dict[tuple[str, str], int] = {}
        for workload in self.workloads.values():
            for pool_name in workload.pools:
                pool = self.pools[pool_name]
                per_node[workload.name, pool_name] = replicas_per_node(
                    pool.gpus_per_node, workload.capacity.gpus_per_replica
                )
            static_first = sorted(
                workload.pools, key=lambda name: 0 if self.pools[name].kind == "static" else 1
            )
            self.pool_order[workload.name] = tuple(static_first)
        for pool_name in self.pools:
            counts = [count for (_, name), count in per_node.items() if name == pool_name]
            self.units_per_node[pool_name] = math.lcm(*counts) if counts else 1
        for (workload_name, pool_name), count in per_node.items():
            self.units_per_replica[workload_name, pool_name] = (
                self.units_per_node[pool_name] // count
            )

    def workloads_on(self, pool_name: str) -> tuple[str, ...]:
        """Return the workloads that may run on ``pool_name``, in configuration order."""
        return tuple(
            name for name, workload in self.workloads.items() if pool_name in workload.pools
        )

    def fixed_nodes(self, pool_name: str) -> int:
        """Return a static pool's fixed size (its max_nodes)."""
        return self.pools[pool_name].max_nodes

    def place(
        self,
        replicas: Mapping[str, npt.ArrayLike],
        available_nodes: Mapping[str, npt.ArrayLike] | None = None,
    ) -> Placement:
        """Place each workload's replicas on its pools: static first, then burst in order.

        ``available_nodes`` caps each pool (usable nodes in a simulation); unset means every
        pool may grow to ``max_nodes``, which is what a plan assumes.
        """
        free: dict[str, IntArray] = {}
        for name, pool in self.pools.items():
            cap = pool.max_nodes if available_nodes is None else available_nodes[name]
            free[name] = np.asarray(cap, dtype=np.int64) * self.units_per_node[name]
        used = {name: np.zeros_like(units) for name, units in free.items()}

        placed: dict[tuple[str, str], IntArray] = {}
        unplaced: dict[str, IntArray] = {}
        for workload_name in self.workloads:
            remaining = np.asarray(replicas[workload_name], dtype=np.int64)
            for pool_name in self.pool_order[workload_name]:
                units = self.units_per_replica[workload_name, pool_name]
                fitting = np.minimum(remaining, free[pool_name] // units)
                free[pool_name] = free[pool_name] - fitting * units
                used[pool_name] = used[pool_name] + fitting * units
                placed[workload_name, pool_name] = fitting
                remaining = remaining - fitting
            unplaced[workload_name] = remaining

        nodes = {name: self._nodes_needed(name, units) for name, units in used.items()}
        return Placement(placed=placed, used_units=used, nodes=nodes, unplaced=unplaced)

    def _nodes_needed(self, pool_name: str, used_units: IntArray) -> IntArray:
        pool = self.pools[pool_name]
        if pool.kind == "static":
            return np.full_like(used_units, pool.max_nodes)
        needed = -(-used_units // self.units_per_node[pool_name])
        return np.clip(needed, pool.min_nodes, pool.max_nodes)

    def replicas_for_demand(self, demand: Mapping[str, npt.ArrayLike]) -> dict[str, IntArray]:
        """Convert each workload's demand to replicas (see ``replicas_for_demand``)."""
        return {
            name: replicas_for_demand(demand[name], workload.capacity)
            for name, workload in self.workloads.items()
        }
