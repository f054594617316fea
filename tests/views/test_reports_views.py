"""Reports through the web: the pledge's XLSX, CSV and printable page, the ranking and its
spreadsheet; for coordinators and admins only; the same totals as the pledge page."""

from __future__ import annotations

import csv
import io
import re
from datetime import date
from decimal import Decimal

import openpyxl
import pytest

from app.models import Channel, LedgerSource, RegionKind, Role
from app.services import ledger, pledges
from app.services.clock import local_date, utcnow
from app.services.ledger import Line
from tests.conftest import page_text

TODAY = local_date(utcnow())
YEAR_START = date(TODAY.year, 1, 1)


@pytest.fixture
def world(session, make):
    dazhou = make.region(name_zh="达州", kind=RegionKind.PAIRED)
    supplier = make.supplier(region=dazhou, name_zh="达州灯影坊")
    beef = make.product(supplier=supplier, name_zh="灯影牛肉")
    kitchen = make.canteen(name_zh="机关食堂")
    finance = make.organization(name_zh="市财政局")
    pledge = make.pledge(
        name="年度达州采购计划",
        target_fen=53_000_000,
        organizations=[kitchen],
        regions=[dazhou],
        start=YEAR_START,
        end=date(TODAY.year, 12, 31),
    )
    amounts = [(YEAR_START, 12_345_600), (TODAY, 1_000_050), (TODAY, -50)]
    for n, (day, amount) in enumerate(amounts):
        ledger._append(
            session,
            Line(kitchen.id, dazhou.id, supplier.id, "达州灯影坊", beef.id, "灯影牛肉", None),
            amount_fen=amount,
            occurred_on=day,
            now=utcnow(),
            channel=Channel.CANTEEN_BULK,
            source=LedgerSource.BULK_LINE if amount > 0 else LedgerSource.CREDIT_NOTE,
            reference=f"BO-{n}",
            dedupe_key=f"test-report-views:{n}",
        )
    session.commit()

    class World:
        pass

    w = World()
    w.pledge, w.kitchen, w.finance = pledge, kitchen, finance
    w.coordinator = make.user(roles={Role.COORDINATOR})
    w.met_fen = sum(amount for _day, amount in amounts)
    return w


def test_the_spreadsheet_download_has_the_pages_totals(client, actions, session, world):
    actions.login_as(world.coordinator)
    page = client.get(f"/pledges/{world.pledge.id}")
    assert page.status_code == 200
    figures = pledges.progress(session, world.pledge, TODAY)
    assert figures.met_fen == world.met_fen == 13_345_600

    response = client.get(f"/pledges/{world.pledge.id}/export.xlsx")

    assert response.status_code == 200
    assert response.mimetype.endswith("spreadsheetml.sheet")
    assert "attachment" in response.headers["Content-Disposition"]
    assert f"shanhai-pledge-{world.pledge.id}-" in response.headers["Content-Disposition"]
    summary, lines = openpyxl.load_workbook(io.BytesIO(response.data)).worksheets
    assert summary["B1"].value == "年度达州采购计划"
    assert Decimal(str(summary["B6"].value)) == Decimal("530000.00")
    assert Decimal(str(summary["B7"].value)) == Decimal("133456.00")
    amounts = [Decimal(str(row[6].value)) for row in lines.iter_rows(min_row=2)]
    assert len(amounts) == 3 and sum(amounts) == Decimal("133456.00")
    # The page shows the same total.
    assert "¥133,456.00" in page_text(page)


def test_the_csv_download_is_utf8_with_a_bom_and_adds_up(client, actions, world):
    actions.login_as(world.coordinator)
    response = client.get(f"/pledges/{world.pledge.id}/export.csv")
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"].endswith(".csv")
    data = response.data
    assert data.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert rows[0][0] == "日期 Date"
    assert sum(Decimal(row[6]) for row in rows[1:]) == Decimal("133456.00")
    assert {row[1] for row in rows[1:]} == {"机关食堂"}


def test_the_summary_csv_has_the_header_block_and_breakdowns_with_the_pages_totals(
    client, actions, world
):
    actions.login_as(world.coordinator)
    page = client.get(f"/pledges/{world.pledge.id}")
    assert f'href="/pledges/{world.pledge.id}/summary.csv"' in page.get_data(as_text=True)
    page_met = int(re.search(r'id="fig-met" data-fen="(-?\d+)"', page.get_data(as_text=True))[1])
    book = openpyxl.load_workbook(
        io.BytesIO(client.get(f"/pledges/{world.pledge.id}/export.xlsx").data)
    )
    xlsx_met = Decimal(str(book.worksheets[0]["B7"].value))

    response = client.get(f"/pledges/{world.pledge.id}/summary.csv")

    assert response.status_code == 200 and response.mimetype == "text/csv"
    disposition = response.headers["Content-Disposition"]
    assert "attachment" in disposition and disposition.endswith(".csv")
    assert f"shanhai-pledge-{world.pledge.id}-summary-" in disposition
    assert response.data.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(response.data.decode("utf-8-sig"))))
    block = {row[0]: row[1] for row in rows[:13]}
    assert block["承诺 Pledge"] == "年度达州采购计划"
    assert block["期间 Period"] == f"{YEAR_START} – {TODAY.year}-12-31"
    assert block["目标（元）Target"] == "530000.00"
    csv_met = Decimal(block["完成（元）Met"])
    assert csv_met * 100 == page_met == world.met_fen and csv_met == xlsx_met
    assert block["完成率 Share met"] == "25.2%"
    # The breakdowns under their titles, as on the spreadsheet's summary sheet.
    titles = [row[0] for row in rows if len(row) == 1]
    assert titles == ["按月 By month", "按渠道 By channel", "按供应商 By supplier",
                      "按商品 By product", "按品类 By category"]  # fmt: skip
    channel = rows[rows.index(["按渠道 By channel"]) + 2]
    assert channel[1:] == ["133456.00", "100.0%"]  # all of it through the canteen


def test_the_printable_report_shows_the_figures_on_one_page(client, actions, world):
    actions.login_as(world.coordinator)
    response = client.get(f"/pledges/{world.pledge.id}/report")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    text = page_text(response)
    assert "年度达州采购计划" in text
    assert 'id="report-met" data-fen="13345600"' in html
    assert 'id="report-target" data-fen="53000000"' in html
    assert "13.35万元" in text and "53.00万元" in text
    assert "css/report.css" in html and "<svg" in html
    assert f"/pledges/{world.pledge.id}/export.xlsx" in html


def test_the_ranking_lists_the_unit_with_its_target_and_share(client, actions, world):
    actions.login_as(world.coordinator)
    response = client.get(f"/pledges/ranking?year={TODAY.year}")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert f'data-org="{world.kitchen.id}"' in html
    assert f'data-org="{world.finance.id}"' not in html  # no pledge covers it
    assert 'data-fen="13345600"' in html and 'data-fen="53000000"' in html
    assert "25.2%" in page_text(response)  # 133,456 of 530,000


def test_the_ranking_of_a_year_without_pledges_is_empty_and_odd_years_are_not_found(
    client, actions, world
):
    actions.login_as(world.coordinator)
    response = client.get(f"/pledges/ranking?year={TODAY.year - 3}")
    assert response.status_code == 200
    assert 'id="ranking-empty"' in response.get_data(as_text=True)
    assert client.get("/pledges/ranking?year=99999").status_code == 404
    assert client.get("/pledges/ranking?year=abc").status_code == 200  # this year, then


def test_the_ranking_spreadsheet(client, actions, world):
    actions.login_as(world.coordinator)
    response = client.get(f"/pledges/ranking.xlsx?year={TODAY.year}")
    assert response.status_code == 200
    sheet = openpyxl.load_workbook(io.BytesIO(response.data)).active
    rows = [[cell.value for cell in row] for row in sheet.iter_rows()]
    body = rows[next(i for i, row in enumerate(rows) if row[0] == "名次 Rank") + 1 :]
    assert body[0][:2] == [1, "机关食堂"]
    assert Decimal(str(body[0][3])) == Decimal("133456.00")


@pytest.mark.parametrize(
    "path",
    [
        "/pledges/{id}/export.xlsx",
        "/pledges/{id}/export.csv",
        "/pledges/{id}/summary.csv",
        "/pledges/{id}/report",
    ],
)
def test_reports_are_for_coordinators_and_admins(client, actions, make, world, path):
    url = path.format(id=world.pledge.id)
    assert client.get(url).status_code == 302  # to the login page
    actions.login_as(make.user(roles={Role.STAFF}))
    assert client.get(url).status_code == 403
    actions.login_as(make.user(roles={Role.ADMIN}))
    assert client.get(url).status_code == 200


def test_an_unknown_pledge_is_not_found(client, actions, world):
    actions.login_as(world.coordinator)
    for suffix in ("export.xlsx", "export.csv", "summary.csv", "report"):
        assert client.get(f"/pledges/999999/{suffix}").status_code == 404
