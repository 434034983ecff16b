"""``peakcast plan --apply`` killed with SIGKILL between its writes, then run again.

The process is stopped at a controlled point: the fake API server blocks the Event that
follows the pool floor's write until the test has killed the process. The pool floor is then
written and the workload floor is not. A second run finds the cluster half-applied and
converges to the state that a run without a crash reaches; a third run writes nothing.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.kube import test_plan_apply_cli as cli
from tests.servers.fake_kube import FakeKube, running_fake_kube

pytestmark = pytest.mark.timeout(120)

ROOT = Path(__file__).resolve().parents[2]
MODE = "gpunodepool"
START_SECONDS = 60.0  # process start, trace read and planning, on a busy machine
STOP_SECONDS = 10.0


def plan_command(config: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "scaler.cli.main",
        "plan",
        "--apply",
        "--config",
        str(config),
        "--at",
        cli.AT,
    ]


def block_first_event(kube: FakeKube) -> tuple[threading.Event, threading.Event]:
    """Make the first Event creation wait; return (reached, release)."""
    reached, release = threading.Event(), threading.Event()

    def hold(obj: object) -> None:
        if reached.is_set():
            return
        reached.set()
        release.wait(START_SECONDS)

    kube.on_create("events", hold)
    return reached, release


def reference_floors(tmp_path: Path) -> tuple[int, int]:
    """Return the floors one uninterrupted run sets on a fresh cluster."""
    folder = tmp_path / "reference"
    folder.mkdir()
    with running_fake_kube() as kube:
        cli.seed(kube, MODE)
        cli.run_plan(cli.write_config(folder, kube, MODE))
        return cli.node_side_value(kube, MODE), cli.hpa_floor(kube)


def test_rerun_after_kill_converges(fake_kube: FakeKube, tmp_path: Path) -> None:
    expected = reference_floors(tmp_path)
    cli.seed(fake_kube, MODE)
    config = cli.write_config(tmp_path, fake_kube, MODE)
    reached, release = block_first_event(fake_kube)
    env = {k: v for k, v in os.environ.items() if k != "KUBERNETES_SERVICE_HOST"}

    process = subprocess.Popen(
        plan_command(config),
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        blocked = reached.wait(START_SECONDS)
        os.kill(process.pid, signal.SIGKILL)
        process.wait(STOP_SECONDS)
    finally:
        release.set()
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
            process.wait(STOP_SECONDS)
        if process.stderr is not None:
            process.stderr.close()
    fake_kube.create_hooks.clear()
    half_applied = (cli.node_side_value(fake_kube, MODE), cli.hpa_floor(fake_kube))

    cli.run_plan(config)
    converged = (cli.node_side_value(fake_kube, MODE), cli.hpa_floor(fake_kube))
    writes = len(fake_kube.writes())
    cli.run_plan(config)

    assert blocked, "the process never wrote the pool floor"
    assert process.returncode == -signal.SIGKILL
    assert half_applied == (expected[0], cli.SEEDED)
    assert converged == expected
    assert len(fake_kube.writes()) == writes
