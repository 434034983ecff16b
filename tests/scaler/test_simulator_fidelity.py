"""Random provisioning in the simulator: draws, failures, stockouts, billing, and the oracle.

The deterministic model is covered by test_simulator.py. Here every pool or workload with a
``simulator.pools`` or ``simulator.workloads`` entry is replayed through keyed draws. The checks
are invariants that must hold for any seed: conservation of billed node time, bounds, lead
times, no overtaking, common draws across policies, and the oracle as a lower bound on
under-provisioning.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from scaler.backtest.policies import DEFAULT_POLICIES
from scaler.backtest.runner import BacktestResult, run_backtest
from scaler.core.capacity import Fleet
from scaler.core.phases import lead_times_are_nominal, pool_phase
from scaler.core.positions import BEFORE_RUN, NEVER, PositionDraws
from scaler.core.simulator import InitialState, Simulation, simulate, trailing_min
from scaler.settings import Settings
from scaler.settings_simulator import FixedDuration, LognormalDuration
from tests.scaler.planning_fixtures import (
    StandInEngine,
    default_settings,
    history_from,
    servegen_history,
    settings_from,
    small_settings,
)


def _lognormal(median: float, p95: float) -> dict[str, Any]:
    return {"distribution": "lognormal", "median_seconds": median, "p95_seconds": p95}


def _uniform(low: float, high: float) -> dict[str, Any]:
    return {"distribution": "uniform", "min_seconds": low, "max_seconds": high}


# Node phase: boot of at least 180 s plus a GPU init above 0 s, so at least 4 whole minutes.
# Start phase: at least 120 s + 60 s, so at least 3 minutes.
RANDOM: dict[str, Any] = {
    "gpu_init_failure_probability": 0.2,
    "gpu_init_timeout_seconds": 600,
    "stockout_probability": 0.2,
    "stockout_seconds": 600,
    "redraw_interval_seconds": 3600,
    "pools": {
        "burst": {
            "node_boot_seconds": _uniform(180, 900),
            "gpu_init_seconds": _lognormal(120, 480),
        }
    },
    "workloads": {
        "llm": {"image_pull_seconds": _uniform(120, 400), "model_load_seconds": _uniform(60, 300)}
    },
}
MIN_NODE_PHASE_MINUTES = 4
MIN_START_MINUTES = 3


def _config(simulator: dict[str, Any] | None = None, **overrides: Any) -> Settings:
    options: dict[str, Any] = {
        "burst_max": 12,
        "min_replicas": 0,
        "max_replicas": 60,
        "provisioning_seconds": 600,
        "start_seconds": 300,
    }
    options.update(overrides)
    return small_settings(
        simulator={"scale_down_delay_seconds": 600, **(simulator or {})}, **options
    )


def _run(
    config: Settings,
    nodes: list[int] | np.ndarray,
    replicas: list[int] | np.ndarray,
    initial: InitialState | None = None,
) -> Simulation:
    fleet = Fleet(config.pools, config.workloads)
    start = initial or InitialState(nodes={"burst": 0}, replicas={"llm": 0})
    return simulate(config, fleet, {"burst": nodes}, {"llm": replicas}, start)


def _steps(levels: list[int], minutes_each: int) -> list[int]:
    return [level for level in levels for _ in range(minutes_each)]


targets = st.lists(st.integers(0, 12), min_size=2, max_size=12)
seeds = st.integers(0, 2**32)


def _random_run(seed: int, levels: list[int], **simulator: Any) -> tuple[Settings, Simulation]:
    config = _config({**RANDOM, "seed": seed, **simulator})
    nodes = _steps(levels, 40)
    replicas = [4 * level for level in nodes]
    initial = InitialState(nodes={"burst": levels[0]}, replicas={"llm": 4 * levels[0]})
    return config, _run(config, nodes, replicas, initial)


# --- settings ---------------------------------------------------------------------------------


def test_bare_number_is_fixed_duration() -> None:
    config = _config({"pools": {"burst": {"node_boot_seconds": 240}}})
    assert config.simulator.pools["burst"].node_boot_seconds == FixedDuration(
        distribution="fixed", seconds=240
    )


def test_lognormal_p95_below_median_rejected() -> None:
    with pytest.raises(ValidationError, match=r"p95_seconds \(60.0\) must not be below"):
        _config({"pools": {"burst": {"gpu_init_seconds": _lognormal(120, 60)}}})


@pytest.mark.parametrize(
    ("simulator", "message"),
    [
        pytest.param({"pools": {"gpu": {}}}, "pool 'gpu' is not defined", id="unknown-pool"),
        pytest.param({"pools": {"base": {}}}, "pool 'base' is static", id="static-pool"),
        pytest.param({"workloads": {"chat": {}}}, "workload 'chat' is not", id="unknown-workload"),
        pytest.param({"stockout_probability": 1.0}, "less than 1", id="certain-stockout"),
        pytest.param({"jitter_seconds": 5}, "Extra inputs", id="unknown-key"),
    ],
)
def test_invalid_simulator_settings_rejected(simulator: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        _config(simulator, static_nodes=1)


def test_unset_phase_is_configured_lead_time() -> None:
    config = _config(provisioning_seconds=610)
    phase = pool_phase(config, config.pool("burst"))
    assert phase.fixed_minutes() == 11
    assert phase.timeout_seconds == 900
    assert lead_times_are_nominal(config)


def test_one_part_set_makes_other_zero() -> None:
    config = _config({"pools": {"burst": {"gpu_init_seconds": 120}}})
    phase = pool_phase(config, config.pool("burst"))
    assert phase.fixed_minutes() == 2
    assert not lead_times_are_nominal(config)


# --- the deterministic model is kept ------------------------------------------------------------


def test_unset_settings_use_sliding_windows() -> None:
    config = _config()
    nodes = [0] * 10 + [3] * 60 + [0] * 50
    simulation = _run(config, nodes, [12 if n else 0 for n in nodes])
    assert simulation.node_logs == {}
    assert simulation.events == {}
    assert simulation.billed_node_seconds["burst"] == 60 * int(
        simulation.billed_nodes["burst"].sum()
    )
    assert simulation.billed_node_minutes("burst") == 70 * 3


@given(
    nodes=st.lists(st.integers(0, 6), min_size=1, max_size=80),
    replica_seed=st.lists(st.integers(0, 30), min_size=80, max_size=80),
    provisioning=st.integers(0, 6),
    start=st.integers(0, 6),
    delay=st.integers(0, 6),
    carried=st.tuples(st.integers(0, 4), st.integers(0, 12)),
)
@settings(max_examples=40, deadline=None)
def test_fixed_draws_match_sliding_windows(
    nodes: list[int],
    replica_seed: list[int],
    provisioning: int,
    start: int,
    delay: int,
    carried: tuple[int, int],
) -> None:
    # A uniform draw of zero width is fixed, but takes the path through draws.
    replicas = replica_seed[: len(nodes)]
    base = {"provisioning_seconds": provisioning * 60, "start_seconds": start * 60}
    drawn = {
        "redraw_interval_seconds": 3600,
        "billing_granularity_seconds": 20,
        "pools": {"burst": {"node_boot_seconds": _uniform(provisioning * 60, provisioning * 60)}},
        "workloads": {"llm": {"model_load_seconds": _uniform(start * 60, start * 60)}},
    }
    initial = InitialState(nodes={"burst": carried[0]}, replicas={"llm": carried[1]})
    windows = _run(
        _config({"scale_down_delay_seconds": delay * 60}, **base), nodes, replicas, initial
    )
    chains = _run(
        _config({"scale_down_delay_seconds": delay * 60, **drawn}, **base), nodes, replicas, initial
    )
    for series in ("billed_nodes", "usable_nodes", "running_replicas", "serving_replicas"):
        for name, values in getattr(windows, series).items():
            assert list(getattr(chains, series)[name]) == list(values), (series, name)
    assert chains.billed_node_seconds == windows.billed_node_seconds
    assert chains.events["burst"].redrawn_nodes == 0


# --- seeded and deterministic ---------------------------------------------------------------------


def _same_run(first: Simulation, second: Simulation) -> bool:
    series = ("billed_nodes", "usable_nodes", "serving_replicas")
    for name in series:
        for key, values in getattr(first, name).items():
            if not np.array_equal(values, getattr(second, name)[key]):
                return False
    logs = first.node_logs["burst"], second.node_logs["burst"]
    return all(
        np.array_equal(getattr(logs[0], field), getattr(logs[1], field))
        for field in ("position", "requested", "fulfilled", "usable", "released", "failed")
    )


def test_same_seed_same_run() -> None:
    levels = [1, 6, 2, 9, 0, 5]
    assert _same_run(_random_run(7, levels)[1], _random_run(7, levels)[1])


def test_other_seed_other_run() -> None:
    levels = [1, 6, 2, 9, 0, 5]
    first = _random_run(7, levels)[1]
    assert not any(_same_run(first, _random_run(seed, levels)[1]) for seed in (8, 9, 10))


def test_draw_depends_only_on_position_and_interval() -> None:
    # Two policies request position 3 at different minutes of the same redraw interval, and
    # at the same minute in another interval: the first nodes get the same draws.
    config = _config(RANDOM | {"stockout_probability": 0.0, "gpu_init_failure_probability": 0.0})
    early = _run(config, [0] * 5 + [3] * 40 + [0] * 35 + [3] * 40, [0] * 120)
    late = _run(config, [0] * 20 + [3] * 25 + [0] * 35 + [3] * 40, [0] * 120)
    for log in (early.node_logs["burst"], late.node_logs["burst"]):
        assert set(log.position) == {1, 2, 3}
    phases = []
    for log in (early.node_logs["burst"], late.node_logs["burst"]):
        first = (log.position == 3) & (log.attempt == 0)
        phases.append(dict(zip(log.requested[first] // 60, log.phase_minutes[first], strict=True)))
    assert phases[0] == phases[1]


# --- conservation and bounds --------------------------------------------------------------------


def _billed_from_log(simulation: Simulation) -> np.ndarray:
    log = simulation.node_logs["burst"]
    billed = np.zeros(simulation.minutes, dtype=np.int64)
    for fulfilled, released in zip(log.fulfilled, log.released, strict=True):
        if fulfilled != NEVER:
            billed[max(fulfilled, 0) : released] += 1
    return billed


@given(seed=seeds, levels=targets)
@settings(max_examples=25, deadline=None)
def test_billed_nodes_match_node_log(seed: int, levels: list[int]) -> None:
    _, simulation = _random_run(seed, levels)
    billed = simulation.billed_nodes["burst"]
    integral = int(billed.sum())
    assert list(_billed_from_log(simulation)) == list(billed)
    assert simulation.billed_node_seconds["burst"] == 60 * integral
    assert simulation.gpu_hours("burst") == integral * 8 / 60
    assert simulation.cost("burst") == integral / 60 * 10.0


@given(seed=seeds, levels=targets, granularity=st.sampled_from([1, 7, 60, 900, 3600]))
@settings(max_examples=25, deadline=None)
def test_billing_granularity_rounds_each_lifetime(
    seed: int, levels: list[int], granularity: int
) -> None:
    _, simulation = _random_run(seed, levels, billing_granularity_seconds=granularity)
    log = simulation.node_logs["burst"]
    billed = log.fulfilled != NEVER
    lifetimes = 60 * (log.released[billed] - np.maximum(log.fulfilled[billed], 0))
    rounded = int((np.ceil(lifetimes / granularity) * granularity).sum())
    assert simulation.billed_node_seconds["burst"] == rounded
    assert rounded >= 60 * int(simulation.billed_nodes["burst"].sum())


def test_hourly_billing_of_known_run() -> None:
    # One node requested at minute 0 and dropped after 51 minutes: released at minute 61.
    nodes = [1] * 51 + [0] * 30
    hourly = _run(_config({"billing_granularity_seconds": 3600}), nodes, [0] * 81)
    per_second = _run(_config({"billing_granularity_seconds": 1}), nodes, [0] * 81)
    assert per_second.billed_node_minutes("burst") == 61
    assert hourly.billed_node_minutes("burst") == 120
    assert hourly.gpu_hours("burst") == 16.0
    assert hourly.cost("burst") == 20.0


@given(seed=seeds, levels=targets)
@settings(max_examples=25, deadline=None)
def test_series_within_bounds(seed: int, levels: list[int]) -> None:
    config, simulation = _random_run(seed, [2 * level for level in levels])
    pool = config.pool("burst")
    requested = simulation.requested_nodes["burst"]
    billed = simulation.billed_nodes["burst"]
    assert np.all(simulation.node_targets["burst"] <= pool.max_nodes)
    assert np.all(requested <= pool.max_nodes)
    assert np.all(billed <= requested)
    assert np.all(simulation.usable_nodes["burst"] <= billed)
    assert np.all(simulation.replica_targets["llm"] <= config.workload("llm").capacity.max_replicas)
    assert np.all(simulation.running_replicas["llm"] <= simulation.replica_targets["llm"])
    assert np.all(simulation.serving_replicas["llm"] <= simulation.running_replicas["llm"])
    assert np.all(simulation.serving_replicas["llm"] >= 0)


# --- lead times, failures, stockouts --------------------------------------------------------------


@given(seed=seeds, levels=targets)
@settings(max_examples=25, deadline=None)
def test_nodes_usable_after_drawn_phase(seed: int, levels: list[int]) -> None:
    _, simulation = _random_run(seed, levels)
    log = simulation.node_logs["burst"]
    fresh = log.requested != BEFORE_RUN
    ready = fresh & (log.usable != NEVER)
    assert np.all(log.usable[ready] == log.fulfilled[ready] + log.phase_minutes[ready])
    assert np.all(log.fulfilled[fresh] >= log.requested[fresh])
    assert np.all(log.phase_minutes[fresh] >= MIN_NODE_PHASE_MINUTES)
    usable = np.zeros(simulation.minutes, dtype=np.int64)
    became_usable = log.usable != NEVER
    for start, stop in zip(log.usable[became_usable], log.released[became_usable], strict=True):
        usable[max(start, 0) : stop] += 1
    assert list(usable) == list(simulation.usable_nodes["burst"])


@given(seed=seeds, levels=targets)
@settings(max_examples=25, deadline=None)
def test_replicas_serve_after_shortest_start(seed: int, levels: list[int]) -> None:
    # No carried replicas: every serving replica started inside the run.
    config = _config({**RANDOM, "seed": seed})
    nodes = _steps(levels, 40)
    simulation = _run(config, nodes, [4 * level for level in nodes])
    running = simulation.running_replicas["llm"]
    bound = trailing_min(running, MIN_START_MINUTES, 0)
    assert np.all(simulation.serving_replicas["llm"] <= bound)


def test_failed_inits_billed_never_usable() -> None:
    config = _config({**RANDOM, "gpu_init_failure_probability": 0.5, "stockout_probability": 0})
    simulation = _run(config, [8] * 300, [0] * 300)
    log = simulation.node_logs["burst"]
    failed = log.failed
    assert simulation.events["burst"].failed_gpu_inits == int(failed.sum()) > 0
    assert np.all(log.usable[failed] == NEVER)
    # Billed from fulfilment until the GPU-init deadline, at least 10 minutes after Ready.
    assert np.all(log.released[failed] - log.fulfilled[failed] >= 10 + 3)
    for position, released in zip(log.position[failed], log.released[failed], strict=True):
        replacement = (log.position == position) & (log.requested == released)
        assert replacement.sum() == 1


def test_slow_gpu_init_counts_as_failure() -> None:
    # GPU init takes 20 min but the deadline is 15 min after Ready, so every node fails and is
    # replaced 2 + 15 minutes after its request, past the 32 draws of a chain.
    slow = {"pools": {"burst": {"node_boot_seconds": 120, "gpu_init_seconds": 1200}}}
    simulation = _run(_config(slow), [1] * 700, [4] * 700)
    log = simulation.node_logs["burst"]
    assert simulation.usable_nodes["burst"].max() == 0
    assert simulation.serving_replicas["llm"].max() == 0
    assert simulation.events["burst"].failed_gpu_inits == 41  # at minutes 17, 34, ..., 697
    assert list(log.requested[:3]) == [0, 17, 34]
    assert log.attempt.max() == 41
    assert simulation.billed_nodes["burst"].min() == 1


def test_stockout_delays_fulfilment_unbilled() -> None:
    config = _config({**RANDOM, "stockout_probability": 0.5, "gpu_init_failure_probability": 0})
    simulation = _run(config, _steps([0, 6, 1, 8, 0, 4], 40), [0] * 240)
    log = simulation.node_logs["burst"]
    events = simulation.events["burst"]
    delayed = (log.requested >= 0) & (log.fulfilled > log.requested) & (log.fulfilled != NEVER)
    assert events.stockout_delayed_requests >= int(delayed.sum()) > 0
    assert np.all(log.fulfilled[delayed] % 10 == 0)  # fulfilled when a 10-minute block ends
    pending = simulation.requested_nodes["burst"] - simulation.billed_nodes["burst"]
    assert np.all(pending >= 0)
    assert events.unmet_node_minutes == int(pending.sum()) > 0


# --- no overtaking -------------------------------------------------------------------------------


@given(seed=seeds, position=st.integers(1, 12), carried=st.integers(0, 4))
@settings(max_examples=30, deadline=None)
def test_ready_never_decreases_with_request(seed: int, position: int, carried: int) -> None:
    config = _config({**RANDOM, "seed": seed})
    phase = pool_phase(config, config.pool("burst"))
    draws = PositionDraws(phase, seed, 60, 600)
    requests = np.arange(600)
    ready = draws.ready(np.full(600, position), requests, carried)
    assert np.all(np.diff(ready) >= 0)
    assert np.all(ready[1:] >= requests[1:] + MIN_NODE_PHASE_MINUTES)
    assert (ready[0] == BEFORE_RUN) == (position <= carried)


def test_boundary_swap_replaces_slow_node() -> None:
    # Search seeds for a node still not usable at an interval boundary that a fresh node beats.
    for seed in range(200):
        _, simulation = _random_run(seed, [0, 12, 12, 12, 12, 12])
        if simulation.events["burst"].redrawn_nodes:
            break
    else:
        pytest.fail("no seed below 200 replaced a node at a redraw boundary")
    log = simulation.node_logs["burst"]
    boundary = (log.requested > 0) & (log.requested % 60 == 0) & (log.attempt == 0)
    swapped = [
        row
        for row in np.flatnonzero(boundary)
        if np.any((log.position == log.position[row]) & (log.released == log.requested[row]))
    ]
    assert swapped
    for row in swapped:
        earlier = (log.position == log.position[row]) & (log.released == log.requested[row])
        assert np.all(log.usable[earlier] == NEVER)
        assert not np.any(log.failed[earlier])


# --- several workloads and the hybrid setup -----------------------------------------------------


def _hybrid(simulator: dict[str, Any] | None = None) -> Settings:
    demand = {"source": "trace", "series": "req_per_s", "unit": "requests_per_second"}

    def workload(name: str, gpus: int) -> dict[str, Any]:
        return {
            "name": name,
            "demand": demand,
            "capacity": {
                "throughput_per_replica": 10.0,
                "gpus_per_replica": gpus,
                "min_replicas": 0,
                "max_replicas": 40,
            },
            "pools": ["onprem", "cloud"],
            "workload_start_seconds": 120,
        }

    return settings_from(
        {
            "pools": [
                {
                    "name": "onprem",
                    "kind": "static",
                    "gpus_per_node": 8,
                    "max_nodes": 2,
                    "min_nodes": 2,
                    "node_provisioning_seconds": 0,
                    "price_per_node_hour": 3.0,
                },
                {
                    "name": "cloud",
                    "kind": "burst",
                    "gpus_per_node": 8,
                    "max_nodes": 6,
                    "node_provisioning_seconds": 600,
                    "price_per_node_hour": 40.0,
                },
            ],
            "workloads": [workload("chat", 2), workload("embed", 4)],
            "simulator": {"scale_down_delay_seconds": 0, **(simulator or {})},
        }
    )


def _run_hybrid(config: Settings, cloud: list[int], chat: list[int], embed: list[int]):
    fleet = Fleet(config.pools, config.workloads)
    initial = InitialState(nodes={"cloud": 0}, replicas={"chat": 0, "embed": 0})
    return simulate(config, fleet, {"cloud": cloud}, {"chat": chat, "embed": embed}, initial)


def test_shared_pool_serves_earlier_workload_first() -> None:
    # On-prem has room for 8 chat replicas (2 GPUs each), so embed waits for cloud nodes.
    config = _hybrid()
    simulation = _run_hybrid(config, [0] * 5 + [2] * 40, [10] * 45, [4] * 45)
    running = simulation.running_replicas
    assert running["chat"][2] == 8
    assert running["embed"][2] == 0
    # At minute 15 two cloud nodes are usable: 2 more chat replicas, then 3 embed replicas.
    assert running["chat"][15] == 10
    assert running["embed"][15] == 3
    assert simulation.serving_replicas["embed"][16] == 0
    assert simulation.serving_replicas["embed"][17] == 3


def test_hybrid_cost_sums_static_and_burst_prices() -> None:
    config = _hybrid({"billing_granularity_seconds": 3600})
    simulation = _run_hybrid(config, [0] * 30 + [3] * 30 + [0] * 60, [0] * 120, [0] * 120)
    assert simulation.billed_node_minutes("onprem") == 2 * 120
    assert simulation.cost("onprem") == 2 * 2 * 3.0
    # Three cloud nodes billed for 30 minutes each, rounded up to an hour each.
    assert simulation.billed_node_minutes("cloud") == 3 * 60
    assert simulation.cost("cloud") == 3 * 40.0
    assert simulation.gpu_hours("cloud") == 3 * 8.0


def test_shared_pool_draws_per_workload() -> None:
    config = _hybrid(
        {
            "workloads": {
                "chat": {"image_pull_seconds": _uniform(60, 600)},
                "embed": {"model_load_seconds": _lognormal(120, 600)},
            }
        }
    )
    simulation = _run_hybrid(config, [6] * 90, [10] * 90, [8] * 90)
    assert simulation.serving_replicas["chat"][-1] == 10
    assert simulation.serving_replicas["embed"][-1] == 8
    first_serving = {
        name: int(np.argmax(serving > 0)) for name, serving in simulation.serving_replicas.items()
    }
    assert first_serving["chat"] >= 1
    assert first_serving["embed"] >= 10 + 1


# --- the oracle as a lower bound ----------------------------------------------------------------


def _shortfall_per_minute(result: BacktestResult, name: str, workload: str) -> np.ndarray:
    demand = result.demand_gpus[workload].astype(np.float64)
    serving = result.runs[name].series.serving_gpus[workload].astype(np.float64)
    return np.where(np.isnan(demand), 0.0, np.maximum(demand - serving, 0.0))


def _assert_oracle_lowest(result: BacktestResult, workload: str) -> None:
    oracle = result.runs["oracle"].metrics.shortfall_gpu_minutes
    oracle_minutes = _shortfall_per_minute(result, "oracle", workload)
    for name, run in result.runs.items():
        assert oracle <= run.metrics.shortfall_gpu_minutes, name
        assert np.all(oracle_minutes <= _shortfall_per_minute(result, name, workload)), name


@given(
    seed=seeds,
    levels=st.lists(st.floats(0, 2000), min_size=4, max_size=12),
    boot_minutes=st.integers(1, 20),
    start_minutes=st.integers(1, 10),
    gpus_per_replica=st.sampled_from([1, 2, 3]),
)
@settings(max_examples=15, deadline=None)
def test_oracle_never_worse_under_draws(
    seed: int, levels: list[float], boot_minutes: int, start_minutes: int, gpus_per_replica: int
) -> None:
    simulator = {
        **RANDOM,
        "seed": seed,
        "pools": {
            "burst": {
                "node_boot_seconds": _lognormal(boot_minutes * 60, boot_minutes * 150),
                "gpu_init_seconds": _uniform(0, 400),
            }
        },
        "workloads": {"llm": {"image_pull_seconds": _lognormal(start_minutes * 60, 900)}},
    }
    config = small_settings(
        static_nodes=1,
        burst_max=40,
        gpus_per_replica=gpus_per_replica,
        provisioning_seconds=boot_minutes * 60,
        start_seconds=start_minutes * 60,
        simulator=simulator,
        backtest={"warmup_seconds": 86400, "duration_seconds": 6 * 3600},
    )
    minutes = [levels[0]] * 1440 + [level for level in levels for _ in range(30)]
    minutes += [levels[-1]] * (1440 + 360 - len(minutes))
    history = history_from(minutes, step="1min")
    result = run_backtest(config, {"llm": history}, engine=StandInEngine(config.forecast))
    _assert_oracle_lowest(result, "llm")


def test_oracle_never_worse_on_real_trace_with_draws() -> None:
    simulator = {
        "seed": 11,
        "billing_granularity_seconds": 3600,
        "gpu_init_failure_probability": 0.05,
        "stockout_probability": 0.05,
        "pools": {
            "cloud-h100": {
                "node_boot_seconds": _lognormal(300, 720),
                "gpu_init_seconds": _uniform(60, 420),
            }
        },
        "workloads": {
            "llm-m-large": {
                "image_pull_seconds": _lognormal(150, 480),
                "model_load_seconds": _uniform(120, 300),
            }
        },
    }
    base = default_settings(backtest={"warmup_seconds": 2 * 86400, "duration_seconds": 2 * 86400})
    data = base.model_dump()
    data["simulator"].update(simulator)
    config = Settings.model_validate(data)
    engine = StandInEngine(config.forecast)
    result = run_backtest(config, {"llm-m-large": servegen_history(4)}, engine=engine)
    assert list(result.runs) == list(DEFAULT_POLICIES)
    for run in result.runs.values():
        assert set(run.provisioning) == {"cloud-h100"}
    _assert_oracle_lowest(result, "llm-m-large")


@given(
    levels=st.lists(st.floats(0, 2000), min_size=4, max_size=10),
    boot_minutes=st.integers(0, 20),
    start_minutes=st.integers(0, 10),
)
@settings(max_examples=10, deadline=None)
def test_foresight_matches_lead_windows_when_fixed(
    levels: list[float], boot_minutes: int, start_minutes: int
) -> None:
    # Zero-width uniform draws equal to the lead times: the oracle that reads the draws must
    # hold exactly what the lead-window oracle holds.
    drawn = {
        "pools": {"burst": {"node_boot_seconds": _uniform(boot_minutes * 60, boot_minutes * 60)}},
        "workloads": {
            "llm": {"image_pull_seconds": _uniform(start_minutes * 60, start_minutes * 60)}
        },
    }
    common: dict[str, Any] = {
        "static_nodes": 1,
        "burst_max": 40,
        "provisioning_seconds": boot_minutes * 60,
        "start_seconds": start_minutes * 60,
        "backtest": {"warmup_seconds": 86400, "duration_seconds": 6 * 3600},
    }
    minutes = [levels[0]] * 1440 + [level for level in levels for _ in range(30)]
    minutes += [levels[-1]] * (1440 + 360 - len(minutes))
    histories = {"llm": history_from(minutes, step="1min")}
    windows = run_backtest(small_settings(**common), histories, ["oracle"])
    foresight = run_backtest(small_settings(**common, simulator=drawn), histories, ["oracle"])
    for field in ("node_targets", "replica_targets", "serving_gpus"):
        expected = getattr(windows.runs["oracle"].series, field)
        actual = getattr(foresight.runs["oracle"].series, field)
        for name, values in expected.items():
            assert list(actual[name]) == list(values), (field, name)


def test_lognormal_draws_match_median_and_p95() -> None:
    duration = LognormalDuration(distribution="lognormal", median_seconds=300, p95_seconds=900)
    config = _config({"pools": {"burst": {"node_boot_seconds": duration.model_dump()}}})
    draws = PositionDraws(pool_phase(config, config.pool("burst")), 3, 60, 60)
    positions = np.arange(1, 20001)
    _, attempts = draws.chains(positions, np.zeros_like(positions), np.zeros_like(positions))
    minutes = attempts.phase_minutes
    assert np.median(minutes) == pytest.approx(5, abs=1)
    assert np.quantile(minutes, 0.95) == pytest.approx(15, abs=1)
    assert math.isclose(np.mean(minutes <= 15), 0.95, abs_tol=0.01)
