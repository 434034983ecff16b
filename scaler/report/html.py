"""The report as one self-contained HTML file: inline CSS, plots as PNG data URIs, no scripts.

Nothing in the page refers to another file or to the network, so it can be mailed or archived
as it is.
"""

from __future__ import annotations

import base64
from html import escape
from zoneinfo import ZoneInfo

from scaler.report.model import Report
from scaler.report.plots import Plot, render_plots
from scaler.report.tables import Table, clock, report_sections

_STYLE = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; color: #1d1d1f;
  margin: 0 auto; padding: 24px 32px; max-width: 1280px; line-height: 1.45; }
h1 { font-size: 1.7em; margin-bottom: 0.1em; }
h2 { font-size: 1.3em; border-bottom: 1px solid #ccc; padding-bottom: 0.2em; margin-top: 1.8em; }
h3 { font-size: 1.05em; margin: 1.4em 0 0.4em; }
.meta { color: #555; margin-top: 0; }
.summary li { margin-bottom: 0.3em; }
figure { margin: 1.2em 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #e3e3e3; }
figcaption, .note { color: #555; font-size: 0.9em; margin-top: 0.3em; }
.table-wrap { overflow-x: auto; }
table { border-collapse: collapse; font-size: 0.88em; font-variant-numeric: tabular-nums; }
th, td { border: 1px solid #d6d6d6; padding: 4px 8px; white-space: nowrap; }
th { background: #f2f2f2; text-align: left; vertical-align: bottom; white-space: normal; }
td.num { text-align: right; }
tr:nth-child(even) td { background: #fafafa; }
td.met { color: #11772d; font-weight: 600; }
td.missed { color: #b3261e; font-weight: 600; }
"""


def render_html(report: Report, plots: list[Plot] | None = None) -> str:
    """Render the report as an HTML document, with ``render_plots(report)`` unless ``plots``."""
    if plots is None:
        plots = render_plots(report)
    zone = ZoneInfo(report.timezone)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        f"<title>{escape(report.title)}</title>",
        f"<style>{_STYLE}</style>",
        "</head>",
        "<body>",
        f"<h1>{escape(report.title)}</h1>",
        f'<p class="meta">Config <code>{escape(report.source)}</code> · '
        f"{escape(clock(report.start, zone))} to {escape(clock(report.end, zone))} "
        f"({escape(report.timezone)})</p>",
        "<h2>Summary</h2>",
        '<ul class="summary">',
        *[f"<li>{escape(sentence)}</li>" for sentence in report.summary],
        "</ul>",
    ]
    if plots:
        parts.append("<h2>Plots</h2>")
        parts += [_figure(plot) for plot in plots]
    for section in report_sections(report):
        parts.append(f"<h2>{escape(section.title)}</h2>")
        parts += [html_table(table) for table in section.tables]
    if report.notes:
        parts += ["<h2>Notes</h2>", "<ul>", *[f"<li>{escape(n)}</li>" for n in report.notes]]
        parts.append("</ul>")
    parts += ["</body>", "</html>", ""]
    return "\n".join(parts)


def data_uri(png: bytes) -> str:
    """Return ``png`` as a ``data:image/png;base64`` URI."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _figure(plot: Plot) -> str:
    return (
        "<figure>"
        f"<h3>{escape(plot.title)}</h3>"
        f'<img src="{data_uri(plot.png)}" alt="{escape(plot.title)}">'
        f"<figcaption>{escape(plot.caption)}</figcaption>"
        "</figure>"
    )


def html_table(table: Table) -> str:
    """Return one table with its heading and note."""
    parts = [f"<h3>{escape(table.title)}</h3>"]
    if not table.rows:
        return parts[0] + f"<p>{escape(table.empty)}</p>"
    parts.append('<div class="table-wrap"><table>')
    parts.append("<tr>" + "".join(f"<th>{escape(h)}</th>" for h in table.headers) + "</tr>")
    for row in table.rows:
        cells = []
        for text, numeric in zip(row, table.numeric, strict=True):
            css = "num" if numeric else text if text in ("met", "missed") else ""
            attribute = f' class="{css}"' if css else ""
            cells.append(f"<td{attribute}>{escape(text)}</td>")
        parts.append("<tr>" + "".join(cells) + "</tr>")
    parts.append("</table></div>")
    if table.note:
        parts.append(f'<p class="note">{escape(table.note)}</p>')
    return "".join(parts)
