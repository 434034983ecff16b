"""Throughput per replica from measured history: a known knee recovered, with its uncertainty."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from forecaster.errors import DataError, InsufficientHistoryError
from scaler.capacity_estimate import (
    KneeFit,
    estimate_capacity,
    estimate_newest,
    fit_knee,
    version_segments,
)
from scaler.cli.main import app
from tests.kube import builders as b

SLO = 1.0


def true_crossing(knee: float, base: float, slope: float, extra: float) -> float:
    """The load at which base + slope * x + extra * (x - knee) reaches the SLO (past the knee)."""
    at_knee = base + slope * knee
    return knee + (SLO - at_knee) / (slope + extra)


def synthetic_history(
    steps: int = 3000,
    knee: float = 40.0,
    extra: float = 0.05,
    noise: float = 0.05,
    seed: int = 1,
) -> pd.DataFrame:
    """A daily cycle of arrivals served by 6 to 8 replicas, with p95 latency bending at ``knee``.

    Latency is 0.5 s + 2 ms per request/s below the knee and rises by ``extra`` s per request/s
    above it, with multiplicative log-normal noise.
    """
    rng = np.random.default_rng(seed)
    t = np.arange(steps)
    demand = 400 + 300 * np.sin(2 * np.pi * t / 288) + rng.normal(0, 20, steps)
    replicas = np.where(t % 288 > 150, 6.0, 8.0)
    load = np.maximum(demand, 1) / replicas
    latency = 0.5 + 0.002 * load + extra * np.maximum(0, load - knee)
    latency = latency * np.exp(rng.normal(0, noise, steps))
    index = pd.date_range("2026-03-01", periods=steps, freq="5min", tz="UTC")
    return pd.DataFrame(
        {"demand": demand, "replicas": replicas, "latency_p95": latency}, index=index
    )


@pytest.mark.parametrize(
    ("knee", "extra", "noise"),
    [
        pytest.param(40.0, 0.05, 0.05, id="sharp-knee"),
        pytest.param(30.0, 0.02, 0.10, id="soft-knee-noisy"),
        pytest.param(55.0, 0.08, 0.03, id="late-knee"),
    ],
)
def test_estimate_recovers_known_throughput(knee: float, extra: float, noise: float) -> None:
    frame = synthetic_history(knee=knee, extra=extra, noise=noise)
    expected = true_crossing(knee, 0.5, 0.002, extra)

    result = estimate_capacity(
        frame["demand"], frame["replicas"], frame["latency_p95"], SLO, bootstrap_samples=100
    )

    assert result.throughput_per_replica == pytest.approx(expected, rel=0.10)
    assert result.lower <= result.throughput_per_replica <= result.upper
    assert result.lower < expected * 1.1
    assert result.upper > expected * 0.9
    assert result.knee == pytest.approx(knee, rel=0.15)
    assert not result.extrapolated


def test_interval_narrows_with_more_history() -> None:
    short = synthetic_history(steps=600)
    long = synthetic_history(steps=6000)
    a = estimate_capacity(short["demand"], short["replicas"], short["latency_p95"], SLO)
    b = estimate_capacity(long["demand"], long["replicas"], long["latency_p95"], SLO)
    assert (b.upper - b.lower) < (a.upper - a.lower)


def test_estimate_is_reproducible_with_seed() -> None:
    frame = synthetic_history(steps=800)
    args = (frame["demand"], frame["replicas"], frame["latency_p95"], SLO)
    assert estimate_capacity(*args, seed=3) == estimate_capacity(*args, seed=3)


def test_never_reaching_slo_is_extrapolated() -> None:
    frame = synthetic_history(knee=40.0, extra=0.002)  # latency stays under 1 s in the data
    result = estimate_capacity(frame["demand"], frame["replicas"], frame["latency_p95"], SLO)
    assert result.extrapolated
    assert result.throughput_per_replica > result.max_observed_load


def test_flat_latency_rejected() -> None:
    rng = np.random.default_rng(0)
    demand = rng.uniform(100, 500, 500)
    latency = np.full(500, 0.3) * np.exp(rng.normal(0, 0.01, 500))
    latency[::2] *= 0.99  # no trend with load at all
    with pytest.raises(DataError, match="does not rise with per-replica load"):
        estimate_capacity(demand, np.full(500, 4.0), -np.sort(-latency), SLO)


def test_too_few_rows_rejected() -> None:
    frame = synthetic_history(steps=50)
    with pytest.raises(InsufficientHistoryError, match="only 50 usable steps"):
        estimate_capacity(frame["demand"], frame["replicas"], frame["latency_p95"], SLO)


def test_rows_without_replicas_or_latency_dropped() -> None:
    frame = synthetic_history(steps=400)
    frame.iloc[:50, frame.columns.get_loc("replicas")] = 0
    frame.iloc[50:60, frame.columns.get_loc("latency_p95")] = np.nan
    result = estimate_capacity(frame["demand"], frame["replicas"], frame["latency_p95"], SLO)
    assert result.samples == 340


def test_newest_version_only() -> None:
    old = synthetic_history(steps=1500, knee=25.0, seed=2)
    new = synthetic_history(steps=1500, knee=45.0, seed=3)
    new.index = new.index + (old.index[-1] - new.index[0]) + pd.Timedelta(minutes=5)
    frame = pd.concat([old.assign(version="v1"), new.assign(version="v2")])

    result = estimate_newest(
        frame,
        SLO,
        demand="demand",
        replicas="replicas",
        latency="latency_p95",
        version="version",
        bootstrap_samples=50,
    )

    assert result.version == "v2"
    assert result.since == new.index[0]
    assert result.samples == 1500
    assert result.throughput_per_replica == pytest.approx(
        true_crossing(45.0, 0.5, 0.002, 0.05), rel=0.10
    )


def test_version_segments_split_runs() -> None:
    versions = pd.Series(["a", "a", "b", "b", "b", "a"])
    assert version_segments(versions) == [("a", 0, 2), ("b", 2, 5), ("a", 5, 6)]


def test_knee_fit_crossing_before_and_after_knee() -> None:
    fit = KneeFit(intercept=0.5, slope=0.01, extra_slope=0.1, knee=40.0)
    assert fit.load_at(0.6) == pytest.approx(10.0)  # reached on the flat part
    assert fit.load_at(1.0) == pytest.approx(40.0 + 0.1 / 0.11)
    assert KneeFit(0.5, 0.0, 0.0, 10.0).load_at(1.0) is None


def test_fit_knee_finds_exact_bend() -> None:
    load = np.linspace(1, 100, 400)
    latency = 0.2 + 0.001 * load + 0.03 * np.maximum(0, load - 60)
    fit = fit_knee(load, latency)
    assert fit.knee == pytest.approx(60, abs=2)
    assert fit.extra_slope == pytest.approx(0.03, rel=0.1)


def test_estimate_capacity_command(tmp_path: Path) -> None:
    frame = synthetic_history()
    path = tmp_path / "history.csv"
    frame.rename_axis("timestamp").reset_index().to_csv(path, index=False)

    result = CliRunner().invoke(
        app, ["estimate-capacity", str(path), "--slo-seconds", "1.0", "--bootstrap", "50"]
    )

    assert result.exit_code == 0, result.output
    expected = true_crossing(40.0, 0.5, 0.002, 0.05)  # 48.08
    estimate = float(result.output.split("estimate")[1].split()[1])
    assert estimate == pytest.approx(expected, rel=0.10)
    assert "90% interval" in result.output


def test_estimate_capacity_command_reports_missing_column(tmp_path: Path) -> None:
    path = tmp_path / "history.csv"
    synthetic_history(steps=200).to_csv(path, index=False)
    result = CliRunner().invoke(
        app, ["estimate-capacity", str(path), "--slo-seconds", "1", "--latency-column", "p95"]
    )
    assert result.exit_code == 2
    assert "--latency-column" in result.output


def test_estimate_command_reads_workload_settings(tmp_path: Path) -> None:
    frame = synthetic_history().rename(columns={"demand": "req_per_s", "latency_p95": "ttft_p95"})
    csv_path = tmp_path / "history.csv"
    frame.rename_axis("timestamp").reset_index().to_csv(csv_path, index=False)
    raw = b.settings_dict()
    raw["sources"]["trace"]["path"] = str(csv_path)
    raw["workloads"][0]["capacity_measurement"] = {
        "source": "trace",
        "replicas_series": "replicas",
        "latency_p95_series": "ttft_p95",
        "slo_p95_latency_seconds": 1.0,
        "bootstrap_samples": 50,
    }
    config = tmp_path / "peakcast.yaml"
    config.write_text(yaml.safe_dump(raw), encoding="utf-8")

    result = CliRunner().invoke(
        app, ["estimate-capacity", str(csv_path), "--workload", "llm", "--config", str(config)]
    )

    assert result.exit_code == 0, result.output
    assert "configured throughput_per_replica" in result.output
    assert "25 (+9" in result.output  # about 48 measured against 25 configured
