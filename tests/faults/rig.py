"""The fault-suite rig: a scripted Thanos on loopback, the fake API server, one live cycle.

Demand is a daily wave with its peak at 12:00 UTC (800 requests/s) and its trough at 00:00
(100 requests/s), served at a 10-minute step for any requested range, so every cycle on the
test clock reads fresh, full history. The cluster has a static on-prem pool of 2 nodes, a
burst GPUNodePool of up to 12 nodes and an HPA-owned workload (see ``tests.service.harness``).

At the peak the plan needs 8 burst nodes and 40 replicas, at 18:00 none and 5. The
stabilisation window is 0 and the scale-down steps are large, so a cycle that trusted bad data
would drop the floors at once: each fault test can tell "held" from "lowered" in one cycle.
Timeouts are 1 s.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from kubernetes import client as k8s

from scaler.config_loader import parse_settings
from scaler.cycle import CycleOutcome, LiveCycle
from scaler.histories import HistoryLoader
from scaler.kube.client import build_api_client
from scaler.kube.registry import build_actuator
from scaler.settings import Settings
from tests.kube.builders import FakeClock
from tests.servers.fake_kube import FakeKube
from tests.servers.thanos_replay import RecordedRequest, Reply, matrix_series, success
from tests.service import harness as h

ROOT = Path(__file__).resolve().parents[2]
PEAK = pd.Timestamp("2026-03-02T12:00:00Z")
EVENING = PEAK + pd.Timedelta(hours=6)
HOUR_SECONDS = 3600
PEAK_RPS = 800.0
TROUGH_RPS = 100.0
PEAK_POOL_NODES = 8
PEAK_REPLICAS = 40
TIMEOUT_SECONDS = 1.0
POOL = h.POOL
WORKLOAD = h.WORKLOAD


def demand_at(seconds: np.ndarray) -> np.ndarray:
    """Return the synthetic request rate at epoch ``seconds``: a wave peaking at 12:00 UTC."""
    phase = 2 * np.pi * ((seconds % 86_400) / 86_400 - 0.5)
    return TROUGH_RPS + (PEAK_RPS - TROUGH_RPS) * (1 + np.cos(phase)) / 2


def serve_demand(request: RecordedRequest) -> Reply:
    """Respond to a range query with the demand wave on the requested grid."""
    times = request.grid()
    return Reply(body=success([matrix_series({}, times, demand_at(times))]))


def settings_dict(thanos_url: str, kube_url: str, **overrides: Any) -> dict[str, Any]:
    """The service test config pointed at ``thanos_url``, with 1 s timeouts and no damping."""
    raw = h.settings_dict(thanos_url, kube_url)
    source = raw["sources"]["prometheus"]
    source.update(
        connect_timeout_seconds=TIMEOUT_SECONDS,
        read_timeout_seconds=TIMEOUT_SECONDS,
        max_retries=1,
        retry_backoff_seconds=0,
    )
    raw["forecast"]["model"] = "seasonal_naive"
    raw["policy"].update(
        stabilization_window_seconds=0,
        max_scale_down_nodes_per_cycle=12,
        max_scale_down_replicas_per_cycle=64,
        stale_data_seconds=1800,
    )
    raw["kubernetes"] = {"host": kube_url, "request_timeout_seconds": TIMEOUT_SECONDS}
    raw["guardrails"] = {"floor_ttl_seconds": 7 * 86_400}
    for key, value in overrides.items():
        raw.setdefault(key, {}).update(value)
    return raw


def make_settings(thanos_url: str, kube_url: str, **overrides: Any) -> Settings:
    return parse_settings(settings_dict(thanos_url, kube_url, **overrides), ROOT)


@dataclass
class Rig:
    """One live cycle wired to the scripted Thanos and the fake API server."""

    settings: Settings
    kube: FakeKube
    clock: FakeClock
    cycle: LiveCycle
    api: k8s.ApiClient

    def run(self, at: pd.Timestamp, may_apply: Callable[[], bool] | None = None) -> CycleOutcome:
        """Refresh every workload and plan at ``at``; fail when no decision was reached."""
        outcome = self.try_run(at, may_apply)
        if outcome is None:
            raise AssertionError(f"the cycle at {at} reached no decision")
        return outcome

    def try_run(
        self, at: pd.Timestamp, may_apply: Callable[[], bool] | None = None
    ) -> CycleOutcome | None:
        self.clock.now = at
        for workload in self.settings.workloads:
            self.cycle.refresh(workload, at)
        return self.cycle.plan(at, may_apply or (lambda: True))

    def floors(self) -> tuple[int | None, int | None]:
        """Return the pool floor and the workload floor stored on the fake API server."""
        return h.pool_floor(self.kube), h.workload_floor(self.kube)

    def close(self) -> None:
        self.api.close()


def make_rig(settings: Settings, kube: FakeKube, **cycle_options: Any) -> Rig:
    """Seed the cluster and build a ``LiveCycle`` writing to it through the official client."""
    h.seed_cluster(kube, pool_nodes=0, min_replicas=2)
    clock = FakeClock(PEAK)
    api = build_api_client(host=kube.url)
    actuator = build_actuator(settings, dry_run=False, api_client=api, clock=clock)
    cycle = LiveCycle(settings, HistoryLoader(settings), actuator, **cycle_options)
    return Rig(settings, kube, clock, cycle, api)


def floor_rules(outcome: CycleOutcome) -> dict[str, str]:
    return {floor.name: floor.rule for floor in outcome.decision.all_floors()}


def statuses(outcome: CycleOutcome) -> dict[str, str]:
    return {result.floor.name: result.status for result in outcome.results}
