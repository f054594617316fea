"""Reading a canteen's uploaded order sheet: CSV (UTF-8 or GB18030) or XLSX, into plain rows.

Only the reading happens here: which product a row names and whether its quantity is valid is
the caller's business, reported by `SheetRow.line`, the row number the buyer sees in Excel or
in a text editor (the header is line 1).

The file comes from a browser, so it may be anything: it is refused with a SheetError, never
with a crash, when it is too large, not a spreadsheet, or not the expected layout.
"""

from __future__ import annotations

import csv
import io
import math
import re
import unicodedata
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal

from flask_babel import lazy_gettext as _l

from app.services.errors import DomainError, LineErrors

#: Header names accepted for each column, compared after `_header_key` (case, width, spaces).
CODE_HEADERS = ("商品编码", "编码", "code", "product code")
NAME_HEADERS = ("商品", "商品名称", "名称", "product", "name")
QUANTITY_HEADERS = ("数量", "quantity", "qty")

TEMPLATE_HEADER = ("商品编码", "商品名称", "数量")

#: Only this many columns of a row are looked at (extra columns are ignored anyway).
MAX_COLUMNS = 100
#: An XLSX is a zip: refuse one that would unpack to more than this many times its limit
#: (a "zip bomb" of a few kilobytes can hold gigabytes of XML).
MAX_UNPACK_RATIO = 50
#: Blank rows are skipped, but only so many: a sheet of a million formatted empty rows is
#: refused instead of keeping a worker busy.
MAX_SCANNED_ROWS_FACTOR = 20

_ZIP_MAGIC = b"PK\x03\x04"
_OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # the old binary .xls (and .doc)
_PDF_MAGIC = b"%PDF"
_DELIMITERS = (",", "\t", ";")
#: Control characters never found in a text file (tab, CR and LF are allowed).
_BINARY = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


class SheetError(DomainError):
    """The uploaded file cannot be read as an order sheet."""

    status_code = 422

    def __init__(self, message, field: str | None = "sheet"):
        super().__init__(message, field)


class SheetTooLarge(SheetError):
    status_code = 413


@dataclass(frozen=True)
class SheetRow:
    #: 1-based row of the file as a person sees it; the header is line 1.
    line: int
    #: The product code (or, when the code is empty, the name) as written, stripped.
    product: str
    #: As written, stripped; the caller parses it.
    quantity: str


def parse_order_sheet(
    filename: str, data: bytes, *, max_bytes: int, max_rows: int
) -> list[SheetRow]:
    """The data rows of an uploaded order sheet, fully empty rows left out.

    Raises SheetTooLarge above `max_bytes` (before reading anything), SheetError for anything
    that is not a CSV or XLSX with a product and a quantity column, or has more than
    `max_rows` data rows.
    """
    if len(data) > max_bytes:
        raise SheetTooLarge(
            _l("The file is larger than %(limit)s MB.", limit=_megabytes(max_bytes))
        )
    if not data.strip():
        raise SheetError(_l("The file is empty."))
    if data.startswith(_ZIP_MAGIC):
        workbook = _open_workbook(data, max_bytes=max_bytes)
        try:
            return _read_rows(_xlsx_rows(workbook), max_rows=max_rows)
        finally:
            workbook.close()
    if data.startswith(_OLE2_MAGIC):
        raise SheetError(
            _l("Old Excel files (.xls) cannot be read: save the sheet as .xlsx or CSV.")
        )
    # Anything else must be text, whatever its name says (a CSV saved as "订单.xlsx" is read).
    return _read_rows(_csv_rows(data, filename), max_rows=max_rows)


def order_sheet_template_csv() -> bytes:
    """An empty order sheet to download: the header only, UTF-8 with a BOM so Excel reads it."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerow(TEMPLATE_HEADER)
    return buffer.getvalue().encode("utf-8-sig")


# --- reading the rows ------------------------------------------------------------------------


def _read_rows(rows: Iterable[tuple[int, Sequence[str]]], *, max_rows: int) -> list[SheetRow]:
    """Find the header, then pick the product and quantity of every non-empty row."""
    max_scanned = max(max_rows, 1) * MAX_SCANNED_ROWS_FACTOR + 1000
    columns: _Columns | None = None
    result: list[SheetRow] = []
    for scanned, (line, cells) in enumerate(rows, start=1):
        if scanned > max_scanned:
            raise SheetError(_l("The sheet has more than %(max)s rows.", max=max_rows))
        if not any(cells):
            continue
        if columns is None:
            columns = _Columns.from_header(cells)
            continue
        product, quantity = columns.pick(cells)
        if not product and not quantity:
            continue  # a row of remarks in the extra columns only
        if len(result) >= max_rows:
            raise SheetError(_l("The sheet has more than %(max)s rows.", max=max_rows))
        result.append(SheetRow(line=line, product=product, quantity=quantity))
    if columns is None:
        raise SheetError(_l("The file is empty."))
    return result


@dataclass(frozen=True)
class _Columns:
    codes: tuple[int, ...]
    names: tuple[int, ...]
    quantity: int

    @classmethod
    def from_header(cls, cells: Sequence[str]) -> _Columns:
        keys = [_header_key(cell) for cell in cells]
        code_keys = {_header_key(name) for name in CODE_HEADERS}
        name_keys = {_header_key(name) for name in NAME_HEADERS}
        quantity_keys = {_header_key(name) for name in QUANTITY_HEADERS}
        codes = tuple(i for i, key in enumerate(keys) if key in code_keys)
        names = tuple(i for i, key in enumerate(keys) if key in name_keys)
        quantities = [i for i, key in enumerate(keys) if key in quantity_keys]
        if not (codes or names) or not quantities:
            raise SheetError(
                _l(
                    "The first row must name the columns: a product column (%(product)s) and"
                    " a quantity column (%(quantity)s). Download the template to start from.",
                    product=", ".join((*CODE_HEADERS, *NAME_HEADERS)),
                    quantity=", ".join(QUANTITY_HEADERS),
                )
            )
        return cls(codes=codes, names=names, quantity=quantities[0])

    def pick(self, cells: Sequence[str]) -> tuple[str, str]:
        def cell(index: int) -> str:
            return cells[index] if index < len(cells) else ""

        product = next((value for value in map(cell, (*self.codes, *self.names)) if value), "")
        return product, cell(self.quantity)


@dataclass(frozen=True)
class TableRow:
    #: 1-based row of the file as a person sees it; the header is line 1.
    line: int
    #: {column name: cell text, stripped} for the columns the header named.
    values: dict[str, str]


@dataclass(frozen=True)
class Table:
    #: The column names the header row named (required ones always among them).
    columns: frozenset[str]
    rows: list[TableRow]


def read_table(
    filename: str,
    data: bytes,
    *,
    headers: dict[str, tuple[str, ...]],
    required: Sequence[str],
    max_bytes: int,
    max_rows: int,
    no_rows_message,
) -> Table:
    """The rows of a CSV (UTF-8 or GB18030) or XLSX file with a header row naming columns.

    `headers` gives the accepted header texts per column name (the first is shown in
    messages). Empty rows are left out. Raises SheetTooLarge above `max_bytes`, SheetError for
    a file that is not a spreadsheet or has more than `max_rows` rows, and LineErrors at the
    header's line when a required column is missing.
    """
    if len(data) > max_bytes:
        raise SheetTooLarge(
            _l("The file is larger than %(limit)s MB.", limit=_megabytes(max_bytes)),
            field="file",
        )
    if not data.strip():
        raise SheetError(_l("The file is empty."), field="file")
    try:
        if data.startswith(_ZIP_MAGIC):
            workbook = _open_workbook(data, max_bytes=max_bytes)
            try:
                return _read_named_rows(
                    _xlsx_rows(workbook), headers, required, max_rows, no_rows_message
                )
            finally:
                workbook.close()
        if data.startswith(_OLE2_MAGIC):
            raise SheetError(
                _l("Old Excel files (.xls) cannot be read: save the sheet as .xlsx or CSV.")
            )
        return _read_named_rows(
            _csv_rows(data, filename), headers, required, max_rows, no_rows_message
        )
    except SheetError as error:
        error.field = "file"
        raise


def _read_named_rows(rows, headers, required, max_rows, no_rows_message) -> Table:
    max_scanned = max(max_rows, 1) * MAX_SCANNED_ROWS_FACTOR + 1000
    columns: dict[str, int] | None = None
    result: list[TableRow] = []
    for scanned, (line, cells) in enumerate(rows, start=1):
        if scanned > max_scanned:
            raise SheetError(_l("The sheet has more than %(max)s rows.", max=max_rows))
        if not any(cells):
            continue
        if columns is None:
            columns = _named_columns(line, cells, headers, required)
            continue
        values = {
            name: (cells[index] if index < len(cells) else "") for name, index in columns.items()
        }
        if not any(values.values()):
            continue  # remarks in other columns only
        if len(result) >= max_rows:
            raise SheetError(_l("The sheet has more than %(max)s rows.", max=max_rows))
        result.append(TableRow(line=line, values=values))
    if columns is None:
        raise SheetError(_l("The file is empty."))
    if not result:
        raise SheetError(no_rows_message)
    return Table(frozenset(columns), result)


def _named_columns(line, cells, headers, required) -> dict[str, int]:
    """{column name: index} from the header row; LineErrors at its line when one is missing."""
    keys = [_header_key(cell) for cell in cells]
    found: dict[str, int] = {}
    for name, accepted in headers.items():
        wanted = {_header_key(header) for header in accepted}
        index = next((i for i, key in enumerate(keys) if key in wanted), None)
        if index is not None:
            found[name] = index
    missing = [name for name in required if name not in found]
    if missing:

        def label(name: str) -> str:
            return f"{headers[name][0]} ({name})"

        raise LineErrors(
            {
                line: str(
                    _l(
                        "The header row lacks the columns %(missing)s. The columns are"
                        " %(all)s; %(optional)s may be left out.",
                        missing=", ".join(label(name) for name in missing),
                        all=", ".join(label(name) for name in headers),
                        optional=", ".join(label(name) for name in headers if name not in required),
                    )
                )
            },
            _l("The file cannot be imported; nothing was saved."),
        )
    return found


def _header_key(text: str) -> str:
    """ "Product Code", "ＱＴＹ", " 数 量 " -> "productcode", "qty", "数量"."""
    normalized = unicodedata.normalize("NFKC", text).casefold()
    return "".join(char for char in normalized if not char.isspace() and char not in ":：*")


# --- CSV -------------------------------------------------------------------------------------


def _csv_rows(data: bytes, filename: str) -> Iterator[tuple[int, list[str]]]:
    if data.startswith(_PDF_MAGIC) or b"\x00" in data:
        raise _not_a_spreadsheet(filename)
    text = _decode(data)
    if _BINARY.search(text):
        raise _not_a_spreadsheet(filename)
    first_line = next((line for line in text.splitlines() if line.strip()), "")
    delimiter = max(_DELIMITERS, key=first_line.count)  # a tie (none at all) is a comma
    return _csv_records(text, delimiter)


def _csv_records(text: str, delimiter: str) -> Iterator[tuple[int, list[str]]]:
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        while True:
            # The line the record starts on: a quoted field may span several lines.
            line = reader.line_num + 1
            try:
                record = next(reader)
            except StopIteration:
                return
            yield line, [field.strip() for field in record[:MAX_COLUMNS]]
    except csv.Error as error:
        raise SheetError(
            _l("The CSV file cannot be read near line %(line)s.", line=reader.line_num)
        ) from error


def _decode(data: bytes) -> str:
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise SheetError(_l("The CSV file must be saved as UTF-8 or GBK (GB18030) text."))


# --- XLSX ------------------------------------------------------------------------------------


def _open_workbook(data: bytes, *, max_bytes: int):
    from openpyxl import load_workbook

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            unpacked = sum(info.file_size for info in archive.infolist())
            names = set(archive.namelist())
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError) as error:
        raise _not_a_workbook() from error
    if "xl/workbook.xml" not in names:
        raise _not_a_workbook()
    if unpacked > max_bytes * MAX_UNPACK_RATIO:
        raise SheetTooLarge(
            _l("The file is larger than %(limit)s MB.", limit=_megabytes(max_bytes))
        )
    try:
        return load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as error:  # openpyxl raises many kinds on a damaged file
        raise _not_a_workbook() from error


def _xlsx_rows(workbook) -> Iterator[tuple[int, list[str]]]:
    """The active sheet's rows (the first worksheet's when a chart is active)."""
    try:
        active = workbook.active
        sheets = [sheet for sheet in workbook.worksheets if hasattr(sheet, "iter_rows")]
    except Exception as error:
        raise _not_a_workbook() from error
    sheet = active if hasattr(active, "iter_rows") else (sheets[0] if sheets else None)
    if sheet is None:
        raise SheetError(_l("The workbook has no sheet to read."))
    try:
        # Read-only sheets pad missing rows with empty ones, so rows count from 1 as in Excel.
        for line, values in enumerate(sheet.iter_rows(values_only=True), start=1):
            yield line, [_cell_text(value) for value in values[:MAX_COLUMNS]]
    except Exception as error:  # a damaged sheet XML
        raise _not_a_workbook() from error


def _cell_text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _float_text(value)
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, date | time):
        return value.isoformat()
    return str(value).strip()


def _float_text(value: float) -> str:
    """12.5 -> "12.5", 20.0 -> "20", 2.3000000000000003 (a formula's result) -> "2.3"."""
    if not math.isfinite(value):
        return str(value)
    return f"{Decimal(repr(round(value, 9))).normalize():f}"


def _not_a_workbook() -> SheetError:
    return SheetError(_l("This file is not a valid Excel workbook."))


def _not_a_spreadsheet(filename: str) -> SheetError:
    if filename.lower().endswith((".xlsx", ".xlsm")):
        return _not_a_workbook()
    return SheetError(_l("This file is not a spreadsheet: upload an .xlsx or a CSV file."))


def _megabytes(limit: int) -> str:
    megabytes = Decimal(limit) / (1024 * 1024)
    return f"{megabytes.quantize(Decimal('0.1')).normalize():f}"
