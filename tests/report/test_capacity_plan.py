"""The capacity plan's arithmetic against values worked out by hand.

The hand-made setup: one static node of 8 GPUs (4 replicas of 2 GPUs), a burst pool of 8-GPU
nodes at 10 per node-hour, and one replica serving 10 requests/s at 100 % target utilisation.
The P90 forecast is 30 requests/s (3 replicas, all on the static node) except 70 for four
hours on day 1 (7 replicas: 3 on one burst node) and 90 for two hours on day 2 (9 replicas: 5 on
two burst nodes); day 3 stays at 30. P95 is P90 + 40, so its highest need is 13 replicas, 9 on
three burst nodes.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from forecaster.errors import DataError
from forecaster.forecast import Forecast
from scaler.report.capacity_plan import day_blocks, plan_capacity
from scaler.settings import Settings

CUTOFF = pd.Timestamp("2024-03-01T00:00:00Z")
STEP = pd.Timedelta(hours=1)
H = 72


def hand_settings(burst_max: int = 3, static_price: float = 1.0) -> Settings:
    raw: dict[str, Any] = {
        "sources": {"trace": {"kind": "csv", "path": "unused.csv"}},
        "pools": [
            {
                "name": "base",
                "kind": "static",
                "gpus_per_node": 8,
                "min_nodes": 1,
                "max_nodes": 1,
                "node_provisioning_seconds": 0,
                "price_per_node_hour": static_price,
            },
            {
                "name": "burst",
                "kind": "burst",
                "gpus_per_node": 8,
                "min_nodes": 0,
                "max_nodes": burst_max,
                "node_provisioning_seconds": 600,
                "price_per_node_hour": 10.0,
            },
        ],
        "workloads": [
            {
                "name": "llm",
                "demand": {"source": "trace", "series": "rps", "unit": "requests_per_second"},
                "capacity": {
                    "throughput_per_replica": 10.0,
                    "target_utilization": 1.0,
                    "gpus_per_replica": 2,
                    "min_replicas": 0,
                    "max_replicas": 100,
                },
                "pools": ["base", "burst"],
            }
        ],
        "forecast": {
            "step_seconds": 3600,
            "season_lengths_seconds": [86400],
            "horizon_seconds": H * 3600,
            "levels": [0.5, 0.9, 0.95],
            "planning_level": 0.9,
        },
    }
    return Settings.model_validate(raw)


def hand_forecast(cutoff: pd.Timestamp = CUTOFF, name: str = "llm") -> Forecast:
    p90 = np.full(H, 30.0)
    p90[10:14] = 70.0
    p90[34:36] = 90.0
    return Forecast(
        name=name,
        cutoff=cutoff,
        step=STEP,
        point=p90 - 10,
        quantiles={0.5: p90 - 10, 0.9: p90, 0.95: p90 + 40},
        model="hand",
    )


@pytest.fixture(scope="module")
def plan():
    return plan_capacity(hand_settings(), {"llm": hand_forecast()}, reserve_quantile=0.9)


def pool(plan, name: str):
    return next(p for p in plan.pools if p.name == name)


def test_windows_are_spans_above_base(plan) -> None:
    first = CUTOFF + STEP
    assert [(w.start, w.end) for w in plan.windows] == [
        (first + 10 * STEP, first + 14 * STEP),
        (first + 34 * STEP, first + 36 * STEP),
    ]


def test_window_sizes_per_pool(plan) -> None:
    day1, day2 = plan.windows
    assert day1.peak_demand == {"llm": 70.0}
    assert day1.gpus == {"base": 8, "burst": 6}
    assert day1.nodes == {"base": 1, "burst": 1}
    assert day2.peak_demand == {"llm": 90.0}
    assert day2.gpus == {"base": 8, "burst": 10}
    assert day2.nodes == {"base": 1, "burst": 2}
    assert day2.peak_time == CUTOFF + STEP + 34 * STEP


def test_burst_bounds_recommended(plan) -> None:
    burst = pool(plan, "burst")
    assert burst.recommended_min_nodes == 0
    assert burst.recommended_max_nodes == 3  # 130 requests/s at P95: 9 burst replicas
    assert burst.peak_nodes == 2
    assert burst.peak_gpus_used == 10


def test_static_pool_keeps_fixed_size(plan) -> None:
    base = pool(plan, "base")
    assert base.recommended_min_nodes == base.recommended_max_nodes == 1
    assert base.reserved_nodes == 1
    assert base.peak_gpus_used == 8
    assert base.mean_gpus_used == pytest.approx((66 * 6 + 6 * 8) / 72)


def test_reserve_covers_daily_peak_quantile(plan) -> None:
    # Daily peaks of burst nodes: 1, 2, 0. The 90 % quantile ('higher') is 2.
    assert plan.reserved.daily_peak_gpus == (16, 24, 8)
    assert pool(plan, "burst").reserved_nodes == 2
    assert plan.reserved.static_gpus == 8
    assert plan.reserved.burst_gpus == 16
    assert plan.reserved.total_gpus == 24


def test_median_reserve_takes_middle_day() -> None:
    plan = plan_capacity(hand_settings(), {"llm": hand_forecast()}, reserve_quantile=0.5)
    assert pool(plan, "burst").reserved_nodes == 1


def test_cost_per_day_and_month(plan) -> None:
    burst = pool(plan, "burst")
    # Burst nodes held: 1 for 4 steps and 2 for 2 steps of 72, at 10 per node-hour.
    assert burst.mean_nodes == pytest.approx(8 / 72)
    assert burst.cost_per_day == pytest.approx(8 / 72 * 24 * 10)
    assert pool(plan, "base").cost_per_day == pytest.approx(24.0)
    assert plan.cost_per_day == pytest.approx(24.0 + 8 / 72 * 240)
    assert plan.cost_per_month == pytest.approx(30 * plan.cost_per_day)


def test_held_gpus_are_whole_nodes(plan) -> None:
    assert plan.held_gpus["burst"][10] == 8
    assert plan.held_gpus["burst"][34] == 16
    assert plan.held_gpus["base"].tolist() == [8] * H
    assert plan.needed_gpus["burst"][10] == 6


def test_max_nodes_below_need_is_noted() -> None:
    plan = plan_capacity(hand_settings(burst_max=2), {"llm": hand_forecast()})
    assert pool(plan, "burst").recommended_max_nodes == 3
    assert any("max_nodes of 2" in note for note in plan.notes)


def test_no_note_when_bounds_suffice(plan) -> None:
    assert plan.notes == ()


def test_misaligned_forecasts_raise() -> None:
    settings = hand_settings()
    raw = settings.model_dump()
    second = dict(raw["workloads"][0], name="llm-b")
    raw["workloads"].append(second)
    two = Settings.model_validate(raw)
    forecasts = {
        "llm": hand_forecast(),
        "llm-b": hand_forecast(CUTOFF + STEP, name="llm-b"),
    }
    with pytest.raises(DataError, match="does not match"):
        plan_capacity(two, forecasts)


def test_missing_planning_level_raises() -> None:
    forecast = hand_forecast()
    without = Forecast(
        forecast.name, forecast.cutoff, forecast.step, forecast.point, {0.5: forecast.point}, "x"
    )
    with pytest.raises(DataError, match=r"planning level 0\.9"):
        plan_capacity(hand_settings(), {"llm": without})


@pytest.mark.parametrize(
    ("h", "step", "expected"),
    [
        pytest.param(48, STEP, [slice(0, 24), slice(24, 48)], id="two-days"),
        pytest.param(30, STEP, [slice(0, 24)], id="partial-day-left-out"),
        pytest.param(6, STEP, [slice(0, 6)], id="under-a-day"),
    ],
)
def test_day_blocks(h: int, step: pd.Timedelta, expected: list[slice]) -> None:
    assert day_blocks(h, step) == expected
