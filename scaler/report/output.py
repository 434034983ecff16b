"""Render a report in one of the output formats and write it."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from forecaster.errors import ConfigError
from scaler.report.html import render_html
from scaler.report.json_report import render_json
from scaler.report.markdown import render_markdown
from scaler.report.model import Report

logger = logging.getLogger(__name__)

FORMATS = ("html", "markdown", "json")
SUFFIXES = {"html": ".html", "markdown": ".md", "json": ".json"}
# The --output value that sends the report to standard output.
STDOUT = "-"


def check_format(value: str, option: str = "--format", allowed: tuple[str, ...] = FORMATS) -> str:
    """Return ``value`` when it names an allowed format, else raise ``ConfigError``."""
    if value not in allowed:
        raise ConfigError(option, value, f"one of: {', '.join(allowed)}")
    return value


def render(report: Report, fmt: str) -> str:
    """Return the report as text in ``fmt`` (html, markdown or json)."""
    check_format(fmt)
    if fmt == "html":
        return render_html(report)
    if fmt == "markdown":
        return render_markdown(report)
    return render_json(report)


def write(text: str, path: Path | str) -> None:
    """Write ``text`` to ``path``, or to standard output when ``path`` is ``-``."""
    if str(path) == STDOUT:
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    except OSError as error:
        raise ConfigError("--output", str(path), f"a writable file path ({error})") from error
    logger.info("wrote the report to %s (%d characters)", target, len(text))
