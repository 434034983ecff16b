"""Target checks and the plain-English summary, including where peakcast does worse."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from scaler.backtest.metrics import RunMetrics
from scaler.report.from_backtest import target_checks
from scaler.report.model import BacktestSection, BacktestWindow, CapacityTrace
from scaler.report.summary import backtest_summary

START = pd.Timestamp("2024-01-01T00:00:00Z")


def metrics(shortfall: float, gpu_hours: float, cost: float, actions: int, windows=(0.0,)):
    return RunMetrics(
        workloads={},
        pools={},
        shortfall_gpu_minutes=shortfall,
        unserved_share=0.0,
        slo_attainment=1.0,
        gpu_hours=gpu_hours,
        cost=cost,
        scale_actions=actions,
        missing_minutes=0,
        wall_seconds=0.0,
        window_shortfall_gpu_minutes=tuple(windows),
    )


def section(policies: dict[str, RunMetrics]) -> BacktestSection:
    trace = CapacityTrace(START, np.zeros(60), {}, {})
    window = BacktestWindow(START, START + pd.Timedelta(minutes=30), 10.0)
    return BacktestSection(START, 1440, policies, (window,), target_checks(policies), trace)


def test_target_met_within_both_limits() -> None:
    checks = target_checks(
        {
            "reactive": metrics(100, 90, 900, 10),
            "oracle": metrics(0, 100, 1000, 10),
            "peakcast": metrics(20, 115, 1150, 5),
        }
    )
    (check,) = checks
    assert check.shortfall_share == pytest.approx(0.2)
    assert check.gpu_hours_ratio == pytest.approx(1.15)
    assert check.met is True


@pytest.mark.parametrize(
    ("shortfall", "gpu_hours", "shortfall_met", "gpu_hours_met"),
    [
        pytest.param(30, 110, False, True, id="too-short"),
        pytest.param(10, 130, True, False, id="too-many-gpu-hours"),
    ],
)
def test_target_missed(shortfall, gpu_hours, shortfall_met, gpu_hours_met) -> None:
    (check,) = target_checks(
        {
            "reactive": metrics(100, 90, 900, 10),
            "oracle": metrics(0, 100, 1000, 10),
            "peakcast": metrics(shortfall, gpu_hours, 1000, 5),
        }
    )
    assert check.shortfall_met is shortfall_met
    assert check.gpu_hours_met is gpu_hours_met
    assert check.met is False


def test_reactive_without_shortfall_gives_infinite_share() -> None:
    (check,) = target_checks(
        {"reactive": metrics(0, 90, 900, 10), "peakcast": metrics(5, 100, 1000, 5)}
    )
    assert math.isinf(check.shortfall_share)
    assert check.gpu_hours_ratio is None
    assert check.met is None


def test_summary_says_where_peakcast_loses() -> None:
    sentences = backtest_summary(
        section(
            {
                "reactive": metrics(100, 90, 900, 10, windows=(80.0,)),
                "oracle": metrics(0, 100, 1000, 10),
                "peakcast": metrics(30, 130, 1300, 20, windows=(10.0,)),
            }
        ),
        None,
    )
    text = " ".join(sentences)
    assert "misses the target" in text
    assert "on under-provisioning and GPU-hours" in text
    assert "Cheaper than peakcast (1,300): reactive (900)." in text
    assert "Fewer scale actions than peakcast (20): reactive (10)." in text
    assert "short in 1 of 1 peak windows" in text
    assert "20 of peakcast's 30 under-provisioned GPU-minutes fell outside" in text


def test_summary_without_peakcast_has_no_target() -> None:
    sentences = backtest_summary(section({"reactive": metrics(1, 1, 1, 1)}), None)
    assert any("no target check" in sentence for sentence in sentences)
