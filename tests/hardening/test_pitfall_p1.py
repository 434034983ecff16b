"""A long chunked fetch in which most chunks return an empty success holds capacity.

Thanos returned HTTP 200 with ``result: []`` for most day-long chunks and returned samples only
for the newest ones. The fetch layer reports the coverage; the live cycle must not fit on such
history or read it as zero demand: it keeps the current floors and says why.
"""

from __future__ import annotations

import numpy as np
import pytest

from scaler.config_loader import parse_settings
from scaler.core.decision import RULE_MISSING_DATA_HOLD
from tests.faults import rig as r
from tests.faults.conftest import fake_kube, replay
from tests.servers.fake_kube import FakeKube
from tests.servers.thanos_replay import RecordedRequest, Reply, ThanosReplay, matrix_series, success

pytestmark = pytest.mark.timeout(60)
__all__ = ["fake_kube", "replay"]

# The history window is 7 days; only its newest 8 hours hold samples (under 5 %).
NEWEST_SECONDS = 8 * 3600


def newest_hours_only(request: RecordedRequest) -> Reply:
    times = request.grid()
    keep = times >= request.end - NEWEST_SECONDS
    if not keep.any():
        return Reply(body=success([]))
    values = np.where(keep, r.demand_at(times), np.nan)
    return Reply(body=success([matrix_series({}, times, values)]))


def test_mostly_empty_history_holds_floors(replay: ThanosReplay, fake_kube: FakeKube) -> None:
    raw = r.settings_dict(replay.url, fake_kube.url)
    raw["sources"]["prometheus"]["max_points_per_request"] = 144  # one day per chunk
    settings = parse_settings(raw, r.ROOT)
    rig = r.make_rig(settings, fake_kube)
    try:
        rig.run(r.PEAK)
        peak_floors = rig.floors()
        replay.responder = newest_hours_only
        outcome = rig.run(r.EVENING)
    finally:
        rig.close()

    status = outcome.decision.data[0]
    chunks = [request for request in replay.data_requests() if request.end <= r.EVENING.value / 1e9]
    assert len(chunks) > 7
    assert status.coverage < settings.forecast.min_coverage
    assert not status.usable
    assert "coverage" in status.reason
    floors = {floor.name: floor for floor in outcome.decision.all_floors()}
    assert floors[r.POOL].rule == RULE_MISSING_DATA_HOLD
    assert floors[r.WORKLOAD].rule == RULE_MISSING_DATA_HOLD
    assert rig.floors() == peak_floors == (r.PEAK_POOL_NODES, r.PEAK_REPLICAS)
