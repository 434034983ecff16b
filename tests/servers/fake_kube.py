"""A small in-process Kubernetes API server for tests that drive the official client over HTTP.

It keeps objects per (group, resource, namespace, name) and serves what peakcast and its tests
use. That is discovery and ``/version``, then GET and LIST (label and field selectors), POST
(with ``generateName``), PUT (a stale ``resourceVersion`` gives 409) and DELETE. PATCH takes
JSON merge patch, strategic merge patch (treated as merge patch), JSON patch, and server-side
apply with ``managedFields`` per field manager (see ``fake_kube_store``). The ``/scale`` and
``/status`` subresources and ``dryRun=All`` work too. A write that changes nothing keeps the
``resourceVersion``.

Tests get a handle (``FakeKube``) to seed and read objects, set a node's allocatable GPUs,
deny (verb, resource) pairs with 403, inject 500s or slow responses, react to creations (to
play an operator), and read the audit log of requests. Every socket is on 127.0.0.1.
"""

from __future__ import annotations

import copy
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer

from tests.servers import fake_kube_store as store
from tests.servers.fake_kube_http import AuditEntry, handler_for
from tests.servers.fake_kube_store import NOW, Obj, Path, ResourceType, get_path, leaves

__all__ = ["AuditEntry", "FakeKube", "ResourceType", "running_fake_kube"]


def _nonnegative(*paths: Path, minimum: int = 0) -> Callable[[Obj], str | None]:
    def check(obj: Obj) -> str | None:
        for path in paths:
            value = get_path(obj, path)
            if value is not None and (not isinstance(value, int) or value < minimum):
                return f"{'.'.join(path)}: Invalid value: {value!r}: must be >= {minimum}"
        return None

    return check


GPU_NODE_POOL_GROUP = "platform.peakcast.io"

DEFAULT_RESOURCES: tuple[ResourceType, ...] = (
    ResourceType("", "v1", "nodes", "Node", namespaced=False),
    ResourceType("", "v1", "pods", "Pod"),
    ResourceType("", "v1", "events", "Event", status_subresource=False),
    ResourceType("", "v1", "namespaces", "Namespace", namespaced=False),
    ResourceType(
        "apps",
        "v1",
        "deployments",
        "Deployment",
        scale=(("spec", "replicas"), ("status", "replicas")),
        validate=_nonnegative(("spec", "replicas")),
    ),
    ResourceType(
        "autoscaling",
        "v2",
        "horizontalpodautoscalers",
        "HorizontalPodAutoscaler",
        validate=_nonnegative(("spec", "minReplicas"), minimum=1),
    ),
    ResourceType("events.k8s.io", "v1", "events", "Event", status_subresource=False),
    ResourceType("coordination.k8s.io", "v1", "leases", "Lease", status_subresource=False),
    ResourceType(
        GPU_NODE_POOL_GROUP,
        "v1alpha1",
        "gpunodepools",
        "GPUNodePool",
        scale=(("spec", "desiredNodes"), ("status", "observedNodes")),
        validate=_nonnegative(("spec", "desiredNodes"), ("spec", "minNodes"), ("spec", "maxNodes")),
    ),
    ResourceType(
        "keda.sh",
        "v1alpha1",
        "scaledobjects",
        "ScaledObject",
        validate=_nonnegative(("spec", "minReplicaCount")),
    ),
    ResourceType(
        "serving.kserve.io",
        "v1beta1",
        "inferenceservices",
        "InferenceService",
        validate=_nonnegative(("spec", "predictor", "minReplicas")),
    ),
    ResourceType("metrics.keptn.sh", "v1", "analyses", "Analysis"),
    ResourceType("example.org", "v1", "capacitybuffers", "CapacityBuffer"),
    ResourceType("eks.aws.m.upbound.io", "v1beta1", "nodegroups", "NodeGroup"),
)


@dataclass
class _Faults:
    errors: list[int] = field(default_factory=list)
    delays: list[float] = field(default_factory=list)
    denied: set[tuple[str, str]] = field(default_factory=set)


# --- the store ------------------------------------------------------------------------------------


class FakeKube:
    """The test handle: the object store, fault injection and the audit log."""

    def __init__(self, resources: tuple[ResourceType, ...] = DEFAULT_RESOURCES) -> None:
        self.resources = {(r.group, r.plural): r for r in resources}
        self.lock = threading.RLock()
        self.objects: dict[tuple[str, str, str, str], Obj] = {}
        self.audit: list[AuditEntry] = []
        self.faults = _Faults()
        self.create_hooks: dict[str, list[Callable[[Obj], None]]] = {}
        self._version = 0
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # lifecycle
    def start(self) -> FakeKube:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("FakeKube.start() was not called")
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    # test handle
    def resource(self, api_version: str, plural: str) -> ResourceType:
        group = api_version.rpartition("/")[0]
        return self.resources[(group, plural)]

    def seed(self, obj: Obj, manager: str | None = None) -> Obj:
        """Store ``obj`` as it is; ``manager`` (operation Update) then owns all its fields."""
        api_version, kind = obj["apiVersion"], obj["kind"]
        rtype = next(
            r for r in self.resources.values() if r.api_version == api_version and r.kind == kind
        )
        obj = copy.deepcopy(obj)
        meta = obj.setdefault("metadata", {})
        meta.setdefault("namespace", "default") if rtype.namespaced else meta.pop("namespace", None)
        meta.setdefault("uid", str(uuid.uuid4()))
        meta.setdefault("creationTimestamp", NOW)
        meta["generation"] = 1
        if manager:
            store.own(obj, (manager, "Update", ""), leaves(obj), rtype)
        with self.lock:
            meta["resourceVersion"] = self._next_version()
            self.objects[self._key(rtype, meta.get("namespace", ""), meta["name"])] = obj
        return copy.deepcopy(obj)

    def get(self, api_version: str, plural: str, name: str, namespace: str = "") -> Obj | None:
        rtype = self.resource(api_version, plural)
        with self.lock:
            obj = self.objects.get(self._key(rtype, namespace, name))
            return copy.deepcopy(obj) if obj else None

    def list(self, api_version: str, plural: str, namespace: str | None = None) -> list[Obj]:
        rtype = self.resource(api_version, plural)
        with self.lock:
            return [
                copy.deepcopy(o)
                for (g, p, ns, _), o in sorted(self.objects.items())
                if (g, p) == (rtype.group, rtype.plural) and namespace in (None, ns)
            ]

    def mutate(
        self,
        api_version: str,
        plural: str,
        name: str,
        namespace: str,
        change: Callable[[Obj], None],
    ) -> Obj:
        """Change a stored object in place (as a controller would) and bump its version."""
        rtype = self.resource(api_version, plural)
        with self.lock:
            obj = self.objects[self._key(rtype, namespace, name)]
            change(obj)
            obj["metadata"]["resourceVersion"] = self._next_version()
            return copy.deepcopy(obj)

    def set_node_gpus(self, name: str, gpus: int, resource: str = "nvidia.com/gpu") -> Obj:
        """Set a node's allocatable and capacity GPUs, as the device plugin does."""

        def change(node: Obj) -> None:
            status = node.setdefault("status", {})
            status.setdefault("allocatable", {})[resource] = str(gpus)
            status.setdefault("capacity", {})[resource] = str(gpus)

        return self.mutate("v1", "nodes", name, "", change)

    def fail_next(self, count: int, code: int = 500) -> None:
        with self.lock:
            self.faults.errors.extend([code] * count)

    def delay_next(self, count: int, seconds: float) -> None:
        """Delay the responses to the next ``count`` requests by ``seconds`` each."""
        with self.lock:
            self.faults.delays.extend([seconds] * count)

    def deny(self, verb: str, plural: str) -> None:
        """Reject ``verb`` (get, list, create, update, patch, apply, delete) with 403 Forbidden."""
        with self.lock:
            self.faults.denied.add((verb, plural))

    def on_create(self, plural: str, hook: Callable[[Obj], None]) -> None:
        """Call ``hook`` on each newly created object of ``plural`` (it may change the object)."""
        self.create_hooks.setdefault(plural, []).append(hook)

    def requests(self, verb: str | None = None, resource: str | None = None) -> list[AuditEntry]:
        with self.lock:
            return [
                e for e in self.audit if verb in (None, e.verb) and resource in (None, e.resource)
            ]

    def writes(self) -> list[AuditEntry]:
        return [e for e in self.requests() if e.verb not in ("get", "list")]

    # internals
    def _key(self, rtype: ResourceType, namespace: str, name: str) -> tuple[str, str, str, str]:
        return (rtype.group, rtype.plural, namespace if rtype.namespaced else "", name)

    def _next_version(self) -> str:
        self._version += 1
        return str(self._version)


@contextmanager
def running_fake_kube(
    resources: tuple[ResourceType, ...] = DEFAULT_RESOURCES,
) -> Iterator[FakeKube]:
    """Start a fake API server on 127.0.0.1 for the ``with`` block."""
    kube = FakeKube(resources).start()
    try:
        yield kube
    finally:
        kube.stop()
