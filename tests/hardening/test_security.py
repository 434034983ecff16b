"""Security review as tests: least-privilege RBAC, secrets kept out, TLS verified by default.

RBAC: the fake API server's audit log of the code's own requests gives the set of (API group,
resource, verb) that peakcast uses. The requests come from the actuator in each node mode and
for each kind of replica owner, the Keptn gate, floor expiry and leader election. That set
must equal what deploy/base/rbac.yaml grants: every used verb granted, nothing granted that is
never used. Server-side apply is authorised as ``patch``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client as k8s

from scaler.config_loader import parse_settings
from scaler.kube.client import KubeClient, build_api_client
from scaler.kube.expiry import expire_floors
from scaler.kube.registry import build_actuator
from scaler.service.leader import LeaseConfig, LeaseElector
from tests.faults import rig as r
from tests.faults.conftest import fake_kube, replay
from tests.kube import builders as b
from tests.kube.test_gates import KEPTN_GATE, keptn_operator
from tests.kube.test_ownership import inference_service, scaled_object
from tests.servers.fake_kube import FakeKube, running_fake_kube
from tests.servers.thanos_replay import RecordedRequest, Reply, ThanosReplay, error_reply

__all__ = ["fake_kube", "replay"]

pytestmark = pytest.mark.timeout(90)

ROOT = Path(__file__).resolve().parents[2]
RBAC = ROOT / "deploy" / "base" / "rbac.yaml"
Permission = tuple[str, str, str]  # (API group, resource[/subresource], verb)
# A custom_field pool writes a resource the operator names, so its grant is theirs to add.
USER_NAMED_GROUPS = {"example.org"}

TOKEN = "tok-5f8e1c2b9a7d4e3f"
PASSWORD = "pw-0a9b8c7d6e5f4a3b"
KUBE_TOKEN = "kube-token-3c4d5e6f7a8b9c0d"


# --- RBAC ------------------------------------------------------------------------------------


def granted() -> set[Permission]:
    found: set[Permission] = set()
    for document in yaml.safe_load_all(RBAC.read_text(encoding="utf-8")):
        if not document or document.get("kind") not in ("Role", "ClusterRole"):
            continue
        for rule in document.get("rules", []):
            for group in rule["apiGroups"]:
                for resource in rule["resources"]:
                    for verb in rule["verbs"]:
                        found.add((group, resource, verb))
    return found


def used(kube: FakeKube) -> set[Permission]:
    """Turn the audit log into RBAC permissions; server-side apply is authorised as patch."""
    found: set[Permission] = set()
    for entry in kube.requests():
        parts = [part for part in entry.path.split("/") if part]
        group = "" if parts[0] == "api" else parts[1]
        resource = entry.resource + (f"/{entry.subresource}" if entry.subresource else "")
        verb = "patch" if entry.verb == "apply" else entry.verb
        if group not in USER_NAMED_GROUPS:
            found.add((group, resource, verb))
    return found


def seed_pools(kube: FakeKube, mode: str) -> None:
    for index in range(4):
        kube.seed(b.node(f"cloud-{index}", "cloud-h100", gpus=8))
    if mode == "gpunodepool":
        kube.seed(b.gpu_node_pool("cloud-h100", desired=0))
    else:
        kube.seed(b.deployment("cloud-h100-placeholder", b.POOL_NAMESPACE, replicas=0))


def run_actuator(
    kube: FakeKube, mode: str, target: dict[str, Any] | None, gate: dict[str, Any] | None
) -> None:
    """Raise, lower and raise again one pool floor and one workload floor, then expire them."""
    seed_pools(kube, mode)
    kube.seed(b.deployment("llm"))
    kube.seed(b.hpa("llm", min_replicas=1))
    kube.seed(scaled_object("llm-so", "llm"))
    kube.seed(inference_service("llm", maximum=64))

    raw = b.settings_dict(mode, gate)
    if target is None:
        del raw["workloads"][0]["target"]
    else:
        raw["workloads"][0]["target"] = {"namespace": b.NAMESPACE, **target}
    settings = parse_settings(raw, ROOT)
    if gate is not None:
        keptn_operator(kube, [True, True, True])

    clock = b.FakeClock()
    api = build_api_client(host=kube.url)
    try:
        actuator = build_actuator(
            settings, False, api_client=api, clock=clock, sleep=lambda seconds: None
        )
        actuator.current_floors()
        actuator.apply(b.decision(pool_nodes=2, replicas=4))
        clock.advance(600)
        actuator.apply(b.decision(pool_nodes=1, replicas=2, current_nodes=2, current_replicas=4))
        clock.advance(600)  # a raise in a new gate window: a new Analysis, the old one deleted
        actuator.apply(b.decision(pool_nodes=2, replicas=5, current_nodes=1, current_replicas=2))
        clock.advance(30 * 86_400)  # every floor has expired by now
        expire_floors(KubeClient(api, "peakcast", 5), settings, clock.now)
    finally:
        api.close()


def run_leader_election(kube: FakeKube) -> None:
    api = build_api_client(host=kube.url)
    try:
        config = LeaseConfig("peakcast", "peakcast-system", "replica-a", 3, 2, 0.5)
        elector = LeaseElector(k8s.CoordinationV1Api(api), config)
        elector.attempt()  # creates the Lease
        elector.attempt()  # renews it
        elector.release()
    finally:
        api.close()


SCENARIOS: list[tuple[str, dict[str, Any] | None, dict[str, Any] | None]] = [
    ("gpunodepool", {"kind": "hpa", "name": "llm"}, None),
    ("placeholder", {"kind": "keda", "name": "llm-so"}, None),
    ("gpunodepool", {"kind": "kserve", "name": "llm"}, None),
    ("gpunodepool", {"kind": "deployment", "name": "llm"}, None),
    ("gpunodepool", None, None),  # owner detection
    ("gpunodepool", {"kind": "hpa", "name": "llm"}, KEPTN_GATE),
]


@pytest.fixture(scope="module")
def used_permissions() -> set[Permission]:
    found: set[Permission] = set()
    for mode, target, gate in SCENARIOS:
        with running_fake_kube() as kube:
            kube.seed(
                {
                    "apiVersion": "v1",
                    "kind": "Namespace",
                    "metadata": {"name": "peakcast-system"},
                }
            )
            run_actuator(kube, mode, target, gate)
            found |= used(kube)
    with running_fake_kube() as kube:
        run_leader_election(kube)
        found |= used(kube)
    return found


def test_every_used_verb_is_granted(used_permissions: set[Permission]) -> None:
    missing = used_permissions - granted()

    assert not missing, f"used but not granted: {sorted(missing)}"


def test_nothing_granted_is_unused(used_permissions: set[Permission]) -> None:
    unused = granted() - used_permissions

    assert not unused, f"granted but never used: {sorted(unused)}"


def test_no_wildcards_or_secrets_granted() -> None:
    for group, resource, verb in granted():
        assert "*" not in (group, resource, verb)
        assert resource not in ("secrets", "configmaps", "serviceaccounts/token")
        assert verb not in ("escalate", "bind", "impersonate")


# --- secrets ---------------------------------------------------------------------------------


@pytest.fixture
def secret_files(tmp_path: Path) -> Iterator[dict[str, Path]]:
    token = tmp_path / "token"
    token.write_text(TOKEN + "\n", encoding="utf-8")
    password = tmp_path / "password"
    password.write_text(PASSWORD + "\n", encoding="utf-8")
    yield {"token": token, "password": password}


def echo_credentials(request: RecordedRequest) -> Reply:
    """Respond 401 and echo the Authorization header back, as a careless proxy might."""
    return error_reply(401, "unauthorized", f"rejected: {request.headers.get('Authorization')}")


@pytest.mark.parametrize("credential", ["token", "password"])
def test_secret_never_in_logs_errors_or_journal(
    credential: str,
    secret_files: dict[str, Path],
    replay: ThanosReplay,
    fake_kube: FakeKube,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    journal = tmp_path / "journal.jsonl"
    raw = r.settings_dict(
        replay.url, fake_kube.url, journal={"enabled": True, "path": str(journal)}
    )
    source = raw["sources"]["prometheus"]
    if credential == "token":
        source["bearer_token_file"] = str(secret_files["token"])
        secret = TOKEN
    else:
        source["basic_auth_username"] = "peakcast"
        source["basic_auth_password_file"] = str(secret_files["password"])
        secret = PASSWORD
    rig = r.make_rig(parse_settings(raw, ROOT), fake_kube)
    try:
        rig.run(r.PEAK)
        replay.responder = echo_credentials
        failed = rig.run(r.EVENING)
    finally:
        rig.close()

    sent = [request.headers.get("Authorization", "") for request in replay.data_requests()]
    assert sent
    assert all(header for header in sent)  # the credential was used on every request
    reason = failed.decision.data[0].reason
    assert "401" in reason
    assert secret not in reason
    assert secret not in caplog.text
    assert secret not in journal.read_text(encoding="utf-8")
    assert secret not in json.dumps([repr(floor) for floor in failed.decision.all_floors()])
    for result in failed.results:
        assert secret not in result.message


def test_kube_token_never_logged(
    fake_kube: FakeKube, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "fake", "cluster": {"server": fake_kube.url}}],
                "users": [{"name": "peakcast", "user": {"token": KUBE_TOKEN}}],
                "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "peakcast"}}],
                "current-context": "fake",
            }
        ),
        encoding="utf-8",
    )
    fake_kube.seed(b.hpa("llm", min_replicas=1))
    fake_kube.seed(b.deployment("llm"))
    fake_kube.deny("apply", "horizontalpodautoscalers")
    raw = b.settings_dict()
    del raw["pools"][1]["actuator"]
    raw["kubernetes"] = {"kubeconfig_path": str(kubeconfig)}
    settings = parse_settings(raw, ROOT)

    actuator = build_actuator(settings, False, clock=b.FakeClock())
    results = actuator.apply(b.decision(pool_nodes=0, replicas=3))

    assert results[1].status == "failed"
    assert "403" in results[1].message
    assert KUBE_TOKEN not in results[1].message
    assert KUBE_TOKEN not in caplog.text


# --- TLS -------------------------------------------------------------------------------------


def thanos_settings(**extra: Any) -> Any:
    raw = r.settings_dict("https://thanos.example.invalid", "http://127.0.0.1:9")
    raw["sources"]["prometheus"].update(extra)
    return parse_settings(raw, ROOT).sources["prometheus"]


def test_thanos_session_verifies_tls_by_default() -> None:
    from forecaster.sources.auth import build_session

    session = build_session(thanos_settings())
    try:
        assert session.verify is True
    finally:
        session.close()


def test_thanos_verification_off_only_when_set(caplog: pytest.LogCaptureFixture) -> None:
    from forecaster.sources.auth import build_session

    session = build_session(thanos_settings(insecure_skip_verify=True))
    try:
        assert session.verify is False
    finally:
        session.close()
    assert "TLS certificate verification is off" in caplog.text


def kubeconfig_with(tmp_path: Path, cluster: dict[str, Any]) -> Path:
    path = tmp_path / "kubeconfig"
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:6443", **cluster}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "c",
    }
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def test_kube_client_verifies_tls_by_default(tmp_path: Path) -> None:
    api = build_api_client(kubeconfig_path=kubeconfig_with(tmp_path, {}))
    try:
        assert api.configuration.verify_ssl is True
    finally:
        api.close()


def test_kube_verification_off_only_when_set(tmp_path: Path) -> None:
    path = kubeconfig_with(tmp_path, {"insecure-skip-tls-verify": True})
    api = build_api_client(kubeconfig_path=path)
    try:
        assert api.configuration.verify_ssl is False
    finally:
        api.close()


def test_plain_host_client_keeps_verification() -> None:
    api = build_api_client(host="https://127.0.0.1:6443")
    try:
        assert api.configuration.verify_ssl is True
    finally:
        api.close()


def test_default_config_files_hold_no_secret_values() -> None:
    for path in [ROOT / "config" / "peakcast.yaml", *sorted((ROOT / "config").rglob("*.yaml"))]:
        text = path.read_text(encoding="utf-8")
        config = yaml.safe_load(text)
        for source in (config.get("sources") or {}).values():
            assert "token" not in {key.lower() for key in source}
            assert "password" not in {key.lower() for key in source}
