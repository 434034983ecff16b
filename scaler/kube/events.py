"""Kubernetes Events (``events.k8s.io/v1``) on the objects peakcast changes or cannot change."""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Callable
from typing import Literal

import pandas as pd

from forecaster.errors import PeakcastError
from scaler.kube.client import KubeClient
from scaler.kube.objects import Obj, identity
from scaler.kube.resources import EVENT

logger = logging.getLogger(__name__)

EventType = Literal["Normal", "Warning"]
_NOTE_LIMIT = 1024  # the API server rejects longer notes


def default_reporting_instance() -> str:
    """Return ``$POD_NAME`` when set (the Downward API), else the host name."""
    return os.environ.get("POD_NAME") or socket.gethostname()


def reason_from_rule(rule: str) -> str:
    """Turn a decision rule such as ``max_step`` into an Event reason such as ``MaxStep``."""
    return "".join(part.capitalize() for part in rule.split("_")) or "Unknown"


class EventRecorder:
    """Creates one Event per change; repeated identical warnings on one object are sent once."""

    def __init__(
        self,
        client: KubeClient,
        reporting_controller: str,
        reporting_instance: str,
        clock: Callable[[], pd.Timestamp],
    ) -> None:
        self._client = client
        self._controller = reporting_controller
        self._instance = reporting_instance
        self._clock = clock
        self._last_warning: dict[tuple[str, str, str], str] = {}

    def record(self, obj: Obj, event_type: EventType, reason: str, action: str, note: str) -> bool:
        """Create an Event about ``obj``; return False when skipped or when creation failed.

        An API error while creating the Event is logged and dropped, so the change it reports
        still counts as done.
        """
        key = (obj.get("kind", ""), identity(obj), reason)
        if event_type == "Warning":
            if self._last_warning.get(key) == note:
                return False
            self._last_warning[key] = note
        else:
            self._forget_warnings(obj)
        body = self._event(obj, event_type, reason, action, note)
        try:
            self._client.create(EVENT, body)
        except PeakcastError as error:
            logger.warning(
                "Event %s on %s %s was not recorded: %s",
                reason,
                obj.get("kind"),
                identity(obj),
                error,
            )
            return False
        return True

    def _forget_warnings(self, obj: Obj) -> None:
        prefix = (obj.get("kind", ""), identity(obj))
        for key in [k for k in self._last_warning if k[:2] == prefix]:
            del self._last_warning[key]

    def _event(self, obj: Obj, event_type: EventType, reason: str, action: str, note: str) -> Obj:
        meta = obj.get("metadata", {})
        namespace = meta.get("namespace") or "default"
        regarding = {
            "apiVersion": obj.get("apiVersion"),
            "kind": obj.get("kind"),
            "name": meta.get("name"),
            "uid": meta.get("uid"),
            "resourceVersion": meta.get("resourceVersion"),
        }
        if meta.get("namespace"):
            regarding["namespace"] = namespace
        event_time = self._clock().tz_convert("UTC").strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        return {
            "apiVersion": EVENT.api_version,
            "kind": EVENT.kind,
            "metadata": {
                "name": f"{meta.get('name')}.{uuid.uuid4().hex[:16]}",
                "namespace": namespace,
            },
            "eventTime": event_time,
            "reportingController": self._controller,
            "reportingInstance": self._instance,
            "action": action,
            "reason": reason,
            "type": event_type,
            "note": note[:_NOTE_LIMIT],
            "regarding": {k: v for k, v in regarding.items() if v is not None},
        }
