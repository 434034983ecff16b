"""Offline validation of deploy/: core kinds against the Kubernetes schemas, and our Crossplane
XRD and Compositions by their own rules (the XRD schema, field paths, no late-initialisation)."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from kubernetes_validate.utils import latest_version

from scaler.kube.nodeside import POOL_LABEL
from scaler.kube.resources import GPU_NODE_POOL

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
CROSSPLANE = DEPLOY / "crossplane"
Obj = dict[str, Any]

# Namespaced managed resources of Crossplane v2 providers, per Composition file.
NODE_GROUP_KINDS = {
    "composition-aws.yaml": ("eks.aws.m.upbound.io/v1beta1", "NodeGroup"),
    "composition-gcp.yaml": ("container.gcp.m.upbound.io/v1beta1", "NodePool"),
    "composition-azure.yaml": (
        "containerservice.azure.m.upbound.io/v1beta1",
        "KubernetesClusterNodePool",
    ),
    "composition-digitalocean.yaml": (
        "kubernetes.digitalocean.m.crossplane.io/v1alpha1",
        "NodePool",
    ),
}
PATCH_TYPES = {
    "FromCompositeFieldPath",
    "ToCompositeFieldPath",
    "CombineFromComposite",
    "CombineToComposite",
    "PatchSet",
}


def documents(path: Path) -> list[Obj]:
    with path.open(encoding="utf-8") as stream:
        return [doc for doc in yaml.safe_load_all(stream) if doc]


def all_documents() -> list[tuple[str, Obj]]:
    found = []
    for path in sorted(DEPLOY.rglob("*.yaml")):
        for index, doc in enumerate(documents(path)):
            found.append((f"{path.relative_to(DEPLOY)}#{index}", doc))
    return found


def is_core(doc: Obj) -> bool:
    group = str(doc.get("apiVersion", "")).rpartition("/")[0]
    return "." not in group or group.endswith(".k8s.io")


CORE_DOCS = [pytest.param(doc, id=name) for name, doc in all_documents() if is_core(doc)]


@pytest.mark.parametrize("doc", CORE_DOCS)
def test_core_kind_is_valid(doc: Obj) -> None:
    kubernetes_validate.validate(doc, latest_version(), strict=True)


@pytest.mark.parametrize("name_doc", all_documents(), ids=lambda nd: nd[0])
def test_every_document_names_itself(name_doc: tuple[str, Obj]) -> None:
    _, doc = name_doc
    assert doc.get("apiVersion")
    assert doc.get("kind")
    assert doc.get("metadata", {}).get("name")


# --- the XRD ---------------------------------------------------------------------------------


def xrd() -> Obj:
    [doc] = documents(CROSSPLANE / "xrd.yaml")
    return doc


def version_schema() -> Obj:
    [version] = xrd()["spec"]["versions"]
    return version["schema"]["openAPIV3Schema"]


def split_field_path(path: str) -> list[str]:
    """Split ``a.b[key.with.dots].c[0]`` into ``["a", "b", "key.with.dots", "c", "0"]``."""
    return [part.strip("[]") for part in re.findall(r"\[[^\]]*\]|[^.\[\]]+", path)]


def schema_at(schema: Obj, path: str) -> Obj | None:
    node: Obj | None = schema
    for part in split_field_path(path):
        if node is None:
            return None
        if node.get("type") == "array":
            node = node.get("items") if part.isdigit() else None
        elif "properties" in node:
            node = node["properties"].get(part)
        elif isinstance(node.get("additionalProperties"), dict):
            node = node["additionalProperties"]
        else:
            return None
    return node


def test_xrd_is_namespaced_v2_with_scale() -> None:
    doc = xrd()
    spec = doc["spec"]
    [version] = spec["versions"]

    assert doc["apiVersion"] == "apiextensions.crossplane.io/v2"
    assert doc["metadata"]["name"] == f"{spec['names']['plural']}.{spec['group']}"
    assert spec["scope"] == "Namespaced"
    assert "claimNames" not in spec
    assert f"{spec['group']}/{version['name']}" == GPU_NODE_POOL.api_version
    assert (spec["names"]["kind"], spec["names"]["plural"]) == (
        GPU_NODE_POOL.kind,
        GPU_NODE_POOL.plural,
    )
    assert version["referenceable"] is True
    scale = version["subresources"]["scale"]
    for path in (scale["specReplicasPath"], scale["statusReplicasPath"]):
        field = schema_at(version_schema(), path.lstrip("."))
        assert field is not None, path
        assert field["type"] == "integer"


def test_field_paths_split_like_crossplane() -> None:
    assert split_field_path("spec.forProvider.labels[peakcast.io/pool]") == [
        "spec",
        "forProvider",
        "labels",
        "peakcast.io/pool",
    ]
    assert split_field_path("spec.instanceTypes[0]") == ["spec", "instanceTypes", "0"]


def test_xrd_schema_is_a_valid_schema() -> None:
    schema = version_schema()
    jsonschema.Draft7Validator.check_schema(schema)
    for name in schema["properties"]["spec"]["required"]:
        assert name in schema["properties"]["spec"]["properties"]
    for fields in ("observedNodes", "gpuReadyNodes"):
        assert schema_at(schema, f"status.{fields}") is not None


def strict(schema: Obj) -> Obj:
    """Reject unknown fields, as the API server prunes them from a structural schema."""
    schema = copy.deepcopy(schema)
    if "properties" in schema:
        schema.setdefault("additionalProperties", False)
        for child in schema["properties"].values():
            child.update(strict(child))
    if isinstance(schema.get("items"), dict):
        schema["items"] = strict(schema["items"])
    return schema


def xr_validator() -> jsonschema.Draft7Validator:
    schema = strict(version_schema())
    # Crossplane adds spec.crossplane (composition selection, resource references) itself.
    schema["properties"]["spec"]["properties"]["crossplane"] = {"type": "object"}
    schema["properties"]["metadata"] = {"type": "object"}
    schema["properties"]["apiVersion"] = {"type": "string"}
    schema["properties"]["kind"] = {"type": "string"}
    return jsonschema.Draft7Validator(schema)


def test_example_xr_matches_xrd() -> None:
    [example] = documents(CROSSPLANE / "example-gpunodepool.yaml")

    errors = [error.message for error in xr_validator().iter_errors(example)]

    assert errors == []
    assert "desiredNodes" not in example["spec"]  # peakcast owns it


@pytest.mark.parametrize(
    ("change", "message"),
    [
        pytest.param({"desiredNodes": -1}, "less than the minimum", id="negative-desired"),
        pytest.param({"gpusPerNode": "8"}, "is not of type 'integer'", id="string-count"),
        pytest.param({"desiredNode": 2}, "Additional properties", id="misspelt-field"),
    ],
)
def test_invalid_xr_is_rejected(change: Obj, message: str) -> None:
    [example] = documents(CROSSPLANE / "example-gpunodepool.yaml")
    example["spec"].update(change)

    errors = [error.message for error in xr_validator().iter_errors(example)]

    assert any(message in error for error in errors), errors


# --- the Compositions ------------------------------------------------------------------------


def function_names() -> set[str]:
    return {doc["metadata"]["name"] for doc in documents(CROSSPLANE / "functions.yaml")}


@pytest.mark.parametrize("file_name", sorted(NODE_GROUP_KINDS))
def test_composition_is_a_pipeline_for_gpunodepool(file_name: str) -> None:
    [composition] = documents(CROSSPLANE / file_name)
    spec = composition["spec"]

    assert composition["apiVersion"] == "apiextensions.crossplane.io/v1"
    assert composition["kind"] == "Composition"
    assert spec["mode"] == "Pipeline"
    assert spec["compositeTypeRef"] == {
        "apiVersion": GPU_NODE_POOL.api_version,
        "kind": GPU_NODE_POOL.kind,
    }
    assert {step["functionRef"]["name"] for step in spec["pipeline"]} <= function_names()


def node_group(file_name: str) -> Obj:
    [composition] = documents(CROSSPLANE / file_name)
    [render] = [
        s
        for s in composition["spec"]["pipeline"]
        if s["functionRef"]["name"] == "function-patch-and-transform"
    ]
    assert render["input"]["apiVersion"] == "pt.fn.crossplane.io/v1beta1"
    assert render["input"]["kind"] == "Resources"
    [resource] = render["input"]["resources"]
    return resource


@pytest.mark.parametrize("file_name", sorted(NODE_GROUP_KINDS))
def test_node_group_is_peakcasts_alone(file_name: str) -> None:
    base = node_group(file_name)["base"]

    assert (base["apiVersion"], base["kind"]) == NODE_GROUP_KINDS[file_name]
    assert "LateInitialize" not in base["spec"]["managementPolicies"]
    assert "*" not in base["spec"]["managementPolicies"]
    assert set(base["spec"]["providerConfigRef"]) == {"kind", "name"}


@pytest.mark.parametrize("file_name", sorted(NODE_GROUP_KINDS))
def test_patches_resolve_against_xrd(file_name: str) -> None:
    patches = node_group(file_name)["patches"]
    schema = version_schema()

    for patch in patches:
        assert patch["type"] in PATCH_TYPES
        if patch["type"] == "FromCompositeFieldPath":
            source = patch["fromFieldPath"]
            assert source == "metadata.name" or schema_at(schema, source) is not None, source
            assert patch["toFieldPath"].startswith("spec.forProvider.")
        if patch["type"] == "ToCompositeFieldPath":
            assert schema_at(schema, patch["toFieldPath"]) is not None, patch["toFieldPath"]
    sources = {p.get("fromFieldPath") for p in patches if p["type"] == "FromCompositeFieldPath"}
    targets = {p.get("toFieldPath") for p in patches}
    assert "spec.desiredNodes" in sources
    assert "status.observedNodes" in targets
    assert any(f"[{POOL_LABEL}]" in target for target in targets), "nodes need the pool label"
