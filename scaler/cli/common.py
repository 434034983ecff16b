"""Shared pieces of the CLI: config loading, error reporting, logging, time parsing."""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pandas as pd
import typer
from rich.console import Console

from forecaster.errors import (
    ActionRejectedError,
    ConfigError,
    DataError,
    PeakcastError,
    TransientError,
)
from scaler.config_loader import load_settings
from scaler.logging_setup import configure_logging
from scaler.settings import Settings

# Without a terminal rich falls back to 80 columns, which folds the tables; 140 keeps them whole.
console = Console(width=None if sys.stdout.isatty() else 140)
error_console = Console(stderr=True, width=None if sys.stderr.isatty() else 140)

EXIT_CONFIG = 2
EXIT_DATA = 3
EXIT_TRANSIENT = 4
EXIT_REJECTED = 5

F = TypeVar("F", bound=Callable[..., Any])

ConfigOption = typer.Option(
    None,
    "--config",
    "-c",
    help="Path of the peakcast YAML config. Default: the embedded config/peakcast.yaml.",
)
VerboseOption = typer.Option(
    0, "--verbose", "-v", count=True, help="Log more: -v for decisions (INFO), -vv for DEBUG."
)
LogFormatOption = typer.Option("text", "--log-format", help="Log format on stderr: text or json.")


def exit_code_for(error: PeakcastError) -> int:
    """Map an error to the process exit code documented in the README."""
    if isinstance(error, ConfigError):
        return EXIT_CONFIG
    if isinstance(error, DataError):
        return EXIT_DATA
    if isinstance(error, TransientError):
        return EXIT_TRANSIENT
    if isinstance(error, ActionRejectedError):
        return EXIT_REJECTED
    return 1


def reports_errors(command: F) -> F:
    """Print a PeakcastError as one clear message and exit non-zero, without a traceback."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except PeakcastError as error:
            kind = "config error" if isinstance(error, ConfigError) else "error"
            for line in str(error).splitlines():
                error_console.print(f"[bold red]{kind}:[/] {line}", highlight=False, markup=True)
            raise typer.Exit(exit_code_for(error)) from None

    return wrapper  # type: ignore[return-value]


def setup(config: Path | None, verbose: int, log_format: str) -> Settings:
    """Configure logging and load the settings; the first step of every command."""
    if log_format not in ("text", "json"):
        raise ConfigError("--log-format", log_format, "text or json")
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    configure_logging(level, json_output=log_format == "json", stream=sys.stderr)
    return load_settings(config)


def parse_timestamp(value: str, zone: str, option: str = "--at") -> pd.Timestamp:
    """Parse an ISO 8601 timestamp; one without an offset is read in ``zone``."""
    try:
        stamp = pd.Timestamp(value)
    except ValueError:
        raise ConfigError(
            option, value, "an ISO 8601 timestamp such as 2024-05-01T14:00:00"
        ) from None
    if stamp.tzinfo is None:
        stamp = stamp.tz_localize(zone, ambiguous="raise", nonexistent="shift_forward")
    return stamp.tz_convert("UTC")
