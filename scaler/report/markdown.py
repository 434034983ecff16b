"""The report as Markdown: summary, tables and notes. Plots are only in the HTML format."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from scaler.report.model import Report
from scaler.report.tables import Table, clock, report_sections


def render_markdown(report: Report) -> str:
    """Return the report as GitHub-flavoured Markdown."""
    zone = ZoneInfo(report.timezone)
    lines = [
        f"# {report.title}",
        "",
        f"Config: `{report.source}`. Period: {clock(report.start, zone)} to "
        f"{clock(report.end, zone)} ({report.timezone}).",
        "",
        "## Summary",
        "",
        *[f"- {sentence}" for sentence in report.summary],
        "",
    ]
    for section in report_sections(report):
        lines += [f"## {section.title}", ""]
        for table in section.tables:
            lines += markdown_table(table)
    if report.notes:
        lines += ["## Notes", "", *[f"- {note}" for note in report.notes], ""]
    return "\n".join(lines)


def markdown_table(table: Table) -> list[str]:
    """Return the lines of one table with its heading and note."""
    lines = [f"### {table.title}", ""]
    if not table.rows:
        return [*lines, table.empty, ""]
    lines.append("| " + " | ".join(_cell(h) for h in table.headers) + " |")
    lines.append("|" + "|".join("---:" if right else "---" for right in table.numeric) + "|")
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in table.rows]
    lines.append("")
    if table.note:
        lines += [table.note, ""]
    return lines


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")
