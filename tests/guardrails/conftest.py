"""The fake API server fixtures of the Kubernetes tests, reused here."""

from __future__ import annotations

from tests.kube.conftest import clock, fake_kube, kube_api

__all__ = ["clock", "fake_kube", "kube_api"]
