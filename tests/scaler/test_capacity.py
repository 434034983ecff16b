"""Capacity arithmetic: demand to replicas, replicas to nodes, static-before-burst placement."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scaler.core.capacity import (
    Fleet,
    demand_in_gpus,
    nodes_for_replicas,
    replicas_for_demand,
    replicas_for_value,
    replicas_per_node,
)
from scaler.settings import CapacityModel
from tests.scaler.planning_fixtures import settings_from

MODEL = CapacityModel(
    throughput_per_replica=25.0, target_utilization=0.8, min_replicas=2, max_replicas=64
)


@pytest.mark.parametrize(
    ("demand", "replicas"),
    [
        pytest.param(0.0, 2, id="zero-gives-min"),
        pytest.param(20.0, 2, id="below-min"),
        pytest.param(40.0, 2, id="exact-multiple-no-extra-replica"),
        pytest.param(40.01, 3, id="just-above-multiple"),
        pytest.param(60.0, 3, id="exact-three"),
        pytest.param(412.3, 21, id="ceil"),
        pytest.param(5000.0, 64, id="clamped-to-max"),
    ],
)
def test_replicas_for_demand_table(demand: float, replicas: int) -> None:
    assert int(replicas_for_demand(demand, MODEL)) == replicas
    assert replicas_for_value(demand, MODEL) == replicas


@pytest.mark.parametrize("demand", [float("nan"), -1.0, float("inf")])
def test_replicas_reject_missing_or_negative(demand: float) -> None:
    with pytest.raises(ValueError, match="finite and not negative"):
        replicas_for_demand([1.0, demand], MODEL)
    with pytest.raises(ValueError, match="finite and not negative"):
        replicas_for_value(demand, MODEL)


@given(st.lists(st.floats(0, 1e5, allow_nan=False), min_size=1, max_size=50))
@settings(max_examples=50, deadline=None)
def test_scalar_path_matches_array_path(demand: list[float]) -> None:
    array = replicas_for_demand(demand, MODEL)
    assert [replicas_for_value(value, MODEL) for value in demand] == list(array)


def test_demand_in_gpus_uses_full_throughput() -> None:
    model = CapacityModel(throughput_per_replica=25.0, target_utilization=0.5, gpus_per_replica=2)
    gpus = demand_in_gpus([50.0, np.nan], model)
    assert gpus[0] == pytest.approx(4.0)
    assert np.isnan(gpus[1])


@pytest.mark.parametrize(
    ("gpus_per_node", "gpus_per_replica", "per_node"),
    [
        pytest.param(8, 1, 8, id="one-gpu"),
        pytest.param(8, 2, 4, id="divides"),
        pytest.param(8, 3, 2, id="does-not-divide"),
        pytest.param(8, 5, 1, id="more-than-half"),
        pytest.param(8, 8, 1, id="whole-node"),
    ],
)
def test_replicas_per_node_table(gpus_per_node: int, gpus_per_replica: int, per_node: int) -> None:
    assert replicas_per_node(gpus_per_node, gpus_per_replica) == per_node


def test_replica_larger_than_node_rejected() -> None:
    with pytest.raises(ValueError, match="needs 9 GPUs"):
        replicas_per_node(8, 9)


def test_nodes_for_replicas_rounds_up() -> None:
    assert list(nodes_for_replicas([0, 1, 4, 5, 8], 4)) == [0, 1, 1, 2, 2]


def _pool(
    name: str, kind: str, max_nodes: int, min_nodes: int = 0, gpus: int = 8
) -> dict[str, Any]:
    return {
        "name": name,
        "kind": kind,
        "gpus_per_node": gpus,
        "min_nodes": min_nodes,
        "max_nodes": max_nodes,
    }


def _workload(name: str, pools: list[str], gpus_per_replica: int = 2) -> dict[str, Any]:
    return {
        "name": name,
        "demand": {"source": "trace", "series": "x", "unit": "requests_per_second"},
        "capacity": {
            "throughput_per_replica": 10.0,
            "gpus_per_replica": gpus_per_replica,
            "min_replicas": 0,
            "max_replicas": 1000,
        },
        "pools": pools,
    }


def _fleet(pools: list[dict[str, Any]], workloads: list[dict[str, Any]]) -> Fleet:
    config = settings_from({"pools": pools, "workloads": workloads})
    return Fleet(config.pools, config.workloads)


def _place(fleet: Fleet, replicas: dict[str, int]) -> tuple[dict[str, int], dict[str, int]]:
    placement = fleet.place(replicas)
    nodes = {name: int(value) for name, value in placement.nodes.items()}
    unplaced = {name: int(value) for name, value in placement.unplaced.items()}
    return nodes, unplaced


HYBRID = [_pool("cloud", "burst", 5), _pool("onprem", "static", 2)]


@pytest.mark.parametrize(
    ("replicas", "nodes", "unplaced"),
    [
        pytest.param(0, {"cloud": 0, "onprem": 2}, 0, id="nothing-needed"),
        pytest.param(8, {"cloud": 0, "onprem": 2}, 0, id="static-filled-first"),
        pytest.param(9, {"cloud": 1, "onprem": 2}, 0, id="burst-takes-the-rest"),
        pytest.param(28, {"cloud": 5, "onprem": 2}, 0, id="burst-full"),
        pytest.param(31, {"cloud": 5, "onprem": 2}, 3, id="beyond-max-nodes-unplaced"),
    ],
)
def test_static_pools_filled_before_burst(
    replicas: int, nodes: dict[str, int], unplaced: int
) -> None:
    # The workload lists the burst pool first; static pools are still filled first.
    fleet = _fleet(HYBRID, [_workload("llm", ["cloud", "onprem"])])
    assert _place(fleet, {"llm": replicas}) == (nodes, {"llm": unplaced})


def test_burst_pools_filled_in_listed_order() -> None:
    pools = [_pool("a", "burst", 1), _pool("b", "burst", 3)]
    fleet = _fleet(pools, [_workload("llm", ["b", "a"])])
    assert _place(fleet, {"llm": 13})[0] == {"a": 1, "b": 3}
    assert _place(fleet, {"llm": 5})[0] == {"a": 0, "b": 2}


def test_burst_pool_clamped_to_min_nodes() -> None:
    fleet = _fleet([_pool("cloud", "burst", 5, min_nodes=2)], [_workload("llm", ["cloud"])])
    assert _place(fleet, {"llm": 1})[0] == {"cloud": 2}


def test_shared_pool_sums_slots_of_workloads() -> None:
    # 8-GPU nodes: 'small' uses 2 GPUs (4 per node), 'large' uses 4 GPUs (2 per node).
    fleet = _fleet(
        [_pool("cloud", "burst", 10)],
        [_workload("small", ["cloud"], 2), _workload("large", ["cloud"], 4)],
    )
    # 2 small (half a node) + 1 large (half a node) share one node.
    assert _place(fleet, {"small": 2, "large": 1})[0] == {"cloud": 1}
    # 3 small (3/4) + 1 large (1/2) need 1.25 nodes: 2.
    assert _place(fleet, {"small": 3, "large": 1})[0] == {"cloud": 2}


def test_shared_pool_earlier_workload_placed_first() -> None:
    fleet = _fleet(
        [_pool("cloud", "burst", 1)],
        [_workload("first", ["cloud"], 4), _workload("second", ["cloud"], 4)],
    )
    nodes, unplaced = _place(fleet, {"first": 2, "second": 1})
    assert nodes == {"cloud": 1}
    assert unplaced == {"first": 0, "second": 1}


def test_shared_static_pool_then_private_burst() -> None:
    pools = [
        _pool("onprem", "static", 1),
        _pool("cloud-a", "burst", 4),
        _pool("cloud-b", "burst", 4),
    ]
    fleet = _fleet(
        pools,
        [_workload("a", ["cloud-a", "onprem"], 4), _workload("b", ["onprem", "cloud-b"], 4)],
    )
    # 'a' takes both on-prem slots, so all of 'b' goes to its burst pool.
    assert _place(fleet, {"a": 3, "b": 3})[0] == {"onprem": 1, "cloud-a": 1, "cloud-b": 2}


@pytest.mark.parametrize(
    ("gpus_per_replica", "replicas", "nodes"),
    [
        pytest.param(3, 5, 3, id="three-of-eight-two-per-node"),
        pytest.param(5, 3, 3, id="five-of-eight-one-per-node"),
        pytest.param(3, 4, 2, id="three-of-eight-full-nodes"),
    ],
)
def test_gpus_per_replica_not_dividing_node(
    gpus_per_replica: int, replicas: int, nodes: int
) -> None:
    fleet = _fleet([_pool("cloud", "burst", 10)], [_workload("llm", ["cloud"], gpus_per_replica)])
    assert _place(fleet, {"llm": replicas})[0] == {"cloud": nodes}


def test_available_nodes_cap_placement() -> None:
    fleet = _fleet(HYBRID, [_workload("llm", ["cloud", "onprem"])])
    placement = fleet.place(
        {"llm": np.array([12, 12])}, {"cloud": np.array([0, 1]), "onprem": np.array([2, 2])}
    )
    assert list(placement.placed_replicas("llm")) == [8, 12]
    assert list(placement.unplaced["llm"]) == [4, 0]


@given(
    small=st.integers(0, 40),
    large=st.integers(0, 20),
    extra=st.integers(0, 5),
)
@settings(max_examples=60, deadline=None)
def test_placement_monotone_in_replicas(small: int, large: int, extra: int) -> None:
    fleet = _fleet(
        [_pool("onprem", "static", 1), _pool("cloud", "burst", 6)],
        [_workload("small", ["cloud", "onprem"], 3), _workload("large", ["cloud", "onprem"], 4)],
    )
    base = fleet.place({"small": small, "large": large})
    more = fleet.place({"small": small + extra, "large": large})
    assert int(more.nodes["cloud"]) >= int(base.nodes["cloud"])
    assert 0 <= int(base.nodes["cloud"]) <= 6
