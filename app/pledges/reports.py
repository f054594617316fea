"""Reports for superiors (coordinators and admins): a pledge as XLSX, as CSV (its summary, its
ledger lines) or a printable page, and the ranking of budget units for a year, printable and as
XLSX.

Routes on the pledges blueprint (/pledges/...); every figure comes from app.services.reports,
which takes them from app.services.pledges, so they equal the pledge page's.
"""

from __future__ import annotations

import io

from flask import abort, current_app, render_template, request, send_file, stream_with_context

from app.extensions import db
from app.pledges.charts import cumulative_chart
from app.pledges.views import bp
from app.services import pledges, reports
from app.services.clock import local_date, utcnow
from app.web.access import roles_required

XLSX_MIMETYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
#: Years the ranking answers for; anything else is a 404, not a date error.
FIRST_YEAR, LAST_YEAR = 2000, 2100
#: Suppliers and products on the printed page (the rest summed as "Others").
REPORT_TOP = 5

report_readers = roles_required(*pledges.PLEDGE_ROLES)


def _margin() -> int:
    return current_app.config.get(
        "PLEDGE_BEHIND_MARGIN_PERCENT", pledges.DEFAULT_BEHIND_MARGIN_PERCENT
    )


def _pledge_and_figures(pledge_id: int):
    pledge = pledges.get_pledge(db.session, pledge_id)
    today = local_date(utcnow())
    return pledge, pledges.progress(db.session, pledge, today, _margin()), today


@bp.get("/<int:pledge_id>/export.xlsx")
@report_readers
def export_xlsx(pledge_id: int):
    """The pledge's figures (sheet 1) and every ledger line behind them (sheet 2)."""
    pledge, figures, today = _pledge_and_figures(pledge_id)
    max_lines = current_app.config.get("REPORT_XLSX_MAX_LINES", reports.XLSX_MAX_LINES)
    data = reports.pledge_xlsx(db.session, pledge, figures, utcnow(), max_lines)
    return send_file(
        io.BytesIO(data),
        mimetype=XLSX_MIMETYPE,
        as_attachment=True,
        download_name=reports.export_filename(pledge, "xlsx", today),
    )


@bp.get("/<int:pledge_id>/export.csv")
@report_readers
def export_csv(pledge_id: int):
    """The ledger lines behind the pledge as CSV (UTF-8 with a BOM), streamed."""
    pledge = pledges.get_pledge(db.session, pledge_id)
    today = local_date(utcnow())
    response = current_app.response_class(
        stream_with_context(reports.pledge_csv(db.session, pledge)),
        mimetype="text/csv",
    )
    response.headers["Content-Disposition"] = (
        f"attachment; filename={reports.export_filename(pledge, 'csv', today)}"
    )
    return response


@bp.get("/<int:pledge_id>/summary.csv")
@report_readers
def export_summary_csv(pledge_id: int):
    """The pledge's figures and breakdowns as CSV (UTF-8 with a BOM): the XLSX's summary sheet."""
    pledge, figures, today = _pledge_and_figures(pledge_id)
    response = current_app.response_class(
        reports.pledge_summary_csv(pledge, figures, utcnow()), mimetype="text/csv"
    )
    response.headers["Content-Disposition"] = (
        f"attachment; filename={reports.export_filename(pledge, 'csv', today, 'summary')}"
    )
    return response


@bp.get("/<int:pledge_id>/report")
@report_readers
def report(pledge_id: int):
    """One printable A4 page: the figures, the cumulative chart, the main breakdowns."""
    pledge, figures, today = _pledge_and_figures(pledge_id)
    return render_template(
        "pledges/report.html",
        pledge=pledge,
        figures=figures,
        today=today,
        coverage=reports.coverage(pledge),
        pace_text=reports.pace_text(figures),
        chart=cumulative_chart(figures, pledge.period_start),
        channels=figures.by_channel,
        suppliers=reports.shortened(figures.by_supplier, REPORT_TOP, figures.met_fen),
        products=reports.shortened(figures.by_product, REPORT_TOP, figures.met_fen),
        generated_at=utcnow(),
        share_text=reports.share_text,
    )


def _year(today) -> int:
    year = request.args.get("year", type=int)
    if year is None:
        return today.year
    if not FIRST_YEAR <= year <= LAST_YEAR:
        abort(404)
    return year


@bp.get("/ranking")
@report_readers
def ranking():
    """The budget units covered by the year's pledges, the best share first; printable."""
    today = local_date(utcnow())
    year = _year(today)
    return render_template(
        "pledges/ranking.html",
        result=reports.ranking(db.session, year, today),
        years=reports.ranking_years(db.session, today),
        rules=reports.ranking_rule_lines(),
        generated_at=utcnow(),
        share_text=reports.share_text,
    )


@bp.get("/ranking.xlsx")
@report_readers
def ranking_xlsx():
    today = local_date(utcnow())
    year = _year(today)
    data = reports.ranking_xlsx(reports.ranking(db.session, year, today), utcnow())
    return send_file(
        io.BytesIO(data),
        mimetype=XLSX_MIMETYPE,
        as_attachment=True,
        download_name=f"shanhai-ranking-{year}-{today:%Y%m%d}.xlsx",
    )
