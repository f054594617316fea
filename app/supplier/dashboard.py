"""The supplier's dashboard: orders to act on, sales by product and month, stock warnings."""

from __future__ import annotations

from datetime import date
from decimal import ROUND_HALF_UP, Decimal

from babel.dates import format_skeleton
from flask import render_template
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_login import current_user
from markupsafe import Markup, escape

from app.extensions import db
from app.services import supplier_portal
from app.services.clock import utcnow
from app.services.money import FEN_PER_YUAN, format_yuan
from app.services.supplier_portal import SalesTable
from app.supplier.views import bp, suppliers_only

# A small viewBox, like the pledge charts (whose CSS this uses): drawn at about its own size on
# a phone, so the 13 px axis text stays readable there.
WIDTH, HEIGHT = 360, 190
LEFT, RIGHT, TOP, BOTTOM = 52, 6, 12, 22


def month_label(month: date, skeleton: str = "yMMM") -> str:
    """2026年11月 / Nov 2026 (or 11月 / Nov with skeleton "MMM")."""
    return format_skeleton(skeleton, month, locale=get_locale())


def _axis_amount(fen: int) -> str:
    """A round axis label: ¥3,500 below ten thousand yuan, 1.2万 from there."""
    yuan = Decimal(fen) / FEN_PER_YUAN
    if yuan < 10_000:
        return f"¥{yuan.quantize(Decimal(1), rounding=ROUND_HALF_UP):,}"
    wan = (yuan / 10_000).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)
    text = f"{wan:f}".rstrip("0").rstrip(".")
    return f"{text}万"


def _axis_top(fen: int) -> int:
    """The axis top: four equal steps of 1, 2, 2.5 or 5 times a power of ten, reaching `fen`
    (so the grid reads 0, 2,500, 5,000, ... and not 0, 1.3万, 2.5万, ...)."""
    step = 100  # one yuan
    while True:
        for factor in (1, 2, 2.5, 5):
            if 4 * step * factor >= fen:
                return int(4 * step * factor)
        step *= 10


def _n(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def sales_chart(sales: SalesTable) -> Markup:
    """One bar per month: what counted for the supplier. The table beside it has the figures."""
    top = _axis_top(max(1, *sales.month_totals))
    plot_height = HEIGHT - TOP - BOTTOM
    slot = (WIDTH - LEFT - RIGHT) / len(sales.months)
    bar = slot * 0.62

    def y(fen: int) -> float:
        return TOP + plot_height - max(fen, 0) / top * plot_height

    body = []
    for quarter in range(5):
        value = top * quarter // 4
        level = _n(y(value))
        body.append(
            f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{level}" y2="{level}"/>'
            f'<text class="axis" x="{LEFT - 6}" y="{level}" text-anchor="end" '
            f'dominant-baseline="middle">{escape(_axis_amount(value))}</text>'
        )
    for index, (month, amount) in enumerate(zip(sales.months, sales.month_totals, strict=True)):
        left = LEFT + index * slot + (slot - bar) / 2
        if amount > 0:
            label = f"{month_label(month)}: {format_yuan(amount)}"
            body.append(
                f'<rect class="bar" x="{_n(left)}" y="{_n(y(amount))}" width="{_n(bar)}" '
                f'height="{_n(max(y(0) - y(amount), 1))}"><title>{escape(label)}</title></rect>'
            )
        if index % 2 == (len(sales.months) - 1) % 2:  # every other month, ending on this one
            body.append(
                f'<text class="axis" x="{_n(left + bar / 2)}" y="{HEIGHT - 6}" '
                f'text-anchor="middle">{escape(month_label(month, "MMM"))}</text>'
            )
    body.append(
        f'<line class="axis-line" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{_n(y(0))}" '
        f'y2="{_n(y(0))}"/>'
    )
    title = _("Sales per month")
    desc = _(
        "What counted for your products in each of the last twelve months, %(first)s to "
        "%(last)s: %(total)s in all.",
        first=month_label(sales.months[0]),
        last=month_label(sales.months[-1]),
        total=format_yuan(sales.total),
    )
    return Markup(
        f'<svg class="pledge-chart" id="sales-chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        'aria-labelledby="sales-chart-title sales-chart-desc" '
        'preserveAspectRatio="xMidYMid meet" xmlns="http://www.w3.org/2000/svg">'
        f'<title id="sales-chart-title">{escape(title)}</title>'
        f'<desc id="sales-chart-desc">{escape(desc)}</desc>' + "".join(body) + "</svg>"
    )


@bp.get("/")
@suppliers_only
def dashboard():
    """Orders to act on, sales by product and month, stock warnings, listings under review."""
    board = supplier_portal.dashboard(db.session, current_user, utcnow())
    return render_template(
        "supplier/dashboard.html",
        board=board,
        chart=sales_chart(board.sales) if max(board.sales.month_totals) > 0 else None,
        month_label=month_label,
    )
