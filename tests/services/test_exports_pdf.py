"""XLSX exports and PDF invoices, read back the way their readers would read them."""

from __future__ import annotations

import io
import os
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from openpyxl import load_workbook
from pypdf import PdfReader

from app.models import Organization, OrgKind, Product
from app.models.canteen import (
    BankPayment,
    BulkOrder,
    BulkOrderLine,
    BulkOrderStatus,
    Invoice,
    InvoiceKind,
    InvoiceLine,
    SupplierDelivery,
)
from app.models.catalog import Unit
from app.services import pdf
from app.services.exports import BULK_LINE_HEADERS, bulk_lines_xlsx, write_xlsx
from app.services.money import line_total
from app.services.pdf import PdfUnavailable, find_font, invoice_pdf

IN_CI = os.environ.get("CI", "").lower() == "true"
NOTO_SANS_CJK = "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"
NOT_CHINESE = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
NOW = datetime(2026, 11, 30, 17, 30, tzinfo=UTC)  # 1 December, 01:30 in Zhoushan


# --- model objects, in memory ----------------------------------------------------------------


def supplier() -> Organization:
    return Organization(
        code="DZ-DENGYING",
        kind=OrgKind.SUPPLIER,
        name_zh="达州灯影牛肉食品有限公司",
        address="四川省达州市通川区西外镇金龙大道 88 号",
    )


def canteen() -> Organization:
    return Organization(
        code="ZS-CANTEEN",
        kind=OrgKind.CANTEEN,
        name_zh="舟山市级机关食堂",
        address="浙江省舟山市定海区千岛路 1 号",
    )


LINES = [
    # code, name, unit, ordered, received, unit price (fen)
    ("DZ-1001", "灯影牛肉丝（麻辣味）", Unit.BAG, "20.000", "20.000", 3880),
    ("DZ-1002", "富硒绿茶", Unit.BOX, "12.500", "12.500", 12800),
    ("DZ-1003", "宣汉桃花米 5kg 装", Unit.BAG, "9", "8", 6500),
    ("DZ-1004", "大竹香椿", Unit.JIN, "2.35", "2.35", 1880),
    ("DZ-1005", "渠县黄花菜（干）", Unit.KG, "3", "3", 4250),
]
TOTAL = "¥3,067.68"


def invoice(lines=LINES) -> Invoice:
    order = BulkOrder(
        number="C261127-00042", delivery_date=date(2026, 11, 30), po_reference="PO-2026-118"
    )
    delivery = SupplierDelivery(order=order, supplier=supplier(), delivery_note_number="DN-7781")
    result = Invoice(
        kind=InvoiceKind.INVOICE,
        supplier=delivery.supplier,
        buyer_organization=canteen(),
        delivery=delivery,
        number="DZ-DENGYING-000007",
        sequence_number=7,
        issued_at=NOW,
        paid_fen=50000,
    )
    for code, name, unit, ordered, received, price in lines:
        amount = line_total(price, Decimal(received))
        result.lines.append(
            InvoiceLine(
                product_code=code,
                name_zh=name,
                unit=unit,
                ordered_quantity=Decimal(ordered),
                quantity=Decimal(received),
                unit_price_fen=price,
                amount_fen=amount,
            )
        )
    result.total_fen = sum(line.amount_fen for line in result.lines)
    result.payments.append(
        BankPayment(paid_on=date(2026, 12, 5), reference="ICBC-20261205-0091", amount_fen=50000)
    )
    return result


def credit_note(corrects: Invoice) -> Invoice:
    note = Invoice(
        kind=InvoiceKind.CREDIT_NOTE,
        supplier=corrects.supplier,
        buyer_organization=corrects.buyer_organization,
        delivery=corrects.delivery,
        number="DZ-DENGYING-000009",
        sequence_number=9,
        issued_at=datetime(2026, 12, 2, 2, 0, tzinfo=UTC),
        corrects=corrects,
        reason="两袋包装破损，退回",
        total_fen=-7760,
    )
    note.lines.append(
        InvoiceLine(
            product_code="DZ-1001",
            name_zh="灯影牛肉丝（麻辣味）",
            unit=Unit.BAG,
            ordered_quantity=Decimal(20),
            quantity=Decimal(-2),
            unit_price_fen=3880,
            amount_fen=-7760,
        )
    )
    return note


def pdf_text(data: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)


@pytest.fixture
def cjk_font() -> tuple[str, int]:
    """A Chinese font on this machine. Missing: skipped locally, a failure in CI."""
    found = find_font(None)
    if found is None:
        message = "no CJK font installed (apt-get install fonts-noto-cjk)"
        if IN_CI:
            pytest.fail(f"PDF tests cannot run in CI: {message}", pytrace=False)
        pytest.skip(message)
    return found


# --- PDF -------------------------------------------------------------------------------------


def test_invoice_pdf_text_maps_back_to_chinese(cjk_font):
    data = invoice_pdf(invoice(), font_path=None)

    assert data.startswith(b"%PDF")
    text = pdf_text(data)
    assert "发票 / Invoice" in text
    assert "DZ-DENGYING-000007" in text
    assert "灯影牛肉丝（麻辣味）" in text
    assert "宣汉桃花米" in text
    assert "达州灯影牛肉食品有限公司" in text
    assert "舟山市级机关食堂" in text
    assert "C261127-00042" in text
    assert "PO-2026-118" in text
    assert "DN-7781" in text
    assert "2026年12月01日" in text  # issued 30 November UTC, 1 December in Zhoushan
    assert "2026年11月30日" in text
    assert TOTAL in text
    assert "¥500.00" in text  # paid
    assert "¥2,567.68" in text  # outstanding
    assert "ICBC-20261205-0091" in text
    assert "四舍五入保留到分" in text


def test_invoice_pdf_prints_quantities_without_trailing_zeros(cjk_font):
    text = pdf_text(invoice_pdf(invoice(), font_path=None))

    assert "12.5" in text
    assert "12.500" not in text
    assert "20.000" not in text
    assert "2E+1" not in text
    assert "DZ-1001 灯影牛肉丝（麻辣味） bag 20 20 ¥38.80 ¥776.00" in text


def test_the_font_is_subset_so_the_pdf_stays_small(cjk_font):
    data = invoice_pdf(invoice(), font_path=None)

    assert len(data) < 120_000  # the font file itself is megabytes
    assert len(PdfReader(io.BytesIO(data)).pages) == 1


def test_credit_note_pdf_names_the_invoice_it_corrects_and_why(cjk_font):
    original = invoice()
    note = credit_note(original)

    text = pdf_text(invoice_pdf(note, font_path=None))

    assert "红字发票（贷项通知单）/ Credit note" in text
    assert "DZ-DENGYING-000009" in text
    assert "DZ-DENGYING-000007" in text
    assert "两袋包装破损，退回" in text
    assert "-¥77.60" in text
    assert "Outstanding" not in text


def test_invoice_pdf_shows_what_credit_notes_took_off(cjk_font):
    original = invoice()
    credit_note(original)

    text = pdf_text(invoice_pdf(original, font_path=None))

    assert "DZ-DENGYING-000009" in text
    assert "-¥77.60" in text
    assert "¥2,990.08" in text  # due after the credit
    assert "¥2,490.08" in text  # outstanding


def test_invoice_pdf_credited_after_payment_shows_the_refund_due(cjk_font):
    original = invoice()
    original.paid_fen = original.total_fen  # paid in full, then a credit note
    credit_note(original)

    text = pdf_text(invoice_pdf(original, font_path=None))

    assert "应退 Refund due ¥77.60" in text
    assert "Outstanding" not in text


def test_long_invoices_wrap_names_and_run_onto_more_pages(cjk_font):
    long_name = "达州市宣汉县巴山大峡谷有机富硒高山云雾绿茶礼盒装（特级明前采摘，每盒两罐）"
    lines = [
        (f"DZ-{2000 + i}", long_name if i % 3 == 0 else f"商品{i}", Unit.BOX, "1", "1", 100)
        for i in range(45)
    ]

    data = invoice_pdf(invoice(lines), font_path=None)

    reader = PdfReader(io.BytesIO(data))
    assert len(reader.pages) > 1
    last = reader.pages[-1].extract_text()
    assert "¥45.00" in last  # the total comes after the last line
    assert "单价" in last  # the table's heading repeats on every page
    text = pdf_text(data).replace("\n", "")
    assert "礼盒装（特级明前采摘，每盒两罐）" in text


def test_the_configured_font_is_used(cjk_font):
    path = cjk_font[0]

    assert find_font(path) == cjk_font
    assert "DZ-DENGYING-000007" in pdf_text(invoice_pdf(invoice(), font_path=path))


@pytest.mark.skipif(not Path(NOTO_SANS_CJK).exists(), reason="fonts-noto-cjk not installed")
def test_noto_collection_uses_its_simplified_chinese_face():
    from fontTools.ttLib import TTCollection

    path, index = find_font(NOTO_SANS_CJK)

    collection = TTCollection(path, lazy=True)
    try:
        assert collection.fonts[index]["name"].getDebugName(1) == "Noto Sans CJK SC"
    finally:
        collection.close()
    assert index == 2


def test_no_font_anywhere_is_a_503_telling_the_admin_what_to_install(monkeypatch):
    monkeypatch.setattr(pdf, "FONT_CANDIDATES", [])

    assert find_font("/nowhere/font.ttc") is None
    with pytest.raises(PdfUnavailable) as raised:
        invoice_pdf(invoice(), font_path="/nowhere/font.ttc")

    assert raised.value.status_code == 503
    assert "fonts-noto-cjk" in str(raised.value.message)
    assert "PDF_FONT_PATH" in str(raised.value.message)


def test_a_configured_font_that_is_missing_falls_back_to_the_installed_one(cjk_font):
    assert find_font("/nowhere/font.ttc") == cjk_font


def test_a_damaged_font_file_is_a_503_not_a_crash(tmp_path, monkeypatch):
    broken = tmp_path / "broken.ttf"
    broken.write_bytes(b"\x00\x01\x00\x00" + b"junk" * 100)
    monkeypatch.setattr(pdf, "FONT_CANDIDATES", [])

    with pytest.raises(PdfUnavailable, match="cannot be read"):
        invoice_pdf(invoice(), font_path=str(broken))


@pytest.mark.skipif(not Path(NOT_CHINESE).exists(), reason="DejaVu not installed")
def test_a_configured_font_without_chinese_is_refused():
    with pytest.raises(PdfUnavailable, match="no Chinese characters"):
        invoice_pdf(invoice(), font_path=NOT_CHINESE)


# --- XLSX ------------------------------------------------------------------------------------


def read_xlsx(data: bytes):
    return load_workbook(io.BytesIO(data)).active


def test_write_xlsx_types_header_block_and_frozen_header():
    data = write_xlsx(
        "发票 Invoices",
        ["日期 Date", "商品 Product", "数量 Qty", "金额 Amount"],
        [
            [date(2026, 12, 1), "灯影牛肉丝", Decimal("12.5"), Decimal("38.80")],
            [datetime(2026, 12, 1, 1, 30, tzinfo=UTC), '=HYPERLINK("x")', 3, None],
        ],
        header_block=[("食堂 Canteen", "舟山市级机关食堂"), ("期间 Period", "2026年12月")],
    )

    sheet = read_xlsx(data)
    assert sheet.title == "发票 Invoices"
    assert sheet["A1"].value == "食堂 Canteen"
    assert sheet["A1"].font.b
    assert sheet["B1"].value == "舟山市级机关食堂"
    assert sheet["A3"].value is None  # a blank row under the block
    assert [cell.value for cell in sheet[4]] == [
        "日期 Date",
        "商品 Product",
        "数量 Qty",
        "金额 Amount",
    ]
    assert all(cell.font.b for cell in sheet[4])
    assert sheet.freeze_panes == "A5"
    assert sheet["A5"].value == datetime(2026, 12, 1)
    assert sheet["A5"].number_format == "yyyy-mm-dd"
    assert sheet["C5"].value == 12.5 and sheet["C5"].data_type == "n"
    assert sheet["D5"].value == 38.8 and sheet["D5"].number_format == "#,##0.00"
    assert sheet["A6"].value == datetime(2026, 12, 1, 9, 30)  # shown in Zhoushan's time
    assert sheet["B6"].data_type == "s"  # text, never a formula
    assert sheet["B6"].value == '=HYPERLINK("x")'
    assert sheet.column_dimensions["B"].width >= 12  # 灯影牛肉丝 is ten characters wide


def test_write_xlsx_without_a_header_block_freezes_the_first_row():
    sheet = read_xlsx(write_xlsx("x", ["a", "b"], [[1, "\x07bell"]]))

    assert sheet.freeze_panes == "A2"
    assert [cell.value for cell in sheet[2]] == [1, "bell"]


def _bulk_lines() -> list[BulkOrderLine]:
    shop = supplier()
    product = Product(code="DZ-1002", name_zh="富硒绿茶", unit=Unit.BOX, supplier=shop)
    submitted = BulkOrder(
        number="C261127-00042",
        status=BulkOrderStatus.COMPLETED,
        delivery_date=date(2026, 11, 30),
    )
    draft = BulkOrder(number="C261128-00043", status=BulkOrderStatus.DRAFT)
    return [
        BulkOrderLine(
            order=submitted,
            product=product,
            quantity=Decimal("12.000"),
            ordered_quantity=Decimal("12.500"),
            received_quantity=Decimal("11.750"),
            product_code="DZ-1002",
            name_zh="富硒绿茶（快照）",
            unit=Unit.BOX,
            unit_price_fen=12800,
            supplier_name_zh="达州灯影牛肉食品有限公司",
        ),
        BulkOrderLine(
            order=submitted,
            product=product,
            quantity=Decimal("2.000"),
            product_code="DZ-1002",
            name_zh="富硒绿茶（快照）",
            unit=Unit.BOX,
            unit_price_fen=12800,
            supplier_name_zh="达州灯影牛肉食品有限公司",
            cancelled=True,
        ),
        # A draft has no snapshot and no frozen price yet.
        BulkOrderLine(order=draft, product=product, quantity=Decimal("20.000")),
    ]


def test_bulk_lines_xlsx_reads_back_with_numbers_a_spreadsheet_can_sum():
    sheet = read_xlsx(bulk_lines_xlsx(_bulk_lines()))

    assert [cell.value for cell in sheet[1]] == BULK_LINE_HEADERS
    assert sheet.freeze_panes == "A2"
    received, cancelled, draft = (
        dict(zip(BULK_LINE_HEADERS, (cell.value for cell in sheet[row]), strict=True))
        for row in (2, 3, 4)
    )

    assert received["订单号 Order"] == "C261127-00042"
    assert received["订单状态 Status"] == "Completed"
    assert received["送货日期 Delivery date"] == datetime(2026, 11, 30)
    assert received["商品名称 Product"] == "富硒绿茶（快照）"
    assert received["单位 Unit"] == "box"
    assert Decimal(str(received["订购数量 Ordered"])) == Decimal("12.5")
    assert Decimal(str(received["确认数量 Agreed"])) == Decimal("12")
    assert Decimal(str(received["实收数量 Received"])) == Decimal("11.75")
    assert Decimal(str(received["单价（元）Unit price"])) == Decimal("128.00")
    assert sheet["K2"].number_format == "#,##0.00"
    assert Decimal(str(received["金额（元）Amount"])) == Decimal("1504.00")  # 11.75 x 128
    assert received["已取消 Cancelled"] == "否"

    assert cancelled["已取消 Cancelled"] == "是"
    assert cancelled["金额（元）Amount"] is None

    assert draft["订单状态 Status"] == "Draft"
    assert draft["商品编码 Code"] == "DZ-1002"  # from the product: no snapshot yet
    assert draft["商品名称 Product"] == "富硒绿茶"
    assert draft["供应商 Supplier"] == "达州灯影牛肉食品有限公司"
    assert draft["订购数量 Ordered"] == 20
    assert draft["单价（元）Unit price"] is None
    assert draft["金额（元）Amount"] is None
