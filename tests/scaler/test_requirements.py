"""The requirement schedule: forecast quantile to replicas and nodes, and lead windows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecaster.forecast import Forecast
from scaler.core.capacity import Fleet
from scaler.core.requirements import (
    Requirements,
    pool_lead_seconds,
    requirements_from_forecasts,
    workload_lead_seconds,
)
from tests.scaler.planning_fixtures import default_settings, settings_from, small_settings

T0 = pd.Timestamp("2024-01-01 00:00", tz="UTC")
STEP = pd.Timedelta(minutes=10)


def _schedule(values: list[int]) -> Requirements:
    array = np.asarray(values, dtype=np.int64)
    return Requirements(
        start=T0,
        step=STEP,
        level=0.9,
        demand={"llm": array.astype(float)},
        replicas={"llm": array},
        nodes={"burst": array},
        unplaced={"llm": np.zeros_like(array)},
    )


@pytest.mark.parametrize(
    ("now", "lead_seconds", "value", "row"),
    [
        pytest.param(T0, 0, 1, 0, id="first-row-only"),
        pytest.param(T0, 600, 5, 1, id="window-end-touches-next-row"),
        pytest.param(T0 + pd.Timedelta(minutes=5), 300, 5, 1, id="inside-row-then-next"),
        pytest.param(T0 + pd.Timedelta(minutes=15), 1800, 9, 3, id="spans-rows"),
        pytest.param(T0 - pd.Timedelta(minutes=20), 300, 1, 0, id="before-schedule-uses-first"),
        pytest.param(T0 + pd.Timedelta(minutes=45), 3600, 4, 4, id="clipped-at-end"),
    ],
)
def test_window_peak_table(now: pd.Timestamp, lead_seconds: int, value: int, row: int) -> None:
    schedule = _schedule([1, 5, 2, 9, 4])
    peak = schedule.window_peak(schedule.replicas["llm"], now, lead_seconds)
    assert peak is not None
    assert (peak.value, peak.row) == (value, row)
    assert peak.start == now
    assert peak.end == now + pd.Timedelta(seconds=lead_seconds)


def test_window_peak_none_after_schedule_end() -> None:
    schedule = _schedule([1, 2])
    assert schedule.window_peak(schedule.replicas["llm"], T0 + pd.Timedelta(minutes=20), 0) is None
    assert not schedule.covers(T0 + pd.Timedelta(minutes=20))


def test_lead_windows_of_default_config() -> None:
    settings = default_settings()
    assert workload_lead_seconds(settings, "llm-m-large") == 420
    assert pool_lead_seconds(settings, "cloud-h100") == 900 + 420 + 120
    assert pool_lead_seconds(settings, "cloud-h100", margin=False) == 900 + 420


def _forecast(values: list[float], cutoff: pd.Timestamp = T0, level: float = 0.9) -> Forecast:
    array = np.asarray(values, dtype=float)
    return Forecast("llm", cutoff, STEP, array, {level: array}, "test")


def test_requirements_from_forecast_quantile() -> None:
    settings = small_settings(
        static_nodes=1,
        throughput=100.0,
        gpus_per_replica=2,
        policy={"workload_floor_fills_nodes": False},
    )
    fleet = Fleet(settings.pools, settings.workloads)
    requirements = requirements_from_forecasts(
        settings, fleet, {"llm": _forecast([50.0, 450.0, 1300.0])}
    )
    assert requirements.start == T0 + STEP
    assert list(requirements.replicas["llm"]) == [1, 5, 13]
    # 4 replicas per 8-GPU node; the static node takes the first 4.
    assert list(requirements.nodes["burst"]) == [0, 1, 3]
    assert list(requirements.nodes["base"]) == [1, 1, 1]


def test_requirements_reject_missing_planning_level() -> None:
    settings = small_settings()
    fleet = Fleet(settings.pools, settings.workloads)
    with pytest.raises(ValueError, match="no quantile at the planning level"):
        requirements_from_forecasts(settings, fleet, {"llm": _forecast([1.0], level=0.5)})


def test_requirements_reject_non_finite_forecast() -> None:
    settings = small_settings()
    fleet = Fleet(settings.pools, settings.workloads)
    with pytest.raises(ValueError, match="non-finite"):
        requirements_from_forecasts(settings, fleet, {"llm": _forecast([1.0, float("nan")])})


def test_requirements_reject_missing_workload() -> None:
    settings = small_settings()
    fleet = Fleet(settings.pools, settings.workloads)
    with pytest.raises(ValueError, match="no forecast for workload"):
        requirements_from_forecasts(settings, fleet, {})


def test_fill_raises_replicas_to_slots_of_needed_nodes() -> None:
    settings = small_settings(
        static_nodes=1, throughput=100.0, gpus_per_replica=2, max_replicas=100
    )
    fleet = Fleet(settings.pools, settings.workloads)
    requirements = requirements_from_forecasts(
        settings, fleet, {"llm": _forecast([50.0, 450.0, 1300.0])}
    )
    assert requirements.demand_replicas is not None
    assert list(requirements.demand_replicas["llm"]) == [1, 5, 13]
    # 4 replicas per node: the static node plus 0, 1 and 3 burst nodes hold 4, 8 and 16.
    assert list(requirements.replicas["llm"]) == [4, 8, 16]
    assert list(requirements.nodes["burst"]) == [0, 1, 3]


def test_fill_off_keeps_demand_replicas() -> None:
    settings = small_settings(
        static_nodes=1, throughput=100.0, policy={"workload_floor_fills_nodes": False}
    )
    fleet = Fleet(settings.pools, settings.workloads)
    requirements = requirements_from_forecasts(
        settings, fleet, {"llm": _forecast([50.0, 450.0, 1300.0])}
    )
    assert list(requirements.replicas["llm"]) == [1, 5, 13]


def test_fill_capped_by_max_replicas() -> None:
    settings = small_settings(static_nodes=1, throughput=100.0, max_replicas=6)
    fleet = Fleet(settings.pools, settings.workloads)
    requirements = requirements_from_forecasts(
        settings, fleet, {"llm": _forecast([50.0, 450.0, 550.0])}
    )
    # 6 replicas need one burst node (8 slots with the static node), but max_replicas is 6.
    assert list(requirements.replicas["llm"]) == [4, 6, 6]


def test_fill_leaves_shared_pool_slots_free() -> None:
    pool = {"kind": "burst", "gpus_per_node": 8, "max_nodes": 10}
    workload = {
        "demand": {"source": "trace", "series": "req_per_s", "unit": "requests_per_second"},
        "capacity": {"throughput_per_replica": 100.0, "target_utilization": 1.0},
    }
    settings = settings_from(
        {
            "pools": [{"name": "own", **pool, "max_nodes": 1}, {"name": "shared", **pool}],
            "workloads": [
                {"name": "chat", **workload, "pools": ["own", "shared"]},
                {"name": "code", **workload, "pools": ["shared"]},
            ],
        }
    )
    fleet = Fleet(settings.pools, settings.workloads)
    forecasts = {
        "chat": _forecast([1000.0]),
        "code": _forecast([300.0]),
    }
    requirements = requirements_from_forecasts(settings, fleet, forecasts)
    # chat needs 10 one-GPU replicas: 8 fill its own one-node pool, 2 go to the shared pool.
    # code's 3 replicas share that node, and its 3 free slots are left unassigned.
    assert list(requirements.nodes["own"]) == [1]
    assert list(requirements.nodes["shared"]) == [1]
    assert list(requirements.replicas["chat"]) == [10]
    assert list(requirements.replicas["code"]) == [3]
