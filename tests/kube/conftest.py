"""Fixtures for tests that drive the official Kubernetes client against the fake API server.

Other test packages reuse them with ``from tests.kube.conftest import fake_kube, kube_api``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from kubernetes import client as k8s

from scaler.kube.client import build_api_client
from tests.kube.builders import FakeClock
from tests.servers.fake_kube import FakeKube, running_fake_kube


@pytest.fixture
def fake_kube() -> Iterator[FakeKube]:
    """A fake API server on 127.0.0.1, empty, with its audit log and fault switches."""
    with running_fake_kube() as kube:
        yield kube


@pytest.fixture
def kube_api(fake_kube: FakeKube) -> Iterator[k8s.ApiClient]:
    """An official ``ApiClient`` whose host is the fake server."""
    api = build_api_client(host=fake_kube.url)
    try:
        yield api
    finally:
        api.close()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()
