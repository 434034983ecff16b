"""Fixtures of the service tests: one real Prometheus server holding the trace, and the fake API
server (from the Kubernetes tests)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pandas as pd
import pytest

from tests.kube.conftest import fake_kube
from tests.servers.prometheus import PrometheusServer, PrometheusUnavailable
from tests.service.harness import backfill_trace

__all__ = ["TracePrometheus", "fake_kube", "trace_prometheus"]


@dataclass(frozen=True)
class TracePrometheus:
    """The running server and the time of the trace's last sample."""

    server: PrometheusServer
    end: pd.Timestamp


@pytest.fixture(scope="session")
def trace_prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TracePrometheus]:
    """A Prometheus server of its own (tests stop and restart it) with the trace backfilled."""
    try:
        server = PrometheusServer.from_path(tmp_path_factory.mktemp("service-prometheus"))
    except PrometheusUnavailable as error:
        pytest.skip(str(error))
    end = backfill_trace(server)
    server.start()
    try:
        yield TracePrometheus(server, end)
    finally:
        server.stop()
