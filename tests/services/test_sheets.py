"""Reading uploaded order sheets: real CSV and XLSX files, and the garbage browsers send too."""

from __future__ import annotations

import io
import re
import struct
import zipfile
import zlib

import pytest
from openpyxl import Workbook

from app.services.sheets import (
    SheetError,
    SheetRow,
    SheetTooLarge,
    order_sheet_template_csv,
    parse_order_sheet,
)

MB = 1024 * 1024
LIMIT = 2 * MB


def parse(data: bytes, filename: str = "订单.csv", *, max_bytes: int = LIMIT, max_rows: int = 2000):
    return parse_order_sheet(filename, data, max_bytes=max_bytes, max_rows=max_rows)


def xlsx(rows: list[list] | dict[int, list], *, title: str = "订货单") -> bytes:
    """A workbook whose first sheet has `rows` (a dict places them at those row numbers)."""
    workbook = Workbook()
    sheet = workbook.active
    sheet.title = title
    placed = rows if isinstance(rows, dict) else dict(enumerate(rows, start=1))
    for number, values in placed.items():
        for column, value in enumerate(values, start=1):
            sheet.cell(row=number, column=column, value=value)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def png() -> bytes:
    """A real 1x1 PNG."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00\xff\x00\x00")
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


SHEET_TEXT = (
    "商品编码,商品名称,数量,备注\r\nDZ-1001,灯影牛肉丝,12.5,\r\n\r\nDZ-1002,富硒绿茶,20,要新茶\r\n"
)


# --- CSV -------------------------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gb18030", "gbk"])
def test_csv_in_every_encoding_excel_saves(encoding):
    rows = parse(SHEET_TEXT.encode(encoding))

    assert rows == [
        SheetRow(line=2, product="DZ-1001", quantity="12.5"),
        # Line 3 is blank: the numbers stay those of the file.
        SheetRow(line=4, product="DZ-1002", quantity="20"),
    ]


def test_csv_rows_missing_a_product_or_a_quantity_are_returned_for_the_caller_to_report():
    data = "编码,数量\n DZ-1 , 3 \nDZ-2,\n,7\n,\n".encode()

    assert parse(data) == [
        SheetRow(line=2, product="DZ-1", quantity="3"),
        SheetRow(line=3, product="DZ-2", quantity=""),
        SheetRow(line=4, product="", quantity="7"),
    ]


def test_csv_falls_back_to_the_name_when_the_code_is_empty():
    data = "商品编码,商品名称,数量\n,宣汉桃花米,8\nDZ-9,写错的名字,1\n".encode()

    assert [(row.product, row.quantity) for row in parse(data)] == [
        ("宣汉桃花米", "8"),
        ("DZ-9", "1"),
    ]


@pytest.mark.parametrize(
    ("header", "delimiter"),
    [
        ("Product Code,QTY", ","),
        ("  PRODUCT ;Quantity ", ";"),
        ("名称\t数 量", "\t"),
        ("ｃｏｄｅ,数量：", ","),  # full-width letters from a Chinese input method
    ],
)
def test_header_names_are_matched_loosely(header, delimiter):
    data = f"{header}\nDZ-1{delimiter}2\n".encode()

    assert parse(data) == [SheetRow(line=2, product="DZ-1", quantity="2")]


def test_header_is_the_first_non_empty_row_and_lines_count_from_the_files_top():
    data = "\n\n商品,数量\nDZ-1,1\n\n\nDZ-2,2\n".encode()

    assert [row.line for row in parse(data)] == [4, 7]


def test_a_quoted_field_over_two_lines_is_numbered_by_the_line_it_starts_on():
    data = '商品,数量\n"灯影牛肉丝\n（麻辣）",2\nDZ-3,1\n'.encode()

    rows = parse(data)

    assert [row.line for row in rows] == [2, 4]
    assert rows[0].product == "灯影牛肉丝\n（麻辣）"


def test_wrong_header_lists_the_expected_column_names():
    with pytest.raises(SheetError) as raised:
        parse("货品,件数\nDZ-1,2\n".encode())

    error = raised.value
    assert error.status_code == 422
    assert error.field == "sheet"
    for expected in ("商品编码", "商品名称", "product code", "数量", "quantity", "qty"):
        assert expected in str(error.message)


def test_a_header_without_a_quantity_column_is_refused():
    with pytest.raises(SheetError, match="quantity column"):
        parse("商品编码,商品名称\nDZ-1,茶\n".encode())


def test_the_template_is_a_bom_csv_with_the_header_only_and_reads_back_empty():
    template = order_sheet_template_csv()

    assert template.startswith(b"\xef\xbb\xbf")
    assert template.decode("utf-8-sig").strip() == "商品编码,商品名称,数量"
    assert parse(template) == []


# --- XLSX ------------------------------------------------------------------------------------


def test_xlsx_numbers_come_back_as_clean_decimal_strings():
    data = xlsx(
        [
            ["商品编码", "数量", "备注"],
            ["DZ-1001", 12.5, "x"],
            ["DZ-1002", 20.0, None],
            [100234, 3, None],  # a numeric code typed into a number cell
            ["DZ-1004", 0.1 + 0.2, None],  # what a formula leaves behind
        ]
    )

    assert parse(data, "order.xlsx") == [
        SheetRow(line=2, product="DZ-1001", quantity="12.5"),
        SheetRow(line=3, product="DZ-1002", quantity="20"),
        SheetRow(line=4, product="100234", quantity="3"),
        SheetRow(line=5, product="DZ-1004", quantity="0.3"),
    ]


def test_xlsx_row_numbers_match_excels_with_blank_rows_before_and_between():
    data = xlsx(
        {
            3: ["Product", "Qty"],
            4: ["灯影牛肉丝", 2],
            7: ["富硒绿茶", None],
            9: [None, 5],
            12: [None, None, "只有备注"],  # nothing to order on this row
        }
    )

    assert parse(data, "order.xlsx") == [
        SheetRow(line=4, product="灯影牛肉丝", quantity="2"),
        SheetRow(line=7, product="富硒绿茶", quantity=""),
        SheetRow(line=9, product="", quantity="5"),
    ]


def test_the_format_is_decided_by_the_content_not_the_name():
    assert parse(xlsx([["编码", "数量"], ["DZ-1", 1]]), "订单.csv") == [
        SheetRow(line=2, product="DZ-1", quantity="1")
    ]
    assert parse("编码,数量\nDZ-1,1\n".encode(), "订单.xlsx") == [
        SheetRow(line=2, product="DZ-1", quantity="1")
    ]


def test_xlsx_with_a_wrong_header_is_refused():
    with pytest.raises(SheetError, match="商品编码"):
        parse(xlsx([["山海集订货单"], ["DZ-1", 2]]), "order.xlsx")


# --- limits ----------------------------------------------------------------------------------


def test_a_file_over_the_size_limit_is_refused_before_it_is_read(monkeypatch):
    import app.services.sheets as sheets

    def must_not_read(*args, **kwargs):
        raise AssertionError("a file over the limit was parsed")

    monkeypatch.setattr(sheets, "_csv_rows", must_not_read)
    monkeypatch.setattr(sheets, "_open_workbook", must_not_read)

    with pytest.raises(SheetTooLarge) as raised:
        parse(b"a" * (20 * MB), max_bytes=2 * MB)

    assert raised.value.status_code == 413
    assert raised.value.field == "sheet"
    assert "2 MB" in str(raised.value.message)


def test_more_data_rows_than_allowed_are_refused():
    data = ("编码,数量\n" + "".join(f"DZ-{i},1\n\n" for i in range(3))).encode()

    assert len(parse(data, max_rows=3)) == 3
    with pytest.raises(SheetError, match="more than 2 rows"):
        parse(data, max_rows=2)
    with pytest.raises(SheetError, match="more than 2 rows"):
        parse(xlsx([["编码", "数量"], *[[f"DZ-{i}", i] for i in range(3)]]), max_rows=2)


def test_a_zip_bomb_is_refused_by_its_unpacked_size():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("xl/workbook.xml", "<workbook/>")
        archive.writestr("xl/sharedStrings.xml", b"\x20" * (6 * MB))
    data = buffer.getvalue()
    assert len(data) < 100_000

    with pytest.raises(SheetTooLarge):
        parse(data, "bomb.xlsx", max_bytes=100_000)


# --- garbage ---------------------------------------------------------------------------------


def _without_sheets(data: bytes) -> bytes:
    source = zipfile.ZipFile(io.BytesIO(data))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for info in source.infolist():
            content = source.read(info.filename)
            if info.filename == "xl/workbook.xml":
                content = re.sub(rb"<sheets>.*</sheets>", b"<sheets/>", content)
            archive.writestr(info, content)
    return buffer.getvalue()


def _zip(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    return buffer.getvalue()


GOOD_XLSX = xlsx([["编码", "数量"], ["DZ-1", 1]])


@pytest.mark.parametrize(
    ("filename", "data"),
    [
        pytest.param("empty.csv", b"", id="empty"),
        pytest.param("blank.csv", b"  \r\n\r\n", id="only-blank-lines"),
        pytest.param("bom.csv", b"\xef\xbb\xbf", id="only-a-bom"),
        pytest.param("photo.xlsx", png(), id="png-named-xlsx"),
        pytest.param("photo.csv", png(), id="png-named-csv"),
        pytest.param("order.xlsx", b"PK\x03\x04" + b"\x13\x37" * 500, id="corrupt-zip"),
        pytest.param("order.xlsx", GOOD_XLSX[: len(GOOD_XLSX) // 2], id="truncated-xlsx"),
        pytest.param("order.xlsx", _without_sheets(GOOD_XLSX), id="xlsx-without-sheets"),
        pytest.param("order.docx", _zip({"word/document.xml": b"<w/>"}), id="other-zip"),
        pytest.param("order.xlsx", _zip({"xl/workbook.xml": b"\x00garbage"}), id="junk-xml"),
        pytest.param("order.xls", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(512), id="old-xls"),
        pytest.param("order.pdf", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj", id="pdf"),
        pytest.param("order.csv", "编码,数量\nDZ-1,1\x00\n".encode(), id="csv-with-nul"),
        pytest.param("order.csv", "编码,数量\n".encode("utf-16"), id="utf-16"),
        pytest.param("junk.bin", bytes(range(1, 256)) * 40, id="binary-junk"),
        pytest.param("order.csv", b"\x1b[31m\x07", id="control-characters"),
    ],
)
def test_garbage_is_refused_with_a_sheet_error_not_a_crash(filename, data):
    with pytest.raises(SheetError) as raised:
        parse(data, filename)

    assert raised.value.field == "sheet"
    assert raised.value.status_code == 422
    assert str(raised.value.message)


def test_old_xls_files_get_a_message_saying_what_to_do():
    with pytest.raises(SheetError, match=r"\.xlsx or CSV"):
        parse(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(512), "order.xls")
