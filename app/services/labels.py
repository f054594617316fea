"""Shelf labels for the counter: which products, how many copies, what each label says.

A sheet is asked for in its URL (`p=12&p=15:3`: product 12 once, product 15 three times), so a
clerk can bookmark it and reprint it after the prices change.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import sqlalchemy as sa
from flask import url_for
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import Session, joinedload

from app.models import Product, Unit
from app.services.catalog import ReferencePrice, reference_price, sellable
from app.services.errors import DomainError
from app.services.money import format_yuan

#: The common A4 sheet of 21 self-adhesive labels (63.5 x 38.1 mm, 3 across, 7 down), so the
#: counter can print on sticker paper or plain paper and cut; templates/counter/label_sheet.html
#: and static/css/labels.css draw the same grid.
COLUMNS = 3
ROWS = 7
LABELS_PER_PAGE = COLUMNS * ROWS
MAX_COPIES = 30
#: About 15 pages: more is a mistake in the URL rather than a day's relabelling.
MAX_LABELS = 300
#: Product ids are database integers; a longer run of digits is not one of ours.
_MAX_ID_DIGITS = 9


class LabelRequestError(DomainError):
    """A sheet URL that cannot be read: shown on the chooser as a 400."""

    status_code = 400


@dataclass(frozen=True)
class Label:
    """What one printed label says."""

    product_id: int
    code: str
    name_zh: str
    name_en: str
    region_zh: str
    county_zh: str
    supplier_zh: str
    price_fen: int
    unit: Unit
    reference: ReferencePrice | None
    #: The product page at the address people reach the shop at, for the QR code.
    url: str

    @property
    def price_text(self) -> str:
        """¥38.00 / 斤: the retail price and the unit it buys."""
        return f"{format_yuan(self.price_fen)} / {self.unit.label}"

    @property
    def reference_text(self) -> str:
        """¥3.80 / 枚 beside a box of ten eggs: the common measure shoppers compare by."""
        if self.reference is None:
            return ""
        return f"{format_yuan(self.reference.fen)} / {_REFERENCE_UNITS[self.reference.per]}"


_REFERENCE_UNITS = {"jin": _l("jin"), "litre": _l("litre"), "piece": _l("piece")}


@dataclass
class Sheet:
    #: One entry per copy, in the order the products were chosen.
    labels: list[Label] = field(default_factory=list)
    #: Chosen ids that are not on sale (or never existed): left out, and the clerk is told.
    missing: list[int] = field(default_factory=list)

    @property
    def pages(self) -> list[list[Label]]:
        """The labels in pages of LABELS_PER_PAGE; a page is printed on one A4 sheet."""
        return [
            self.labels[start : start + LABELS_PER_PAGE]
            for start in range(0, len(self.labels), LABELS_PER_PAGE)
        ]


def _shown(value: str) -> str:
    """A piece of the URL quoted in a message, cut short: it is not ours to print in full."""
    return value if len(value) <= 20 else value[:20] + "…"


def _number(text: str) -> int | None:
    if text.isascii() and text.isdigit() and len(text) <= _MAX_ID_DIGITS and int(text) > 0:
        return int(text)
    return None


def parse_choices(values: Iterable[str], copies: Mapping[int, str] | None = None) -> dict[int, int]:
    """{product id: copies} from `p` values, "12" (one copy) or "12:3" (three), in order.

    `copies` gives the number for a bare id (the chooser's number box beside each tick box). A
    product named twice gets the copies of both. Raises LabelRequestError naming the first
    value it cannot read, or when the sheet would be longer than MAX_LABELS.
    """
    values = list(values)
    # Every value is at least one label: refuse a huge list before reading any of it.
    if len(values) > MAX_LABELS:
        raise LabelRequestError(_too_many(len(values)))
    copies = copies or {}
    chosen: dict[int, int] = {}
    for value in values:
        id_text, colon, count_text = value.strip().partition(":")
        product_id = _number(id_text)
        if product_id is None:
            raise LabelRequestError(_l("“%(value)s” is not a product number.", value=_shown(value)))
        if not colon:
            count_text = (copies.get(product_id) or "1").strip()
        count = _number(count_text)
        if count is None or count > MAX_COPIES:
            raise LabelRequestError(
                _l(
                    "The number of copies must be a whole number from 1 to %(max)d "
                    "(product %(id)d: “%(value)s”).",
                    max=MAX_COPIES,
                    id=product_id,
                    value=_shown(count_text),
                )
            )
        chosen[product_id] = chosen.get(product_id, 0) + count
    total = sum(chosen.values())
    if total > MAX_LABELS:
        raise LabelRequestError(_too_many(total))
    return chosen


def _too_many(count: int):
    return _l(
        "At most %(max)d labels can be printed at a time; %(count)d were asked for. "
        "Print them in parts.",
        max=MAX_LABELS,
        count=count,
    )


def encode_choices(chosen: Mapping[int, int]) -> list[str]:
    """The `p` values of a sheet URL: the inverse of parse_choices."""
    return [str(pid) if count == 1 else f"{pid}:{count}" for pid, count in chosen.items()]


def product_url(site_url: str, product_id: int) -> str:
    """The product page at the shop's public address (SITE_URL), not the address the clerk's
    computer happens to use: a printed label outlives the request that made it."""
    return site_url.rstrip("/") + url_for("catalog.product_detail", product_id=product_id)


def build_sheet(session: Session, chosen: Mapping[int, int], site_url: str) -> Sheet:
    """Labels for the chosen products that are on sale, `chosen[id]` copies of each."""
    products = {
        product.id: product
        for product in session.scalars(
            sa.select(Product)
            .where(Product.id.in_(list(chosen)), sellable())
            .options(joinedload(Product.origin_region), joinedload(Product.supplier))
        )
    }
    sheet = Sheet()
    for product_id, count in chosen.items():
        product = products.get(product_id)
        if product is None:
            sheet.missing.append(product_id)
            continue
        label = Label(
            product_id=product.id,
            code=product.code,
            name_zh=product.name_zh,
            name_en=product.name_en or "",
            region_zh=product.origin_region.name_zh,
            county_zh=product.county_zh or "",
            supplier_zh=product.supplier.name_zh,
            price_fen=product.retail_price_fen,
            unit=product.unit,
            reference=reference_price(product),
            url=product_url(site_url, product.id),
        )
        sheet.labels.extend([label] * count)
    return sheet
