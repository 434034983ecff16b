"""Workload floor on a HorizontalPodAutoscaler (``autoscaling/v2``): ``spec.minReplicas``."""

from __future__ import annotations

from scaler.kube.client import KubeClient
from scaler.kube.floor_owner import deployment_pod_selector, scale_target
from scaler.kube.objects import Obj, as_int, get_path
from scaler.kube.resources import HPA, ResourceType


class HPAOwner:
    rtype: ResourceType = HPA
    field_path: tuple[str, ...] = ("spec", "minReplicas")

    def bounded(self, obj: Obj, replicas: int) -> tuple[int, str]:
        high = as_int(get_path(obj, ("spec", "maxReplicas")))
        if high is not None and replicas > high:
            return high, f"capped at the HPA's spec.maxReplicas {high}"
        if replicas < 1:
            # minReplicas 0 needs the alpha feature gate HPAScaleToZero; 1 is the API default.
            return 1, "raised to 1, the lowest minReplicas an HPA accepts by default"
        return replicas, ""

    def pod_selector(self, client: KubeClient, obj: Obj) -> str | None:
        kind, name = scale_target(obj)
        namespace = get_path(obj, ("metadata", "namespace")) or "default"
        return deployment_pod_selector(client, namespace, name) if kind == "Deployment" else None
