"""The object model of the fake API server: field paths, managedFields, apply, selectors.

Ownership is tracked per map key down to the first list or scalar, so lists are atomic. Applying
a value that differs from one another manager owns fails with 409 unless ``force=true``, and an
equal value is shared. A field the applier owned before and leaves out is removed unless another
manager owns it. Each (manager, operation, subresource) has its own managedFields entry.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

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


IDENTITY_KEYS = {
    "name",
    "namespace",
    "resourceVersion",
    "managedFields",
    "uid",
    "creationTimestamp",
    "generation",
}


class ApiError(Exception):
    """An error response: HTTP code, Status reason and message, optional causes."""

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


def get_path(obj: Any, path: Path) -> Any:
    for key in path:
        if not isinstance(obj, dict) or key not in obj:
            return None
        obj = obj[key]
    return obj


def delete_path(obj: Obj, path: Path) -> None:
    parent = get_path(obj, path[:-1]) if len(path) > 1 else obj
    if isinstance(parent, dict):
        parent.pop(path[-1], None)


def leaves(body: Obj, prefix: Path = ()) -> set[Path]:
    found: set[Path] = set()
    for key, value in body.items():
        if not prefix and key in ("apiVersion", "kind", "status"):
            continue
        if prefix == ("metadata",) and key in IDENTITY_KEYS:
            continue
        path = (*prefix, key)
        if isinstance(value, dict) and value:
            found |= leaves(value, path)
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


def merge(target: Obj, patch: Obj, delete_nulls: bool) -> None:
    for key, value in patch.items():
        if value is None and delete_nulls:
            target.pop(key, None)
        elif isinstance(value, dict) and isinstance(target.get(key), dict):
            merge(target[key], value, delete_nulls)
        else:
            target[key] = copy.deepcopy(value)


def json_patch(obj: Obj, operations: list[Obj]) -> Obj:
    result = copy.deepcopy(obj)
    for op in operations:
        parts = [p.replace("~1", "/").replace("~0", "~") for p in op["path"].split("/")[1:]]
        parent = get_path(result, tuple(parts[:-1])) if len(parts) > 1 else result
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


def selects(obj: Obj, labels: str | None, fields: str | None) -> bool:
    obj_labels = obj.get("metadata", {}).get("labels") or {}
    for term in _split_terms(labels or ""):
        if not _term_matches(term, obj_labels.get):
            return False

    def field_value(key: str) -> str | None:
        value = get_path(obj, tuple(key.split(".")))
        return None if value is None else str(value)

    return all(_term_matches(term, field_value) for term in _split_terms(fields or ""))


# --- ownership ---------------------------------------------------------------------------------


def own(obj: Obj, key: EntryKey, paths: set[Path], rtype: ResourceType) -> None:
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
        if entry_key(existing) == key:
            if paths and not placed:
                entries.append(entry)
            placed = True
        else:
            entries.append(existing)
    if paths and not placed:
        entries.append(entry)
    obj["metadata"]["managedFields"] = entries


def owned_fields(obj: Obj) -> list[tuple[EntryKey, set[Path]]]:
    return [
        (entry_key(e), _from_fields_v1(e.get("fieldsV1", {})))
        for e in obj["metadata"].get("managedFields", [])
    ]


def disown(obj: Obj, paths: set[Path], keep: EntryKey) -> None:
    kept = []
    for entry in obj["metadata"].get("managedFields", []):
        if entry_key(entry) != keep:
            owned = _from_fields_v1(entry.get("fieldsV1", {}))
            owned = {p for p in owned if not any(_overlaps(p, q) for q in paths)}
            entry["fieldsV1"] = _to_fields_v1(owned)
        if entry["fieldsV1"]:
            kept.append(entry)
    obj["metadata"]["managedFields"] = kept


def apply(
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
        mine = leaves(body.get("status") or {}, ("status",))
    else:
        mine = leaves(body)
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
        for other, owned in owned_fields(new)
        if other != key
        for path in sorted(mine)
        if any(_overlaps(path, q) for q in owned) and get_path(new, path) != get_path(body, path)
    ]
    if conflicts and not force:
        raise conflict_error(conflicts, rtype)
    if force:
        disown(new, mine, keep=key)
    owned_by_me = next((o for k, o in owned_fields(new) if k == key), set())
    others = set().union(*(o for k, o in owned_fields(new) if k != key))
    for path in owned_by_me - mine:
        if not any(_overlaps(path, q) for q in others):
            delete_path(new, path)
    if subresource == "status":
        patch = {"status": body.get("status") or {}}
    else:
        patch = {k: v for k, v in body.items() if k not in ("apiVersion", "kind", "status")}
        patch["metadata"] = {
            k: v for k, v in body.get("metadata", {}).items() if k not in IDENTITY_KEYS
        }
    merge(new, patch, delete_nulls=False)
    own(new, key, mine, rtype)
    return new


def update_ownership(
    rtype: ResourceType, old: Obj | None, new: Obj, manager: str, subresource: str = ""
) -> None:
    """Give ``manager`` (operation Update) every field this write changed."""
    changed = {p for p in leaves(new) if old is None or get_path(old, p) != get_path(new, p)}
    if not changed:
        return
    key: EntryKey = (manager, "Update", subresource)
    disown(new, changed, keep=key)
    owned = next((o for k, o in owned_fields(new) if k == key), set())
    own(new, key, owned | changed, rtype)


EntryKey = tuple[str, str, str]


def entry_key(entry: Obj) -> EntryKey:
    return (entry["manager"], entry["operation"], entry.get("subresource") or "")


def conflict_error(conflicts: list[tuple[str, Path]], rtype: ResourceType) -> ApiError:
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


def content(obj: Obj) -> Obj:
    meta = {
        k: v
        for k, v in obj.get("metadata", {}).items()
        if k not in ("resourceVersion", "managedFields", "generation")
    }
    return {**obj, "metadata": meta}
