"""Floor expiry: writes carry an expiry, cycles renew it, missed renewals end at the baseline."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import yaml
from kubernetes import client as k8s
from typer.testing import CliRunner

from scaler.cli.main import app
from scaler.config_loader import parse_settings
from scaler.kube.clusters import ClusterClients
from scaler.kube.controls import PAUSED_ANNOTATION
from scaler.kube.expiry import EXPIRES_ANNOTATION, expire_floors
from scaler.kube.registry import build_actuator, build_kube_client
from scaler.settings import Settings
from tests.kube import builders as b
from tests.kube.test_client import write_kubeconfig
from tests.servers.fake_kube import FakeKube

HPA = ("autoscaling/v2", "horizontalpodautoscalers", "llm", b.NAMESPACE)
POOL = ("platform.peakcast.io/v1alpha1", "gpunodepools", "cloud-h100", b.POOL_NAMESPACE)
TTL = 3600


def config_dict() -> dict[str, Any]:
    raw = b.settings_dict(baseline_nodes=1)
    raw["workloads"][0]["baseline_replicas"] = 2
    raw["guardrails"] = {"floor_ttl_seconds": TTL}
    return raw


def config() -> Settings:
    return parse_settings(config_dict(), Path("."))


def seed(kube: FakeKube) -> None:
    kube.seed(b.gpu_node_pool("cloud-h100", desired=1))
    for index in range(6):
        kube.seed(b.node(f"gpu-{index}", "cloud-h100", 8))
    kube.seed(b.deployment("llm"))
    kube.seed(b.hpa("llm", min_replicas=2))


def annotations(kube: FakeKube, key: tuple[str, str, str, str]) -> dict[str, str]:
    obj = kube.get(*key)
    return dict(obj["metadata"].get("annotations") or {})


def raise_floors(kube_api: k8s.ApiClient, clock: b.FakeClock, settings: Settings) -> None:
    actuator = build_actuator(settings, dry_run=False, api_client=kube_api, clock=clock)
    results = actuator.apply(b.decision(5, 10, current_nodes=1, current_replicas=2, at=clock()))
    assert {r.status for r in results} == {"changed"}, results


def clients(kube_api: k8s.ApiClient, settings: Settings) -> ClusterClients:
    return ClusterClients.single(settings, build_kube_client(settings.kubernetes, kube_api))


def test_every_write_carries_expiry(
    fake_kube: FakeKube, kube_api: k8s.ApiClient, clock: b.FakeClock
) -> None:
    seed(fake_kube)
    raise_floors(kube_api, clock, config())
    expected = (clock() + pd.Timedelta(seconds=TTL)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert annotations(fake_kube, HPA)[EXPIRES_ANNOTATION] == expected
    assert annotations(fake_kube, POOL)[EXPIRES_ANNOTATION] == expected


def test_renewal_waits_for_half_the_ttl(
    fake_kube: FakeKube, kube_api: k8s.ApiClient, clock: b.FakeClock
) -> None:
    seed(fake_kube)
    settings = config()
    raise_floors(kube_api, clock, settings)
    actuator = build_actuator(settings, dry_run=False, api_client=kube_api, clock=clock)
    steady = b.decision(5, 10, current_nodes=5, current_replicas=10)

    clock.advance(TTL / 2 - 60)
    writes = len(fake_kube.writes())
    actuator.apply(steady)
    assert [e for e in fake_kube.writes()[writes:] if not e.subresource] == []

    clock.advance(120)
    actuator.apply(steady)
    renewed = (clock() + pd.Timedelta(seconds=TTL)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert annotations(fake_kube, HPA)[EXPIRES_ANNOTATION] == renewed
    assert annotations(fake_kube, POOL)[EXPIRES_ANNOTATION] == renewed
    assert fake_kube.get(*HPA)["spec"]["minReplicas"] == 10


def test_missed_renewals_return_floors_to_baseline(
    fake_kube: FakeKube, kube_api: k8s.ApiClient, clock: b.FakeClock
) -> None:
    seed(fake_kube)
    settings = config()
    raise_floors(kube_api, clock, settings)

    # peakcast stops: nothing renews the floors.
    results = expire_floors(clients(kube_api, settings), settings, clock() + pd.Timedelta(hours=2))

    by_name = {r.name: r for r in results}
    assert by_name["cloud-h100"].status == "expired"
    assert by_name["llm"].status == "expired"
    assert fake_kube.get(*POOL)["spec"]["desiredNodes"] == 1
    assert fake_kube.get(*HPA)["spec"]["minReplicas"] == 2
    assert EXPIRES_ANNOTATION not in annotations(fake_kube, HPA)
    assert EXPIRES_ANNOTATION not in annotations(fake_kube, POOL)
    events = fake_kube.list("events.k8s.io/v1", "events")
    expired = [e for e in events if e["reason"] == "Expired"]
    assert {e["regarding"]["kind"] for e in expired} == {"GPUNodePool", "HorizontalPodAutoscaler"}
    assert all("did not renew" in e["note"] for e in expired)

    writes = len(fake_kube.writes())
    again = expire_floors(clients(kube_api, settings), settings, clock() + pd.Timedelta(hours=3))
    assert {r.status for r in again} == {"no_expiry"}
    assert len(fake_kube.writes()) == writes


def test_valid_floors_left_alone(
    fake_kube: FakeKube, kube_api: k8s.ApiClient, clock: b.FakeClock
) -> None:
    seed(fake_kube)
    settings = config()
    raise_floors(kube_api, clock, settings)
    writes = len(fake_kube.writes())

    results = expire_floors(
        clients(kube_api, settings), settings, clock() + pd.Timedelta(minutes=59)
    )

    assert {r.status for r in results} == {"valid"}
    assert len(fake_kube.writes()) == writes
    assert fake_kube.get(*HPA)["spec"]["minReplicas"] == 10


def test_paused_floor_does_not_expire(
    fake_kube: FakeKube, kube_api: k8s.ApiClient, clock: b.FakeClock
) -> None:
    seed(fake_kube)
    settings = config()
    raise_floors(kube_api, clock, settings)
    fake_kube.mutate(
        *HPA, lambda obj: obj["metadata"]["annotations"].update({PAUSED_ANNOTATION: "true"})
    )

    results = expire_floors(clients(kube_api, settings), settings, clock() + pd.Timedelta(hours=2))

    assert {r.name: r.status for r in results} == {"cloud-h100": "expired", "llm": "paused"}
    assert fake_kube.get(*HPA)["spec"]["minReplicas"] == 10


def test_expiry_never_raises_a_floor(
    fake_kube: FakeKube, kube_api: k8s.ApiClient, clock: b.FakeClock
) -> None:
    seed(fake_kube)
    settings = config()
    at = clock() - pd.Timedelta(hours=1)
    stamp = at.strftime("%Y-%m-%dT%H:%M:%SZ")
    fake_kube.mutate(
        *POOL,
        lambda obj: (
            obj["metadata"].setdefault("annotations", {}).update({EXPIRES_ANNOTATION: stamp})
        ),
    )
    fake_kube.mutate(*POOL, lambda obj: obj["spec"].update({"desiredNodes": 0}))
    writes = len(fake_kube.writes())

    results = expire_floors(clients(kube_api, settings), settings, clock())

    assert {r.name: r.status for r in results}["cloud-h100"] == "at_baseline"
    assert fake_kube.get(*POOL)["spec"]["desiredNodes"] == 0
    assert len(fake_kube.writes()) == writes


def test_floor_peakcast_never_wrote_gets_no_expiry(
    fake_kube: FakeKube, kube_api: k8s.ApiClient, clock: b.FakeClock
) -> None:
    seed(fake_kube)
    settings = config()
    actuator = build_actuator(settings, dry_run=False, api_client=kube_api, clock=clock)
    actuator.apply(b.decision(1, 2, current_nodes=1, current_replicas=2))
    assert EXPIRES_ANNOTATION not in annotations(fake_kube, HPA)
    results = expire_floors(clients(kube_api, settings), settings, clock() + pd.Timedelta(days=1))
    assert {r.status for r in results} == {"no_expiry"}


def test_expire_floors_command(
    fake_kube: FakeKube, kube_api: k8s.ApiClient, clock: b.FakeClock, tmp_path: Path
) -> None:
    seed(fake_kube)
    raise_floors(kube_api, clock, config())
    raw = config_dict()
    raw["sources"]["trace"]["path"] = str(tmp_path / "unused.csv")
    raw["kubernetes"] = {
        "kubeconfig_path": str(write_kubeconfig(tmp_path / "kubeconfig", fake_kube.url))
    }
    path = tmp_path / "peakcast.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    later = (clock() + pd.Timedelta(hours=2)).isoformat()

    dry = CliRunner().invoke(
        app, ["expire-floors", "--config", str(path), "--at", later, "--dry-run"]
    )
    assert dry.exit_code == 0, dry.output
    assert "dry_run" in dry.output
    assert fake_kube.get(*HPA)["spec"]["minReplicas"] == 10

    result = CliRunner().invoke(app, ["expire-floors", "--config", str(path), "--at", later])
    assert result.exit_code == 0, result.output
    assert "expired" in result.output
    assert fake_kube.get(*HPA)["spec"]["minReplicas"] == 2
    assert fake_kube.get(*POOL)["spec"]["desiredNodes"] == 1
