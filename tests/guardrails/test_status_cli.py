"""``peakcast status``: floors with their reason and expiry, and the controls in force."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import yaml
from kubernetes import client as k8s
from typer.testing import CliRunner

from scaler.cli.main import app
from scaler.config_loader import parse_settings
from scaler.kube.controls import PAUSED_ANNOTATION
from scaler.kube.registry import build_actuator
from tests.kube import builders as b
from tests.kube.test_client import write_kubeconfig
from tests.servers.fake_kube import FakeKube

HPA = ("autoscaling/v2", "horizontalpodautoscalers", "llm", b.NAMESPACE)


def config_dict(tmp_path: Path, kube: FakeKube) -> dict[str, Any]:
    raw = b.settings_dict()
    raw["sources"]["trace"]["path"] = str(tmp_path / "unused.csv")
    raw["kubernetes"] = {"kubeconfig_path": str(write_kubeconfig(tmp_path / "kc", kube.url))}
    raw["guardrails"] = {
        "paused_pools": ["cloud-h100"],
        "overrides": [
            {
                "name": "launch",
                "workload": "llm",
                "min_gpus": 40,
                "timezone": "Europe/Berlin",
                "start": "2026-03-02T09:00",
                "end": "2026-03-02T18:00",
                "reason": "product launch",
            }
        ],
    }
    return raw


def test_status_shows_floors_and_controls(
    fake_kube: FakeKube, kube_api: k8s.ApiClient, clock: b.FakeClock, tmp_path: Path
) -> None:
    fake_kube.seed(b.gpu_node_pool("cloud-h100", desired=1))
    for index in range(6):
        fake_kube.seed(b.node(f"gpu-{index}", "cloud-h100", 8))
    fake_kube.seed(b.deployment("llm"))
    fake_kube.seed(b.hpa("llm", min_replicas=2))
    raw = config_dict(tmp_path, fake_kube)
    # The floors are written before the operator pauses the pool in the config.
    settings = parse_settings({**raw, "guardrails": {}}, Path("."))
    actuator = build_actuator(settings, dry_run=False, api_client=kube_api, clock=clock)
    actuator.apply(b.decision(5, 10, current_nodes=1, current_replicas=2))
    fake_kube.mutate(
        *HPA, lambda obj: obj["metadata"]["annotations"].update({PAUSED_ANNOTATION: "load test"})
    )
    path = tmp_path / "peakcast.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    at = (clock() + pd.Timedelta(minutes=10)).isoformat()  # 09:10 in Berlin
    writes = len(fake_kube.writes())

    result = CliRunner().invoke(
        app, ["status", "--config", str(path), "--at", at, "--output", "json"]
    )

    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    floors = {(row["kind"], row["name"]): row for row in document["floors"]}
    hpa = floors[("workload", "llm")]
    assert hpa["object"] == "HorizontalPodAutoscaler serving/llm"
    assert hpa["field"] == "spec.minReplicas"
    assert hpa["value"] == 10
    assert hpa["last_change"]["rule"] == "forecast"
    assert hpa["last_change"]["reason"] == "P90 forecast needs 10 replicas"
    assert hpa["expires_at"] == "2026-03-02T09:00:00+00:00"
    assert hpa["expired"] is False
    assert hpa["paused"] == "annotation peakcast.io/paused: load test"
    assert floors[("pool", "cloud-h100")]["value"] == 5
    controls = {(row["control"], row["applies_to"]): row["detail"] for row in document["controls"]}
    assert controls[("pause", "pool cloud-h100")] == "listed in guardrails.paused_pools"
    assert controls[("pause", "workload llm")] == "annotation peakcast.io/paused: load test"
    launch = controls[("override launch", "workload llm")]
    assert launch.startswith("at least 40 GPUs")
    assert launch.endswith("product launch")
    # 5 nodes x 8 GPUs held from 08:00 to 08:10.
    assert controls[("budget", "pool cloud-h100")] == "6.7 GPU-hours held on 2026-03-02"
    assert len(fake_kube.writes()) == writes  # status only reads

    table = CliRunner().invoke(app, ["status", "--config", str(path), "--at", at])
    assert table.exit_code == 0, table.output
    assert "override launch" in table.output
