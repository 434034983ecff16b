"""Aggregation of a history to the model step."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecaster.aggregate import aggregate, complete_steps
from forecaster.errors import ConfigError
from tests.forecaster.synthetic import START, history

FIVE_MIN = pd.Timedelta(minutes=5)
HALF_HOUR = pd.Timedelta(minutes=30)
VALUES = np.array([1.0, 2, 3, 4, 5, 6, 10, 20, 30, 40, 50, 60])


@pytest.mark.parametrize(
    ("how", "expected"),
    [
        pytest.param("mean", [3.5, 35.0], id="mean"),
        pytest.param("max", [6.0, 60.0], id="max"),
        pytest.param("p50", [3.5, 35.0], id="p50"),
        pytest.param("p90", [5.5, 55.0], id="p90"),
        pytest.param("p99", [5.95, 59.5], id="p99"),
    ],
)
def test_aggregate_combines_each_step(how: str, expected: list[float]) -> None:
    steps = aggregate(history(VALUES, FIVE_MIN), HALF_HOUR, how)  # type: ignore[arg-type]

    np.testing.assert_allclose(steps.to_numpy(), expected)
    assert list(steps.index) == [START, START + HALF_HOUR]


def test_step_without_sample_is_nan() -> None:
    values = VALUES.copy()
    values[6:] = np.nan

    steps = aggregate(history(values, FIVE_MIN), HALF_HOUR, "max")

    assert steps.iloc[0] == 6.0
    assert np.isnan(steps.iloc[1])


def test_step_with_some_samples_uses_them() -> None:
    values = VALUES.copy()
    values[6:11] = np.nan

    steps = aggregate(history(values, FIVE_MIN), HALF_HOUR, "mean")

    assert steps.iloc[1] == 60.0


def test_labels_are_epoch_aligned_step_starts() -> None:
    start = START + pd.Timedelta(minutes=10)

    steps = aggregate(history(VALUES, FIVE_MIN, start), HALF_HOUR, "max")

    assert list(steps.index) == [START, START + HALF_HOUR, START + 2 * HALF_HOUR]
    np.testing.assert_allclose(steps.to_numpy(), [4.0, 40.0, 60.0])


def test_complete_steps_drop_partial_ends() -> None:
    start = START + pd.Timedelta(minutes=10)

    steps = complete_steps(history(VALUES, FIVE_MIN, start), HALF_HOUR, "max")

    assert list(steps.index) == [START + HALF_HOUR]


def test_complete_steps_keep_full_last_step() -> None:
    steps = complete_steps(history(VALUES, FIVE_MIN), HALF_HOUR, "max")

    assert len(steps) == 2


def test_step_equal_to_history_step_is_identity() -> None:
    steps = complete_steps(history(VALUES, FIVE_MIN), FIVE_MIN, "mean")

    np.testing.assert_array_equal(steps.to_numpy(), VALUES)


def test_step_shorter_than_history_step_raises() -> None:
    with pytest.raises(ConfigError, match=r"forecast\.step_seconds"):
        aggregate(history(VALUES, HALF_HOUR), FIVE_MIN, "max")


def test_long_minute_history_aggregates_every_step() -> None:
    values = np.arange(43_200, dtype=float)

    steps = complete_steps(history(values, pd.Timedelta(minutes=1)), HALF_HOUR, "max")

    assert len(steps) == 1_440
    np.testing.assert_array_equal(steps.to_numpy(), np.arange(29, 43_200, 30))
