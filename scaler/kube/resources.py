"""The resource types peakcast reads and writes, named as the API server serves them."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ResourceType:
    """One API resource: ``api_version`` as in manifests, ``plural`` as in URLs."""

    api_version: str
    kind: str
    plural: str
    namespaced: bool = True

    @property
    def group(self) -> str:
        return self.api_version.rpartition("/")[0]

    @property
    def version(self) -> str:
        return self.api_version.rpartition("/")[2]


GPU_NODE_POOL_GROUP = "platform.peakcast.io"

NODE = ResourceType("v1", "Node", "nodes", namespaced=False)
POD = ResourceType("v1", "Pod", "pods")
DEPLOYMENT = ResourceType("apps/v1", "Deployment", "deployments")
HPA = ResourceType("autoscaling/v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers")
SCALED_OBJECT = ResourceType("keda.sh/v1alpha1", "ScaledObject", "scaledobjects")
INFERENCE_SERVICE = ResourceType(
    "serving.kserve.io/v1beta1", "InferenceService", "inferenceservices"
)
GPU_NODE_POOL = ResourceType(f"{GPU_NODE_POOL_GROUP}/v1alpha1", "GPUNodePool", "gpunodepools")
EVENT = ResourceType("events.k8s.io/v1", "Event", "events")
ANALYSIS = ResourceType("metrics.keptn.sh/v1", "Analysis", "analyses")
