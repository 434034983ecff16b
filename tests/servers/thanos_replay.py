"""A loopback HTTP server that responds like Thanos Query, with shapes Prometheus never sends.

Plain Prometheus ignores the Thanos parameters and never responds with partial-response
warnings, replica duplicates or downsampled data. This server records every request (path,
query parameters and headers). It responds from a queue of ``Reply`` objects and, once the
queue is empty, from a responder function that builds the reply from the request.

The staleness probes a Thanos source sends (``max by (...) (timestamp(...))``) get fresh
sample times by default, so a test only scripts the data queries it is about.

The shapes below follow the Thanos query API: ``warnings`` sits at the top level of the JSON
envelope, errors carry ``errorType`` and ``error``.
"""

from __future__ import annotations

import json
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import numpy as np

Labels = dict[str, str]

# Warnings of the kind Thanos Query returns when a store cannot be reached.
STORE_UNAVAILABLE_WARNING = (
    'fetch series for {prometheus_replica="b"}: receive series from store '
    "thanos-store-1:10901: rpc error: code = Unavailable desc = connection refused"
)
NO_STORE_MATCHED_WARNING = "No StoreAPIs matched for this query"
PROMQL_INFO_WARNING = 'PromQL info: metric might not be a counter, name does not end in "_total"'


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the server received it; ``params`` keeps repeated keys as lists."""

    method: str
    path: str
    params: dict[str, list[str]]
    headers: dict[str, str]

    def param(self, name: str) -> str | None:
        values = self.params.get(name)
        return values[-1] if values else None

    @property
    def query(self) -> str:
        return self.param("query") or ""

    @property
    def start(self) -> float:
        return float(self.param("start") or 0)

    @property
    def end(self) -> float:
        return float(self.param("end") or 0)

    @property
    def step(self) -> float:
        return float(self.param("step") or 0)

    def grid(self) -> np.ndarray:
        """Return the evaluation times of a range query, in epoch seconds."""
        count = round((self.end - self.start) / self.step) + 1
        return self.start + self.step * np.arange(count)

    @property
    def is_staleness_probe(self) -> bool:
        return self.query.startswith("max by (") and "timestamp(" in self.query


@dataclass
class Reply:
    """One HTTP response. A dict or list body is sent as JSON."""

    status: int = 200
    body: dict[str, Any] | list[Any] | bytes | str = field(default_factory=lambda: success([]))
    delay_seconds: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)


Responder = Callable[[RecordedRequest], Reply]


def success(result: list[dict[str, Any]], warnings: Sequence[str] = ()) -> dict[str, Any]:
    """Build a successful query_range envelope, with warnings at the top level when given."""
    envelope: dict[str, Any] = {
        "status": "success",
        "data": {"resultType": "matrix", "result": result},
    }
    if warnings:
        envelope["warnings"] = list(warnings)
    return envelope


def error_reply(status: int, error_type: str, message: str, **headers: str) -> Reply:
    """Build an error response the way the Prometheus API shapes it."""
    body = {"status": "error", "errorType": error_type, "error": message}
    return Reply(status, body, headers=dict(headers))


def matrix_series(
    labels: Labels, times: Iterable[float], values: Iterable[float]
) -> dict[str, Any]:
    """Build one series of a matrix result; NaN values are left out, as a gap."""
    pairs = [
        [_timestamp(stamp), _sample(value)]
        for stamp, value in zip(times, values, strict=True)
        if not (isinstance(value, float) and np.isnan(value))
    ]
    return {"metric": dict(labels), "values": pairs}


def sample_text(value: float) -> str:
    """Format a value as the API does: "NaN", "+Inf", "-Inf" or a plain number."""
    return _sample(value)


def fresh_probe(request: RecordedRequest) -> Reply:
    """Respond to a staleness probe: every point has a sample taken at that very time."""
    times = request.grid()
    return Reply(body=success([matrix_series({}, times, times)]))


def _timestamp(stamp: float) -> float | int:
    return int(stamp) if float(stamp).is_integer() else float(stamp)


def _sample(value: float) -> str:
    if np.isposinf(value):
        return "+Inf"
    if np.isneginf(value):
        return "-Inf"
    return repr(float(value))


def _empty(request: RecordedRequest) -> Reply:
    return Reply(body=success([]))


class ThanosReplay:
    """Serves scripted Thanos responses on 127.0.0.1 and records the requests."""

    def __init__(
        self,
        responder: Responder = _empty,
        *,
        answer_probes: bool = True,
        tls: ssl.SSLContext | None = None,
        port: int = 0,
    ) -> None:
        self.responder = responder
        self.answer_probes = answer_probes
        self.requests: list[RecordedRequest] = []
        self._queue: deque[Reply] = deque()
        self._lock = threading.Lock()
        # ``port`` 0 picks a free port; a given port lets a test restart a "crashed" server.
        self._server = ThreadingHTTPServer(("127.0.0.1", port), self._handler_class())
        self._server.daemon_threads = True
        self._scheme = "http"
        if tls is not None:
            # The handshake runs when a connection is accepted; a failed one is dropped.
            self._server.socket = tls.wrap_socket(self._server.socket, server_side=True)
            self._scheme = "https"
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        port = self._server.server_address[1]
        return f"{self._scheme}://127.0.0.1:{port}"

    def enqueue(self, *replies: Reply) -> None:
        """Respond to the next data requests with ``replies``, in order."""
        with self._lock:
            self._queue.extend(replies)

    def data_requests(self) -> list[RecordedRequest]:
        """Return the recorded requests that are not staleness probes."""
        with self._lock:
            return [request for request in self.requests if not request.is_staleness_probe]

    def start(self) -> ThanosReplay:
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="thanos-replay",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> ThanosReplay:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _reply_for(self, request: RecordedRequest) -> Reply:
        with self._lock:
            self.requests.append(request)
            if self.answer_probes and request.is_staleness_probe:
                return fresh_probe(request)
            if self._queue:
                return self._queue.popleft()
        return self.responder(request)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        replay = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self._answer(b"")

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self._answer(self.rfile.read(length))

            def _answer(self, body: bytes) -> None:
                parts = urlsplit(self.path)
                params = parse_qs(parts.query, keep_blank_values=True)
                for key, values in parse_qs(body.decode(), keep_blank_values=True).items():
                    params.setdefault(key, []).extend(values)
                request = RecordedRequest(
                    self.command, parts.path, params, {k: v for k, v in self.headers.items()}
                )
                reply = replay._reply_for(request)
                if reply.delay_seconds:
                    time.sleep(reply.delay_seconds)
                payload = reply.body
                if isinstance(payload, (dict, list)):
                    data = json.dumps(payload).encode()
                    content_type = "application/json"
                else:
                    data = payload.encode() if isinstance(payload, str) else payload
                    content_type = "text/plain; charset=utf-8"
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", content_type)
                    self.send_header("Content-Length", str(len(data)))
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up, e.g. after a read timeout

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler
