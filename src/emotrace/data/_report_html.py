"""HTML for the dataset report: one self-contained page (inline CSS and SVG, base64 PNGs) in the
reports' shared shell (:mod:`emotrace._html`).

Nothing here loads anything from the network, so the report opens offline and can be attached to an
issue or an e-mail as a single file. Every string that comes from the dataset is escaped.
"""

from __future__ import annotations

from html import escape
from pathlib import Path, PurePath
from typing import Any

from emotrace._html import page

#: Class colours (colour-blind friendly Okabe-Ito order, then grays for taxonomies beyond it).
PALETTE = (
    "#E69F00",
    "#56B4E9",
    "#009E73",
    "#F0E442",
    "#0072B2",
    "#D55E00",
    "#CC79A7",
    "#999999",
)

SECTIONS = (
    ("overview", "Overview"),
    ("balance", "Class balance"),
    ("properties", "Image properties"),
    ("brightness", "Brightness &amp; contrast"),
    ("samples", "Samples"),
    ("duplicates", "Duplicates &amp; leakage"),
    ("skipped", "Skipped files"),
)

#: This report's own rules (a sticky section menu over a full-width page, cards, charts,
#: thumbnails); the rest is the shared shell's.
_CSS = """
body{margin:0;max-width:none;padding:0;background:#fafafa}
main{max-width:1100px;margin:0 auto;padding:16px 24px 48px}
h2{font-size:18px;margin:32px 0 8px}
nav{position:sticky;top:0;background:#fff;border-bottom:1px solid #ddd;padding:8px 24px;z-index:1}
nav a{margin-right:14px;color:#0060a0;text-decoration:none}
table{background:#fff}th{background:none}th,td{text-align:right}
th:first-child,td:first-child,td.l{text-align:left}
td.path{text-align:left;font-family:ui-monospace,monospace;font-size:12px;word-break:break-all}
.muted{color:#777}.warn{color:#b34700;font-weight:600}.ok{color:#2d7d2d;font-weight:600}
.cards{display:flex;flex-wrap:wrap;gap:10px}
.card{background:#fff;border:1px solid #ddd;border-radius:6px;padding:8px 14px;min-width:120px}
.card b{display:block;font-size:20px}
.charts{display:flex;flex-wrap:wrap;gap:18px}
.grid{display:flex;flex-wrap:wrap;gap:6px;margin-bottom:8px}
.grid img{height:96px;width:auto;image-rendering:pixelated;border:1px solid #ccc;background:#fff}
svg text{font:11px system-ui,sans-serif;fill:#333}
"""


def render_report(summary: dict[str, Any], thumbs: dict[str, list[dict[str, str]]]) -> str:
    """The report page for ``summary`` (see :func:`emotrace.data.inspect.inspect_dataset`)."""
    root = str(summary["dataset"]["root"])
    colours = {c: PALETTE[i % len(PALETTE)] for i, c in enumerate(summary["classes"])}
    body = "".join(
        [
            _overview(summary),
            _balance(summary, colours),
            _properties(summary),
            _brightness(summary, colours),
            _samples(summary, thumbs, root),
            _duplicates(summary, root),
            _skipped(summary, root),
        ]
    )
    nav = "".join(f'<a href="#{key}">{title}</a>' for key, title in SECTIONS)
    title = f"Dataset report: {PurePath(root).name or root}"
    return page(title, f"<nav>{nav}</nav><main><h1>{escape(title)}</h1>{body}</main>", _CSS)


# --- sections ----------------------------------------------------------------------------------


def _section(key: str, inner: str) -> str:
    title = dict(SECTIONS)[key]
    return f'<section id="{key}"><h2>{title}</h2>{inner}</section>'


def _overview(s: dict[str, Any]) -> str:
    imb = s["imbalance"]["overall"]
    cards = [
        ("images", f"{s['total_images']:,}"),
        ("classes", str(len(s["classes"]))),
        ("splits", ", ".join(s["split_order"]) or "none"),
        ("imbalance", _ratio(imb)),
        ("duplicates", f"{s['duplicates']:,}"),
        ("cross-split", f"{s['cross_split_duplicates']:,}"),
        ("skipped", f"{s['skipped_total']:,}"),
    ]
    card_html = "".join(
        f'<div class="card"><b>{escape(v)}</b><span class="muted">{k}</span></div>'
        for k, v in cards
    )
    ds = s["dataset"]
    info = (
        f"<p>Dataset <code>{escape(ds['root'])}</code> "
        f"(format <code>{escape(ds['format'])}</code>): {s['indexed_entries']:,} indexed "
        f"entries, {s['total_images']:,} decoded. "
        f'<span class="muted">emotrace {escape(s["emotrace_version"])}, {escape(s["created"])}, '
        f"{s['elapsed_s']} s.</span></p>"
    )
    findings = _findings(s)
    return _section("overview", info + f'<div class="cards">{card_html}</div>' + findings)


def _findings(s: dict[str, Any]) -> str:
    notes: list[str] = []
    imb = s["imbalance"]["overall"]
    if imb is None:
        notes.append("Some class has no decodable image at all.")
    elif imb >= 3:
        notes.append(f"Classes are imbalanced (largest/smallest = {imb:.1f}).")
    if s["cross_split_duplicates"]:
        notes.append(
            f"{s['cross_split_duplicates']:,} images also occur in an earlier split "
            "(evaluation leakage)."
        )
    if s["duplicate_label_conflicts"]:
        notes.append(
            f"{s['duplicate_label_conflicts']:,} groups of identical images carry different labels."
        )
    if s["skipped_total"]:
        notes.append(f"{s['skipped_total']:,} files were skipped (see Skipped files).")
    if not notes:
        return '<p class="ok">No imbalance, duplicates, leakage or unreadable files found.</p>'
    return "<ul>" + "".join(f'<li class="warn">{escape(n)}</li>' for n in notes) + "</ul>"


def _balance(s: dict[str, Any], colours: dict[str, str]) -> str:
    splits, classes = s["split_order"], s["classes"]
    head = "".join(f"<th>{escape(sp)}</th>" for sp in splits)
    rows = []
    for c in classes:
        cells = "".join(
            f"<td>{s['splits'][sp][c]:,} <span class='muted'>"
            f"({_pct(s['splits'][sp][c], s['split_totals'][sp])})</span></td>"
            for sp in splits
        )
        total = s["class_totals"][c]
        rows.append(
            f"<tr><td>{escape(c)}</td>{cells}<td>{total:,} <span class='muted'>"
            f"({_pct(total, s['total_images'])})</span></td></tr>"
        )
    totals = "".join(f"<td><b>{s['split_totals'][sp]:,}</b></td>" for sp in splits)
    imb = "".join(f"<td>{_ratio(s['imbalance'][sp])}</td>" for sp in splits)
    table = (
        f"<table><tr><th>class</th>{head}<th>all</th></tr>{''.join(rows)}"
        f"<tr><td><b>total</b></td>{totals}<td><b>{s['total_images']:,}</b></td></tr>"
        f"<tr><td>imbalance</td>{imb}<td>{_ratio(s['imbalance']['overall'])}</td></tr></table>"
        '<p class="muted">Imbalance = largest class / smallest class; '
        "&ldquo;n/a&rdquo; when a class has no images in that split.</p>"
    )
    charts = "".join(
        f"<div><h3>{escape(sp)}</h3>"
        + _hbars([(c, s["splits"][sp][c], colours[c]) for c in classes])
        + "</div>"
        for sp in splits
    )
    return _section("balance", table + f'<div class="charts">{charts}</div>')


def _properties(s: dict[str, Any]) -> str:
    sizes = s["image_sizes"]
    modes = s["colour_modes"]
    shown = sizes["most_common"][:10]
    other = s["total_images"] - sum(x["count"] for x in shown)
    bars = [(f"{x['width']}×{x['height']}", x["count"], "#0072B2") for x in shown]
    if other > 0:
        bars.append(("other", other, "#999999"))
    ranges = ""
    if sizes["width_range"] is not None:
        (w0, w1), (h0, h1) = sizes["width_range"], sizes["height_range"]
        ranges = f"; widths {w0}–{w1} px, heights {h0}–{h1} px"
    text = (
        f"<p>{sizes['distinct']:,} distinct image sizes{ranges}. "
        f"Colour modes: <b>{modes['gray']:,}</b> gray (one channel), "
        f"<b>{modes['colour']:,}</b> colour (three channels).</p>"
    )
    mode_chart = _hbars(
        [("gray", modes["gray"], "#777777"), ("colour", modes["colour"], "#D55E00")]
    )
    charts = (
        f'<div class="charts"><div><h3>Most common sizes (width×height)</h3>{_hbars(bars)}</div>'
        f"<div><h3>Colour modes</h3>{mode_chart}</div></div>"
    )
    return _section("properties", text + charts)


def _brightness(s: dict[str, Any], colours: dict[str, str]) -> str:
    rows = []
    for c in s["classes"]:
        b, k = s["brightness"][c], s["contrast"][c]
        rows.append(
            f"<tr><td>{escape(c)}</td><td>{b['n']:,}</td><td>{_num(b['mean'])}</td>"
            f"<td>{_num(b['std'])}</td><td>{_num(k['mean'])}</td><td>{_num(k['std'])}</td></tr>"
        )
    table = (
        "<table><tr><th>class</th><th>images</th><th>brightness mean</th><th>brightness std</th>"
        f"<th>contrast mean</th><th>contrast std</th></tr>{''.join(rows)}</table>"
        '<p class="muted">Brightness = mean luma of an image (0–255); contrast = standard '
        "deviation of its luma. Each histogram is scaled to its own peak.</p>"
    )
    hist = s["histogram"]
    parts = []
    for key, label in (("brightness", "Brightness"), ("contrast", "Contrast")):
        lo, hi = hist[f"{key}_range"]
        cells = "".join(
            f"<div><h3>{label}: {escape(c)}</h3>"
            + _histogram(s[key][c]["histogram"], lo, hi, colours[c])
            + "</div>"
            for c in s["classes"]
        )
        parts.append(f'<div class="charts">{cells}</div>')
    return _section("brightness", table + "".join(parts))


def _samples(s: dict[str, Any], thumbs: dict[str, list[dict[str, str]]], root: str) -> str:
    blocks = []
    for c in s["classes"]:
        imgs = "".join(
            f'<img src="data:image/png;base64,{t["png"]}" alt="{escape(c)}" '
            f'title="{escape(t["split"])}: {escape(_short(t["source"], root))}">'
            for t in thumbs.get(c, [])
        )
        if not imgs:
            imgs = '<span class="muted">no samples</span>'
        blocks.append(f'<h3>{escape(c)}</h3><div class="grid">{imgs}</div>')
    note = '<p class="muted">Evenly spaced picks through each class; hover for the file.</p>'
    return _section("samples", note + "".join(blocks))


def _duplicates(s: dict[str, Any], root: str) -> str:
    limit = s["list_limit"]
    text = (
        f"<p><b>{s['duplicates']:,}</b> images duplicate an earlier one exactly (same decoded "
        f"pixels), in {s['duplicate_group_total']:,} groups; "
        f"{s['duplicate_label_conflicts']:,} of those groups mix labels.</p>"
        f"<p><b>{s['cross_split_duplicates']:,}</b> images also occur in an earlier split "
        f"({s['cross_split_group_total']:,} groups).</p>"
    )
    if s["cross_split_by_pair"]:
        pairs = "".join(
            f"<tr><td>{escape(k.split('/')[1])} in {escape(k.split('/')[0])}</td>"
            f"<td>{v:,}</td></tr>"
            for k, v in s["cross_split_by_pair"].items()
        )
        text += f"<table><tr><th>leak</th><th>images</th></tr>{pairs}</table>"
    text += "<h3>Groups that cross splits</h3>" + _groups(
        s["cross_split_groups"], s["truncated"]["cross_split_groups"], limit, root
    )
    text += "<h3>All duplicate groups (largest first)</h3>" + _groups(
        s["duplicate_groups"], s["truncated"]["duplicate_groups"], limit, root
    )
    return _section("duplicates", text)


def _groups(groups: list[list[dict[str, str]]], truncated: bool, limit: int, root: str) -> str:
    if not groups:
        return '<p class="muted">None.</p>'
    rows = []
    for n, group in enumerate(groups, 1):
        for j, m in enumerate(group):
            num = f'<td rowspan="{len(group)}">{n}</td>' if j == 0 else ""
            rows.append(
                f"<tr>{num}<td class='l'>{escape(m['split'])}</td><td class='l'>"
                f"{escape(m['label'])}</td><td class='path'>{escape(_short(m['source'], root))}"
                "</td></tr>"
            )
    more = f'<p class="muted">Only the first {limit} groups are listed.</p>' if truncated else ""
    return (
        "<table><tr><th>group</th><th>split</th><th>label</th><th>file</th></tr>"
        + "".join(rows)
        + "</table>"
        + more
    )


def _skipped(s: dict[str, Any], root: str) -> str:
    if not s["skipped"]:
        return _section("skipped", '<p class="ok">No files were skipped.</p>')
    rows = "".join(
        f"<tr><td class='path'>{escape(_short(x['source'], root))}</td>"
        f"<td class='l'>{escape(x['reason'])}</td></tr>"
        for x in s["skipped"]
    )
    more = ""
    if s["truncated"]["skipped"]:
        more = (
            f'<p class="muted">{s["skipped_total"]:,} files in all; only the first '
            f"{s['list_limit']} are listed.</p>"
        )
    intro = (
        f"<p>{s['skipped_total']:,} files were not used: they are not counted anywhere else.</p>"
    )
    table = f"<table><tr><th>file</th><th>reason</th></tr>{rows}</table>"
    return _section("skipped", intro + table + more)


# --- charts (inline SVG: no plotting library to import, nothing to fetch) ----------------------


def _hbars(items: list[tuple[str, int, str]], width: int = 440) -> str:
    """Horizontal bar chart: one ``(label, value, colour)`` per bar."""
    if not items:
        return '<p class="muted">No data.</p>'
    label_w, value_w, bar_h, gap = 90, 60, 16, 5
    span = width - label_w - value_w
    peak = max(v for _, v, _ in items) or 1
    height = len(items) * (bar_h + gap) + gap
    parts = [f'<svg width="{width}" height="{height}" role="img">']
    for n, (label, value, colour) in enumerate(items):
        y = gap + n * (bar_h + gap)
        w = span * value / peak
        parts.append(
            f'<text x="{label_w - 6}" y="{y + 12}" text-anchor="end">{escape(label)}</text>'
            f'<rect x="{label_w}" y="{y}" width="{w:.1f}" height="{bar_h}" fill="{colour}">'
            f"<title>{escape(label)}: {value:,}</title></rect>"
            f'<text x="{label_w + w + 4:.1f}" y="{y + 12}">{value:,}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _histogram(counts: list[int], lo: float, hi: float, colour: str) -> str:
    """Vertical histogram over ``[lo, hi)`` with equal-width bins."""
    if not counts or not any(counts):
        return '<p class="muted">No data.</p>'
    width, height, pad_b, pad_t = 200, 90, 16, 4
    plot_h = height - pad_b - pad_t
    bin_w = width / len(counts)
    peak = max(counts)
    step = (hi - lo) / len(counts)
    parts = [f'<svg width="{width}" height="{height}" role="img">']
    for n, c in enumerate(counts):
        h = plot_h * c / peak
        left = lo + n * step
        parts.append(
            f'<rect x="{n * bin_w:.1f}" y="{pad_t + plot_h - h:.1f}" width="{bin_w - 1:.1f}" '
            f'height="{h:.1f}" fill="{colour}"><title>{left:g}–{left + step:g}: {c:,}</title>'
            "</rect>"
        )
    base = pad_t + plot_h
    parts.append(
        f'<line x1="0" y1="{base}" x2="{width}" y2="{base}" stroke="#999"/>'
        f'<text x="0" y="{height - 3}">{lo:g}</text>'
        f'<text x="{width / 2}" y="{height - 3}" text-anchor="middle">{(lo + hi) / 2:g}</text>'
        f'<text x="{width}" y="{height - 3}" text-anchor="end">{hi:g}</text></svg>'
    )
    return "".join(parts)


# --- formatting ------------------------------------------------------------------------------


def _short(source: str, root: str) -> str:
    """``source`` relative to the dataset root when it lies under it (shorter tables)."""
    try:
        return str(Path(source).relative_to(root))
    except ValueError:
        return source


def _pct(n: int, total: int) -> str:
    return f"{100 * n / total:.1f}%" if total else "–"


def _ratio(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def _num(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f}"
