"""Shared parts of the three node-side modes: the protocol, the observation, node listing."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

import pandas as pd

from scaler.kube.client import KubeClient
from scaler.kube.objects import Obj
from scaler.kube.readiness import PoolReadiness, assess_nodes, selector_text
from scaler.kube.resources import NODE
from scaler.kube.writer import FloorTarget
from scaler.settings import PoolSettings

logger = logging.getLogger(__name__)

POOL_LABEL = "peakcast.io/pool"


@dataclass(frozen=True)
class PoolObservation:
    """One pool as read in one cycle: its object, the floor it holds, its nodes."""

    pool: PoolSettings
    target: FloorTarget
    obj: Obj | None
    current_nodes: int | None
    readiness: PoolReadiness
    nodes: tuple[Obj, ...] = field(default_factory=tuple)


class PoolMode(Protocol):
    """A way to get a pool's nodes: read its current floor and express a node count."""

    def observe(self, now: pd.Timestamp) -> PoolObservation:
        """Read the pool's object and nodes."""
        ...

    def field_value(self, nodes: int, observation: PoolObservation) -> tuple[int, str]:
        """Return the field value for ``nodes`` nodes, and a note when a bound changed it."""
        ...


def node_selector(pool: PoolSettings) -> Mapping[str, str]:
    actuator = pool.actuator
    if actuator is not None and actuator.node_selector:
        return actuator.node_selector
    return {POOL_LABEL: pool.name}


def pool_nodes(client: KubeClient, pool: PoolSettings) -> list[Obj]:
    return client.list(NODE, label_selector=selector_text(node_selector(pool)))


def assess_pool_nodes(pool: PoolSettings, nodes: list[Obj], now: pd.Timestamp) -> PoolReadiness:
    timeout = pool.actuator.gpu_init_timeout_seconds if pool.actuator else 900
    return assess_nodes(pool.name, nodes, now, timeout)
