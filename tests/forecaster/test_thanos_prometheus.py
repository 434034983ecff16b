"""The thanos source against a real Prometheus server with backfilled history.

One server serves the whole module. Every series is backfilled once, at fixed dates in
2024, and the source's clock is fixed, so nothing depends on the wall clock. Plain
Prometheus keeps only raw data, so the source is configured to read every chunk raw.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import requests

from forecaster.errors import ConfigError
from forecaster.promql import counter_rate
from forecaster.settings import ThanosSourceSettings
from forecaster.sources.thanos import ThanosSource
from tests.servers.prometheus import PrometheusServer, Series, backfill_csv_trace

pytestmark = pytest.mark.prometheus

ROOT = Path(__file__).resolve().parents[2]
MINUTE = pd.Timedelta(minutes=1)
HUNDRED_YEARS_SECONDS = 100 * 365 * 86_400
NOW = pd.Timestamp("2024-06-01T00:00:00Z")

# 30 days of 1-minute samples for 10 series: series 3 has a 3-hour gap, series 8 is a
# counter with one reset.
HISTORY_START = pd.Timestamp("2024-01-01T00:00:00Z")
HISTORY_POINTS = 30 * 1440
GAP_START = HISTORY_START + pd.Timedelta(days=10, hours=12)
GAP_END = GAP_START + pd.Timedelta(hours=3)
RESET_AT = HISTORY_START + pd.Timedelta(days=20, hours=6)

# 48 hours of 5-minute samples across the US DST start (2024-03-10 10:00 UTC).
DST_START = pd.Timestamp("2024-03-09T00:00:00Z")

# A 15-second GPU gauge at 85 % whose exporter stops at STOP_AT.
STOP_AT = pd.Timestamp("2024-04-01T12:00:00Z")

# Request counters. One grows 10/s, scraped every 60 s for 6 h. One grows 10/s, scraped every
# 15 s for 2 h, with a reset. Three pods start near 1e6 and grow 50/s each, and one of them
# restarts at POD_RESTART.
COUNTER_60S_START = pd.Timestamp("2024-04-10T00:00:00Z")
COUNTER_15S_START = pd.Timestamp("2024-04-11T00:00:00Z")
COUNTER_15S_RESET = COUNTER_15S_START + pd.Timedelta(hours=1)
PODS_START = pd.Timestamp("2024-04-12T00:00:00Z")
POD_RESTART = PODS_START + pd.Timedelta(minutes=30)

# Two pods of an HTTP counter over 3 days at a 60 s scrape.
HTTP_START = pd.Timestamp("2024-05-01T00:00:00Z")


def _query_range(url: str, query: str, start: int, end: int, step: int) -> requests.Response:
    """Send one query_range straight to the server, bypassing the source's checks."""
    params: dict[str, str | int] = {"query": query, "start": start, "end": end, "step": step}
    return requests.get(f"{url}/api/v1/query_range", params=params, timeout=10)


def _seconds(start: pd.Timestamp, count: int, step_seconds: float) -> np.ndarray:
    return start.value / 1e9 + step_seconds * np.arange(count)


def _history_series() -> list[Series]:
    times = _seconds(HISTORY_START, HISTORY_POINTS, 60)
    minutes = np.arange(HISTORY_POINTS)
    series = []
    for number in range(10):
        daily = np.sin(2 * np.pi * minutes / 1440 + number)
        values = np.round(40 + 10 * number + 25 * daily, 3)
        if number == 3:
            gap = (times >= GAP_START.value / 1e9) & (times < GAP_END.value / 1e9)
            values[gap] = np.nan
        if number == 8:
            values = 1000.0 + 12.5 * minutes
            restarted = times >= RESET_AT.value / 1e9
            values[restarted] = 12.5 * (minutes[restarted] - minutes[restarted][0])
        series.append(Series("history_30d", {"series": str(number)}, times, values))
    return series


def _other_series() -> list[Series]:
    dst_times = _seconds(DST_START, 576, 300)
    stop_times = _seconds(STOP_AT - pd.Timedelta(hours=1), 241, 15)

    times_60 = _seconds(COUNTER_60S_START, 6 * 60 + 1, 60)
    times_15 = _seconds(COUNTER_15S_START, 2 * 240 + 1, 15)
    counter_15 = 10.0 * (times_15 - times_15[0])
    after_reset = times_15 >= COUNTER_15S_RESET.value / 1e9
    counter_15[after_reset] = 10.0 * (times_15[after_reset] - times_15[after_reset][0])

    pod_times = _seconds(PODS_START, 4 * 60 + 1, 15)
    pods = []
    for offset, pod in enumerate("abc"):
        values = 1e6 + 1000 * offset + 50.0 * (pod_times - pod_times[0])
        if pod == "b":
            restarted = pod_times >= POD_RESTART.value / 1e9
            values[restarted] = 50.0 * (pod_times[restarted] - pod_times[restarted][0])
        pods.append(Series("pod_requests_total", {"pod": pod}, pod_times, values, "counter"))

    http_times = _seconds(HTTP_START, 3 * 1440 + 120, 60)
    http = [
        Series("http_requests_total", {"pod": pod}, http_times, rate * (http_times - http_times[0]))
        for pod, rate in (("a", 3.0), ("b", 5.0))
    ]
    return [
        Series("dst_gauge", {}, dst_times, np.arange(576, dtype=float)),
        Series("gpu_stop", {"node": "a"}, stop_times, np.full(len(stop_times), 85.0)),
        Series("requests_60s_total", {}, times_60, 10.0 * (times_60 - times_60[0]), "counter"),
        Series("requests_15s_total", {}, times_15, counter_15, "counter"),
        *pods,
        *http,
    ]


@dataclass(frozen=True)
class Loaded:
    server: PrometheusServer
    history: dict[str, pd.Series]


@pytest.fixture(scope="module")
def loaded(prometheus_server: PrometheusServer) -> Loaded:
    history_series = _history_series()
    prometheus_server.backfill([*history_series, *_other_series()])
    prometheus_server.start()
    truth = {
        f'history_30d{{series="{item.labels["series"]}"}}': item.present()
        for item in history_series
    }
    return Loaded(prometheus_server, truth)


def _settings(url: str, **overrides: object) -> ThanosSourceSettings:
    values: dict[str, object] = {
        "kind": "thanos",
        "url": url,
        "raw_resolution_max_age_seconds": HUNDRED_YEARS_SECONDS,
        "five_minute_resolution_max_age_seconds": HUNDRED_YEARS_SECONDS,
        "retry_backoff_seconds": 0,
        "stale_after_seconds": 60,
    }
    values.update(overrides)
    return ThanosSourceSettings.model_validate(values)


@pytest.fixture
def source(loaded: Loaded) -> Iterator[ThanosSource]:
    with ThanosSource(_settings(loaded.server.url), clock=lambda: NOW) as thanos:
        yield thanos


def _source(loaded: Loaded, **overrides: object) -> ThanosSource:
    return ThanosSource(_settings(loaded.server.url, **overrides), clock=lambda: NOW)


class TestThirtyDaysOfTenSeries:
    def test_fetch_equals_backfill_point_for_point(
        self, loaded: Loaded, source: ThanosSource
    ) -> None:
        end = HISTORY_START + (HISTORY_POINTS - 1) * MINUTE
        frame, report = source.fetch_frame("history", "history_30d", HISTORY_START, end, MINUTE)

        assert frame.shape == (HISTORY_POINTS, 10)
        assert len(report.chunks) == 4
        assert max(chunk.points for chunk in report.chunks) <= 11_000
        assert report.empty_chunks == 0
        for column, expected in loaded.history.items():
            np.testing.assert_array_equal(
                frame[column].to_numpy(), expected.reindex(frame.index).to_numpy()
            )

    def test_gap_is_missing_not_zero(self, source: ThanosSource) -> None:
        end = HISTORY_START + (HISTORY_POINTS - 1) * MINUTE
        history = source.fetch("gap", 'history_30d{series="3"}', HISTORY_START, end, MINUTE)

        in_gap = history.values.loc[GAP_START : GAP_END - MINUTE]
        assert len(in_gap) == 180
        assert in_gap.isna().all()
        assert not (history.values == 0).any()
        assert history.report.stale_dropped == 5
        assert history.coverage == pytest.approx((HISTORY_POINTS - 180) / HISTORY_POINTS)

    def test_counter_reset_is_kept_as_written(self, loaded: Loaded, source: ThanosSource) -> None:
        window_start = RESET_AT - 10 * MINUTE
        history = source.fetch(
            "counter", 'history_30d{series="8"}', window_start, RESET_AT + 10 * MINUTE, MINUTE
        )

        expected = loaded.history['history_30d{series="8"}'].loc[
            window_start : RESET_AT + 10 * MINUTE
        ]
        np.testing.assert_array_equal(history.values.to_numpy(), expected.to_numpy())
        assert history.values.loc[RESET_AT] == 0

    def test_rate_through_counter_reset_has_no_spike(self, source: ThanosSource) -> None:
        query = counter_rate("history_30d", matchers={"series": "8"}, scrape_interval_seconds=60)
        history = source.fetch(
            "counter-rate",
            query,
            RESET_AT - pd.Timedelta(hours=2),
            RESET_AT + pd.Timedelta(hours=2),
            MINUTE,
        )

        observed = history.values.dropna()
        assert len(observed) >= 235
        assert observed.max() <= 12.5 / 60 * 1.01
        assert observed.min() >= 0

    def test_chunked_fetch_equals_single_query(self, loaded: Loaded) -> None:
        start = HISTORY_START + pd.Timedelta(days=2)
        end = start + 10_000 * MINUTE
        with _source(loaded) as single, _source(loaded, max_points_per_request=999) as chunked:
            one, one_report = single.fetch_frame("single", "history_30d", start, end, MINUTE)
            many, many_report = chunked.fetch_frame("chunked", "history_30d", start, end, MINUTE)

        assert len(one_report.chunks) == 1
        assert len(many_report.chunks) == 11
        pd.testing.assert_frame_equal(one, many)


class TestPointLimit:
    def test_single_request_over_limit_is_rejected(self, loaded: Loaded) -> None:
        start = HISTORY_START.value // 10**9
        response = _query_range(loaded.server.url, "history_30d", start, start + 20_160 * 60, 60)

        assert response.status_code == 400
        assert "11,000 points" in response.json()["error"]

    def test_fourteen_days_split_and_stitched(self, loaded: Loaded, source: ThanosSource) -> None:
        end = HISTORY_START + 20_159 * MINUTE
        history, report = source.fetch_with_report(
            "gpu", 'history_30d{series="0"}', HISTORY_START, end, MINUTE
        )

        assert [chunk.points for chunk in report.chunks] == [11_000, 9_160]
        assert report.chunks[1].start == report.chunks[0].end + MINUTE
        assert len(history.values) == 20_160
        assert history.values.index.is_unique
        expected = loaded.history['history_30d{series="0"}'].loc[HISTORY_START:end]
        np.testing.assert_array_equal(history.values.to_numpy(), expected.to_numpy())


class TestExpressionsGoThroughQueryRange:
    def test_rate_expression_chunked_by_day(self, loaded: Loaded) -> None:
        start = HTTP_START + pd.Timedelta(hours=1)
        end = start + 4_319 * MINUTE
        with _source(loaded, max_points_per_request=1440) as thanos:
            history, report = thanos.fetch_with_report(
                "http", "sum(rate(http_requests_total[5m]))", start, end, MINUTE
            )

        assert len(report.chunks) == 3
        assert len(history.values) == 4_320
        index = pd.DatetimeIndex(history.values.index)
        assert (index.as_unit("s").asi8 % 60 == 0).all()
        assert history.values.notna().all()
        np.testing.assert_allclose(history.values.to_numpy(), 8.0)

    def test_range_vector_is_a_config_error(self, source: ThanosSource) -> None:
        with pytest.raises(ConfigError, match="must be the argument of a function"):
            source.fetch(
                "http",
                "http_requests_total[5m]",
                HTTP_START,
                HTTP_START + pd.Timedelta(hours=1),
                MINUTE,
            )


class TestUtcIndex:
    @pytest.fixture
    def restore_zone(self) -> Iterator[None]:
        yield
        time.tzset()

    @pytest.mark.usefixtures("restore_zone")
    @pytest.mark.parametrize("zone", ["America/Los_Angeles", "UTC"])
    def test_dst_window_same_on_every_host(
        self, zone: str, loaded: Loaded, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("TZ", zone)
        time.tzset()
        step = pd.Timedelta(minutes=5)
        end = DST_START + pd.Timedelta(hours=48) - step
        with _source(loaded, stale_after_seconds=300) as thanos:
            history = thanos.fetch("dst", "dst_gauge", DST_START, end, step)

        index = pd.DatetimeIndex(history.values.index)
        assert str(index.tz) == "UTC"
        assert len(index) == 576
        assert index.is_monotonic_increasing and index.is_unique
        assert (np.diff(index.as_unit("s").asi8) == 300).all()
        np.testing.assert_array_equal(history.values.to_numpy(), np.arange(576, dtype=float))


class TestStaleTail:
    def test_forward_filled_points_are_missing(self, loaded: Loaded) -> None:
        step = pd.Timedelta(seconds=15)
        start = STOP_AT - pd.Timedelta(minutes=10)
        end = STOP_AT + pd.Timedelta(minutes=5)
        with _source(loaded, scrape_interval_seconds=15, stale_after_seconds=15) as thanos:
            frame, _ = thanos.fetch_frame("raw", "gpu_stop", start, end, step)
            history, report = thanos.fetch_with_report("gpu", "gpu_stop", start, end, step)

        assert frame.iloc[:, 0].loc[STOP_AT + step :].isna().all()
        assert history.last_observed() == STOP_AT
        assert history.values.loc[STOP_AT + step :].isna().sum() == 20
        assert report.stale_points == 20
        assert report.stale_from == STOP_AT + step
        assert history.report.stale_dropped == 20

    def test_server_repeats_last_sample_without_check(self, loaded: Loaded) -> None:
        step = pd.Timedelta(seconds=15)
        start = STOP_AT - pd.Timedelta(minutes=10)
        end = STOP_AT + pd.Timedelta(minutes=5)
        with _source(loaded, scrape_interval_seconds=15, stale_after_seconds=None) as thanos:
            history = thanos.fetch("gpu", "gpu_stop", start, end, step)

        assert (history.values.loc[STOP_AT + step :] == 85.0).sum() == 20


class TestCounterRanges:
    def test_range_of_one_scrape_is_rejected(self, source: ThanosSource) -> None:
        with pytest.raises(ConfigError, match=r"range of at least 4m"):
            source.fetch(
                "requests",
                "sum(rate(requests_60s_total[1m]))",
                COUNTER_60S_START,
                COUNTER_60S_START + pd.Timedelta(hours=6),
                MINUTE,
            )

    def test_one_scrape_range_reads_as_no_traffic(self, loaded: Loaded) -> None:
        start = COUNTER_60S_START.value // 10**9
        response = _query_range(
            loaded.server.url,
            "sum(rate(requests_60s_total[1m]))",
            start + 30,
            start + 6 * 3600 - 30,
            60,
        )

        assert response.json()["data"]["result"] == []

    def test_helper_range_gives_continuous_rate(self, source: ThanosSource) -> None:
        query = counter_rate("requests_60s_total", scrape_interval_seconds=60)
        start = COUNTER_60S_START + pd.Timedelta(minutes=4)
        end = COUNTER_60S_START + pd.Timedelta(hours=6)
        history = source.fetch("requests", query, start, end, MINUTE)

        assert query == "sum(rate(requests_60s_total[4m]))"
        assert history.values.notna().all()
        np.testing.assert_allclose(history.values.to_numpy(), 10.0)

    def test_reset_never_spikes_at_wide_step(self, loaded: Loaded) -> None:
        query = counter_rate("requests_15s_total", scrape_interval_seconds=15)
        step = pd.Timedelta(minutes=5)
        start = COUNTER_15S_START + step
        end = COUNTER_15S_START + pd.Timedelta(hours=2)
        with _source(loaded, scrape_interval_seconds=15, stale_after_seconds=30) as thanos:
            history = thanos.fetch("requests", query, start, end, step)

        values = history.values.dropna()
        assert query == "sum(rate(requests_15s_total[1m]))"
        assert len(values) == 24
        assert values.max() <= 10.0 * 1.05
        assert (values >= 9.5).sum() >= len(values) - 1

    def test_sum_then_increase_is_rejected(self, source: ThanosSource) -> None:
        query = "increase(sum(pod_requests_total)[5m:15s])"
        with pytest.raises(ConfigError) as raised:
            source.fetch("pods", query, PODS_START, PODS_START + pd.Timedelta(hours=1), MINUTE)

        assert query in str(raised.value)
        assert "before any sum" in str(raised.value)

    def test_sum_then_increase_spikes_on_the_server(self, loaded: Loaded) -> None:
        start = POD_RESTART.value // 10**9
        response = _query_range(
            loaded.server.url,
            "increase(sum(pod_requests_total)[5m:15s])",
            start,
            start + 600,
            60,
        )

        values = [float(value) for _, value in response.json()["data"]["result"][0]["values"]]
        assert max(values) > 1e6

    def test_increase_per_pod_then_sum_is_steady(self, loaded: Loaded) -> None:
        start = PODS_START + pd.Timedelta(minutes=6)
        end = PODS_START + pd.Timedelta(minutes=59)
        with _source(loaded, scrape_interval_seconds=15, stale_after_seconds=30) as thanos:
            increases = thanos.fetch(
                "pods", "sum(increase(pod_requests_total[5m]))", start, end, MINUTE
            )
            rates = thanos.fetch(
                "pods",
                counter_rate("pod_requests_total", scrape_interval_seconds=15),
                start,
                end,
                MINUTE,
            )

        np.testing.assert_allclose(increases.values.to_numpy(), 45_000, rtol=0.02)
        # The restarted pod's own 1-minute window dips once; the sum never spikes.
        assert rates.values.notna().all()
        assert rates.values.max() <= 150 * 1.02
        assert rates.values.min() >= 150 * 0.9
        assert (rates.values.sub(150).abs() <= 3).sum() >= len(rates.values) - 1


class TestRejectedQueries:
    def test_server_parse_error_is_config_error(self, source: ThanosSource) -> None:
        with pytest.raises(ConfigError, match="bad_data") as raised:
            source.fetch("bad", "sum(rate(x[5m])) by", HTTP_START, HTTP_START + MINUTE, MINUTE)

        assert raised.value.key == "workloads[bad].demand.series"


class TestBundledTrace:
    def test_csv_trace_round_trip(self, loaded: Loaded) -> None:
        trace = ROOT / "data" / "servegen_m-large_10min.csv"
        written = backfill_csv_trace(
            loaded.server, trace, "req_per_s", "servegen_requests", labels={"model": "m-large"}
        )
        step = pd.Timedelta(minutes=10)
        with _source(loaded) as thanos:
            history = thanos.fetch(
                "servegen",
                'servegen_requests{model="m-large"}',
                written.index[0],
                written.index[-1],
                step,
            )

        assert written.index[0] == pd.Timestamp("1970-01-01T00:00:00Z")
        assert len(history.values) == len(written) == 14 * 144
        np.testing.assert_array_equal(history.values.to_numpy(), written.to_numpy())
