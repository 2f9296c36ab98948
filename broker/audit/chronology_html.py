"""The chronology as one readable, printable HTML page (pure).

Inline CSS, no scripts, no external resources; every value is escaped. The page
opens with what is known of the log's integrity, then who was involved, then
the timeline, with decisions not to share and late acknowledgements marked.
"""

from __future__ import annotations

import html

from broker.audit.chronology import Chronology, Entry
from broker.routing.model import iso

__all__ = ["to_html"]

_CSS = """
body { font: 11pt/1.45 system-ui, -apple-system, "Segoe UI", Arial, sans-serif; color: #1b1b1b; margin: 2rem; }
h1 { font-size: 1.5rem; margin: 0 0 .25rem; }
h2 { font-size: 1.1rem; margin: 1.5rem 0 .5rem; border-bottom: 1px solid #ccc; }
.meta { color: #555; margin: 0 0 1rem; }
.integrity { padding: .5rem .75rem; border-left: 4px solid #2e7d32; background: #f1f8f1; }
.integrity.warn { border-color: #b26a00; background: #fff7e6; }
table { border-collapse: collapse; width: 100%; font-size: 10pt; }
th, td { text-align: left; vertical-align: top; padding: .35rem .5rem; border-bottom: 1px solid #e2e2e2; }
th { background: #f4f4f4; }
tr.event td { background: #fbfbfb; font-weight: 600; }
tr.not-shared td { background: #fff4f4; }
.tag { display: inline-block; padding: 0 .35rem; border-radius: 3px; font-size: 9pt; background: #e8eef7; }
.tag.urgent { background: #fde2e1; }
code { font-size: 9pt; word-break: break-all; color: #444; }
ul.agencies { columns: 3; margin: 0; }
@media print {
  body { margin: 0; font-size: 9.5pt; }
  tr { page-break-inside: avoid; }
  thead { display: table-header-group; }
  a { color: inherit; text-decoration: none; }
}
"""


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _row(entry: Entry) -> str:
    css = entry.what.replace(" ", "-")
    kind = f'<span class="tag">{_e(entry.kind)}</span> ' if entry.kind else ""
    priority = f' <span class="tag {_e(entry.priority)}">{_e(entry.priority)}</span>' if entry.priority else ""
    why = _e(entry.reason)
    if entry.rule:
        why = (
            f'{why} <span class="tag">{_e(entry.rule)}</span>' if why else f'<span class="tag">{_e(entry.rule)}</span>'
        )
    ids = f"<code>{_e(entry.event_id)}</code>"
    if entry.notification_id:
        ids += f"<br><code>{_e(entry.notification_id)}</code>"
    return (
        f'<tr class="{_e(css)}"><td>{_e(iso(entry.at))}</td><td>{kind}{_e(entry.what)}{priority}</td>'
        f"<td>{_e(entry.event_type)}</td><td>{_e(entry.organisation)}</td><td>{why}</td>"
        f"<td>{_e(entry.detail)}</td><td>{ids}</td></tr>"
    )


def to_html(chronology: Chronology, *, verified: bool | None = None) -> str:
    """The printable page.

    Args:
        verified: True when a replay verified the log, False when it found problems, None when not checked.
    """
    counts = chronology.counts()
    warn = "" if verified else " warn"
    agencies = "".join(f"<li>{_e(a)}</li>" for a in chronology.agencies) or "<li>none</li>"
    rows = "\n".join(_row(e) for e in chronology.entries)
    if not rows:
        rows = '<tr><td colspan="7">The log holds nothing about this child.</td></tr>'
    summary = (
        f"{counts['event']} events, {counts['notification']} notifications, "
        f"{counts['acknowledgement']} acknowledgements, {counts['not shared']} decisions not to share"
    )
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<title>Chronology for NHS number {_e(chronology.nhs_number)}</title>
<style>{_CSS}</style>
</head>
<body>
<h1>Chronology: child with NHS number {_e(chronology.nhs_number)}</h1>
<p class="meta">Made by Jigsaw from its log at {_e(iso(chronology.generated_at))}. {_e(summary)}.
Official sensitive: safeguarding information. Handle, store and share under your organisation's policy.</p>
<p class="integrity{warn}">{_e(chronology.integrity)}</p>
<h2>Organisations involved</h2>
<ul class="agencies">{agencies}</ul>
<h2>Timeline</h2>
<table>
<thead><tr><th>When (UTC)</th><th>What</th><th>Event type</th><th>Organisation</th><th>Why</th><th>Detail</th>
<th>Ids</th></tr></thead>
<tbody>
{rows}
</tbody>
</table>
</body>
</html>
"""
