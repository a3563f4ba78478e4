"""Bar and line charts as inline SVG for the printed report: pure, no script, no library.

Sizes are in CSS pixels (96 per inch); a chart 680 wide fits the 180 mm of an A4 page's
text block. Every text is escaped; the values are drawn as numbers beside the bars so the
chart reads in black and white too.
"""

from __future__ import annotations

import math
from html import escape

COLOURS = ("#1f5fa8", "#d9822b", "#b03a2e", "#5b8c3a", "#7d5ba6", "#8c8c8c")
FONT = 'font-family="Noto Sans CJK JP, Noto Sans JP, sans-serif"'
Series = tuple[str, list[float]]


def nice_max(value: float) -> float:
    """The axis top: 1, 2, 2.5 or 5 times a power of ten, at least ``value``."""
    if value <= 0:
        return 1.0
    power = 10.0 ** math.floor(math.log10(value))
    for step in (1.0, 2.0, 2.5, 5.0, 10.0):
        if step * power >= value:
            return step * power
    return 10 * power


def text_width(text: str, font_px: float) -> float:
    """About how wide ``text`` is drawn: CJK characters a full em, others ~0.6 em."""
    return sum(font_px if ord(ch) > 0x2e80 else 0.6 * font_px for ch in text)


def fit(text: str, width_px: float, font_px: float) -> str:
    """``text``, cut with an ellipsis so that it fits ``width_px``."""
    if text_width(text, font_px) <= width_px:
        return text
    while text and text_width(text + "…", font_px) > width_px:
        text = text[:-1]
    return text + "…"


def _number(v: float) -> str:
    return f"{v:.0f}" if float(v).is_integer() else f"{v:.1f}"


def _legend(series: list[Series], x: float, y: float) -> list[str]:
    """Swatches and names in a row (CJK characters are counted twice as wide)."""
    out = []
    for i, (name, _) in enumerate(series):
        colour = COLOURS[i % len(COLOURS)]
        out.append(f'<rect x="{x}" y="{y - 9}" width="10" height="10" fill="{colour}"/>')
        out.append(f'<text x="{x + 14}" y="{y}" font-size="11" {FONT}>{escape(name)}</text>')
        x += 24 + 7 * len(name) + 6 * sum(1 for ch in name if ord(ch) > 0x2e80)
    return out


def _axis(top: float, left: int, plot_top: int, plot_h: int, width: int,
          unit: str) -> list[str]:
    out = []
    for i in range(5):
        v = top * i / 4
        y = plot_top + plot_h - plot_h * i / 4
        out.append(f'<line x1="{left}" y1="{y:.1f}" x2="{width - 10}" y2="{y:.1f}" '
                   'stroke="#ddd" stroke-width="0.6"/>')
        out.append(f'<text x="{left - 4}" y="{y + 3:.1f}" font-size="9" text-anchor="end" '
                   f'{FONT}>{_number(v)}{escape(unit)}</text>')
    return out


def _frame(title: str, series: list[Series], width: int, height: int, top: float, left: int,
           plot_top: int, plot_h: int, unit: str) -> list[str]:
    """The opening of a chart: the svg element, its title, legend and value axis."""
    return [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">',
            f'<text x="{left}" y="14" font-size="12" font-weight="bold" {FONT}>'
            f'{escape(title)}</text>',
            *_legend(series, left, 28), *_axis(top, left, plot_top, plot_h, width, unit)]


def bar_chart(categories: list[str], series: list[Series], *, title: str, unit: str = "",
              width: int = 680, height: int = 220, stacked: bool = False,
              top: float | None = None, marker: tuple[float, str] | None = None) -> str:
    """Grouped (or stacked) vertical bars, one group per category; ``marker`` draws a
    horizontal line at a value (a target) with its label."""
    left, plot_top, bottom = 44, 34, 40
    plot_h = height - plot_top - bottom
    plot_w = width - left - 10
    totals = ([sum(s[1][i] for s in series) for i in range(len(categories))] if stacked
              else [v for s in series for v in s[1]])
    top = top or nice_max(max(totals, default=0))
    parts = _frame(title, series, width, height, top, left, plot_top, plot_h, unit)
    group_w = plot_w / max(1, len(categories))
    bars = 1 if stacked else max(1, len(series))
    bar_w = min(40.0, group_w * 0.8 / bars)
    for c, label in enumerate(categories):
        gx = left + c * group_w + (group_w - bar_w * bars) / 2
        base: float = plot_top + plot_h
        for i, (_name, values) in enumerate(series):
            v = values[c]
            h = plot_h * min(v, top) / top
            x = gx if stacked else gx + i * bar_w
            y = base - h
            parts.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w - 1:.1f}" '
                         f'height="{h:.1f}" fill="{COLOURS[i % len(COLOURS)]}"/>')
            if not stacked and v:
                parts.append(f'<text x="{x + bar_w / 2:.1f}" y="{y - 2:.1f}" font-size="8" '
                             f'text-anchor="middle" {FONT}>{_number(v)}</text>')
            if stacked:
                base = y
        if stacked:
            parts.append(f'<text x="{gx + bar_w / 2:.1f}" y="{base - 2:.1f}" font-size="8" '
                         f'text-anchor="middle" {FONT}>{_number(totals[c])}</text>')
        parts.append(f'<text x="{left + (c + 0.5) * group_w:.1f}" y="{height - bottom + 14}" '
                     f'font-size="10" text-anchor="middle" {FONT}>'
                     f'{escape(fit(label, group_w - 4, 10))}</text>')
    if marker is not None:
        y = plot_top + plot_h - plot_h * min(marker[0], top) / top
        parts.append(f'<line x1="{left}" y1="{y:.1f}" x2="{width - 10}" y2="{y:.1f}" '
                     'stroke="#b03a2e" stroke-dasharray="4 3" stroke-width="1"/>')
        parts.append(f'<text x="{width - 12}" y="{y - 3:.1f}" font-size="9" text-anchor="end" '
                     f'fill="#b03a2e" {FONT}>{escape(marker[1])}</text>')
    parts.append("</svg>")
    return "".join(parts)


def line_chart(xs: list[str], series: list[Series], *, title: str, unit: str = "",
               width: int = 680, height: int = 220, top: float | None = None) -> str:
    """One polyline per series over the categories ``xs``, with a dot at each value."""
    left, plot_top, bottom = 44, 34, 40
    plot_h = height - plot_top - bottom
    plot_w = width - left - 10
    top = top or nice_max(max((v for _, vs in series for v in vs), default=0))
    step = plot_w / max(1, len(xs))
    parts = _frame(title, series, width, height, top, left, plot_top, plot_h, unit)
    for i, (_name, values) in enumerate(series):
        colour = COLOURS[i % len(COLOURS)]
        points = [(left + (c + 0.5) * step, plot_top + plot_h - plot_h * min(v, top) / top)
                  for c, v in enumerate(values)]
        parts.append('<polyline fill="none" stroke-width="2" stroke="' + colour + '" points="'
                     + " ".join(f"{x:.1f},{y:.1f}" for x, y in points) + '"/>')
        parts += [f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="{colour}"/>'
                  for x, y in points]
    for c, label in enumerate(xs):
        parts.append(f'<text x="{left + (c + 0.5) * step:.1f}" y="{height - bottom + 14}" '
                     f'font-size="10" text-anchor="middle" {FONT}>'
                     f'{escape(fit(label, step - 2, 10))}</text>')
    parts.append("</svg>")
    return "".join(parts)
