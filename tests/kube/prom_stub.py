"""A loopback HTTP server that returns a payload the test sets from ``/api/v1/query``."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


def vector(*values: float) -> dict[str, Any]:
    """An instant-query response with one series per value."""
    result = [
        {"metric": {"series": str(i)}, "value": [1_772_438_400, str(v)]}
        for i, v in enumerate(values)
    ]
    return {"status": "success", "data": {"resultType": "vector", "result": result}}


class PromStub:
    """The next response and the query parameters of every request."""

    def __init__(self) -> None:
        self.payload: dict[str, Any] = vector()
        self.requests: list[dict[str, str]] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                url = urlsplit(self.path)
                stub.requests.append({k: v[-1] for k, v in parse_qs(url.query).items()})
                data = json.dumps(stub.payload).encode()
                self.send_response(200 if url.path == "/api/v1/query" else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        return Handler


@contextmanager
def running_prom_stub() -> Iterator[PromStub]:
    stub = PromStub()
    thread = threading.Thread(
        target=stub.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield stub
    finally:
        stub.server.shutdown()
        stub.server.server_close()
        thread.join(timeout=5)
