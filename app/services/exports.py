"""Spreadsheet (XLSX) downloads: a generic writer and the canteen's order-line export.

Values keep their types so a spreadsheet can sum them: Decimal and int as numbers, dates as
dates. Text is always text: a product name starting with "=" is written as a string, never as
a formula someone's Excel would run.
"""

from __future__ import annotations

import io
import re
import unicodedata
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from decimal import Decimal

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter

from app.models.canteen import BulkOrderLine
from app.services.clock import to_local
from app.services.money import FEN_PER_YUAN, line_total

#: Decimal values with exactly two places are amounts of money and shown as 1,234.50.
MONEY_FORMAT = "#,##0.00"
DATE_FORMAT = "yyyy-mm-dd"
DATETIME_FORMAT = "yyyy-mm-dd hh:mm"
MIN_COLUMN_WIDTH = 8
MAX_COLUMN_WIDTH = 60

_BOLD = Font(bold=True)
_HEADER_FILL = PatternFill("solid", fgColor="E8EEF4")
_SHEET_TITLE_FORBIDDEN = re.compile(r"[\[\]:*?/\\]")

BULK_LINE_HEADERS = [
    "订单号 Order",
    "订单状态 Status",
    "送货日期 Delivery date",
    "供应商 Supplier",
    "商品编码 Code",
    "商品名称 Product",
    "单位 Unit",
    "订购数量 Ordered",
    "确认数量 Agreed",
    "实收数量 Received",
    "单价（元）Unit price",
    "金额（元）Amount",
    "已取消 Cancelled",
]


def write_xlsx(
    title: str,
    headers: list[str],
    rows: Iterable[Sequence],
    *,
    header_block: list[tuple[str, str]] | None = None,
) -> bytes:
    """One sheet: the optional key/value block, a blank row, the bold header row, the rows.

    The panes are frozen under the header row so it stays in view while scrolling.
    """
    rows = [list(row) for row in rows]
    block = list(header_block or [])

    workbook = Workbook(write_only=True)
    workbook.properties.title = title
    sheet = workbook.create_sheet(_sheet_title(title))
    # Write-only sheets take their widths and frozen panes before the first row.
    for index, width in enumerate(_column_widths(headers, rows, block), start=1):
        sheet.column_dimensions[get_column_letter(index)].width = width
    header_row = len(block) + 2 if block else 1
    sheet.freeze_panes = f"A{header_row + 1}"

    for key, value in block:
        sheet.append([_cell(sheet, key, bold=True), _cell(sheet, value)])
    if block:
        sheet.append([])
    sheet.append([_cell(sheet, header, bold=True, header=True) for header in headers])
    for row in rows:
        sheet.append([_cell(sheet, value) for value in row])

    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def bulk_lines_xlsx(lines: list[BulkOrderLine]) -> bytes:
    """The canteen's order lines, one row each, with the amounts a spreadsheet can add up.

    The amount is the received quantity's when the line was checked in, else the agreed
    quantity's; empty while the order is a draft (no price frozen yet) or the line cancelled.
    """
    return write_xlsx(
        "订单明细 Order lines", BULK_LINE_HEADERS, (_bulk_line_row(line) for line in lines)
    )


def _bulk_line_row(line: BulkOrderLine) -> list:
    product = line.product
    order = line.order
    unit = line.unit or (product.unit if product else None)
    price = line.unit_price_fen
    if price is None or line.cancelled:
        amount = None
    elif line.received_quantity is not None:
        amount = line_total(price, line.received_quantity)
    else:
        amount = line_total(price, line.quantity)
    return [
        order.number,
        str(order.status.label),
        order.delivery_date,
        line.supplier_name_zh or (product.supplier.name_zh if product else ""),
        line.product_code or (product.code if product else ""),
        line.name_zh or (product.name_zh if product else ""),
        str(unit.label) if unit else "",
        plain_quantity(
            line.ordered_quantity if line.ordered_quantity is not None else line.quantity
        ),
        plain_quantity(line.quantity),
        plain_quantity(line.received_quantity),
        yuan(price),
        yuan(amount),
        "是" if line.cancelled else "否",
    ]


def yuan(fen: int | None) -> Decimal | None:
    """1250 -> Decimal("12.50"): two places, so the sheet shows it as money."""
    if fen is None:
        return None
    return (Decimal(fen) / FEN_PER_YUAN).quantize(Decimal("0.01"))


def plain_quantity(quantity: Decimal | None) -> Decimal | None:
    """2.500 -> 2.5 and 20.000 -> 20 (never 2E+1)."""
    if quantity is None:
        return None
    return Decimal(f"{Decimal(quantity).normalize():f}")


def _cell(sheet, value, *, bold: bool = False, header: bool = False) -> WriteOnlyCell:
    number_format = None
    if isinstance(value, datetime):
        if value.tzinfo is not None:  # Excel has no time zones: show Zhoushan's time
            value = to_local(value).replace(tzinfo=None)
        number_format = DATETIME_FORMAT
    elif isinstance(value, date):
        number_format = DATE_FORMAT
    elif isinstance(value, Decimal):
        if value.as_tuple().exponent == -2:
            number_format = MONEY_FORMAT
    elif value is not None and not isinstance(value, bool | int | float | str):
        value = str(value)  # lazy translations, enums
    if isinstance(value, str):
        value = ILLEGAL_CHARACTERS_RE.sub("", value)
    cell = WriteOnlyCell(sheet, value=value)
    if isinstance(value, str) and value.startswith("="):
        cell.data_type = "s"  # text, not a formula
    if number_format:
        cell.number_format = number_format
    if bold:
        cell.font = _BOLD
    if header:
        cell.fill = _HEADER_FILL
        cell.alignment = Alignment(vertical="center", wrap_text=True)
    return cell


def _column_widths(
    headers: Sequence, rows: Sequence[Sequence], block: Sequence[tuple[str, str]]
) -> list[float]:
    count = max([len(headers), *(len(row) for row in rows), 2 if block else 0])
    widths = [0] * count
    for row in [headers, *rows, *block]:
        for index, value in enumerate(row):
            widths[index] = max(widths[index], _display_width(value))
    return [min(max(width + 2, MIN_COLUMN_WIDTH), MAX_COLUMN_WIDTH) for width in widths]


def _display_width(value) -> int:
    """Characters a column needs; a Chinese character is as wide as two Latin ones."""
    if value is None:
        return 0
    if isinstance(value, datetime):
        return 16
    if isinstance(value, date):
        return 10
    if isinstance(value, Decimal | int | float) and not isinstance(value, bool):
        return len(f"{value:,}") if not isinstance(value, float) else len(str(value))
    text = str(value)
    return max(
        (
            sum(2 if unicodedata.east_asian_width(char) in "WF" else 1 for char in line)
            for line in text.splitlines() or [""]
        ),
        default=0,
    )


def _sheet_title(title: str) -> str:
    """Excel allows 31 characters and none of []:*?/\\ in a sheet's name."""
    return (_SHEET_TITLE_FORBIDDEN.sub(" ", str(title)).strip() or "Sheet")[:31]
