"""The decision journal: one JSON line per cycle, and an Event summary on each changed object."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from scaler.cli.main import app
from scaler.config_loader import DEFAULT_CONFIG
from scaler.journal import EVENT_REASON, DecisionJournal
from tests.faults import rig as r
from tests.servers.fake_kube import FakeKube
from tests.servers.thanos_replay import RecordedRequest, Reply, ThanosReplay, success

pytestmark = pytest.mark.timeout(60)


def journal_rig(replay: ThanosReplay, kube: FakeKube, path: Path, **journal: Any) -> r.Rig:
    settings = r.make_settings(
        replay.url, kube.url, journal={"enabled": True, "path": str(path), **journal}
    )
    return r.make_rig(settings, kube)


def read_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def empty_answer(request: RecordedRequest) -> Reply:
    return Reply(body=success([]))


def test_each_cycle_is_one_json_line(
    replay: ThanosReplay, fake_kube: FakeKube, tmp_path: Path
) -> None:
    path = tmp_path / "journal.jsonl"
    rig = journal_rig(replay, fake_kube, path)
    try:
        rig.run(r.PEAK)
        replay.responder = empty_answer
        rig.run(r.EVENING)
    finally:
        rig.close()

    raised, held_record = read_lines(path)

    assert raised["at"] == "2026-03-02T12:00:00+00:00"
    assert raised["source"] == "service"
    assert raised["applied"] is True
    workload = raised["workloads"][0]
    assert workload["workload"] == r.WORKLOAD
    assert workload["usable"] is True
    assert workload["coverage"] == pytest.approx(1.0)
    assert 0 <= workload["data_age_seconds"] <= 600
    assert workload["lead_time_seconds"] == 420
    assert workload["forecast"]["planning_level"] == 0.9
    assert workload["forecast"]["quantiles_max"]["0.9"] >= r.PEAK_RPS * 0.9
    assert {pool["pool"]: pool["lead_time_seconds"] for pool in raised["pools"]} == {
        "onprem-h100": 600 + 420 + 120,
        r.POOL: 900 + 420 + 120,
    }
    floors = {floor["name"]: floor for floor in raised["floors"]}
    assert floors[r.POOL]["desired"] == r.PEAK_POOL_NODES
    assert floors[r.POOL]["rule"] == "forecast"
    assert floors[r.WORKLOAD]["forecast_level"] == 0.9
    results = {result["name"]: result for result in raised["results"]}
    assert results[r.POOL]["status"] == "changed"
    assert results[r.POOL]["old"] == 0
    assert results[r.POOL]["new"] == r.PEAK_POOL_NODES
    assert raised["summary"] == {"changed": 2, "unchanged": 1}

    assert held_record["workloads"][0]["usable"] is False
    assert "no samples" in held_record["workloads"][0]["reason"]
    assert {floor["rule"] for floor in held_record["floors"] if floor["name"] != "onprem-h100"} == {
        "missing_data_hold"
    }
    assert "changed" not in held_record["summary"]


def test_changed_objects_get_summary_event(
    replay: ThanosReplay, fake_kube: FakeKube, tmp_path: Path
) -> None:
    rig = journal_rig(replay, fake_kube, tmp_path / "journal.jsonl")
    try:
        rig.run(r.PEAK)
        rig.run(r.PEAK)  # nothing changes, so no further summary
    finally:
        rig.close()

    events = [
        event
        for event in fake_kube.list("events.k8s.io/v1", "events")
        if event["reason"] == EVENT_REASON
    ]
    regarding = sorted(event["regarding"]["kind"] for event in events)
    assert regarding == ["GPUNodePool", "HorizontalPodAutoscaler"]
    note = next(e["note"] for e in events if e["regarding"]["kind"] == "GPUNodePool")
    assert note.startswith("Cycle at 2026-03-02T12:00:00+00:00 set pool cloud-h100 from 0 to 8")
    assert "coverage 100.0%" in note
    assert "P90 forecast up to" in note
    assert all(event["eventTime"].startswith("2026-03-02T12:00:00") for event in events)


def test_events_off_writes_lines_only(
    replay: ThanosReplay, fake_kube: FakeKube, tmp_path: Path
) -> None:
    path = tmp_path / "journal.jsonl"
    rig = journal_rig(replay, fake_kube, path, events=False)
    try:
        rig.run(r.PEAK)
    finally:
        rig.close()

    reasons = {event["reason"] for event in fake_kube.list("events.k8s.io/v1", "events")}
    assert EVENT_REASON not in reasons
    assert len(read_lines(path)) == 1


def test_abandoned_cycle_is_recorded(
    replay: ThanosReplay, fake_kube: FakeKube, tmp_path: Path
) -> None:
    path = tmp_path / "journal.jsonl"
    rig = journal_rig(replay, fake_kube, path)
    calls: list[int] = []

    def lose_lease_before_apply() -> bool:
        calls.append(1)
        return len(calls) == 1

    try:
        outcome = rig.run(r.PEAK, lose_lease_before_apply)
    finally:
        rig.close()

    (record,) = read_lines(path)
    assert not outcome.applied
    assert record["applied"] is False
    assert record["note"] == "abandoned"
    assert record["results"] == []
    assert rig.floors() == (0, 2)


def test_unwritable_journal_never_fails_cycle(
    replay: ThanosReplay,
    fake_kube: FakeKube,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="scaler.journal")
    rig = journal_rig(replay, fake_kube, tmp_path / "missing-folder" / "journal.jsonl")
    try:
        first = rig.run(r.PEAK)
        rig.run(r.PEAK)
    finally:
        rig.close()

    assert first.applied
    assert rig.floors() == (r.PEAK_POOL_NODES, r.PEAK_REPLICAS)
    warnings = [record for record in caplog.records if "journal" in record.getMessage()]
    assert len(warnings) == 1


def test_stdout_journal_writes_json_lines(replay: ThanosReplay, fake_kube: FakeKube) -> None:
    settings = r.make_settings(replay.url, fake_kube.url, journal={"enabled": True, "path": "-"})
    stream = io.StringIO()
    journal = DecisionJournal(settings, stream=stream)
    rig = r.make_rig(settings, fake_kube, journal=journal)
    try:
        rig.run(r.PEAK)
    finally:
        rig.close()

    (line,) = stream.getvalue().splitlines()
    assert json.loads(line)["summary"]["changed"] == 2


def test_disabled_journal_is_none(replay: ThanosReplay, fake_kube: FakeKube) -> None:
    settings = r.make_settings(replay.url, fake_kube.url)

    assert settings.journal.enabled is False
    assert DecisionJournal.from_settings(settings) is None


def test_plan_command_records_dry_run(tmp_path: Path) -> None:
    config = yaml.safe_load(DEFAULT_CONFIG.read_text(encoding="utf-8"))
    config["sources"]["servegen"]["path"] = str(
        DEFAULT_CONFIG.parent / config["sources"]["servegen"]["path"]
    )
    journal = tmp_path / "journal.jsonl"
    config["journal"] = {"enabled": True, "path": str(journal)}
    path = tmp_path / "peakcast.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")

    result = CliRunner().invoke(
        app, ["plan", "--config", str(path), "--at", "1970-01-12T18:00:00Z"]
    )

    assert result.exit_code == 0, result.output
    (record,) = read_lines(journal)
    assert record["source"] == "plan"
    assert record["applied"] is False
    assert record["at"] == "1970-01-12T18:00:00+00:00"
    statuses = {result["target"]: result["status"] for result in record["results"]}
    # cloud-h100 has no actuator in the default config, so its floor is reported, not written.
    assert statuses == {
        "pool cloud-h100": "unchanged",
        "HorizontalPodAutoscaler serving/llm-m-large": "dry_run",
    }
    assert all(workload["coverage"] is not None for workload in record["workloads"])
