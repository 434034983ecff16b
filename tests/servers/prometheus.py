"""A real Prometheus server for tests, with history backfilled through promtool.

The server is the Debian package's ``prometheus`` binary, started by hand on a free
127.0.0.1 port with its own TSDB folder. Its retention is 200 years, so backfilled history
of any age survives start-up, which the default of 15 days would delete. History is written as
OpenMetrics and turned into blocks with ``promtool tsdb create-blocks-from openmetrics``
before the server starts; backfilling a running server restarts it, because Prometheus does
not load new blocks right away.

Typical use in a test module::

    server = PrometheusServer.from_path(tmp_path)
    server.backfill([Series("gpu_util", {"node": "a"}, timestamps, values)])
    server.start()
    ...
    server.stop()

``backfill_csv_trace`` loads a column of a bundled trace in ``data/`` as a gauge.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import numpy as np
import pandas as pd
import requests

from forecaster.timegrid import as_utc

logger = logging.getLogger(__name__)

READY_TIMEOUT_SECONDS = 30.0
STOP_TIMEOUT_SECONDS = 10.0
# Backfilled blocks may span up to 31 days. With the default 2 h blocks, 30 days of
# 1-minute samples for 10 series take about a minute to backfill instead of about a second.
MAX_BLOCK_DURATION = "744h"
RETENTION = "200y"
EMPTY_CONFIG = "global: {}\n"


class PrometheusUnavailable(RuntimeError):
    """The prometheus or promtool binary is not installed."""


@dataclass(frozen=True)
class Binaries:
    prometheus: Path
    promtool: Path


def find_binaries() -> Binaries | None:
    """Return the prometheus and promtool executables on PATH, or None if either is missing."""
    prometheus = shutil.which("prometheus")
    promtool = shutil.which("promtool")
    if prometheus is None or promtool is None:
        return None
    return Binaries(Path(prometheus), Path(promtool))


@dataclass(frozen=True)
class Series:
    """Samples of one series to backfill; a NaN value leaves that sample out (a gap).

    ``timestamps`` are Unix epoch seconds. ``kind`` is the OpenMetrics type; counters are
    written as ``unknown``, because OpenMetrics counters need the ``_total`` suffix rules and
    PromQL treats both the same way.
    """

    name: str
    labels: Mapping[str, str]
    timestamps: np.ndarray
    values: np.ndarray
    kind: str = "gauge"

    def __post_init__(self) -> None:
        if len(self.timestamps) != len(self.values):
            raise ValueError(
                f"series {self.name}: {len(self.timestamps)} timestamps but "
                f"{len(self.values)} values"
            )

    def present(self) -> pd.Series:
        """Return the samples that are written, indexed by UTC time."""
        values = np.asarray(self.values, dtype=float)
        keep = ~np.isnan(values)
        index = pd.to_datetime(np.asarray(self.timestamps, dtype=float)[keep], unit="s", utc=True)
        return pd.Series(values[keep], index=index)


def write_openmetrics(series: Iterable[Series], path: Path) -> int:
    """Write ``series`` as an OpenMetrics file and return the number of samples written.

    Series of the same metric name are written under one family, as OpenMetrics requires.
    """
    families: dict[str, list[Series]] = {}
    for item in series:
        families.setdefault(item.name, []).append(item)

    written = 0
    with path.open("w", encoding="utf-8") as out:
        for name, members in families.items():
            kind = "unknown" if members[0].kind == "counter" else members[0].kind
            out.write(f"# TYPE {name} {kind}\n")
            for member in members:
                written += _write_samples(out, member)
        out.write("# EOF\n")
    return written


def _write_samples(out: TextIO, series: Series) -> int:
    labels = ",".join(f'{key}="{_escape(value)}"' for key, value in series.labels.items())
    prefix = f"{series.name}{{{labels}}}" if labels else series.name
    lines = []
    for stamp, value in zip(series.timestamps, series.values, strict=True):
        if math.isnan(value):
            continue
        lines.append(f"{prefix} {_number(float(value))} {_number(float(stamp))}\n")
    out.write("".join(lines))
    return len(lines)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class PrometheusServer:
    """One Prometheus process with its own TSDB folder under ``workdir``."""

    binaries: Binaries
    workdir: Path
    lookback_delta: str | None = None
    port: int = 0
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    _backfill_count: int = 0

    @classmethod
    def from_path(cls, workdir: Path, lookback_delta: str | None = None) -> PrometheusServer:
        """Create a server in ``workdir``; raise PrometheusUnavailable without the binaries."""
        binaries = find_binaries()
        if binaries is None:
            raise PrometheusUnavailable(
                "prometheus and promtool are not on PATH; install the Debian package "
                "'prometheus' (apt-get install prometheus)"
            )
        workdir.mkdir(parents=True, exist_ok=True)
        return cls(binaries, workdir, lookback_delta)

    @property
    def data_dir(self) -> Path:
        return self.workdir / "data"

    @property
    def url(self) -> str:
        if not self.port:
            raise RuntimeError("the Prometheus server has not been started")
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def backfill(self, series: Iterable[Series]) -> int:
        """Write ``series`` into the TSDB and return the sample count; restarts a running server."""
        self._backfill_count += 1
        source = self.workdir / f"backfill-{self._backfill_count}.om"
        written = write_openmetrics(series, source)
        was_running = self.running
        if was_running:
            self.stop()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        command = [
            str(self.binaries.promtool),
            "tsdb",
            "create-blocks-from",
            "openmetrics",
            f"--max-block-duration={MAX_BLOCK_DURATION}",
            str(source),
            str(self.data_dir),
        ]
        completed = subprocess.run(command, capture_output=True, text=True, check=False)
        if completed.returncode != 0:
            raise RuntimeError(
                f"promtool backfill of {source} failed with exit code {completed.returncode}: "
                f"{completed.stderr.strip() or completed.stdout.strip()}"
            )
        source.unlink()
        if was_running:
            self.start()
        return written

    def start(self) -> None:
        """Start the server on a free loopback port and wait until it reports ready."""
        if self.running:
            return
        self.data_dir.mkdir(parents=True, exist_ok=True)
        config = self.workdir / "prometheus.yml"
        config.write_text(EMPTY_CONFIG, encoding="utf-8")
        self.port = free_port()
        command = [
            str(self.binaries.prometheus),
            f"--config.file={config}",
            f"--storage.tsdb.path={self.data_dir}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            f"--storage.tsdb.retention.time={RETENTION}",
        ]
        if self.lookback_delta is not None:
            command.append(f"--query.lookback-delta={self.lookback_delta}")
        log = (self.workdir / "prometheus.log").open("ab")
        self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        logger.info("started prometheus (pid %d) on %s", self.process.pid, self.url)
        self._wait_ready()

    def stop(self) -> None:
        """Stop the server started here, by its PID, and wait for it to exit."""
        process = self.process
        if process is None:
            return
        if process.poll() is None:
            os.kill(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                os.kill(process.pid, signal.SIGKILL)
                process.wait(timeout=STOP_TIMEOUT_SECONDS)
        logger.info("stopped prometheus (pid %d)", process.pid)
        self.process = None

    def log_tail(self, lines: int = 20) -> str:
        log = self.workdir / "prometheus.log"
        if not log.exists():
            return ""
        return "\n".join(log.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        session = requests.Session()
        session.trust_env = False  # loopback only, never through a proxy
        try:
            while time.monotonic() < deadline:
                if not self.running:
                    raise RuntimeError(f"prometheus exited during start-up:\n{self.log_tail()}")
                try:
                    if session.get(f"{self.url}/-/ready", timeout=1).status_code == 200:
                        return
                except requests.RequestException:
                    pass
                time.sleep(0.05)
        finally:
            session.close()
        self.stop()
        raise RuntimeError(
            f"prometheus was not ready after {READY_TIMEOUT_SECONDS:.0f} s:\n{self.log_tail()}"
        )

    def __enter__(self) -> PrometheusServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def backfill_csv_trace(
    server: PrometheusServer,
    csv_path: Path,
    column: str,
    metric_name: str,
    *,
    labels: Mapping[str, str] | None = None,
    timestamp_column: str = "timestamp",
    start_at: pd.Timestamp | None = None,
) -> pd.Series:
    """Backfill one column of a CSV trace as a gauge and return the samples written.

    Timestamps without an offset are read as UTC. An empty cell is a gap, not a zero.
    ``start_at`` shifts the whole trace so its first row lands there, for traces whose clock
    is nominal (1970) or that should look recent. The returned series is indexed by the UTC
    times written.
    """
    frame = pd.read_csv(csv_path, usecols=[timestamp_column, column])
    times = pd.to_datetime(frame[timestamp_column], utc=True, format="ISO8601")
    if start_at is not None:
        times = times + (as_utc(start_at) - times.iloc[0])
    values = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=float)
    seconds = pd.DatetimeIndex(times).as_unit("ns").asi8 / 1e9
    series = Series(metric_name, dict(labels or {}), seconds, values)
    server.backfill([series])
    return series.present()
