"""``peakcast run`` as a process: SIGTERM during a cycle ends it cleanly.

The service reads the wall clock here, and the trace's last sample is less than 10 minutes old,
so its first cycle raises both floors of the seeded cluster. The fake API server delays every
response by 0.1 s, so applying takes about a second and SIGTERM lands inside it.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import yaml

from tests.servers.fake_kube import FakeKube
from tests.service import harness as h
from tests.service.conftest import TracePrometheus

pytestmark = [pytest.mark.prometheus, pytest.mark.timeout(120)]

SLOW_REQUESTS = 1000
SLOW_SECONDS = 0.1
EXIT_SECONDS = 30.0


class ServiceProcess:
    """``peakcast run`` in a subprocess, with its log lines collected as they arrive."""

    def __init__(self, config: Path, identity: str) -> None:
        env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
        env.pop("KUBERNETES_SERVICE_HOST", None)
        env["NO_PROXY"] = "127.0.0.1,localhost"
        command = [sys.executable, "-m", "scaler.cli.main", "run", "--config", str(config)]
        command += ["--listen", "127.0.0.1:0", "--identity", identity]
        self.process = subprocess.Popen(
            command,
            cwd=h.ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()

    def wait_for_line(self, text: str, timeout: float = h.WAIT_SECONDS) -> str:
        """Return the first log line containing ``text``; fail with the log tail otherwise."""
        with self._changed:
            found = self._changed.wait_for(
                lambda: any(text in line for line in self.lines) or self.process.poll() is not None,
                timeout,
            )
            matches = [line for line in self.lines if text in line]
        if not found or not matches:
            tail = "\n".join(self.lines[-20:])
            raise AssertionError(f"no log line with {text!r} within {timeout:.0f} s:\n{tail}")
        return matches[0]

    def index_of(self, text: str) -> int:
        return next(i for i, line in enumerate(self.lines) if text in line)

    def terminate(self) -> None:
        os.kill(self.process.pid, signal.SIGTERM)

    def wait(self) -> int:
        code = self.process.wait(EXIT_SECONDS)
        self._reader.join(5)
        return code

    def close(self) -> None:
        """Kill the process if it still runs (by its PID) and close its log pipe."""
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(EXIT_SECONDS)
        self._reader.join(5)
        if self.process.stderr is not None:
            self.process.stderr.close()


def write_config(tmp_path: Path, prometheus_url: str, kube_url: str) -> Path:
    raw = h.settings_dict(prometheus_url, kube_url)
    raw["kubernetes"] = {"host": kube_url, "request_timeout_seconds": 5}
    path = tmp_path / "peakcast.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return path


def applied_floors(line: str) -> dict[str, int]:
    """Read ``kind/name=value`` pairs from the "Cycle at ... applied:" log line."""
    return {key: int(value) for key, value in re.findall(r"(\w+/[\w-]+)=(\d+)", line)}


def test_sigterm_while_applying_finishes_the_plan(
    trace_prometheus: TracePrometheus, fake_kube: FakeKube, tmp_path: Path
) -> None:
    h.seed_cluster(fake_kube, pool_nodes=0, min_replicas=2)
    config = write_config(tmp_path, trace_prometheus.server.url, fake_kube.url)
    fake_kube.delay_next(SLOW_REQUESTS, SLOW_SECONDS)
    service = ServiceProcess(config, "replica-a")
    try:
        service.wait_for_line("Applying")
        service.terminate()
        code = service.wait()
    finally:
        service.close()

    assert code == 0, "\n".join(service.lines[-20:])
    applied = applied_floors(service.wait_for_line("applied:"))
    assert service.index_of("Received SIGTERM") < service.index_of("applied:")
    assert applied[f"pool/{h.POOL}"] == h.pool_floor(fake_kube)
    assert applied[f"workload/{h.WORKLOAD}"] == h.workload_floor(fake_kube)
    assert h.pool_floor(fake_kube) != 0
    assert h.workload_floor(fake_kube) != 2
    assert sorted(h.floor_writes(fake_kube)) == ["gpunodepools", "horizontalpodautoscalers"]
    service.wait_for_line("Released the Lease")
    assert h.lease_holder(fake_kube) is None
