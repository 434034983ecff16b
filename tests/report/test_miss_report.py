"""Forecast misses in the backtest report: tables, JSON, the list cap and the plot markers."""

from __future__ import annotations

import json
from dataclasses import replace

import pandas as pd
import pytest
from matplotlib.figure import Figure

from forecaster.history import History
from scaler.backtest.misses import BacktestMiss
from scaler.backtest.runner import BacktestResult, run_backtest
from scaler.report.from_backtest import backtest_report
from scaler.report.html import render_html
from scaler.report.json_report import render_json
from scaler.report.markdown import render_markdown
from scaler.report.model import Report
from scaler.report.plots import draw_misses, render_plots
from scaler.report.tables import MAX_MISS_ROWS
from scaler.settings import Settings
from tests.report.test_backtest_report import markdown_rows
from tests.scaler.planning_fixtures import StandInEngine, default_settings, servegen_history

WORKLOAD = "llm-m-large"
SURGE_FROM = pd.Timestamp("1970-01-03 06:10", tz="UTC")
FIRST_MISS = SURGE_FROM + pd.Timedelta(minutes=15)
SECOND_MISS = SURGE_FROM + pd.Timedelta(minutes=30)
PER_WORKLOAD = "Forecast misses per workload"
IN_ORDER = "Forecast misses in time order"


@pytest.fixture(scope="module")
def settings() -> Settings:
    return default_settings(backtest={"warmup_seconds": 2 * 86400, "duration_seconds": 86400})


def surged_servegen() -> History:
    """The first four ServeGen days with 40 minutes at ten times the rate on day three."""
    history = servegen_history(4)
    values = history.values.copy()
    position = values.index.get_loc(SURGE_FROM)
    values.iloc[position : position + 4] *= 10
    return History(history.name, values, history.step)


def run(settings: Settings, history: History, policies: list[str]) -> BacktestResult:
    engine = StandInEngine(settings.forecast)
    return run_backtest(settings, {WORKLOAD: history}, policies, engine=engine)


@pytest.fixture(scope="module")
def result(settings: Settings) -> BacktestResult:
    return run(settings, surged_servegen(), ["reactive", "peakcast"])


@pytest.fixture(scope="module")
def report(settings: Settings, result: BacktestResult) -> Report:
    return backtest_report(settings, result, source="test.yaml")


@pytest.fixture(scope="module")
def quiet_report(settings: Settings) -> Report:
    quiet = run(settings, servegen_history(4), ["peakcast"])
    return backtest_report(settings, quiet, source="test.yaml")


def test_json_lists_misses(report: Report, result: BacktestResult) -> None:
    [workload] = json.loads(render_json(report))["backtest"]["forecast_misses"]
    assert workload["workload"] == WORKLOAD
    assert workload["unit"] == "requests_per_second"
    assert workload["upper_level"] == 0.95
    assert workload["planning_level"] == 0.9
    assert workload["miss_after_seconds"] == 900
    assert workload["count"] == 2
    assert workload["first_at"] == FIRST_MISS.isoformat()
    assert workload["last_at"] == SECOND_MISS.isoformat()
    assert workload["minutes_above_upper"] == 40
    assert workload["widest_level"] == 0.95
    first = result.misses[WORKLOAD][0]
    assert workload["misses"][0] == {
        "above_since": SURGE_FROM.isoformat(),
        "at": FIRST_MISS.isoformat(),
        "level": 0.95,
        "demand": first.demand,
        "upper": first.upper,
    }
    assert [miss["at"] for miss in workload["misses"]] == [
        FIRST_MISS.isoformat(),
        SECOND_MISS.isoformat(),
    ]


def test_json_without_misses_has_empty_list(quiet_report: Report) -> None:
    [workload] = json.loads(render_json(quiet_report))["backtest"]["forecast_misses"]
    assert workload["count"] == 0
    assert workload["first_at"] is None
    assert workload["misses"] == []


def test_json_without_peakcast_is_null(settings: Settings) -> None:
    reactive = run(settings, surged_servegen(), ["reactive"])
    built = backtest_report(settings, reactive, source="test.yaml")

    assert json.loads(render_json(built))["backtest"]["forecast_misses"] is None
    assert "No peakcast policy ran" in render_markdown(built)


def test_markdown_tables_list_misses(report: Report) -> None:
    text = render_markdown(report)
    assert "## Forecast misses" in text
    row = markdown_rows(text, PER_WORKLOAD)[WORKLOAD]
    assert row[1:] == [
        "P95",
        "15 min",
        "2",
        "1970-01-03 06:25",
        "1970-01-03 06:40",
        "40",
        "P95",
    ]
    listed = text.split(f"### {IN_ORDER}\n\n", 1)[1].split("\n\n", 1)[0].splitlines()[2:]
    assert len(listed) == 2
    assert "| 1970-01-03 06:10 | 1970-01-03 06:25 |" in listed[0]
    assert "| 1970-01-03 06:25 | 1970-01-03 06:40 |" in listed[1]


def test_markdown_without_misses_says_so(quiet_report: Report) -> None:
    text = render_markdown(quiet_report)
    section = text.split("## Forecast misses\n", 1)[1].split("\n## ", 1)[0]
    assert "No forecast misses: demand never stayed above the P95 forecast for 15 min." in section
    assert "|" not in section
    assert IN_ORDER not in section


def test_html_contains_miss_tables(report: Report) -> None:
    text = render_html(report)
    assert "<h2>Forecast misses</h2>" in text
    assert f"<h3>{PER_WORKLOAD}</h3>" in text
    assert f"<h3>{IN_ORDER}</h3>" in text
    assert '<td class="num">2</td><td>1970-01-03 06:25</td><td>1970-01-03 06:40</td>' in text


def test_html_without_misses_says_so(quiet_report: Report) -> None:
    text = render_html(quiet_report)
    assert "<p>No forecast misses: demand never stayed above the P95 forecast" in text


def test_miss_list_capped(settings: Settings, result: BacktestResult) -> None:
    many = tuple(
        BacktestMiss(
            WORKLOAD,
            FIRST_MISS + pd.Timedelta(minutes=15 * k),
            FIRST_MISS + pd.Timedelta(minutes=15 * (k + 1)),
            0.95,
            500.0,
            400.0,
        )
        for k in range(MAX_MISS_ROWS + 5)
    )
    crowded = replace(result, misses={WORKLOAD: many})
    text = render_markdown(backtest_report(settings, crowded, source="test.yaml"))
    block = text.split(f"### {IN_ORDER}\n\n", 1)[1]
    rows = block.split("\n\n", 1)[0].splitlines()[2:]
    assert len(rows) == MAX_MISS_ROWS
    assert "Shown: the first 20 of 25 misses; 5 are left out." in block
    data = json.loads(render_json(backtest_report(settings, crowded, source="test.yaml")))
    assert len(data["backtest"]["forecast_misses"][0]["misses"]) == MAX_MISS_ROWS + 5


def test_demand_view_marks_misses_in_gpus(report: Report, result: BacktestResult) -> None:
    [view] = report.demand
    # Demand in GPUs at the SLO: requests/s / 25 per replica × 2 GPUs per replica.
    expected = tuple((miss.at, miss.demand / 25.0 * 2) for miss in result.misses[WORKLOAD])
    assert len(view.misses) == 2
    for (time, gpus), (expected_time, expected_gpus) in zip(view.misses, expected, strict=True):
        assert time == expected_time
        assert gpus == pytest.approx(expected_gpus)


def test_demand_plot_draws_miss_markers(report: Report) -> None:
    [view] = report.demand
    ax = Figure().add_subplot()

    draw_misses(ax, view)

    [markers] = ax.collections
    assert markers.get_label() == "forecast miss"
    assert len(markers.get_offsets()) == 2
    assert "forecast miss" in [text.get_text() for text in ax.get_legend().get_texts()]


def test_demand_plot_caption_counts_misses(report: Report) -> None:
    demand_plot = render_plots(report)[0]
    assert "Red triangles: the 2 forecast misses" in demand_plot.caption


def test_summary_states_misses(report: Report) -> None:
    sentence = next(s for s in report.summary if "forecast misses" in s)
    assert sentence == (
        f"{WORKLOAD}: 2 forecast misses (demand above the P95 forecast for 15 min in a row), "
        "the first at 1970-01-03 06:25. Demand was above that quantile for 40 minutes in total."
    )


def test_summary_without_misses_says_so(quiet_report: Report) -> None:
    assert any(s.startswith(f"{WORKLOAD}: no forecast miss.") for s in quiet_report.summary)
