"""Settings of the forecasting layer: history sources and the forecast engine.

Every settings class is frozen and rejects unknown keys. Durations are in seconds, with the unit
in their names, and ``scaler.settings`` composes these classes into the full configuration.
"""

from __future__ import annotations

import datetime as dt
import re
import urllib.parse
import zoneinfo
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

DAY_SECONDS = 86_400
WEEK_SECONDS = 7 * DAY_SECONDS


class Frozen(BaseModel):
    """Base of all settings: immutable, unknown keys rejected, numbers finite."""

    # Infinity and NaN are rejected: 'throughput_per_replica: .inf' would plan 0 replicas.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


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
    path: Path = Field(
        description="CSV file; a relative path is read from the config file's folder."
    )
    timestamp_column: str = "timestamp"
    timezone: str = Field(
        default="UTC", description="Zone of timestamps that carry no offset; converted to UTC."
    )
    missing_values: dict[str, list[float]] = Field(
        default_factory=dict,
        description="Per column, values that mean 'no data'; the key '*' applies to every column.",
    )
    missing_periods: list[MissingPeriod] = Field(
        default_factory=list,
        description="Periods whose samples mean 'no data' in every column, both ends included; "
        "times without an offset are read in 'timezone'.",
    )

    _zone = field_validator("timezone")(validate_zone)


class ThanosSourceSettings(Frozen):
    """Thanos Query, or any server with the Prometheus HTTP API.

    Secrets come from files or environment variables named here, never from the config file.
    A file is read again on every request, so a rotated token takes effect without a restart.
    """

    kind: Literal["thanos"]
    url: str = Field(
        description="Base URL of the query API, e.g. http://thanos-query.monitoring:9090. "
        "Credentials in the URL are rejected; use the basic_auth_* keys."
    )
    bearer_token_file: Path | None = Field(
        default=None, description="File holding the bearer token, e.g. a projected token."
    )
    bearer_token_env: str | None = Field(
        default=None, description="Environment variable holding the bearer token."
    )
    basic_auth_username: str | None = None
    basic_auth_password_file: Path | None = Field(
        default=None, description="File holding the basic-auth password."
    )
    basic_auth_password_env: str | None = Field(
        default=None, description="Environment variable holding the basic-auth password."
    )
    headers: dict[str, str] = Field(
        default_factory=dict,
        description="Extra request headers that are not secret, e.g. a tenant header such as "
        "X-Scope-OrgID. Credentials belong in bearer_token_* or header_files.",
    )
    header_files: dict[str, Path] = Field(
        default_factory=dict,
        description="Request headers whose value is read from a file, for secret headers "
        "such as an API key.",
    )
    ca_file: Path | None = Field(
        default=None, description="PEM bundle of the CAs that sign the server certificate."
    )
    client_cert_file: Path | None = Field(
        default=None, description="PEM client certificate for mutual TLS."
    )
    client_key_file: Path | None = Field(
        default=None, description="PEM key of client_cert_file, when the key is separate."
    )
    insecure_skip_verify: bool = Field(
        default=False,
        description="Skip TLS certificate verification. Must be set explicitly; it cannot be "
        "combined with ca_file.",
    )
    connect_timeout_seconds: float = Field(default=5.0, gt=0)
    read_timeout_seconds: float = Field(
        default=60.0, gt=0, description="Maximum wait for response data of one request."
    )
    max_retries: int = Field(
        default=3,
        ge=0,
        description="Retries of one request after a 5xx response, a timeout or a connection "
        "error. A 4xx response is never retried.",
    )
    retry_backoff_seconds: float = Field(
        default=1.0, ge=0, description="Wait before the first retry; it doubles per retry."
    )
    retry_backoff_max_seconds: float = Field(
        default=30.0, ge=0, description="Upper bound of the wait between two retries."
    )
    max_points_per_request: int = Field(
        default=11_000,
        ge=2,
        le=11_000,
        description="Grid points per series in one range query. Prometheus and Thanos reject "
        "a query whose (end - start) / step exceeds 11,000.",
    )
    max_concurrent_requests: int = Field(
        default=4, ge=1, description="Requests this source has in flight at the same time."
    )
    dedup: bool = Field(default=True, description="Thanos 'dedup' parameter.")
    replica_labels: list[str] = Field(
        default_factory=lambda: ["replica", "prometheus_replica"],
        description="Labels that tell HA replicas apart. Sent as Thanos 'replicaLabels[]'; "
        "series in a response that differ only by these labels are merged into one.",
    )
    raw_resolution_max_age_seconds: int = Field(
        default=40 * 3600,
        ge=0,
        description="Chunks whose oldest point is at most this old are read at raw "
        "resolution (max_source_resolution=0s). The Thanos compactor downsamples blocks to "
        "5m after 40 h. For a plain Prometheus, set it above the retention.",
    )
    five_minute_resolution_max_age_seconds: int = Field(
        default=10 * DAY_SECONDS,
        ge=0,
        description="Older chunks up to this age are read with max_source_resolution=5m, "
        "older ones with 1h. The Thanos compactor downsamples 5m blocks to 1h after 10 days.",
    )
    scrape_interval_seconds: int = Field(
        default=60,
        gt=0,
        description="Scrape interval of the queried metrics. A counter function such as "
        "rate() needs a range of at least 4 scrape intervals; a shorter one is rejected.",
    )
    lookback_delta_seconds: int = Field(
        default=300,
        gt=0,
        description="The server's --query.lookback-delta: how long the last sample of a "
        "stopped series keeps being returned.",
    )
    stale_after_seconds: int | None = Field(
        default=120,
        gt=0,
        description="A grid point whose newest underlying sample is at least this old is a "
        "repeat of an old sample and becomes missing. Add the chunk's source resolution for "
        "downsampled data. About 2 scrape intervals suits real scrapes; null turns the check "
        "off.",
    )
    max_staleness_windows: int = Field(
        default=32,
        ge=1,
        description="Most recent ends of data runs (before a gap, or at the end) checked for "
        "repeated old samples per fetch; older ones are left unchecked and reported.",
    )
    ignored_warning_patterns: list[str] = Field(
        default_factory=lambda: ["^PromQL info:"],
        description="Regular expressions of response warnings that do not mean a partial "
        "answer. Every other warning makes the fetch fail as partial.",
    )

    @model_validator(mode="before")
    @classmethod
    def _no_credentials_in_url(cls, raw: object) -> object:
        # Checked on the whole mapping, so the error shows the mapping and not the URL with
        # its password.
        if isinstance(raw, dict) and isinstance(raw.get("url"), str):
            parts = urllib.parse.urlsplit(raw["url"])
            if parts.username is not None or parts.password is not None:
                raise ValueError(
                    "url: credentials in the URL are not allowed; use basic_auth_username "
                    "and basic_auth_password_file"
                )
        return raw

    @field_validator("url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        return validate_http_url(url)

    @field_validator("headers", "header_files")
    @classmethod
    def _header_names(cls, headers: dict[str, object]) -> dict[str, object]:
        for name in headers:
            validate_header_name(name)
        return headers

    @field_validator("replica_labels")
    @classmethod
    def _label_names(cls, labels: list[str]) -> list[str]:
        for label in labels:
            if not LABEL_NAME.fullmatch(label):
                raise ValueError(f"invalid label name {label!r}; expected [a-zA-Z_][a-zA-Z0-9_]*")
        return labels

    @field_validator("ignored_warning_patterns")
    @classmethod
    def _patterns_compile(cls, patterns: list[str]) -> list[str]:
        for pattern in patterns:
            try:
                re.compile(pattern)
            except re.error as error:
                raise ValueError(f"invalid regular expression {pattern!r}: {error}") from None
        return patterns

    @model_validator(mode="after")
    def _consistent(self) -> ThanosSourceSettings:
        check_thanos_credentials(self)
        if self.ca_file is not None and self.insecure_skip_verify:
            raise ValueError("set either ca_file or insecure_skip_verify, not both")
        if self.client_key_file is not None and self.client_cert_file is None:
            raise ValueError("client_key_file needs client_cert_file")
        if self.five_minute_resolution_max_age_seconds < self.raw_resolution_max_age_seconds:
            raise ValueError(
                "five_minute_resolution_max_age_seconds "
                f"({self.five_minute_resolution_max_age_seconds}) must not be below "
                f"raw_resolution_max_age_seconds ({self.raw_resolution_max_age_seconds})"
            )
        if self.retry_backoff_max_seconds < self.retry_backoff_seconds:
            raise ValueError(
                f"retry_backoff_max_seconds ({self.retry_backoff_max_seconds}) must not be "
                f"below retry_backoff_seconds ({self.retry_backoff_seconds})"
            )
        return self


LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
# Headers that carry credentials; their values must come from a file or the environment.
CREDENTIAL_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie"})


def validate_http_url(url: str) -> str:
    """Raise ValueError unless ``url`` is an http(s) URL with a host and no query or fragment.

    Returns the URL without a trailing slash.
    """
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("expected an http:// or https:// URL with a host")
    if parts.query or parts.fragment:
        raise ValueError("the URL must not contain a query string or a fragment")
    return url.rstrip("/")


def validate_header_name(name: str) -> str:
    """Raise ValueError unless ``name`` is a valid HTTP header name that carries no credential."""
    if not HEADER_NAME.fullmatch(name):
        raise ValueError(f"invalid HTTP header name {name!r}")
    if name.lower() in CREDENTIAL_HEADERS:
        raise ValueError(
            f"header {name!r} carries credentials; use bearer_token_file, "
            "basic_auth_password_file or header_files instead"
        )
    return name


def check_thanos_credentials(settings: ThanosSourceSettings) -> None:
    """Raise ValueError unless at most one way of authenticating is fully configured."""
    if settings.bearer_token_file is not None and settings.bearer_token_env is not None:
        raise ValueError("set either bearer_token_file or bearer_token_env, not both")
    if (
        settings.basic_auth_password_file is not None
        and settings.basic_auth_password_env is not None
    ):
        raise ValueError("set either basic_auth_password_file or basic_auth_password_env, not both")
    has_password = (
        settings.basic_auth_password_file is not None
        or settings.basic_auth_password_env is not None
    )
    has_bearer = settings.bearer_token_file is not None or settings.bearer_token_env is not None
    if has_password and settings.basic_auth_username is None:
        raise ValueError("a basic-auth password needs basic_auth_username")
    if settings.basic_auth_username is not None and not has_password:
        raise ValueError(
            "basic_auth_username needs basic_auth_password_file or basic_auth_password_env"
        )
    if has_bearer and settings.basic_auth_username is not None:
        raise ValueError("set either a bearer token or basic auth, not both")


SourceSettings = Annotated[CsvSourceSettings | ThanosSourceSettings, Field(discriminator="kind")]

Aggregation = Literal["mean", "max", "p50", "p90", "p95", "p99"]


class ForecastSettings(Frozen):
    """Forecast settings: model, model step, seasonality, horizon and quantiles."""

    model: str = Field(
        default="holt_winters",
        description="Registered model name (see forecaster.models) or 'auto'.",
    )
    step_seconds: int = Field(
        default=1800,
        gt=0,
        description="Model step; history is aggregated to it before fitting. A history with a "
        "coarser step is fitted at its own step instead.",
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
        default=56,
        ge=1,
        description="Rolling-origin forecasts whose residuals set the quantiles. Windows that "
        "do not fit a horizon apart in the history move closer together; with a one-day "
        "horizon and 28 days of history, 56 windows then start at different times of day "
        "instead of once a day at the same time.",
    )
    min_coverage: float = Field(
        default=0.8,
        ge=0,
        le=1,
        description="Below this share of observed grid points in the last "
        "coverage_window_seconds the data is reported as partial and the planner holds "
        "capacity. A model fitted on a history below it falls back to seasonal naive.",
    )
    min_history_coverage: float = Field(
        default=0.5,
        ge=0,
        le=1,
        description="Below this share of observed grid points over the whole history window "
        "the history is too sparse to plan on and the planner holds capacity.",
    )
    coverage_window_seconds: int = Field(
        default=21600,
        gt=0,
        description="Span before now over which the planner measures coverage (at most "
        "history_seconds). An older gap stays in the history, where the model fills it from "
        "earlier seasons, but no longer holds capacity once fresh data covers this span.",
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
