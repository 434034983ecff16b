"""Fixtures of the fault suite: the scripted Thanos, the fake API server and the live cycle."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.faults import rig as r
from tests.kube.conftest import fake_kube
from tests.servers.fake_kube import FakeKube
from tests.servers.thanos_replay import ThanosReplay

__all__ = ["fake_kube", "replay", "rig"]


@pytest.fixture
def replay() -> Iterator[ThanosReplay]:
    """A started loopback Thanos that serves the demand wave for any range."""
    with ThanosReplay(r.serve_demand) as server:
        yield server


@pytest.fixture
def rig(replay: ThanosReplay, fake_kube: FakeKube) -> Iterator[r.Rig]:
    """A live cycle reading ``replay`` and writing to ``fake_kube``; its client is closed after."""
    built = r.make_rig(r.make_settings(replay.url, fake_kube.url), fake_kube)
    try:
        yield built
    finally:
        built.close()
