"""Offline sales imports: reading, checking by line, staging, commit, re-import, reversal."""

from __future__ import annotations

import io
import threading
from datetime import UTC, date, datetime

import openpyxl
import pytest
import sqlalchemy as sa
from flask_babel import force_locale
from sqlalchemy.orm import Session

from app.models import (
    Channel,
    ImportBatch,
    ImportRow,
    ImportStatus,
    LedgerEntry,
    LedgerMonth,
    LedgerSource,
    Organization,
    OrgKind,
    Pledge,
    PledgeKind,
    Region,
    Role,
)
from app.services import accounts, demo, ledger, sales_import
from app.services.errors import DomainError, LineErrors, PermissionDenied
from app.services.sheets import SheetError, SheetTooLarge
from tests.helpers import (
    cheap_password_hash,
    good_sales_rows,
    import_world,
    ledger_erasable,
    postgres_engine,
    sales_csv,
)

NOW = datetime(2026, 11, 27, 2, 0, tzinfo=UTC)
LIMITS = {"max_bytes": 1_000_000, "max_rows": 1000}


@pytest.fixture(autouse=True)
def _english(app):
    """Messages read in English, whatever the default locale."""
    with app.app_context(), force_locale("en"):
        yield


@pytest.fixture
def world(make):
    return import_world(make)


def read(data: bytes, filename: str = "sales.csv"):
    return sales_import.read(filename, data, **LIMITS)


def stage(session, world, data: bytes, source: str = "zcy", filename: str = "sales.csv"):
    return sales_import.stage(
        session, world.coordinator, NOW, source, filename, read(data, filename)
    )


def counts(session) -> dict[str, int]:
    return {
        model.__name__: session.scalar(sa.select(sa.func.count()).select_from(model))
        for model in (ImportBatch, ImportRow, LedgerEntry, LedgerMonth)
    }


def ledger_total(session) -> int:
    return session.scalar(sa.select(sa.func.coalesce(sa.func.sum(LedgerEntry.amount_fen), 0)))


def months_total(session) -> int:
    return session.scalar(sa.select(sa.func.coalesce(sa.func.sum(LedgerMonth.amount_fen), 0)))


GOOD_TOTAL = 128050 + 240000 + 86000


# --- reading -----------------------------------------------------------------------------------


def test_read_takes_chinese_or_english_headers_in_any_case_and_skips_empty_rows():
    data = sales_csv(
        [
            ("2026-03-02", "DEPT-FIN", "dazhou", "灯影牛肉", "12.5", "R-1", "note"),
            ("", "", "", "", "", "", ""),
            ("", "", "", "", "", "", "only a remark"),
            ("2026-03-03", "DEPT-FIN", "dazhou", "灯影牛肉", "13", "R-2", ""),
        ],
        header=(" Date ", "ORGANIZATION", "Region", "Product", "amount", "Reference", "Remarks"),
    )
    rows = read(data)
    assert [(row.line, row.reference, row.supplier, row.channel) for row in rows] == [
        (2, "R-1", "", ""),
        (5, "R-2", "", ""),
    ]


def test_read_takes_gb18030_csv_and_semicolons():
    text = "日期;单位;地区;商品;金额;参考号\r\n2026-03-02;市财政局;达州;灯影牛肉;12.50;R-1\r\n"
    (row,) = read(text.encode("gb18030"))
    assert (row.organization, row.region, row.product, row.amount) == (
        "市财政局",
        "达州",
        "灯影牛肉",
        "12.50",
    )


def test_read_refuses_a_header_without_the_needed_columns_at_its_line():
    data = b"\r\nDate,Who,Amount\r\n2026-03-02,DEPT-FIN,12\r\n"
    with pytest.raises(LineErrors) as caught:
        read(data)
    assert list(caught.value.errors) == [2]
    message = caught.value.errors[2]
    for column in ("单位 (organization)", "地区 (region)", "商品 (product)", "参考号 (reference)"):
        assert column in message
    assert "日期 (date)" not in message.split("The columns are")[0]


@pytest.mark.parametrize(
    ("data", "filename", "error"),
    [
        (b"%PDF-1.7 binary stuff", "sales.pdf", SheetError),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00", "sales.csv", SheetError),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100, "sales.xls", SheetError),
        (b"PK\x03\x04 not really a zip", "sales.xlsx", SheetError),
        (b"   \r\n ", "sales.csv", SheetError),
        (sales_csv([]), "sales.csv", SheetError),
        (b"x" * (LIMITS["max_bytes"] + 1), "sales.csv", SheetTooLarge),
    ],
    ids=["pdf", "binary", "xls", "broken-zip", "empty", "header-only", "too-large"],
)
def test_read_refuses_what_is_not_a_sales_spreadsheet(data, filename, error):
    with pytest.raises(error) as caught:
        read(data, filename)
    assert caught.value.field == "file"


def test_read_refuses_more_rows_than_allowed():
    rows = [("2026-03-02", "A", "dazhou", "P", "1", f"R-{n}", "") for n in range(11)]
    with pytest.raises(SheetError, match="more than 10 rows"):
        sales_import.read("s.csv", sales_csv(rows), max_bytes=10**6, max_rows=10)


# --- staging and committing a good file --------------------------------------------------------


def test_a_good_csv_is_staged_for_review_and_counts_nothing_yet(session, world):
    batch = stage(session, world, sales_csv(good_sales_rows(world)))
    session.commit()

    assert batch.status == ImportStatus.PENDING
    assert (batch.rows_total, batch.rows_new, batch.rows_already_counted) == (3, 3, 0)
    assert batch.amount_fen == GOOD_TOTAL
    assert batch.created_by_id == world.coordinator.id
    assert session.scalar(sa.select(sa.func.count()).select_from(LedgerEntry)) == 0
    first, second, third = sales_import.batch_rows(session, batch)
    assert [row.line for row in (first, second, third)] == [2, 3, 4]
    # By code: the product, its category, and (the supplier cell empty) its supplier.
    assert (first.product_id, first.category_id, first.supplier_id) == (
        world.beef.id,
        world.beef.category_id,
        world.supplier.id,
    )
    assert first.occurred_on == date(2026, 3, 2) and first.amount_fen == 128050
    # By exact names, for the unit, the region, the supplier and the product.
    assert second.buyer_organization_id == world.canteen.id
    assert (second.origin_region_id, second.product_id) == (world.dazhou.id, world.beef.id)
    assert second.channel == Channel.OFFLINE and second.amount_fen == 240000
    # Outside the catalog: kept by name; 工会 is the union channel; 2026年9月20日 is a date.
    assert (third.supplier_id, third.supplier_name) == (None, "嵊泗海岛渔家")
    assert (third.product_id, third.product_name, third.category_id) == (None, "嵊泗贻贝礼盒", None)
    assert third.channel == Channel.UNION and third.occurred_on == date(2026, 9, 20)


def test_commit_writes_one_entry_per_row_and_the_monthly_rollup(session, world):
    batch = stage(session, world, sales_csv(good_sales_rows(world)))
    sales_import.commit(session, batch, world.coordinator, NOW)
    session.commit()

    assert batch.status == ImportStatus.COMMITTED and batch.committed_at == NOW
    entries = session.scalars(sa.select(LedgerEntry).order_by(LedgerEntry.id)).all()
    assert [e.amount_fen for e in entries] == [128050, 240000, 86000]
    assert {e.source for e in entries} == {LedgerSource.IMPORT}
    assert [e.external_key for e in entries] == [
        "zcy:ZCY-2026-0001",
        "zcy:ZCY-2026-0002",
        "zcy:ZCY-2026-0003",
    ]
    assert entries[0].dedupe_key == "import:zcy:ZCY-2026-0001:0"
    assert [e.channel for e in entries] == [Channel.OFFLINE, Channel.OFFLINE, Channel.UNION]
    assert [e.occurred_on.month for e in entries] == [3, 6, 9]
    assert {e.import_batch_id for e in entries} == {batch.id}
    assert {e.actor_id for e in entries} == {world.coordinator.id}
    assert entries[0].source_reference == "ZCY-2026-0001"
    assert ledger_total(session) == months_total(session) == GOOD_TOTAL
    union = session.scalar(
        sa.select(sa.func.sum(LedgerMonth.amount_fen)).where(LedgerMonth.channel == Channel.UNION)
    )
    assert union == 86000
    assert ledger.check_rollup(session) == []


def test_an_xlsx_with_date_cells_and_number_cells_is_imported(session, world):
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(["销售日期", "预算单位", "产地", "商品名称", "金额（元）", "单号"])
    sheet.append([datetime(2026, 4, 1), world.finance.code, world.dazhou.code, world.beef.code,
                  1234.5, 100234])  # fmt: skip
    sheet.append([])
    sheet.append([date(2026, 4, 2), world.finance.code, world.dazhou.code, world.beef.code, 99,
                  "A-2"])  # fmt: skip
    buffer = io.BytesIO()
    workbook.save(buffer)

    batch = stage(session, world, buffer.getvalue(), filename="till.xlsx")
    sales_import.commit(session, batch, world.coordinator, NOW)
    session.commit()

    rows = sales_import.batch_rows(session, batch)
    assert [(r.line, r.occurred_on, r.amount_fen, r.reference) for r in rows] == [
        (2, date(2026, 4, 1), 123450, "100234"),
        (4, date(2026, 4, 2), 9900, "A-2"),
    ]
    assert batch.filename == "till.xlsx"
    assert ledger_total(session) == months_total(session) == 123450 + 9900
    assert ledger.check_rollup(session) == []


# --- bad input: refused by line, nothing written -----------------------------------------------


def bad_row(world, **cells):
    row = {
        "date": "2026-03-02",
        "organization": world.finance.code,
        "region": world.dazhou.code,
        "supplier": "",
        "product": world.beef.code,
        "amount": "100",
        "reference": "BAD-1",
    }
    row.update(cells)
    return tuple(row.values())


BAD_CASES = {
    "unknown-organization": ({"organization": "DEPT-NOPE"}, "Unknown organization DEPT-NOPE"),
    "supplier-as-buyer": ({"organization": "SUPPLIER"}, "is a supplier, not a buying unit"),
    "unknown-region": ({"region": "火星"}, "Unknown region 火星"),
    "negative-amount": ({"amount": "-20.00"}, "is negative"),
    "non-numeric-amount": ({"amount": "一百"}, "is not an amount in yuan"),
    "three-decimals": ({"amount": "1.005"}, "is not an amount in yuan"),
    "zero-amount": ({"amount": "0.00"}, "more than zero"),
    "no-amount": ({"amount": ""}, "No amount"),
    "date-outside-pledges": ({"date": "2025-12-31"}, "is in no pledge's period"),
    "not-a-date": ({"date": "31/12/2026"}, "is not a date"),
    "impossible-date": ({"date": "2026-02-30"}, "is not a date"),
    "future-date": ({"date": "2026-12-01"}, "is in the future"),
    "no-reference": ({"reference": ""}, "No reference"),
    "long-reference": ({"reference": "R" * 129}, "longer than 128"),
    "no-product": ({"product": ""}, "No product"),
    "product-of-another-supplier": ({"supplier": "OTHER"}, "is not sold by"),
}


@pytest.mark.parametrize("case", list(BAD_CASES), ids=list(BAD_CASES))
def test_each_bad_row_is_refused_by_its_line_and_nothing_is_written(session, make, world, case):
    make.supplier(code="OTHER", name_zh="别家")
    cells, message = BAD_CASES[case]
    cells = {k: world.supplier.code if v == "SUPPLIER" else v for k, v in cells.items()}
    good = good_sales_rows(world)
    data = sales_csv([good[0], (), (*bad_row(world, **cells), "")])
    before = counts(session)

    with pytest.raises(LineErrors) as caught:
        stage(session, world, data)
    session.rollback()

    assert list(caught.value.errors) == [4]  # the header, a good row, a blank line, then it
    assert message in caught.value.errors[4]
    assert counts(session) == before


def test_an_unknown_channel_is_refused(session, world):
    data = sales_csv([(*bad_row(world), "团购")])
    with pytest.raises(LineErrors) as caught:
        stage(session, world, data)
    assert "Unknown channel 团购" in caught.value.errors[2]


def test_duplicate_references_in_one_file_name_the_first_line(session, world):
    rows = good_sales_rows(world)
    duplicate = (*rows[1][:6], rows[0][6], "")
    data = sales_csv([rows[0], rows[2], duplicate])
    with pytest.raises(LineErrors) as caught:
        stage(session, world, data)
    assert caught.value.errors == {4: "Reference ZCY-2026-0001 is already on line 2."}
    session.rollback()
    assert counts(session)["ImportBatch"] == 0


def test_every_bad_line_is_reported_at_once_with_every_problem(session, world):
    data = sales_csv(
        [
            good_sales_rows(world)[0],
            bad_row(world, organization="NOPE", amount="abc"),
            bad_row(world, date="2025-01-01", reference="BAD-2"),
        ]
    )
    with pytest.raises(LineErrors) as caught:
        stage(session, world, data)
    assert sorted(caught.value.errors) == [3, 4]
    assert "Unknown organization NOPE" in caught.value.errors[3]
    assert "abc is not an amount" in caught.value.errors[3]


def test_without_any_pledge_no_date_is_inside_one(session, world):
    session.delete(world.pledge)
    session.flush()
    with pytest.raises(LineErrors) as caught:
        stage(session, world, sales_csv(good_sales_rows(world)))
    assert sorted(caught.value.errors) == [2, 3, 4]


@pytest.mark.parametrize("source", ["", "Z", "zcy platform", "政采云", "a" * 65, "zcy_2026"])
def test_the_source_must_be_a_short_slug(session, world, source):
    with pytest.raises(DomainError) as caught:
        stage(session, world, sales_csv(good_sales_rows(world)), source=source)
    assert caught.value.field == "source"
    assert counts(session)["ImportBatch"] == 0


def test_the_source_is_taken_in_lower_case(session, world):
    batch = stage(session, world, sales_csv(good_sales_rows(world)), source=" Counter-Till ")
    assert batch.source == "counter-till"


def test_only_coordinators_and_admins_import(session, make, world):
    rows = read(sales_csv(good_sales_rows(world)))
    for role in (Role.STAFF, Role.CANTEEN_BUYER, Role.SUPPLIER, Role.COUNTER_CLERK):
        with pytest.raises(PermissionDenied):
            sales_import.stage(session, make.user(roles={role}), NOW, "zcy", "f.csv", rows)
    admin = make.user(roles={Role.ADMIN})
    batch = sales_import.stage(session, admin, NOW, "zcy", "f.csv", rows)
    with pytest.raises(PermissionDenied):
        sales_import.commit(session, batch, make.user(roles={Role.STAFF}), NOW)
    sales_import.commit(session, batch, None, NOW)  # the command line acts as nobody
    assert ledger_total(session) == GOOD_TOTAL


# --- idempotence: the same rows count once -----------------------------------------------------


def test_reimporting_the_same_file_is_recognised_and_adds_nothing(session, world):
    data = sales_csv(good_sales_rows(world))
    first = stage(session, world, data)
    sales_import.commit(session, first, world.coordinator, NOW)
    session.commit()
    entries_before = counts(session)["LedgerEntry"]

    again = stage(session, world, data)
    assert (again.rows_total, again.rows_new, again.rows_already_counted) == (3, 0, 3)
    assert again.amount_fen == 0
    assert all(row.already_counted for row in sales_import.batch_rows(session, again))
    sales_import.commit(session, again, world.coordinator, NOW)
    session.commit()

    assert counts(session)["LedgerEntry"] == entries_before
    assert ledger_total(session) == months_total(session) == GOOD_TOTAL
    assert ledger.check_rollup(session) == []


def test_a_file_overlapping_an_earlier_one_counts_only_its_new_rows(session, world):
    rows = good_sales_rows(world)
    sales_import.commit(session, stage(session, world, sales_csv(rows[:2])), world.coordinator, NOW)
    batch = stage(session, world, sales_csv(rows))
    assert (batch.rows_new, batch.rows_already_counted, batch.amount_fen) == (1, 2, 86000)
    sales_import.commit(session, batch, world.coordinator, NOW)
    assert ledger_total(session) == GOOD_TOTAL


def test_the_same_reference_from_another_source_is_another_sale(session, world):
    data = sales_csv(good_sales_rows(world))
    sales_import.commit(session, stage(session, world, data), world.coordinator, NOW)
    other = stage(session, world, data, source="counter-till")
    assert other.rows_new == 3
    sales_import.commit(session, other, world.coordinator, NOW)
    assert ledger_total(session) == 2 * GOOD_TOTAL


def test_a_batch_committed_twice_counts_once(session, world):
    batch = stage(session, world, sales_csv(good_sales_rows(world)))
    sales_import.commit(session, batch, world.coordinator, NOW)
    session.commit()
    with pytest.raises(sales_import.ImportConflict) as caught:
        sales_import.commit(session, batch, world.coordinator, NOW)
    assert caught.value.status_code == 409
    session.rollback()
    assert ledger_total(session) == GOOD_TOTAL


def test_two_pending_files_with_the_same_rows_count_them_once(session, world):
    data = sales_csv(good_sales_rows(world))
    first, second = stage(session, world, data), stage(session, world, data)
    assert first.rows_new == second.rows_new == 3  # neither is counted yet
    sales_import.commit(session, first, world.coordinator, NOW)
    sales_import.commit(session, second, world.coordinator, NOW)
    session.commit()
    assert (second.rows_new, second.rows_already_counted, second.amount_fen) == (0, 3, 0)
    assert ledger_total(session) == GOOD_TOTAL
    assert ledger.check_rollup(session) == []


def test_a_racing_commit_that_wrote_the_key_first_wins(session, world, monkeypatch):
    """Two commits that both saw the row uncounted: the unique dedupe key keeps one entry."""
    data = sales_csv(good_sales_rows(world))
    first, second = stage(session, world, data), stage(session, world, data)
    sales_import.commit(session, first, world.coordinator, NOW)
    # The second commit read the counts before the first one wrote its entries.
    monkeypatch.setattr(sales_import, "_key_counts", lambda session, keys: {})
    sales_import.commit(session, second, world.coordinator, NOW)
    assert (second.rows_new, second.rows_already_counted) == (0, 3)
    assert ledger_total(session) == months_total(session) == GOOD_TOTAL


def test_a_discarded_batch_never_counts(session, world):
    batch = stage(session, world, sales_csv(good_sales_rows(world)))
    sales_import.discard(session, batch, world.coordinator, NOW)
    assert batch.status == ImportStatus.DISCARDED
    with pytest.raises(sales_import.ImportConflict):
        sales_import.commit(session, batch, world.coordinator, NOW)
    with pytest.raises(sales_import.ImportConflict):
        sales_import.reverse(session, batch, world.coordinator, NOW, "wrong file")
    assert ledger_total(session) == 0
    # Its rows were never counted, so the file can be imported afterwards.
    assert stage(session, world, sales_csv(good_sales_rows(world))).rows_new == 3


# --- reversal ----------------------------------------------------------------------------------


def test_reversal_writes_a_negative_entry_per_entry_and_the_total_returns_to_zero(session, world):
    batch = stage(session, world, sales_csv(good_sales_rows(world)))
    sales_import.commit(session, batch, world.coordinator, NOW)
    session.commit()
    later = datetime(2026, 11, 28, tzinfo=UTC)

    assert sales_import.reverse(session, batch, world.coordinator, later, " 重复导入 ") == 3
    session.commit()

    assert batch.status == ImportStatus.REVERSED
    assert (batch.reversed_at, batch.reversal_reason) == (later, "重复导入")
    originals, written = (
        session.scalars(
            sa.select(LedgerEntry).where(LedgerEntry.source == source).order_by(LedgerEntry.id)
        ).all()
        for source in (LedgerSource.IMPORT, LedgerSource.IMPORT_REVERSAL)
    )
    assert {(e.reason, e.import_batch_id, e.actor_id) for e in written} == {
        ("重复导入", batch.id, world.coordinator.id)
    }
    assert {e.recorded_at for e in written} == {later}
    # One negative per entry, on the same day, unit and line of business: each month's figure
    # returns to what it was.
    reversal = {e.dedupe_key: e for e in written}
    assert len(reversal) == len(originals) == 3
    for original in originals:
        negative = reversal[f"import-reversal:{original.id}"]
        assert negative.amount_fen == -original.amount_fen
        assert negative.external_key == original.external_key
        assert (negative.occurred_on, negative.channel) == (original.occurred_on, original.channel)
        assert negative.buyer_organization_id == original.buyer_organization_id
        assert negative.product_name == original.product_name
    assert ledger_total(session) == months_total(session) == 0
    assert sales_import.batch_net_fen(session, batch) == 0
    assert ledger.check_rollup(session) == []


def test_a_row_counts_again_when_imported_after_its_reversal(session, world):
    data = sales_csv(good_sales_rows(world))
    for generation in range(3):
        batch = stage(session, world, data)
        assert batch.rows_new == 3, generation
        sales_import.commit(session, batch, world.coordinator, NOW)
        assert ledger_total(session) == GOOD_TOTAL
        key = session.scalar(
            sa.select(LedgerEntry.dedupe_key)
            .where(LedgerEntry.import_batch_id == batch.id)
            .order_by(LedgerEntry.id)
            .limit(1)
        )
        assert key == f"import:zcy:ZCY-2026-0001:{generation}"
        if generation < 2:
            sales_import.reverse(session, batch, world.coordinator, NOW, "wrong amounts")
            assert ledger_total(session) == 0
    session.commit()
    assert ledger.check_rollup(session) == []


def test_reversal_needs_a_reason_and_a_committed_batch(session, world):
    batch = stage(session, world, sales_csv(good_sales_rows(world)))
    with pytest.raises(sales_import.ImportConflict):
        sales_import.reverse(session, batch, world.coordinator, NOW, "not yet committed")
    sales_import.commit(session, batch, world.coordinator, NOW)
    session.commit()
    for reason in ("", "   ", "x" * 256):
        with pytest.raises(DomainError) as caught:
            sales_import.reverse(session, batch, world.coordinator, NOW, reason)
        assert caught.value.field == "reason"
    session.rollback()
    assert batch.status == ImportStatus.COMMITTED
    sales_import.reverse(session, batch, world.coordinator, NOW, "wrong file")
    session.commit()
    with pytest.raises(sales_import.ImportConflict):
        sales_import.reverse(session, batch, world.coordinator, NOW, "again")
    session.rollback()
    assert ledger_total(session) == 0


def test_reversing_a_batch_of_already_counted_rows_leaves_the_earlier_import(session, world):
    data = sales_csv(good_sales_rows(world))
    sales_import.commit(session, stage(session, world, data), world.coordinator, NOW)
    again = stage(session, world, data)
    sales_import.commit(session, again, world.coordinator, NOW)
    assert sales_import.reverse(session, again, world.coordinator, NOW, "duplicate") == 0
    assert ledger_total(session) == GOOD_TOTAL


def test_a_long_source_and_reference_still_fit_the_dedupe_key(session, world):
    rows = good_sales_rows(world)
    long_reference = "Z" * 128
    data = sales_csv([(*rows[0][:6], long_reference, "")])
    batch = stage(session, world, data, source="s" * 64)
    sales_import.commit(session, batch, world.coordinator, NOW)
    entry = session.scalar(sa.select(LedgerEntry))
    assert entry.external_key == f"{'s' * 64}:{long_reference}"
    assert len(entry.dedupe_key) <= 200 and entry.dedupe_key.endswith(":0")
    assert stage(session, world, data, source="s" * 64).rows_already_counted == 1


def test_progress_is_reported_per_row(session, world):
    ticks = []
    rows = read(sales_csv(good_sales_rows(world)))
    batch = sales_import.stage(
        session, world.coordinator, NOW, "zcy", "f.csv", rows, progress=ticks.append
    )
    sales_import.commit(session, batch, world.coordinator, NOW, progress=ticks.append)
    assert ticks == [1, 1, 1, 3]  # checking row by row, committing by the thousand


# --- the demo file -----------------------------------------------------------------------------


def test_the_demo_file_imports_cleanly_into_the_demo_data(session, monkeypatch):
    monkeypatch.setattr(accounts, "generate_password_hash", cheap_password_hash)
    demo.seed_demo(session, password="demo-password-1", now=NOW)
    session.add(
        Pledge(
            name="2026",
            kind=PledgeKind.FIXED,
            target_fen=53_000_000,
            period_start=date(2026, 1, 1),
            period_end=date(2026, 12, 31),
            created_at=NOW,
            updated_at=NOW,
        )
    )
    session.flush()
    data = sales_import.demo_offline_sales(date(2026, 11, 27))
    assert data == sales_import.demo_offline_sales(date(2026, 11, 27))  # the same every time

    rows = read(data)
    batch = sales_import.stage(session, None, NOW, "zcy", "zcy-2026.csv", rows)
    sales_import.commit(session, batch, None, NOW)

    assert batch.rows_new == 20
    assert rows[0].reference == "ZCY-2026-0001"
    imported = sales_import.batch_rows(session, batch)
    assert all(row.product_id and row.supplier_id for row in imported)
    assert {row.occurred_on.year for row in imported} == {2026}
    assert max(row.occurred_on for row in imported) <= date(2026, 11, 27)
    assert all(20_000 <= row.amount_fen <= 700_000 for row in imported)
    assert {row.channel for row in imported} == {Channel.OFFLINE, Channel.UNION}
    regions = session.scalars(sa.select(Region.code).join(ImportRow.origin_region)).all()
    assert set(regions) <= {"dazhou", "zhoushan"}
    kinds = session.scalars(
        sa.select(Organization.kind).join(
            ImportRow, ImportRow.buyer_organization_id == Organization.id
        )
    ).all()
    assert OrgKind.SUPPLIER not in set(kinds)
    assert ledger.check_rollup(session) == []


# --- a real race on PostgreSQL -----------------------------------------------------------------


@pytest.fixture
def pg_engine(app):
    yield from postgres_engine(app)


@pytest.mark.postgres
def test_two_processes_committing_at_once_count_the_rows_once(app, pg_engine):
    """Two connections commit the same batch, and two batches of the same rows, at once."""
    now = NOW
    with Session(pg_engine) as setup:
        region = Region(code="race-import", name_zh="竞争地区")
        unit = Organization(code="RACE-UNIT", kind=OrgKind.DEPARTMENT, name_zh="竞争单位",
                            created_at=now)  # fmt: skip
        pledge = Pledge(name="race", kind=PledgeKind.FIXED, target_fen=100,
                        period_start=date(2026, 1, 1), period_end=date(2026, 12, 31),
                        created_at=now, updated_at=now)  # fmt: skip
        setup.add_all([region, unit, pledge])
        setup.commit()
        ids = {"region": region.id, "unit": unit.id, "pledge": pledge.id}
        data = sales_csv(
            [
                (f"2026-05-{n:02d}", "RACE-UNIT", "race-import", "", "竞争商品", "10", f"R-{n}", "")
                for n in range(1, 21)
            ]
        )
        with app.app_context():
            rows = read(data)
            batches = [
                sales_import.stage(setup, None, now, "race", "race.csv", rows) for _ in range(2)
            ]
        setup.commit()
        batch_ids = [b.id for b in batches]
    try:
        outcomes: list[str] = []
        barrier = threading.Barrier(3)

        def commit(batch_id: int) -> None:
            with app.app_context(), Session(pg_engine) as session:
                batch = session.get(ImportBatch, batch_id)
                barrier.wait()
                try:
                    sales_import.commit(session, batch, None, now)
                    session.commit()
                    outcomes.append("committed")
                except sales_import.ImportConflict:
                    session.rollback()
                    outcomes.append("conflict")

        # The first batch twice, the second (same rows) once: three commits at the same moment.
        threads = [threading.Thread(target=commit, args=(b,)) for b in (*batch_ids, batch_ids[0])]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert sorted(outcomes) == ["committed", "committed", "conflict"]
        with Session(pg_engine) as check:
            keyed = sa.select(LedgerEntry).where(LedgerEntry.external_key.like("race:%"))
            entries = check.scalars(keyed).all()
            assert len(entries) == 20
            assert sum(e.amount_fen for e in entries) == 20 * 1000
            new = check.scalars(
                sa.select(ImportBatch.rows_new).where(ImportBatch.id.in_(batch_ids))
            ).all()
            assert sum(new) == 20
            assert ledger.check_rollup(check) == []
    finally:
        with pg_engine.begin() as connection, ledger_erasable(connection):
            connection.execute(
                sa.delete(LedgerEntry).where(LedgerEntry.import_batch_id.in_(batch_ids))
            )
            connection.execute(
                sa.delete(LedgerMonth).where(LedgerMonth.buyer_organization_id == ids["unit"])
            )
            connection.execute(sa.delete(ImportRow).where(ImportRow.batch_id.in_(batch_ids)))
            connection.execute(sa.delete(ImportBatch).where(ImportBatch.id.in_(batch_ids)))
            connection.execute(sa.delete(Pledge).where(Pledge.id == ids["pledge"]))
            connection.execute(sa.delete(Organization).where(Organization.id == ids["unit"]))
            connection.execute(sa.delete(Region).where(Region.id == ids["region"]))
