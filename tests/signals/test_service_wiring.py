"""The fast loop inside ``peakcast run``: its own job, the shared actuator, and its metrics."""

from __future__ import annotations

import pandas as pd
from kubernetes import client as k8s
from prometheus_client import generate_latest

from scaler.core.decision import CycleDecision, FloorDecision
from scaler.kube.registry import build_actuator, build_kube_client
from scaler.service.app import ServiceApp
from scaler.service.scheduler import JOB_FAST_LOOP
from scaler.signals.raised import CombinedActuator
from tests.kube import builders as b
from tests.servers.fake_kube import FakeKube
from tests.signals import builders as sb
from tests.signals.test_pending_pods import PENDING, desired_nodes, seed_cluster


def service(api: k8s.ApiClient, clock: b.FakeClock, **signals: object) -> ServiceApp:
    settings = sb.settings(signals.get("pool", PENDING))
    actuator = build_actuator(settings, dry_run=False, api_client=api, clock=clock)
    kube = build_kube_client(settings.kubernetes, api)
    return ServiceApp(settings, actuator, lease=None, clock=clock, port=0, signal_kube=kube)


def test_service_runs_fast_loop_as_own_job(
    fake_kube: FakeKube, kube_api: k8s.ApiClient, clock: b.FakeClock
) -> None:
    seed_cluster(fake_kube)
    fake_kube.seed(sb.gpu_pod("llm-a", 8, pending_since=clock.now - pd.Timedelta(seconds=60)))
    app = service(kube_api, clock)

    job = app.scheduler.get_job(JOB_FAST_LOOP)
    assert job is not None
    assert job.executor == JOB_FAST_LOOP
    assert job.trigger.interval.total_seconds() == 15
    job.func()

    assert desired_nodes(fake_kube) == 2
    metrics = generate_latest(app.metrics.registry).decode()
    assert 'peakcast_signal_value{kind="pool",name="cloud-h100",signal="pending_gpu_pods"} 8.0' in (
        metrics
    )
    assert 'peakcast_reactive_raises_total{kind="pool",name="cloud-h100"} 1.0' in metrics


def test_planning_cycle_keeps_reactive_floor(
    fake_kube: FakeKube, kube_api: k8s.ApiClient, clock: b.FakeClock
) -> None:
    seed_cluster(fake_kube)
    fake_kube.seed(sb.gpu_pod("llm-a", 8, pending_since=clock.now - pd.Timedelta(seconds=60)))
    app = service(kube_api, clock)
    assert app.fast_loop is not None
    app.scheduler.get_job(JOB_FAST_LOOP).func()

    applied_through = app.fast_loop.actuator
    assert isinstance(applied_through, CombinedActuator)
    at = clock.advance(60)
    pool = FloorDecision("pool", sb.POOL, 1, 2, "forecast", "P90 forecast")
    workload = FloorDecision("workload", "llm", 3, 2, "forecast", "P90 forecast")
    # The planning cycle lifts its floors to the held reactive ones, then applies them.
    lifted = CycleDecision(at, (app.fast_loop.lift(pool, at),), (app.fast_loop.lift(workload, at),))
    results = applied_through.apply(lifted)

    assert desired_nodes(fake_kube) == 2
    assert [r.floor.rule for r in results] == ["reactive", "forecast"]
    metrics = generate_latest(app.metrics.registry).decode()
    assert 'peakcast_combined_floor_replicas{workload="llm"} 3.0' in metrics


def test_service_without_signals_has_no_fast_loop(
    kube_api: k8s.ApiClient, clock: b.FakeClock
) -> None:
    settings = b.settings()
    actuator = build_actuator(settings, dry_run=False, api_client=kube_api, clock=clock)
    app = ServiceApp(settings, actuator, lease=None, clock=clock, port=0)

    assert app.fast_loop is None
    assert app.scheduler.get_job(JOB_FAST_LOOP) is None
