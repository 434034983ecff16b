"""The thanos source against replayed Thanos responses: parameters, partial responses, replica
duplicates, downsampled data, dedup spikes and the classification of odd results."""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from forecaster.promql import counter_rate
from forecaster.promql_scan import parse_duration
from forecaster.settings import ForecastSettings, ThanosSourceSettings
from forecaster.sources.thanos import (
    ThanosMissingDataError,
    ThanosPartialDataError,
    ThanosSource,
    UnexpectedSeriesError,
)
from tests.servers.thanos_replay import (
    NO_STORE_MATCHED_WARNING,
    PROMQL_INFO_WARNING,
    STORE_UNAVAILABLE_WARNING,
    RecordedRequest,
    Reply,
    ThanosReplay,
    matrix_series,
    success,
)

MINUTE = pd.Timedelta(minutes=1)
NOW = pd.Timestamp("2024-06-15T00:00:00Z")


def _source(replay: ThanosReplay, **overrides: object) -> ThanosSource:
    values: dict[str, object] = {"kind": "thanos", "url": replay.url, "retry_backoff_seconds": 0}
    values.update(overrides)
    return ThanosSource(ThanosSourceSettings.model_validate(values), clock=lambda: NOW)


def _constant(labels: dict[str, str], value: float) -> Callable[[RecordedRequest], Reply]:
    def respond(request: RecordedRequest) -> Reply:
        times = request.grid()
        return Reply(body=success([matrix_series(labels, times, np.full(len(times), value))]))

    return respond


class TestThanosParameters:
    def test_each_chunk_gets_resolution_by_age(self, thanos_replay: ThanosReplay) -> None:
        thanos_replay.responder = _constant({}, 1.0)
        start = NOW - pd.Timedelta(days=14)
        with _source(thanos_replay) as thanos:
            _, report = thanos.fetch_with_report("gpu", "avg(gpu_util)", start, NOW, MINUTE)

        requests = sorted(thanos_replay.data_requests(), key=lambda request: request.start)
        resolutions = [request.param("max_source_resolution") for request in requests]
        assert resolutions == ["1h", "5m", "5m", "0s"]
        assert [chunk.max_source_resolution for chunk in report.chunks] == resolutions
        assert requests[1].start == (NOW - pd.Timedelta(days=10)).value / 1e9
        assert requests[3].start == (NOW - pd.Timedelta(hours=40)).value / 1e9

    def test_chunks_partition_the_grid(self, thanos_replay: ThanosReplay) -> None:
        thanos_replay.responder = _constant({}, 1.0)
        start = NOW - pd.Timedelta(days=14)
        with _source(thanos_replay) as thanos:
            history = thanos.fetch("gpu", "avg(gpu_util)", start, NOW, MINUTE)

        requests = sorted(thanos_replay.data_requests(), key=lambda request: request.start)
        grid_points = sum(len(request.grid()) for request in requests)
        assert grid_points == len(history.values) == 14 * 1440 + 1
        for before, after in itertools.pairwise(requests):
            assert after.start == before.end + 60
        assert all(len(request.grid()) <= 11_000 for request in requests)
        assert all(request.start % 60 == 0 for request in requests)

    def test_dedup_partial_response_and_replica_labels(self, thanos_replay: ThanosReplay) -> None:
        thanos_replay.responder = _constant({}, 1.0)
        with _source(thanos_replay, replica_labels=["replica", "rule_replica"]) as thanos:
            thanos.fetch("gpu", "avg(gpu_util)", NOW - MINUTE * 30, NOW, MINUTE)

        request = thanos_replay.data_requests()[0]
        assert request.path == "/api/v1/query_range"
        assert request.params["dedup"] == ["true"]
        assert request.params["partial_response"] == ["false"]
        assert request.params["replicaLabels[]"] == ["replica", "rule_replica"]
        assert request.params["step"] == ["60"]

    def test_dedup_off_is_sent(self, thanos_replay: ThanosReplay) -> None:
        thanos_replay.responder = _constant({}, 1.0)
        with _source(thanos_replay, dedup=False, replica_labels=[]) as thanos:
            thanos.fetch("gpu", "avg(gpu_util)", NOW - MINUTE * 30, NOW, MINUTE)

        request = thanos_replay.data_requests()[0]
        assert request.params["dedup"] == ["false"]
        assert "replicaLabels[]" not in request.params


class TestMostlyEmptyChunks:
    def test_three_of_hundred_chunks_hold_data(self, thanos_replay: ThanosReplay) -> None:
        step = pd.Timedelta(seconds=30)
        end = NOW - step
        start = end - pd.Timedelta(days=100) + step
        newest_three = (end - pd.Timedelta(days=3)).value / 1e9

        def respond(request: RecordedRequest) -> Reply:
            if request.start < newest_three:
                return Reply(body=success([]))
            times = request.grid()
            return Reply(body=success([matrix_series({}, times, np.full(len(times), 42.0))]))

        thanos_replay.responder = respond
        raw_everywhere = {
            "max_points_per_request": 2880,
            "raw_resolution_max_age_seconds": 200 * 86_400,
            "five_minute_resolution_max_age_seconds": 200 * 86_400,
        }
        with _source(thanos_replay, **raw_everywhere) as thanos:
            history, report = thanos.fetch_with_report("gpu", "avg(gpu_util)", start, end, step)

        assert len(report.chunks) == 100
        assert report.empty_chunks == 97
        assert [chunk.coverage for chunk in report.chunks[-3:]] == [1.0, 1.0, 1.0]
        assert "97 of 100 chunks returned no samples" in history.report.notes
        assert history.coverage == pytest.approx(0.03)
        assert history.coverage < ForecastSettings().min_coverage
        assert not (history.values == 0).any()
        assert history.values.iloc[: 97 * 2880].isna().all()


def _downsampled(request: RecordedRequest) -> Reply:
    """Respond like Thanos over downsampled blocks: rate() needs two points in its range."""
    resolution = parse_duration(request.param("max_source_resolution") or "0s")
    match = re.search(r"\[([0-9a-z]+)\]", request.query)
    range_seconds = parse_duration(match.group(1)) if match else 0
    if resolution and range_seconds < 2 * resolution:
        return Reply(body=success([]))
    times = request.grid()
    return Reply(body=success([matrix_series({}, times, np.full(len(times), 0.3))]))


class TestDownsampledData:
    @pytest.mark.parametrize(
        "query", ["sum(rate(jobs_total[5m]))", "sum(irate(jobs_total[4m]))"], ids=["rate", "irate"]
    )
    def test_short_ranges_widened_per_chunk(self, thanos_replay: ThanosReplay, query: str) -> None:
        thanos_replay.responder = _downsampled
        start = NOW - pd.Timedelta(days=30)
        with _source(thanos_replay) as thanos:
            history, report = thanos.fetch_with_report(
                "jobs", query, start, NOW, pd.Timedelta(minutes=5)
            )

        sent = {
            request.param("max_source_resolution"): request.query
            for request in thanos_replay.data_requests()
        }
        assert "[3h]" in sent["1h"]
        assert "[15m]" in sent["5m"]
        assert "[3h]" not in sent["0s"]
        assert "[15m]" not in sent["0s"]
        assert report.empty_chunks == 0
        assert history.values.notna().all()
        assert any("widened" in note for note in history.report.notes)

    def test_empty_old_chunks_stay_missing(self, thanos_replay: ThanosReplay) -> None:
        def respond(request: RecordedRequest) -> Reply:
            if request.param("max_source_resolution") == "1h":
                return Reply(body=success([]))
            return _downsampled(request)

        thanos_replay.responder = respond
        start = NOW - pd.Timedelta(days=30)
        with _source(thanos_replay) as thanos:
            history, report = thanos.fetch_with_report(
                "jobs", "sum(rate(jobs_total[5m]))", start, NOW, pd.Timedelta(minutes=5)
            )

        old = history.values.loc[: NOW - pd.Timedelta(days=10) - MINUTE]
        assert report.chunks[0].is_empty
        assert old.isna().all()
        assert history.values.loc[NOW - pd.Timedelta(days=10) :].notna().all()


class TestDedupSpikes:
    def test_merge_point_spike_is_dropped(self, thanos_replay: ThanosReplay) -> None:
        query = counter_rate("requests_total", scrape_interval_seconds=20)
        start = NOW - pd.Timedelta(days=2)

        def respond(request: RecordedRequest) -> Reply:
            times = request.grid()
            values = 0.3 + 0.01 * np.sin(np.arange(len(times)))
            values[times == (NOW - pd.Timedelta(hours=6)).value / 1e9] = 790.0
            return Reply(body=success([matrix_series({}, times, values)]))

        thanos_replay.responder = respond
        with _source(thanos_replay, scrape_interval_seconds=20) as thanos:
            history = thanos.fetch("requests", query, start, NOW, MINUTE)

        assert query == "sum(rate(requests_total[1m20s]))"
        assert thanos_replay.data_requests()[0].params["dedup"] == ["true"]
        assert history.report.spikes_dropped == 1
        assert np.isnan(history.values.loc[NOW - pd.Timedelta(hours=6)])
        assert history.values.max() < 0.32


class TestReplicaDuplicates:
    @staticmethod
    def _respond(request: RecordedRequest) -> Reply:
        times = request.grid()
        node_a = 50 + 10 * np.sin(np.arange(len(times)) / 30)
        node_b = np.full(len(times), 70.0)
        return Reply(
            body=success(
                [
                    matrix_series({"__name__": "gpu_util", "node": "a"}, times, node_a),
                    matrix_series(
                        {"__name__": "gpu_util", "node": "a", "prometheus_replica": "1"},
                        times,
                        node_a,
                    ),
                    matrix_series({"__name__": "gpu_util", "node": "b"}, times, node_b),
                ]
            )
        )

    def test_replica_only_difference_is_merged(self, thanos_replay: ThanosReplay) -> None:
        thanos_replay.responder = self._respond
        with _source(thanos_replay) as thanos:
            frame, report = thanos.fetch_frame("gpu", "gpu_util", NOW - MINUTE * 60, NOW, MINUTE)

        single_replica = 50 + 10 * np.sin(np.arange(61) / 30)
        assert list(frame.columns) == ['gpu_util{node="a"}', 'gpu_util{node="b"}']
        assert report.replica_series_merged == 1
        np.testing.assert_allclose(frame['gpu_util{node="a"}'].to_numpy(), single_replica)
        np.testing.assert_allclose(frame.sum(axis=1).to_numpy(), single_replica + 70)

    def test_workload_query_gets_one_series(self, thanos_replay: ThanosReplay) -> None:
        def respond(request: RecordedRequest) -> Reply:
            times = request.grid()
            replicas = [
                matrix_series({"node": "a", "replica": name}, times, np.full(len(times), value))
                for name, value in (("x", 10.0), ("y", 10.0), ("z", 16.0))
            ]
            return Reply(body=success(replicas))

        thanos_replay.responder = respond
        with _source(thanos_replay) as thanos:
            history, report = thanos.fetch_with_report(
                "gpu", "sum by (node, replica) (gpu_util)", NOW - MINUTE * 10, NOW, MINUTE
            )

        np.testing.assert_array_equal(history.values.to_numpy(), 10.0)
        assert report.replica_disagreeing_points == 11
        assert history.report.duplicates_dropped == 22


class TestPartialAnswers:
    def test_warnings_make_fetch_partial(self, thanos_replay: ThanosReplay) -> None:
        times_reply = _constant({}, 5.0)

        def respond(request: RecordedRequest) -> Reply:
            reply = times_reply(request)
            assert isinstance(reply.body, dict)
            reply.body["warnings"] = [STORE_UNAVAILABLE_WARNING]
            return reply

        thanos_replay.responder = respond
        with _source(thanos_replay) as thanos, pytest.raises(ThanosPartialDataError) as raised:
            thanos.fetch("gpu", "avg(gpu_util)", NOW - MINUTE * 30, NOW, MINUTE)

        assert raised.value.report.partial
        assert raised.value.report.warnings == (STORE_UNAVAILABLE_WARNING,)
        assert "thanos-store-1" in str(raised.value)

    def test_one_partial_chunk_fails_whole_fetch(self, thanos_replay: ThanosReplay) -> None:
        good = _constant({}, 5.0)

        def respond(request: RecordedRequest) -> Reply:
            reply = good(request)
            if request.param("max_source_resolution") == "5m":
                reply.body = success([], warnings=[NO_STORE_MATCHED_WARNING])
            return reply

        thanos_replay.responder = respond
        with _source(thanos_replay) as thanos, pytest.raises(ThanosPartialDataError) as raised:
            thanos.fetch("gpu", "avg(gpu_util)", NOW - pd.Timedelta(days=3), NOW, MINUTE)

        chunk_warnings = [chunk.warnings for chunk in raised.value.report.chunks]
        assert chunk_warnings == [(NO_STORE_MATCHED_WARNING,), ()]

    def test_frame_fetch_reports_partial_without_raising(self, thanos_replay: ThanosReplay) -> None:
        thanos_replay.enqueue(Reply(body=success([], warnings=[NO_STORE_MATCHED_WARNING])))
        with _source(thanos_replay) as thanos:
            frame, report = thanos.fetch_frame("gpu", "gpu_util", NOW - MINUTE, NOW, MINUTE)

        assert report.partial
        assert frame.empty

    def test_promql_info_warning_is_not_partial(self, thanos_replay: ThanosReplay) -> None:
        good = _constant({}, 5.0)

        def respond(request: RecordedRequest) -> Reply:
            reply = good(request)
            assert isinstance(reply.body, dict)
            reply.body["warnings"] = [PROMQL_INFO_WARNING]
            return reply

        thanos_replay.responder = respond
        with _source(thanos_replay) as thanos:
            history, report = thanos.fetch_with_report(
                "gpu", "avg(gpu_util)", NOW - MINUTE * 30, NOW, MINUTE
            )

        assert not report.partial
        assert report.ignored_warnings == (PROMQL_INFO_WARNING,)
        assert history.values.notna().all()


class TestResultClassification:
    def test_empty_result_is_missing_not_zero(self, thanos_replay: ThanosReplay) -> None:
        with _source(thanos_replay) as thanos, pytest.raises(ThanosMissingDataError) as raised:
            thanos.fetch("gpu", "avg(gpu_util)", NOW - MINUTE * 30, NOW, MINUTE)

        assert "not zero demand" in str(raised.value)
        assert raised.value.report.empty_chunks == 1
        assert thanos.last_report("gpu") is raised.value.report
        assert json.loads(json.dumps(raised.value.report.to_dict()))["chunks"][0]["coverage"] == 0

    def test_more_series_than_expected_fails(self, thanos_replay: ThanosReplay) -> None:
        def respond(request: RecordedRequest) -> Reply:
            times = request.grid()
            return Reply(
                body=success(
                    [
                        matrix_series({"model": model}, times, np.ones(len(times)))
                        for model in ("llama", "mistral")
                    ]
                )
            )

        thanos_replay.responder = respond
        query = "sum by (model) (rate(requests_total[5m]))"
        with _source(thanos_replay) as thanos, pytest.raises(UnexpectedSeriesError) as raised:
            thanos.fetch("llm", query, NOW - MINUTE * 30, NOW, MINUTE)

        assert "returned 2 series" in str(raised.value)
        assert raised.value.report.series_count == 2

    def test_nan_and_inf_values_are_missing(self, thanos_replay: ThanosReplay) -> None:
        def respond(request: RecordedRequest) -> Reply:
            times = request.grid()
            values = np.full(len(times), 2.0)
            values[3], values[4], values[5] = np.nan, np.inf, -np.inf
            series = matrix_series({}, times, values)
            series["values"][3:3] = [[int(times[3]), "NaN"]]
            return Reply(body=success([series]))

        thanos_replay.responder = respond
        with _source(thanos_replay) as thanos:
            history = thanos.fetch("gpu", "avg(gpu_util)", NOW - MINUTE * 10, NOW, MINUTE)

        assert history.values.iloc[3:6].isna().all()
        assert history.values.drop(history.values.index[3:6]).eq(2.0).all()
        assert history.report.non_finite_dropped == 3

    def test_off_grid_samples_are_dropped(self, thanos_replay: ThanosReplay) -> None:
        def respond(request: RecordedRequest) -> Reply:
            times = request.grid() + 7
            return Reply(body=success([matrix_series({}, times, np.ones(len(times)))]))

        thanos_replay.responder = respond
        with _source(thanos_replay) as thanos:
            frame, report = thanos.fetch_frame(
                "gpu", "avg(gpu_util)", NOW - MINUTE * 10, NOW, MINUTE
            )

        assert report.misaligned_points == 11
        assert frame.iloc[:, 0].isna().all()

    def test_stale_probe_marks_tail_missing(self, thanos_replay: ThanosReplay) -> None:
        stopped = NOW - pd.Timedelta(minutes=4)

        def respond(request: RecordedRequest) -> Reply:
            times = request.grid()
            if request.is_staleness_probe:
                newest = np.minimum(times, stopped.value / 1e9)
                return Reply(body=success([matrix_series({}, times, newest)]))
            return Reply(body=success([matrix_series({}, times, np.full(len(times), 3.0))]))

        replay_without_probes = ThanosReplay(respond, answer_probes=False)
        with replay_without_probes, _source(replay_without_probes) as thanos:
            history, report = thanos.fetch_with_report(
                "gpu", "avg(gpu_util)", NOW - MINUTE * 30, NOW, MINUTE
            )

        probes = [r for r in replay_without_probes.requests if r.is_staleness_probe]
        assert probes[0].query == "max by () (timestamp(gpu_util))"
        assert history.last_observed() == stopped + MINUTE
        assert report.stale_from == stopped + 2 * MINUTE
        assert history.values.loc[stopped + 2 * MINUTE :].isna().all()
