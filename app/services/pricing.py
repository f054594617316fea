"""Bulk (canteen) prices and quantity rules: the one place that decides what a bulk line costs.

A product offers bulk when it has a case size and price tiers. A line's quantity must be a whole
number of cases and at least the bulk minimum (the larger of the product's minimum and its first
tier); its unit price is that of the highest tier whose threshold the quantity reaches, so a
quantity exactly at a threshold gets that tier's price.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from flask_babel import lazy_gettext as _l

from app.models import Product, ProductStatus
from app.services.errors import DomainError
from app.services.money import line_total
from app.services.stock import MAX_QUANTITY, QUANTUM

_PLAIN_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)$", re.ASCII)


class QuantityError(DomainError):
    pass


def parse_quantity(text: str | Decimal | int | None) -> Decimal | None:
    """What a buyer typed in a quantity box: None when left empty, else a positive Decimal.

    Full-width digits from a Chinese input method are accepted; anything else that is not a
    number with at most three decimals is refused.
    """
    if text is None:
        return None
    if isinstance(text, (Decimal, int)):
        raw = str(text)
    else:
        raw = unicodedata.normalize("NFKC", text).strip().replace(",", "")
    if raw == "":
        return None
    # Plain decimals only: Decimal() alone would also take "1e3", "1_000" and "NaN".
    if not _PLAIN_NUMBER.match(raw):
        raise QuantityError(_l("Enter a number."))
    try:
        value = Decimal(raw)
    except (InvalidOperation, ValueError):
        raise QuantityError(_l("Enter a number.")) from None
    if not value.is_finite() or value < 0 or value > MAX_QUANTITY:
        raise QuantityError(_l("Enter a quantity of zero or more."))
    if value != value.quantize(QUANTUM):
        raise QuantityError(_l("At most three decimals."))
    return value


def bulk_minimum(product: Product) -> Decimal:
    floor = product.price_tiers[0].min_quantity if product.price_tiers else Decimal(0)
    return max(product.min_bulk_quantity or Decimal(0), floor, product.case_size or Decimal(0))


def tier_price(product: Product, quantity: Decimal) -> int | None:
    """The unit price the quantity reaches, or None below the first tier."""
    price = None
    for tier in product.price_tiers:  # ordered by min_quantity
        if quantity >= tier.min_quantity:
            price = tier.unit_price_fen
    return price


def fmt_quantity(value: Decimal) -> str:
    text = f"{value.normalize():f}"
    return text


def check_bulk_line(product: Product, quantity: Decimal) -> int:
    """The unit price for `quantity` of `product`, or a QuantityError saying what is wrong."""
    if product.status != ProductStatus.ACTIVE or not product.supplier.active:
        raise QuantityError(_l("This product is no longer on sale."))
    if not product.offers_bulk:
        raise QuantityError(_l("This product is not sold in bulk."))
    if quantity <= 0:
        raise QuantityError(_l("Enter a quantity above zero."))
    minimum = bulk_minimum(product)
    if quantity < minimum:
        raise QuantityError(
            _l(
                "At least %(minimum)s %(unit)s.",
                minimum=fmt_quantity(minimum),
                unit=product.unit.label,
            )
        )
    if quantity % product.case_size != 0:
        lower = quantity // product.case_size * product.case_size
        upper = lower + product.case_size
        if lower < minimum:  # the whole cases below are too few: suggest two that are enough
            lower, upper = upper, upper + product.case_size
        raise QuantityError(
            _l(
                "Order whole cases of %(case)s %(unit)s (e.g. %(lower)s or %(upper)s).",
                case=fmt_quantity(product.case_size),
                unit=product.unit.label,
                lower=fmt_quantity(lower),
                upper=fmt_quantity(upper),
            )
        )
    price = tier_price(product, quantity)
    if price is None:  # pragma: no cover - bulk_minimum is at least the first tier
        raise QuantityError(_l("This product is not sold in bulk."))
    return price


@dataclass(frozen=True)
class PricedLine:
    product: Product
    quantity: Decimal
    unit_price_fen: int

    @property
    def total_fen(self) -> int:
        return line_total(self.unit_price_fen, self.quantity)
