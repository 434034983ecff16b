"""Known forecasting failures of other autoscalers, each with the behaviour peakcast shows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from forecaster.engine import ForecastEngine
from forecaster.history import History
from forecaster.seasons import season_steps
from forecaster.settings import ForecastSettings
from tests.forecaster.synthetic import daily_sine, history

MINUTE = pd.Timedelta(minutes=1)
FIVE_MIN = pd.Timedelta(minutes=5)
HOUR = pd.Timedelta(hours=1)
DAY_SECONDS = 86_400


def test_tz_aware_history_keeps_peak_hour_in_utc() -> None:
    """Prophet rejects tz-aware timestamps; the wrapper strips the zone and keeps UTC."""
    series = daily_sine(days=2, step=MINUTE, peak_hour=14.0, noise=2.0)
    settings = ForecastSettings(
        model="prophet", season_lengths_seconds=[DAY_SECONDS], aggregation="mean"
    )

    forecast = ForecastEngine(settings).fit(series).predict()

    peak_time = forecast.index[int(np.argmax(forecast.point))]
    assert str(peak_time.tz) == "UTC"
    assert pd.Timestamp("13:30").time() <= peak_time.time() <= pd.Timestamp("14:30").time()


def test_minute_history_aggregated_before_prophet() -> None:
    """43,200 one-minute points reach Prophet as 1,440 half-hour steps without sampling."""
    series = daily_sine(days=30, step=MINUTE, noise=5.0)
    settings = ForecastSettings(model="prophet")

    fitted = ForecastEngine(settings).fit(series)
    forecast = fitted.predict()

    assert len(fitted.model.model.history) == 28 * 48  # type: ignore[attr-defined]
    assert fitted.model.model.uncertainty_samples == 0  # type: ignore[attr-defined]
    assert forecast.h == 48
    assert np.isfinite(forecast.quantiles[0.95]).all()


def test_forecast_of_zero_night_traffic_never_negative() -> None:
    """Seasonality drags Prophet below zero at night; every output is clamped at 0."""
    swing = daily_sine(days=14, step=HOUR, base=250.0, amplitude=250.0, noise=20.0)
    series = History("w", swing.values.clip(lower=0.0), HOUR)
    settings = ForecastSettings(
        model="prophet",
        step_seconds=3600,
        season_lengths_seconds=[DAY_SECONDS],
        horizon_seconds=2 * DAY_SECONDS,
    )

    forecast = ForecastEngine(settings).fit(series).predict()

    assert forecast.h == 48
    assert forecast.point.min() >= 0
    for level in forecast.quantiles:
        assert forecast.quantiles[level].min() >= 0


@pytest.mark.parametrize("model", ["prophet", "holt_winters"])
def test_recent_level_shift_followed(model: str) -> None:
    """A step from 200 to 400 in the last 2 of 14 days shows in the next hour's forecast."""
    values = np.full(14 * 288, 200.0)
    values[12 * 288 :] = 400.0
    values += np.random.default_rng(2).normal(0, 5, len(values))
    settings = ForecastSettings(model=model, season_lengths_seconds=[DAY_SECONDS])

    forecast = ForecastEngine(settings).fit(history(values, FIVE_MIN)).predict()

    np.testing.assert_allclose(forecast.point[:2], 400.0, rtol=0.15)


def test_sparse_night_hours_fall_back_to_seasonal_naive() -> None:
    """With 40 % of hours missing, mostly at night, the forecast stays in the observed band."""
    series = daily_sine(days=30, step=HOUR, base=100.0, amplitude=100.0, noise=5.0)
    values = series.values.clip(lower=0.0)
    lowest = np.argsort(values.to_numpy())[:289]
    values.iloc[lowest] = np.nan
    settings = ForecastSettings(
        model="prophet", step_seconds=3600, season_lengths_seconds=[DAY_SECONDS]
    )

    forecast = ForecastEngine(settings).fit(History("w", values, HOUR)).predict(h=6)

    assert forecast.model == "seasonal_naive"
    assert any("are observed" in note for note in forecast.notes)
    assert forecast.quantiles[0.9].max() <= 1.2 * values.max()


def test_season_in_samples_rejected() -> None:
    """A period of 1440 written in samples is a 24-minute duration and fails validation."""
    with pytest.raises(ValidationError, match="not a whole number of model steps"):
        ForecastSettings(season_lengths_seconds=[1440])


def test_daily_period_fits_minute_data() -> None:
    """One day is one daily period whatever the sample rate; next-day MAPE is under 10 %."""
    series = daily_sine(days=9, step=MINUTE, noise=2.0)
    train = series.until(series.start + pd.Timedelta(days=8) - MINUTE)
    settings = ForecastSettings(
        model="prophet", season_lengths_seconds=[DAY_SECONDS], aggregation="mean"
    )

    forecast = ForecastEngine(settings).fit(train).predict()

    assert season_steps([DAY_SECONDS], pd.Timedelta(minutes=30), 8 * 48)[0] == (48,)
    actual = series.values.resample("30min").mean().loc[forecast.index].to_numpy()
    mape = float(np.mean(np.abs(forecast.point - actual) / actual))
    assert mape < 0.10


def test_cold_start_follows_current_demand() -> None:
    """1.5 days of minute data is short of two daily seasons: a non-seasonal level is used."""
    series = daily_sine(days=1.5, step=MINUTE, noise=2.0)

    forecast = ForecastEngine(ForecastSettings()).fit(series).predict()

    recent = series.values.iloc[-60:].mean()
    assert forecast.model == "simple_exponential_smoothing"
    assert any("cannot be fitted" in note for note in forecast.notes)
    assert any("season of 1 d dropped" in note for note in forecast.notes)
    np.testing.assert_allclose(forecast.point[0], recent, rtol=0.1)
