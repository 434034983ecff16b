"""model: auto picks the lowest pinball loss in a rolling-origin backtest."""

from __future__ import annotations

import pandas as pd
import pytest

from forecaster.engine import ForecastEngine
from forecaster.forecast import Forecast
from forecaster.models import model_names
from forecaster.settings import ForecastSettings
from tests.forecaster.synthetic import daily_sine

AUTO = ForecastSettings(model="auto", season_lengths_seconds=[86_400])


@pytest.fixture(scope="module")
def auto_forecast() -> Forecast:
    series = daily_sine(days=16, step=pd.Timedelta(minutes=30), noise=6.0, seed=9)
    return ForecastEngine(AUTO).fit(series).predict()


def test_auto_scores_every_model(auto_forecast: Forecast) -> None:
    assert sorted(auto_forecast.scores) == model_names()


def test_auto_uses_lowest_score(auto_forecast: Forecast) -> None:
    scores = auto_forecast.scores

    assert auto_forecast.model == min(scores, key=scores.__getitem__)


def test_auto_note_lists_choice_and_scores(auto_forecast: Forecast) -> None:
    note = next(note for note in auto_forecast.notes if note.startswith("auto chose"))

    assert auto_forecast.model in note
    for name in model_names():
        assert f"{name}=" in note


def test_auto_on_short_history_uses_default() -> None:
    series = daily_sine(days=3, step=pd.Timedelta(minutes=30), noise=6.0)

    forecast = ForecastEngine(AUTO).fit(series).predict()

    assert forecast.model == "holt_winters"
    assert forecast.scores == {}
    assert any("too short to compare models" in note for note in forecast.notes)
