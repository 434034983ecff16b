"""Offline checks of the service's manifests: deploy/base, deploy/overlays/example, the
Dockerfile and the Grafana dashboard.

Core kinds are validated against the Kubernetes schemas (kubernetes-validate). The
ServiceMonitor and PrometheusRule get a small schema check and ``promtool check rules``. The
kustomizations are checked for the files they name and, when kubectl is installed, rendered.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from kubernetes_validate.utils import latest_version

from scaler.config_loader import parse_settings
from scaler.kube import resources

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
BASE = DEPLOY / "base"
OVERLAY = DEPLOY / "overlays" / "example"
KUSTOMIZATIONS = [BASE, OVERLAY]
DASHBOARD = DEPLOY / "grafana" / "peakcast-dashboard.json"
METRICS_DOC = ROOT / "docs" / "METRICS.md"
MONITORING = "monitoring.coreos.com/v1"
Obj = dict[str, Any]


def load_all(path: Path) -> list[Obj]:
    with path.open(encoding="utf-8") as stream:
        return [doc for doc in yaml.safe_load_all(stream) if doc]


def kustomization(folder: Path) -> Obj:
    return load_all(folder / "kustomization.yml")[0]


def manifests(folder: Path) -> list[Obj]:
    """Return the documents of every resource file a kustomization lists (not its bases)."""
    docs = []
    for entry in kustomization(folder).get("resources", []):
        path = folder / entry
        if path.is_file():
            docs += load_all(path)
    return docs


def by_kind(kind: str, folder: Path = BASE) -> list[Obj]:
    return [doc for doc in manifests(folder) if doc["kind"] == kind]


def only(kind: str, folder: Path = BASE) -> Obj:
    found = by_kind(kind, folder)
    assert len(found) == 1, f"expected one {kind} in {folder}, found {len(found)}"
    return found[0]


def is_core(doc: Obj) -> bool:
    group = str(doc["apiVersion"]).rpartition("/")[0]
    return "." not in group or group.endswith(".k8s.io")


CORE_DOCS = [
    pytest.param(doc, id=f"{folder.name}/{doc['kind']}/{doc['metadata']['name']}")
    for folder in KUSTOMIZATIONS
    for doc in manifests(folder)
    if is_core(doc)
]


@pytest.mark.parametrize("doc", CORE_DOCS)
def test_core_kind_is_valid(doc: Obj) -> None:
    kubernetes_validate.validate(doc, latest_version(), strict=True)


@pytest.mark.parametrize("folder", KUSTOMIZATIONS, ids=lambda folder: folder.name)
def test_kustomization_names_existing_files(folder: Path) -> None:
    spec = kustomization(folder)
    named = list(spec.get("resources", []))
    for generator in spec.get("configMapGenerator", []):
        named += [entry.split("=", 1)[-1] for entry in generator.get("files", [])]
    named += [patch["path"] for patch in spec.get("patches", []) if "path" in patch]
    missing = [entry for entry in named if not (folder / entry).exists()]
    assert named
    assert missing == []


@pytest.mark.parametrize("folder", KUSTOMIZATIONS, ids=lambda folder: folder.name)
def test_embedded_config_is_valid(folder: Path) -> None:
    raw = yaml.safe_load((folder / "peakcast.yml").read_text(encoding="utf-8"))
    settings = parse_settings(raw, ROOT)
    rbac_names = {
        name
        for role in by_kind("Role")
        for rule in role["rules"]
        for name in rule.get("resourceNames", [])
    }
    assert settings.service.lease_name in rbac_names


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl (kustomize) is not installed")
@pytest.mark.parametrize("folder", KUSTOMIZATIONS, ids=lambda folder: folder.name)
def test_kustomization_renders_valid_objects(folder: Path) -> None:
    completed = subprocess.run(
        ["kubectl", "kustomize", str(folder)], capture_output=True, text=True, check=False
    )
    assert completed.returncode == 0, completed.stderr
    docs = [doc for doc in yaml.safe_load_all(completed.stdout) if doc]
    for doc in docs:
        if is_core(doc):
            kubernetes_validate.validate(doc, latest_version(), strict=True)
    deployment = next(doc for doc in docs if doc["kind"] == "Deployment")
    config_map = next(doc for doc in docs if doc["kind"] == "ConfigMap")
    volumes = deployment["spec"]["template"]["spec"]["volumes"]
    config_volume = next(v for v in volumes if "configMap" in v)
    assert config_volume["configMap"]["name"] == config_map["metadata"]["name"]
    parse_settings(yaml.safe_load(config_map["data"]["peakcast.yaml"]), ROOT)


# --- the Deployment ------------------------------------------------------------------------------


def container() -> Obj:
    containers = only("Deployment")["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def test_deployment_runs_locked_down() -> None:
    pod = only("Deployment")["spec"]["template"]["spec"]
    security = container()["securityContext"]

    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    for kind in ("requests", "limits"):
        assert set(container()["resources"][kind]) == {"cpu", "memory"}


def test_probes_reach_service_endpoints() -> None:
    main = container()
    port = next(p for p in main["ports"] if p["name"] == "http")
    listen = next(a for a in main["args"] if a.startswith("--listen="))

    assert listen == f"--listen=0.0.0.0:{port['containerPort']}"
    assert main["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert main["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    service_port = only("Service")["spec"]["ports"][0]
    assert service_port["targetPort"] == "http"
    ingress_ports = {
        p["port"] for rule in only("NetworkPolicy")["spec"]["ingress"] for p in rule["ports"]
    }
    assert port["containerPort"] in ingress_ports


def test_config_and_secrets_are_mounted_files() -> None:
    main = container()
    pod = only("Deployment")["spec"]["template"]["spec"]
    mounts = {m["name"]: m for m in main["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    config_arg = next(a for a in main["args"] if a.startswith("--config="))

    assert config_arg == f"--config={mounts['config']['mountPath']}/peakcast.yaml"
    generator = kustomization(BASE)["configMapGenerator"][0]["name"]
    assert volumes["config"]["configMap"]["name"] == generator
    assert "secret" in volumes["thanos-credentials"]
    assert all(m["readOnly"] for name, m in mounts.items() if name != "tmp")
    assert not any("secretKeyRef" in str(env) for env in main.get("env", []))


def test_pod_selectors_match_template() -> None:
    labels = only("Deployment")["spec"]["template"]["metadata"]["labels"]
    selectors = [
        only("Deployment")["spec"]["selector"]["matchLabels"],
        only("Service")["spec"]["selector"],
        only("PodDisruptionBudget")["spec"]["selector"]["matchLabels"],
        only("NetworkPolicy")["spec"]["podSelector"]["matchLabels"],
    ]
    for selector in selectors:
        assert selector.items() <= labels.items()


# --- RBAC ----------------------------------------------------------------------------------------


def granted() -> dict[tuple[str, str], set[str]]:
    """Return the verbs granted per (API group, resource) by every role in base and overlay."""
    verbs: dict[tuple[str, str], set[str]] = {}
    for folder in KUSTOMIZATIONS:
        for doc in manifests(folder):
            if doc["kind"] not in ("Role", "ClusterRole"):
                continue
            for rule in doc["rules"]:
                for group in rule["apiGroups"]:
                    for resource in rule["resources"]:
                        verbs.setdefault((group, resource), set()).update(rule["verbs"])
    return verbs


USED = [
    pytest.param(resources.NODE, {"list"}, id="nodes"),
    pytest.param(resources.POD, {"list"}, id="pods"),
    pytest.param(resources.HPA, {"get", "list", "patch"}, id="hpa"),
    pytest.param(resources.SCALED_OBJECT, {"get", "list", "patch"}, id="scaledobjects"),
    pytest.param(resources.INFERENCE_SERVICE, {"get", "patch"}, id="inferenceservices"),
    pytest.param(resources.DEPLOYMENT, {"get", "patch"}, id="deployments"),
    pytest.param(resources.GPU_NODE_POOL, {"get", "patch"}, id="gpunodepools"),
    pytest.param(resources.EVENT, {"create"}, id="events"),
    pytest.param(resources.ANALYSIS, {"get", "list", "create", "delete"}, id="analyses"),
]


@pytest.mark.parametrize(("rtype", "verbs"), USED)
def test_rbac_grants_what_peakcast_uses(rtype: resources.ResourceType, verbs: set[str]) -> None:
    assert granted().get((rtype.group, rtype.plural)) == verbs


def test_rbac_grants_lease_and_status() -> None:
    verbs = granted()
    assert verbs[("coordination.k8s.io", "leases")] == {"get", "update", "create"}
    assert verbs[(resources.GPU_NODE_POOL.group, "gpunodepools/status")] == {"patch"}


def test_rbac_has_no_wildcards_or_secrets() -> None:
    for (group, resource), verbs in granted().items():
        assert "*" not in (group, resource)
        assert "*" not in verbs
        assert resource != "secrets"


def test_floors_role_never_bound_cluster_wide() -> None:
    bindings = [
        d for f in KUSTOMIZATIONS for d in manifests(f) if d["kind"] == "ClusterRoleBinding"
    ]
    assert [b["roleRef"]["name"] for b in bindings] == ["peakcast-cluster"]


# --- ServiceMonitor and PrometheusRule -----------------------------------------------------------


def test_service_monitor_scrapes_metrics_port() -> None:
    monitor = only("ServiceMonitor")
    service = only("Service")

    assert monitor["apiVersion"] == MONITORING
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )
    assert monitor["spec"]["namespaceSelector"]["matchNames"] == [service["metadata"]["namespace"]]
    port_names = {port["name"] for port in service["spec"]["ports"]}
    for endpoint in monitor["spec"]["endpoints"]:
        assert endpoint["port"] in port_names
        assert endpoint["path"] == "/metrics"
        assert re.fullmatch(r"\d+[smh]", endpoint["interval"])


def test_prometheus_rule_shape() -> None:
    rule = only("PrometheusRule")

    assert rule["apiVersion"] == MONITORING
    assert set(rule["spec"]) == {"groups"}
    for group in rule["spec"]["groups"]:
        assert isinstance(group["name"], str)
        for alert in group["rules"]:
            assert set(alert) <= {"alert", "expr", "for", "labels", "annotations"}
            assert re.fullmatch(r"[A-Z][A-Za-z]+", alert["alert"])
            assert alert["labels"]["severity"] in ("warning", "critical")
            assert alert["annotations"]["summary"]


def documented_metrics() -> set[str]:
    text = METRICS_DOC.read_text(encoding="utf-8")
    return set(re.findall(r"^\| `(peakcast_[a-z0-9_]+)`", text, flags=re.MULTILINE))


def metric_names(expression: str) -> set[str]:
    names = set(re.findall(r"\b(peakcast_[a-z0-9_]+)", expression))
    return {re.sub(r"_(bucket|count|sum)$", "", name) for name in names}


def dashboard_expressions() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]


def alert_expressions() -> list[str]:
    return [a["expr"] for g in only("PrometheusRule")["spec"]["groups"] for a in g["rules"]]


def test_queries_use_documented_metrics() -> None:
    documented = documented_metrics()
    for expression in dashboard_expressions() + alert_expressions():
        assert metric_names(expression) <= documented, expression


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed")
def test_queries_parse_with_promtool(tmp_path: Path) -> None:
    # Grafana's variables become a match-all regular expression before promtool parses them.
    dashboard_rules = [
        {"record": f"peakcast:dashboard_query_{index}:check", "expr": e.replace("$", "")}
        for index, e in enumerate(dashboard_expressions())
    ]
    groups = only("PrometheusRule")["spec"]["groups"] + [
        {"name": "dashboard", "rules": dashboard_rules}
    ]
    rules = tmp_path / "rules.yaml"
    rules.write_text(yaml.safe_dump({"groups": groups}), encoding="utf-8")

    completed = subprocess.run(
        ["promtool", "check", "rules", str(rules)], capture_output=True, text=True, check=False
    )

    assert completed.returncode == 0, completed.stdout + completed.stderr


# --- Dashboard and Dockerfile --------------------------------------------------------------------


def test_dashboard_covers_the_service() -> None:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    used = set().union(*(metric_names(e) for e in dashboard_expressions()))
    titles = [panel["title"] for panel in dashboard["panels"]]

    assert dashboard["uid"] == "peakcast-overview"
    for name in (
        "peakcast_observed_demand",
        "peakcast_forecast_demand",
        "peakcast_planned_floor",
        "peakcast_current_floor",
        "peakcast_pool_lead_time_seconds",
        "peakcast_data_coverage_ratio",
    ):
        assert name in used
    assert len(titles) == len(set(titles))
    variables = {v["name"] for v in dashboard["templating"]["list"]}
    assert variables == {"datasource", "workload", "pool"}


def test_dockerfile_runs_as_non_root_user() -> None:
    lines = (DEPLOY / "Dockerfile").read_text(encoding="utf-8").splitlines()
    users = [line.split()[1] for line in lines if line.startswith("USER ")]
    copies = [
        line.split()[1] for line in lines if line.startswith("COPY ") and "--from" not in line
    ]
    run_as = only("Deployment")["spec"]["template"]["spec"]["securityContext"]["runAsUser"]

    assert users == [f"{run_as}:{run_as}"]
    assert 'ENTRYPOINT ["peakcast"]' in lines
    for source in copies:
        assert (ROOT / source).exists(), source
    assert "config/" in copies
