"""Usage charts as server-rendered inline SVG (no script, nothing fetched): stacked bars over time, budget bars.

Each chart is an `<svg role="img">` with a `<title>` and a `<desc>` that says what it shows in words, and each bar
segment has its own `<title>` (a tooltip, and what a screen reader reads). Colours are presentation attributes,
not inline styles, so the admin's Content-Security-Policy (no inline styles) holds.
"""

from __future__ import annotations

import bisect
import dataclasses
import datetime
import html
from collections.abc import Callable, Sequence
from datetime import tzinfo
from typing import Any

from markupsafe import Markup

from core.display import fmt_cost
from core.windows import local_days

PALETTE = ("#2f5bd3", "#1d7a46", "#d97706", "#9333ea", "#0891b2", "#b42318", "#667085")
TOP_GROUPS = 6  # more providers or models than this: the rest are one "other" band
WIDTH, HEIGHT, LEFT, BOTTOM, TOP = 720, 200, 56, 28, 10


@dataclasses.dataclass
class Timeline:
    """Bars over time: bucket starts and labels, and per group one value per bucket, per measure."""

    starts: list[float]
    labels: list[str]
    groups: list[str]
    values: dict[str, dict[str, list[float]]]  # measure → group → per bucket


def buckets(window: str, now: float, tz: tzinfo) -> tuple[list[float], list[str], float]:
    """Bucket starts, their labels and the end: the local day's hours for `today`, else local days up to today."""
    if window == "today":
        first = local_days(now, 1, tz)[0]
        end = local_days(first, 2, tz)[1]
        starts = [float(t) for t in range(int(first), int(end), 3600)]  # 23 or 25 on a day the clocks change
        return starts, [datetime.datetime.fromtimestamp(t, tz).strftime("%H:00") for t in starts], end
    days = int(window.rstrip("d"))
    starts = local_days(now - (days - 1) * 86400, days + 1, tz)
    return starts[:-1], [datetime.datetime.fromtimestamp(t, tz).strftime("%b %d") for t in starts[:-1]], starts[-1]


def timeline(rows: Sequence[dict[str, Any]], starts: list[float], labels: list[str]) -> Timeline:
    """The database's quarter-hour sums (store.usage.timeline) put into the chart's buckets, top groups kept."""
    weight: dict[str, float] = {}
    for row in rows:
        weight[row["group"]] = weight.get(row["group"], 0) + row["requests"]
    ranked = sorted(weight, key=lambda g: (-weight[g], g))
    groups = ranked[:TOP_GROUPS] + (["other"] if len(ranked) > TOP_GROUPS else [])
    kept = set(ranked[:TOP_GROUPS])
    values = {m: {g: [0.0] * len(starts) for g in groups} for m in ("requests", "tokens", "cost_usd")}
    for row in rows:
        index = bisect.bisect_right(starts, row["at"]) - 1
        if index < 0:
            continue
        group = row["group"] if row["group"] in kept else "other"
        for measure in values:
            values[measure][group][index] += row[measure]
    return Timeline(starts, labels, groups, values)


def _number(value: float) -> str:
    return f"{value:,.0f}" if value >= 10 or value == int(value) else f"{value:,.2f}"


FORMATS: dict[str, Callable[[float], str]] = {"requests": _number, "tokens": _number, "cost_usd": lambda v: fmt_cost(v)}


def colour(groups: list[str], group: str) -> str:
    return PALETTE[-1] if group == "other" else PALETTE[groups.index(group) % (len(PALETTE) - 1)]


def stacked_bars(chart_id: str, title: str, line: Timeline, measure: str) -> Markup:
    """One stacked bar chart as inline SVG, with an accessible title and description."""
    fmt = FORMATS[measure]
    per_group = line.values[measure]
    totals = [sum(per_group[g][i] for g in line.groups) for i in range(len(line.starts))]
    peak = max(totals, default=0) or 1
    plot_w, plot_h = WIDTH - LEFT - 8, HEIGHT - BOTTOM - TOP
    slot = plot_w / max(len(line.starts), 1)
    parts = [_axis(peak, fmt, plot_w, plot_h)]
    for i, label in enumerate(line.labels):
        x, y = LEFT + i * slot + slot * 0.12, float(TOP + plot_h)
        for group in line.groups:
            amount = per_group[group][i]
            if amount <= 0:
                continue
            height = amount / peak * plot_h
            y -= height
            tip = html.escape(f"{label}: {group} {fmt(amount)}")
            parts.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{slot * 0.76:.1f}" height="{height:.1f}" fill="{colour(line.groups, group)}">'
                f"<title>{tip}</title></rect>"
            )
        if len(line.labels) <= 8 or i % max(1, len(line.labels) // 8) == 0:
            parts.append(
                f'<text x="{LEFT + i * slot + slot / 2:.1f}" y="{HEIGHT - 8}" text-anchor="middle" class="tick">{html.escape(label)}</text>'
            )
    desc = f"{title}: {fmt(sum(totals))} in all" + "".join(
        f"; {group} {fmt(sum(per_group[group]))}" for group in line.groups if sum(per_group[group])
    )
    return Markup(
        f'<svg id="{chart_id}" class="chart" role="img" viewBox="0 0 {WIDTH} {HEIGHT}" aria-labelledby="{chart_id}-title {chart_id}-desc" '
        f'data-bars="{sum(1 for t in totals if t)}"><title id="{chart_id}-title">{html.escape(title)}</title>'
        f'<desc id="{chart_id}-desc">{html.escape(desc)}</desc>{"".join(parts)}</svg>'
    )


def _axis(peak: float, fmt: Callable[[float], str], plot_w: float, plot_h: float) -> str:
    lines = []
    for fraction in (0, 0.5, 1):
        y = TOP + plot_h - fraction * plot_h
        lines.append(f'<line x1="{LEFT}" x2="{LEFT + plot_w:.1f}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e3e6eb"/>')
        lines.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" class="tick">{html.escape(fmt(peak * fraction))}</text>')
    return "".join(lines)


def budget_bar(bar_id: str, what: str, used: float, budget: float, fmt: Callable[[float], str]) -> dict[str, Any]:
    """Spend against a budget: the filled share (red from 100 %) with the figures in its title, and those figures."""
    share = used / budget if budget else 0.0
    width = 300
    filled = min(share, 1.0) * width
    fill = "#b42318" if share >= 1 else ("#d97706" if share >= 0.8 else "#1d7a46")
    title = f"{what}: {fmt(used)} of {fmt(budget)} ({share:.0%})"
    svg = Markup(
        f'<svg id="{bar_id}" class="budget-bar" role="img" viewBox="0 0 {width} 14" width="{width}" height="14" '
        f'aria-labelledby="{bar_id}-title" data-share="{share:.4f}"><title id="{bar_id}-title">{html.escape(title)}</title>'
        f'<rect x="0" y="0" width="{width}" height="14" rx="3" fill="#eef1f6"/>'
        f'<rect x="0" y="0" width="{filled:.1f}" height="14" rx="3" fill="{fill}"/></svg>'
    )
    return {"svg": svg, "text": title}
