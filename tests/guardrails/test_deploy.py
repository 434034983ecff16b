"""deploy/guardrails: the renewal alert, the expire-floors CronJob and their kustomization."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
import yaml

from scaler.cli.main import app

GUARDRAILS = Path(__file__).resolve().parents[2] / "deploy" / "guardrails"


def load(name: str) -> dict[str, Any]:
    return yaml.safe_load((GUARDRAILS / name).read_text(encoding="utf-8"))


def test_component_lists_every_manifest() -> None:
    component = load("kustomization.yml")
    assert component["kind"] == "Component"
    manifests = {path.name for path in GUARDRAILS.glob("*.yaml")}
    assert set(component["resources"]) == manifests


def test_alert_fires_when_renewals_stop() -> None:
    rules = load("prometheusrule.yaml")["spec"]["groups"][0]["rules"]
    by_name = {rule["alert"]: rule for rule in rules}
    stopped = by_name["PeakcastFloorRenewalsStopped"]
    assert "peakcast_last_successful_cycle_timestamp_seconds" in stopped["expr"]
    # Half of the default floor TTL (3600 s), so the alert comes before floors expire.
    assert "> 1800" in stopped["expr"]
    assert (
        "absent(peakcast_last_successful_cycle_timestamp_seconds)"
        in by_name["PeakcastAbsent"]["expr"]
    )


def test_cronjob_runs_expire_floors() -> None:
    cronjob = load("expire-floors-cronjob.yaml")
    container = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    command = container["args"][0]
    commands = typer.main.get_command(app).commands  # type: ignore[attr-defined]
    assert command == "expire-floors"
    assert command in commands
    assert cronjob["spec"]["concurrencyPolicy"] == "Forbid"
    volumes = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["volumes"]
    assert {"name": "config", "configMap": {"name": "peakcast-config"}} in volumes
