"""Pledge charts as inline SVG, drawn on the server: no script, nothing from a CDN.

Each chart is an <svg role="img"> with a <title> and a <desc> that say what it shows in words;
the page lists the same figures in a table beside it (with links to the ledger), so nothing is
only in the picture.
"""

from __future__ import annotations

import calendar
from collections.abc import Callable
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

from flask_babel import format_date
from flask_babel import gettext as _
from markupsafe import Markup, escape

from app.services.money import FEN_PER_WAN
from app.services.pledges import PledgeProgress

#: A small viewBox, so that its text stays readable when a phone shrinks the chart to 340 px.
WIDTH, HEIGHT = 480, 250
LEFT, RIGHT, TOP, BOTTOM = 64, 10, 18, 26


def wan_short(fen: int) -> str:
    """13.25万, 53万: an axis label."""
    wan = (Decimal(fen) / FEN_PER_WAN).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    text = f"{wan:f}".rstrip("0").rstrip(".") if "." in f"{wan:f}" else f"{wan:f}"
    return f"{text}万"


def _month_label(month: date) -> str:
    return format_date(month, "MMM")


def _every(count: int, room: int = 12) -> int:
    """Label every n-th month so that at most `room` labels share the axis."""
    return max(1, -(-count // room))


def _number(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


class _Scale:
    def __init__(self, low: int, high: int, top: float, bottom: float):
        self.low, self.high = low, high if high != low else low + 1
        self.top, self.bottom = top, bottom

    def __call__(self, value: int) -> float:
        span = self.high - self.low
        return self.bottom - (value - self.low) / span * (self.bottom - self.top)


def _svg(chart_id: str, title: str, desc: str, body: list[str], css: str) -> Markup:
    return Markup(
        f'<svg class="{css}" id="{chart_id}" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-labelledby="{chart_id}-title {chart_id}-desc" '
        f'preserveAspectRatio="xMidYMid meet" xmlns="http://www.w3.org/2000/svg">'
        f'<title id="{chart_id}-title">{escape(title)}</title>'
        f'<desc id="{chart_id}-desc">{escape(desc)}</desc>' + "".join(body) + "</svg>"
    )


def cumulative_chart(figures: PledgeProgress, start: date) -> Markup:
    """Cumulative amount met against the straight line to the target, with today marked."""
    days = figures.days_total
    high = max(figures.target_fen, *(m.cumulative_fen for m in figures.monthly), 1)
    low = min(0, *(m.cumulative_fen for m in figures.monthly))
    y = _Scale(low, int(high * 1.08), TOP, HEIGHT - BOTTOM)

    def x(day: int) -> float:
        return LEFT + day / days * (WIDTH - LEFT - RIGHT)

    body: list[str] = []
    for quarter in range(5):
        value = figures.target_fen * quarter // 4
        yy = _number(y(value))
        body.append(
            f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{yy}" y2="{yy}"/>'
            f'<text class="axis" x="{LEFT - 6}" y="{yy}" text-anchor="end" '
            f'dominant-baseline="middle">{escape(wan_short(value))}</text>'
        )
    step = _every(len(figures.monthly))
    for index, month in enumerate(figures.monthly):
        first_day = (month.month - start).days
        if index % step == 0:
            body.append(
                f'<text class="axis" x="{_number(x(first_day))}" y="{HEIGHT - 6}">'
                f"{escape(_month_label(month.month))}</text>"
            )
    # The ideal: nothing on the first day, the target at the end of the last.
    body.append(
        f'<line class="ideal" x1="{_number(x(0))}" y1="{_number(y(0))}" '
        f'x2="{_number(x(days))}" y2="{_number(y(figures.target_fen))}"/>'
    )
    body.append(
        f'<text class="target-label" x="{WIDTH - RIGHT}" y="{_number(y(figures.target_fen) - 5)}" '
        f'text-anchor="end">{escape(_("Target"))} {escape(wan_short(figures.target_fen))}</text>'
    )
    if figures.started:
        points = [(x(0), y(0))]
        current = figures.today.replace(day=1) if figures.today else None
        for month in figures.monthly:
            if not figures.ended and current is not None and month.month > current:
                break
            end = (month.month - start).days + _days_in(month.month)
            day = end if figures.ended else min(end, figures.days_elapsed)
            points.append((x(day), y(month.cumulative_fen)))
        path = " ".join(f"{_number(px)},{_number(py)}" for px, py in points)
        body.append(f'<polyline class="actual" points="{path}"/>')
        last_x, last_y = points[-1]
        body.append(
            f'<circle class="actual-dot" cx="{_number(last_x)}" cy="{_number(last_y)}" r="4"/>'
        )
    if 0 < figures.days_elapsed < days:
        tx = _number(x(figures.days_elapsed))
        body.append(
            f'<line class="today" x1="{tx}" x2="{tx}" y1="{TOP}" y2="{HEIGHT - BOTTOM}"/>'
            f'<text class="today-label" x="{_number(x(figures.days_elapsed) - 4)}" '
            f'y="{HEIGHT - BOTTOM - 6}" text-anchor="end">'
            f"{escape(_('Today'))}</text>"
        )
    body.append(
        f'<line class="axis-line" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{_number(y(0))}" '
        f'y2="{_number(y(0))}"/>'
    )
    desc = _(
        "Met %(met)s of the %(target)s target with %(elapsed)s%% of the period gone; "
        "the dashed line is the pace that reaches the target on the last day.",
        met=wan_short(figures.met_fen),
        target=wan_short(figures.target_fen),
        elapsed=_number(float(figures.share_elapsed * 100)),
    )
    return _svg("chart-cumulative", _("Cumulative progress"), desc, body, "pledge-chart")


def _days_in(month: date) -> int:
    return calendar.monthrange(month.year, month.month)[1]


def monthly_chart(figures: PledgeProgress, link: Callable[[date], str]) -> Markup:
    """One bar per month of the period (a link to that month's entries), the ideal month dashed."""
    amounts = [m.amount_fen for m in figures.monthly]
    ideal_month = [
        m.ideal_cumulative_fen - (figures.monthly[i - 1].ideal_cumulative_fen if i else 0)
        for i, m in enumerate(figures.monthly)
    ]
    high = max(*amounts, *ideal_month, 1)
    low = min(0, *amounts)
    y = _Scale(low, int(high * 1.1), TOP, HEIGHT - BOTTOM)
    count = len(figures.monthly)
    slot = (WIDTH - LEFT - RIGHT) / count
    bar = max(slot * 0.62, 2)
    body: list[str] = []
    for quarter in range(5):
        value = high * quarter // 4
        yy = _number(y(value))
        body.append(
            f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{yy}" y2="{yy}"/>'
            f'<text class="axis" x="{LEFT - 6}" y="{yy}" text-anchor="end" '
            f'dominant-baseline="middle">{escape(wan_short(value))}</text>'
        )
    step = _every(count)
    zero = y(0)
    for index, month in enumerate(figures.monthly):
        left = LEFT + index * slot + (slot - bar) / 2
        top, bottom = sorted((y(month.amount_fen), zero))
        label = f"{format_date(month.month, 'yyyy-MM')}: {wan_short(month.amount_fen)}"
        if month.amount_fen:
            body.append(
                f'<a href="{escape(link(month.month))}" aria-label="{escape(label)}">'
                f'<rect class="{"bar" if month.amount_fen > 0 else "bar negative"}" '
                f'x="{_number(left)}" y="{_number(top)}" width="{_number(bar)}" '
                f'height="{_number(max(bottom - top, 1))}">'
                f"<title>{escape(label)}</title></rect></a>"
            )
        iy = _number(y(ideal_month[index]))
        body.append(
            f'<line class="ideal-month" x1="{_number(left - 2)}" x2="{_number(left + bar + 2)}" '
            f'y1="{iy}" y2="{iy}"/>'
        )
        if index % step == 0:
            body.append(
                f'<text class="axis" x="{_number(left + bar / 2)}" y="{HEIGHT - 6}" '
                f'text-anchor="middle">{escape(_month_label(month.month))}</text>'
            )
    body.append(
        f'<line class="axis-line" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{_number(zero)}" '
        f'y2="{_number(zero)}"/>'
    )
    desc = _(
        "Amount counted in each month; the short dashed lines mark the amount a month needs "
        "on the even pace."
    )
    return _svg("chart-monthly", _("Amount per month"), desc, body, "pledge-chart")
