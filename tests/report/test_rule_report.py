"""Floor rules in the backtest report, and unusable data in the forecast report's summary."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from forecaster.history import History
from scaler.backtest.runner import BacktestResult, run_backtest
from scaler.cli.main import app
from scaler.report.from_backtest import backtest_report
from scaler.report.from_forecast import forecast_report
from scaler.report.html import render_html
from scaler.report.json_report import render_json
from scaler.report.markdown import render_markdown
from scaler.report.model import FLOOR_RULES, Report
from scaler.settings import Settings
from tests.report.test_backtest_report import markdown_rows, number
from tests.scaler.planning_fixtures import (
    REPO,
    SERVEGEN,
    StandInEngine,
    default_settings,
    servegen_history,
)

WORKLOAD = "llm-m-large"
# Six hours without samples inside the simulated day (1970-01-03).
GAP_FROM = pd.Timestamp("1970-01-03 08:00", tz="UTC")
GAP_STEPS = 36
FLOOR_RULES_TITLE = "Floor rules"
HELD_PHRASE = "were missing_data_hold or safe_floor"


@pytest.fixture(scope="module")
def settings() -> Settings:
    return default_settings(backtest={"warmup_seconds": 2 * 86400, "duration_seconds": 86400})


def gapped_servegen() -> History:
    """The first four ServeGen days with six hours of missing samples on day three."""
    history = servegen_history(4)
    values = history.values.copy()
    position = values.index.get_loc(GAP_FROM)
    values.iloc[position : position + GAP_STEPS] = np.nan
    return History(history.name, values, history.step)


def run(settings: Settings, history: History, policies: list[str]) -> BacktestResult:
    engine = StandInEngine(settings.forecast)
    return run_backtest(settings, {WORKLOAD: history}, policies, engine=engine)


@pytest.fixture(scope="module")
def gap_result(settings: Settings) -> BacktestResult:
    return run(settings, gapped_servegen(), ["reactive", "peakcast", "peakcast+reactive"])


@pytest.fixture(scope="module")
def gap_report(settings: Settings, gap_result: BacktestResult) -> Report:
    return backtest_report(settings, gap_result, source="test.yaml")


@pytest.fixture(scope="module")
def clean_report(settings: Settings) -> Report:
    clean = run(settings, servegen_history(4), ["reactive", "peakcast"])
    return backtest_report(settings, clean, source="test.yaml")


def rule_cells(text: str) -> dict[str, dict[str, str]]:
    """Return the Markdown floor rule table's cells per policy, keyed by column header."""
    header = text.split(f"### {FLOOR_RULES_TITLE}\n\n", 1)[1].splitlines()[0]
    headers = [cell.strip() for cell in header.strip("|").split(" | ")]
    return {
        policy: dict(zip(headers, cells, strict=True))
        for policy, cells in markdown_rows(text, FLOOR_RULES_TITLE).items()
    }


def held_share(result: BacktestResult, policy: str) -> float:
    """Return the share of non-static floor decisions held on unusable data."""
    counts = result.runs[policy].rule_counts
    decisions = sum(n for rule, n in counts.items() if rule != "static")
    held = counts.get("missing_data_hold", 0) + counts.get("safe_floor", 0)
    return held / decisions


def test_markdown_rule_table_shows_hold_share(
    gap_report: Report, gap_result: BacktestResult
) -> None:
    table = rule_cells(render_markdown(gap_report))
    assert list(table) == ["peakcast", "peakcast+reactive"]
    cells = table["peakcast"]
    assert list(cells)[:3] == ["policy", "floor decisions", "forecast"]
    assert "missing_data_hold" in cells
    assert "safe_floor" in cells
    assert "static" not in cells

    counts = gap_result.runs["peakcast"].rule_counts
    decisions = sum(n for rule, n in counts.items() if rule != "static")
    assert number(cells["floor decisions"]) == decisions
    assert number(cells["forecast"]) == pytest.approx(
        100 * counts["forecast"] / decisions, abs=0.005
    )
    assert number(cells["missing_data_hold"]) == pytest.approx(
        100 * counts["missing_data_hold"] / decisions, abs=0.005
    )
    # The six-hour gap keeps floors held in well over 5 % of the decisions.
    assert number(cells["missing_data_hold"]) > 5
    assert table["peakcast+reactive"]["missing_data_hold"] == cells["missing_data_hold"]


def test_html_has_rule_table(gap_report: Report) -> None:
    text = render_html(gap_report)
    assert f"<h3>{FLOOR_RULES_TITLE}</h3>" in text
    assert "<th>missing_data_hold</th>" in text


def test_summary_names_held_share(gap_report: Report, gap_result: BacktestResult) -> None:
    matching = [sentence for sentence in gap_report.summary if HELD_PHRASE in sentence]
    assert len(matching) == 1, gap_report.summary
    [sentence] = matching
    counts = gap_result.runs["peakcast"].rule_counts
    decisions = sum(n for rule, n in counts.items() if rule != "static")
    share = held_share(gap_result, "peakcast")
    assert sentence.startswith(f"peakcast and peakcast+reactive: {share:.1%} of the floor")
    assert f"({counts['missing_data_hold']:,} of {decisions:,})" in sentence
    assert "the data was unusable" in sentence
    assert "forecast.min_coverage" in sentence
    assert "not a forecast error" in sentence


def test_clean_run_has_no_held_sentence(clean_report: Report) -> None:
    assert not any(HELD_PHRASE in sentence for sentence in clean_report.summary)
    cells = rule_cells(render_markdown(clean_report))["peakcast"]
    assert cells["missing_data_hold"] == "0.00%"
    assert cells["safe_floor"] == "0.00%"


def test_json_contains_rule_counts(gap_report: Report, gap_result: BacktestResult) -> None:
    rules = json.loads(render_json(gap_report))["backtest"]["floor_rules"]
    assert [entry["policy"] for entry in rules] == ["peakcast", "peakcast+reactive"]
    [peakcast, _] = rules
    counts = gap_result.runs["peakcast"].rule_counts
    assert list(peakcast["counts"]) == list(FLOOR_RULES)
    assert {rule: n for rule, n in peakcast["counts"].items() if n} == dict(counts)
    assert peakcast["counts"]["safe_floor"] == counts.get("safe_floor", 0)
    assert peakcast["decisions"] == sum(counts.values()) - counts["static"]
    assert peakcast["unusable_data_share"] == pytest.approx(held_share(gap_result, "peakcast"))


def test_json_rules_null_without_peakcast(settings: Settings) -> None:
    reactive = run(settings, gapped_servegen(), ["reactive"])
    built = backtest_report(settings, reactive, source="test.yaml")

    assert json.loads(render_json(built))["backtest"]["floor_rules"] is None
    text = render_markdown(built)
    assert "No peakcast policy ran, so no floor was decided by peakcast's rules." in text
    assert not any(HELD_PHRASE in sentence for sentence in built.summary)


# --- forecast report ----------------------------------------------------------------------


def stale_servegen(stale_steps: int) -> History:
    """Four ServeGen days whose last ``stale_steps`` samples are missing."""
    history = servegen_history(4)
    values = history.values.copy()
    values.iloc[-stale_steps:] = np.nan
    return History(history.name, values, history.step)


def plan_report(settings: Settings, history: History, at: pd.Timestamp | None = None) -> Report:
    forecast = StandInEngine(settings.forecast).fit(history).predict()
    return forecast_report(
        settings, {WORKLOAD: history}, {WORKLOAD: forecast}, source="test.yaml", at=at
    )


def unusable_sentences(report: Report) -> list[str]:
    return [s for s in report.summary if s.startswith(f"The data of {WORKLOAD} is unusable")]


def test_forecast_report_states_stale_tail(settings: Settings) -> None:
    history = stale_servegen(18)  # three hours
    report = plan_report(settings, history)

    [sentence] = unusable_sentences(report)
    # The report time defaults to the end of the newest step, 1970-01-05 00:00.
    assert sentence.startswith(f"The data of {WORKLOAD} is unusable at 1970-01-05 00:00 UTC (")
    assert "1970-01-04T20:50:00" in sentence  # the newest sample
    assert sentence.endswith(
        "so a live cycle would hold its floors then (rule missing_data_hold, later safe_floor) "
        "instead of following this forecast."
    )
    assert report.summary.index(sentence) == 1


def test_forecast_report_judges_at_given_time(settings: Settings) -> None:
    history = servegen_history(4)
    fresh = plan_report(settings, history, at=history.end + history.step)
    late = plan_report(settings, history, at=history.end + pd.Timedelta(hours=3))

    assert unusable_sentences(fresh) == []
    [sentence] = unusable_sentences(late)
    assert "unusable at 1970-01-05 02:50 UTC" in sentence


def test_forecast_report_states_low_coverage(settings: Settings) -> None:
    history = servegen_history(4)
    values = history.values.copy()
    # Every other sample missing: coverage near 50 %, below forecast.min_coverage (80 %).
    values.iloc[-2::-2] = np.nan
    sparse = History(history.name, values, history.step)

    [sentence] = unusable_sentences(plan_report(settings, sparse))
    assert "forecast.min_coverage" in sentence


def test_report_command_states_stale_tail(tmp_path: Path) -> None:
    frame = pd.read_csv(SERVEGEN)
    frame = frame.iloc[: 11 * 144].copy()
    frame.loc[frame.index[-18:], "req_per_s"] = np.nan  # the last three hours
    trace = tmp_path / "stale.csv"
    frame.to_csv(trace, index=False)
    raw = yaml.safe_load((REPO / "config" / "peakcast.yaml").read_text())
    raw["sources"]["servegen"]["path"] = str(trace)
    config = tmp_path / "peakcast.yaml"
    config.write_text(yaml.safe_dump(raw))
    output = tmp_path / "plan.json"

    result = CliRunner().invoke(
        app,
        [
            "report",
            "--config",
            str(config),
            "--horizon-days",
            "1",
            "--format",
            "json",
            "--output",
            str(output),
        ],
    )

    assert result.exit_code == 0, result.output
    summary = json.loads(output.read_text())["summary"]
    stale = [s for s in summary if s.startswith(f"The data of {WORKLOAD} is unusable")]
    assert len(stale) == 1, summary
    # Without --at the report is made at the end of the trace's last step.
    assert stale[0].startswith(f"The data of {WORKLOAD} is unusable at 1970-01-12 00:00 UTC")
    assert "1970-01-11T20:50:00" in stale[0]
    assert "would hold its floors" in " ".join(result.stdout.split())
