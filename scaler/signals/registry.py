"""Build the configured live signals, keyed by their config name.

Pool signals read the Kubernetes API, workload signals read Thanos. A signal whose client
cannot be built (no cluster access, a source without credentials) is still built, as an
``UnavailableSignal`` whose every read raises the reason. The fast loop then reports it and
changes nothing, as it does for a source that is down.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import pandas as pd

from forecaster.errors import ConfigError
from forecaster.settings import ThanosSourceSettings
from forecaster.sources.auth import Secrets
from forecaster.sources.thanos_http import QueryClient
from scaler.kube.client import KubeClient
from scaler.settings import PoolSettings, Settings, WorkloadSettings
from scaler.signals.base import Reading, Signal, SignalKey, SignalUnavailableError
from scaler.signals.demand_above_forecast import NAME as DEMAND_ABOVE_FORECAST
from scaler.signals.demand_above_forecast import DemandAboveForecastSignal, ForecastProvider
from scaler.signals.gpu_allocation import NAME as GPU_ALLOCATION
from scaler.signals.gpu_allocation import GpuAllocationSignal
from scaler.signals.pending_gpu_pods import NAME as PENDING_GPU_PODS
from scaler.signals.pending_gpu_pods import PendingGpuPodsSignal
from scaler.signals.saturation import NAME as SATURATION
from scaler.signals.saturation import SaturationSignal
from scaler.signals.settings import HysteresisSettings
from scaler.signals.thanos_window import query_params

logger = logging.getLogger(__name__)

# The signal names of the config, sorted; each is a key of PoolSignalSettings or
# WorkloadSignalSettings.
SIGNAL_NAMES = (DEMAND_ABOVE_FORECAST, GPU_ALLOCATION, PENDING_GPU_PODS, SATURATION)


@dataclass
class UnavailableSignal:
    """A configured signal whose client could not be built; every read reports ``reason``."""

    key: SignalKey
    reason: str
    hysteresis: HysteresisSettings = field(default_factory=HysteresisSettings)
    cooldown_seconds: int = 0

    def read(self, now: pd.Timestamp) -> Reading:
        raise SignalUnavailableError(f"{self.key.label}: {self.reason}")


class QueryClients:
    """One ``QueryClient`` per Thanos source, built on first use."""

    def __init__(self, settings: Settings, sleep: Callable[[float], None] = time.sleep) -> None:
        self._settings = settings
        self._sleep = sleep
        self._clients: dict[str, QueryClient] = {}

    def params(self, source: str) -> dict[str, str]:
        """Return the query parameters of ``source``: its dedup setting, no partial responses."""
        settings = self._settings.sources[source]
        return query_params(getattr(settings, "dedup", True))

    def scrape_interval(self, source: str) -> int:
        """Return the scrape interval of ``source``'s metrics in seconds (60 when not Thanos)."""
        settings = self._settings.sources[source]
        return getattr(settings, "scrape_interval_seconds", 60)

    def get(self, source: str) -> QueryClient:
        found = self._clients.get(source)
        if found is None:
            settings = self._settings.sources[source]
            if not isinstance(settings, ThanosSourceSettings):
                raise ConfigError(f"sources.{source}.kind", settings.kind, "'thanos'")
            prefix = f"sources.{source}"
            found = QueryClient(
                settings, Secrets(settings, prefix), key_prefix=prefix, sleep=self._sleep
            )
            self._clients[source] = found
        return found

    def close(self) -> None:
        for client in self._clients.values():
            client.close()
        self._clients.clear()


def build_signals(
    settings: Settings,
    *,
    kube: KubeClient | None,
    queries: QueryClients,
    forecasts: ForecastProvider,
    kube_problem: str = "no Kubernetes client is configured",
) -> list[Signal]:
    """Build every configured signal, pools first, in configuration order."""
    signals: list[Signal] = []
    for pool in settings.pools:
        signals += _pool_signals(pool, kube, kube_problem)
    for workload in settings.workloads:
        signals += _workload_signals(workload, queries, forecasts)
    return signals


def _pool_signals(pool: PoolSettings, kube: KubeClient | None, problem: str) -> list[Signal]:
    config = pool.signals
    if config is None:
        return []
    if pool.actuator is None:
        logger.warning(
            "pool %s: live signals are configured but the pool has no actuator, so no signal "
            "can raise its floor; they are not read",
            pool.name,
            extra={"pool": pool.name},
        )
        return []
    signals: list[Signal] = []
    if config.pending_gpu_pods is not None:
        key = SignalKey(PENDING_GPU_PODS, "pool", pool.name)
        signals.append(
            PendingGpuPodsSignal(kube, pool, config.pending_gpu_pods)
            if kube is not None
            else UnavailableSignal(key, problem, config.pending_gpu_pods.hysteresis)
        )
    if config.gpu_allocation is not None:
        key = SignalKey(GPU_ALLOCATION, "pool", pool.name)
        signals.append(
            GpuAllocationSignal(kube, pool, config.gpu_allocation)
            if kube is not None
            else UnavailableSignal(key, problem, config.gpu_allocation.hysteresis)
        )
    return signals


def _workload_signals(
    workload: WorkloadSettings,
    queries: QueryClients,
    forecasts: ForecastProvider,
) -> list[Signal]:
    config = workload.signals
    if config is None:
        return []
    signals: list[Signal] = []
    for index, saturation in enumerate(config.saturation):
        key = SignalKey(f"{SATURATION}:{saturation.metric}", "workload", workload.name, index)
        try:
            client = queries.get(saturation.source)
        except ConfigError as error:
            signals.append(UnavailableSignal(key, str(error), saturation.hysteresis))
            continue
        params = queries.params(saturation.source)
        scrape = queries.scrape_interval(saturation.source)
        signals.append(SaturationSignal(client, workload, saturation, index, params, scrape))
    demand = config.demand_above_forecast
    if demand is not None:
        key = SignalKey(DEMAND_ABOVE_FORECAST, "workload", workload.name)
        source = demand.source or workload.demand.source
        try:
            client = queries.get(source)
        except ConfigError as error:
            signals.append(UnavailableSignal(key, str(error), demand.hysteresis))
        else:
            params = queries.params(source)
            signals.append(DemandAboveForecastSignal(client, workload, demand, forecasts, params))
    return signals
