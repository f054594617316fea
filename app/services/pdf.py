"""Invoices and credit notes as PDF, with their Chinese text embedded in a CJK font.

Chinese needs a font with its glyphs, and the one most machines have (Noto Sans CJK, Debian's
fonts-noto-cjk) draws them with CFF outlines. fpdf2 embeds such a font under a custom encoding
that some text extractors (pypdf among them) cannot map back to characters, so search and
copy-paste would break. The font is therefore cut down first, with fontTools, to the characters
the document uses and its outlines converted to TrueType; fpdf2 then embeds that small font
under the standard Identity-H encoding every reader understands. A typical invoice is a few
dozen kilobytes.

The document is assembled as plain text first (`_invoice_document`), so the font subset is
known before anything is drawn.
"""

from __future__ import annotations

import functools
import io
import logging
import os
import tempfile
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path

from flask_babel import lazy_gettext as _l
from fpdf import FPDF, FontFace
from fpdf.enums import Align, TableBordersLayout, WrapMode, XPos, YPos

from app.models.canteen import Invoice, InvoiceKind
from app.services.clock import to_local
from app.services.errors import DomainError
from app.services.money import format_yuan

log = logging.getLogger(__name__)

#: Tried in order when PDF_FONT_PATH is not set (or not found). In a collection (.ttc) the
#: Simplified Chinese face is chosen by its name (index 2, "Noto Sans CJK SC", in Noto's).
FONT_CANDIDATES: list[str] = [
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",
    "/usr/share/fonts/opentype/noto/NotoSerifCJK-Regular.ttc",
]

BILLING_RULE = (
    "每行金额 = 实收数量 × 单价，按四舍五入保留到分；合计为各行金额之和。"
    " Each line: received quantity × unit price, rounded half up to the fen;"
    " the total is the sum of the lines."
)

#: Characters the font must have; without them the font is not a Chinese one.
_CHINESE_PROBE = "发票金额"
_ALWAYS = "".join(chr(code) for code in range(0x20, 0x7F)) + "¥—…×（）：；，。第页"
_FAMILY = "cjk"

_INK = (33, 37, 41)
_MUTED = (108, 117, 125)
_RULE = (173, 181, 189)
_SHADE = (233, 238, 243)


class PdfUnavailable(DomainError):
    """No font with Chinese glyphs on this machine: PDFs cannot be made."""

    status_code = 503


def find_font(configured: str | None) -> tuple[str, int] | None:
    """The font file to use and its face index in a collection, or None when there is none.

    A configured path that does not exist is reported in the log and the candidates are tried.
    """
    if configured:
        if Path(configured).is_file():
            return configured, _face_index(configured)
        log.warning("PDF_FONT_PATH %s does not exist; trying the usual fonts", configured)
    for candidate in FONT_CANDIDATES:
        if Path(candidate).is_file():
            return candidate, _face_index(candidate)
    return None


def invoice_pdf(invoice: Invoice, *, font_path: str | None) -> bytes:
    """The invoice or credit note as an A4 PDF."""
    document = _invoice_document(invoice)
    with _Pdf(document, _font(font_path, document.text())) as pdf:
        pdf.draw()
        return bytes(pdf.output())


# --- the document as text --------------------------------------------------------------------


@dataclass
class _Document:
    title: str
    number: str
    subject: str
    #: (heading, lines) side by side: the supplier and the buyer.
    parties: list[tuple[str, list[str]]]
    #: (label, value) pairs in a grid of three columns.
    facts: list[tuple[str, str]]
    #: (label, value) pairs printed in full width (a credit note's reason).
    notes: list[tuple[str, str]]
    table_headers: list[str]
    rows: list[list[str]]
    #: (label, amount, emphasised)
    totals: list[tuple[str, str, bool]]
    payments: list[list[str]] = field(default_factory=list)
    footer: str = BILLING_RULE

    def text(self) -> str:
        parts = [self.title, self.number, self.subject, self.footer, *self.table_headers]
        for heading, lines in self.parties:
            parts += [heading, *lines]
        for pairs in (self.facts, self.notes):
            for label, value in pairs:
                parts += [label, value]
        for row in (*self.rows, *self.payments):
            parts += row
        for label, amount, _ in self.totals:
            parts += [label, amount]
        parts += _PAYMENT_HEADERS
        parts.append(_PAYMENTS_HEADING)
        return "".join(parts)


_PAYMENT_HEADERS = ["付款日期 Date", "银行流水号 Reference", "金额 Amount"]
_PAYMENTS_HEADING = "付款记录 Payments"


def _invoice_document(invoice: Invoice) -> _Document:
    credit_note = invoice.kind == InvoiceKind.CREDIT_NOTE
    delivery = invoice.delivery
    order = delivery.order
    supplier = invoice.supplier
    buyer = invoice.buyer_organization
    facts = [
        ("发票号 Invoice No." if not credit_note else "单号 Credit note No.", invoice.number),
        ("开票日期 Issue date", _cn_date(to_local(invoice.issued_at).date())),
        ("订单号 Order No.", order.number),
        ("采购单号 PO reference", order.po_reference or "—"),
        ("送货日期 Delivery date", _cn_date(order.delivery_date)),
        ("送货单号 Delivery note", delivery.delivery_note_number or "—"),
    ]
    notes: list[tuple[str, str]] = []
    if credit_note and invoice.corrects is not None:
        corrected = invoice.corrects
        notes.append(
            (
                "更正发票 Corrects invoice",
                f"{corrected.number}（{_cn_date(to_local(corrected.issued_at).date())}）",
            )
        )
    if credit_note:
        notes.append(("更正原因 Reason", invoice.reason or "—"))
    elif invoice.credit_notes:
        notes.append(
            (
                "红字发票 Credit notes",
                "；".join(
                    f"{note.number}（{format_yuan(note.total_fen)}）"
                    for note in invoice.credit_notes
                ),
            )
        )

    # Chinese above English in every heading, so they line up whatever the column's width.
    headers = [
        "编码\nCode",
        "商品\nProduct",
        "单位\nUnit",
        "订购数量\nOrdered",
        "更正数量\nCorrected" if credit_note else "实收数量\nReceived",
        "单价\nUnit price",
        "金额\nAmount",
    ]
    rows = [
        [
            line.product_code,
            line.name_zh,
            str(line.unit.label) if line.unit else "",
            quantity_text(line.ordered_quantity),
            quantity_text(line.quantity),
            format_yuan(line.unit_price_fen),
            format_yuan(line.amount_fen),
        ]
        for line in invoice.lines
    ]

    totals = [("合计 Total", format_yuan(invoice.total_fen), True)]
    payments: list[list[str]] = []
    if not credit_note:
        if invoice.credit_notes:
            totals.append(("红字冲减 Credited", format_yuan(-invoice.credited_fen), False))
            totals.append(("冲减后应付 Due", format_yuan(invoice.due_fen), False))
        totals.append(("已付 Paid", format_yuan(invoice.paid_fen), False))
        if invoice.outstanding_fen < 0:
            # Credited after it was paid: the supplier owes the difference back.
            totals.append(("应退 Refund due", format_yuan(-invoice.outstanding_fen), True))
        else:
            totals.append(("未付 Outstanding", format_yuan(invoice.outstanding_fen), True))
        payments = [
            [_cn_date(payment.paid_on), payment.reference, format_yuan(payment.amount_fen)]
            for payment in invoice.payments
        ]

    return _Document(
        title="红字发票（贷项通知单）/ Credit note" if credit_note else "发票 / Invoice",
        number=invoice.number,
        subject=f"{supplier.name_zh} → {buyer.name_zh}",
        parties=[
            ("供应商 Supplier", [f"{supplier.name_zh}（{supplier.code}）", supplier.address]),
            ("购买方 Buyer", [buyer.name_zh, buyer.address]),
        ],
        facts=facts,
        notes=notes,
        table_headers=headers,
        rows=rows,
        totals=totals,
        payments=payments,
    )


def quantity_text(quantity: Decimal | None) -> str:
    """2.500 -> "2.5", 20.000 -> "20" (never "2E+1")."""
    if quantity is None:
        return ""
    return f"{Decimal(quantity).normalize():f}"


def _cn_date(day: date | None) -> str:
    if day is None:
        return "—"
    return f"{day.year}年{day.month:02d}月{day.day:02d}日"


# --- the font --------------------------------------------------------------------------------


def _font(configured: str | None, text: str) -> bytes:
    """A TrueType font with exactly the glyphs of `text` (and ASCII), ready for fpdf2."""
    found = find_font(configured)
    if found is None:
        raise PdfUnavailable(
            _l(
                "PDFs cannot be made: no font with Chinese characters is installed. Install"
                " the fonts-noto-cjk package or set PDF_FONT_PATH to a Chinese font file."
            )
        )
    path, index = found
    return _truetype_subset(path, index, frozenset(text + _ALWAYS))


@functools.lru_cache(maxsize=16)
def _face_index(path: str) -> int:
    """In a font collection, the Simplified Chinese face (its name says SC, GB or CN)."""
    if not path.lower().endswith((".ttc", ".otc")):
        return 0
    from fontTools.ttLib import TTCollection

    try:
        collection = TTCollection(path, lazy=True)
    except Exception:  # not a collection after all; let the subsetter report a broken file
        return 0
    try:
        names = [
            (font["name"].getDebugName(16) or font["name"].getDebugName(1) or "")
            for font in collection.fonts
        ]
    finally:
        collection.close()
    proportional = [i for i, name in enumerate(names) if "mono" not in name.lower()]
    for i in proportional:
        if {"SC", "GB", "CN", "HANS"} & set(names[i].upper().split()):
            return i
    return proportional[0] if proportional else 0


@functools.lru_cache(maxsize=8)  # the same invoice is often opened, then printed
def _truetype_subset(path: str, index: int, characters: frozenset[str]) -> bytes:
    from fontTools.ttLib import TTFont

    try:
        # Opened here so the file is closed even when fontTools refuses it.
        with open(path, "rb") as handle:
            font = TTFont(handle, fontNumber=index, lazy=True)
            try:
                return _subset(font, path, characters)
            finally:
                font.close()
    except PdfUnavailable:
        raise
    except Exception as error:  # a damaged or unsupported font file
        log.exception("PDF font %s cannot be used", path)
        raise PdfUnavailable(_l("The PDF font %(path)s cannot be read.", path=path)) from error


def _subset(font, path: str, characters: frozenset[str]) -> bytes:
    from fontTools import subset

    cmap = font.getBestCmap() or {}
    if any(ord(char) not in cmap for char in _CHINESE_PROBE):
        raise PdfUnavailable(
            _l(
                "The PDF font %(path)s has no Chinese characters. Install the"
                " fonts-noto-cjk package or set PDF_FONT_PATH to a Chinese font file.",
                path=path,
            )
        )
    missing = sorted(char for char in characters if ord(char) not in cmap and char.isprintable())
    if missing:
        log.warning("PDF font %s has no glyph for %s", path, "".join(missing))

    options = subset.Options()
    options.layout_features = []  # no shaping: Chinese and Latin need none
    options.drop_tables += ["GSUB", "GPOS", "GDEF", "BASE", "VORG", "vhea", "vmtx", "DSIG"]
    options.drop_tables += ["FFTM"]
    options.hinting = False
    options.desubroutinize = True
    options.notdef_outline = True
    subsetter = subset.Subsetter(options)
    subsetter.populate(unicodes=[ord(char) for char in characters if ord(char) in cmap])
    subsetter.subset(font)
    if "CFF " in font:
        _cff_to_truetype(font)
    font.sfntVersion = "\x00\x01\x00\x00"
    buffer = io.BytesIO()
    font.save(buffer)
    return buffer.getvalue()


def _cff_to_truetype(font) -> None:
    """Replace the font's cubic CFF outlines by quadratic TrueType ones (fontTools' otf2ttf)."""
    from fontTools.pens.cu2quPen import Cu2QuPen
    from fontTools.pens.ttGlyphPen import TTGlyphPen
    from fontTools.ttLib import newTable

    order = font.getGlyphOrder()
    glyph_set = font.getGlyphSet()
    glyphs = {}
    for name in order:
        pen = TTGlyphPen(glyph_set)
        # CFF draws outer contours counter-clockwise, TrueType clockwise; max error 1 unit/em.
        glyph_set[name].draw(Cu2QuPen(pen, max_err=1.0, reverse_direction=True))
        glyphs[name] = pen.glyph()

    font["loca"] = newTable("loca")
    glyf = font["glyf"] = newTable("glyf")
    glyf.glyphOrder = order
    glyf.glyphs = glyphs
    del font["CFF "]
    glyf.compile(font)

    metrics = font["hmtx"].metrics
    for name, glyph in glyphs.items():
        advance, _ = metrics[name]
        metrics[name] = (advance, getattr(glyph, "xMin", 0))

    maxp = font["maxp"] = newTable("maxp")
    maxp.tableVersion = 0x00010000
    maxp.maxZones = 1
    for attribute in (
        "maxTwilightPoints",
        "maxStorage",
        "maxFunctionDefs",
        "maxInstructionDefs",
        "maxStackElements",
        "maxSizeOfInstructions",
        "maxComponentElements",
    ):
        setattr(maxp, attribute, 0)
    font["head"].glyphDataFormat = 0
    post = font["post"]
    post.formatType = 2.0
    post.extraNames = []
    post.mapping = {}
    post.glyphOrder = order


# --- drawing ---------------------------------------------------------------------------------


class _Pdf(FPDF):
    """An A4 page in mm; `draw()` lays out a _Document. Used as a context manager, so the
    temporary font file is removed however the drawing ends."""

    MARGIN = 15

    def __init__(self, document: _Document, font: bytes):
        super().__init__(orientation="portrait", unit="mm", format="A4")
        self.document = document
        self._font_dir = tempfile.TemporaryDirectory(prefix="shanhai-pdf-")
        font_file = os.path.join(self._font_dir.name, "cjk.ttf")
        with open(font_file, "wb") as handle:
            handle.write(font)
        # fpdf2 reads the font file again when it writes the PDF: it lives until __exit__.
        self.add_font(_FAMILY, "", font_file)
        self.set_margins(self.MARGIN, self.MARGIN, self.MARGIN)
        self.set_auto_page_break(auto=True, margin=24)
        self.set_title(f"{document.title} {document.number}")
        self.set_subject(document.subject)
        self.set_creator("山海集 Shanhai Market")
        self.set_lang("zh-CN")
        self.set_text_color(*_INK)
        self.set_draw_color(*_RULE)

    def __enter__(self) -> _Pdf:
        return self

    def __exit__(self, *exc_info) -> None:
        self._font_dir.cleanup()

    # Each page: the billing rule and the page number at the bottom.
    def footer(self) -> None:
        self.set_y(-21)
        self.set_font(_FAMILY, size=7.5)
        self.set_text_color(*_MUTED)
        self.multi_cell(0, 3.6, self.document.footer, align=Align.L)
        self.cell(0, 4, f"第 {self.page_no()} / {{nb}} 页", align=Align.R, new_x=XPos.LMARGIN)
        self.set_text_color(*_INK)

    def draw(self) -> None:
        document = self.document
        self.add_page()
        self._heading()
        self._parties()
        self._facts()
        self._table()
        self._totals()
        if document.payments:
            self._payments()

    def _heading(self) -> None:
        document = self.document
        self.set_font(_FAMILY, size=18)
        self.cell(0, 10, document.title, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.set_font(_FAMILY, size=11)
        self.set_text_color(*_MUTED)
        self.cell(0, 6, document.number, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.set_text_color(*_INK)
        self.ln(2)
        self._rule()

    def _parties(self) -> None:
        width = (self.epw - 8) / 2
        top = self.get_y() + 3
        bottom = top
        for column, (heading, lines) in enumerate(self.document.parties):
            self.set_xy(self.l_margin + column * (width + 8), top)
            self.set_font(_FAMILY, size=8)
            self.set_text_color(*_MUTED)
            self.cell(width, 4.5, heading, new_x=XPos.LEFT, new_y=YPos.NEXT)
            self.set_text_color(*_INK)
            for number, line in enumerate(line for line in lines if line):
                self.set_font(_FAMILY, size=11 if number == 0 else 9)
                self.multi_cell(
                    width,
                    5 if number == 0 else 4.5,
                    line,
                    align=Align.L,
                    new_x=XPos.LEFT,
                    new_y=YPos.NEXT,
                )
            bottom = max(bottom, self.get_y())
        self.set_xy(self.l_margin, bottom + 3)
        self._rule()

    def _facts(self) -> None:
        columns = 3
        width = self.epw / columns
        facts = self.document.facts
        self.ln(2)
        for start in range(0, len(facts), columns):
            top = bottom = self.get_y()
            for offset, (label, value) in enumerate(facts[start : start + columns]):
                self.set_xy(self.l_margin + offset * width, top)
                self.set_font(_FAMILY, size=8)
                self.set_text_color(*_MUTED)
                self.cell(width - 3, 4.5, label, new_x=XPos.LEFT, new_y=YPos.NEXT)
                self.set_text_color(*_INK)
                self.set_font(_FAMILY, size=10)
                # A long reference wraps in its column (CHAR: codes have no spaces to break at).
                self.multi_cell(
                    width - 3,
                    5.5,
                    value,
                    align=Align.L,
                    wrapmode=WrapMode.CHAR,
                    new_x=XPos.LEFT,
                    new_y=YPos.NEXT,
                )
                bottom = max(bottom, self.get_y())
            self.set_xy(self.l_margin, bottom + 1)
        for label, value in self.document.notes:
            self.set_font(_FAMILY, size=8)
            self.set_text_color(*_MUTED)
            self.cell(0, 4.5, label, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
            self.set_text_color(*_INK)
            self.set_font(_FAMILY, size=10)
            self.multi_cell(0, 5.5, value, align=Align.L, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
            self.ln(1)
        self.ln(3)

    def _table(self) -> None:
        document = self.document
        self.set_font(_FAMILY, size=8.5)
        with self.table(
            col_widths=(27, 55, 13, 18, 20, 23, 24),
            text_align=("LEFT", "LEFT", "CENTER", "RIGHT", "RIGHT", "RIGHT", "RIGHT"),
            borders_layout=TableBordersLayout.HORIZONTAL_LINES,
            headings_style=FontFace(emphasis="", fill_color=_SHADE, size_pt=8),
            line_height=4.6,
            padding=(1.4, 1.2),
            v_align="TOP",
            repeat_headings=1,
        ) as table:
            table.row(document.table_headers)
            for values in document.rows:
                table.row(values)
        self.ln(3)

    def _totals(self) -> None:
        label_width, amount_width = 50, 35
        for label, amount, emphasised in self.document.totals:
            self.set_x(self.l_margin + self.epw - label_width - amount_width)
            self.set_font(_FAMILY, size=11 if emphasised else 9.5)
            height = 7 if emphasised else 5.5
            self.cell(label_width, height, label, align=Align.R)
            self.cell(
                amount_width, height, amount, align=Align.R, new_x=XPos.LMARGIN, new_y=YPos.NEXT
            )
        self.ln(3)

    def _payments(self) -> None:
        self.set_font(_FAMILY, size=9)
        self.set_text_color(*_MUTED)
        self.cell(0, 6, _PAYMENTS_HEADING, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.set_text_color(*_INK)
        with self.table(
            width=110,
            align=Align.L,
            col_widths=(32, 48, 30),
            text_align=("LEFT", "LEFT", "RIGHT"),
            borders_layout=TableBordersLayout.HORIZONTAL_LINES,
            headings_style=FontFace(emphasis="", fill_color=_SHADE, size_pt=8),
            line_height=4.6,
            padding=(1.2, 1.2),
        ) as table:
            table.row(_PAYMENT_HEADERS)
            for values in self.document.payments:
                table.row(values)

    def _rule(self) -> None:
        y = self.get_y()
        self.line(self.l_margin, y, self.l_margin + self.epw, y)
