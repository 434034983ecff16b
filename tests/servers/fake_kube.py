"""A small in-process Kubernetes API server for tests that drive the official client over HTTP.

It keeps objects per (group, resource, namespace, name) and implements what peakcast and its
tests use: discovery and ``/version``; GET, LIST (label and field selectors), POST (with
``generateName``), PUT (a stale ``resourceVersion`` gives 409), DELETE; PATCH as JSON merge
patch, strategic merge patch (treated as merge patch), JSON patch, and server-side apply with
``managedFields`` per field manager; the ``/scale`` and ``/status`` subresources; ``dryRun``.

Apply follows the Kubernetes rules at a coarser grain: lists are atomic, so ownership is
tracked per map key down to the first list or scalar. Applying a value that differs from one
another manager owns fails with 409 unless ``force=true``; an equal value is shared. A field
the applier owned before and leaves out is removed unless another manager owns it. A write
that changes nothing keeps the ``resourceVersion``.

Tests get a handle (``FakeKube``) to seed and read objects, set a node's allocatable GPUs,
deny (verb, resource) pairs with 403, inject 500s or slow answers, react to creations (to play
an operator), and read the audit log of requests. Every socket is on 127.0.0.1.
"""

from __future__ import annotations

import copy
import json
import re
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import yaml

Obj = dict[str, Any]
Path = tuple[str, ...]
NOW = "2026-01-01T00:00:00Z"


@dataclass(frozen=True)
class ResourceType:
    """One served resource; ``scale`` names the spec and status replica paths."""

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool = True
    scale: tuple[Path, Path] | None = None
    status_subresource: bool = True
    validate: Callable[[Obj], str | None] | None = None

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version


def _nonnegative(*paths: Path, minimum: int = 0) -> Callable[[Obj], str | None]:
    def check(obj: Obj) -> str | None:
        for path in paths:
            value = _get(obj, path)
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
)

VERSION = {
    "major": "1",
    "minor": "33",
    "gitVersion": "v1.33.0-fake",
    "gitCommit": "0000000",
    "gitTreeState": "clean",
    "buildDate": NOW,
    "goVersion": "go1.24",
    "compiler": "gc",
    "platform": "linux/amd64",
}

IDENTITY_KEYS = {
    "name",
    "namespace",
    "resourceVersion",
    "managedFields",
    "uid",
    "creationTimestamp",
    "generation",
}


@dataclass(frozen=True)
class AuditEntry:
    """One request as the server saw it."""

    method: str
    verb: str
    path: str
    resource: str
    subresource: str
    field_manager: str | None
    content_type: str | None
    force: bool
    dry_run: bool
    status: int


@dataclass
class _Faults:
    errors: list[int] = field(default_factory=list)
    delays: list[float] = field(default_factory=list)
    denied: set[tuple[str, str]] = field(default_factory=set)


class ApiError(Exception):
    """An error answer: HTTP code, Status reason and message, optional causes."""

    def __init__(self, code: int, reason: str, message: str, causes: list[Obj] | None = None):
        super().__init__(message)
        self.code, self.reason, self.message, self.causes = code, reason, message, causes or []

    def status(self) -> Obj:
        return {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
            "details": {"causes": self.causes} if self.causes else {},
        }


# --- field paths and ownership ----------------------------------------------------------------


def _get(obj: Any, path: Path) -> Any:
    for key in path:
        if not isinstance(obj, dict) or key not in obj:
            return None
        obj = obj[key]
    return obj


def _delete(obj: Obj, path: Path) -> None:
    parent = _get(obj, path[:-1]) if len(path) > 1 else obj
    if isinstance(parent, dict):
        parent.pop(path[-1], None)


def _leaves(body: Obj, prefix: Path = ()) -> set[Path]:
    found: set[Path] = set()
    for key, value in body.items():
        if not prefix and key in ("apiVersion", "kind", "status"):
            continue
        if prefix == ("metadata",) and key in IDENTITY_KEYS:
            continue
        path = (*prefix, key)
        if isinstance(value, dict) and value:
            found |= _leaves(value, path)
        else:
            found.add(path)
    return found


def _to_fields_v1(paths: set[Path]) -> Obj:
    tree: Obj = {}
    for path in sorted(paths):
        node = tree
        for key in path:
            node = node.setdefault(f"f:{key}", {})
    return tree


def _from_fields_v1(tree: Obj, prefix: Path = ()) -> set[Path]:
    found: set[Path] = set()
    for key, child in tree.items():
        path = (*prefix, key.removeprefix("f:"))
        found |= _from_fields_v1(child, path) if child else {path}
    return found


def _overlaps(a: Path, b: Path) -> bool:
    shorter = min(len(a), len(b))
    return a[:shorter] == b[:shorter]


def _merge(target: Obj, patch: Obj, delete_nulls: bool) -> None:
    for key, value in patch.items():
        if value is None and delete_nulls:
            target.pop(key, None)
        elif isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge(target[key], value, delete_nulls)
        else:
            target[key] = copy.deepcopy(value)


def _json_patch(obj: Obj, operations: list[Obj]) -> Obj:
    result = copy.deepcopy(obj)
    for op in operations:
        parts = [p.replace("~1", "/").replace("~0", "~") for p in op["path"].split("/")[1:]]
        parent = _get(result, tuple(parts[:-1])) if len(parts) > 1 else result
        if not isinstance(parent, dict):
            raise ApiError(422, "Invalid", f"json patch path {op['path']} not found")
        if op["op"] in ("add", "replace"):
            parent[parts[-1]] = op["value"]
        elif op["op"] == "remove":
            parent.pop(parts[-1], None)
        elif op["op"] == "test" and parent.get(parts[-1]) != op["value"]:
            raise ApiError(422, "Invalid", f"json patch test failed at {op['path']}")
    return result


# --- selectors ------------------------------------------------------------------------------------

_SET_TERM = re.compile(r"^\s*([\w./-]+)\s+(in|notin)\s+\(([^)]*)\)\s*$")


def _split_terms(selector: str) -> list[str]:
    terms, depth, current = [], 0, ""
    for char in selector:
        depth += char == "("
        depth -= char == ")"
        if char == "," and depth == 0:
            terms.append(current)
            current = ""
        else:
            current += char
    return [*terms, current] if current.strip() else terms


def _term_matches(term: str, lookup: Callable[[str], str | None]) -> bool:
    match = _SET_TERM.match(term)
    if match:
        values = {v.strip() for v in match.group(3).split(",")}
        present = lookup(match.group(1)) in values
        return present if match.group(2) == "in" else not present
    for operator in ("!=", "==", "="):
        if operator in term:
            key, value = (part.strip() for part in term.split(operator, 1))
            equal = lookup(key) == value
            return not equal if operator == "!=" else equal
    term = term.strip()
    return lookup(term[1:]) is None if term.startswith("!") else lookup(term) is not None


def _selects(obj: Obj, labels: str | None, fields: str | None) -> bool:
    obj_labels = obj.get("metadata", {}).get("labels") or {}
    for term in _split_terms(labels or ""):
        if not _term_matches(term, obj_labels.get):
            return False

    def field_value(key: str) -> str | None:
        value = _get(obj, tuple(key.split(".")))
        return None if value is None else str(value)

    return all(_term_matches(term, field_value) for term in _split_terms(fields or ""))


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
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
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
            self._own(obj, (manager, "Update", ""), _leaves(obj), rtype)
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
        """Answer the next ``count`` requests only after ``seconds`` (a client-side timeout)."""
        with self.lock:
            self.faults.delays.extend([seconds] * count)

    def deny(self, verb: str, plural: str) -> None:
        """Answer ``verb`` (get, list, create, update, patch, apply, delete) with 403."""
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

    def _own(self, obj: Obj, key: EntryKey, paths: set[Path], rtype: ResourceType) -> None:
        """Set the fields of one managedFields entry, keeping the entries' order."""
        manager, operation, subresource = key
        entry = {
            "manager": manager,
            "operation": operation,
            "apiVersion": rtype.api_version,
            "time": NOW,
            "fieldsType": "FieldsV1",
            "fieldsV1": _to_fields_v1(paths),
        }
        if subresource:
            entry["subresource"] = subresource
        entries, placed = [], False
        for existing in obj["metadata"].get("managedFields", []):
            if _entry_key(existing) == key:
                if paths and not placed:
                    entries.append(entry)
                placed = True
            else:
                entries.append(existing)
        if paths and not placed:
            entries.append(entry)
        obj["metadata"]["managedFields"] = entries

    def _owned(self, obj: Obj) -> list[tuple[EntryKey, set[Path]]]:
        return [
            (_entry_key(e), _from_fields_v1(e.get("fieldsV1", {})))
            for e in obj["metadata"].get("managedFields", [])
        ]

    def _disown(self, obj: Obj, paths: set[Path], keep: EntryKey) -> None:
        kept = []
        for entry in obj["metadata"].get("managedFields", []):
            if _entry_key(entry) != keep:
                owned = _from_fields_v1(entry.get("fieldsV1", {}))
                owned = {p for p in owned if not any(_overlaps(p, q) for q in paths)}
                entry["fieldsV1"] = _to_fields_v1(owned)
            if entry["fieldsV1"]:
                kept.append(entry)
        obj["metadata"]["managedFields"] = kept

    def apply(
        self,
        rtype: ResourceType,
        current: Obj | None,
        body: Obj,
        manager: str,
        force: bool,
        subresource: str = "",
    ) -> Obj:
        """Server-side apply of ``body`` over ``current`` (None creates).

        On the ``status`` subresource only ``status`` is applied; on the object, everything
        else. Each (manager, subresource) has its own managedFields entry, as in Kubernetes.
        """
        key: EntryKey = (manager, "Apply", subresource)
        if subresource == "status":
            mine = _leaves(body.get("status") or {}, ("status",))
        else:
            mine = _leaves(body)
        new = (
            copy.deepcopy(current)
            if current
            else {
                "apiVersion": rtype.api_version,
                "kind": rtype.kind,
                "metadata": {"name": body["metadata"]["name"], "managedFields": []},
            }
        )
        conflicts = [
            (other[0], path)
            for other, owned in self._owned(new)
            if other != key
            for path in sorted(mine)
            if any(_overlaps(path, q) for q in owned) and _get(new, path) != _get(body, path)
        ]
        if conflicts and not force:
            raise _conflict(conflicts, rtype)
        if force:
            self._disown(new, mine, keep=key)
        owned_by_me = next((o for k, o in self._owned(new) if k == key), set())
        others = set().union(*(o for k, o in self._owned(new) if k != key))
        for path in owned_by_me - mine:
            if not any(_overlaps(path, q) for q in others):
                _delete(new, path)
        if subresource == "status":
            patch = {"status": body.get("status") or {}}
        else:
            patch = {k: v for k, v in body.items() if k not in ("apiVersion", "kind", "status")}
            patch["metadata"] = {
                k: v for k, v in body.get("metadata", {}).items() if k not in IDENTITY_KEYS
            }
        _merge(new, patch, delete_nulls=False)
        self._own(new, key, mine, rtype)
        return new

    def update_ownership(
        self, rtype: ResourceType, old: Obj | None, new: Obj, manager: str, subresource: str = ""
    ) -> None:
        """Give ``manager`` (operation Update) every field this write changed."""
        changed = {p for p in _leaves(new) if old is None or _get(old, p) != _get(new, p)}
        if not changed:
            return
        key: EntryKey = (manager, "Update", subresource)
        self._disown(new, changed, keep=key)
        owned = next((o for k, o in self._owned(new) if k == key), set())
        self._own(new, key, owned | changed, rtype)


EntryKey = tuple[str, str, str]


def _entry_key(entry: Obj) -> EntryKey:
    return (entry["manager"], entry["operation"], entry.get("subresource") or "")


def _conflict(conflicts: list[tuple[str, Path]], rtype: ResourceType) -> ApiError:
    causes = [
        {
            "reason": "FieldManagerConflict",
            "field": "." + ".".join(path),
            "message": f'conflict with "{who}" using {rtype.api_version}',
        }
        for who, path in conflicts
    ]
    summary = "\n".join(f"- {c['message']}: {c['field']}" for c in causes)
    return ApiError(
        409, "Conflict", f"Apply failed with {len(causes)} conflict(s): {summary}", causes
    )


def _content(obj: Obj) -> Obj:
    meta = {
        k: v
        for k, v in obj.get("metadata", {}).items()
        if k not in ("resourceVersion", "managedFields", "generation")
    }
    return {**obj, "metadata": meta}


# --- HTTP -----------------------------------------------------------------------------------------


@dataclass
class _Request:
    method: str
    rtype: ResourceType | None
    namespace: str
    name: str
    subresource: str
    query: dict[str, str]
    content_type: str
    body: Any


def _handler_for(kube: FakeKube) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            super().setup()
            # Headers and body go out in two writes; without this, Nagle's algorithm and the
            # client's delayed ACK add about 40 ms to every request.
            self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            self._serve()

        do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

        def _serve(self) -> None:
            try:
                code, payload = _dispatch(kube, self)
            except ApiError as error:
                code, payload = error.code, error.status()
            data = json.dumps(payload).encode()
            try:
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (an injected delay outlived its timeout)

    return Handler


def _parse(kube: FakeKube, handler: BaseHTTPRequestHandler) -> _Request | Obj:
    url = urlsplit(handler.path)
    query = {k: v[-1] for k, v in parse_qs(url.query).items()}
    parts = [p for p in url.path.split("/") if p]
    length = int(handler.headers.get("Content-Length") or 0)
    raw = handler.rfile.read(length) if length else b""
    content_type = (handler.headers.get("Content-Type") or "").split(";")[0]
    body = yaml.safe_load(raw) if raw else None
    if parts == ["version"]:
        return VERSION
    discovery = _discovery(kube, parts)
    if discovery is not None:
        return discovery
    if parts[:2] == ["api", "v1"]:
        group, rest = "", parts[2:]
    elif parts[:1] == ["apis"] and len(parts) >= 4:
        group, rest = parts[1], parts[3:]
    else:
        raise ApiError(
            404, "NotFound", f"the server could not find the requested resource ({url.path})"
        )
    namespace = ""
    if len(rest) >= 3 and rest[0] == "namespaces":
        namespace, rest = rest[1], rest[2:]
    rtype = kube.resources.get((group, rest[0]))
    if rtype is None:
        raise ApiError(
            404, "NotFound", f"the server could not find the requested resource ({url.path})"
        )
    return _Request(
        handler.command,
        rtype,
        namespace,
        rest[1] if len(rest) > 1 else "",
        rest[2] if len(rest) > 2 else "",
        query,
        content_type,
        body,
    )


def _discovery(kube: FakeKube, parts: list[str]) -> Obj | None:
    if parts == ["api"]:
        return {"kind": "APIVersions", "versions": ["v1"]}
    groups = sorted({(r.group, r.version) for r in kube.resources.values() if r.group})
    if parts == ["apis"]:
        return {
            "kind": "APIGroupList",
            "apiVersion": "v1",
            "groups": [
                {
                    "name": g,
                    "versions": [{"groupVersion": f"{g}/{v}", "version": v}],
                    "preferredVersion": {"groupVersion": f"{g}/{v}", "version": v},
                }
                for g, v in groups
            ],
        }
    if parts == ["api", "v1"] or (parts[:1] == ["apis"] and len(parts) == 3):
        group = "" if parts[0] == "api" else parts[1]
        resources = []
        for r in kube.resources.values():
            if r.group == group:
                resources.append(
                    {
                        "name": r.plural,
                        "kind": r.kind,
                        "namespaced": r.namespaced,
                        "verbs": ["create", "delete", "get", "list", "patch", "update"],
                    }
                )
                if r.scale:
                    resources.append(
                        {
                            "name": f"{r.plural}/scale",
                            "kind": "Scale",
                            "namespaced": r.namespaced,
                            "verbs": ["get", "patch", "update"],
                        }
                    )
        version = parts[1] if group == "" else parts[2]
        return {
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": f"{group}/{version}" if group else version,
            "resources": resources,
        }
    return None


def _verb(request: _Request) -> str:
    if request.method == "GET":
        return "get" if request.name else "list"
    if request.method == "PATCH" and request.content_type == "application/apply-patch+yaml":
        return "apply"
    return {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}[request.method]


def _dispatch(kube: FakeKube, handler: BaseHTTPRequestHandler) -> tuple[int, Obj]:
    parsed = _parse(kube, handler)
    if not isinstance(parsed, _Request):
        return 200, parsed
    request = parsed
    verb = _verb(request)
    sent_manager = request.query.get("fieldManager")
    # Like the API server, a write without fieldManager is attributed to the User-Agent's
    # first word ("OpenAPI-Generator" for the official Python client).
    request.query.setdefault(
        "fieldManager", handler.headers.get("User-Agent", "unknown").split("/")[0]
    )
    code = 500
    try:
        code, payload = _faulted(kube, verb, request)
        return code, payload
    except ApiError as error:
        code = error.code
        raise
    finally:
        with kube.lock:
            kube.audit.append(
                AuditEntry(
                    request.method,
                    verb,
                    handler.path.split("?")[0],
                    request.rtype.plural if request.rtype else "",
                    request.subresource,
                    sent_manager,
                    request.content_type or None,
                    request.query.get("force") == "true",
                    request.query.get("dryRun") == "All",
                    code,
                )
            )


def _faulted(kube: FakeKube, verb: str, request: _Request) -> tuple[int, Obj]:
    with kube.lock:
        delay = kube.faults.delays.pop(0) if kube.faults.delays else 0.0
        error = kube.faults.errors.pop(0) if kube.faults.errors else None
        denied = (verb, request.rtype.plural if request.rtype else "") in kube.faults.denied
    if delay:
        time.sleep(delay)
    if error:
        raise ApiError(error, "InternalError", "injected failure")
    if denied:
        raise ApiError(
            403,
            "Forbidden",
            f'{request.rtype.plural if request.rtype else ""} "{request.name}" is '
            f'forbidden: User "system:serviceaccount:test:peakcast" cannot {verb} '
            f"this resource",
        )
    with kube.lock:
        return _handle(kube, verb, request)


def _handle(kube: FakeKube, verb: str, request: _Request) -> tuple[int, Obj]:
    rtype = request.rtype
    assert rtype is not None  # _parse only returns requests for a served resource
    namespace = request.namespace if rtype.namespaced else ""
    if verb == "list":
        items = [
            copy.deepcopy(o)
            for (g, p, ns, _), o in sorted(kube.objects.items())
            if (g, p) == (rtype.group, rtype.plural)
            and namespace in ("", ns)
            and _selects(o, request.query.get("labelSelector"), request.query.get("fieldSelector"))
        ]
        return 200, {
            "apiVersion": rtype.api_version,
            "kind": f"{rtype.kind}List",
            "metadata": {"resourceVersion": str(kube._version)},
            "items": items,
        }
    if verb == "create":
        return _create(kube, rtype, namespace, request)
    key = kube._key(rtype, namespace, request.name)
    current = kube.objects.get(key)
    if current is None and verb != "apply":
        raise ApiError(
            404, "NotFound", f'{rtype.plural}.{rtype.group or "core"} "{request.name}" not found'
        )
    if verb == "get":
        return 200, _view(rtype, current, request.subresource)
    if verb == "delete":
        if request.query.get("dryRun") != "All":
            del kube.objects[key]
        return 200, {"kind": "Status", "apiVersion": "v1", "status": "Success"}
    new = _write(kube, verb, rtype, current, request)
    new["metadata"]["namespace"] = namespace or new["metadata"].pop("namespace", None) or ""
    if not rtype.namespaced:
        new["metadata"].pop("namespace", None)
    return _store(kube, rtype, key, current, new, request)


def _create(
    kube: FakeKube, rtype: ResourceType, namespace: str, request: _Request
) -> tuple[int, Obj]:
    obj = copy.deepcopy(request.body or {})
    meta = obj.setdefault("metadata", {})
    if not meta.get("name") and meta.get("generateName"):
        meta["name"] = meta["generateName"] + uuid.uuid4().hex[:5]
    if not meta.get("name"):
        raise ApiError(
            422, "Invalid", "metadata.name: Required value: name or generateName is required"
        )
    key = kube._key(rtype, namespace, meta["name"])
    if key in kube.objects:
        raise ApiError(409, "AlreadyExists", f'{rtype.plural} "{meta["name"]}" already exists')
    obj.setdefault("apiVersion", rtype.api_version)
    obj.setdefault("kind", rtype.kind)
    if rtype.namespaced:
        meta["namespace"] = namespace
    meta.update(uid=str(uuid.uuid4()), creationTimestamp=NOW, generation=1)
    kube.update_ownership(rtype, None, obj, request.query["fieldManager"])
    code, stored = _store(kube, rtype, key, None, obj, request, created=True)
    if request.query.get("dryRun") != "All":
        for hook in kube.create_hooks.get(rtype.plural, []):
            hook(kube.objects[key])
    return code, stored


def _view(rtype: ResourceType, obj: Obj, subresource: str) -> Obj:
    if subresource != "scale":
        return copy.deepcopy(obj)
    if rtype.scale is None:
        raise ApiError(404, "NotFound", f"{rtype.plural} has no scale subresource")
    meta = obj["metadata"]
    return {
        "apiVersion": "autoscaling/v1",
        "kind": "Scale",
        "metadata": {
            k: meta[k] for k in ("name", "namespace", "resourceVersion", "uid") if k in meta
        },
        "spec": {"replicas": _get(obj, rtype.scale[0]) or 0},
        "status": {"replicas": _get(obj, rtype.scale[1]) or 0},
    }


def _write(
    kube: FakeKube, verb: str, rtype: ResourceType, current: Obj | None, request: _Request
) -> Obj:
    body, manager = request.body, request.query["fieldManager"]
    if verb == "apply":
        force = request.query.get("force") == "true"
        if request.subresource == "status" and current is not None:
            return kube.apply(rtype, current, body, manager, force, "status")
        if request.subresource:
            raise ApiError(415, "UnsupportedMediaType", "apply is served on the object and /status")
        return kube.apply(rtype, current, body, manager, force)
    assert current is not None  # _handle answered 404 already
    if request.subresource == "scale":
        replicas = _get(
            _json_patch(_view(rtype, current, "scale"), body)
            if isinstance(body, list)
            else {**_view(rtype, current, "scale"), **(body or {})},
            ("spec", "replicas"),
        )
        if not isinstance(replicas, int) or replicas < 0:
            raise ApiError(
                422, "Invalid", f"spec.replicas: Invalid value: {replicas!r}: must be >= 0"
            )
        new = copy.deepcopy(current)
        parent = new
        for key in rtype.scale[0][:-1]:  # type: ignore[index]
            parent = parent.setdefault(key, {})
        parent[rtype.scale[0][-1]] = replicas  # type: ignore[index]
    elif verb == "update":
        sent = (body or {}).get("metadata", {}).get("resourceVersion")
        if sent and sent != current["metadata"]["resourceVersion"]:
            raise ApiError(
                409,
                "Conflict",
                f"Operation cannot be fulfilled on {rtype.plural} "
                f'"{request.name}": the object has been modified; please apply your '
                "changes to the latest version and try again",
            )
        new = copy.deepcopy(body)
        new["metadata"] = {
            **current["metadata"],
            **{k: v for k, v in body["metadata"].items() if k not in IDENTITY_KEYS},
        }
    elif isinstance(body, list):
        new = _json_patch(current, body)
    else:
        new = copy.deepcopy(current)
        _merge(new, body or {}, delete_nulls=True)
    if request.subresource == "status":
        return {**copy.deepcopy(current), "status": new.get("status", {})}
    if rtype.status_subresource and "status" in current:
        new["status"] = copy.deepcopy(current["status"])
    elif rtype.status_subresource:
        new.pop("status", None)
    kube.update_ownership(rtype, current, new, manager, request.subresource)
    return new


def _store(
    kube: FakeKube,
    rtype: ResourceType,
    key: tuple[str, str, str, str],
    current: Obj | None,
    new: Obj,
    request: _Request,
    created: bool = False,
) -> tuple[int, Obj]:
    problem = rtype.validate(new) if rtype.validate else None
    if problem:
        raise ApiError(422, "Invalid", f'{rtype.kind} "{key[3]}" is invalid: {problem}')
    if (
        current is not None
        and _content(current) == _content(new)
        and (current["metadata"].get("managedFields") == new["metadata"].get("managedFields"))
    ):
        return 200, _view(rtype, current, request.subresource)
    if current is not None and current.get("spec") != new.get("spec"):
        new["metadata"]["generation"] = current["metadata"].get("generation", 1) + 1
    new["metadata"].setdefault("uid", str(uuid.uuid4()))
    new["metadata"].setdefault("creationTimestamp", NOW)
    if request.query.get("dryRun") == "All":
        return 200, _view(rtype, new, request.subresource)
    new["metadata"]["resourceVersion"] = kube._next_version()
    kube.objects[key] = new
    return (201 if created or current is None else 200), _view(rtype, new, request.subresource)


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
