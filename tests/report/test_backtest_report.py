"""Backtest reports contain the numbers the backtest computed, in every format."""

from __future__ import annotations

import base64
import json
import re

import pytest

from scaler.backtest.runner import BacktestResult, run_backtest
from scaler.report.from_backtest import backtest_report, provisioning_note, stitch_forecasts
from scaler.report.html import render_html
from scaler.report.json_report import render_json
from scaler.report.markdown import render_markdown
from scaler.report.model import Report
from scaler.settings import Settings, SimulatorSettings
from tests.scaler.planning_fixtures import StandInEngine, default_settings, servegen_history

POLICIES = ["reactive", "static", "oracle", "peakcast", "peakcast+reactive"]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def settings() -> Settings:
    return default_settings(backtest={"warmup_seconds": 2 * 86400, "duration_seconds": 86400})


@pytest.fixture(scope="module")
def result(settings: Settings) -> BacktestResult:
    engine = StandInEngine(settings.forecast)
    return run_backtest(settings, {"llm-m-large": servegen_history(4)}, POLICIES, engine=engine)


@pytest.fixture(scope="module")
def report(settings: Settings, result: BacktestResult) -> Report:
    return backtest_report(settings, result, source="test.yaml", wall_seconds=1.5)


def markdown_rows(text: str, title: str) -> dict[str, list[str]]:
    """Return the rows of the Markdown table under ``### title``, keyed by the first cell."""
    block = text.split(f"### {title}\n\n", 1)[1]
    rows = {}
    for line in block.splitlines()[2:]:
        if not line.startswith("|"):
            break
        cells = [cell.strip() for cell in line.strip("|").split(" | ")]
        rows[cells[0]] = cells
    return rows


def number(cell: str) -> float:
    return float(cell.replace(",", "").rstrip("%×"))


def test_json_policy_totals_match_result(report: Report, result: BacktestResult) -> None:
    data = json.loads(render_json(report))
    policies = data["backtest"]["policies"]
    assert list(policies) == POLICIES
    for name, run in result.runs.items():
        metrics = run.metrics
        assert policies[name]["shortfall_gpu_minutes"] == metrics.shortfall_gpu_minutes
        assert policies[name]["unserved_share"] == metrics.unserved_share
        assert policies[name]["slo_attainment"] == metrics.slo_attainment
        assert policies[name]["gpu_hours"] == metrics.gpu_hours
        assert policies[name]["cost"] == metrics.cost
        assert policies[name]["scale_actions"] == metrics.scale_actions
        assert policies[name]["peak_window_shortfall_gpu_minutes_each"] == list(
            metrics.window_shortfall_gpu_minutes
        )
        assert policies[name]["pools"]["cloud-h100"]["gpu_hours"] == (
            metrics.pools["cloud-h100"].gpu_hours
        )


def test_json_windows_and_targets(report: Report, result: BacktestResult) -> None:
    data = json.loads(render_json(report))["backtest"]
    assert len(data["peak_windows"]) == len(result.peak_windows)
    assert data["peak_windows"][0]["peak_demand_gpus"] == result.peak_windows[0].peak_demand_gpus
    targets = {check["policy"]: check for check in data["targets"]}
    assert set(targets) == {"peakcast", "peakcast+reactive"}
    runs = result.runs
    expected_ratio = runs["peakcast"].metrics.gpu_hours / runs["oracle"].metrics.gpu_hours
    assert targets["peakcast"]["gpu_hours_ratio_to_oracle"] == pytest.approx(expected_ratio)
    assert targets["peakcast"]["gpu_hours_met"] == (expected_ratio <= 1.15)
    assert data["minutes"] == 1440


def test_json_has_capacity_plan_from_last_forecast(report: Report, result: BacktestResult) -> None:
    plan = json.loads(render_json(report))["capacity_plan"]
    last = result.forecasts[-1]["llm-m-large"]
    assert plan["cutoff"] == last.cutoff.isoformat()
    pools = {pool["name"]: pool for pool in plan["pools"]}
    assert pools["cloud-h100"]["cost_per_month"] == pytest.approx(
        30 * pools["cloud-h100"]["cost_per_day"]
    )
    assert plan["reserved"]["total_gpus"] == (
        plan["reserved"]["static_gpus"] + plan["reserved"]["burst_gpus"]
    )


def test_markdown_policy_table_matches_result(report: Report, result: BacktestResult) -> None:
    rows = markdown_rows(render_markdown(report), "Policies compared")
    assert list(rows) == POLICIES
    for name, run in result.runs.items():
        cells = rows[name]
        metrics = run.metrics
        assert number(cells[1]) == pytest.approx(metrics.shortfall_gpu_minutes, abs=0.5)
        assert number(cells[3]) == pytest.approx(100 * metrics.unserved_share, abs=0.005)
        assert number(cells[4]) == pytest.approx(100 * metrics.slo_attainment, abs=0.005)
        assert number(cells[5]) == pytest.approx(metrics.gpu_hours, abs=0.05)
        assert number(cells[7]) == pytest.approx(metrics.cost, abs=0.5)
        assert number(cells[8]) == metrics.scale_actions


def test_markdown_window_table_matches_result(report: Report, result: BacktestResult) -> None:
    rows = markdown_rows(render_markdown(report), "Under-provisioned GPU-minutes per peak window")
    assert len(rows) == len(result.peak_windows)
    reactive = result.runs["reactive"].metrics.window_shortfall_gpu_minutes
    column = 4 + POLICIES.index("reactive")
    for k, value in enumerate(reactive):
        assert number(rows[str(k + 1)][column]) == pytest.approx(value, abs=0.5)


def test_markdown_summary_names_target(report: Report) -> None:
    text = render_markdown(report)
    assert "## Summary" in text
    assert "the oracle's GPU-hours" in text


def test_html_contains_table_values(report: Report, result: BacktestResult) -> None:
    text = render_html(report)
    for run in result.runs.values():
        assert f'<td class="num">{run.metrics.shortfall_gpu_minutes:,.0f}</td>' in text
        assert f'<td class="num">{run.metrics.gpu_hours:,.1f}</td>' in text
        assert f'<td class="num">{run.metrics.cost:,.0f}</td>' in text


def test_html_embeds_png_plots(report: Report) -> None:
    text = render_html(report)
    images = re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"', text)
    # Demand and forecast, capacity plan, capacity per policy, zoom, lead times.
    assert len(images) == 5
    for encoded in images:
        assert base64.b64decode(encoded).startswith(PNG_SIGNATURE)


def test_html_is_self_contained(report: Report) -> None:
    text = render_html(report)
    assert "http://" not in text
    assert "https://" not in text
    assert "<script" not in text
    assert "<link" not in text
    sources = re.findall(r'src="([^"]*)"', text)
    assert sources
    assert all(source.startswith("data:image/png;base64,") for source in sources)


def test_stitched_forecast_uses_newest(result: BacktestResult) -> None:
    forecasts = [replan["llm-m-large"] for replan in result.forecasts]
    frame = stitch_forecasts(forecasts)
    assert frame is not None
    assert frame["ds"].is_monotonic_increasing
    assert frame["ds"].is_unique
    second = forecasts[1]
    row = frame[frame["ds"] == second.cutoff + second.step].iloc[0]
    assert row["yhat"] == second.point[0]


def test_note_says_lead_times_constant_without_draws(report: Report) -> None:
    [note] = [note for note in report.notes if "lead times" in note]
    assert note.startswith("This run uses the configured node_provisioning_seconds")
    assert "no failed GPU initialisations and no stockouts" in note
    assert "yet" not in note


def test_note_names_configured_draws(settings: Settings) -> None:
    simulator = SimulatorSettings.model_validate(
        {
            "stockout_probability": 0.1,
            "seed": 7,
            "pools": {
                "cloud-h100": {
                    "node_boot_seconds": {
                        "distribution": "lognormal",
                        "median_seconds": 300,
                        "p95_seconds": 900,
                    }
                }
            },
        }
    )
    drawn = settings.model_copy(update={"simulator": simulator})

    note = provisioning_note(drawn)

    assert note == (
        "This run draws lead times from the configured distributions and blocks burst pools "
        "with random stockouts (simulator.seed 7)."
    )


def test_note_names_failures_with_constant_lead_times(settings: Settings) -> None:
    simulator = SimulatorSettings.model_validate({"gpu_init_failure_probability": 0.05})
    drawn = settings.model_copy(update={"simulator": simulator})

    note = provisioning_note(drawn)

    assert note.startswith("This run uses the configured lead times as constants and fails GPU")
