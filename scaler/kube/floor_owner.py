"""The protocol of the objects that can carry a workload floor (HPA, KEDA, KServe, Deployment)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from scaler.kube.client import KubeClient
from scaler.kube.objects import Obj, get_path
from scaler.kube.resources import DEPLOYMENT, ResourceType


class FloorOwner(Protocol):
    """One kind of replica owner: where its floor field is and how far it may go."""

    rtype: ResourceType
    field_path: tuple[str, ...]

    def bounded(self, obj: Obj, replicas: int) -> tuple[int, str]:
        """Return the value to write for ``replicas`` and a note when a bound changed it."""
        ...

    def pod_selector(self, client: KubeClient, obj: Obj) -> str | None:
        """Return the label selector of the workload's pods, or None when unknown."""
        ...


def deployment_pod_selector(client: KubeClient, namespace: str, name: str) -> str | None:
    """Return the ``matchLabels`` of Deployment ``namespace/name`` as a label selector."""
    deployment = client.get(DEPLOYMENT, name, namespace)
    if deployment is None:
        return None
    return match_labels_selector(deployment)


def match_labels_selector(deployment: Mapping[str, Any]) -> str | None:
    labels = get_path(deployment, ("spec", "selector", "matchLabels")) or {}
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items())) or None


def scale_target(obj: Mapping[str, Any]) -> tuple[str, str]:
    """Return (kind, name) of an HPA's or ScaledObject's ``spec.scaleTargetRef``."""
    ref = get_path(obj, ("spec", "scaleTargetRef")) or {}
    return str(ref.get("kind") or "Deployment"), str(ref.get("name") or "")
