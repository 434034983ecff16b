"""Cost of one full planning cycle as the number of workloads grows.

A full cycle is what the service does at a scheduled refit: read every workload's history
from its source, fit and calibrate the forecaster (in a process pool), predict, build the
requirement schedule and decide the floors. The cheap cycle that runs between refits only
feeds new observations to the fitted forecasters and predicts again; it is timed too.

Histories are synthetic (a daily and weekly cycle with noise, a different level per workload)
and read from one CSV file through the csv source, 30 days at 5 minutes. Speed does not depend
on the values, so synthetic series are honest here; accuracy is measured on real traces by
bench/forecast_accuracy.py.

    .venv/bin/python bench/cycle_scale.py --workloads 10,50,100
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import resource
import shlex
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.sections import write_section
from forecaster.batch import fit_many
from forecaster.engine import FittedForecaster
from scaler.config_loader import parse_settings
from scaler.core.capacity import Fleet
from scaler.core.policy import Floors, PolicyState, assess_history, decide
from scaler.core.requirements import requirements_from_forecasts
from scaler.histories import HistoryLoader
from scaler.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
START_MARKER = "<!-- cycle-scale:start -->"
END_MARKER = "<!-- cycle-scale:end -->"
STEP = pd.Timedelta(minutes=5)
WORKLOADS_PER_POOL = 10


@dataclass(frozen=True)
class CycleTiming:
    workloads: int
    read_seconds: float
    fit_seconds: float
    plan_seconds: float
    update_seconds: float
    peak_rss_mib: float

    @property
    def full_seconds(self) -> float:
        return self.read_seconds + self.fit_seconds + self.plan_seconds


def synthetic_trace(workloads: int, days: int, seed: int = 0) -> pd.DataFrame:
    """Return one column per workload: daily and weekly cycles with noise, never negative."""
    index = pd.date_range("2026-01-01", periods=int(days * pd.Timedelta(days=1) / STEP), freq=STEP)
    hours = np.asarray((index - index[0]) / pd.Timedelta(hours=1))
    rng = np.random.default_rng(seed)
    columns = {}
    for number in range(workloads):
        level = rng.uniform(20, 400)
        daily = 0.4 * np.sin(2 * np.pi * (hours - rng.uniform(0, 24)) / 24)
        weekly = 0.15 * np.sin(2 * np.pi * hours / 168)
        noise = rng.normal(0, 0.08, len(index))
        columns[f"w{number:03d}"] = np.maximum(level * (1 + daily + weekly + noise), 0).round(3)
    frame = pd.DataFrame(columns, index=index)
    frame.index.name = "timestamp"
    return frame


def fleet_config(trace: Path, workloads: int) -> Settings:
    """Build a config with ``workloads`` workloads, ten to a burst pool."""
    pools = [
        {
            "name": f"pool-{number:02d}",
            "kind": "burst",
            "gpus_per_node": 8,
            "min_nodes": 0,
            "max_nodes": 200,
            "node_provisioning_seconds": 900,
            "price_per_node_hour": 40.0,
        }
        for number in range((workloads + WORKLOADS_PER_POOL - 1) // WORKLOADS_PER_POOL)
    ]
    raw = {
        "sources": {"trace": {"kind": "csv", "path": str(trace)}},
        "forecast": {"season_lengths_seconds": [86_400, 604_800]},
        "pools": pools,
        "workloads": [
            {
                "name": f"w{number:03d}",
                "demand": {
                    "source": "trace",
                    "series": f"w{number:03d}",
                    "unit": "requests_per_second",
                },
                "capacity": {
                    "throughput_per_replica": 20.0,
                    "gpus_per_replica": 1,
                    "max_replicas": 500,
                },
                "pools": [pools[number // WORKLOADS_PER_POOL]["name"]],
            }
            for number in range(workloads)
        ],
    }
    return parse_settings(raw, trace.parent)


def time_cycle(settings: Settings, workers: int) -> CycleTiming:
    """Run one full cycle and one cheap (update and predict) cycle; return their timings."""
    loader = HistoryLoader(settings)
    started = time.perf_counter()
    span = loader.bounds(settings.workloads[0])
    assert span is not None  # a CSV trace always has bounds
    now = span[1]
    last_hour = now - pd.Timedelta(hours=1)
    histories = {w.name: loader.load_until(w, last_hour) for w in settings.workloads}
    read = time.perf_counter() - started

    started = time.perf_counter()
    fitted = fit_many(settings.forecast, list(histories.values()), max_workers=workers)
    fit = time.perf_counter() - started

    started = time.perf_counter()
    forecasts = {}
    for name, result in fitted.items():
        if not isinstance(result, FittedForecaster):
            raise RuntimeError(f"workload {name} could not be fitted: {result}")
        forecasts[name] = result.predict()
    plan(settings, forecasts, histories, last_hour)
    plan_seconds = time.perf_counter() - started

    newer = {w.name: loader.load_until(w, now) for w in settings.workloads}
    started = time.perf_counter()
    updated = {name: result.update(newer[name]).predict() for name, result in fitted.items()}  # type: ignore[union-attr]
    plan(settings, updated, newer, now)
    update = time.perf_counter() - started

    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return CycleTiming(
        len(settings.workloads), read, fit, plan_seconds, update, max(own, children) / 1024
    )


def plan(settings: Settings, forecasts: dict, histories: dict, now: pd.Timestamp) -> None:
    """Build requirements and decide every floor, as one cycle of the service does."""
    requirements = requirements_from_forecasts(
        settings, Fleet(settings.pools, settings.workloads), forecasts
    )
    data = [assess_history(histories[w.name], now, settings) for w in settings.workloads]
    decide(now, requirements, Floors(), PolicyState(), data, settings, log_level=logging.DEBUG)


def render(timings: list[CycleTiming], days: int, workers: int, command: str) -> str:
    lines = [
        START_MARKER,
        "## Planning cycle cost by number of workloads",
        "",
        f"Command: `{command}`",
        "",
        f"Machine: {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"{platform.system()} {platform.machine()}; fitting uses {workers} worker processes.",
        "",
        f"Data: synthetic daily + weekly series, {days} days at 5 minutes per workload "
        "(8,640 points), read from one CSV through the csv source; default forecast settings "
        "(Holt-Winters on 30-minute steps, conformal quantiles). A full cycle reads, fits, "
        "calibrates, predicts and plans; the cheap cycle between refits updates and predicts.",
        "",
        "| workloads | read s | fit s | predict + plan s | full cycle s | per workload s | "
        "update cycle s | peak RSS MiB |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for timing in timings:
        lines.append(
            f"| {timing.workloads} | {timing.read_seconds:.2f} | {timing.fit_seconds:.2f} | "
            f"{timing.plan_seconds:.2f} | {timing.full_seconds:.2f} | "
            f"{timing.full_seconds / timing.workloads:.3f} | {timing.update_seconds:.2f} | "
            f"{timing.peak_rss_mib:.0f} |"
        )
    largest = timings[-1]
    verdict = "meets" if largest.full_seconds < 60 and largest.peak_rss_mib < 1024 else "misses"
    lines += [
        "",
        f"Target: a full cycle for 100 workloads under 60 s and under 1 GiB; the largest run "
        f"({largest.workloads} workloads) {verdict} it. Peak RSS is the larger of this process "
        "and its largest worker process.",
        END_MARKER,
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workloads", default="10,50,100", help="Comma-separated fleet sizes.")
    parser.add_argument("--days", type=int, default=30, help="Days of history per workload.")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "BENCHMARKS.md")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    sizes = [int(size) for size in args.workloads.split(",")]
    timings = []
    with tempfile.TemporaryDirectory() as folder:
        trace = Path(folder) / "fleet.csv"
        synthetic_trace(max(sizes), args.days).to_csv(trace)
        for size in sizes:
            timing = time_cycle(fleet_config(trace, size), args.workers)
            print(
                f"{size} workloads: full cycle {timing.full_seconds:.2f} s "
                f"(fit {timing.fit_seconds:.2f} s), update cycle {timing.update_seconds:.2f} s, "
                f"peak RSS {timing.peak_rss_mib:.0f} MiB",
                flush=True,
            )
            timings.append(timing)

    command = "python bench/cycle_scale.py " + shlex.join(list(argv or []))
    write_section(
        args.output,
        render(timings, args.days, args.workers, command.strip()),
        START_MARKER,
        END_MARKER,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
