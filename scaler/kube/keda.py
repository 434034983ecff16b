"""Workload floor on a KEDA ScaledObject (``keda.sh/v1alpha1``): ``spec.minReplicaCount``.

KEDA copies the ScaledObject's bounds into the HPA it creates (``keda-hpa-<name>``), so the
floor is written on the ScaledObject, never on that HPA.
"""

from __future__ import annotations

from scaler.kube.client import KubeClient
from scaler.kube.floor_owner import deployment_pod_selector, scale_target
from scaler.kube.objects import Obj, as_int, get_path
from scaler.kube.resources import SCALED_OBJECT, ResourceType

DEFAULT_MAX_REPLICA_COUNT = 100  # KEDA's default when spec.maxReplicaCount is unset


class ScaledObjectOwner:
    rtype: ResourceType = SCALED_OBJECT
    field_path: tuple[str, ...] = ("spec", "minReplicaCount")

    def bounded(self, obj: Obj, replicas: int) -> tuple[int, str]:
        high = as_int(get_path(obj, ("spec", "maxReplicaCount")))
        high = DEFAULT_MAX_REPLICA_COUNT if high is None else high
        if replicas > high:
            return high, f"capped at the ScaledObject's spec.maxReplicaCount {high}"
        return max(0, replicas), ""

    def pod_selector(self, client: KubeClient, obj: Obj) -> str | None:
        kind, name = scale_target(obj)
        namespace = get_path(obj, ("metadata", "namespace")) or "default"
        return deployment_pod_selector(client, namespace, name) if kind == "Deployment" else None
