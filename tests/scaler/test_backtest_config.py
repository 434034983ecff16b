"""The 7-day backtest of the embedded default config (config/peakcast.yaml) runs end to end."""

from __future__ import annotations

from forecaster.engine import ForecastEngine
from forecaster.history import History
from scaler.backtest.policies import DEFAULT_POLICIES
from scaler.backtest.runner import BacktestResult, run_backtest
from scaler.config_loader import load_settings
from scaler.histories import HistoryLoader
from scaler.settings import Settings
from tests.scaler.planning_fixtures import StandInEngine

WEEK_MINUTES = 7 * 1440


def _default_histories(settings: Settings) -> dict[str, History]:
    loader = HistoryLoader(settings)
    histories = {}
    for workload in settings.workloads:
        bounds = loader.bounds(workload)
        assert bounds is not None
        histories[workload.name] = loader.load(workload, *bounds)
    return histories


def _check(result: BacktestResult) -> None:
    assert list(result.runs) == list(DEFAULT_POLICIES)
    assert result.minutes == WEEK_MINUTES
    oracle = result.runs["oracle"].metrics.shortfall_gpu_minutes
    assert oracle == 0.0
    for run in result.runs.values():
        assert run.metrics.shortfall_gpu_minutes >= oracle
        assert run.metrics.gpu_hours > 0
        assert 0.0 <= run.metrics.slo_attainment <= 1.0
    assert len(result.forecasts) == WEEK_MINUTES // 60


def test_default_config_backtest_runs_with_stand_in_engine() -> None:
    settings = load_settings()
    result = run_backtest(
        settings, _default_histories(settings), engine=StandInEngine(settings.forecast)
    )
    _check(result)


def test_default_config_backtest_runs_with_forecast_engine() -> None:
    settings = load_settings()
    result = run_backtest(
        settings, _default_histories(settings), engine=ForecastEngine(settings.forecast)
    )
    _check(result)
