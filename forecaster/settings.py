"""Settings of the forecasting layer: history sources and the forecast engine.

Every settings class is frozen and rejects unknown keys. Durations are whole seconds and say so
in their names; ``scaler.settings`` composes these classes into the full configuration.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

DAY_SECONDS = 86_400
WEEK_SECONDS = 7 * DAY_SECONDS


class Frozen(BaseModel):
    """Base of all settings: immutable, unknown keys rejected."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def validate_zone(name: str) -> str:
    """Raise ValueError unless ``name`` is an IANA time zone such as ``Europe/Berlin``."""
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as error:
        raise ValueError(f"unknown time zone {name!r}; use an IANA name such as 'UTC'") from error
    return name


class MissingPeriod(Frozen):
    """A period a trace declares as 'no data' (an outage recorded as zeros, for example)."""

    start: dt.datetime
    end: dt.datetime

    @model_validator(mode="after")
    def _start_before_end(self) -> MissingPeriod:
        if self.end <= self.start:
            raise ValueError("end must be after start")
        return self


class CsvSourceSettings(Frozen):
    """A CSV trace (plain or .csv.gz) with one timestamp column and value columns."""

    kind: Literal["csv"]
    path: Path = Field(description="CSV file; a relative path is read from the config file's folder.")
    timestamp_column: str = "timestamp"
    timezone: str = Field(
        default="UTC", description="Zone of timestamps that carry no offset; converted to UTC."
    )
    missing_values: dict[str, list[float]] = Field(
        default_factory=dict,
        description="Per column, values that mean 'no data'; the key '*' applies to every column.",
    )
    missing_periods: list[MissingPeriod] = Field(default_factory=list)

    _zone = field_validator("timezone")(validate_zone)


class ThanosSourceSettings(Frozen):
    """Thanos Query (or any Prometheus HTTP API). Secrets come from files or env, never here."""

    kind: Literal["thanos"]
    url: str
    bearer_token_file: Path | None = None
    basic_auth_username: str | None = None
    basic_auth_password_file: Path | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    ca_file: Path | None = None
    insecure_skip_verify: bool = False
    connect_timeout_seconds: float = Field(default=5.0, gt=0)
    read_timeout_seconds: float = Field(default=60.0, gt=0)
    max_retries: int = Field(default=3, ge=0)
    retry_backoff_seconds: float = Field(default=1.0, ge=0)
    max_points_per_request: int = Field(default=11_000, ge=2, le=11_000)
    max_concurrent_requests: int = Field(default=4, ge=1)
    dedup: bool = True
    replica_labels: list[str] = Field(default_factory=lambda: ["replica", "prometheus_replica"])
    raw_resolution_max_age_seconds: int = Field(default=40 * 3600, ge=0)
    five_minute_resolution_max_age_seconds: int = Field(default=10 * DAY_SECONDS, ge=0)
    stale_after_seconds: int = Field(default=300, ge=0)


SourceSettings = Annotated[CsvSourceSettings | ThanosSourceSettings, Field(discriminator="kind")]

Aggregation = Literal["mean", "max", "p50", "p90", "p95", "p99"]


class ForecastSettings(Frozen):
    """How demand is forecast: model, model step, seasonality, horizon and quantiles."""

    model: str = Field(
        default="holt_winters",
        description="Registered model name (see forecaster.models) or 'auto'.",
    )
    step_seconds: int = Field(
        default=1800, gt=0, description="Model step; history is aggregated to it before fitting."
    )
    aggregation: Aggregation = Field(
        default="max",
        description="How samples inside one model step are combined. 'max' plans for the "
        "peak inside the step.",
    )
    season_lengths_seconds: list[int] = Field(
        default_factory=lambda: [DAY_SECONDS, WEEK_SECONDS],
        description="Seasonal periods as durations; converted to model steps. A period longer "
        "than half the history is dropped with a note (cold start).",
    )
    horizon_seconds: int = Field(default=DAY_SECONDS, gt=0)
    history_seconds: int = Field(default=28 * DAY_SECONDS, gt=0)
    refit_interval_seconds: int = Field(
        default=DAY_SECONDS, gt=0, description="Parameters are re-estimated this often."
    )
    levels: list[float] = Field(default_factory=lambda: [0.5, 0.9, 0.95])
    planning_level: float = Field(
        default=0.9, gt=0, lt=1, description="Quantile level capacity is planned for."
    )
    calibration_windows: int = Field(
        default=14,
        ge=1,
        description="Rolling-origin forecasts whose residuals set the quantiles.",
    )
    min_coverage: float = Field(
        default=0.8,
        ge=0,
        le=1,
        description="Below this share of observed grid points the history is reported as "
        "partial and the planner holds capacity.",
    )

    @field_validator("model")
    @classmethod
    def _known_model(cls, name: str) -> str:
        from forecaster.models import AUTO, model_names

        if name != AUTO and name not in model_names():
            raise ValueError(f"unknown model; allowed: {', '.join([*model_names(), AUTO])}")
        return name

    @field_validator("levels")
    @classmethod
    def _levels_in_unit_interval(cls, levels: list[float]) -> list[float]:
        for level in levels:
            if not 0 < level < 1:
                raise ValueError(f"quantile level {level} must be between 0 and 1 (exclusive)")
        return sorted(set(levels))

    @model_validator(mode="after")
    def _step_divides_periods(self) -> ForecastSettings:
        for period in self.season_lengths_seconds:
            if period % self.step_seconds:
                raise ValueError(
                    f"season length {period} s is not a whole number of model steps "
                    f"({self.step_seconds} s)"
                )
        if self.planning_level not in self.levels:
            object.__setattr__(self, "levels", sorted({*self.levels, self.planning_level}))
        return self
