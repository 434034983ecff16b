"""The provisioning simulator: lead times, scale-down delay, billing and shortfall.

The vectorised simulator is checked against a naive minute-by-minute reference that tracks
every node and replica on its own.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scaler.core.capacity import Fleet
from scaler.core.simulator import (
    InitialState,
    initial_state,
    leading_max,
    shortfall_gpus,
    simulate,
    trailing_max,
    trailing_min,
)
from scaler.settings import Settings
from tests.scaler.planning_fixtures import small_settings


def _config(
    provisioning: int = 10, start: int = 5, delay: int = 10, static_nodes: int = 0
) -> Settings:
    return small_settings(
        static_nodes=static_nodes,
        burst_max=50,
        min_replicas=0,
        max_replicas=500,
        provisioning_seconds=provisioning * 60,
        start_seconds=start * 60,
        simulator={"scale_down_delay_seconds": delay * 60},
    )


def _run(
    config: Settings, nodes: list[int], replicas: list[int], initial: InitialState | None = None
):
    fleet = Fleet(config.pools, config.workloads)
    start = initial or InitialState(nodes={"burst": 0}, replicas={"llm": 0})
    return simulate(config, fleet, {"burst": nodes}, {"llm": replicas}, start)


@given(st.lists(st.integers(-5, 5), max_size=40), st.integers(0, 9), st.integers(-5, 5))
@settings(max_examples=80, deadline=None)
def test_sliding_windows_match_naive_loops(values: list[int], window: int, before: int) -> None:
    trailing_high = [
        max([before] * max(0, window - t) + values[max(0, t - window) : t + 1])
        for t in range(len(values))
    ]
    trailing_low = [
        min([before] * max(0, window - t) + values[max(0, t - window) : t + 1])
        for t in range(len(values))
    ]
    padded = values + [values[-1]] * window if values else []
    leading = [max(padded[t : t + window + 1]) for t in range(len(values))]
    assert list(trailing_max(values, window, before)) == trailing_high
    assert list(trailing_min(values, window, before)) == trailing_low
    assert list(leading_max(values, window)) == leading


def _naive(
    node_targets: list[int],
    replica_targets: list[int],
    provisioning: int,
    start: int,
    delay: int,
    per_node: int,
) -> tuple[list[int], list[int], list[int]]:
    """Track each node (request time, unneeded since) and each replica (start time)."""
    nodes: list[list[float | None]] = []  # [requested_at, unneeded_since], oldest first
    replicas: list[float] = []  # started_at, oldest first
    billed, usable, serving = [], [], []
    for t, (node_target, replica_target) in enumerate(
        zip(node_targets, replica_targets, strict=True)
    ):
        while len(nodes) < node_target:
            nodes.append([t, None])
        for k, node in enumerate(nodes):
            if k < node_target:
                node[1] = None
            elif node[1] is None:
                node[1] = t
        # A node unneeded at every minute of [t - delay, t] is released.
        nodes = [n for n in nodes if n[1] is None or t - n[1] < delay]
        billed.append(len(nodes))
        ready = sum(1 for n in nodes if t - n[0] >= provisioning)
        usable.append(ready)
        running = min(replica_target, ready * per_node)
        while len(replicas) > running:
            replicas.pop()
        while len(replicas) < running:
            replicas.append(t)
        serving.append(sum(1 for s in replicas if t - s >= start))
    return billed, usable, serving


@given(
    nodes=st.lists(st.integers(0, 6), min_size=1, max_size=50),
    replica_seed=st.lists(st.integers(0, 30), min_size=50, max_size=50),
    provisioning=st.integers(0, 6),
    start=st.integers(0, 6),
    delay=st.integers(0, 6),
)
@settings(max_examples=60, deadline=None)
def test_simulator_matches_naive_reference(
    nodes: list[int], replica_seed: list[int], provisioning: int, start: int, delay: int
) -> None:
    replicas = replica_seed[: len(nodes)]
    config = _config(provisioning, start, delay)
    simulation = _run(config, nodes, replicas)
    billed, usable, serving = _naive(nodes, replicas, provisioning, start, delay, per_node=4)
    assert list(simulation.billed_nodes["burst"]) == billed
    assert list(simulation.usable_nodes["burst"]) == usable
    assert list(simulation.serving_replicas["llm"]) == serving


@given(
    nodes=st.lists(st.integers(0, 8), min_size=1, max_size=60),
    delay=st.integers(0, 8),
)
@settings(max_examples=60, deadline=None)
def test_gpu_hours_equal_billed_integral(nodes: list[int], delay: int) -> None:
    config = _config(delay=delay)
    simulation = _run(config, nodes, [0] * len(nodes))
    billed = simulation.billed_nodes["burst"]
    assert simulation.billed_node_minutes("burst") == int(billed.sum())
    assert simulation.gpu_hours("burst") == int(billed.sum()) * 8 / 60
    assert simulation.cost("burst") == int(billed.sum()) / 60 * 10.0
    assert np.all(billed >= np.asarray(nodes))


def test_gpu_hours_of_known_run() -> None:
    # 3 nodes requested at minute 10 and dropped at minute 70, released 10 minutes later.
    nodes = [0] * 10 + [3] * 60 + [0] * 50
    simulation = _run(_config(delay=10), nodes, [0] * len(nodes))
    assert simulation.billed_node_minutes("burst") == 70 * 3
    assert simulation.gpu_hours("burst") == 28.0
    assert simulation.billed_nodes["burst"][79] == 3
    assert simulation.billed_nodes["burst"][80] == 0


def test_capacity_serves_after_both_phases() -> None:
    # Burst pool only: nodes usable 10 minutes after the request, replicas serve 5 minutes later.
    nodes = [0] * 10 + [2] * 50
    replicas = [0] * 10 + [8] * 50
    simulation = _run(_config(provisioning=10, start=5), nodes, replicas)
    usable = simulation.usable_nodes["burst"]
    serving = simulation.serving_replicas["llm"]
    assert usable[19] == 0
    assert usable[20] == 2
    assert serving[24] == 0
    assert serving[25] == 8
    assert list(simulation.serving_gpus["llm"][25:27]) == [16, 16]


def test_static_pool_serves_after_workload_start_only() -> None:
    config = _config(provisioning=10, start=5, static_nodes=1)
    replicas = [0] * 10 + [6] * 50
    simulation = _run(config, [0] * 60, replicas)
    serving = simulation.serving_replicas["llm"]
    # 4 replicas fit on the static node at once; the rest wait for burst nodes that never come.
    assert serving[14] == 0
    assert serving[15] == 4
    assert serving[59] == 4
    assert simulation.billed_nodes["base"][0] == 1
    assert simulation.gpu_hours("base") == 60 * 8 / 60


@given(
    nodes=st.lists(st.integers(0, 6), min_size=1, max_size=60),
    replica_seed=st.lists(st.integers(0, 30), min_size=60, max_size=60),
    provisioning=st.integers(0, 8),
    start=st.integers(0, 8),
)
@settings(max_examples=60, deadline=None)
def test_lead_time_respected(
    nodes: list[int], replica_seed: list[int], provisioning: int, start: int
) -> None:
    replicas = replica_seed[: len(nodes)]
    simulation = _run(_config(provisioning, start), nodes, replicas)
    billed = simulation.billed_nodes["burst"]
    usable = simulation.usable_nodes["burst"]
    serving = simulation.serving_replicas["llm"]
    for t in range(len(nodes)):
        # A usable node was billed through the whole provisioning phase.
        assert usable[t] <= min(billed[max(0, t - provisioning) : t + 1])
        # A serving replica was wanted, and had a slot, through the whole start phase.
        window = slice(max(0, t - start), t + 1)
        assert serving[t] <= min(replicas[window])
        assert serving[t] <= 4 * min(usable[window])
        if t < provisioning + start:
            assert serving[t] == 0


def test_initial_state_serves_from_first_minute() -> None:
    config = _config(provisioning=10, start=5)
    fleet = Fleet(config.pools, config.workloads)
    initial = initial_state(config, fleet, {"llm": 750.0})
    assert initial == InitialState(nodes={"burst": 2}, replicas={"llm": 8})
    simulation = _run(config, [2] * 5, [8] * 5, initial)
    assert list(simulation.serving_replicas["llm"]) == [8] * 5
    assert list(simulation.usable_nodes["burst"]) == [2] * 5


def test_initial_state_missing_demand_gives_min_replicas() -> None:
    config = small_settings(min_replicas=3)
    fleet = Fleet(config.pools, config.workloads)
    assert initial_state(config, fleet, {"llm": math.nan}).replicas == {"llm": 3}


def test_targets_clamped_to_bounds() -> None:
    config = small_settings(burst_max=3, min_replicas=1, max_replicas=10)
    simulation = _run(config, [9, 9], [0, 50])
    assert list(simulation.node_targets["burst"]) == [3, 3]
    assert list(simulation.replica_targets["llm"]) == [1, 10]


def test_target_length_mismatch_rejected() -> None:
    with pytest.raises(ValueError, match="target series has 2 minutes but the run has 3"):
        _run(_config(), [1, 1], [1, 1, 1])


def test_shortfall_excludes_missing_minutes() -> None:
    short = shortfall_gpus(np.array([4.0, np.nan, 1.0]), np.array([2, 2, 2]))
    assert short[0] == 2.0
    assert np.isnan(short[1])
    assert short[2] == 0.0
