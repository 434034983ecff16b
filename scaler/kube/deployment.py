"""Workload floor on a Deployment's ``spec.replicas``, used only when nothing else owns them."""

from __future__ import annotations

from scaler.kube.client import KubeClient
from scaler.kube.floor_owner import match_labels_selector
from scaler.kube.objects import Obj
from scaler.kube.resources import DEPLOYMENT, ResourceType


class DeploymentOwner:
    rtype: ResourceType = DEPLOYMENT
    field_path: tuple[str, ...] = ("spec", "replicas")

    def bounded(self, obj: Obj, replicas: int) -> tuple[int, str]:
        return max(0, replicas), ""

    def pod_selector(self, client: KubeClient, obj: Obj) -> str | None:
        return match_labels_selector(obj)
