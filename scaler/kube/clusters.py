"""Several clusters: one client per cluster, and which cluster each object peakcast writes is in.

Crossplane often runs in a management cluster while the serving workloads, their HPAs and the
GPU nodes run in workload clusters. With ``clusters`` configured, a pool's ``GPUNodePool`` is
written to the management cluster (when one is defined). The pool's nodes are read from the
workload cluster they join, and workload floors go to the workload's cluster. Without
``clusters`` everything goes through the single ``kubernetes`` client, as before.
"""

from __future__ import annotations

from collections.abc import Mapping

from kubernetes import client as k8s

from scaler.kube.client import KubeClient, build_api_client
from scaler.kube.objects import Obj
from scaler.kube.resources import EVENT, GPU_NODE_POOL, ResourceType
from scaler.settings import GPUNodePoolActuatorSettings, Settings
from scaler.settings_guardrails import management_cluster, pool_cluster, workload_cluster

SINGLE = ""  # key of the one client of a single-cluster config


class RoutedClient(KubeClient):
    """A ``KubeClient`` that sends some kinds to a second cluster and the rest to its own.

    Events go where the object they are about lives, so an Event on a ``GPUNodePool`` is
    created in the management cluster.
    """

    def __init__(
        self, local: KubeClient, remote: KubeClient, remote_kinds: frozenset[tuple[str, str]]
    ) -> None:
        # The base class is not initialised: every call below goes to one of the two clients.
        self.api_client = local.api_client
        self.field_manager = local.field_manager
        self.timeout = local.timeout
        self.local = local
        self.remote = remote
        self.remote_kinds = remote_kinds

    def _for(self, rtype: ResourceType) -> KubeClient:
        return self.remote if (rtype.api_version, rtype.kind) in self.remote_kinds else self.local

    def get(self, rtype: ResourceType, name: str, namespace: str | None = None) -> Obj | None:
        return self._for(rtype).get(rtype, name, namespace)

    def list(
        self,
        rtype: ResourceType,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> list[Obj]:
        return self._for(rtype).list(rtype, namespace, label_selector, field_selector)

    def apply(self, rtype: ResourceType, body: Obj, *, dry_run: bool = False) -> Obj:
        return self._for(rtype).apply(rtype, body, dry_run=dry_run)

    def apply_status(self, rtype: ResourceType, body: Obj, *, dry_run: bool = False) -> Obj:
        return self._for(rtype).apply_status(rtype, body, dry_run=dry_run)

    def create(self, rtype: ResourceType, body: Obj) -> Obj:
        if rtype == EVENT:
            regarding = body.get("regarding") or {}
            about = (str(regarding.get("apiVersion")), str(regarding.get("kind")))
            target = self.remote if about in self.remote_kinds else self.local
            return target.create(rtype, body)
        return self._for(rtype).create(rtype, body)

    def delete(self, rtype: ResourceType, name: str, namespace: str | None) -> None:
        self._for(rtype).delete(rtype, name, namespace)


class ClusterClients:
    """The client of each cluster and the client that reaches each pool's and workload's objects."""

    def __init__(self, settings: Settings, clients: Mapping[str, KubeClient]) -> None:
        self.settings = settings
        self.clients = dict(clients)
        self._management = management_cluster(settings)

    @classmethod
    def single(cls, settings: Settings, client: KubeClient) -> ClusterClients:
        """Wrap the one client of a single-cluster config."""
        return cls(settings, {SINGLE: client})

    def for_cluster(self, name: str | None) -> KubeClient:
        """Return the client of cluster ``name``; None means the single cluster."""
        return self.clients[name or SINGLE]

    def for_workload(self, workload: str) -> KubeClient:
        """Return the client of the cluster the workload runs in."""
        return self.for_cluster(workload_cluster(self.settings, workload))

    def for_pool(self, pool: str) -> KubeClient:
        """Return a client for the pool's object and nodes.

        For a ``gpunodepool`` actuator with a management cluster, ``GPUNodePool`` objects (and
        Events on them) go to the management cluster and nodes to the pool's cluster.
        """
        local = self.for_cluster(pool_cluster(self.settings, pool))
        actuator = self.settings.pool(pool).actuator
        if self._management is None or not isinstance(actuator, GPUNodePoolActuatorSettings):
            return local
        remote = self.for_cluster(self._management)
        return RoutedClient(local, remote, frozenset({(GPU_NODE_POOL.api_version, "GPUNodePool")}))

    def for_cluster_objects(self, cluster: str | None) -> KubeClient:
        """Return the client one actuator of workload cluster ``cluster`` uses.

        It is that cluster's client, routed so ``GPUNodePool`` objects reach the management
        cluster when one is defined.
        """
        local = self.for_cluster(cluster)
        if cluster is None or self._management is None:
            return local
        remote = self.for_cluster(self._management)
        return RoutedClient(local, remote, frozenset({(GPU_NODE_POOL.api_version, "GPUNodePool")}))


def build_cluster_clients(
    settings: Settings,
    api_clients: Mapping[str, k8s.ApiClient] | None = None,
    single_api_client: k8s.ApiClient | None = None,
) -> ClusterClients:
    """Build one ``KubeClient`` per configured cluster, or the single one of ``kubernetes``.

    ``api_clients`` (keyed by cluster name) replaces the clients built from each cluster's
    kubeconfig, context or host; ``single_api_client`` replaces the single cluster's.
    """
    kube = settings.kubernetes
    if not settings.clusters:
        api = single_api_client or build_api_client(
            kubeconfig_path=kube.kubeconfig_path, context=kube.context, host=kube.host
        )
        client = KubeClient(api, kube.field_manager, kube.request_timeout_seconds)
        return ClusterClients.single(settings, client)
    clients: dict[str, KubeClient] = {}
    for cluster in settings.clusters:
        api = (api_clients or {}).get(cluster.name) or build_api_client(
            kubeconfig_path=cluster.kubeconfig_path, context=cluster.context, host=cluster.host
        )
        clients[cluster.name] = KubeClient(api, kube.field_manager, kube.request_timeout_seconds)
    return ClusterClients(settings, clients)


def settings_for_cluster(settings: Settings, cluster: str) -> Settings:
    """Return ``settings`` narrowed to the pools and workloads of workload cluster ``cluster``."""
    pools = [p for p in settings.pools if pool_cluster(settings, p.name) == cluster]
    workloads = [w for w in settings.workloads if workload_cluster(settings, w.name) == cluster]
    return settings.model_copy(update={"pools": pools, "workloads": workloads})


def serving_clusters(settings: Settings) -> list[str]:
    """Return the names of the workload clusters that have a pool or a workload."""
    used = {pool_cluster(settings, p.name) for p in settings.pools} | {
        workload_cluster(settings, w.name) for w in settings.workloads
    }
    return [c.name for c in settings.clusters if c.role == "workload" and c.name in used]
