"""Shared test helpers for the planning core and the backtest: settings, traces, a stand-in engine.

The stand-in engine is a seasonal-naive forecaster on the model step, never below the newest
step, with fixed quantile factors. It follows the ``forecaster.engine`` contract closely enough
for planning tests, and it records the newest timestamp of every history it is given, so tests
can prove that nothing leaked.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from forecaster.errors import InsufficientHistoryError
from forecaster.forecast import Forecast
from forecaster.history import History
from forecaster.settings import ForecastSettings
from scaler.config_loader import load_settings
from scaler.settings import Settings

REPO = Path(__file__).resolve().parents[2]
SERVEGEN = REPO / "data" / "servegen_m-large_10min.csv"


def quantile_factor(level: float) -> float:
    """Return the stand-in's quantile as a multiple of its point forecast."""
    return 1.0 + 0.5 * (level - 0.5)


class StandInFitted:
    """A fitted seasonal-naive forecaster: the last season of model steps, repeated, never
    below the newest step."""

    def __init__(self, engine: StandInEngine, history: History) -> None:
        self._engine = engine
        engine.observe(history)
        settings = engine.settings
        step = pd.Timedelta(seconds=settings.step_seconds)
        season = min(settings.season_lengths_seconds) // settings.step_seconds
        values = history.values
        if values.notna().sum() == 0:
            raise InsufficientHistoryError(f"history {history.name!r} contains no sample")
        # Model step of each sample, complete steps only (as the engine does).
        index = pd.DatetimeIndex(values.index)
        step_of = index.floor(step)
        aggregated = values.groupby(step_of).max()
        end_of_data = history.end + history.step
        complete = aggregated[pd.DatetimeIndex(aggregated.index) + step <= end_of_data]
        if len(complete) == 0:
            raise InsufficientHistoryError(f"history {history.name!r} has no complete model step")
        self.cutoff = pd.Timestamp(complete.index[-1])
        self.step = step
        filled = complete.ffill().fillna(float(np.nanmax(complete.to_numpy())))
        last = filled.to_numpy()[-season:]
        # Never below the newest step, so that recent data moves the near-term forecast.
        self._season = np.maximum(np.resize(last, season), last[-1])
        self._name = history.name

    def update(self, history: History) -> StandInFitted:
        return StandInFitted(self._engine, history)

    def predict(self, h: int | None = None) -> Forecast:
        settings = self._engine.settings
        horizon = h if h is not None else settings.horizon_seconds // settings.step_seconds
        point = np.resize(self._season, horizon).astype(np.float64)
        quantiles = {level: point * quantile_factor(level) for level in settings.levels}
        return Forecast(self._name, self.cutoff, self.step, point, quantiles, "stand_in")


class StandInEngine:
    """Seasonal-naive stand-in for ``forecaster.engine.ForecastEngine``."""

    def __init__(self, settings: ForecastSettings) -> None:
        self.settings = settings
        self.seen_until: pd.Timestamp | None = None
        self.history_ends: list[pd.Timestamp] = []
        self.fits = 0

    def observe(self, history: History) -> None:
        """Record the newest timestamp of every history passed to ``fit`` or ``update``."""
        if len(history.values) == 0:
            return
        self.history_ends.append(history.end)
        if self.seen_until is None or history.end > self.seen_until:
            self.seen_until = history.end

    def fit(self, history: History) -> StandInFitted:
        self.fits += 1
        return StandInFitted(self, history)


def history_from(
    values: Any, start: str = "2024-01-01", step: str = "10min", name: str = "llm"
) -> History:
    """Build a History from a list or array of values on a regular UTC grid."""
    array = np.asarray(values, dtype=np.float64)
    index = pd.date_range(pd.Timestamp(start, tz="UTC"), periods=len(array), freq=step)
    return History(name, pd.Series(array, index=index), pd.Timedelta(step))


def servegen_history(days: float | None = None, name: str = "llm-m-large") -> History:
    """Read the bundled ServeGen trace (10-minute request rate), optionally its first days."""
    frame = pd.read_csv(SERVEGEN, parse_dates=["timestamp"])
    series = pd.Series(
        frame["req_per_s"].to_numpy(dtype=np.float64),
        index=pd.DatetimeIndex(frame["timestamp"]).tz_localize("UTC").as_unit("ns"),
    )
    if days is not None:
        series = series.iloc[: int(days * 144)]
    return History(name, series, pd.Timedelta(minutes=10))


def default_settings(**updates: Any) -> Settings:
    """Load config/peakcast.yaml, with top-level sections updated from keyword dicts."""
    settings = load_settings()
    for section, fields in updates.items():
        current = getattr(settings, section)
        settings = settings.model_copy(update={section: current.model_copy(update=fields)})
    return settings


def settings_from(raw: dict[str, Any]) -> Settings:
    """Validate a config mapping (a minimal CSV source is added when none is given)."""
    data = dict(raw)
    data.setdefault("sources", {"trace": {"kind": "csv", "path": str(SERVEGEN)}})
    return Settings.model_validate(data)


def small_settings(
    *,
    static_nodes: int = 0,
    burst_min: int = 0,
    burst_max: int = 10,
    gpus_per_node: int = 8,
    gpus_per_replica: int = 2,
    throughput: float = 100.0,
    utilization: float = 1.0,
    min_replicas: int = 1,
    max_replicas: int = 100,
    provisioning_seconds: int = 600,
    start_seconds: int = 300,
    safe_min_nodes: int | None = None,
    policy: dict[str, Any] | None = None,
    simulator: dict[str, Any] | None = None,
    backtest: dict[str, Any] | None = None,
    forecast: dict[str, Any] | None = None,
) -> Settings:
    """Build a one-workload configuration: an optional static pool and one burst pool."""
    pools: list[dict[str, Any]] = []
    names = []
    if static_nodes:
        pools.append(
            {
                "name": "base",
                "kind": "static",
                "gpus_per_node": gpus_per_node,
                "min_nodes": static_nodes,
                "max_nodes": static_nodes,
                "node_provisioning_seconds": 0,
            }
        )
        names.append("base")
    pools.append(
        {
            "name": "burst",
            "kind": "burst",
            "gpus_per_node": gpus_per_node,
            "min_nodes": burst_min,
            "max_nodes": burst_max,
            "node_provisioning_seconds": provisioning_seconds,
            "price_per_node_hour": 10.0,
            "safe_min_nodes": safe_min_nodes,
        }
    )
    names.append("burst")
    raw: dict[str, Any] = {
        "pools": pools,
        "workloads": [
            {
                "name": "llm",
                "demand": {"source": "trace", "series": "req_per_s", "unit": "requests_per_second"},
                "capacity": {
                    "throughput_per_replica": throughput,
                    "target_utilization": utilization,
                    "gpus_per_replica": gpus_per_replica,
                    "min_replicas": min_replicas,
                    "max_replicas": max_replicas,
                },
                "pools": names,
                "workload_start_seconds": start_seconds,
            }
        ],
        "forecast": {
            "model": "seasonal_naive",
            "step_seconds": 600,
            "season_lengths_seconds": [86400],
            "horizon_seconds": 86400,
            "history_seconds": 7 * 86400,
            **(forecast or {}),
        },
        "policy": {"lead_time_margin_seconds": 0, **(policy or {})},
        "simulator": simulator or {},
        "backtest": {"warmup_seconds": 86400, **(backtest or {})},
    }
    return settings_from(raw)
