"""The one page shell of emotrace's HTML reports (dataset, evaluation, session).

Every report is a single self-contained file: inline CSS, inline SVG or base64 images, no script,
font or link to fetch, and a Content-Security-Policy (``default-src 'none'``) that makes the
browser refuse any request should one slip in. So a report opens offline, never contacts a
server, and can be attached to an issue or an e-mail as one file. The shared style sheet sets the
type, headings, tables and muted text; a report adds only the rules of its own parts.
"""

from __future__ import annotations

from html import escape

#: The only sources a report may use: its own inline styles and ``data:`` images.
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"

#: Shared by every report; a report's own CSS comes after it and may override it.
BASE_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif;color:#222;
margin:24px auto;max-width:1100px;padding:0 24px}
h1{font-size:22px;margin:16px 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid
#ddd;padding-bottom:3px}h3{font-size:15px;margin:16px 0 6px}
table{border-collapse:collapse;margin:6px 0 12px}
th,td{border:1px solid #ddd;padding:3px 8px}th{background:#f5f5f5}
img{max-width:100%}.muted{color:#666}
@media print{body{margin:0}}
"""


def page(title: str, body: str, css: str = "", lang: str = "en") -> str:
    """A complete HTML page: ``title`` is plain text (escaped here), ``body`` is HTML, and
    ``css`` the report's own rules after :data:`BASE_CSS`; ``lang``: the language it is in."""
    return (
        f'<!DOCTYPE html>\n<html lang="{escape(lang)}"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{escape(title)}</title><style>{BASE_CSS}{css}</style></head>"
        f"<body>{body}</body></html>\n"
    )
