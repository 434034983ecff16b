"""Bad input: mutated configs and hostile history.

Configs are the embedded default with one mutation drawn by Hypothesis: a wrong type, an
out-of-range number, an unknown key, a missing required key, a reference to something not
defined, or an unknown time zone. Every invalid one must raise ``ConfigError`` with the key
path of the problem, never another exception. ``peakcast validate-config`` must print that
error without a traceback and exit with code 2.

History is a 3-day trace at 10 minutes with NaN/Inf, negative values, duplicate and
out-of-order rows, timestamps written with other UTC offsets, and huge spikes. Forecasts
must stay finite and non-negative, and every floor must stay inside its bounds.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from forecaster.errors import ConfigError
from scaler.actuators.dry_run import DryRunActuator
from scaler.cli.main import app
from scaler.config_loader import DEFAULT_CONFIG, parse_settings
from scaler.core.capacity import replicas_for_demand, replicas_for_value
from scaler.cycle import LiveCycle
from scaler.histories import HistoryLoader
from scaler.settings import Settings

pytestmark = pytest.mark.timeout(120)

BASE_DIR = DEFAULT_CONFIG.parent
DEFAULT = yaml.safe_load(DEFAULT_CONFIG.read_text(encoding="utf-8"))
TOP_LEVEL_KEYS = set(Settings.model_fields)
KEY_PATH = re.compile(r"^[A-Za-z_]+(\.[A-Za-z0-9_-]+|\[\d+\])*$")
Path_ = tuple[str | int, ...]

BAD_VALUES: list[Any] = [
    "not-a-number",
    -1,
    -1e9,
    0,
    10**12,
    None,
    [],
    {},
    True,
    float("nan"),
    float("inf"),
    "Mars/Olympus",
]

# Keys the config must contain (pydantic "missing" errors name them).
REQUIRED: list[Path_] = [
    ("sources",),
    ("pools",),
    ("workloads",),
    ("sources", "servegen", "kind"),
    ("sources", "servegen", "path"),
    ("pools", 0, "name"),
    ("pools", 1, "kind"),
    ("pools", 1, "gpus_per_node"),
    ("pools", 1, "max_nodes"),
    ("workloads", 0, "name"),
    ("workloads", 0, "demand"),
    ("workloads", 0, "demand", "source"),
    ("workloads", 0, "demand", "series"),
    ("workloads", 0, "demand", "unit"),
    ("workloads", 0, "capacity"),
    ("workloads", 0, "capacity", "throughput_per_replica"),
    ("workloads", 0, "pools"),
    ("workloads", 0, "target", "kind"),
]


def walk(node: Any, path: Path_ = ()) -> list[tuple[Path_, Any]]:
    """Return every (path, value) in ``node``, parents before children."""
    found: list[tuple[Path_, Any]] = [(path, node)] if path else []
    if isinstance(node, dict):
        for key, value in node.items():
            found += walk(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += walk(value, (*path, index))
    return found


LEAVES = [path for path, value in walk(DEFAULT) if not isinstance(value, dict | list)]
# 'sources' maps names to sources, so a new key there is a new source, not an unknown key.
NAMED_MAPPINGS = {("sources",)}
MAPPINGS = [()] + [
    path for path, value in walk(DEFAULT) if isinstance(value, dict) and path not in NAMED_MAPPINGS
]


def key_text(path: Path_) -> str:
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        elif text:
            text += f".{part}"
        else:
            text = part
    return text


def at(config: dict[str, Any], path: Path_) -> Any:
    node: Any = config
    for part in path:
        node = node[part]
    return node


def mutated(path: Path_, change: Any) -> dict[str, Any]:
    config = copy.deepcopy(DEFAULT)
    parent = at(config, path[:-1])
    change(parent, path[-1])
    return config


def parse(config: dict[str, Any]) -> Settings | ConfigError:
    """Parse ``config``; return the error instead of raising it. Any other exception escapes."""
    try:
        return parse_settings(config, BASE_DIR)
    except ConfigError as error:
        return error


def assert_names_key(error: ConfigError) -> None:
    assert KEY_PATH.match(error.key), error.key
    assert re.split(r"[.\[]", error.key)[0] in TOP_LEVEL_KEYS, error.key
    assert error.allowed


FAST = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(path=st.sampled_from(LEAVES), value=st.sampled_from(BAD_VALUES))
def test_wrong_value_is_config_error_or_valid(path: Path_, value: Any) -> None:
    def put(parent: Any, key: Any) -> None:
        parent[key] = value

    result = parse(mutated(path, put))

    if isinstance(result, ConfigError):
        assert_names_key(result)


@FAST
@given(path=st.sampled_from(MAPPINGS), name=st.sampled_from(["colour", "max_node", "Timeout"]))
def test_unknown_key_is_named(path: Path_, name: str) -> None:
    config = copy.deepcopy(DEFAULT)
    at(config, path)[name] = 1

    result = parse(config)

    assert isinstance(result, ConfigError)
    assert result.key.startswith(key_text((*path, name)))
    assert result.allowed.startswith("no such key; remove it or check its spelling")


@FAST
@given(path=st.sampled_from(REQUIRED))
def test_missing_required_key_is_named(path: Path_) -> None:
    result = parse(mutated(path, lambda parent, key: parent.pop(key)))

    assert isinstance(result, ConfigError)
    assert result.key == key_text(path)
    assert result.allowed == "a value is required"


REFERENCES: list[tuple[Path_, str]] = [
    (("workloads", 0, "demand", "source"), "workloads[0].demand.source"),
    (("workloads", 0, "pools", 1), "workloads[0].pools[1]"),
    (("workloads", 0, "pools", 0), "workloads[0].pools[0]"),
]


@FAST
@given(
    reference=st.sampled_from(REFERENCES),
    name=st.text(alphabet="abcdefghijklmnopqrstuvwxyz-", min_size=1, max_size=12),
)
def test_bad_reference_is_named(reference: tuple[Path_, str], name: str) -> None:
    path, key = reference
    config = mutated(path, lambda parent, part: parent.__setitem__(part, f"undefined-{name}"))

    result = parse(config)

    assert isinstance(result, ConfigError)
    assert result.key == key
    assert result.value == f"undefined-{name}"
    assert "not defined" in result.allowed


@FAST
@given(
    path=st.sampled_from([("timezone",), ("sources", "servegen", "timezone")]),
    zone=st.sampled_from(["Mars/Olympus", "UTC+25", "", "Europe/Berln", "../etc/passwd", "utc "]),
)
def test_bad_zone_is_named(path: Path_, zone: str) -> None:
    result = parse(mutated(path, lambda parent, key: parent.__setitem__(key, zone)))

    assert isinstance(result, ConfigError)
    assert result.key == key_text(path)


CLI_SAMPLE = [
    pytest.param(("pools", 1, "max_nodes"), "many", "pools[1].max_nodes", id="wrong-type"),
    pytest.param(("pools", 1, "max_nodes"), -3, "pools[1].max_nodes", id="out-of-range"),
    pytest.param(("policy", "cooldown"), 5, "policy.cooldown", id="unknown-key"),
    pytest.param(("timezone",), "Mars/Olympus", "timezone", id="bad-zone"),
    pytest.param(
        ("workloads", 0, "demand", "source"), "nope", "workloads[0].demand.source", id="bad-ref"
    ),
    pytest.param(
        ("workloads", 0, "capacity", "throughput_per_replica"),
        float("inf"),
        "workloads[0].capacity.throughput_per_replica",
        id="infinite",
    ),
]


@pytest.mark.parametrize(("path", "value", "key"), CLI_SAMPLE)
def test_validate_config_prints_key_not_traceback(
    path: Path_, value: Any, key: str, tmp_path: Path
) -> None:
    config = mutated(path, lambda parent, part: parent.__setitem__(part, value))
    source = config["sources"]["servegen"]
    source["path"] = str(BASE_DIR / source["path"])
    file = tmp_path / "peakcast.yaml"
    file.write_text(yaml.safe_dump(config), encoding="utf-8")

    result = CliRunner().invoke(app, ["validate-config", "--config", str(file)])

    assert result.exit_code == 2
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    assert f"config error: {key}:" in result.output


# --- history ------------------------------------------------------------------------------

TRACE_START = pd.Timestamp("2026-03-01T00:00:00Z")
TRACE_STEP = pd.Timedelta(minutes=10)
TRACE_ROWS = 3 * 144
OFFSETS = ["+02:00", "-07:00", "+05:30", "+00:00"]


def clean_trace() -> pd.DataFrame:
    """Return the fault-free trace: a daily wave between 100 and 400 requests/s."""
    times = pd.date_range(TRACE_START, periods=TRACE_ROWS, freq=TRACE_STEP)
    hours = (times.hour + times.minute / 60).to_numpy()
    values = 100 + 300 * (1 + np.cos(2 * np.pi * (hours - 12) / 24)) / 2
    return pd.DataFrame({"timestamp": times, "req_per_s": values})


@st.composite
def hostile_traces(draw: st.DrawFn) -> list[tuple[str, str]]:
    """Draw the rows of a CSV trace (timestamp text, value text) with faults mixed in."""
    frame = clean_trace()
    rows = list(range(TRACE_ROWS))
    index = st.integers(min_value=0, max_value=TRACE_ROWS - 1)
    values: list[str] = [repr(float(v)) for v in frame["req_per_s"]]
    for row in draw(st.lists(index, max_size=40)):
        values[row] = draw(st.sampled_from(["NaN", "inf", "-inf", "", "nan"]))
    for row in draw(st.lists(index, max_size=20)):
        values[row] = repr(-abs(float(frame["req_per_s"][row])) - 1)
    for row in draw(st.lists(index, max_size=5)):
        values[row] = repr(draw(st.sampled_from([1e9, 1e15, 1e300])))
    stamps = []
    shifted = set(draw(st.lists(index, max_size=60)))
    for row in rows:
        moment = frame["timestamp"][row]
        if row in shifted:
            stamps.append(with_offset(moment, draw(st.sampled_from(OFFSETS))))
        else:
            stamps.append(moment.strftime("%Y-%m-%dT%H:%M:%SZ"))
    table = list(zip(stamps, values, strict=True))
    for row in draw(st.lists(index, max_size=10)):
        table.append(table[row])  # a duplicate timestamp, kept last
    if draw(st.booleans()):
        start = draw(st.integers(min_value=0, max_value=TRACE_ROWS - 50))
        block = table[start : start + 50]
        table[start : start + 50] = list(reversed(block))
    return table


def with_offset(moment: pd.Timestamp, offset: str) -> str:
    """Write the UTC ``moment`` as local time at ``offset`` (e.g. ``+05:30``): same instant."""
    sign = 1 if offset[0] == "+" else -1
    delta = pd.Timedelta(hours=int(offset[1:3]), minutes=int(offset[4:6]))
    return (moment + sign * delta).strftime("%Y-%m-%dT%H:%M:%S") + offset


def trace_settings(path: Path, model: str) -> Settings:
    raw = {
        "version": 1,
        "sources": {"trace": {"kind": "csv", "path": str(path)}},
        "forecast": {
            "model": model,
            "step_seconds": 1800,
            "season_lengths_seconds": [86_400],
            "horizon_seconds": 6 * 3600,
            "history_seconds": 3 * 86_400,
            "calibration_windows": 2,
        },
        "pools": [
            {"name": "onprem", "kind": "static", "gpus_per_node": 8, "max_nodes": 2},
            {"name": "burst", "kind": "burst", "gpus_per_node": 8, "min_nodes": 1, "max_nodes": 6},
        ],
        "workloads": [
            {
                "name": "llm",
                "demand": {"source": "trace", "series": "req_per_s", "unit": "requests_per_second"},
                "capacity": {
                    "throughput_per_replica": 25.0,
                    "gpus_per_replica": 2,
                    "min_replicas": 2,
                    "max_replicas": 30,
                },
                "pools": ["onprem", "burst"],
            }
        ],
    }
    return parse_settings(raw, path.parent)


CURRENT = {("pool", "onprem"): 2, ("pool", "burst"): 3, ("workload", "llm"): 10}
NOW = TRACE_START + TRACE_ROWS * TRACE_STEP


def write_trace(path: Path, table: list[tuple[str, str]]) -> None:
    lines = ["timestamp,req_per_s", *(f"{stamp},{value}" for stamp, value in table)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def check_cycle(path: Path, model: str) -> None:
    """Refresh and plan once on the trace at ``path``; check forecast and floors."""
    config = trace_settings(path, model)
    cycle = LiveCycle(config, HistoryLoader(config), DryRunActuator(config, CURRENT))

    view = cycle.refresh(config.workloads[0], NOW)
    outcome = cycle.plan(NOW, lambda: True)

    assert outcome is not None
    if view.forecast is not None:
        for values in (view.forecast.point, *view.forecast.quantiles.values()):
            assert np.isfinite(values).all()
            assert (values >= 0).all()
    floors = {floor.name: floor.desired for floor in outcome.decision.all_floors()}
    assert floors["onprem"] == 2
    assert 1 <= floors["burst"] <= 6
    assert 2 <= floors["llm"] <= 30
    if not view.status.usable:
        assert floors["burst"] >= CURRENT[("pool", "burst")]
        assert floors["llm"] >= CURRENT[("workload", "llm")]


HISTORY = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@HISTORY
@given(table=hostile_traces())
def test_hostile_history_keeps_plan_in_bounds(table: list[tuple[str, str]], tmp_path: Path) -> None:
    path = tmp_path / "trace.csv"
    write_trace(path, table)

    check_cycle(path, "seasonal_naive")


# A spike of 1e300 in the first samples of the window, which the spike rule cannot judge yet,
# overflows inside statsmodels' Holt-Winters. Outside tests that is a warning, the forecast
# stays finite or is rejected as non-finite, and the plan is clamped to its bounds.
@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(table=hostile_traces())
def test_hostile_history_holt_winters(table: list[tuple[str, str]], tmp_path: Path) -> None:
    path = tmp_path / "trace.csv"
    write_trace(path, table)

    check_cycle(path, "holt_winters")


def test_offsets_name_same_instant() -> None:
    moment = pd.Timestamp("2026-03-01T23:40:00Z")

    for offset in OFFSETS:
        assert pd.Timestamp(with_offset(moment, offset)) == moment


@pytest.mark.parametrize("demand", [1e19, 1e30, 1e300], ids=["1e19", "1e30", "1e300"])
def test_runaway_forecast_clamped_to_max(demand: float) -> None:
    """A finite but absurd forecast needs more than 2**63 replicas: the maximum, not a wrap."""
    capacity = parse_settings(copy.deepcopy(DEFAULT), BASE_DIR).workloads[0].capacity

    assert list(replicas_for_demand([demand, 0.0], capacity)) == [
        capacity.max_replicas,
        capacity.min_replicas,
    ]
    assert replicas_for_value(demand, capacity) == capacity.max_replicas
