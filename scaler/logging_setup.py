"""Logging for the CLI and the service: readable text by default, JSON lines on request."""

from __future__ import annotations

import json
import logging
from typing import IO, Any

_RESERVED = set(vars(logging.makeLogRecord({})))


class JsonFormatter(logging.Formatter):
    """One JSON object per record, with any ``extra=`` fields kept as keys."""

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _RESERVED and not key.startswith("_"):
                payload[key] = value if isinstance(value, str | int | float | bool) else str(value)
        if record.exc_info:
            payload["exception"] = self.formatException(record.exc_info)
        return json.dumps(payload)


def configure_logging(level: int, *, json_output: bool, stream: IO[str]) -> None:
    """Send peakcast's logs (forecaster, scaler) to ``stream`` at ``level``."""
    handler = logging.StreamHandler(stream)
    if json_output:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    for existing in list(root.handlers):
        if getattr(existing, "_peakcast", False):
            root.removeHandler(existing)
    handler._peakcast = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(logging.WARNING)
    for name in ("forecaster", "scaler"):
        logging.getLogger(name).setLevel(level)
    # Third-party chatter (cmdstanpy, prophet) stays at WARNING.
    for name in ("cmdstanpy", "prophet"):
        logging.getLogger(name).setLevel(logging.WARNING)
