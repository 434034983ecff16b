"""Fetch time and memory of the thanos source against a real, local Prometheus server.

Backfills 30 days of 1-minute samples for 10 GPU-utilisation series with promtool, starts
Prometheus on 127.0.0.1, and measures:

- the chunked fetch of all 10 series at a 1-minute step (43,200 points each, 4 requests),
  with and without the staleness check;
- 10 workload fetches of one series each at a 1-minute step;
- one unchunked request for the same data at a 5-minute step (8,640 points each), sent
  with plain requests and through the source.

Results go to stdout and to the thanos-fetch section of docs/BENCHMARKS.md. Needs the
Debian package ``prometheus`` (prometheus and promtool on PATH).

    .venv/bin/python bench/thanos_fetch.py
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import resource
import shlex
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the Prometheus fixture lives in tests/, which is not installed
from bench.sections import write_section  # noqa: E402
from forecaster.settings import ThanosSourceSettings  # noqa: E402
from forecaster.sources.thanos import ThanosSource  # noqa: E402
from tests.servers.prometheus import PrometheusServer, Series  # noqa: E402

logger = logging.getLogger("bench.thanos_fetch")

START_MARKER = "<!-- thanos-fetch:start -->"
END_MARKER = "<!-- thanos-fetch:end -->"
START = pd.Timestamp("2024-01-01T00:00:00Z")
DAYS = 30
SERIES = 10
MINUTE = pd.Timedelta(minutes=1)
FIVE_MINUTES = pd.Timedelta(minutes=5)
METRIC = "bench_gpu_util"
# Plain Prometheus keeps raw data only, so every chunk is read at raw resolution.
RAW_EVERYWHERE_SECONDS = 100 * 365 * 86_400


@dataclass(frozen=True)
class Measurement:
    """Median wall time of the repeats, and the peak memory tracemalloc saw in one run."""

    name: str
    requests: int
    points: int
    seconds: float
    traced_peak_mib: float


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="Timed runs per measurement.")
    parser.add_argument(
        "--output",
        type=Path,
        default=ROOT / "docs" / "BENCHMARKS.md",
        help="Markdown file whose thanos-fetch section is replaced.",
    )
    parser.add_argument("--no-write", action="store_true", help="Only print the section.")
    return parser.parse_args(argv)


def bench_series() -> list[Series]:
    """Build 10 series with a daily cycle and noise, one sample per minute for 30 days."""
    points = DAYS * 1440
    minutes = np.arange(points)
    times = START.value / 1e9 + 60.0 * minutes
    generator = np.random.default_rng(7)
    series = []
    for number in range(SERIES):
        daily = 30 * np.sin(2 * np.pi * minutes / 1440 + number / 3)
        values = np.round(50 + daily + generator.normal(0, 3, points), 2)
        series.append(Series(METRIC, {"gpu": str(number)}, times, values))
    return series


def measure(name: str, repeats: int, run: Callable[[], tuple[int, int]]) -> Measurement:
    """Time ``repeats`` runs of ``run``, then trace the memory of one more run.

    ``run`` returns (requests sent, grid points per series). Memory is traced in a separate
    run because tracemalloc slows allocation-heavy code down.
    """
    seconds = []
    sent, points = 0, 0
    for _ in range(repeats):
        started = time.perf_counter()
        sent, points = run()
        seconds.append(time.perf_counter() - started)
    tracemalloc.start()
    run()
    peak_mib = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    measurement = Measurement(name, sent, points, statistics.median(seconds), peak_mib)
    print(
        f"{name}: {measurement.seconds:.3f} s, traced peak {measurement.traced_peak_mib:.0f} MiB",
        file=sys.stderr,
    )
    return measurement


def run_benchmarks(server: PrometheusServer, repeats: int) -> list[Measurement]:
    end = START + (DAYS * 1440 - 1) * MINUTE
    settings = ThanosSourceSettings(
        kind="thanos",
        url=server.url,
        raw_resolution_max_age_seconds=RAW_EVERYWHERE_SECONDS,
        five_minute_resolution_max_age_seconds=RAW_EVERYWHERE_SECONDS,
    )
    unchecked = settings.model_copy(update={"stale_after_seconds": None})
    now = end + MINUTE
    results = []
    with (
        ThanosSource(settings, clock=lambda: now) as source,
        ThanosSource(unchecked, clock=lambda: now) as source_unchecked,
    ):

        def fetch_all(thanos: ThanosSource, step: pd.Timedelta) -> tuple[int, int]:
            frame, report = thanos.fetch_frame("bench", METRIC, START, end, step)
            if frame.shape[1] != SERIES or report.partial:
                raise RuntimeError(f"expected {SERIES} complete series, got {report.summary()}")
            return len(report.chunks), report.points

        def workloads() -> tuple[int, int]:
            sent, points = 0, 0
            for number in range(SERIES):
                query = f'{METRIC}{{gpu="{number}"}}'
                _, report = source.fetch_with_report(f"gpu-{number}", query, START, end, MINUTE)
                sent += len(report.chunks)
                points = report.points
            return sent, points

        def plain_request() -> tuple[int, int]:
            params: dict[str, str | int] = {
                "query": METRIC,
                "start": START.value // 10**9,
                "end": end.floor(FIVE_MINUTES).value // 10**9,
                "step": 300,
            }
            response = requests.get(f"{server.url}/api/v1/query_range", params=params, timeout=60)
            result = response.json()["data"]["result"]
            return 1, len(result[0]["values"])

        results.append(
            measure("10 series, 1 min step, chunked", repeats, lambda: fetch_all(source, MINUTE))
        )
        results.append(
            measure(
                "10 series, 1 min step, chunked, no staleness check",
                repeats,
                lambda: fetch_all(source_unchecked, MINUTE),
            )
        )
        results.append(measure("10 workload fetches of 1 series, 1 min step", repeats, workloads))
        results.append(
            measure("10 series, 5 min step, one request (requests)", repeats, plain_request)
        )
        results.append(
            measure(
                "10 series, 5 min step, one request (source)",
                repeats,
                lambda: fetch_all(source, FIVE_MINUTES),
            )
        )
    return results


def render(
    results: list[Measurement], backfill_seconds: float, samples: int, command: str, repeats: int
) -> str:
    lines = [
        START_MARKER,
        "## Thanos fetch (real Prometheus server)",
        "",
        f"Command: `{command}`",
        "",
        f"Machine: {os.cpu_count()} CPUs (shared with the Prometheus server), Python "
        f"{platform.python_version()}, {platform.system()} {platform.machine()}; process peak "
        f"RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB.",
        "",
        f"Data: {SERIES} series x {DAYS} days x 1 min ({samples:,} samples), backfilled with "
        f"`promtool tsdb create-blocks-from openmetrics` in {backfill_seconds:.1f} s, served by "
        "the Debian `prometheus` package on 127.0.0.1. Times are the median of "
        f"{repeats} runs and include JSON decoding, stitching and classification. Memory is "
        "the peak traced by tracemalloc during one more, untimed run (Python and NumPy "
        "allocations).",
        "",
        "| fetch | requests | points per series | time s | traced peak MiB |",
        "|---|---|---|---|---|",
    ]
    for result in results:
        lines.append(
            f"| {result.name} | {result.requests} | {result.points:,} | {result.seconds:.3f} "
            f"| {result.traced_peak_mib:.0f} |"
        )
    lines += ["", END_MARKER]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="peakcast-bench-") as workdir:
        server = PrometheusServer.from_path(Path(workdir))
        started = time.perf_counter()
        samples = server.backfill(bench_series())
        backfill_seconds = time.perf_counter() - started
        with server:
            results = run_benchmarks(server, args.repeats)

    arguments = sys.argv[1:] if argv is None else list(argv)
    command = " ".join(["python bench/thanos_fetch.py", *map(shlex.quote, arguments)])
    section = render(results, backfill_seconds, samples, command.strip(), args.repeats)
    print(section)
    if not args.no_write:
        write_section(args.output, section, START_MARKER, END_MARKER)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
