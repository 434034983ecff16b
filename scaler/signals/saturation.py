"""Signal: serving saturation of a workload (queue length, KV-cache use, queue time, GPU busy).

Each built-in metric has one query template that averages over the workload's series, so the
threshold is per replica. Where a metric was renamed, the template queries the new name ``or``
the old one, so the query works on either side of the rename:

- ``vllm_kv_cache_usage``: ``vllm:kv_cache_usage_perc`` replaced ``vllm:gpu_cache_usage_perc``
  (deprecated in vLLM's metrics with the V1 engine); both are 0-1 ratios.
- ``dcgm_gpu_utilization``: ``DCGM_FI_PROF_GR_ENGINE_ACTIVE`` (0-1, profiling metric) or
  ``DCGM_FI_DEV_GPU_UTIL`` (percent, in dcgm-exporter's default counters) divided by 100.

While the signal holds, the floor requested is ``ceil(current x value / threshold)``, the HPA's
replica formula, at least one replica and at most ``max_step_replicas`` above the current floor.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping

import pandas as pd

from forecaster.sources.thanos_http import QueryClient
from scaler.settings import WorkloadSettings
from scaler.signals.base import Reading, Sample, SignalKey
from scaler.signals.settings import SaturationMetric, SaturationSignalSettings
from scaler.signals.thanos_window import read_window, window_seconds

logger = logging.getLogger(__name__)

NAME = "saturation"

# Query templates; {s} is replaced by the configured label matchers, and {r} by the range of
# a counter function in seconds: 4 scrape intervals, so each range contains at least two samples.
QUERIES: dict[SaturationMetric, str] = {
    "vllm_waiting_requests": "avg(vllm:num_requests_waiting{{{s}}})",
    "vllm_kv_cache_usage": (
        "avg(vllm:kv_cache_usage_perc{{{s}}}) or avg(vllm:gpu_cache_usage_perc{{{s}}})"
    ),
    "triton_queue_seconds": (
        "sum(rate(nv_inference_queue_duration_us{{{s}}}[{r}s])) "
        "/ sum(rate(nv_inference_request_success{{{s}}}[{r}s])) / 1e6"
    ),
    "triton_pending_requests": "avg(nv_inference_pending_request_count{{{s}}})",
    "dcgm_gpu_utilization": (
        "avg(DCGM_FI_PROF_GR_ENGINE_ACTIVE{{{s}}}) or avg(DCGM_FI_DEV_GPU_UTIL{{{s}}}) / 100"
    ),
}
UNITS: dict[SaturationMetric, str] = {
    "vllm_waiting_requests": "waiting requests per replica",
    "vllm_kv_cache_usage": "KV-cache ratio",
    "triton_queue_seconds": "queue seconds per request",
    "triton_pending_requests": "pending requests per replica",
    "dcgm_gpu_utilization": "GPU busy ratio",
    "promql": "",
}


def saturation_query(settings: SaturationSignalSettings, scrape_interval_seconds: int) -> str:
    """Return the PromQL of a saturation signal: its own query, or the built-in template."""
    if settings.query:
        return settings.query
    if settings.metric == "promql":  # settings validation requires a query for 'promql'
        raise ValueError("metric 'promql' needs a query")
    return QUERIES[settings.metric].format(s=settings.selector, r=4 * scrape_interval_seconds)


def saturation_floor(current: int, value: float, settings: SaturationSignalSettings) -> int:
    """Return the replica floor for ``value``: the HPA formula, bounded by one raise step."""
    # NOTE: ``current`` is the replica floor (minReplicas), not the running replicas. While an
    # HPA runs above the floor, this raise is smaller than the HPA's own recommendation.
    if not math.isfinite(value):
        return current
    proportional = math.ceil(round(current * value / settings.threshold, 9))
    return min(current + settings.max_step_replicas, max(current + 1, proportional))


class SaturationSignal:
    """One saturation metric of one workload, read from Thanos over the hysteresis window."""

    def __init__(
        self,
        client: QueryClient,
        workload: WorkloadSettings,
        settings: SaturationSignalSettings,
        index: int,
        params: Mapping[str, str],
        scrape_interval_seconds: int = 60,
    ) -> None:
        self.key = SignalKey(f"{NAME}:{settings.metric}", "workload", workload.name, index)
        self.hysteresis = settings.hysteresis
        self.cooldown_seconds = settings.cooldown_seconds
        self._client = client
        self._settings = settings
        self._params = params
        self._query = saturation_query(settings, scrape_interval_seconds)
        self._window = window_seconds(settings.hysteresis, settings.sample_step_seconds)
        self._description = f"workload {workload.name} saturation signal {settings.metric}"
        self._config_key = f"workloads.{workload.name}.signals.saturation[{index}].query"

    def read(self, now: pd.Timestamp) -> Reading:
        settings = self._settings
        values = read_window(
            self._client,
            self._query,
            now,
            window=self._window,
            step_seconds=settings.sample_step_seconds,
            params=self._params,
            description=self._description,
            key=self._config_key,
        )
        samples = tuple(
            _sample(at, float(value), settings.threshold)
            for at, value in zip(values.index, values.to_numpy(), strict=True)
        )
        newest = float(values.iloc[-1])

        def floor_for(current: int) -> int:
            return saturation_floor(current, newest, settings)

        unit = UNITS[settings.metric] or "value"
        return Reading(samples, newest, settings.threshold, unit, floor_for, self._query)


def _sample(at: pd.Timestamp, value: float, threshold: float) -> Sample:
    if not math.isfinite(value):
        return Sample.missing(at)
    return Sample(at, value, value > threshold)
