"""Charts as inline SVG, drawn on the server: nothing to download, they work offline and print.

Each chart is an image with a title and a description for screen readers (role="img"), colours
that keep 3:1 contrast against white (WCAG 1.4.11) and a pattern besides colour (targets dashed,
actuals solid); the pages put the figures in a table beside each chart as well.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from math import ceil

from markupsafe import Markup, escape

# 3:1 or better on white, and told apart by more than hue in the charts that use several.
PALETTE = ("#1f5fa8", "#b35900", "#2e7d32", "#6a3d9a", "#00707a", "#a3135a", "#555555")
TYPE_COLOURS = {
    "public_body": "#1f5fa8", "vcse": "#2e7d32", "sme": "#b35900",
    "large_private": "#6a3d9a", "community_group": "#00707a", "partnership": "#a3135a",
    "unknown": "#555555",
}
TEXT = "#222222"
GRID = "#d0d0d0"


def colour_of(key: str, index: int = 0) -> str:
    return TYPE_COLOURS.get(key, PALETTE[index % len(PALETTE)])


@dataclass(frozen=True)
class Series:
    name: str
    values: Sequence[Decimal | None]  # one per x label; None where there is no figure
    colour: str = PALETTE[0]
    dashed: bool = False


def _num(value: Decimal | float | int) -> str:
    return f"{float(value):.1f}"


def _fmt(value: Decimal | float) -> str:
    number = float(value)
    return f"{number:,.0f}" if abs(number) >= 100 else f"{number:,.2f}".rstrip("0").rstrip(".")


def _frame(chart_id: str, width: int, height: int, title: str, desc: str, body: str) -> Markup:
    return Markup(  # noqa: S704 - every text in it went through escape()
        f'<svg class="chart" viewBox="0 0 {width} {height}" width="100%" role="img"'
        f' aria-labelledby="{chart_id}-t {chart_id}-d" preserveAspectRatio="xMinYMin meet"'
        f' xmlns="http://www.w3.org/2000/svg">'
        f'<title id="{chart_id}-t">{escape(title)}</title>'
        f'<desc id="{chart_id}-d">{escape(desc)}</desc>{body}</svg>'
    )


def _ticks(low: float, high: float, count: int = 4) -> list[float]:
    if high == low:
        high = low + 1
    step = (high - low) / count
    return [low + i * step for i in range(count + 1)]


def line_chart(chart_id: str, title: str, labels: Sequence[str], series: Sequence[Series],
               unit: str = "", width: int = 560, height: int = 220) -> Markup:
    """Lines over periods (targets dashed, actuals solid), with a legend."""
    figures = [float(v) for s in series for v in s.values if v is not None]
    if not labels or not figures:
        return Markup('<p class="muted">No figures yet.</p>')
    left, right, top, bottom = 56, 12, 28, 34
    plot_w, plot_h = width - left - right, height - top - bottom
    low, high = min(figures), max(figures)
    pad = (high - low) * 0.1 or abs(high) * 0.1 or 1
    low, high = low - pad, high + pad

    def x(i: int) -> float:
        return left + (plot_w * i / (len(labels) - 1) if len(labels) > 1 else plot_w / 2)

    def y(v: float) -> float:
        return top + plot_h - (v - low) / (high - low) * plot_h

    parts = []
    for tick in _ticks(low, high):
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{_num(y(tick))}"'
                     f' y2="{_num(y(tick))}" stroke="{GRID}" stroke-width="1"/>'
                     f'<text x="{left - 6}" y="{_num(y(tick) + 4)}" text-anchor="end"'
                     f' font-size="11" fill="{TEXT}">{escape(_fmt(tick))}</text>')
    step = plot_w / (len(labels) - 1) if len(labels) > 1 else plot_w
    every = max(1, ceil(56 / step))
    for i, label in enumerate(labels):
        if i % every == 0 or i == len(labels) - 1:
            anchor = "end" if i == len(labels) - 1 and len(labels) > 1 else "middle"
            parts.append(f'<text x="{_num(x(i))}" y="{height - 12}" text-anchor="{anchor}"'
                         f' font-size="11" fill="{TEXT}">{escape(label)}</text>')
    for s in series:
        points = [(x(i), y(float(v)), v, labels[i]) for i, v in enumerate(s.values)
                  if v is not None]
        if not points:
            continue
        path = " ".join(f"{_num(px)},{_num(py)}" for px, py, _, _ in points)
        dash = ' stroke-dasharray="6 4"' if s.dashed else ""
        parts.append(f'<polyline fill="none" stroke="{s.colour}" stroke-width="2.5"{dash}'
                     f' points="{path}"/>')
        for px, py, v, label in points:
            shape = (f'<rect x="{_num(px - 3.5)}" y="{_num(py - 3.5)}" width="7" height="7"'
                     f' fill="white" stroke="{s.colour}" stroke-width="2">' if s.dashed else
                     f'<circle cx="{_num(px)}" cy="{_num(py)}" r="3.5" fill="{s.colour}">')
            closing = "</rect>" if s.dashed else "</circle>"
            parts.append(f'{shape}<title>{escape(s.name)} {escape(label)}: '
                         f'{escape(_fmt(v))} {escape(unit)}</title>{closing}')
    legend_x = left
    for s in series:
        dash = ' stroke-dasharray="6 4"' if s.dashed else ""
        parts.append(f'<line x1="{legend_x}" x2="{legend_x + 22}" y1="12" y2="12"'
                     f' stroke="{s.colour}" stroke-width="2.5"{dash}/>'
                     f'<text x="{legend_x + 28}" y="16" font-size="12" fill="{TEXT}">'
                     f'{escape(s.name)}</text>')
        legend_x += 40 + 7 * len(s.name)
    desc = "; ".join(
        f"{s.name}: " + ", ".join(f"{labels[i]} {_fmt(v)}" for i, v in enumerate(s.values)
                                  if v is not None)
        for s in series)
    return _frame(chart_id, width, height, title, f"{desc} ({unit})" if unit else desc,
                  "".join(parts))


def bar_chart(chart_id: str, title: str, bars: Sequence[tuple[str, Decimal, str]],
              suffix: str = "%", width: int = 560, scale_max: Decimal | None = None,
              prefix: str = "") -> Markup:
    """Horizontal bars: (label, value, colour), each labelled with its value."""
    if not bars:
        return Markup('<p class="muted">No figures yet.</p>')
    row, label_w = 26, 150
    height = row * len(bars) + 8
    most = float(scale_max if scale_max is not None else max(v for _, v, _ in bars)) or 1.0
    plot_w = width - label_w - 70
    parts = []
    for i, (label, value, colour) in enumerate(bars):
        top = 4 + i * row
        length = max(0.0, float(value) / most * plot_w)
        parts.append(
            f'<text x="{label_w - 8}" y="{top + 16}" text-anchor="end" font-size="12"'
            f' fill="{TEXT}">{escape(label)}</text>'
            f'<rect x="{label_w}" y="{top + 3}" width="{_num(length)}" height="{row - 8}"'
            f' fill="{colour}"/>'
            f'<text x="{_num(label_w + length + 6)}" y="{top + 16}" font-size="12"'
            f' fill="{TEXT}">{escape(prefix)}{escape(_fmt(value))}{escape(suffix)}</text>')
    desc = "; ".join(f"{label} {prefix}{_fmt(value)}{suffix}" for label, value, _ in bars)
    return _frame(chart_id, width, height, title, desc, "".join(parts))


def stacked_columns(chart_id: str, title: str, columns: Sequence[tuple[str, dict[str, Decimal]]],
                    keys: Sequence[str], names: dict[str, str], width: int = 720,
                    height: int = 260) -> Markup:
    """100% stacked columns: each column's parts (key -> per cent) in the order of `keys`."""
    if not columns:
        return Markup('<p class="muted">No figures yet.</p>')
    left, right, top, bottom = 40, 10, 10, 58
    plot_w, plot_h = width - left - right, height - top - bottom
    slot = plot_w / len(columns)
    bar_w = max(4.0, slot * 0.7)
    parts = []
    for tick in (0, 25, 50, 75, 100):
        ty = top + plot_h - plot_h * tick / 100
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{_num(ty)}" y2="{_num(ty)}"'
                     f' stroke="{GRID}"/><text x="{left - 4}" y="{_num(ty + 4)}"'
                     f' text-anchor="end" font-size="11" fill="{TEXT}">{tick}%</text>')
    every = max(1, ceil(56 / slot))  # labels about 50px wide must not overlap
    for i, (label, shares) in enumerate(columns):
        cx = left + slot * i + (slot - bar_w) / 2
        base = float(top + plot_h)
        for j, key in enumerate(keys):
            share = float(shares.get(key, Decimal(0)))
            if share <= 0:
                continue
            h = plot_h * share / 100
            base -= h
            parts.append(f'<rect x="{_num(cx)}" y="{_num(base)}" width="{_num(bar_w)}"'
                         f' height="{_num(h)}" fill="{colour_of(key, j)}" stroke="white"'
                         f' stroke-width="0.5"><title>{escape(label)}: {escape(names[key])}'
                         f' {share:.1f}%</title></rect>')
        if i % every == 0 or i == len(columns) - 1:
            parts.append(f'<text x="{_num(cx + bar_w / 2)}" y="{top + plot_h + 16}"'
                         f' text-anchor="middle" font-size="11" fill="{TEXT}">'
                         f'{escape(label)}</text>')
    legend_x, legend_y = left, height - 16
    for j, key in enumerate(keys):
        parts.append(f'<rect x="{legend_x}" y="{legend_y - 10}" width="12" height="12"'
                     f' fill="{colour_of(key, j)}"/><text x="{legend_x + 16}" y="{legend_y}"'
                     f' font-size="12" fill="{TEXT}">{escape(names[key])}</text>')
        legend_x += 30 + 7 * len(names[key])
    latest_label, latest = columns[-1]
    desc = f"{len(columns)} periods from {columns[0][0]} to {latest_label}; latest: " + ", ".join(
        f"{names[k]} {float(latest.get(k, 0)):.1f}%" for k in keys if latest.get(k))
    return _frame(chart_id, width, height, title, desc, "".join(parts))
