"""What a user reads: error messages, labels, help, table headers, notes and reason texts."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import typer
import yaml
from rich.console import Console
from rich.table import Table
from typer.testing import CliRunner

from forecaster.engine import ForecastEngine
from forecaster.errors import ConfigError
from forecaster.history import History
from forecaster.settings import ForecastSettings
from scaler.actuators.dry_run import DryRunActuator
from scaler.backtest.runner import run_backtest
from scaler.cli import backtest as backtest_cli
from scaler.cli import expire as expire_cli
from scaler.cli import status as status_cli
from scaler.cli.common import reports_errors
from scaler.cli.main import app
from scaler.core.decision import (
    RULE_FORECAST,
    RULE_MAX_STEP,
    RULE_STABILIZATION,
    CycleDecision,
    DataStatus,
    FloorDecision,
)
from scaler.core.policy import Floors, PolicyState, Recommendation, decide
from scaler.core.requirements import Requirements
from scaler.kube.expiry import ExpiryResult
from scaler.replay import plan_at
from scaler.signals.base import SignalKey
from scaler.signals.outcome import FastCycleOutcome, SignalReport
from scaler.signals.table import signal_table
from tests.scaler.planning_fixtures import (
    StandInEngine,
    default_settings,
    servegen_history,
    small_settings,
)

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_CONFIG = ROOT / "config" / "peakcast.yaml"
TRACE = ROOT / "data" / "servegen_m-large_10min.csv"


@pytest.fixture(scope="module")
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """Remove the handlers a command adds on the runner's stream, which closes after it."""
    root = logging.getLogger()
    handlers = list(root.handlers)
    levels = {name: logging.getLogger(name).level for name in ("forecaster", "scaler")}
    yield
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


def write_config(tmp_path: Path, **changes: object) -> Path:
    """Write a copy of the default config with top-level keys replaced by ``changes``."""
    raw = yaml.safe_load(DEFAULT_CONFIG.read_text())
    raw["sources"]["servegen"]["path"] = str(TRACE)
    raw.update(changes)
    path = tmp_path / "peakcast.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


# --- error messages -------------------------------------------------------------------------


@pytest.mark.parametrize("zone", ["Europe[red]Berlin", "[/x]"], ids=["style-tag", "closing-tag"])
def test_markup_in_config_value_printed_verbatim(
    runner: CliRunner, tmp_path: Path, zone: str
) -> None:
    config = write_config(tmp_path, timezone=zone)

    result = runner.invoke(app, ["validate-config", "--config", str(config)])

    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    assert f"config error: timezone: invalid value '{zone}'" in result.stderr


def test_markup_in_key_path_printed_verbatim(runner: CliRunner) -> None:
    probe = typer.Typer()

    @probe.command()
    @reports_errors
    def fail() -> None:
        raise ConfigError("workloads[llama-70b].demand.series", "req[5m]", "a column of the trace")

    result = runner.invoke(probe, [])

    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert "workloads[llama-70b].demand.series" in result.stderr
    assert "'req[5m]'" in result.stderr


def test_option_error_labelled_error(runner: CliRunner) -> None:
    result = runner.invoke(app, ["validate-config", "--log-format", "xml"])

    assert result.exit_code == 2
    assert result.stderr.startswith("error: --log-format: invalid value 'xml'")
    assert "config error" not in result.stderr


def test_yaml_syntax_error_labelled_once(runner: CliRunner, tmp_path: Path) -> None:
    config = tmp_path / "broken.yaml"
    config.write_text("version: 1\ntimezone: UTC\n  pools: [\n", encoding="utf-8")

    result = runner.invoke(app, ["validate-config", "--config", str(config)])

    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    assert lines[0].startswith(f"config error: --config: invalid value '{config}'")
    assert "line 3, column 8: mapping values are not allowed here" in lines[0]
    assert result.stderr.count("config error:") == 1
    assert all(line.startswith("  ") for line in lines[1:])


MARKUP = "[red]x[/] [/y]"


def rendered(table: Table) -> str:
    console = Console(record=True, width=400)
    console.print(table)
    return console.export_text()


def test_tables_print_cluster_text_verbatim() -> None:
    now = pd.Timestamp("2026-03-02T08:00:00Z")
    floor = {
        "kind": "workload",
        "name": "llm",
        "object": f"HorizontalPodAutoscaler serving/{MARKUP}",
        "field": "spec.minReplicas",
        "value": 4,
        "last_change": {"at": "t", "from": 2, "to": 4, "rule": "forecast", "reason": MARKUP},
        "expires_at": None,
        "paused": MARKUP,
        "reverted": None,
        "error": None,
    }
    control = {"control": "override launch", "applies_to": "pool a", "detail": MARKUP}
    expiry = ExpiryResult("pool", "a", MARKUP, "failed", 3, 1, None, MARKUP)
    signal = SignalReport(SignalKey("queue", "pool", "a", 1), "below", 2.0, 5.0, message=MARKUP)
    outcome = FastCycleOutcome(at=now, reports=(signal,), error=MARKUP)

    tables = [
        status_cli._floor_table([floor], now),
        status_cli._controls_table([control]),
        expire_cli._result_table([expiry]),
        signal_table(outcome),
    ]

    for table in tables:
        assert MARKUP in rendered(table)
    assert "pool a queue[1]" in rendered(tables[3])


# --- help, version and tables ---------------------------------------------------------------


def test_version_printed(runner: CliRunner) -> None:
    result = runner.invoke(app, ["--version"])

    assert result.exit_code == 0, result.output
    assert re.fullmatch(r"peakcast \S+\n", result.stdout)


@pytest.mark.parametrize("command", ["backtest", "report"])
def test_command_summary_is_one_paragraph(command: str) -> None:
    group = typer.main.get_command(app)
    assert isinstance(group, typer.core.TyperGroup)
    summary = (group.commands[command].help or "").split("\n\n")[0]

    assert "\n" not in summary


def test_forecast_title_names_unit_and_rows_help(runner: CliRunner, tmp_path: Path) -> None:
    config = write_config(tmp_path)

    result = runner.invoke(app, ["forecast", "--config", str(config), "--rows", "2"])
    command = typer.main.get_command(app).commands["forecast"]  # type: ignore[attr-defined]
    rows = next(param for param in command.params if param.name == "rows")

    assert result.exit_code == 0, result.output
    assert "demand in requests_per_second" in result.stdout
    assert "spread evenly over the horizon" in rows.help


def test_backtest_table_headers(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = default_settings(backtest={"warmup_seconds": 2 * 86400, "duration_seconds": 86400})
    engine = StandInEngine(settings.forecast)
    result = run_backtest(
        settings, {"llm-m-large": servegen_history(4)}, ["reactive", "peakcast"], engine=engine
    )
    recorder = Console(record=True, width=240)
    monkeypatch.setattr(backtest_cli, "console", recorder)

    backtest_cli.print_summary(result, settings, elapsed=1.0)
    text = recorder.export_text()

    assert "SLO attainment" in text
    assert "SLO minutes" not in text
    assert "cost (config currency)" in text


# --- dry run of a pool without an actuator --------------------------------------------------


def test_dry_run_pool_without_actuator_not_written() -> None:
    settings = default_settings()
    assert settings.pool("cloud-h100").actuator is None
    floor = FloorDecision("pool", "cloud-h100", 2, 0, "forecast", "2 nodes are needed")
    decision = CycleDecision(at=pd.Timestamp("2024-01-01", tz="UTC"), pools=(floor,), workloads=())

    [result] = DryRunActuator(settings).apply(decision)

    assert result.status == "unchanged"
    assert result.target == "pool cloud-h100"
    assert result.field_path == "(no actuator configured)"
    assert result.message == "not written"
    assert "GPUNodePool" not in result.target


def test_plan_prints_pool_without_actuator_unwritten(runner: CliRunner) -> None:
    result = runner.invoke(app, ["plan", "--config", str(DEFAULT_CONFIG)])

    assert result.exit_code == 0, result.output
    assert "pool cloud-h100 (no actuator configured)" in result.stdout
    assert "(not written)" in result.stdout
    assert "GPUNodePool cloud-h100" not in result.stdout


# --- reason texts -----------------------------------------------------------------------------

T0 = pd.Timestamp("2024-01-01 00:00", tz="UTC")
POLICY_SETTINGS = small_settings(
    static_nodes=1,
    burst_min=0,
    burst_max=20,
    min_replicas=1,
    max_replicas=60,
    forecast={"planning_level": 0.9},
    policy={
        "stabilization_window_seconds": 300,
        "max_scale_down_nodes_per_cycle": 1,
        "max_scale_down_replicas_per_cycle": 1,
    },
)


def decide_floors(
    replicas: int, nodes: int, current: Floors, state: PolicyState | None = None
) -> tuple[FloorDecision, FloorDecision]:
    """Decide one cycle on a flat schedule; return the burst pool's and the workload's floor."""
    requirements = Requirements(
        start=T0,
        step=pd.Timedelta(minutes=10),
        level=0.9,
        demand={"llm": np.full(6, replicas * 100.0)},
        replicas={"llm": np.full(6, replicas, dtype=np.int64)},
        nodes={"burst": np.full(6, nodes, dtype=np.int64), "base": np.ones(6, np.int64)},
        unplaced={"llm": np.zeros(6, dtype=np.int64)},
    )
    data = (DataStatus("llm", 1.0, T0, True),)
    result = decide(T0, requirements, current, state or PolicyState(), data, POLICY_SETTINGS)
    pool = next(floor for floor in result.decision.pools if floor.name == "burst")
    return pool, result.decision.workloads[0]


def test_forecast_reason_singular_for_one() -> None:
    pool, workload = decide_floors(1, 1, Floors())

    assert pool.rule == RULE_FORECAST
    assert "1 node is needed" in pool.reason
    assert "needs 1 replica within" in workload.reason


def test_max_step_reason_singular_and_stabilized() -> None:
    pool, workload = decide_floors(2, 2, Floors(pools={"burst": 5}, workloads={"llm": 5}))

    assert pool.rule == RULE_MAX_STEP
    assert "limited to 1 node per cycle (stabilized target 2)" in pool.reason
    assert "limited to 1 replica per cycle" in workload.reason


def test_stabilization_reason_spelling() -> None:
    recorded = (Recommendation(T0 - pd.Timedelta(minutes=1), 6),)
    state = PolicyState(recommendations={"pool/burst": recorded})

    pool, _ = decide_floors(2, 2, Floors(pools={"burst": 6}), state)

    assert pool.rule == RULE_STABILIZATION
    assert "300 s stabilization window" in pool.reason
    assert "stabilis" not in pool.reason


# --- forecast fallbacks -----------------------------------------------------------------------


def short_history(days: float) -> History:
    """A daily-seasonal series of ``days`` days at 30-minute steps."""
    index = pd.date_range("2024-01-01", periods=int(days * 48), freq="30min", tz="UTC")
    values = 100 + 50 * pd.Series(range(len(index)), index=index).mod(48) / 48
    return History("short", values.astype(float), pd.Timedelta(minutes=30))


def test_dropped_season_fallback_wording_and_warning(caplog: pytest.LogCaptureFixture) -> None:
    settings = ForecastSettings(
        model="holt_winters",
        step_seconds=1800,
        season_lengths_seconds=[86400],
        horizon_seconds=86400,
        history_seconds=86400 * 28,
        calibration_windows=2,
    )

    with caplog.at_level(logging.WARNING, logger="forecaster"):
        forecast = ForecastEngine(settings).fit(short_history(1.5)).predict()

    notes = " ".join(forecast.notes)
    assert "season of 1 d dropped" in notes
    assert "no configured season is left" in notes
    assert any(
        record.levelno == logging.WARNING and "Falling back" in record.getMessage()
        for record in caplog.records
    )


def test_plan_data_reason_carries_forecast_notes() -> None:
    settings = default_settings(
        forecast={"season_lengths_seconds": [86400], "calibration_windows": 2}
    )
    history = servegen_history(4).until(pd.Timestamp("1970-01-02T12:00:00Z"))

    decision = plan_at(settings, {"llm-m-large": history}, pd.Timestamp("1970-01-02T12:00:00Z"))

    [status] = decision.data
    assert "forecast: season of 1 d dropped" in status.reason
