"""``peakcast plan --apply`` against the fake API server, for each node mode.

The CLI reads the bundled trace, plans one cycle, and writes through a kubeconfig whose server
is the fake API server. The seeded fields hold 99, a value no plan of this config produces
(its bounds are at most 12 nodes and 64 replicas), so each applied floor is a visible change.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml
from typer.testing import CliRunner

from scaler.cli.main import app
from scaler.config_loader import DEFAULT_CONFIG
from tests.kube import builders as b
from tests.kube.test_client import write_kubeconfig
from tests.servers.fake_kube import FakeKube

PLAN_OPTIONS = {p.name for p in typer.main.get_command(app).commands["plan"].params}  # type: ignore[attr-defined]
pytestmark = pytest.mark.skipif(
    "apply" not in PLAN_OPTIONS, reason="peakcast plan has no --apply option yet"
)

MODES = ["gpunodepool", "placeholder", "custom_field"]
AT = "1970-01-14T12:00:00Z"
SEEDED = 99
NODE_SIDE = {
    "gpunodepool": (
        "platform.peakcast.io/v1alpha1",
        "gpunodepools",
        "cloud-h100",
        ("spec", "desiredNodes"),
    ),
    "placeholder": ("apps/v1", "deployments", "cloud-h100-placeholder", ("spec", "replicas")),
    "custom_field": ("example.org/v1", "capacitybuffers", "cloud-h100", ("spec", "replicas")),
}


def write_config(tmp_path: Path, kube: FakeKube, mode: str) -> Path:
    config = yaml.safe_load(DEFAULT_CONFIG.read_text(encoding="utf-8"))
    config["dry_run"] = False
    config["sources"]["servegen"]["path"] = str(
        DEFAULT_CONFIG.parent / config["sources"]["servegen"]["path"]
    )
    config["kubernetes"] = {
        "kubeconfig_path": str(write_kubeconfig(tmp_path / "kubeconfig", kube.url))
    }
    burst = next(pool for pool in config["pools"] if pool["name"] == "cloud-h100")
    burst["actuator"] = copy.deepcopy(b.ACTUATORS[mode])
    path = tmp_path / "peakcast.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def seed(kube: FakeKube, mode: str, owner: str | None = None) -> None:
    for index in range(12):
        kube.seed(b.node(f"cloud-{index}", "cloud-h100", gpus=8))
    if mode == "gpunodepool":
        kube.seed(b.gpu_node_pool("cloud-h100", desired=SEEDED, maxNodes=SEEDED), manager=owner)
    elif mode == "placeholder":
        kube.seed(
            b.deployment("cloud-h100-placeholder", b.POOL_NAMESPACE, replicas=SEEDED), manager=owner
        )
    else:
        kube.seed(b.capacity_buffer("cloud-h100", replicas=SEEDED), manager=owner)
    kube.seed(b.deployment("llm-m-large"))
    hpa = b.hpa("llm-m-large", min_replicas=SEEDED, max_replicas=SEEDED)
    kube.seed(hpa)


def node_side_value(kube: FakeKube, mode: str) -> Any:
    api_version, plural, name, path = NODE_SIDE[mode]
    value: Any = kube.get(api_version, plural, name, b.POOL_NAMESPACE)
    for key in path:
        value = value[key]
    return value


def hpa_floor(kube: FakeKube) -> int:
    hpa = kube.get("autoscaling/v2", "horizontalpodautoscalers", "llm-m-large", b.NAMESPACE)
    return int(hpa["spec"]["minReplicas"])


def run_plan(config: Path) -> Any:
    result = CliRunner().invoke(app, ["plan", "--apply", "--config", str(config), "--at", AT])
    assert result.exit_code == 0, result.output
    return result


@pytest.mark.parametrize("mode", MODES)
def test_plan_apply_writes_then_converges(mode: str, fake_kube: FakeKube, tmp_path: Path) -> None:
    seed(fake_kube, mode)
    config = write_config(tmp_path, fake_kube, mode)

    run_plan(config)
    writes = len(fake_kube.writes())
    run_plan(config)

    assert node_side_value(fake_kube, mode) != SEEDED
    assert hpa_floor(fake_kube) != SEEDED
    applies = fake_kube.requests(verb="apply")
    assert {e.field_manager for e in applies} == {"peakcast"}
    assert not any(e.force for e in applies)
    reasons = [e["reason"] for e in fake_kube.list("events.k8s.io/v1", "events")]
    assert len(reasons) >= 2
    assert len(fake_kube.writes()) == writes  # the second run changed nothing


@pytest.mark.parametrize("mode", MODES)
def test_plan_apply_reports_foreign_field(mode: str, fake_kube: FakeKube, tmp_path: Path) -> None:
    seed(fake_kube, mode, owner="argocd-controller")
    config = write_config(tmp_path, fake_kube, mode)

    result = run_plan(config)

    assert node_side_value(fake_kube, mode) == SEEDED
    assert "argocd-controller" in result.output
    events = fake_kube.list("events.k8s.io/v1", "events")
    assert "FieldConflict" in {e["reason"] for e in events}
