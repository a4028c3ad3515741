"""The attendance statistics as a chart: a server-rendered SVG (no script, nothing from the internet).

One horizontal bar per class (or school): its absence rate, split into justified and unjustified
hours. Names and numbers are escaped here and formatted in the page's language; the bars grow
from the right in Arabic. The chart is an image with a title and a description; the page keeps
the table beside it, which is what screen readers read.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from markupsafe import Markup, escape

from core.plugin_api import format_percent, locale_var

WIDTH = 320
ROW = 38  # one group: its label line and its bar
BAR = 14
TOP = 6
JUSTIFIED = "#6b9bd1"
UNJUSTIFIED = "#c0392b"
TRACK = "#eef0f3"


def _parts(group: dict[str, Any]) -> tuple[float, float]:
    """(justified share, unjustified share) of the expected time."""
    expected = float(group.get("expected_hours") or 0)
    if expected <= 0:
        return 0.0, 0.0
    justified = max(0.0, float(group.get("justified_hours") or 0)) / expected
    unjustified = max(0.0, float(group.get("unjustified_hours") or 0)) / expected
    return justified, unjustified


def _short(name: str, limit: int = 30) -> str:
    """A label that leaves room for the rate on a phone (the table beside it has the full name)."""
    return name if len(name) <= limit else name[: limit - 1] + "…"


def absence_chart(groups: Sequence[dict[str, Any]], *, title: str, description: str, rtl: bool) -> Markup:
    """The SVG of the groups' absence rates (``name``, ``absence_rate``, ``expected_hours``, hours)."""
    if not groups:
        return Markup("")
    shares = [_parts(g) for g in groups]
    top = max([j + u for j, u in shares] + [float(g.get("absence_rate") or 0) for g in groups])
    scale = max(top, 0.05)  # at least 5 % across, so small rates stay visible but not inflated
    height = TOP + ROW * len(groups) + 4
    out = [
        f'<svg class="att-chart" role="img" aria-labelledby="att-chart-title att-chart-desc" '
        f'viewBox="0 0 {WIDTH} {height}" width="100%" preserveAspectRatio="xMinYMin meet" '
        f'xmlns="http://www.w3.org/2000/svg" direction="ltr" font-size="12">',
        f'<title id="att-chart-title">{escape(title)}</title>',
        f'<desc id="att-chart-desc">{escape(description)}</desc>',
    ]
    # The root is left-to-right so the geometry below means what it says inside an Arabic page; a name
    # in Arabic is laid out right to left from the right edge ("start" in its own direction).
    anchor, label_x = ("start", WIDTH) if rtl else ("start", 0)
    value_anchor, value_x = ("start", 0) if rtl else ("end", WIDTH)
    direction = ' direction="rtl"' if rtl else ""
    for index, (group, (justified, unjustified)) in enumerate(zip(groups, shares, strict=True)):
        y = TOP + index * ROW
        rate = format_percent(float(group.get("absence_rate") or 0), locale_var.get())
        out.append(f'<g data-group="{escape(str(group.get("id", index)))}">')
        out.append(
            f'<text x="{label_x}" y="{y + 11}" text-anchor="{anchor}"{direction} fill="#1f2430">'
            f"{escape(_short(str(group.get('name') or '')))}</text>"
        )
        out.append(
            f'<text x="{value_x}" y="{y + 11}" text-anchor="{value_anchor}" fill="#1f2430" '
            f'font-weight="bold" data-rate="{escape(rate)}">{escape(rate)}</text>'
        )
        bar_y = y + 16
        out.append(f'<rect x="0" y="{bar_y}" width="{WIDTH}" height="{BAR}" rx="3" fill="{TRACK}"/>')
        start = 0.0
        for share, colour, kind in ((justified, JUSTIFIED, "justified"), (unjustified, UNJUSTIFIED, "unjustified")):
            width = round(WIDTH * min(share / scale, 1.0), 1)
            if width <= 0:
                continue
            x = WIDTH - start - width if rtl else start
            out.append(
                f'<rect x="{round(x, 1)}" y="{bar_y}" width="{width}" height="{BAR}" '
                f'fill="{colour}" data-part="{kind}"/>'
            )
            start += width
        out.append("</g>")
    out.append("</svg>")
    return Markup("".join(out))
