"""Overrides: floors only inside their window, read in their own time zone, never lowering."""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forecaster.errors import ConfigError
from scaler.config_loader import parse_settings
from scaler.core.decision import RULE_FORECAST, RULE_OVERRIDE
from scaler.core.overrides import override_active
from scaler.core.policy import PolicyState, decide
from scaler.settings_guardrails import OverrideSettings
from tests.guardrails.helpers import flat_requirements, floors, guarded, usable
from tests.kube import builders as b

BERLIN_LAUNCH = {
    "name": "launch",
    "pool": "burst",
    "min_gpus": 40,
    "timezone": "Europe/Berlin",
    "start": "2026-05-08T09:00",
    "end": "2026-05-08T18:00",
}


def utc(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


@pytest.mark.parametrize(
    ("at", "active"),
    [
        pytest.param("2026-05-08T06:59:59", False, id="one-second-before-09-berlin"),
        pytest.param("2026-05-08T07:00:00", True, id="09-berlin-is-07-utc-in-summer"),
        pytest.param("2026-05-08T15:59:59", True, id="last-second"),
        pytest.param("2026-05-08T16:00:00", False, id="end-excluded"),
    ],
)
def test_one_off_window_in_berlin_time(at: str, active: bool) -> None:
    override = OverrideSettings.model_validate(BERLIN_LAUNCH)
    assert override_active(override, utc(at)) is active


# Central European time moves from UTC+1 to UTC+2 on Sunday 29 March 2026 at 02:00.
SUNDAY_MORNINGS = {
    "name": "sunday",
    "workload": "llm",
    "min_replicas": 30,
    "timezone": "Europe/Berlin",
    "days": ["sun"],
    "start": "09:00",
    "end": "18:00",
}


@pytest.mark.parametrize(
    ("at", "active"),
    [
        pytest.param("2026-03-22T07:30", False, id="before-dst-0730utc-is-0830-local"),
        pytest.param("2026-03-22T08:30", True, id="before-dst-0830utc-is-0930-local"),
        pytest.param("2026-03-22T16:59", True, id="before-dst-1659utc-is-1759-local"),
        pytest.param("2026-03-22T17:00", False, id="before-dst-1700utc-is-1800-local"),
        pytest.param("2026-03-29T07:30", True, id="after-dst-0730utc-is-0930-local"),
        pytest.param("2026-03-29T06:59", False, id="after-dst-0659utc-is-0859-local"),
        pytest.param("2026-03-29T16:00", False, id="after-dst-1600utc-is-1800-local"),
        pytest.param("2026-03-30T08:30", False, id="monday-not-listed"),
    ],
)
def test_weekly_window_follows_dst(at: str, active: bool) -> None:
    override = OverrideSettings.model_validate(SUNDAY_MORNINGS)
    assert override_active(override, utc(at)) is active


@pytest.mark.parametrize(
    ("at", "active"),
    [
        pytest.param("2026-03-06T21:30", False, id="friday-before-start"),
        pytest.param("2026-03-06T22:30", True, id="friday-night"),
        pytest.param("2026-03-07T05:59", True, id="saturday-early-morning"),
        pytest.param("2026-03-07T06:00", False, id="saturday-end"),
        pytest.param("2026-03-07T22:30", False, id="saturday-night-not-listed"),
    ],
)
def test_overnight_window_spans_midnight(at: str, active: bool) -> None:
    override = OverrideSettings.model_validate(
        {**SUNDAY_MORNINGS, "days": ["fri"], "start": "22:00", "end": "06:00", "timezone": "UTC"}
    )
    assert override_active(override, utc(at)) is active


def test_pool_override_raises_floor_only_in_window() -> None:
    config = guarded(overrides=[BERLIN_LAUNCH])
    inside = utc("2026-05-08T10:00")
    outside = utc("2026-05-08T17:00")
    for at, expected, rule in ((inside, 5, RULE_OVERRIDE), (outside, 2, RULE_FORECAST)):
        result = decide(
            at, flat_requirements(4, 2, at), floors(2, 4), PolicyState(), usable(at), config
        )
        burst = result.decision.pools[1]
        assert burst.name == "burst"
        assert burst.desired == expected  # 40 GPUs / 8 per node = 5 nodes
        assert burst.rule == rule
    inside_result = decide(
        inside, flat_requirements(4, 2, inside), floors(2, 4), PolicyState(), usable(inside), config
    )
    assert "launch" in inside_result.decision.pools[1].reason
    assert "Europe/Berlin" in inside_result.decision.pools[1].reason


def test_workload_override_raises_replicas_and_nodes() -> None:
    config = guarded(overrides=[{**SUNDAY_MORNINGS, "min_gpus": 40, "min_replicas": None}])
    at = utc("2026-03-29T07:30")
    result = decide(
        at, flat_requirements(4, 1, at), floors(1, 4), PolicyState(), usable(at), config
    )
    workload = result.decision.workloads[0]
    burst = result.decision.pools[1]
    assert workload.desired == 20  # 40 GPUs at 2 GPUs per replica
    assert workload.rule == RULE_OVERRIDE
    # 20 replicas of 2 GPUs: 4 fit on the static node, 16 need 4 burst nodes.
    assert burst.desired == 4
    assert burst.rule == RULE_OVERRIDE


def test_override_logged_once_at_info(caplog: pytest.LogCaptureFixture) -> None:
    config = guarded(overrides=[BERLIN_LAUNCH])
    at = utc("2026-05-08T10:00")
    state = PolicyState()
    messages = []
    for minute in range(3):
        now = at + pd.Timedelta(minutes=minute)
        caplog.clear()
        with caplog.at_level("INFO", logger="scaler.core.guardrails"):
            result = decide(
                now, flat_requirements(4, 2, at), floors(2, 4), state, usable(now), config
            )
        state = result.state
        messages.append([r for r in caplog.records if r.levelname == "INFO"])
    assert len(messages[0]) == 1
    assert "guardrail override" in messages[0][0].getMessage()
    assert "pool burst" in messages[0][0].getMessage()
    assert messages[1] == []
    assert messages[2] == []


@settings(max_examples=60, deadline=None)
@given(
    replicas=st.integers(1, 80),
    nodes=st.integers(0, 20),
    current_nodes=st.one_of(st.none(), st.integers(0, 20)),
    minutes=st.integers(0, 7 * 24 * 60),
    min_gpus=st.integers(1, 200),
)
def test_overrides_never_lower_a_plan(
    replicas: int, nodes: int, current_nodes: int | None, minutes: int, min_gpus: int
) -> None:
    at = utc("2026-03-23T00:00") + pd.Timedelta(minutes=minutes)
    plain = guarded()
    with_override = guarded(
        overrides=[
            {
                **SUNDAY_MORNINGS,
                "days": ["mon", "wed", "sun"],
                "min_replicas": None,
                "min_gpus": min_gpus,
            },
            {**BERLIN_LAUNCH, "start": "2026-03-24T00:00", "end": "2026-03-26T00:00"},
        ]
    )
    requirements = flat_requirements(replicas, nodes, at)
    current = floors(current_nodes, None)
    before = decide(at, requirements, current, PolicyState(), usable(at), plain).decision
    after = decide(at, requirements, current, PolicyState(), usable(at), with_override).decision
    for planned, overridden in zip(before.all_floors(), after.all_floors(), strict=True):
        assert overridden.desired >= planned.desired


def test_override_on_unknown_pool_rejected() -> None:
    raw = b.settings_dict()
    raw["guardrails"] = {"overrides": [{**BERLIN_LAUNCH, "pool": "nowhere"}]}
    with pytest.raises(ConfigError, match="pool 'nowhere' is not defined"):
        parse_settings(raw, b.Path("."))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        pytest.param({"end": "2026-05-08T08:00"}, "end must be after start", id="end-first"),
        pytest.param({"timezone": "Mars/Olympus"}, "unknown time zone", id="bad-zone"),
        pytest.param({"min_nodes": 3}, "exactly one of 'min_nodes'", id="two-amounts"),
        pytest.param({"start": 540, "days": ["fri"]}, "quote times of day", id="unquoted-time"),
        pytest.param({"start": "2026-05-08T09:00+02:00"}, "UTC offset", id="offset-given"),
    ],
)
def test_invalid_override_rejected(change: dict[str, object], message: str) -> None:
    raw = b.settings_dict()
    raw["guardrails"] = {"overrides": [{**BERLIN_LAUNCH, "pool": "cloud-h100", **change}]}
    with pytest.raises(ConfigError, match=message):
        parse_settings(raw, b.Path("."))
