"""History source for a CSV trace: one timestamp column and numeric value columns.

The file (plain ``.csv`` or gzip ``.csv.gz``) is read once per ``CsvSource`` and kept in
memory. Each value column is cleaned once over the whole file, so a sample gets the same
verdict whatever window is fetched, and every fetch places the window on the UTC grid.
"""

from __future__ import annotations

import gzip
import logging
import threading
import zlib
from dataclasses import dataclass, replace

import pandas as pd

from forecaster.cleaning import DEFAULT_SPIKE_RULE, Cleaned, SpikeRule, clean
from forecaster.errors import ConfigError, DataError
from forecaster.history import CleaningReport, History
from forecaster.settings import CsvSourceSettings
from forecaster.timegrid import (
    InvalidTimestampError,
    ParsedTimestamps,
    as_utc,
    describe_regrid,
    infer_step,
    parse_timestamps,
    period_in_utc,
    snap_jitter,
    to_grid,
)

logger = logging.getLogger(__name__)

ALL_COLUMNS = "*"


@dataclass(frozen=True)
class _Table:
    """The file as read: raw value columns, their UTC timestamps and the trace's own step."""

    frame: pd.DataFrame
    times: ParsedTimestamps
    sample_step: pd.Timedelta | None


class CsvSource:
    """Serve the columns of one CSV trace as regular-grid histories.

    ``key_prefix`` is the config path of these settings, such as ``sources.servegen``, and
    errors about a setting name its full key with it. ``spike_rule`` None turns spike removal
    off. The file is read on the first ``fetch`` or ``bounds`` call, not here.
    """

    def __init__(
        self,
        settings: CsvSourceSettings,
        *,
        key_prefix: str = "",
        spike_rule: SpikeRule | None = DEFAULT_SPIKE_RULE,
    ) -> None:
        self._settings = settings
        self._key_prefix = key_prefix
        self._spike_rule = spike_rule
        self._lock = threading.Lock()
        self._table: _Table | None = None
        self._cleaned: dict[str, Cleaned] = {}

    def fetch(
        self,
        name: str,
        series: str,
        start: pd.Timestamp | None = None,
        end: pd.Timestamp | None = None,
        step: pd.Timedelta | None = None,
    ) -> History:
        """Read column ``series`` onto the grid points in [start, end] at ``step``.

        ``start`` and ``end`` default to the first and last row, and ``step`` to the trace's
        own step (the median spacing of its timestamps). Grid points outside the file are
        NaN. The report counts the cleaning changes inside the fetched window.
        """
        table = self._load()
        cleaned = self._clean(series, table)
        grid_step = step if step is not None else self._own_step(table)
        values = to_grid(
            cleaned.values,
            grid_step,
            start=None if start is None else as_utc(start),
            end=None if end is None else as_utc(end),
            sample_step=table.sample_step,
        )

        notes = list(table.times.notes)
        regrid = describe_regrid(grid_step, table.sample_step)
        if regrid is not None:
            notes.append(regrid)
        report = _window_report(cleaned, pd.DatetimeIndex(values.index), grid_step, notes)
        history = History(name, values.rename(name), grid_step, report)
        logger.debug(
            "%s: %s column %r gave %d grid points at %s, coverage %.3f",
            name,
            self._settings.path,
            series,
            len(values),
            grid_step,
            history.coverage,
        )
        return history

    def bounds(self, series: str) -> tuple[pd.Timestamp, pd.Timestamp] | None:
        """Return the first and last timestamp of the file's rows, or None for an empty file.

        The span is the same for every column, whether or not ``series`` has a value there.
        """
        table = self._load()
        self._check_column(series, table.frame)
        if len(table.times.utc) == 0:
            return None
        return table.times.utc.min(), table.times.utc.max()

    def sample_step(self) -> pd.Timedelta | None:
        """Return the trace's own step (the median spacing of its timestamps), if it has one."""
        return self._load().sample_step

    def columns(self) -> list[str]:
        """Return the value columns of the file, in file order."""
        return list(self._load().frame.columns)

    def _key(self, field: str) -> str:
        return f"{self._key_prefix}.{field}" if self._key_prefix else field

    def _load(self) -> _Table:
        with self._lock:
            if self._table is None:
                self._table = self._read_table()
            return self._table

    def _read_table(self) -> _Table:
        frame = self._read_frame()
        timestamp_column = self._settings.timestamp_column
        if timestamp_column not in frame.columns:
            allowed = f"a column of {self._settings.path}: {', '.join(map(str, frame.columns))}"
            if _looks_like_data(frame.columns):
                allowed += (
                    ". Those names look like values, so the file may lack its header row; add "
                    "one with the timestamp column and the value columns"
                )
            raise ConfigError(self._key("timestamp_column"), timestamp_column, allowed)
        values = frame.drop(columns=[timestamp_column])
        self._check_missing_value_keys(values)
        try:
            times = parse_timestamps(frame[timestamp_column], self._settings.timezone)
        except InvalidTimestampError as error:
            raise DataError(
                f"{self._settings.path}: column {timestamp_column!r}, {error}"
            ) from error

        sample_step = infer_step(times.utc) if times.utc.nunique() > 1 else None
        if sample_step is not None:
            snapped, note = snap_jitter(times.utc, sample_step)
            if note is not None:
                times = replace(times, utc=snapped, notes=(*times.notes, note))
        logger.info(
            "read %d rows of %s (value columns: %s, sample step %s)",
            len(frame),
            self._settings.path,
            ", ".join(map(str, values.columns)),
            sample_step,
        )
        return _Table(values, times, sample_step)

    def _read_frame(self) -> pd.DataFrame:
        path = self._settings.path
        try:
            # Keep the timestamps as text so that parse_timestamps applies the zone rules.
            return pd.read_csv(path, dtype={self._settings.timestamp_column: "str"})
        except FileNotFoundError:
            raise ConfigError(
                self._key("path"), str(path), "an existing CSV file (.csv or .csv.gz)"
            ) from None
        except pd.errors.EmptyDataError as error:
            raise DataError(
                f"{path}: the file is empty. Write a header row with the timestamp column "
                "and one row per sample"
            ) from error
        except (pd.errors.ParserError, UnicodeDecodeError, EOFError, zlib.error) as error:
            raise DataError(f"{path}: not a readable CSV file: {error}") from error
        except gzip.BadGzipFile as error:
            raise DataError(f"{path}: not a valid gzip file: {error}") from error
        except OSError as error:
            raise ConfigError(
                self._key("path"), str(path), f"a readable CSV file ({error.strerror})"
            ) from error

    def _check_missing_value_keys(self, values: pd.DataFrame) -> None:
        for column in self._settings.missing_values:
            if column != ALL_COLUMNS and column not in values.columns:
                raise ConfigError(
                    self._key("missing_values"),
                    column,
                    f"'{ALL_COLUMNS}' or a value column of {self._settings.path}: "
                    f"{', '.join(map(str, values.columns))}",
                )

    def _check_column(self, series: str, frame: pd.DataFrame) -> None:
        if series not in frame.columns:
            raise ConfigError(
                "series",
                series,
                f"a value column of {self._settings.path} "
                f"({self._key('path')}): {', '.join(map(str, frame.columns))}",
            )

    def _clean(self, series: str, table: _Table) -> Cleaned:
        self._check_column(series, table.frame)
        with self._lock:
            if series not in self._cleaned:
                samples = pd.Series(
                    self._numbers(series, table.frame[series]).to_numpy(),
                    index=table.times.utc,
                )
                self._cleaned[series] = clean(
                    samples,
                    missing_values=self._missing_values(series),
                    missing_periods=self._missing_periods(),
                    spike_rule=self._spike_rule,
                )
            return self._cleaned[series]

    def _numbers(self, series: str, column: pd.Series) -> pd.Series:
        """Convert a column to floats. An empty cell becomes NaN, and other text raises."""
        numbers = pd.to_numeric(column, errors="coerce").astype(float)
        invalid = (numbers.isna() & column.notna()).to_numpy()
        if invalid.any():
            position = int(invalid.argmax())
            raise DataError(
                f"{self._settings.path}: column {series!r}, data row {position + 1}: "
                f"invalid number {column.iloc[position]!r}. Leave the cell empty for 'no data'"
            )
        return numbers

    def _missing_values(self, series: str) -> list[float]:
        declared = self._settings.missing_values
        return [*declared.get(series, []), *declared.get(ALL_COLUMNS, [])]

    def _missing_periods(self) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
        zone = self._settings.timezone
        return [
            period_in_utc(period.start, period.end, zone)
            for period in self._settings.missing_periods
        ]

    def _own_step(self, table: _Table) -> pd.Timedelta:
        if table.sample_step is None:
            raise DataError(
                f"{self._settings.path}: fewer than two distinct timestamps, so the trace has "
                "no step of its own; request a step explicitly"
            )
        return table.sample_step


def _looks_like_data(columns: pd.Index) -> bool:
    """Tell whether header names read as numbers or times, as a first data row would."""
    names = [str(name).strip() for name in columns]
    numbers = pd.to_numeric(pd.Series(names), errors="coerce").notna()
    times = pd.to_datetime(pd.Series(names), errors="coerce", format="ISO8601").notna()
    return bool(len(names)) and bool((numbers | times).mean() >= 0.5)


def _window_report(
    cleaned: Cleaned, grid: pd.DatetimeIndex, step: pd.Timedelta, notes: list[str]
) -> CleaningReport:
    """Count the cleaning changes at samples that fall into the grid's steps."""
    counts = CleaningReport()
    if len(grid) > 0:
        counts = cleaned.report_between(grid[0], grid[-1] + step)
    return counts.merged(CleaningReport(notes=tuple(notes)))
