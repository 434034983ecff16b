"""The HTTP side of the fake API server: URL parsing, discovery, verbs, faults, the audit log."""

from __future__ import annotations

import copy
import json
import socket
import time
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import yaml

from tests.servers import fake_kube_store as store
from tests.servers.fake_kube_store import (
    IDENTITY_KEYS,
    NOW,
    ApiError,
    Obj,
    ResourceType,
    get_path,
    json_patch,
    merge,
    selects,
)

if TYPE_CHECKING:
    from tests.servers.fake_kube import FakeKube

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
class _Request:
    method: str
    rtype: ResourceType | None
    namespace: str
    name: str
    subresource: str
    query: dict[str, str]
    content_type: str
    body: Any


def handler_for(kube: FakeKube) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            super().setup()
            # Headers and body go out in two writes. Without this, Nagle's algorithm and the
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
                        "singularName": r.kind.lower(),
                        "kind": r.kind,
                        "namespaced": r.namespaced,
                        "verbs": ["create", "delete", "get", "list", "patch", "update"],
                    }
                )
                if r.scale:
                    resources.append(
                        {
                            "name": f"{r.plural}/scale",
                            "singularName": "",
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
        return _list(kube, rtype, namespace, request)
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
    if rtype.namespaced:
        new["metadata"]["namespace"] = namespace
    else:
        new["metadata"].pop("namespace", None)
    return _store(kube, rtype, key, current, new, request)


def _list(
    kube: FakeKube, rtype: ResourceType, namespace: str, request: _Request
) -> tuple[int, Obj]:
    labels, fields = request.query.get("labelSelector"), request.query.get("fieldSelector")
    items = [
        copy.deepcopy(obj)
        for (group, plural, obj_namespace, _), obj in sorted(kube.objects.items())
        if (group, plural) == (rtype.group, rtype.plural)
        and namespace in ("", obj_namespace)
        and selects(obj, labels, fields)
    ]
    return 200, {
        "apiVersion": rtype.api_version,
        "kind": f"{rtype.kind}List",
        "metadata": {"resourceVersion": str(kube._version)},
        "items": items,
    }


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
    store.update_ownership(rtype, None, obj, request.query["fieldManager"])
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
        "spec": {"replicas": get_path(obj, rtype.scale[0]) or 0},
        "status": {"replicas": get_path(obj, rtype.scale[1]) or 0},
    }


def _write(
    kube: FakeKube, verb: str, rtype: ResourceType, current: Obj | None, request: _Request
) -> Obj:
    body, manager = request.body, request.query["fieldManager"]
    if verb == "apply":
        force = request.query.get("force") == "true"
        if request.subresource == "status" and current is not None:
            return store.apply(rtype, current, body, manager, force, "status")
        if request.subresource:
            raise ApiError(415, "UnsupportedMediaType", "apply is served on the object and /status")
        return store.apply(rtype, current, body, manager, force)
    assert current is not None  # _handle returned 404 already
    if request.subresource == "scale":
        replicas = get_path(
            json_patch(_view(rtype, current, "scale"), body)
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
        new = json_patch(current, body)
    else:
        new = copy.deepcopy(current)
        merge(new, body or {}, delete_nulls=True)
    if request.subresource == "status":
        return {**copy.deepcopy(current), "status": new.get("status", {})}
    if rtype.status_subresource and "status" in current:
        new["status"] = copy.deepcopy(current["status"])
    elif rtype.status_subresource:
        new.pop("status", None)
    store.update_ownership(rtype, current, new, manager, request.subresource)
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
        and store.content(current) == store.content(new)
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
