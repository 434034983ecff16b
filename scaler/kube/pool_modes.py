"""The registry of node-side modes, keyed by the ``actuator.mode`` name used in config."""

from __future__ import annotations

from collections.abc import Callable

from scaler.kube.client import KubeClient
from scaler.kube.custom_field import CustomFieldMode
from scaler.kube.gpunodepool import GPUNodePoolMode
from scaler.kube.nodeside import PoolMode
from scaler.kube.placeholder import PlaceholderMode
from scaler.settings import PoolSettings

POOL_MODES: dict[str, Callable[[KubeClient, PoolSettings], PoolMode]] = {
    "custom_field": CustomFieldMode,
    "gpunodepool": GPUNodePoolMode,
    "placeholder": PlaceholderMode,
}
