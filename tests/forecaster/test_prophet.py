"""Prophet wrapper: periods in days, events, and update moving the cutoff."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecaster.errors import ConfigError
from forecaster.models.base import ModelContext
from forecaster.models.prophet import Prophet
from tests.forecaster.synthetic import daily_sine

STEP = pd.Timedelta(hours=1)


@pytest.fixture(scope="module")
def three_weeks() -> pd.Series:
    return daily_sine(days=21, step=STEP, noise=3.0).values


def test_periods_passed_in_days(three_weeks: pd.Series) -> None:
    fitted = Prophet().fit(three_weeks, ModelContext(STEP, (24, 168)))

    seasonalities = fitted.model.seasonalities
    assert seasonalities["daily"]["period"] == 1.0
    assert seasonalities["weekly"]["period"] == 7.0
    assert fitted.model.changepoint_range == 0.95


def test_update_moves_cutoff_without_refit(three_weeks: pd.Series) -> None:
    fitted = Prophet().fit(three_weeks.iloc[:-6], ModelContext(STEP, (24,)))

    updated = fitted.update(three_weeks.iloc[-6:])

    assert updated.model is fitted.model
    np.testing.assert_allclose(updated.predict(24), fitted.predict(30)[6:])


def test_events_become_holidays() -> None:
    model = Prophet(events=[{"name": "launch", "ds": "2024-03-20T00:00:00Z", "upper_window": 1}])

    assert model.events is not None
    assert model.events.loc[0, "holiday"] == "launch"
    assert model.events.loc[0, "ds"] == pd.Timestamp("2024-03-20")
    assert model.events.loc[0, "upper_window"] == 1


def test_event_without_date_raises() -> None:
    with pytest.raises(ConfigError, match=r"events\[0\]"):
        Prophet(events=[{"name": "launch"}])
