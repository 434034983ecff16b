"""ForecastEngine and FittedForecaster: fit, update, predict."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecaster.engine import ForecastEngine
from forecaster.errors import ConfigError, MissingDataError
from forecaster.history import History
from forecaster.settings import ForecastSettings
from tests.forecaster.synthetic import START, daily_sine, history

FIVE_MIN = pd.Timedelta(minutes=5)
HALF_HOUR = pd.Timedelta(minutes=30)
DAILY = ForecastSettings(season_lengths_seconds=[86_400])


@pytest.fixture(scope="module")
def two_weeks() -> History:
    return daily_sine(days=14, step=FIVE_MIN, noise=5.0)


def test_predict_covers_configured_horizon(two_weeks: History) -> None:
    forecast = ForecastEngine(DAILY).fit(two_weeks).predict()

    assert forecast.h == 48
    assert sorted(forecast.quantiles) == [0.5, 0.9, 0.95]
    assert forecast.model == "holt_winters"
    assert forecast.index[0] == forecast.cutoff + HALF_HOUR


def test_cutoff_is_last_complete_step(two_weeks: History) -> None:
    partial = two_weeks.until(two_weeks.end - pd.Timedelta(minutes=10))

    fitted = ForecastEngine(DAILY).fit(partial)

    assert partial.end.minute == 45
    assert fitted.cutoff == partial.end.floor("30min") - HALF_HOUR


def test_quantiles_monotone_and_non_negative(two_weeks: History) -> None:
    forecast = ForecastEngine(DAILY).fit(two_weeks).predict()

    q50, q90, q95 = (forecast.quantiles[level] for level in (0.5, 0.9, 0.95))
    assert (q50 <= q90).all()
    assert (q90 <= q95).all()
    assert (q50 >= 0).all()


def test_predict_h_overrides_horizon(two_weeks: History) -> None:
    forecast = ForecastEngine(DAILY).fit(two_weeks).predict(h=100)

    assert forecast.h == 100
    assert len(forecast.quantiles[0.9]) == 100


def test_predict_rejects_non_positive_h(two_weeks: History) -> None:
    fitted = ForecastEngine(DAILY).fit(two_weeks)

    with pytest.raises(ValueError, match="h must be a positive"):
        fitted.predict(h=0)


def test_update_feeds_only_new_complete_steps(two_weeks: History) -> None:
    engine = ForecastEngine(DAILY)
    cutoff = two_weeks.end - pd.Timedelta(days=1)
    fitted = engine.fit(two_weeks.until(cutoff))

    mid_step = fitted.update(two_weeks.until(cutoff + pd.Timedelta(minutes=20)))
    stepwise = mid_step.update(two_weeks)
    at_once = fitted.update(two_weeks)

    assert mid_step.cutoff == fitted.cutoff
    assert stepwise.cutoff == two_weeks.end - pd.Timedelta(minutes=25)
    np.testing.assert_array_equal(stepwise.predict().point, at_once.predict().point)


def test_update_without_new_step_returns_same(two_weeks: History) -> None:
    fitted = ForecastEngine(DAILY).fit(two_weeks)

    assert fitted.update(two_weeks) is fitted


def test_update_treats_skipped_steps_as_missing(two_weeks: History) -> None:
    engine = ForecastEngine(DAILY)
    fitted = engine.fit(two_weeks.until(two_weeks.end - pd.Timedelta(days=1)))
    recent = two_weeks.between(two_weeks.end - pd.Timedelta(hours=3), two_weeks.end)

    updated = fitted.update(recent)

    assert updated.cutoff == two_weeks.end - pd.Timedelta(minutes=25)
    assert np.isfinite(updated.predict().point).all()


def test_update_keeps_fitted_at(two_weeks: History) -> None:
    fitted = ForecastEngine(DAILY).fit(two_weeks.until(two_weeks.end - pd.Timedelta(hours=6)))

    updated = fitted.update(two_weeks)

    assert updated.fitted_at == fitted.cutoff
    assert updated.cutoff > fitted.cutoff


@pytest.mark.parametrize("level", [0.0, 7.5], ids=["all-zero", "constant"])
def test_constant_series_forecast_is_the_constant(level: float) -> None:
    series = history(np.full(14 * 48, level), HALF_HOUR)

    forecast = ForecastEngine(DAILY).fit(series).predict()

    np.testing.assert_allclose(forecast.point, level)
    np.testing.assert_allclose(forecast.quantiles[0.95], level)
    assert any("constant" in note for note in forecast.notes)


def test_negative_forecasts_are_clamped() -> None:
    series = daily_sine(days=10, step=HALF_HOUR, base=5.0, amplitude=40.0, noise=3.0)
    clipped = History(series.name, series.values.clip(lower=0), series.step)

    forecast = ForecastEngine(DAILY).fit(clipped).predict()

    assert forecast.point.min() >= 0
    assert min(q.min() for q in forecast.quantiles.values()) >= 0
    assert any("clamped to 0" in note for note in forecast.notes)


def test_history_without_observation_raises() -> None:
    series = history(np.full(100, np.nan), FIVE_MIN)

    with pytest.raises(MissingDataError, match="no observed value"):
        ForecastEngine(DAILY).fit(series)


def test_empty_history_raises() -> None:
    empty = History("w", pd.Series([], index=pd.DatetimeIndex([], tz="UTC"), dtype=float), FIVE_MIN)

    with pytest.raises(MissingDataError, match="empty"):
        ForecastEngine(DAILY).fit(empty)


def test_history_trimmed_to_history_seconds(two_weeks: History) -> None:
    settings = ForecastSettings(season_lengths_seconds=[86_400], history_seconds=3 * 86_400)

    steps = ForecastEngine(settings).model_steps(two_weeks)

    assert len(steps) == 3 * 48


def test_weekly_season_dropped_on_short_history(two_weeks: History) -> None:
    short = two_weeks.until(START + pd.Timedelta(days=10))

    forecast = ForecastEngine(ForecastSettings()).fit(short).predict()

    assert any(note.startswith("season of 7 d dropped") for note in forecast.notes)
    assert forecast.model == "holt_winters"


def test_model_options_reach_the_model(two_weeks: History) -> None:
    engine = ForecastEngine(DAILY, model_options={"holt_winters": {"trend": "none"}})

    fitted = engine.fit(two_weeks)

    assert not fitted.model.params.has_trend  # type: ignore[attr-defined]


def test_unknown_model_option_raises(two_weeks: History) -> None:
    engine = ForecastEngine(DAILY, model_options={"holt_winters": {"colour": "red"}})

    with pytest.raises(ConfigError, match=r"model_options\.holt_winters"):
        engine.fit(two_weeks)


def test_fit_update_predict_matches_one_shot_fit() -> None:
    """Parity: parameters estimated a day earlier change the forecast by under 2 % of the level."""
    series = daily_sine(days=21, step=HALF_HOUR, noise=4.0, seed=11)
    engine = ForecastEngine(DAILY)

    stale = engine.fit(series.until(series.end - pd.Timedelta(days=1))).update(series)
    fresh = engine.fit(series)

    assert stale.cutoff == fresh.cutoff
    np.testing.assert_allclose(stale.predict().point, fresh.predict().point, atol=2.0)


class FailingModel:
    """A model whose library fails on the data, as statsmodels may on odd input."""

    name = "holt_winters"

    def __init__(self, **options: object) -> None:
        pass

    def fit(self, y: pd.Series, context: object) -> None:
        raise np.linalg.LinAlgError("singular matrix")


def test_model_failure_falls_back_with_note(
    two_weeks: History, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("forecaster.fitting.get_model", lambda name: FailingModel())

    forecast = ForecastEngine(DAILY).fit(two_weeks).predict()

    assert forecast.model == "simple_exponential_smoothing"
    assert any("LinAlgError: singular matrix" in note for note in forecast.notes)


def test_infinite_step_counts_as_missing(two_weeks: History) -> None:
    values = two_weeks.values.copy()
    values.iloc[-1] = np.inf

    steps = ForecastEngine(DAILY).model_steps(History("w", values, two_weeks.step))

    assert np.isnan(steps.iloc[-1])


def test_leading_gap_is_trimmed_before_fit(two_weeks: History) -> None:
    # A history window that reaches back before the series began: the first 30 % is missing.
    values = two_weeks.values.copy()
    values.iloc[: int(len(values) * 0.3)] = np.nan
    gapped = History("w", values, two_weeks.step)

    fitted = ForecastEngine(DAILY).fit(gapped)
    forecast = fitted.predict()

    assert np.isfinite(forecast.point).all()
    assert fitted.model_name == "holt_winters"


def test_coarser_history_raises_model_step() -> None:
    half_hourly = daily_sine(days=14, step=HALF_HOUR, noise=5.0)
    settings = ForecastSettings(step_seconds=600, season_lengths_seconds=[86_400])

    fitted = ForecastEngine(settings).fit(half_hourly)
    forecast = fitted.predict()

    assert fitted.step == HALF_HOUR
    assert forecast.step == HALF_HOUR
    assert forecast.h == 48
    assert fitted.calibration.h == 48
    assert any("model step raised from 600 s" in note for note in forecast.notes)


def test_finer_history_keeps_configured_step(two_weeks: History) -> None:
    settings = ForecastSettings(step_seconds=600, season_lengths_seconds=[86_400])

    fitted = ForecastEngine(settings).fit(two_weeks)

    assert fitted.step == pd.Timedelta(minutes=10)
    assert not any("model step raised" in note for note in fitted.notes)


def test_raised_step_survives_update() -> None:
    half_hourly = daily_sine(days=15, step=HALF_HOUR, noise=5.0)
    settings = ForecastSettings(step_seconds=600, season_lengths_seconds=[86_400])
    first = half_hourly.until(half_hourly.start + pd.Timedelta(days=14) - HALF_HOUR)

    updated = ForecastEngine(settings).fit(first).update(half_hourly)

    assert updated.step == HALF_HOUR
    assert updated.cutoff == half_hourly.end
