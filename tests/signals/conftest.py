"""Fixtures of the live-signal tests: the fake Kubernetes API server and a test clock."""

from __future__ import annotations

from tests.kube.conftest import clock, fake_kube, kube_api

__all__ = ["clock", "fake_kube", "kube_api"]
