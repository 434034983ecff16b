"""Find the object that owns a workload's replicas, so its floor is written there and only there.

Without a configured target, detection goes in this order: a KServe InferenceService named like
the workload, then a KEDA ScaledObject targeting the workload's Deployment, then an HPA targeting
it, then the Deployment itself. An HPA that KEDA or KServe created is skipped, because they
rewrite it. A configured target is checked against the same rules, so a Deployment whose replicas
an HPA, ScaledObject or InferenceService owns is rejected with the name of that owner.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from forecaster.errors import ActionRejectedError
from scaler.kube.client import KubeClient, NotFoundError
from scaler.kube.deployment import DeploymentOwner
from scaler.kube.floor_owner import FloorOwner, scale_target
from scaler.kube.hpa import HPAOwner
from scaler.kube.keda import ScaledObjectOwner
from scaler.kube.kserve import InferenceServiceOwner
from scaler.kube.objects import Obj, get_path
from scaler.kube.resources import DEPLOYMENT, HPA, INFERENCE_SERVICE, SCALED_OBJECT, ResourceType
from scaler.kube.writer import FloorTarget
from scaler.settings import WorkloadSettings

logger = logging.getLogger(__name__)

FLOOR_OWNERS: dict[str, FloorOwner] = {
    "deployment": DeploymentOwner(),
    "hpa": HPAOwner(),
    "keda": ScaledObjectOwner(),
    "kserve": InferenceServiceOwner(),
}
_CONTROLLING_KINDS = {"ScaledObject", "InferenceService"}


class OwnershipError(ActionRejectedError):
    """The configured target does not own the workload's replicas, or no owner was found."""


@dataclass(frozen=True)
class ReplicaOwner:
    """The object carrying a workload's floor."""

    kind: str
    owner: FloorOwner
    target: FloorTarget
    obj: Obj


def resolve_owner(client: KubeClient, workload: WorkloadSettings) -> ReplicaOwner:
    """Return where the workload's floor goes; raise ``OwnershipError`` when nowhere is safe."""
    if workload.target is not None:
        kind = workload.target.kind
        namespace, name = workload.target.namespace, workload.target.name
        obj = client.get(FLOOR_OWNERS[kind].rtype, name, namespace)
        if obj is None:
            raise OwnershipError(
                f"workload {workload.name}: target {FLOOR_OWNERS[kind].rtype.kind} "
                f"{namespace}/{name} not found"
            )
        _check_configured(client, kind, obj, namespace, name)
        return _owner(kind, obj, namespace, name)
    return _detect(client, workload)


def _owner(kind: str, obj: Obj, namespace: str, name: str) -> ReplicaOwner:
    owner = FLOOR_OWNERS[kind]
    return ReplicaOwner(
        kind, owner, FloorTarget(owner.rtype, name, namespace, owner.field_path), obj
    )


def _check_configured(client: KubeClient, kind: str, obj: Obj, namespace: str, name: str) -> None:
    if kind == "deployment":
        others = _deployment_owners(client, obj, namespace, name)
        if others:
            raise OwnershipError(
                f"Deployment {namespace}/{name}: replicas are owned by {others[0]}; write the "
                f"floor there (set target.kind and target.name) instead of spec.replicas"
            )
    if kind == "hpa":
        controller = _controlling_owner(obj)
        if controller:
            raise OwnershipError(
                f"HorizontalPodAutoscaler {namespace}/{name} is managed by {controller}, which "
                f"rewrites its minReplicas; set the target to that {controller.split()[0]}"
            )


def _detect(client: KubeClient, workload: WorkloadSettings) -> ReplicaOwner:
    namespace, name = workload.namespace, workload.name
    isvc = _get_optional(client, INFERENCE_SERVICE, name, namespace)
    if isvc is not None:
        return _owner("kserve", isvc, namespace, name)
    for scaled in _list_optional(client, SCALED_OBJECT, namespace):
        if scale_target(scaled) == ("Deployment", name):
            return _owner("keda", scaled, namespace, scaled["metadata"]["name"])
    for hpa in _list_optional(client, HPA, namespace):
        if scale_target(hpa) == ("Deployment", name) and not _controlling_owner(hpa):
            return _owner("hpa", hpa, namespace, hpa["metadata"]["name"])
    deployment = client.get(DEPLOYMENT, name, namespace)
    if deployment is not None and not _controlling_owner(deployment):
        return _owner("deployment", deployment, namespace, name)
    raise OwnershipError(
        f"workload {workload.name}: found no InferenceService, ScaledObject, HPA or Deployment "
        f"named {namespace}/{name}; set workload.target"
    )


def _deployment_owners(client: KubeClient, deployment: Obj, namespace: str, name: str) -> list[str]:
    found = []
    controller = _controlling_owner(deployment)
    if controller:
        found.append(controller)
    for rtype in (SCALED_OBJECT, HPA):
        for obj in _list_optional(client, rtype, namespace):
            if scale_target(obj) == ("Deployment", name):
                found.append(f"{rtype.kind} {namespace}/{obj['metadata']['name']}")
    return found


def _controlling_owner(obj: Obj) -> str | None:
    for ref in get_path(obj, ("metadata", "ownerReferences")) or []:
        if ref.get("kind") in _CONTROLLING_KINDS:
            namespace = get_path(obj, ("metadata", "namespace"))
            return f"{ref['kind']} {namespace}/{ref.get('name')}"
    return None


def _get_optional(client: KubeClient, rtype: ResourceType, name: str, namespace: str) -> Obj | None:
    """Read an object of a kind whose CRD may not be installed (404 for the whole resource)."""
    try:
        return client.get(rtype, name, namespace)
    except NotFoundError:
        return None


def _list_optional(client: KubeClient, rtype: ResourceType, namespace: str) -> list[Obj]:
    try:
        return client.list(rtype, namespace)
    except NotFoundError:
        logger.debug("%s is not served in this cluster; skipping it for %s", rtype.kind, namespace)
        return []
