"""Workload floor on a KServe InferenceService: ``spec.predictor.minReplicas``.

KServe passes the predictor's bounds to the HPA, KEDA ScaledObject or Knative revision it
manages, so the floor is written on the InferenceService.
"""

from __future__ import annotations

from scaler.kube.client import KubeClient
from scaler.kube.objects import Obj, as_int, get_path
from scaler.kube.resources import INFERENCE_SERVICE, ResourceType

ISVC_LABEL = "serving.kserve.io/inferenceservice"  # KServe labels every predictor pod with it


class InferenceServiceOwner:
    rtype: ResourceType = INFERENCE_SERVICE
    field_path: tuple[str, ...] = ("spec", "predictor", "minReplicas")

    def bounded(self, obj: Obj, replicas: int) -> tuple[int, str]:
        high = as_int(get_path(obj, ("spec", "predictor", "maxReplicas")))
        # maxReplicas 0 or unset means KServe applies no upper bound of its own.
        if high and replicas > high:
            return high, f"capped at the InferenceService's spec.predictor.maxReplicas {high}"
        return max(0, replicas), ""

    def pod_selector(self, client: KubeClient, obj: Obj) -> str | None:
        return f"{ISVC_LABEL}={get_path(obj, ('metadata', 'name'))}"
