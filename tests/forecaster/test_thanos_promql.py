"""Query helpers, the query validator and range widening for downsampled data."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from forecaster.errors import ConfigError
from forecaster.promql import (
    counter_rate,
    gauge_over_time,
    longest_range_seconds,
    minimum_counter_range_seconds,
    selector,
    validate_query,
    widen_ranges,
)
from forecaster.promql_scan import format_duration, parse_duration, scan


class TestCounterRate:
    def test_rate_per_series_then_sum(self) -> None:
        query = counter_rate("http_requests_total", scrape_interval_seconds=15)

        assert query == "sum(rate(http_requests_total[1m]))"

    def test_grouping_and_matchers(self) -> None:
        query = counter_rate(
            "vllm:request_success_total",
            scrape_interval_seconds=30,
            by=["model_name"],
            matchers={"namespace": "llm"},
            regex_matchers={"finished_reason": "stop|length"},
        )

        assert query == (
            "sum by (model_name) (rate(vllm:request_success_total"
            '{namespace="llm",finished_reason=~"stop|length"}[2m]))'
        )

    def test_downsampled_range_is_three_resolution_steps(self) -> None:
        query = counter_rate("jobs_total", scrape_interval_seconds=60, resolution_seconds=3600)

        assert query == "sum(rate(jobs_total[3h]))"

    def test_short_explicit_range_rejected(self) -> None:
        with pytest.raises(ConfigError, match="at least 240 s") as raised:
            counter_rate("jobs_total", scrape_interval_seconds=60, range_seconds=60)

        assert raised.value.key == "range_seconds"

    def test_renamed_metrics_selected_together(self) -> None:
        query = counter_rate(
            ["old_requests_total", "new_requests_total"], scrape_interval_seconds=60
        )

        assert query == 'sum(rate({__name__=~"old_requests_total|new_requests_total"}[4m]))'

    def test_label_values_escaped(self) -> None:
        assert selector("x", {"path": 'a"b\\c'}) == 'x{path="a\\"b\\\\c"}'

    @pytest.mark.parametrize(
        ("scrape", "resolution", "expected"),
        [(15, 0, 60), (60, 0, 240), (60, 300, 900), (30, 3600, 10_800)],
    )
    def test_minimum_range(self, scrape: int, resolution: int, expected: int) -> None:
        assert minimum_counter_range_seconds(scrape, resolution) == expected


class TestGaugeOverTime:
    def test_window_equals_step(self) -> None:
        query = gauge_over_time("DCGM_FI_DEV_GPU_UTIL", step_seconds=300, by=["modelName"])

        assert query == "sum by (modelName) (avg_over_time(DCGM_FI_DEV_GPU_UTIL[5m]))"

    def test_max_inside_step(self) -> None:
        query = gauge_over_time(
            "vllm:num_requests_waiting", step_seconds=60, function="max", aggregation="max"
        )

        assert query == "max(max_over_time(vllm:num_requests_waiting[1m]))"

    def test_unknown_function_rejected(self) -> None:
        with pytest.raises(ConfigError, match="avg, max, min"):
            gauge_over_time("x", step_seconds=60, function="median")  # type: ignore[arg-type]


class TestValidateQuery:
    @pytest.mark.parametrize(
        "query",
        [
            pytest.param("sum(rate(http_requests_total[5m]))", id="rate-then-sum"),
            pytest.param("sum by (model) (increase(tokens_total[10m]))", id="increase-by"),
            pytest.param("max_over_time(sum(rate(x[5m]))[1h:5m])", id="max-of-summed-rates"),
            pytest.param("avg(avg_over_time(gpu_util[5m])) / 100", id="gauge"),
            pytest.param("sum(rate(job:requests:rate5m[5m]))", id="rule-without-sum"),
            pytest.param('sum(rate(x{path="a[5m]"}[5m]))', id="brackets-in-string"),
            pytest.param("sum(x) by (pod) / on(pod) group_left sum(y)", id="label-lists"),
        ],
    )
    def test_accepted(self, query: str) -> None:
        validate_query(query, scrape_interval_seconds=60)

    @pytest.mark.parametrize(
        ("query", "message"),
        [
            pytest.param("rate(sum(c)[5m:1m])", "before any sum", id="rate-of-sum"),
            pytest.param(
                "increase(sum by (job) (c)[5m:])", "before any sum", id="increase-of-sum-by"
            ),
            pytest.param("rate((a + b)[5m:])", "arithmetic", id="rate-of-addition"),
            pytest.param("rate(job:requests:sum[5m])", "recording rule", id="summed-rule"),
            pytest.param("x[5m]", "argument of a function", id="range-vector"),
            pytest.param("(x)[5m:1m]", "argument of a function", id="subquery-at-top"),
            pytest.param("sum(rate(x[5m])", "unclosed", id="unbalanced"),
            pytest.param("   ", "a PromQL expression", id="empty"),
            pytest.param("sum(rate(x[1m]))", "at least 4m", id="one-scrape-range"),
            pytest.param("sum(irate(x[2m]))", "at least 4m", id="irate-two-scrapes"),
        ],
    )
    def test_rejected(self, query: str, message: str) -> None:
        with pytest.raises(ConfigError, match=message) as raised:
            validate_query(query, scrape_interval_seconds=60, key="workloads[w].demand.series")

        assert raised.value.key == "workloads[w].demand.series"
        assert raised.value.value == query

    def test_range_check_needs_scrape_interval(self) -> None:
        validate_query("sum(rate(x[1m]))")

    def test_selectors_found(self) -> None:
        found = validate_query('sum by (pod) (rate(a{job="x"}[5m])) / on(pod) sum by (pod) (b)')

        assert found.selectors == ['a{job="x"}', "b"]


class TestWidenRanges:
    def test_raw_data_unchanged(self) -> None:
        assert widen_ranges("sum(rate(x[5m]))", 0) == ("sum(rate(x[5m]))", ())

    @pytest.mark.parametrize(
        ("resolution", "expected"),
        [(300, "sum(rate(x[15m]))"), (3600, "sum(rate(x[3h]))")],
        ids=["5m", "1h"],
    )
    def test_counter_range_widened(self, resolution: int, expected: str) -> None:
        query, notes = widen_ranges("sum(rate(x[5m]))", resolution)

        assert query == expected
        assert len(notes) == 1
        assert "widened from 5m" in notes[0]

    def test_gauge_window_widened_to_resolution(self) -> None:
        query, _ = widen_ranges("avg(avg_over_time(g[1m])) + sum(rate(c[4h]))", 3600)

        assert query == "avg(avg_over_time(g[1h])) + sum(rate(c[4h]))"

    def test_subquery_left_alone(self) -> None:
        query = "max_over_time(sum(rate(x[5m]))[1d:5m])"

        assert widen_ranges(query, 300)[0] == "max_over_time(sum(rate(x[15m]))[1d:5m])"

    def test_longest_range(self) -> None:
        assert longest_range_seconds("sum(rate(x[5m])) / sum(rate(y[1h30m]))") == 5400
        assert longest_range_seconds("sum(x)") == 0


class TestDurations:
    @given(st.integers(min_value=1, max_value=10 * 365 * 86_400))
    def test_format_then_parse_roundtrip(self, seconds: int) -> None:
        assert parse_duration(format_duration(seconds)) == seconds

    @pytest.mark.parametrize("text", ["", "5", "m5", "5min", "1.5h"])
    def test_invalid_duration(self, text: str) -> None:
        with pytest.raises(ValueError, match="invalid PromQL duration"):
            parse_duration(text)

    def test_scan_keeps_recording_rule_names(self) -> None:
        found = scan("sum(rate(vllm:request_success_total[5m])) + job:x:rate5m")

        assert found.selectors == ["vllm:request_success_total", "job:x:rate5m"]
