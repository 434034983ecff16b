"""The guardrail and measured-capacity config examples load and match their comments."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from scaler.config_loader import load_settings
from scaler.core.overrides import active_overrides
from scaler.settings_guardrails import management_cluster, pool_cluster

EXAMPLES = Path(__file__).resolve().parents[2] / "config" / "examples"


@pytest.mark.parametrize(
    "name",
    ["vllm-measured-capacity.yaml", "triton-measured-capacity.yaml", "hybrid-multicluster.yaml"],
)
def test_example_loads(name: str) -> None:
    settings = load_settings(EXAMPLES / name)
    assert settings.workloads


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda path: path.name)
def test_example_is_dry_run(path: Path) -> None:
    assert load_settings(path).dry_run is True


@pytest.mark.parametrize("name", ["vllm-measured-capacity.yaml", "triton-measured-capacity.yaml"])
def test_measured_examples_name_their_history(name: str) -> None:
    workload = load_settings(EXAMPLES / name).workloads[0]
    measurement = workload.capacity_measurement
    assert measurement is not None
    assert measurement.slo_p95_latency_seconds > 0
    assert measurement.version_series
    # Demand counts arrivals: answered, rejected and still queued requests together.
    assert "deriv(" in workload.demand.series


def test_hybrid_example_topology() -> None:
    settings = load_settings(EXAMPLES / "hybrid-multicluster.yaml")
    assert management_cluster(settings) == "mgmt"
    assert pool_cluster(settings, "us-h100") == "serving-us"
    assert 'cluster="eu-west-1-serving"' in settings.workload("chat-eu").demand.series
    assert "$cluster" not in settings.workload("chat-us").demand.series


def test_hybrid_example_launch_override_window() -> None:
    settings = load_settings(EXAMPLES / "hybrid-multicluster.yaml")
    during = pd.Timestamp("2026-05-08T07:30", tz="UTC")  # 09:30 in Berlin
    before = pd.Timestamp("2026-05-08T06:30", tz="UTC")
    assert [o.name for o in active_overrides(settings, during)] == ["launch"]
    assert active_overrides(settings, before) == []
