"""Traces and command-line inputs unlike the bundled ones, and the errors they must produce."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from forecaster.errors import ConfigError, MissingDataError
from forecaster.history import History
from forecaster.settings import CsvSourceSettings
from forecaster.sources.csv import CsvSource
from scaler.backtest.trace import TraceView, build_trace
from scaler.cli.common import EXIT_CONFIG, EXIT_DATA, parse_timestamp
from scaler.cli.main import app
from tests.scaler.planning_fixtures import default_settings, servegen_history, small_settings

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_CONFIG = ROOT / "config" / "peakcast.yaml"
TRACE = ROOT / "data" / "servegen_m-large_10min.csv"


WORKLOAD = "llm-m-large"


@pytest.mark.parametrize("value", ["", "nan", "NaT"])
def test_parse_timestamp_rejects_not_a_time(value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_timestamp(value, "UTC", "--start")

    assert caught.value.key == "--start"
    assert "ISO 8601" in str(caught.value)


def test_parse_timestamp_repeated_local_hour() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_timestamp("2024-11-03T01:30", "America/New_York")

    message = str(caught.value)
    assert caught.value.key == "--at"
    assert "2024-11-03T01:30:00-04:00" in message
    assert "2024-11-03T01:30:00-05:00" in message


def test_parse_timestamp_offset_resolves_repeat() -> None:
    stamp = parse_timestamp("2024-11-03T01:30:00-05:00", "America/New_York")

    assert stamp.isoformat() == "2024-11-03T06:30:00+00:00"


@pytest.mark.parametrize("option", ["--start", "--end"])
def test_backtest_empty_time_option(option: str) -> None:
    """An unset shell variable (``--start "$START"``) is an option error, not a traceback."""
    result = CliRunner().invoke(
        app, ["backtest", "--config", str(DEFAULT_CONFIG), "--policies", "reactive", option, ""]
    )

    assert result.exit_code == EXIT_CONFIG, result.output
    assert f"error: {option}: invalid value ''" in result.output


def test_plan_repeated_local_hour(tmp_path: Path) -> None:
    raw = yaml.safe_load(DEFAULT_CONFIG.read_text(encoding="utf-8"))
    raw["timezone"] = "America/New_York"
    raw["sources"]["servegen"]["path"] = str(TRACE)
    path = tmp_path / "peakcast.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")

    result = CliRunner().invoke(app, ["plan", "--config", str(path), "--at", "1969-10-26T01:30:00"])

    assert result.exit_code == EXIT_CONFIG, result.output
    assert "1969-10-26T01:30:00-04:00" in result.output


def test_backtest_window_outside_trace() -> None:
    """A window without data used to report 100 % SLO attainment for every policy."""
    result = CliRunner().invoke(
        app,
        [
            "backtest",
            "--config",
            str(DEFAULT_CONFIG),
            "--policies",
            "reactive",
            "--start",
            "1969-01-01T00:00:00Z",
            "--end",
            "1969-02-01T00:00:00Z",
        ],
    )

    assert result.exit_code == EXIT_DATA, result.output
    assert "no workload has a demand sample in the simulated span" in result.output
    assert "SLO attainment" not in result.output


def test_backtest_window_shorter_than_warmup() -> None:
    result = CliRunner().invoke(
        app,
        [
            "backtest",
            "--config",
            str(DEFAULT_CONFIG),
            "--policies",
            "reactive",
            "--start",
            "1970-01-10T00:00:00Z",
        ],
    )

    assert result.exit_code == EXIT_DATA, result.output
    assert "leaves nothing to simulate" in result.output


def test_build_trace_empty_simulated_span() -> None:
    config = small_settings(backtest={"warmup_seconds": 86_400})
    index = pd.date_range("2024-01-01", periods=2 * 144, freq="10min", tz="UTC")
    values = pd.Series(np.nan, index=index)
    values.iloc[:144] = 100.0
    history = History("llm", values, pd.Timedelta(minutes=10))

    with pytest.raises(MissingDataError, match="samples from 2024-01-01T00:00:00"):
        build_trace(config, {"llm": history})


def test_jittered_csv_keeps_full_coverage(tmp_path: Path) -> None:
    """A 1-min trace whose timestamps are up to 2 s off is complete, not 75 % covered."""
    rng = np.random.default_rng(11)
    base = pd.Timestamp("2024-03-01", tz="UTC")
    offsets = np.arange(3 * 1440) * 60 + rng.uniform(-2, 2, 3 * 1440)
    times = [base + pd.Timedelta(seconds=float(s)) for s in offsets]
    path = tmp_path / "jitter.csv"
    pd.DataFrame({"timestamp": [t.isoformat() for t in times], "rps": 10.0}).to_csv(
        path, index=False
    )
    source = CsvSource(CsvSourceSettings(kind="csv", path=path))

    history = source.fetch("llm", "rps")

    assert history.coverage == 1.0
    assert any("sample grid" in note for note in history.report.notes)


def test_old_gap_stops_holding_once_data_is_back() -> None:
    """A 2.8-day outage holds capacity while it lasts and for no longer than the 6 h window."""
    settings = default_settings()
    history = servegen_history()
    values = history.values.copy()
    values.iloc[700:1100] = np.nan  # 400 ten-minute steps, days 4.9 to 7.6
    view = TraceView(
        build_trace(settings, {WORKLOAD: History(WORKLOAD, values, history.step)}), settings
    )
    gap_end = values.index[1100]

    inside = view.data_status(WORKLOAD, gap_end - pd.Timedelta(hours=1))
    just_after = view.data_status(WORKLOAD, gap_end + pd.Timedelta(hours=2))
    later = view.data_status(WORKLOAD, gap_end + pd.Timedelta(hours=7))

    assert not inside.usable
    assert not just_after.usable
    assert "over the last 6 h" in just_after.reason
    assert later.usable
    assert later.coverage < settings.forecast.min_coverage  # the gap is still in the history


@pytest.mark.parametrize(
    ("header", "hint"), [(False, True), (True, False)], ids=["header-less", "wrong-name"]
)
def test_missing_timestamp_column_hints_at_header(tmp_path: Path, header: bool, hint: bool) -> None:
    path = tmp_path / "trace.csv"
    rows = "1970-01-01T00:00:00,212.78\n1970-01-01T00:10:00,179.7\n"
    path.write_text(("time,rps\n" if header else "") + rows)
    source = CsvSource(CsvSourceSettings(kind="csv", path=path))

    with pytest.raises(ConfigError) as raised:
        source.columns()

    assert raised.value.key == "timestamp_column"
    assert ("may lack its header row" in raised.value.allowed) is hint
