"""Plain-dict helpers for Kubernetes objects: dotted field paths, identity, field ownership."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

Obj = dict[str, Any]

ANNOTATION_PREFIX = "peakcast.io/"


def split_path(path: str) -> tuple[str, ...]:
    return tuple(path.split("."))


def get_path(obj: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    """Return the value at ``path`` or None when any key on the way is missing."""
    current: Any = obj
    for key in path:
        if not isinstance(current, Mapping) or key not in current:
            return None
        current = current[key]
    return current


def nested(path: tuple[str, ...], value: Any) -> Obj:
    """Build ``{"a": {"b": value}}`` from ``("a", "b")``."""
    result: Any = value
    for key in reversed(path):
        result = {key: result}
    return result


def identity(obj: Mapping[str, Any]) -> str:
    """Return ``namespace/name`` (or ``name`` for cluster-scoped objects)."""
    meta = obj.get("metadata", {})
    namespace = meta.get("namespace")
    return f"{namespace}/{meta.get('name')}" if namespace else str(meta.get("name"))


def object_annotations(obj: Mapping[str, Any]) -> dict[str, str]:
    return dict(obj.get("metadata", {}).get("annotations") or {})


def peakcast_annotations(obj: Mapping[str, Any]) -> dict[str, str]:
    """Return the annotations under ``peakcast.io/``, the only ones peakcast writes."""
    return {k: v for k, v in object_annotations(obj).items() if k.startswith(ANNOTATION_PREFIX)}


def as_int(value: Any) -> int | None:
    """Read an integer field or quantity string such as ``"8"``; None when absent or invalid."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


def timestamp(value: Any) -> pd.Timestamp | None:
    """Parse an RFC 3339 time of the API server; None when absent or unreadable."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = pd.Timestamp(value)
    except ValueError:
        return None
    return parsed.tz_localize("UTC") if parsed.tzinfo is None else parsed.tz_convert("UTC")


def condition(obj: Mapping[str, Any], kind: str) -> Mapping[str, Any] | None:
    """Return the ``status.conditions`` entry of type ``kind``."""
    for entry in get_path(obj, ("status", "conditions")) or []:
        if isinstance(entry, Mapping) and entry.get("type") == kind:
            return entry
    return None


def field_owners(obj: Mapping[str, Any], path: tuple[str, ...]) -> list[str]:
    """Return the field managers whose ``managedFields`` entry covers ``path``."""
    owners = []
    for entry in obj.get("metadata", {}).get("managedFields") or []:
        tree: Any = entry.get("fieldsV1") or {}
        for key in path:
            if not isinstance(tree, Mapping) or f"f:{key}" not in tree:
                tree = None
                break
            tree = tree[f"f:{key}"]
            if tree == {}:
                break
        if tree is not None:
            owners.append(str(entry.get("manager")))
    return owners
