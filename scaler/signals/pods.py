"""Pure helpers that read pods as plain dicts: GPU requests, scheduling state, pool membership."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd

from scaler.kube.objects import as_int, condition, get_path, timestamp

FINISHED_PHASES = ("Succeeded", "Failed")


def gpu_request(pod: Mapping[str, Any], resource: str) -> int:
    """Return the GPUs ``pod`` requests: the larger of its containers' sum and any init container.

    A container without a request for an extended resource gets its limit as the request,
    as the API server defaults it.
    """
    spec = pod.get("spec") or {}
    running = sum(_container_request(c, resource) for c in spec.get("containers") or [])
    init = [_container_request(c, resource) for c in spec.get("initContainers") or []]
    return max([running, *init])


def _container_request(container: Mapping[str, Any], resource: str) -> int:
    resources = container.get("resources") or {}
    for part in ("requests", "limits"):
        value = as_int((resources.get(part) or {}).get(resource))
        if value is not None:
            return value
    return 0


def unschedulable_since(pod: Mapping[str, Any]) -> pd.Timestamp | None:
    """Return when the pod became unschedulable, or None when it is not Pending as Unschedulable.

    The scheduler sets ``PodScheduled=False`` with reason ``Unschedulable`` when no node fits.
    A pod without a transition time counts from its creation.
    """
    if get_path(pod, ("status", "phase")) != "Pending" or get_path(pod, ("spec", "nodeName")):
        return None
    scheduled = condition(pod, "PodScheduled")
    if scheduled is None or scheduled.get("status") != "False":
        return None
    if scheduled.get("reason") != "Unschedulable":
        return None
    since = timestamp(scheduled.get("lastTransitionTime"))
    return since or timestamp(get_path(pod, ("metadata", "creationTimestamp")))


def is_running_on(pod: Mapping[str, Any], nodes: set[str]) -> bool:
    """Tell whether ``pod`` is bound to one of ``nodes`` and has not finished."""
    node = get_path(pod, ("spec", "nodeName"))
    phase = get_path(pod, ("status", "phase"))
    return node in nodes and phase not in FINISHED_PHASES


def targets_pool(
    pod: Mapping[str, Any], node_labels: Mapping[str, str], toleration_key: str | None
) -> bool:
    """Tell whether ``pod`` requests the pool's nodes.

    That is when its ``nodeSelector`` names at least one of the pool's node labels and none
    of them with another value, when one term of its required node affinity accepts the pool's
    labels, or when it tolerates ``toleration_key``.
    """
    spec = pod.get("spec") or {}
    selector = spec.get("nodeSelector") or {}
    shared = [key for key in selector if key in node_labels]
    if shared and all(selector[key] == node_labels[key] for key in shared):
        return True
    if _affinity_accepts(spec, node_labels):
        return True
    if toleration_key is not None:
        return any(
            t.get("key") == toleration_key or (t.get("operator") == "Exists" and not t.get("key"))
            for t in spec.get("tolerations") or []
        )
    return False


def _affinity_accepts(spec: Mapping[str, Any], node_labels: Mapping[str, str]) -> bool:
    terms = get_path(
        spec,
        (
            "affinity",
            "nodeAffinity",
            "requiredDuringSchedulingIgnoredDuringExecution",
            "nodeSelectorTerms",
        ),
    )
    return any(_term_accepts(term, node_labels) for term in terms or [])


def _term_accepts(term: Mapping[str, Any], node_labels: Mapping[str, str]) -> bool:
    # NOTE: only In expressions on the pool's own label keys are understood. A term that uses
    # other keys or operators is not attributed to the pool.
    expressions: Iterable[Mapping[str, Any]] = term.get("matchExpressions") or []
    matched = False
    for expression in expressions:
        key = str(expression.get("key"))
        if key not in node_labels or expression.get("operator") != "In":
            return False
        if node_labels[key] not in (expression.get("values") or []):
            return False
        matched = True
    return matched
