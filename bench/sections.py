"""Rewrite one marked section of docs/BENCHMARKS.md, leaving the other sections alone."""

from __future__ import annotations

from pathlib import Path


def write_section(path: Path, section: str, start_marker: str, end_marker: str) -> None:
    """Replace the text between the markers in ``path``, or append it (creating the file).

    ``section`` must start with ``start_marker`` and end with ``end_marker``.
    """
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmarks\n"
    if start_marker in text and end_marker in text:
        before = text[: text.index(start_marker)]
        after = text[text.index(end_marker) + len(end_marker) :]
        text = before + section + after
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
