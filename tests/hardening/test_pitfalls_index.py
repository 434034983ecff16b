"""The known failure cases of forecasting autoscalers, each mapped to the tests that cover it.

Each row is a fault that users of Prometheus/Thanos-based forecasting and autoscaling have
hit (ids P1 to P23, as docs/RELIABILITY.md lists them), with the tests that assert the
behaviour peakcast must show. This module checks that every row names at least one test and
that each named test exists, so a renamed or deleted test cannot leave a row uncovered.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

FC = "tests/forecaster"
THANOS_PROM = f"{FC}/test_thanos_prometheus.py"
THANOS_REPLAY = f"{FC}/test_thanos_replay.py"
FC_PITFALLS = f"{FC}/test_pitfalls.py"
KUBE_PITFALLS = "tests/kube/test_pitfalls.py"


@dataclass(frozen=True)
class Row:
    fault: str
    tests: tuple[str, ...]


PITFALLS: dict[str, Row] = {
    "P1": Row(
        "chunked fetch where most chunks return an empty success",
        (
            f"{THANOS_REPLAY}::TestMostlyEmptyChunks::test_three_of_hundred_chunks_hold_data",
            "tests/hardening/test_pitfall_p1.py::test_mostly_empty_history_holds_floors",
        ),
    ),
    "P2": Row(
        "function expression sent to a selector-only range helper",
        (
            f"{THANOS_PROM}::TestExpressionsGoThroughQueryRange::test_rate_expression_chunked_by_day",
            f"{THANOS_PROM}::TestExpressionsGoThroughQueryRange::test_range_vector_is_a_config_error",
        ),
    ),
    "P3": Row(
        "range query above 11,000 points per series",
        (
            f"{THANOS_PROM}::TestPointLimit::test_single_request_over_limit_is_rejected",
            f"{THANOS_PROM}::TestPointLimit::test_fourteen_days_split_and_stitched",
            f"{FC}/test_thanos_chunks.py::test_fourteen_days_at_one_minute_in_two_chunks",
        ),
    ),
    "P4": Row(
        "float epoch index read in the host's time zone",
        (f"{THANOS_PROM}::TestUtcIndex::test_dst_window_same_on_every_host",),
    ),
    "P5": Row(
        "lookback repeats the last sample of a dead series",
        (
            f"{THANOS_PROM}::TestStaleTail::test_forward_filled_points_are_missing",
            f"{THANOS_REPLAY}::TestResultClassification::test_stale_probe_marks_tail_missing",
        ),
    ),
    "P6": Row(
        "rate window equal to the scrape interval",
        (
            f"{THANOS_PROM}::TestCounterRanges::test_range_of_one_scrape_is_rejected",
            f"{THANOS_PROM}::TestCounterRanges::test_helper_range_gives_continuous_rate",
        ),
    ),
    "P7": Row(
        "counter reset spikes when step exceeds the rate range",
        (
            f"{THANOS_PROM}::TestCounterRanges::test_reset_never_spikes_at_wide_step",
            f"{THANOS_PROM}::TestThirtyDaysOfTenSeries::test_rate_through_counter_reset_has_no_spike",
        ),
    ),
    "P8": Row(
        "increase() of a sum of counters spikes at every deploy",
        (
            f"{THANOS_PROM}::TestCounterRanges::test_sum_then_increase_is_rejected",
            f"{THANOS_PROM}::TestCounterRanges::test_increase_per_pod_then_sum_is_steady",
        ),
    ),
    "P9": Row(
        "short rate ranges over downsampled data return nothing",
        (
            f"{THANOS_REPLAY}::TestDownsampledData::test_short_ranges_widened_per_chunk",
            f"{THANOS_REPLAY}::TestDownsampledData::test_empty_old_chunks_stay_missing",
            f"{FC}/test_thanos_promql.py::TestCounterRate::test_downsampled_range_is_three_resolution_steps",
        ),
    ),
    "P10": Row(
        "deduplicated rate() jumps at a replica merge point",
        (f"{THANOS_REPLAY}::TestDedupSpikes::test_merge_point_spike_is_dropped",),
    ),
    "P11": Row(
        "deduplicated and raw replica series returned together",
        (f"{THANOS_REPLAY}::TestReplicaDuplicates::test_replica_only_difference_is_merged",),
    ),
    "P12": Row(
        "Prophet rejects tz-aware timestamps",
        (f"{FC_PITFALLS}::test_tz_aware_history_keeps_peak_hour_in_utc",),
    ),
    "P13": Row(
        "Prophet on 30 days of minute data exhausts memory",
        (f"{FC_PITFALLS}::test_minute_history_aggregated_before_prophet",),
    ),
    "P14": Row(
        "negative forecasts for non-negative demand",
        (f"{FC_PITFALLS}::test_forecast_of_zero_night_traffic_never_negative",),
    ),
    "P15": Row(
        "level shift in the newest data missed by the trend",
        (f"{FC_PITFALLS}::test_recent_level_shift_followed",),
    ),
    "P16": Row(
        "missing night hours make the seasonal fit swing",
        (f"{FC_PITFALLS}::test_sparse_night_hours_fall_back_to_seasonal_naive",),
    ),
    "P17": Row(
        "seasonal period written in samples instead of days",
        (
            f"{FC_PITFALLS}::test_season_in_samples_rejected",
            f"{FC_PITFALLS}::test_daily_period_fits_minute_data",
        ),
    ),
    "P18": Row(
        "empty query results read as zero demand at peak",
        (
            f"{KUBE_PITFALLS}::test_missing_data_hold_keeps_floor_and_writes_nothing",
            "tests/scaler/test_missing_data.py::test_outage_at_peak_holds_replicas_and_nodes",
            "tests/scaler/test_missing_data.py::test_outage_reported_once_data_is_stale",
            "tests/faults/test_thanos_faults.py::test_source_fault_holds_then_recovers",
        ),
    ),
    "P19": Row(
        "Holt-Winters needs two full seasons of history",
        (f"{FC_PITFALLS}::test_cold_start_follows_current_demand",),
    ),
    "P20": Row(
        "Ready node without allocatable GPUs triggers more scale-ups",
        (
            f"{KUBE_PITFALLS}::test_one_pending_gpu_pod_requests_exactly_one_node",
            f"{KUBE_PITFALLS}::test_gate_counts_gpu_less_node_as_coming",
            f"{KUBE_PITFALLS}::test_gpu_less_node_fails_after_deadline",
        ),
    ),
    "P21": Row(
        "fixed registration timeout shorter than GPU node boot",
        (
            f"{KUBE_PITFALLS}::test_lead_time_uses_measured_p95",
            f"{KUBE_PITFALLS}::test_slow_nodes_within_measured_p95_keep_pool_available",
        ),
    ),
    "P22": Row(
        "capacity errors keep retrying the preferred pool",
        (
            f"{KUBE_PITFALLS}::test_capacity_error_moves_request_to_fallback_pool",
            f"{KUBE_PITFALLS}::test_unavailable_pool_stays_held_for_backoff",
            f"{KUBE_PITFALLS}::test_unmet_capacity_is_reported",
        ),
    ),
    "P23": Row(
        "GPU quota below zones x minimum nodes",
        (
            f"{KUBE_PITFALLS}::test_quota_caps_request_and_raises_condition",
            f"{KUBE_PITFALLS}::test_over_quota_request_is_not_resent",
        ),
    ),
}

ALL_TESTS = [test for row in PITFALLS.values() for test in row.tests]


def test_every_pitfall_has_a_row() -> None:
    assert list(PITFALLS) == [f"P{number}" for number in range(1, 24)]
    for pitfall, row in PITFALLS.items():
        assert row.tests, f"{pitfall} names no test"


@pytest.mark.parametrize("node_id", ALL_TESTS)
def test_named_test_exists(node_id: str) -> None:
    path, *names = node_id.split("::")
    assert (ROOT / path).is_file(), path
    module = importlib.import_module(path.removesuffix(".py").replace("/", "."))

    found: object = module
    for name in names:
        found = getattr(found, name, None)
        assert found is not None, f"{node_id}: {name} not found"
    assert callable(found)
    assert names[-1].startswith("test_")
