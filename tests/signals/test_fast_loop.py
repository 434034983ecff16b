"""The fast loop with scripted signals: hysteresis, bounds, unreadable sources, never lowering."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forecaster.errors import TransientError
from scaler.core.decision import CycleDecision, FloorDecision
from scaler.fastloop import FastLoop
from scaler.signals.base import Reading, Sample, SignalKey, SignalUnavailableError
from scaler.signals.hysteresis import MAX_BUFFERED_SAMPLES, SampleBuffer, trailing_run
from scaler.signals.raised import CombinedActuator, RaisedFloors, combine_decision
from scaler.signals.settings import HysteresisSettings
from tests.kube import builders as b
from tests.signals import builders as sb
from tests.signals.fakes import MemoryActuator

T0 = b.START
HOLD = HysteresisSettings(hold_seconds=30, min_samples=3)


@dataclass
class ScriptedSignal:
    """A signal that returns one sample per read from a list; None raises as unreadable."""

    values: list[float | None]
    key: SignalKey = field(default_factory=lambda: SignalKey("scripted", "workload", "llm"))
    threshold: float = 10.0
    floor: Callable[[int], int] = lambda current: current + 3
    hysteresis: HysteresisSettings = HOLD
    cooldown_seconds: int = 0
    reads: list[pd.Timestamp] = field(default_factory=list)

    def read(self, now: pd.Timestamp) -> Reading:
        value = self.values[len(self.reads)]
        self.reads.append(now)
        if value is None:
            raise SignalUnavailableError("scripted source is down")
        sample = Sample(now, value, value > self.threshold)
        return Reading((sample,), value, self.threshold, "requests", self.floor)


def floors(replicas: int | None = 2) -> dict[tuple[str, str], int | None]:
    return {("pool", sb.POOL): 1, ("pool", "onprem-h100"): 2, ("workload", "llm"): replicas}


def loop_with(signal: ScriptedSignal, actuator: MemoryActuator) -> FastLoop:
    settings = sb.settings()
    raised = RaisedFloors(settings.policy.stabilization_window_seconds)
    return FastLoop(settings, [signal], CombinedActuator(actuator, raised))


def cycles(loop: FastLoop, count: int, every: int = 15) -> list[str]:
    return [
        loop.run_once(T0 + pd.Timedelta(seconds=every * i)).reports[0].status for i in range(count)
    ]


def test_signal_raises_after_hysteresis() -> None:
    actuator = MemoryActuator(floors())
    loop = loop_with(ScriptedSignal([20, 20, 20, 20], floor=lambda current: 5), actuator)

    assert cycles(loop, 4) == ["holding", "holding", "raised", "at_floor"]
    assert actuator.floors[("workload", "llm")] == 5


def test_one_noisy_sample_does_nothing() -> None:
    actuator = MemoryActuator(floors())
    loop = loop_with(ScriptedSignal([1, 50, 1, 1, 20, 20]), actuator)

    assert cycles(loop, 6) == ["below", "holding", "below", "below", "holding", "holding"]
    assert actuator.applied == []


def test_unreadable_sample_ends_the_run() -> None:
    actuator = MemoryActuator(floors())
    loop = loop_with(ScriptedSignal([20, 20, None, 20, 20]), actuator)

    assert cycles(loop, 5) == ["holding", "holding", "unreadable", "holding", "holding"]
    assert actuator.applied == []


def test_unreadable_floors_change_nothing() -> None:
    actuator = MemoryActuator(floors())
    actuator.broken = TransientError("GET horizontalpodautoscalers failed with HTTP 503")
    loop = loop_with(ScriptedSignal([20, 20, 20]), actuator)

    outcomes = [loop.run_once(T0 + pd.Timedelta(seconds=15 * i)) for i in range(3)]

    assert outcomes[-1].error is not None
    assert "HTTP 503" in outcomes[-1].error
    assert actuator.applied == []


def test_unknown_floor_is_not_raised() -> None:
    actuator = MemoryActuator(floors(replicas=None))
    loop = loop_with(ScriptedSignal([20, 20, 20]), actuator)

    assert cycles(loop, 3)[-1] == "floor_unknown"
    assert actuator.applied == []


def test_raise_is_capped_at_max_replicas() -> None:
    actuator = MemoryActuator(floors(replicas=62))
    loop = loop_with(ScriptedSignal([20, 20, 20], floor=lambda current: current * 4), actuator)

    cycles(loop, 3)

    assert actuator.floors[("workload", "llm")] == 64


def test_reactive_floor_held_through_window() -> None:
    settings = sb.settings()
    window = settings.policy.stabilization_window_seconds
    raised = RaisedFloors(window)
    actuator = MemoryActuator(floors())
    combined = CombinedActuator(actuator, raised)
    loop = FastLoop(settings, [ScriptedSignal([20, 20, 20, 1])], combined)
    for i in range(4):
        loop.run_once(T0 + pd.Timedelta(seconds=15 * i))
    last_asked = T0 + pd.Timedelta(seconds=30)

    planned = FloorDecision("workload", "llm", 2, 5, "forecast", "P90")

    inside = loop.lift(planned, last_asked + pd.Timedelta(seconds=window - 1))
    after = loop.lift(planned, last_asked + pd.Timedelta(seconds=window))

    assert inside.desired == 5
    assert inside.rule == "reactive"
    assert after.desired == 2


def test_trailing_run_counts_only_the_end() -> None:
    samples = [
        Sample(T0 + pd.Timedelta(seconds=15 * i), v, v > 10) for i, v in enumerate([20, 1, 20, 20])
    ]

    run = trailing_run(samples)

    assert run.samples == 2
    assert run.seconds == 15


def test_buffer_drops_samples_before_the_run() -> None:
    buffer = SampleBuffer()
    key = SignalKey("scripted", "workload", "llm")
    for i, value in enumerate([20, 1, 20, 20]):
        run = buffer.add(key, [Sample(T0 + pd.Timedelta(seconds=15 * i), value, value > 10)])

    assert run.samples == 2
    again = buffer.add(key, [Sample(T0 + pd.Timedelta(seconds=60), 20, True)])
    assert again.samples == 3
    assert again.seconds == 30


readings = st.lists(
    st.one_of(st.none(), st.floats(min_value=0, max_value=100, allow_nan=False)),
    min_size=1,
    max_size=40,
)


@settings(max_examples=60, deadline=None)
@given(readings, st.integers(min_value=0, max_value=64), st.integers(min_value=-5, max_value=80))
def test_fast_loop_never_lowers_a_floor(values: list[float | None], start: int, step: int) -> None:
    actuator = MemoryActuator(floors(replicas=start))
    signal = ScriptedSignal(values, floor=lambda current: current + step)
    loop = loop_with(signal, actuator)

    previous = start
    for i in range(len(values)):
        loop.run_once(T0 + pd.Timedelta(seconds=15 * i))
        now_held = actuator.floors[("workload", "llm")]
        assert now_held is not None
        assert now_held >= previous
        previous = now_held
    for decision in actuator.applied:
        for floor in decision.all_floors():
            assert floor.current is not None
            assert floor.desired > floor.current


@given(st.integers(min_value=0, max_value=64), st.integers(min_value=0, max_value=64))
def test_combined_floor_is_max_of_both(predictive: int, reactive: int) -> None:
    raised = RaisedFloors(1800)
    raised.record(("workload", "llm"), _raised(reactive))
    decision = CycleDecision(
        T0, (), (FloorDecision("workload", "llm", predictive, 1, "forecast", ""),)
    )

    combined = combine_decision(decision, raised)

    assert combined.workloads[0].desired == max(predictive, reactive)
    assert raised.combined(("workload", "llm"), T0) == max(predictive, reactive)


def _raised(value: int):
    from scaler.signals.raised import RaisedFloor

    return RaisedFloor(T0 - pd.Timedelta(seconds=10), value, "scripted", "test")


@pytest.mark.parametrize(
    ("signals", "message"),
    [
        pytest.param(
            {"saturation": [{"metric": "promql", "source": "thanos", "threshold": 1}]},
            "needs a query",
            id="promql-without-query",
        ),
        pytest.param(
            {
                "saturation": [
                    {"metric": "vllm_waiting_requests", "source": "trace", "threshold": 1}
                ]
            },
            "must name a 'thanos' entry",
            id="csv-source",
        ),
        pytest.param(
            {"demand_above_forecast": {"source": "thanos", "misses": {"widened_levels": [0.99]}}},
            "must be in forecast.levels",
            id="level-not-forecast",
        ),
        pytest.param(
            {"demand_above_forecast": {}},
            "from demand.source",
            id="demand-source-not-thanos",
        ),
    ],
)
def test_invalid_signal_settings_are_rejected(signals: dict, message: str) -> None:
    from forecaster.errors import ConfigError

    with pytest.raises((ConfigError, ValueError), match=message):
        sb.settings(workload_signals=signals)


def test_buffer_is_bounded_for_long_runs() -> None:
    buffer = SampleBuffer()
    key = SignalKey("scripted", "workload", "llm")
    for i in range(MAX_BUFFERED_SAMPLES + 50):
        run = buffer.add(key, [Sample(T0 + pd.Timedelta(seconds=15 * i), 20, True)])

    assert run.samples == MAX_BUFFERED_SAMPLES
    assert run.holds(HOLD)
