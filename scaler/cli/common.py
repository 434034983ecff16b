"""Shared pieces of the CLI: config loading, error reporting, logging, time parsing."""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from forecaster.errors import (
    ActionRejectedError,
    ConfigError,
    DataError,
    PeakcastError,
    TransientError,
)
from scaler.config_loader import ConfigErrors, load_settings
from scaler.logging_setup import configure_logging
from scaler.settings import Settings

if TYPE_CHECKING:
    import pandas as pd

# Without a terminal rich falls back to 80 columns, which folds the tables; 140 keeps them whole.
console = Console(width=None if sys.stdout.isatty() else 140)
error_console = Console(stderr=True, width=None if sys.stderr.isatty() else 140)

EXIT_CONFIG = 2
EXIT_DATA = 3
EXIT_TRANSIENT = 4
EXIT_REJECTED = 5
# ``peakcast run --once`` applied no cycle: another replica holds the Lease, or the cycle was
# not applied (the log gives the reason). Not an error of a remote API, so not EXIT_TRANSIENT.
EXIT_NOT_APPLIED = 6

F = TypeVar("F", bound=Callable[..., Any])

ConfigOption = typer.Option(
    None,
    "--config",
    "-c",
    help="Path of the peakcast YAML config. Default: config/peakcast.yaml in the working "
    "directory, else the one of the source checkout.",
)
VerboseOption = typer.Option(
    0,
    "--verbose",
    "-v",
    count=True,
    metavar="",
    help="Log more: -v for decisions (INFO), -vv for DEBUG.",
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
            print_error(error)
            raise typer.Exit(exit_code_for(error)) from None

    return wrapper  # type: ignore[return-value]


def error_label(error: PeakcastError) -> str:
    """Return the label of an error message: ``config error`` or ``error``.

    An invalid command-line option (a key starting with ``--``) is labelled ``error``, except
    ``--config``, whose errors (missing file, invalid YAML) are about the config file.
    """
    if not isinstance(error, ConfigError):
        return "error"
    if error.key.startswith("--") and error.key != "--config":
        return "error"
    return "config error"


def print_error(error: PeakcastError) -> None:
    """Print ``error`` on stderr: the label once per error, continuation lines indented.

    The text is escaped, so brackets in user text (``workloads[llama-70b]``) are printed as
    they are and not read as Rich markup. Rich does not wrap the lines, so paths stay whole.
    """
    parts: list[PeakcastError] = list(error.errors) if isinstance(error, ConfigErrors) else [error]
    for part in parts:
        label = error_label(part)
        first, *rest = str(part).splitlines() or [""]
        error_console.print(
            f"[bold red]{label}:[/] {escape(first)}", highlight=False, soft_wrap=True
        )
        indent = " " * (len(label) + 2)
        for line in rest:
            error_console.print(f"{indent}{escape(line)}", highlight=False, soft_wrap=True)


def setup(config: Path | None, verbose: int, log_format: str) -> Settings:
    """Configure logging and load the settings; the first step of every command."""
    if log_format not in ("text", "json"):
        raise ConfigError("--log-format", log_format, "text or json")
    if verbose == 0:
        level = logging.WARNING
    elif verbose == 1:
        level = logging.INFO
    else:
        level = logging.DEBUG
    configure_logging(level, json_output=log_format == "json", stream=sys.stderr)
    return load_settings(config)


def parse_timestamp(value: str, zone: str, option: str = "--at") -> pd.Timestamp:
    """Parse an ISO 8601 timestamp; one without an offset is read in ``zone``."""
    import pandas as pd

    expected = "an ISO 8601 timestamp such as 2024-05-01T14:00:00"
    try:
        stamp = pd.Timestamp(value)
    except ValueError:
        raise ConfigError(option, value, expected) from None
    # pandas reads '', 'nan' and 'NaT' as NaT, which no later comparison or range accepts.
    if pd.isna(stamp):
        raise ConfigError(option, value, expected)
    if stamp.tzinfo is None:
        try:
            stamp = stamp.tz_localize(zone, ambiguous="raise", nonexistent="shift_forward")
        except ValueError:
            # Only a local time in the hour repeated when the clocks go back gets here.
            earlier = stamp.tz_localize(zone, ambiguous=True).isoformat()
            later = stamp.tz_localize(zone, ambiguous=False).isoformat()
            raise ConfigError(
                option,
                value,
                f"a time that occurs once in {zone}. This local time occurs twice because "
                f"the clocks go back, so give its UTC offset: {earlier} or {later}",
            ) from None
    return stamp.tz_convert("UTC")
