"""The service's HTTP endpoints: ``/metrics`` (Prometheus), ``/healthz`` and ``/readyz``.

``/healthz`` answers 200 while the process makes progress (the kubelet restarts it otherwise) and
``/readyz`` answers 200 once forecasts are warm, on followers too. A failing check answers 503
with its reason as plain text.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder

logger = logging.getLogger(__name__)

# A check returns (passed, reason); the reason is the response body.
Check = Callable[[], tuple[bool, str]]


class ServiceHTTPServer:
    """Serves the three endpoints on ``host:port`` from a daemon thread; port 0 picks one."""

    def __init__(
        self, host: str, port: int, registry: CollectorRegistry, healthy: Check, ready: Check
    ) -> None:
        self._server = ThreadingHTTPServer((host, port), _handler(registry, healthy, ready))
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="peakcast-http", daemon=True
        )
        self._thread.start()
        host, port = self.address
        logger.info("Serving /metrics, /healthz and /readyz on http://%s:%d", host, port)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        logger.info("HTTP endpoints stopped")


def _handler(
    registry: CollectorRegistry, healthy: Check, ready: Check
) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                encoder, content_type = choose_encoder(self.headers.get("Accept", ""))
                self._send(200, encoder(registry), content_type)
            elif path == "/healthz":
                self._check(healthy)
            elif path == "/readyz":
                self._check(ready)
            else:
                self._send(404, b"not found; try /metrics, /healthz or /readyz\n")

        def _check(self, check: Check) -> None:
            passed, reason = check()
            self._send(200 if passed else 503, f"{reason}\n".encode())

        def _send(self, code: int, body: bytes, content_type: str = "text/plain") -> None:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            logger.debug("HTTP %s", format % args)

    return Handler
