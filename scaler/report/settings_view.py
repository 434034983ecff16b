"""The parts of the configuration a report shows: pools, workloads and lead times."""

from __future__ import annotations

from scaler.report.model import LeadTime, PoolInfo, WorkloadInfo
from scaler.settings import Settings


def pool_infos(settings: Settings) -> tuple[PoolInfo, ...]:
    """Return every configured pool as the report shows it."""
    return tuple(
        PoolInfo(
            name=pool.name,
            kind=pool.kind,
            gpus_per_node=pool.gpus_per_node,
            min_nodes=pool.min_nodes,
            max_nodes=pool.max_nodes,
            price_per_node_hour=pool.price_per_node_hour,
        )
        for pool in settings.pools
    )


def workload_infos(settings: Settings) -> tuple[WorkloadInfo, ...]:
    """Return every configured workload as the report shows it."""
    return tuple(
        WorkloadInfo(
            name=workload.name,
            unit=workload.demand.unit,
            throughput_per_replica=workload.capacity.throughput_per_replica,
            target_utilization=workload.capacity.target_utilization,
            gpus_per_replica=workload.capacity.gpus_per_replica,
            pools=tuple(workload.pools),
        )
        for workload in settings.workloads
    )


def lead_times(settings: Settings) -> tuple[LeadTime, ...]:
    """Return the configured lead-time phases of every burst pool's node floor.

    The workload phase is the longest ``workload_start_seconds`` of the workloads on the pool,
    as in ``scaler.core.requirements.pool_lead_seconds``.
    """
    # TODO: show the lead times measured on the cluster (scaler.kube.leadtime) once a report
    # can read them. The simulator also uses these configured constants, not distributions.
    times = []
    for pool in settings.pools:
        if pool.kind != "burst":
            continue
        starts = [w.workload_start_seconds for w in settings.workloads if pool.name in w.pools]
        times.append(
            LeadTime(
                pool=pool.name,
                node_provisioning_seconds=pool.node_provisioning_seconds,
                workload_start_seconds=max(starts, default=0),
                margin_seconds=settings.policy.lead_time_margin_seconds,
            )
        )
    return tuple(times)
