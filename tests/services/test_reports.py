"""Reports (app.services.reports): exports whose totals equal the pledge's figures and the ledger
summed in SQL, read back with openpyxl and csv; the ranking's arithmetic on fixed data; the public
board's data; and bench-data, which must leave the monthly roll-up equal to the ledger.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from itertools import count

import openpyxl
import pytest
import sqlalchemy as sa
from flask_babel import force_locale

from app.models import (
    Channel,
    LedgerEntry,
    LedgerSource,
    Organization,
    OrgKind,
    Pledge,
    Product,
    Region,
    RegionKind,
)
from app.services import accounts, bench_data, demo, ledger, pledges, reports
from app.services.ledger import Line
from tests import helpers

NOW = datetime(2026, 6, 15, 4, 0, tzinfo=UTC)  # noon in Zhoushan
TODAY = date(2026, 6, 15)
_references = count(1)


@pytest.fixture(autouse=True)
def _english(app, monkeypatch):
    monkeypatch.setattr(accounts, "generate_password_hash", helpers.cheap_password_hash)
    with app.app_context(), force_locale("en"):
        yield


@dataclass
class World:
    dazhou: Region
    zhoushan: Region
    kitchen: Organization
    finance: Organization
    health: Organization
    dazhou_supplier: Organization
    zhoushan_supplier: Organization
    beef: Product
    eggs: Product
    fish: Product


@pytest.fixture
def w(make) -> World:
    dazhou = make.region(name_zh="达州", kind=RegionKind.PAIRED)
    zhoushan = make.region(name_zh="舟山", kind=RegionKind.LOCAL)
    dazhou_supplier = make.supplier(region=dazhou, name_zh="达州灯影坊")
    zhoushan_supplier = make.supplier(region=zhoushan, name_zh="舟山渔业")
    return World(
        dazhou=dazhou,
        zhoushan=zhoushan,
        kitchen=make.canteen(name_zh="机关食堂"),
        finance=make.organization(name_zh="市财政局"),
        health=make.organization(name_zh="市卫健委"),
        dazhou_supplier=dazhou_supplier,
        zhoushan_supplier=zhoushan_supplier,
        beef=make.product(supplier=dazhou_supplier, name_zh="灯影牛肉"),
        eggs=make.product(supplier=dazhou_supplier, name_zh="黑鸡蛋"),
        fish=make.product(supplier=zhoushan_supplier, name_zh="舟山鱼干"),
    )


def add(
    session,
    unit: Organization,
    product: Product | None,
    amount_fen: int,
    day: date,
    channel: Channel = Channel.STAFF_RETAIL,
    *,
    region: Region | None = None,
    supplier_name: str = "",
    product_name: str = "",
    commit: bool = True,
) -> LedgerEntry:
    """One ledger entry through the ledger's own writer (so the roll-up follows)."""
    n = next(_references)
    line = Line(
        buyer_organization_id=unit.id,
        origin_region_id=region.id if region else product.origin_region_id,
        supplier_id=product.supplier_id if product else None,
        supplier_name=product.supplier.name_zh if product else supplier_name,
        product_id=product.id if product else None,
        product_name=product.name_zh if product else product_name,
        category_id=product.category_id if product else None,
    )
    entry = ledger._append(
        session,
        line,
        amount_fen=amount_fen,
        occurred_on=day,
        now=NOW,
        channel=channel,
        source=LedgerSource.IMPORT if amount_fen > 0 else LedgerSource.IMPORT_REVERSAL,
        reference=f"REF-{n}",
        dedupe_key=f"test-reports:{n}",
    )
    if commit:
        session.commit()
    return entry


def direct_sum(session, pledge: Pledge) -> tuple[int, int]:
    """(amount, entries) of the pledge, summed over ledger_entries in plain SQL."""
    sql = sa.text(
        "SELECT COALESCE(SUM(amount_fen), 0), COUNT(*) FROM ledger_entries "
        "WHERE occurred_on BETWEEN :first AND :last AND origin_region_id IN :regions"
        + (" AND buyer_organization_id IN :orgs" if pledge.organizations else "")
    ).bindparams(
        sa.bindparam("regions", expanding=True),
        *([sa.bindparam("orgs", expanding=True)] if pledge.organizations else []),
    )
    params = {
        "first": pledge.period_start,
        "last": pledge.period_end,
        "regions": [r.id for r in pledge.regions],
        "orgs": [o.id for o in pledge.organizations],
    }
    if not pledge.organizations:
        params.pop("orgs")
    amount, entries = session.execute(sql, params).one()
    return int(amount), int(entries)


@pytest.fixture
def busy(session, make, w):
    """A 2026 Dazhou pledge for the canteen and finance, and entries in and out of it."""
    pledge = make.pledge(
        name="2026年达州消费帮扶",
        target_fen=53_000_000,
        organizations=[w.kitchen, w.finance],
        regions=[w.dazhou],
    )
    counted = [
        add(session, w.kitchen, w.beef, 1_250_050, date(2026, 1, 5), Channel.CANTEEN_BULK),
        add(session, w.kitchen, w.eggs, 380_000, date(2026, 2, 28), Channel.CANTEEN_BULK),
        add(session, w.finance, w.beef, 5_800, date(2026, 3, 1)),
        add(session, w.finance, w.beef, -5_800, date(2026, 3, 2)),  # a refund
        add(session, w.finance, w.eggs, 3_600, date(2026, 6, 14), Channel.UNION),
        add(
            session,
            w.kitchen,
            None,
            88_800,
            date(2026, 5, 20),
            Channel.OFFLINE,
            region=w.dazhou,
            supplier_name="宣汉县农户直供",
            product_name='=HYPERLINK("http://x")',
        ),
    ]
    # Not counted: another unit, another region, before the period.
    add(session, w.health, w.beef, 99_900, date(2026, 4, 1))
    add(session, w.kitchen, w.fish, 77_700, date(2026, 4, 1), Channel.CANTEEN_BULK)
    add(session, w.kitchen, w.beef, 66_600, date(2025, 12, 31), Channel.CANTEEN_BULK)
    return pledge, counted


# --- exports --------------------------------------------------------------------------------------


def test_the_xlsx_export_has_the_pledges_figures_and_every_line_summing_to_them(session, busy):
    pledge, counted = busy
    figures = pledges.progress(session, pledge, TODAY)
    expected = sum(e.amount_fen for e in counted)
    assert figures.met_fen == expected == direct_sum(session, pledge)[0] == 1_722_450

    data = reports.pledge_xlsx(session, pledge, figures, NOW)

    book = openpyxl.load_workbook(io.BytesIO(data))
    summary, lines = book.worksheets
    block = {
        summary.cell(row, 1).value: summary.cell(row, 2).value
        for row in range(1, 14)
        if summary.cell(row, 1).value
    }
    assert block["承诺 Pledge"] == "2026年达州消费帮扶"
    assert block["期间 Period"] == "2026-01-01 – 2026-12-31"
    assert Decimal(str(block["目标（元）Target"])) == Decimal("530000.00")
    assert Decimal(str(block["完成（元）Met"])) == Decimal("17224.50")
    assert block["完成率 Share met"] == pytest.approx(17_224.50 / 530_000)
    assert block["时间进度 Period elapsed"] == pytest.approx(165 / 365)
    assert summary.cell(8, 2).number_format == "0.0%"
    assert "days behind the even pace" in block["进度 Pace"]
    assert Decimal(str(block["预计（元）Forecast"])) == Decimal(figures.forecast_fen) / 100

    header = [cell.value for cell in lines[1]]
    assert header == reports.LEDGER_HEADERS
    rows = [[cell.value for cell in row] for row in lines.iter_rows(min_row=2)]
    assert len(rows) == len(counted) == direct_sum(session, pledge)[1]
    assert sum(Decimal(str(row[6])) for row in rows) == Decimal("17224.50")
    assert rows[0][0].date() == date(2026, 1, 5)  # a date, oldest first
    assert rows[0][1:6] == ["机关食堂", "达州", "达州灯影坊", "灯影牛肉", "Canteen bulk"]
    assert lines.cell(2, 7).number_format == "#,##0.00"
    # A product name that looks like a formula stays text.
    formula_row = next(r for r in lines.iter_rows(min_row=2) if r[4].value.startswith("="))
    assert formula_row[4].data_type == "s"


def test_the_xlsx_summary_lists_the_breakdowns(session, busy):
    pledge, _counted = busy
    figures = pledges.progress(session, pledge, TODAY)
    book = openpyxl.load_workbook(io.BytesIO(reports.pledge_xlsx(session, pledge, figures, NOW)))
    values = [[cell.value for cell in row] for row in book.worksheets[0].iter_rows(min_row=15)]
    titles = [row[0] for row in values if row[0] and row[1] is None]
    assert titles == [
        "按月 By month",
        "按渠道 By channel",
        "按供应商 By supplier",
        "按商品 By product",
        "按品类 By category",
    ]
    months = [row for row in values if isinstance(row[0], str) and row[0].startswith("2026-")]
    assert len(months) == 12
    assert Decimal(str(months[-1][2])) == Decimal("17224.50")  # cumulative at the end
    assert Decimal(str(months[-1][3])) == Decimal("530000.00")  # the ideal reaches the target


def test_the_summary_csv_has_the_xlsx_summarys_figures_and_breakdowns(session, busy):
    pledge, _counted = busy
    figures = pledges.progress(session, pledge, TODAY)
    sheet = openpyxl.load_workbook(
        io.BytesIO(reports.pledge_xlsx(session, pledge, figures, NOW))
    ).worksheets[0]

    text = reports.pledge_summary_csv(pledge, figures, NOW)

    assert text.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(text.removeprefix("\ufeff"))))
    block = {row[0]: row[1] for row in rows[:13]}
    xlsx = {sheet.cell(row, 1).value: sheet.cell(row, 2).value for row in range(1, 14)}
    assert list(block) == list(xlsx)  # the same header block, in the same order
    assert block["承诺 Pledge"] == "2026年达州消费帮扶"
    assert block["期间 Period"] == "2026-01-01 – 2026-12-31"
    for label in ("目标（元）Target", "完成（元）Met", "预计（元）Forecast"):
        assert Decimal(block[label]) == Decimal(str(xlsx[label])), label
    assert block["完成（元）Met"] == "17224.50"
    assert block["完成率 Share met"] == "3.2%"  # 17,224.50 of 530,000
    assert block["时间进度 Period elapsed"] == "45.2%"  # 165 of 365 days
    assert block["生成时间 Generated"] == "2026-06-15 12:00"  # Zhoushan's time
    assert block["进度 Pace"] == xlsx["进度 Pace"]

    months = [row for row in rows if row and row[0].startswith("2026-")]
    assert len(months) == 12
    assert months[-1][2:] == ["17224.50", "530000.00"]  # cumulative, and the ideal at the end
    assert ["按品类 By category"] in rows
    # A product name that a spreadsheet would run as a formula is quoted.
    assert ['\'=HYPERLINK("http://x")', "888.00", "5.2%"] in rows


def test_beyond_the_line_limit_the_ledger_sheet_points_to_the_csv(session, busy):
    pledge, counted = busy
    figures = pledges.progress(session, pledge, TODAY)
    data = reports.pledge_xlsx(session, pledge, figures, NOW, max_lines=len(counted) - 1)
    summary, lines = openpyxl.load_workbook(io.BytesIO(data)).worksheets
    texts = [row[0].value for row in lines.iter_rows()]
    assert len(texts) == 2 and "CSV" in texts[1]
    assert Decimal(str(summary.cell(7, 2).value)) == Decimal("17224.50")  # figures still whole


def test_the_csv_export_has_a_bom_a_header_and_every_line(session, busy):
    pledge, counted = busy
    text = "".join(reports.pledge_csv(session, pledge))
    assert text.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(text.removeprefix("\ufeff"))))
    assert rows[0] == reports.LEDGER_HEADERS
    assert len(rows) - 1 == len(counted)
    assert sum(Decimal(row[6]) for row in rows[1:]) == Decimal("17224.50")
    assert rows[1][:3] == ["2026-01-05", "机关食堂", "达州"]
    assert "-58.00" in [row[6] for row in rows[1:]]  # negative amounts stay numbers
    # Text that a spreadsheet would run as a formula is quoted.
    assert any(row[4] == '\'=HYPERLINK("http://x")' for row in rows[1:])


def test_the_csv_of_many_lines_comes_in_pieces(session, make, w):
    pledge = make.pledge(organizations=[w.finance], regions=[w.dazhou])
    for day in range(1, 13):
        for _ in range(100):
            add(session, w.finance, w.beef, 100, date(2026, 2, day), commit=False)
    session.commit()
    pieces = list(reports.pledge_csv(session, pledge))
    assert len(pieces) == 2  # a thousand lines at a time
    rows = list(csv.reader(io.StringIO("".join(pieces).removeprefix("\ufeff"))))
    assert len(rows) == 1 + 1_200
    assert sum(Decimal(r[6]) for r in rows[1:]) == Decimal(1_200)


# --- the ranking ----------------------------------------------------------------------------------


@pytest.fixture
def ranked(session, make, w):
    """2026 pledges: the canteen alone (¥100,000, Dazhou), finance alone twice (¥50,000 Dazhou
    and ¥30,000 Zhoushan), canteen+health together (no one's own target); one 2025-26 pledge that
    lies in no single year; entries this year and last, some outside what counts."""
    make.pledge(name="食堂", target_fen=10_000_000, organizations=[w.kitchen], regions=[w.dazhou])
    make.pledge(
        name="财政局达州", target_fen=5_000_000, organizations=[w.finance], regions=[w.dazhou]
    )
    make.pledge(
        name="财政局舟山",
        target_fen=3_000_000,
        organizations=[w.finance],
        regions=[w.zhoushan],
        start=date(2026, 3, 1),
        end=date(2026, 8, 31),
    )
    make.pledge(
        name="食堂与卫健委",
        target_fen=20_000_000,
        organizations=[w.kitchen, w.health],
        regions=[w.dazhou],
        channels=[Channel.STAFF_RETAIL, Channel.CANTEEN_BULK],
    )
    make.pledge(
        name="跨年",
        target_fen=9_000_000,
        organizations=[w.health],
        regions=[w.dazhou],
        start=date(2025, 7, 1),
        end=date(2026, 6, 30),
    )
    bulk = Channel.CANTEEN_BULK
    # This year, up to 15 June.
    add(session, w.kitchen, w.beef, 4_000_000, date(2026, 2, 10), bulk)
    add(session, w.kitchen, w.beef, 2_000_000, date(2026, 6, 15), bulk)  # today counts
    add(session, w.kitchen, w.fish, 900_000, date(2026, 3, 1), bulk)  # Zhoushan: not counted
    add(session, w.kitchen, w.beef, 555_500, date(2026, 6, 20), bulk)  # after today: not yet
    add(session, w.finance, w.beef, 2_000_000, date(2026, 1, 20))
    add(session, w.finance, w.fish, 1_500_000, date(2026, 6, 1))  # Zhoushan counts for finance
    add(session, w.health, w.beef, 700_000, date(2026, 4, 2))
    add(session, w.health, w.beef, 300_000, date(2026, 4, 3), Channel.UNION)  # not a channel
    # Last year: up to 15 June 2025 counts as "the same period".
    add(session, w.kitchen, w.beef, 3_000_000, date(2025, 3, 1), bulk)
    add(session, w.kitchen, w.beef, 1_000_000, date(2025, 6, 15), bulk)
    add(session, w.kitchen, w.beef, 8_000_000, date(2025, 6, 16), bulk)  # later in 2025
    add(session, w.finance, w.beef, 2_500_000, date(2025, 5, 5))
    # Health bought nothing last year.


def test_the_ranking_adds_up_targets_met_and_last_years_figures(session, w, ranked):
    result = reports.ranking(session, 2026, TODAY)

    assert result.as_of == TODAY and result.last_year_until == date(2025, 6, 15)
    # The pledge across 2025 and 2026 belongs to neither year.
    assert {p.name for p in result.pledges} == {"食堂", "财政局达州", "财政局舟山", "食堂与卫健委"}
    rows = {row.name: row for row in result.rows}

    kitchen = rows["机关食堂"]
    assert kitchen.target_fen == 10_000_000  # the shared pledge's target is nobody's own
    assert kitchen.met_fen == 6_000_000  # not the Zhoushan fish, not what comes after today
    assert kitchen.share == Decimal("0.6")
    assert kitchen.last_year_fen == 4_000_000  # up to 15 June 2025, not the day after
    assert kitchen.change_fen == 2_000_000 and kitchen.change_ratio == Decimal("0.5")

    finance = rows["市财政局"]
    assert finance.target_fen == 8_000_000  # both of its own pledges
    assert finance.met_fen == 3_500_000  # Dazhou and Zhoushan: each counted by one of them
    assert finance.share == Decimal("0.4375")
    assert finance.last_year_fen == 2_500_000
    assert finance.change_fen == 1_000_000 and finance.change_ratio == Decimal("0.4")


def test_the_ranking_is_sorted_by_share_and_units_without_a_target_come_last(session, w, ranked):
    result = reports.ranking(session, 2026, TODAY)
    assert [(row.name, row.rank) for row in result.rows] == [
        ("机关食堂", 1),  # 60 %
        ("市财政局", 2),  # 43.75 %
        ("市卫健委", None),  # covered by a shared pledge only
    ]
    health = result.rows[2]
    assert health.target_fen == 0 and health.share is None
    assert health.met_fen == 700_000  # the union purchase is not a channel it counts
    assert health.last_year_fen == 0 and health.change_ratio is None
    assert result.target_fen == 18_000_000
    assert result.met_fen == 10_200_000
    assert result.share == Decimal(9_500_000) / Decimal(18_000_000)
    assert result.change_fen == 10_200_000 - 6_500_000


def test_a_finished_year_counts_whole_and_early_in_a_month_counts_the_first_days(
    session, w, ranked
):
    # On 5 June: the month is cut after 5 days (read from the entries' first days).
    early = {row.name: row for row in reports.ranking(session, 2026, date(2026, 6, 5)).rows}
    assert early["机关食堂"].met_fen == 4_000_000
    assert early["市财政局"].met_fen == 3_500_000
    assert early["机关食堂"].last_year_fen == 3_000_000
    # Next year, 2026 is over: all of it, against all of 2025.
    later = reports.ranking(session, 2026, date(2027, 3, 1))
    assert later.as_of == date(2026, 12, 31)
    rows = {row.name: row for row in later.rows}
    assert rows["机关食堂"].met_fen == 6_555_500
    assert rows["机关食堂"].last_year_fen == 12_000_000


def test_a_year_without_pledges_ranks_nobody(session, w, ranked):
    result = reports.ranking(session, 2025, TODAY)
    assert result.rows == [] and result.pledges == []
    assert reports.ranking_years(session, TODAY) == [2026]


def test_a_pledge_of_every_unit_puts_every_buying_unit_in_the_ranking(session, make, w):
    make.pledge(name="全部", target_fen=1_000_000, regions=[w.dazhou])
    names = {row.name for row in reports.ranking(session, 2026, TODAY).rows}
    assert {"机关食堂", "市财政局", "市卫健委"} <= names
    assert "达州灯影坊" not in names  # suppliers do not buy


def test_the_ranking_spreadsheet_has_its_rules_rows_and_total(session, w, ranked):
    data = reports.ranking_xlsx(reports.ranking(session, 2026, TODAY), NOW)
    sheet = openpyxl.load_workbook(io.BytesIO(data)).active
    values = [[cell.value for cell in row] for row in sheet.iter_rows()]
    assert values[0][:2] == ["年度 Year", "2026"]
    assert any(row[0] == "口径 Rule" and "alone" in row[1] for row in values)
    start = next(i for i, row in enumerate(values) if row[0] == "名次 Rank")
    body = values[start + 1 :]
    assert [row[1] for row in body] == ["机关食堂", "市财政局", "市卫健委", "合计 Total"]
    assert body[0][0] == 1 and body[2][0] is None
    assert Decimal(str(body[0][2])) == Decimal("100000.00")
    assert Decimal(str(body[0][4])) == Decimal("0.6000")
    assert Decimal(str(body[0][6])) == Decimal("20000.00")
    assert Decimal(str(body[0][7])) == Decimal("0.5000")
    assert Decimal(str(body[3][3])) == Decimal("102000.00")


# --- the public board -----------------------------------------------------------------------------


def test_the_board_shows_running_public_pledges_this_months_products_and_households(
    session, make, w
):
    shown = make.pledge(name="公开", public=True, target_fen=1_000_000, regions=[w.dazhou])
    make.pledge(name="内部", public=False, regions=[w.dazhou])
    make.pledge(
        name="去年公开",
        public=True,
        regions=[w.dazhou],
        start=date(2025, 1, 1),
        end=date(2025, 12, 31),
    )
    add(session, w.finance, w.beef, 600_000, date(2026, 6, 1))
    add(session, w.kitchen, w.eggs, 200_000, date(2026, 6, 10), Channel.CANTEEN_BULK)
    add(session, w.kitchen, w.fish, 300_000, date(2026, 6, 11), Channel.CANTEEN_BULK)
    add(session, w.kitchen, w.fish, 900_000, date(2026, 5, 30), Channel.CANTEEN_BULK)
    closed = make.supplier(name_zh="停业", active=False)
    closed.households_benefited = 5000
    session.commit()
    suppliers = session.scalars(
        sa.select(Organization.households_benefited).where(
            Organization.kind == OrgKind.SUPPLIER, Organization.active.is_(True)
        )
    ).all()

    data = reports.board(session, NOW, TODAY)

    assert data["generated_at"] == "2026-06-15T04:00:00Z"
    assert [p["name"] for p in data["pledges"]] == ["公开"]
    (p,) = data["pledges"]
    assert p == {
        "id": shown.id,
        "name": "公开",
        "period_start": "2026-01-01",
        "period_end": "2026-12-31",
        "target_fen": 1_000_000,
        "met_fen": 800_000,
        "share_met": 0.8,
        "share_elapsed": round(165 / 365, 4),
        "pace": "ahead",
        "ahead_fen": 800_000 - round(1_000_000 * 165 / 365),
    }
    assert [(t["name_zh"], t["amount_fen"]) for t in data["top_products_this_month"]] == [
        ("灯影牛肉", 600_000),
        ("舟山鱼干", 300_000),
        ("黑鸡蛋", 200_000),
    ]
    assert data["top_products_this_month"][1]["region_kind"] == "local"
    assert data["households_benefited"] == sum(suppliers) and 5000 not in suppliers


def test_pace_words(session, make, w):
    pledge = make.pledge(target_fen=36_500_000, regions=[w.dazhou], organizations=[w.finance])
    ideal = 16_500_000  # 165 of 365 days gone by 15 June
    add(session, w.finance, w.beef, ideal, date(2026, 1, 2))
    assert reports.pace_word(pledges.progress(session, pledge, TODAY)) == "on_pace"
    add(session, w.finance, w.beef, 94_999, date(2026, 1, 2))  # 0.9 days ahead
    assert reports.pace_word(pledges.progress(session, pledge, TODAY)) == "on_pace"
    add(session, w.finance, w.beef, 5_001, date(2026, 1, 2))  # a day's worth
    assert reports.pace_word(pledges.progress(session, pledge, TODAY)) == "ahead"
    add(session, w.finance, w.beef, -300_000, date(2026, 1, 2))
    assert reports.pace_word(pledges.progress(session, pledge, TODAY)) == "behind"


def test_at_most_five_products_with_sales_this_month(session, make, w):
    products = [make.product(supplier=w.dazhou_supplier) for _ in range(7)]
    for i, product in enumerate(products):
        add(session, w.finance, product, 1000 * (i + 1), date(2026, 6, 2))
    add(session, w.finance, products[6], -7000, date(2026, 6, 3))  # refunded entirely
    top = reports.top_products(session, date(2026, 6, 1))
    assert [t["amount_fen"] for t in top] == [6000, 5000, 4000, 3000, 2000]


# --- bench data -----------------------------------------------------------------------------------


@pytest.fixture
def demo_data(session):
    demo.seed_demo(session, password="demo-password-1", now=NOW)
    session.commit()


def test_bench_data_fills_the_ledger_and_keeps_the_roll_up_equal(session, demo_data):
    before = session.scalar(sa.select(sa.func.count(LedgerEntry.id)))
    report = bench_data.fill_ledger(session, 2_000, today=TODAY, seed=7)

    assert (report.before, report.added, report.after) == (0, 2_000, 2_000)
    assert session.scalar(sa.select(sa.func.count(LedgerEntry.id))) == before + 2_000
    assert ledger.check_rollup(session) == []
    rows = session.execute(
        sa.select(LedgerEntry.occurred_on, LedgerEntry.channel, LedgerEntry.amount_fen).where(
            LedgerEntry.dedupe_key.startswith("bench:")
        )
    ).all()
    assert min(r.occurred_on for r in rows) >= date(2024, 6, 15)
    assert max(r.occurred_on for r in rows) <= TODAY
    assert {r.channel for r in rows} == set(Channel)
    assert all(1_000 <= abs(r.amount_fen) <= 500_000 for r in rows)
    assert 0 < sum(r.amount_fen < 0 for r in rows) < 100
    regions = session.scalars(
        sa.select(LedgerEntry.origin_region_id)
        .where(LedgerEntry.dedupe_key.startswith("bench:"))
        .distinct()
    ).all()
    assert len(regions) == 2


def test_bench_data_tops_up_to_the_same_ledger(session, demo_data):
    bench_data.fill_ledger(session, 1_500, today=TODAY, seed=7)
    assert bench_data.fill_ledger(session, 1_500, today=TODAY, seed=7).added == 0
    bench_data.fill_ledger(session, 2_000, today=TODAY, seed=7)
    assert ledger.check_rollup(session) == []
    topped = session.execute(
        sa.select(LedgerEntry.dedupe_key, LedgerEntry.amount_fen, LedgerEntry.occurred_on)
        .where(LedgerEntry.dedupe_key.startswith("bench:"))
        .order_by(LedgerEntry.id)
    ).all()
    assert [key for key, *_ in topped] == [f"bench:{n}" for n in range(1, 2_001)]
    # Entry n is what a single run to 2,000 makes.
    world = bench_data.demo_world(session)
    fresh = bench_data._block_rows(
        world, 7, 0, date(2024, 6, 15), 731, datetime(2026, 6, 15, tzinfo=UTC)
    )
    assert [(r["amount_fen"], r["occurred_on"]) for r in fresh[:2_000]] == [
        (amount, day) for _key, amount, day in topped
    ]


def test_bench_data_needs_the_demo_data(session):
    with pytest.raises(bench_data.MissingDemoData, match="seed-demo"):
        bench_data.fill_ledger(session, 10, today=TODAY)


def test_the_bench_data_command(app, runner, session, demo_data):
    result = runner.invoke(args=["bench-data", "--entries", "2000", "--yes", "--seed", "3"])
    assert result.exit_code == 0, result.output
    assert "2,000" in result.output
    assert ledger.check_rollup(session) == []
    again = runner.invoke(args=["bench-data", "--entries", "2000", "--yes"])
    assert "nothing to add" in again.output


def test_the_bench_data_command_refuses_in_production_and_without_demo_data(app, runner, session):
    result = runner.invoke(args=["bench-data", "--entries", "10", "--yes"])
    assert result.exit_code != 0 and "seed-demo" in result.output
    app.config["APP_ENV"] = "production"
    try:
        result = runner.invoke(args=["bench-data", "--entries", "10", "--yes"])
    finally:
        app.config["APP_ENV"] = "testing"
    assert result.exit_code != 0 and "production" in result.output
    assert session.scalar(sa.select(sa.func.count(LedgerEntry.id))) == 0
