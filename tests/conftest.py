"""Shared pytest fixtures: the real Prometheus server and the Thanos replay server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.servers.prometheus import PrometheusServer, PrometheusUnavailable
from tests.servers.thanos_replay import ThanosReplay


@pytest.fixture(scope="session")
def prometheus_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusServer]:
    """A real Prometheus server for the whole session, not started yet.

    Backfill history with ``server.backfill(...)`` or ``backfill_csv_trace(server, ...)``,
    then call ``server.start()``; backfilling later restarts it. Skips the test when the
    Debian package ``prometheus`` is not installed.
    """
    try:
        server = PrometheusServer.from_path(tmp_path_factory.mktemp("prometheus"))
    except PrometheusUnavailable as error:
        pytest.skip(str(error))
    yield server
    server.stop()


@pytest.fixture
def thanos_replay() -> Iterator[ThanosReplay]:
    """A started loopback server that responds like Thanos Query and records the requests."""
    with ThanosReplay() as replay:
        yield replay
