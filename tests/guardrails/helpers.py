"""Settings, requirements and floors for the guardrail tests."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from scaler.core.decision import DataStatus
from scaler.core.policy import Floors
from scaler.core.requirements import Requirements
from scaler.settings import Settings
from scaler.settings_guardrails import GuardrailSettings
from tests.scaler.planning_fixtures import small_settings

T0 = pd.Timestamp("2026-03-02 08:00", tz="UTC")
STEP = pd.Timedelta(minutes=10)


def guarded(settings: Settings | None = None, **guardrails: Any) -> Settings:
    """Return ``settings`` (default: one static and one burst pool) with these guardrails."""
    base = settings or small_settings(static_nodes=1, burst_min=0, burst_max=20, max_replicas=80)
    return base.model_copy(update={"guardrails": GuardrailSettings.model_validate(guardrails)})


def flat_requirements(
    replicas: int,
    nodes: int,
    start: pd.Timestamp = T0,
    burst: str = "burst",
    static: str = "base",
) -> Requirements:
    """A one-day schedule that needs ``replicas`` replicas and ``nodes`` burst nodes throughout."""
    rows = 144
    replica_array = np.full(rows, replicas, dtype=np.int64)
    return Requirements(
        start=start,
        step=STEP,
        level=0.9,
        demand={"llm": replica_array * 100.0},
        replicas={"llm": replica_array},
        nodes={burst: np.full(rows, nodes, dtype=np.int64), static: np.ones(rows, np.int64)},
        unplaced={"llm": np.zeros(rows, dtype=np.int64)},
    )


def usable(at: pd.Timestamp) -> tuple[DataStatus, ...]:
    return (DataStatus("llm", 1.0, at, True),)


def floors(pool: int | None, workload: int | None) -> Floors:
    return Floors(
        pools={} if pool is None else {"burst": pool, "base": 1},
        workloads={} if workload is None else {"llm": workload},
    )
