"""``peakcast report`` and ``peakcast backtest --html/--format`` run as a user would."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from scaler.cli.main import app

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_CONFIG = ROOT / "config" / "peakcast.yaml"
TRACE = ROOT / "data" / "servegen_m-large_10min.csv"
AT = "1970-01-12T00:00:00"


@pytest.fixture(scope="module")
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture(scope="module")
def short_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default config with a one-day simulated span after the warm-up."""
    raw = yaml.safe_load(DEFAULT_CONFIG.read_text())
    raw["sources"]["servegen"]["path"] = str(TRACE)
    raw["backtest"]["duration_seconds"] = 86400
    path = tmp_path_factory.mktemp("config") / "peakcast.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def report_args(*extra: str) -> list[str]:
    return ["report", "--config", str(DEFAULT_CONFIG), "--at", AT, "--horizon-days", "1", *extra]


def test_report_json_has_plan(runner: CliRunner, tmp_path: Path) -> None:
    output = tmp_path / "plan.json"
    result = runner.invoke(app, report_args("--format", "json", "--output", str(output)))
    assert result.exit_code == 0, result.output
    data = json.loads(output.read_text())
    assert data["kind"] == "forecast"
    plan = data["capacity_plan"]
    assert plan["start"] == "1970-01-12T00:00:00+00:00"
    assert plan["end"] == "1970-01-13T00:00:00+00:00"
    pools = {pool["name"]: pool for pool in plan["pools"]}
    assert set(pools) == {"onprem-h100", "cloud-h100"}
    assert pools["onprem-h100"]["reserved_nodes"] == 2
    assert pools["cloud-h100"]["recommended_max_nodes"] >= pools["cloud-h100"]["peak_nodes"]
    assert plan["cost_per_month"] == pytest.approx(30 * plan["cost_per_day"])
    step = yaml.safe_load(DEFAULT_CONFIG.read_text())["forecast"]["step_seconds"]
    assert len(data["forecasts"][0]["rows"]) == 86_400 // step  # one day at the model step
    assert "wrote" in result.stdout


def test_report_markdown_to_stdout(runner: CliRunner) -> None:
    result = runner.invoke(app, report_args("--format", "markdown", "--output", "-"))
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("# peakcast capacity plan")
    assert "### Recommended pool bounds and cost" in result.stdout
    assert "### Peak windows above the base capacity" in result.stdout


def test_report_html_default_format(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, report_args())
    assert result.exit_code == 0, result.output
    text = (tmp_path / "peakcast-report.html").read_text()
    assert text.startswith("<!DOCTYPE html>")
    assert text.count('src="data:image/png;base64,') == 3
    assert "https://" not in text


@pytest.mark.parametrize(
    ("args", "option"),
    [
        pytest.param(["--format", "pdf"], "--format", id="unknown-format"),
        pytest.param(["--reserve-quantile", "1.5"], "--reserve-quantile", id="quantile-above-one"),
    ],
)
def test_report_rejects_bad_option(runner: CliRunner, args: list[str], option: str) -> None:
    result = runner.invoke(app, report_args(*args))
    assert result.exit_code == 2
    assert option in result.stderr
    assert "Traceback" not in result.stderr


def test_report_rejects_horizon_below_step(runner: CliRunner) -> None:
    result = runner.invoke(
        app, ["report", "--config", str(DEFAULT_CONFIG), "--horizon-days", "0.001"]
    )
    assert result.exit_code == 2
    assert "--horizon-days" in result.stderr


def test_backtest_html_and_json_stdout(
    runner: CliRunner, short_config: Path, tmp_path: Path
) -> None:
    html = tmp_path / "backtest.html"
    records = tmp_path / "records.json"
    result = runner.invoke(
        app,
        [
            "backtest",
            "--config",
            str(short_config),
            "--policies",
            "reactive,oracle,peakcast",
            "--html",
            str(html),
            "--format",
            "json",
            "-o",
            str(records),
        ],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert list(data["backtest"]["policies"]) == ["reactive", "oracle", "peakcast"]
    assert data["backtest"]["minutes"] == 1440
    summary = {record["policy"]: record for record in json.loads(records.read_text())}
    for name, policy in data["backtest"]["policies"].items():
        assert policy["shortfall_gpu_minutes"] == summary[name]["shortfall_gpu_minutes"]
        assert policy["gpu_hours"] == summary[name]["gpu_hours"]
    text = html.read_text()
    assert text.count('src="data:image/png;base64,') == 5
    shortfall = data["backtest"]["policies"]["peakcast"]["shortfall_gpu_minutes"]
    assert f"{shortfall:,.0f}</td>" in text


def test_backtest_markdown_stdout(runner: CliRunner, short_config: Path) -> None:
    result = runner.invoke(
        app,
        [
            "backtest",
            "--config",
            str(short_config),
            "--policies",
            "reactive,peakcast",
            "--format",
            "markdown",
        ],
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("# peakcast backtest")
    assert "### Policies compared" in result.stdout
    assert "┏" not in result.stdout  # no rich table mixed in


def test_backtest_rejects_unknown_format(runner: CliRunner) -> None:
    result = runner.invoke(app, ["backtest", "--config", str(DEFAULT_CONFIG), "--format", "yaml"])
    assert result.exit_code == 2
    assert "--format" in result.stderr
    assert "table" in result.stderr


def test_backtest_table_prints_miss_line(runner: CliRunner, tmp_path: Path) -> None:
    # Two simulated days: on the second, 1970-01-09, demand bursts above the P95 forecast.
    raw = yaml.safe_load(DEFAULT_CONFIG.read_text())
    raw["sources"]["servegen"]["path"] = str(TRACE)
    raw["backtest"]["duration_seconds"] = 2 * 86400
    config = tmp_path / "peakcast.yaml"
    config.write_text(yaml.safe_dump(raw))
    html = tmp_path / "backtest.html"

    result = runner.invoke(
        app, ["backtest", "--config", str(config), "--policies", "peakcast", "--html", str(html)]
    )

    assert result.exit_code == 0, result.output
    [line] = [line for line in result.stdout.splitlines() if line.startswith("forecast misses:")]
    match = re.fullmatch(
        r"forecast misses: llm-m-large (\d+) \(demand above P95 for 15 min\)", line
    )
    assert match is not None, line
    count = int(match.group(1))
    assert count > 0
    text = html.read_text()
    assert "<h2>Forecast misses</h2>" in text
    row = f'<td>llm-m-large</td><td>P95</td><td class="num">15 min</td><td class="num">{count}</td>'
    assert row in text


def test_backtest_without_peakcast_prints_no_miss_line(
    runner: CliRunner, short_config: Path, tmp_path: Path
) -> None:
    html = tmp_path / "backtest.html"
    result = runner.invoke(
        app,
        ["backtest", "--config", str(short_config), "--policies", "reactive", "--html", str(html)],
    )
    assert result.exit_code == 0, result.output
    assert "reactive" in result.stdout
    assert "forecast misses" not in result.stdout
    assert "<p>No peakcast policy ran, so no forecast was compared with demand.</p>" in (
        html.read_text()
    )
