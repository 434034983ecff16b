"""The peakcast command line, run in-process as a user would call it."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from scaler.cli.main import app

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_CONFIG = ROOT / "config" / "peakcast.yaml"
TRACE = ROOT / "data" / "servegen_m-large_10min.csv"


@pytest.fixture(scope="module")
def runner() -> CliRunner:
    return CliRunner()


def write_config(tmp_path: Path, **changes: object) -> Path:
    """Write a copy of the default config with top-level sections replaced by ``changes``."""
    raw = yaml.safe_load(DEFAULT_CONFIG.read_text())
    raw["sources"]["servegen"]["path"] = str(TRACE)
    raw.update(changes)
    path = tmp_path / "peakcast.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_validate_config_accepts_default(runner: CliRunner) -> None:
    result = runner.invoke(app, ["validate-config", "--config", str(DEFAULT_CONFIG)])
    assert result.exit_code == 0, result.output
    assert "config is valid" in result.output
    assert "cloud-h100" in result.output


def test_validate_config_lists_live_signals(runner: CliRunner, tmp_path: Path) -> None:
    example = ROOT / "config" / "examples" / "thanos-vllm.yaml"
    result = runner.invoke(app, ["validate-config", "--config", str(example)], terminal_width=240)
    assert result.exit_code == 0, result.output
    assert "live signals (read every 15 s)" in result.output
    assert "pending_gpu_pods" in result.output
    assert "vllm_waiting_requests above 8 per replica" in result.output
    assert "demand above P95" in result.output

    raw = yaml.safe_load(example.read_text())
    del raw["pools"][0]["actuator"]
    config = tmp_path / "no-actuator.yaml"
    config.write_text(yaml.safe_dump(raw))
    result = runner.invoke(app, ["validate-config", "--config", str(config)], terminal_width=240)
    assert result.exit_code == 0, result.output
    assert "not read: the pool has no actuator" in result.output


def test_validate_config_checks_signal_queries(runner: CliRunner, tmp_path: Path) -> None:
    example = ROOT / "config" / "examples" / "thanos-vllm.yaml"
    raw = yaml.safe_load(example.read_text())
    saturation = raw["workloads"][0]["signals"]["saturation"]
    # The built-in Triton query takes its rate() range from the source's 60 s scrape interval.
    saturation.append({"metric": "triton_queue_seconds", "source": "thanos-query", "threshold": 1})
    config = tmp_path / "signals.yaml"
    config.write_text(yaml.safe_dump(raw))
    result = runner.invoke(app, ["validate-config", "--config", str(config)], terminal_width=240)
    assert result.exit_code == 0, result.output
    assert "4 PromQL queries checked" in result.output

    saturation.append(
        {
            "metric": "promql",
            "source": "thanos-query",
            "threshold": 1,
            "query": "sum(rate(vllm:num_preemptions_total[1m]))",
        }
    )
    config.write_text(yaml.safe_dump(raw))
    result = runner.invoke(app, ["validate-config", "--config", str(config)], terminal_width=240)
    assert result.exit_code != 0
    assert "workloads[0].signals.saturation[2].query" in result.output
    assert "4 scrape intervals" in result.output


def test_validate_config_without_signals(runner: CliRunner) -> None:
    result = runner.invoke(app, ["validate-config", "--config", str(DEFAULT_CONFIG)])
    assert result.exit_code == 0, result.output
    assert "live signals" not in result.output


@pytest.mark.parametrize(
    ("section", "mutate", "key_path", "value"),
    [
        pytest.param(
            "pools",
            lambda pools: pools[1].update(max_nodes=-3),
            "pools[1].max_nodes",
            "-3",
            id="negative-max-nodes",
        ),
        pytest.param(
            "pools",
            lambda pools: pools[0].update(gpus=8),
            "pools[0].gpus",
            "8",
            id="unknown-key",
        ),
        pytest.param(
            "forecast",
            lambda forecast: forecast.update(model="arima"),
            "forecast.model",
            "arima",
            id="unknown-model",
        ),
        pytest.param(
            "workloads",
            lambda workloads: workloads[0]["capacity"].update(target_utilization=1.5),
            "workloads[0].capacity.target_utilization",
            "1.5",
            id="utilization-above-one",
        ),
    ],
)
def test_invalid_config_names_key_value_and_allowed(
    runner: CliRunner, tmp_path: Path, section: str, mutate, key_path: str, value: str
) -> None:
    raw = yaml.safe_load(DEFAULT_CONFIG.read_text())
    mutate(raw[section])
    config = write_config(tmp_path, **{section: raw[section]})

    result = runner.invoke(app, ["validate-config", "--config", str(config)])

    assert result.exit_code == 2
    assert key_path in result.stderr
    assert value in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_invalid_config_cross_reference_is_named(runner: CliRunner, tmp_path: Path) -> None:
    raw = yaml.safe_load(DEFAULT_CONFIG.read_text())
    raw["workloads"][0]["pools"] = ["onprem-h100", "no-such-pool"]
    config = write_config(tmp_path, workloads=raw["workloads"])

    result = runner.invoke(app, ["validate-config", "--config", str(config)])

    assert result.exit_code == 2
    assert "no-such-pool" in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_config_file_is_a_config_error(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(app, ["validate-config", "--config", str(tmp_path / "absent.yaml")])
    assert result.exit_code == 2
    assert "absent.yaml" in result.stderr


def test_forecast_prints_quantiles_and_writes_json(runner: CliRunner, tmp_path: Path) -> None:
    output = tmp_path / "forecast.json"
    result = runner.invoke(
        app,
        [
            "forecast",
            "--config",
            str(DEFAULT_CONFIG),
            "--at",
            "1970-01-10T00:00:00",
            "-o",
            str(output),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "q0.9" in result.stdout
    records = json.loads(output.read_text())
    forecast_settings = yaml.safe_load(DEFAULT_CONFIG.read_text())["forecast"]
    assert len(records) == forecast_settings["horizon_seconds"] // forecast_settings["step_seconds"]
    first = records[0]
    assert first["unique_id"] == "llm-m-large"
    assert first["q0.9"] >= first["q0.5"]
    # The first row covers the model step that starts at --at: [00:00, 00:30).
    assert pd.Timestamp(first["ds"]) == pd.Timestamp("1970-01-10T00:00:00Z")


def test_forecast_default_uses_newest_row(runner: CliRunner, tmp_path: Path) -> None:
    """Without --at the forecast starts where the trace's last 10-minute row ends."""
    output = tmp_path / "forecast.json"
    args = ["forecast", "--config", str(DEFAULT_CONFIG), "-o", str(output)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    last_row = pd.read_csv(TRACE)["timestamp"].iloc[-1]
    first = json.loads(output.read_text())[0]
    assert pd.Timestamp(first["ds"]) == pd.Timestamp(last_row, tz="UTC") + pd.Timedelta(minutes=10)

    end_of_last_step = (pd.Timestamp(last_row) + pd.Timedelta(minutes=10)).isoformat()
    result = runner.invoke(app, [*args, "--at", end_of_last_step])
    assert result.exit_code == 0, result.output


def test_forecast_rejects_time_outside_trace(runner: CliRunner) -> None:
    result = runner.invoke(
        app, ["forecast", "--config", str(DEFAULT_CONFIG), "--at", "2031-01-01T00:00:00"]
    )
    assert result.exit_code == 2
    assert "--at" in result.stderr
    assert "inside the trace" in result.stderr


def test_plan_prints_floors_quantile_and_reason(runner: CliRunner) -> None:
    result = runner.invoke(
        app, ["plan", "--config", str(DEFAULT_CONFIG), "--at", "1970-01-12T18:00:00"]
    )
    assert result.exit_code == 0, result.output
    # cloud-h100 has no actuator in the default config, so its floor is not written.
    assert "unchanged: pool cloud-h100 (no actuator configured)" in result.stdout
    assert "onprem-h100 spec.desiredNodes" not in result.stdout  # a static pool is never written
    assert re.search(
        r"would (set|keep): HorizontalPodAutoscaler serving/llm-m-large", result.stdout
    )
    level = yaml.safe_load(DEFAULT_CONFIG.read_text())["forecast"]["planning_level"]
    assert f"P{100 * level:g} =" in result.stdout
    assert "forecast" in result.stdout


def test_plan_help_says_floors_come_from_replay(runner: CliRunner) -> None:
    result = runner.invoke(app, ["plan", "--help"])
    assert result.exit_code == 0
    assert "replaying" in result.stdout


def test_plan_inside_gap_holds_and_reports_coverage(runner: CliRunner, tmp_path: Path) -> None:
    trace = pd.read_csv(TRACE)
    gap = (trace["timestamp"] >= "1970-01-12T06:00:00") & (
        trace["timestamp"] < "1970-01-12T20:00:00"
    )
    trace.loc[gap, "req_per_s"] = None
    gapped = tmp_path / "gapped.csv"
    trace.to_csv(gapped, index=False)
    raw = yaml.safe_load(DEFAULT_CONFIG.read_text())
    raw["sources"]["servegen"]["path"] = str(gapped)
    config = tmp_path / "gapped.yaml"
    config.write_text(yaml.safe_dump(raw))

    result = runner.invoke(app, ["plan", "--config", str(config), "--at", "1970-01-12T09:00:00"])

    assert result.exit_code == 0, result.output
    assert "missing_data_hold" in result.stdout
    assert "no" in result.stdout  # the data table's "usable" column
    assert "1970-01-12T05:50:00" in result.stdout  # newest sample before the gap


def test_backtest_prints_policy_rows_and_writes_json(runner: CliRunner, tmp_path: Path) -> None:
    output = tmp_path / "backtest.json"
    result = runner.invoke(
        app,
        [
            "backtest",
            "--config",
            str(DEFAULT_CONFIG),
            "--policies",
            "reactive,oracle,peakcast",
            "-o",
            str(output),
        ],
    )
    assert result.exit_code == 0, result.output
    for policy in ("reactive", "oracle", "peakcast"):
        assert policy in result.stdout
    records = {record["policy"]: record for record in json.loads(output.read_text())}
    assert set(records) == {"reactive", "oracle", "peakcast"}
    assert (
        records["oracle"]["shortfall_gpu_minutes"] <= records["peakcast"]["shortfall_gpu_minutes"]
    )
    assert records["peakcast"]["gpu_hours"] > 0


def test_backtest_rejects_unknown_policy(runner: CliRunner) -> None:
    result = runner.invoke(
        app, ["backtest", "--config", str(DEFAULT_CONFIG), "--policies", "reactive,magic"]
    )
    assert result.exit_code == 2
    assert "magic" in result.stderr
    assert "oracle" in result.stderr


@pytest.mark.parametrize(
    ("change", "key_path", "value"),
    [
        pytest.param(
            lambda raw: raw["sources"]["servegen"].update(path="/nonexistent/trace.csv"),
            "sources.servegen.path",
            "/nonexistent/trace.csv",
            id="missing-trace",
        ),
        pytest.param(
            lambda raw: raw["workloads"][0]["demand"].update(series="req_per_sec"),
            "workloads[0].demand.series",
            "req_per_sec",
            id="unknown-column",
        ),
    ],
)
def test_validate_config_checks_traces(
    runner: CliRunner, tmp_path: Path, change, key_path: str, value: str
) -> None:
    raw = yaml.safe_load(DEFAULT_CONFIG.read_text())
    raw["sources"]["servegen"]["path"] = str(TRACE)
    change(raw)
    config = tmp_path / "peakcast.yaml"
    config.write_text(yaml.safe_dump(raw))

    result = runner.invoke(app, ["validate-config", "--config", str(config)])

    assert result.exit_code == 2
    assert key_path in result.stderr
    assert value in result.stderr


def test_validate_config_rejects_sum_then_rate(runner: CliRunner, tmp_path: Path) -> None:
    raw = yaml.safe_load(DEFAULT_CONFIG.read_text())
    raw["sources"] = {"thanos-query": {"kind": "thanos", "url": "http://127.0.0.1:9"}}
    raw["workloads"][0]["demand"] = {
        "source": "thanos-query",
        "series": "rate(sum(vllm:request_success_total)[5m:])",
        "unit": "requests_per_second",
    }
    config = tmp_path / "peakcast.yaml"
    config.write_text(yaml.safe_dump(raw))

    result = runner.invoke(app, ["validate-config", "--config", str(config)])

    assert result.exit_code == 2
    assert "workloads[0].demand.series" in result.stderr
