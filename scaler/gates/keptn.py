"""Gate on a Keptn ``Analysis`` (``metrics.keptn.sh/v1``) run from a configured definition.

Each evaluation looks for the Analysis of this workload, floor and timeframe window, and creates
one when there is none. It then waits up to ``timeout_seconds`` for the Keptn metrics operator to
set ``status.state: Completed``, and reads ``status.pass``. An Analysis still running when the
wait ends holds the floor, and the next cycle reads the same Analysis again instead of starting
another. Completed Analyses of older windows are deleted when a new one is created.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from forecaster.errors import PeakcastError
from scaler.gates.base import GateContext, GateResult
from scaler.kube.client import KubeClient
from scaler.kube.objects import Obj, get_path
from scaler.kube.resources import ANALYSIS
from scaler.settings import KeptnGateSettings

logger = logging.getLogger(__name__)

WORKLOAD_LABEL = "peakcast.io/workload"
MANAGED_BY = {"app.kubernetes.io/managed-by": "peakcast"}


class KeptnGate:
    """Creates and reads Keptn Analyses through the Kubernetes API."""

    name = "keptn"

    def __init__(
        self,
        settings: KeptnGateSettings,
        client: KubeClient,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._settings = settings
        self._client = client
        self._sleep = sleep
        self._monotonic = monotonic

    def evaluate(self, context: GateContext) -> GateResult:
        namespace = self._settings.namespace or context.workload.namespace
        name = self._analysis_name(context)
        try:
            analysis = self._client.get(ANALYSIS, name, namespace)
            if analysis is None:
                self._delete_completed(namespace, context.workload.name)
                analysis = self._client.create(ANALYSIS, self._analysis(context, namespace, name))
                logger.info(
                    "Created Keptn Analysis %s/%s for workload %s",
                    namespace,
                    name,
                    context.workload.name,
                )
            analysis = self._wait(analysis, namespace, name)
        except PeakcastError as error:
            return GateResult(False, f"keptn: Analysis {namespace}/{name} failed: {error}")
        return _verdict(analysis, f"{namespace}/{name}")

    def _analysis_name(self, context: GateContext) -> str:
        window = int(context.now.timestamp() // self._settings.timeframe_seconds)
        return f"peakcast-{context.workload.name}-{context.desired}-{window}"

    def _analysis(self, context: GateContext, namespace: str, name: str) -> Obj:
        args = {
            **self._settings.args,
            "workload": context.workload.name,
            "namespace": context.workload.namespace,
        }
        return {
            "apiVersion": ANALYSIS.api_version,
            "kind": ANALYSIS.kind,
            "metadata": {
                "name": name,
                "namespace": namespace,
                "labels": {**MANAGED_BY, WORKLOAD_LABEL: context.workload.name},
            },
            "spec": {
                "timeframe": {"recent": f"{self._settings.timeframe_seconds}s"},
                "args": args,
                "analysisDefinition": {
                    "name": self._settings.analysis_definition,
                    "namespace": namespace,
                },
            },
        }

    def _wait(self, analysis: Obj, namespace: str, name: str) -> Obj:
        deadline = self._monotonic() + self._settings.timeout_seconds
        while get_path(analysis, ("status", "state")) != "Completed":
            if self._monotonic() >= deadline:
                break
            self._sleep(self._settings.poll_interval_seconds)
            analysis = self._client.get(ANALYSIS, name, namespace) or analysis
        return analysis

    def _delete_completed(self, namespace: str, workload: str) -> None:
        selector = f"{WORKLOAD_LABEL}={workload}"
        for old in self._client.list(ANALYSIS, namespace, label_selector=selector):
            if get_path(old, ("status", "state")) == "Completed":
                self._client.delete(ANALYSIS, old["metadata"]["name"], namespace)


def _verdict(analysis: Obj, where: str) -> GateResult:
    state = get_path(analysis, ("status", "state")) or "Pending"
    if state != "Completed":
        return GateResult(False, f"keptn: Analysis {where} is {state}; waiting for it to complete")
    passed = get_path(analysis, ("status", "pass")) is True
    warning = " with warning" if get_path(analysis, ("status", "warning")) else ""
    verdict = "passed" if passed else "failed"
    return GateResult(passed, f"keptn: Analysis {where} {verdict}{warning}")
