"""Pods, settings and forecasts for the live-signal tests."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from forecaster.forecast import Forecast
from scaler.config_loader import parse_settings
from scaler.settings import Settings
from tests.kube import builders as b

Obj = dict[str, Any]
POOL = "cloud-h100"


def gpu_pod(
    name: str,
    gpus: int,
    *,
    pending_since: pd.Timestamp | None = b.START,
    node: str | None = None,
    selector: dict[str, str] | None = None,
) -> Obj:
    """A serving pod requesting ``gpus``; Pending as Unschedulable unless ``node`` is set."""
    spec: Obj = {
        "nodeSelector": selector if selector is not None else {"peakcast.io/pool": POOL},
        "containers": [
            {
                "name": "main",
                "image": "registry.k8s.io/pause:3.10",
                "resources": {"limits": {"nvidia.com/gpu": str(gpus)}},
            }
        ],
    }
    if node is not None:
        spec["nodeName"] = node
        status: Obj = {
            "phase": "Running",
            "conditions": [{"type": "PodScheduled", "status": "True"}],
        }
    else:
        status = {
            "phase": "Pending",
            "conditions": [
                {
                    "type": "PodScheduled",
                    "status": "False",
                    "reason": "Unschedulable",
                    "message": "0/3 nodes are available: 3 Insufficient nvidia.com/gpu.",
                    "lastTransitionTime": b.iso(pending_since or b.START),
                }
            ],
        }
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": b.NAMESPACE, "labels": {"app": "llm"}},
        "spec": spec,
        "status": status,
    }


def schedule(pod: Obj, node: str) -> None:
    """Bind ``pod`` to ``node`` and mark it Running, as the scheduler and kubelet do."""
    pod["spec"]["nodeName"] = node
    pod["status"] = {"phase": "Running", "conditions": [{"type": "PodScheduled", "status": "True"}]}


def settings_dict(
    pool_signals: Obj | None = None, workload_signals: Obj | None = None, **top: Any
) -> Obj:
    raw = b.settings_dict()
    if pool_signals is not None:
        raw["pools"][1]["signals"] = copy.deepcopy(pool_signals)
    if workload_signals is not None:
        raw["workloads"][0]["signals"] = copy.deepcopy(workload_signals)
    raw.update(top)
    return raw


def settings(
    pool_signals: Obj | None = None, workload_signals: Obj | None = None, **top: Any
) -> Settings:
    return parse_settings(settings_dict(pool_signals, workload_signals, **top), Path("."))


def flat_forecast(
    name: str, cutoff: pd.Timestamp, levels: dict[float, float], h: int = 48
) -> Forecast:
    """A forecast of constant quantiles, 5-minute steps, ``h`` rows after ``cutoff``."""
    quantiles = {level: np.full(h, value) for level, value in levels.items()}
    point = np.full(h, min(levels.values()))
    return Forecast(name, cutoff, pd.Timedelta(minutes=5), point, quantiles, "test")
