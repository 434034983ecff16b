"""``peakcast run`` options, and ``--once`` in-process against Prometheus and the API server."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from forecaster.errors import ConfigError
from scaler.cli.main import app
from scaler.cli.run import parse_listen
from tests.servers.fake_kube import FakeKube
from tests.service import harness as h
from tests.service.conftest import TracePrometheus


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("127.0.0.1:8080", ("127.0.0.1", 8080), id="loopback"),
        pytest.param("0.0.0.0:9100", ("0.0.0.0", 9100), id="all interfaces"),
        pytest.param("[::1]:8080", ("::1", 8080), id="ipv6"),
        pytest.param("127.0.0.1:0", ("127.0.0.1", 0), id="any port"),
    ],
)
def test_listen_address_parsed(value: str, expected: tuple[str, int]) -> None:
    assert parse_listen(value) == expected


@pytest.mark.parametrize("value", ["8080", "localhost:", ":8080", "127.0.0.1:http", "h:70000"])
def test_invalid_listen_address_rejected(value: str) -> None:
    with pytest.raises(ConfigError, match="--listen"):
        parse_listen(value)


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """Undo what the command's logging setup changes, so later tests log as before."""
    root = logging.getLogger()
    handlers = list(root.handlers)
    levels = {name: logging.getLogger(name).level for name in ("forecaster", "scaler")}
    yield
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


@pytest.mark.prometheus
@pytest.mark.usefixtures("restore_logging")
def test_once_applies_one_cycle_and_releases_lease(
    trace_prometheus: TracePrometheus, fake_kube: FakeKube, tmp_path: Path
) -> None:
    h.seed_cluster(fake_kube, pool_nodes=0, min_replicas=2)
    raw = h.settings_dict(trace_prometheus.server.url, fake_kube.url)
    raw["kubernetes"] = {"host": fake_kube.url}
    config = tmp_path / "peakcast.yaml"
    config.write_text(yaml.safe_dump(raw), encoding="utf-8")

    result = CliRunner().invoke(
        app, ["run", "--once", "--config", str(config), "--identity", "cli-once"]
    )

    assert result.exit_code == 0, result.output
    assert f"GPUNodePool {h.POOL_NAMESPACE}/{h.POOL}" in result.output
    assert h.pool_floor(fake_kube) not in (None, 0)
    assert h.workload_floor(fake_kube) not in (None, 2)
    lease = fake_kube.get("coordination.k8s.io/v1", "leases", h.LEASE_NAME, h.LEASE_NAMESPACE)
    assert lease is not None
    assert lease["spec"].get("holderIdentity") is None
    assert lease["spec"]["leaseTransitions"] == 0


@pytest.mark.prometheus
@pytest.mark.usefixtures("restore_logging")
def test_once_does_not_act_while_another_replica_leads(
    trace_prometheus: TracePrometheus, fake_kube: FakeKube, tmp_path: Path
) -> None:
    h.seed_cluster(fake_kube, pool_nodes=0, min_replicas=2)
    fake_kube.seed(
        {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": h.LEASE_NAME, "namespace": h.LEASE_NAMESPACE},
            "spec": {"holderIdentity": "other-replica", "leaseDurationSeconds": 3600},
        }
    )
    raw = h.settings_dict(trace_prometheus.server.url, fake_kube.url)
    raw["kubernetes"] = {"host": fake_kube.url}
    config = tmp_path / "peakcast.yaml"
    config.write_text(yaml.safe_dump(raw), encoding="utf-8")

    result = CliRunner().invoke(app, ["run", "--once", "--config", str(config)])

    assert result.exit_code == 6, result.output
    assert h.floor_writes(fake_kube) == []
    assert h.lease_holder(fake_kube) == "other-replica"
