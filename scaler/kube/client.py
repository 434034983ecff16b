"""The one place peakcast talks to the Kubernetes API: client construction and plain-dict calls.

Responses are read as plain dicts (``_preload_content=False``), so the client's typed models,
which reject objects that lack a field they require, never see objects of other controllers.
Grouped resources (``apps``, ``autoscaling``, CRDs) go through ``CustomObjectsApi``, whose URL
scheme ``/apis/{group}/{version}/...`` serves every group. Core resources (nodes, pods) go
through ``CoreV1Api``.

Writes are server-side apply. The client's patch methods default to merge patch (custom
objects) or strategic merge patch (typed APIs), so every apply passes
``_content_type="application/apply-patch+yaml"`` explicitly.

API failures become peakcast errors by what the caller does next. ``ApplyConflictError``,
``ForbiddenError`` and ``InvalidObjectError`` mean reject, report and leave the field alone.
``TransientError`` means retry on a later cycle.
"""

from __future__ import annotations

import json
import logging
import os
import re
from pathlib import Path
from typing import Any

import urllib3
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.config.config_exception import ConfigException

from forecaster.errors import ActionRejectedError, ConfigError, TransientError
from scaler.kube.objects import Obj, identity
from scaler.kube.resources import ResourceType

logger = logging.getLogger(__name__)

APPLY_CONTENT_TYPE = "application/apply-patch+yaml"
_CONFLICT_MANAGER = re.compile(r'conflict with "([^"]+)"')


class ApplyConflictError(ActionRejectedError):
    """Server-side apply found fields owned by other field managers with other values."""

    def __init__(self, message: str, managers: list[str], fields: list[str]) -> None:
        super().__init__(message)
        self.managers = managers
        self.fields = fields


class ForbiddenError(ActionRejectedError):
    """RBAC does not allow the request (HTTP 403)."""


class InvalidObjectError(ActionRejectedError):
    """The API server rejected the object as invalid (HTTP 400 or 422)."""


class NotFoundError(ActionRejectedError):
    """The object does not exist (HTTP 404)."""


def build_api_client(
    *,
    kubeconfig_path: Path | str | None = None,
    context: str | None = None,
    host: str | None = None,
) -> k8s.ApiClient:
    """Build an ``ApiClient`` from a plain host URL, a kubeconfig file, or in-cluster config.

    The first that is set wins: ``host``, an explicit kubeconfig, the pod's service account
    (when ``KUBERNETES_SERVICE_HOST`` is set), then ``$KUBECONFIG`` or ``~/.kube/config``.
    """
    configuration = k8s.Configuration()
    try:
        if host:
            configuration.host = host.rstrip("/")
        elif kubeconfig_path is not None:
            k8s_config.load_kube_config(
                config_file=str(kubeconfig_path),
                context=context,
                client_configuration=configuration,
                persist_config=False,
            )
        elif os.environ.get("KUBERNETES_SERVICE_HOST"):
            k8s_config.load_incluster_config(client_configuration=configuration)
        else:
            k8s_config.load_kube_config(
                context=context, client_configuration=configuration, persist_config=False
            )
    except (ConfigException, OSError) as error:
        if kubeconfig_path is not None:
            raise ConfigError(
                "kubernetes.kubeconfig_path",
                str(kubeconfig_path),
                f"a usable Kubernetes client config ({error})",
            ) from error
        # Nothing was configured, so name what was tried and how to point at a cluster.
        tried = (
            "the pod's service account"
            if os.environ.get("KUBERNETES_SERVICE_HOST")
            else f"$KUBECONFIG or ~/.kube/config ({error})"
        )
        raise ConfigError(
            "kubernetes.kubeconfig_path",
            "unset",
            f"a kubeconfig file, because no cluster was found through {tried}; pass "
            "--kubeconfig PATH or set kubernetes.kubeconfig_path",
        ) from error
    return k8s.ApiClient(configuration)


class KubeClient:
    """Plain-dict reads and server-side apply writes with one field manager."""

    def __init__(
        self, api_client: k8s.ApiClient, field_manager: str, request_timeout_seconds: float
    ) -> None:
        self.api_client = api_client
        self.field_manager = field_manager
        self.timeout = request_timeout_seconds
        self._custom = k8s.CustomObjectsApi(api_client)
        self._core = k8s.CoreV1Api(api_client)

    def get(self, rtype: ResourceType, name: str, namespace: str | None = None) -> Obj | None:
        """Return the object, or None when it does not exist."""
        try:
            return self._call("get", rtype, name, namespace)
        except NotFoundError:
            return None

    def list(
        self,
        rtype: ResourceType,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> list[Obj]:
        selectors = {"label_selector": label_selector, "field_selector": field_selector}
        selectors = {k: v for k, v in selectors.items() if v}
        result = self._call("list", rtype, "", namespace, **selectors)
        return list(result.get("items") or [])

    def apply(self, rtype: ResourceType, body: Obj, *, dry_run: bool = False) -> Obj:
        """Server-side apply ``body`` without force; conflicts raise ``ApplyConflictError``."""
        return self._write("apply", rtype, body, dry_run)

    def apply_status(self, rtype: ResourceType, body: Obj, *, dry_run: bool = False) -> Obj:
        """Server-side apply ``body["status"]`` through the ``/status`` subresource."""
        return self._write("apply_status", rtype, body, dry_run)

    def create(self, rtype: ResourceType, body: Obj) -> Obj:
        return self._write("create", rtype, body, dry_run=False)

    def delete(self, rtype: ResourceType, name: str, namespace: str | None) -> None:
        try:
            self._call("delete", rtype, name, namespace)
        except NotFoundError:
            return

    def _write(self, action: str, rtype: ResourceType, body: Obj, dry_run: bool) -> Obj:
        meta = body.get("metadata", {})
        options: dict[str, Any] = {"field_manager": self.field_manager}
        if dry_run:
            options["dry_run"] = "All"
        if action != "create":
            options["_content_type"] = APPLY_CONTENT_TYPE
        return self._call(
            action, rtype, meta.get("name", ""), meta.get("namespace"), body=body, **options
        )

    def _call(
        self, action: str, rtype: ResourceType, name: str, namespace: str | None, **kwargs: Any
    ) -> Obj:
        method, args = self._method(action, rtype, name, namespace)
        try:
            response = method(
                *args, **kwargs, _preload_content=False, _request_timeout=self.timeout
            )
        except k8s.ApiException as error:
            raise _translate(error, action, rtype, name, namespace) from error
        except urllib3.exceptions.HTTPError as error:
            where = identity({"metadata": {"name": name, "namespace": namespace}})
            raise TransientError(f"{action} {rtype.kind} {where} failed: {error}") from error
        data = response.data
        return json.loads(data) if data else {}

    def _method(
        self, action: str, rtype: ResourceType, name: str, namespace: str | None
    ) -> tuple[Any, tuple[Any, ...]]:
        if not rtype.group:
            return self._core_method(action, rtype, namespace)
        scope = "namespaced" if rtype.namespaced else "cluster"
        where = (namespace,) if rtype.namespaced else ()
        names = {
            "get": (f"get_{scope}_custom_object", (*where, rtype.plural, name)),
            "list": (f"list_{scope}_custom_object", (*where, rtype.plural)),
            "apply": (f"patch_{scope}_custom_object", (*where, rtype.plural, name)),
            "apply_status": (f"patch_{scope}_custom_object_status", (*where, rtype.plural, name)),
            "create": (f"create_{scope}_custom_object", (*where, rtype.plural)),
            "delete": (f"delete_{scope}_custom_object", (*where, rtype.plural, name)),
        }
        method_name, rest = names[action]
        return getattr(self._custom, method_name), (rtype.group, rtype.version, *rest)

    def _core_method(
        self, action: str, rtype: ResourceType, namespace: str | None
    ) -> tuple[Any, tuple[Any, ...]]:
        if action == "list" and rtype.plural == "nodes":
            return self._core.list_node, ()
        if action == "list" and rtype.plural == "pods":
            if namespace:
                return self._core.list_namespaced_pod, (namespace,)
            return self._core.list_pod_for_all_namespaces, ()
        raise NotImplementedError(f"{action} of core resource {rtype.plural} is not used")


def _translate(
    error: k8s.ApiException, action: str, rtype: ResourceType, name: str, namespace: str | None
) -> Exception:
    target = f"{rtype.kind} {identity({'metadata': {'name': name, 'namespace': namespace}})}"
    status = _status_body(error)
    message = str(status.get("message") or error.reason or "no message")
    text = f"{action} {target} failed with HTTP {error.status}: {message}"

    if error.status == 409 and action.startswith("apply"):
        causes = (status.get("details") or {}).get("causes") or []
        managers = sorted(
            {
                match.group(1)
                for cause in causes
                for match in [_CONFLICT_MANAGER.search(str(cause.get("message", "")))]
                if match
            }
            or set(_CONFLICT_MANAGER.findall(message))
        )
        fields = [str(cause.get("field", "")) for cause in causes]
        return ApplyConflictError(text, managers, fields)

    if error.status == 404:
        return NotFoundError(text)
    if error.status == 403:
        return ForbiddenError(text)
    if error.status in (400, 422):
        return InvalidObjectError(text)
    if error.status == 409:
        return TransientError(text, retry_after_seconds=1.0)  # stale resourceVersion

    retry_after = (error.headers or {}).get("Retry-After")
    delay = float(retry_after) if retry_after and retry_after.isdigit() else 5.0
    if error.status in (429,) or (error.status or 0) >= 500:
        return TransientError(text, retry_after_seconds=delay)
    return ActionRejectedError(text)


def _status_body(error: k8s.ApiException) -> dict[str, Any]:
    body = error.body
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    if not body:
        return {}
    try:
        parsed = json.loads(body)
    except ValueError:
        return {"message": body[:200]}
    return parsed if isinstance(parsed, dict) else {}
