"""CsvSource reading synthetic and bundled traces, its errors, and the source registry."""

from __future__ import annotations

import datetime as dt
import gzip
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from forecaster.errors import ConfigError, DataError
from forecaster.history import History
from forecaster.settings import CsvSourceSettings, MissingPeriod, ThanosSourceSettings
from forecaster.sources import CsvSource, HistorySource, build_source

DATA = Path(__file__).resolve().parents[2] / "data"
MINUTE = pd.Timedelta(minutes=1)

SMALL_TRACE = """timestamp,rate,other
2021-01-01T00:00:00,1.0,5
2021-01-01T00:01:00,2.0,5
2021-01-01T00:02:00,,5
2021-01-01T00:03:00,4.0,5
"""


def utc(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


def write(tmp_path: Path, text: str, name: str = "trace.csv") -> Path:
    path = tmp_path / name
    if name.endswith(".gz"):
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return path


def source_for(path: Path, **settings: object) -> CsvSource:
    return CsvSource(CsvSourceSettings(kind="csv", path=path, **settings))  # type: ignore[arg-type]


def is_regular_utc(history: History) -> bool:
    index = pd.DatetimeIndex(history.values.index)
    spacing = np.diff(index.as_unit("ns").asi8)
    return str(index.tz) == "UTC" and bool((spacing == history.step.value).all())


# Reading ---------------------------------------------------------------------------------


def test_fetch_returns_values_on_grid(tmp_path: Path) -> None:
    source = source_for(write(tmp_path, SMALL_TRACE))

    history = source.fetch("llm", "rate", utc("2021-01-01T00:00"), utc("2021-01-01T00:03"), MINUTE)

    assert history.values.tolist()[:2] == [1.0, 2.0]
    assert history.values.iloc[3] == 4.0


def test_fetch_names_history(tmp_path: Path) -> None:
    history = source_for(write(tmp_path, SMALL_TRACE)).fetch("llm", "rate")

    assert history.name == "llm"


def test_gzip_trace_read_like_plain(tmp_path: Path) -> None:
    plain = source_for(write(tmp_path, SMALL_TRACE)).fetch("a", "rate")
    packed = source_for(write(tmp_path, SMALL_TRACE, "trace.csv.gz")).fetch("a", "rate")

    pd.testing.assert_series_equal(plain.values, packed.values)


def test_empty_cell_is_missing_not_zero(tmp_path: Path) -> None:
    history = source_for(write(tmp_path, SMALL_TRACE)).fetch("llm", "rate")

    assert np.isnan(history.values.iloc[2])
    assert history.report.non_finite_dropped == 1


def test_gap_stays_nan_and_lowers_coverage(tmp_path: Path) -> None:
    text = "timestamp,rate\n" + "\n".join(
        f"2021-01-01T00:{minute:02d}:00,3.0" for minute in [0, 1, 2, 6, 7, 8, 9]
    )

    history = source_for(write(tmp_path, text)).fetch("llm", "rate")

    assert history.values.isna().sum() == 3
    assert history.coverage == pytest.approx(0.7)


def test_step_defaults_to_trace_step(tmp_path: Path) -> None:
    history = source_for(write(tmp_path, SMALL_TRACE)).fetch("llm", "rate")

    assert history.step == MINUTE


def test_coarser_step_averages(tmp_path: Path) -> None:
    source = source_for(write(tmp_path, SMALL_TRACE))

    history = source.fetch("llm", "rate", step=pd.Timedelta(minutes=2))

    assert history.values.tolist() == [1.5, 4.0]


def test_finer_step_holds_and_notes_it(tmp_path: Path) -> None:
    source = source_for(write(tmp_path, SMALL_TRACE))

    history = source.fetch("llm", "rate", step=pd.Timedelta(seconds=30))

    assert history.values.tolist()[:4] == [1.0, 1.0, 2.0, 2.0]
    assert "held constant" in history.report.notes[-1]


def test_window_beyond_data_is_nan(tmp_path: Path) -> None:
    source = source_for(write(tmp_path, SMALL_TRACE))

    history = source.fetch("llm", "rate", utc("2020-12-31T23:58"), utc("2021-01-01T00:05"), MINUTE)

    assert history.values.isna().tolist() == [True, True, False, False, True, False, True, True]
    assert history.coverage == pytest.approx(3 / 8)


def test_window_report_counts_only_window(tmp_path: Path) -> None:
    source = source_for(write(tmp_path, SMALL_TRACE))

    history = source.fetch("llm", "rate", utc("2021-01-01T00:00"), utc("2021-01-01T00:01"), MINUTE)

    assert history.report.non_finite_dropped == 0


def test_file_read_once_per_source(tmp_path: Path) -> None:
    path = write(tmp_path, SMALL_TRACE)
    source = source_for(path)
    first = source.fetch("llm", "rate")
    path.unlink()

    again = source.fetch("llm", "other")

    assert len(again.values) == len(first.values)


def test_bounds_are_first_and_last_row(tmp_path: Path) -> None:
    text = SMALL_TRACE + "2020-12-31T23:59:00,7.0,5\n"

    bounds = source_for(write(tmp_path, text)).bounds("rate")

    assert bounds == (utc("2020-12-31T23:59"), utc("2021-01-01T00:03"))


def test_columns_lists_value_columns(tmp_path: Path) -> None:
    assert source_for(write(tmp_path, SMALL_TRACE)).columns() == ["rate", "other"]


def test_offset_timestamps_converted(tmp_path: Path) -> None:
    text = "timestamp,rate\n2021-06-01T02:00:00+02:00,1\n2021-06-01T02:01:00+02:00,2\n"

    history = source_for(write(tmp_path, text)).fetch("llm", "rate")

    assert history.start == utc("2021-06-01T00:00")


def test_naive_timestamps_read_in_zone(tmp_path: Path) -> None:
    text = "timestamp,rate\n2021-06-01T02:00:00,1\n2021-06-01T02:01:00,2\n"

    history = source_for(write(tmp_path, text), timezone="America/New_York").fetch("llm", "rate")

    assert history.start == utc("2021-06-01T06:00")


def test_fall_back_trace_noted_in_report(tmp_path: Path) -> None:
    instants = pd.date_range("2021-10-30T23:00", "2021-10-31T02:00", freq="30min", tz="UTC")
    wall = instants.tz_convert("Europe/Berlin").strftime("%Y-%m-%dT%H:%M:%S")
    text = "timestamp,rate\n" + "\n".join(f"{t},1.0" for t in wall)

    history = source_for(write(tmp_path, text), timezone="Europe/Berlin").fetch("llm", "rate")

    assert len(history.values) == len(instants)
    assert history.coverage == 1.0
    assert "repeated DST hour" in history.report.notes[0]


def test_duplicates_and_out_of_order_rows_reported(tmp_path: Path) -> None:
    text = "timestamp,rate\n2021-01-01T00:01:00,2\n2021-01-01T00:00:00,1\n2021-01-01T00:01:00,3\n"

    history = source_for(write(tmp_path, text)).fetch("llm", "rate")

    assert history.values.tolist() == [1.0, 3.0]
    assert history.report.duplicates_dropped == 1
    assert history.report.out_of_order_sorted == 1


def test_negative_value_missing(tmp_path: Path) -> None:
    text = "timestamp,rate\n2021-01-01T00:00:00,2\n2021-01-01T00:01:00,-1\n"

    history = source_for(write(tmp_path, text)).fetch("llm", "rate")

    assert history.values.isna().tolist() == [False, True]


# Declared missing ------------------------------------------------------------------------


def test_declared_value_for_column_missing(tmp_path: Path) -> None:
    source = source_for(write(tmp_path, SMALL_TRACE), missing_values={"rate": [2.0]})

    history = source.fetch("llm", "rate")

    assert history.values.isna().tolist() == [False, True, True, False]
    assert history.report.declared_missing == 1


def test_declared_value_for_all_columns(tmp_path: Path) -> None:
    source = source_for(write(tmp_path, SMALL_TRACE), missing_values={"*": [5.0]})

    history = source.fetch("llm", "other")

    assert history.coverage == 0.0


def test_declared_value_spares_other_columns(tmp_path: Path) -> None:
    source = source_for(write(tmp_path, SMALL_TRACE), missing_values={"rate": [5.0]})

    history = source.fetch("llm", "other")

    assert history.coverage == 1.0


def test_declared_period_read_in_trace_zone(tmp_path: Path) -> None:
    text = "timestamp,rate\n" + "\n".join(f"2021-06-01T02:0{m}:00,1.0" for m in range(5))
    period = MissingPeriod(start=dt.datetime(2021, 6, 1, 2, 1), end=dt.datetime(2021, 6, 1, 2, 2))
    source = source_for(write(tmp_path, text), timezone="Europe/Berlin", missing_periods=[period])

    history = source.fetch("llm", "rate")

    assert history.values.isna().tolist() == [False, True, True, False, False]


def test_helios_outage_zeros_declared_missing() -> None:
    source = source_for(
        DATA / "helios_earth_gpu_demand_1min.csv.gz", missing_values={"demand_gpus": [0]}
    )

    history = source.fetch("helios", "demand_gpus")

    assert history.report.declared_missing > 0
    assert (history.values == 0).sum() == 0
    assert 0 < history.coverage < 1


# Errors ----------------------------------------------------------------------------------


def test_missing_file_names_config_key(tmp_path: Path) -> None:
    source = CsvSource(
        CsvSourceSettings(kind="csv", path=tmp_path / "absent.csv"), key_prefix="sources.servegen"
    )

    with pytest.raises(ConfigError) as caught:
        source.fetch("llm", "rate")

    assert caught.value.key == "sources.servegen.path"
    assert "absent.csv" in str(caught.value)


def test_unknown_column_lists_available(tmp_path: Path) -> None:
    source = source_for(write(tmp_path, SMALL_TRACE))

    with pytest.raises(ConfigError) as caught:
        source.fetch("llm", "rates")

    assert caught.value.value == "rates"
    assert "rate, other" in str(caught.value)


def test_unknown_column_in_bounds_rejected(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="rate, other"):
        source_for(write(tmp_path, SMALL_TRACE)).bounds("rates")


def test_missing_timestamp_column_names_key(tmp_path: Path) -> None:
    source = CsvSource(
        CsvSourceSettings(kind="csv", path=write(tmp_path, SMALL_TRACE), timestamp_column="time"),
        key_prefix="sources.trace",
    )

    with pytest.raises(ConfigError) as caught:
        source.fetch("llm", "rate")

    assert caught.value.key == "sources.trace.timestamp_column"


def test_unparsable_timestamp_names_row_and_value(tmp_path: Path) -> None:
    text = SMALL_TRACE + "01/02/2021 00:04,5.0,5\n"

    with pytest.raises(DataError, match=r"data row 5: invalid timestamp '01/02/2021 00:04'"):
        source_for(write(tmp_path, text)).fetch("llm", "rate")


def test_invalid_number_names_row_and_value(tmp_path: Path) -> None:
    text = SMALL_TRACE + "2021-01-01T00:04:00,lots,5\n"

    with pytest.raises(DataError, match=r"column 'rate', data row 5: invalid number 'lots'"):
        source_for(write(tmp_path, text)).fetch("llm", "rate")


def test_unknown_missing_values_column_rejected(tmp_path: Path) -> None:
    source = CsvSource(
        CsvSourceSettings(
            kind="csv", path=write(tmp_path, SMALL_TRACE), missing_values={"rat": [0]}
        ),
        key_prefix="sources.trace",
    )

    with pytest.raises(ConfigError) as caught:
        source.fetch("llm", "rate")

    assert caught.value.key == "sources.trace.missing_values"


def test_empty_file_is_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="empty"):
        source_for(write(tmp_path, "")).fetch("llm", "rate")


def test_single_row_needs_explicit_step(tmp_path: Path) -> None:
    source = source_for(write(tmp_path, "timestamp,rate\n2021-01-01T00:00:00,1\n"))

    with pytest.raises(DataError, match="request a step explicitly"):
        source.fetch("llm", "rate")


# Bundled traces --------------------------------------------------------------------------

BUNDLED = [
    pytest.param("servegen_m-large_10min.csv", "req_per_s", id="servegen"),
    pytest.param("azure_llm_2023_1s.csv", "conv_requests", id="azure-llm"),
    pytest.param("helios_earth_gpu_demand_1min.csv.gz", "demand_gpus", id="helios"),
    pytest.param("nab_nyc_taxi_30min_2014-07_2014-11.csv", "value", id="nyc-taxi"),
    pytest.param("nab_elb_request_count_5min.csv", "value", id="elb"),
    pytest.param("nab_asg_cpu_utilization_5min.csv", "value", id="asg-cpu"),
]


@pytest.mark.parametrize(("file", "column"), BUNDLED)
def test_bundled_trace_loads_on_regular_utc_grid(file: str, column: str) -> None:
    history = source_for(DATA / file).fetch(file, column)

    assert len(history.values) > 1
    assert is_regular_utc(history)
    assert (pd.DatetimeIndex(history.values.index).asi8 % history.step.value == 0).all()
    assert 0 < history.coverage <= 1


@pytest.mark.parametrize(("file", "column"), BUNDLED)
def test_bundled_trace_values_never_negative(file: str, column: str) -> None:
    history = source_for(DATA / file).fetch(file, column)

    assert (history.values.dropna() >= 0).all()


# Registry --------------------------------------------------------------------------------


def test_registry_builds_csv_source(tmp_path: Path) -> None:
    settings = CsvSourceSettings(kind="csv", path=tmp_path / "absent.csv")

    source: HistorySource = build_source("servegen", settings)

    assert isinstance(source, CsvSource)


def test_registry_passes_key_prefix(tmp_path: Path) -> None:
    source = build_source("servegen", CsvSourceSettings(kind="csv", path=tmp_path / "absent.csv"))

    with pytest.raises(ConfigError, match=r"^sources\.servegen\.path:"):
        source.bounds("rate")


def test_registry_builds_csv_without_thanos_module(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A None entry in sys.modules makes any import of that module raise ImportError.
    monkeypatch.setitem(sys.modules, "forecaster.sources.thanos", None)

    source = build_source("trace", CsvSourceSettings(kind="csv", path=write(tmp_path, SMALL_TRACE)))

    assert source.bounds("rate") == (utc("2021-01-01T00:00"), utc("2021-01-01T00:03"))


def test_registry_builds_thanos_source_with_key_prefix() -> None:
    from forecaster.sources.thanos import ThanosSource

    settings = ThanosSourceSettings(kind="thanos", url="http://127.0.0.1:9090")

    source = build_source("metrics", settings)

    assert isinstance(source, ThanosSource)
    assert source.bounds("up") is None  # a live source has no fixed span
