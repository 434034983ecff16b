"""Lead windows on the minute clock, matching how the simulator rounds each phase."""

from __future__ import annotations

from scaler.core.simulator import minutes_for
from scaler.settings import Settings


def workload_lead_minutes(settings: Settings, workload: str) -> int:
    """Return the workload start phase in clock minutes."""
    return minutes_for(settings.workload(workload).workload_start_seconds)


def pool_lead_minutes(settings: Settings, pool: str, *, margin: bool) -> int:
    """Return node provisioning plus the longest workload start on the pool, in minutes.

    Each phase is rounded up on its own, as the simulator does; ``margin`` adds
    ``policy.lead_time_margin_seconds``.
    """
    starts = [minutes_for(w.workload_start_seconds) for w in settings.workloads if pool in w.pools]
    lead = minutes_for(settings.pool(pool).node_provisioning_seconds) + max(starts, default=0)
    if margin:
        lead += minutes_for(settings.policy.lead_time_margin_seconds)
    return lead
