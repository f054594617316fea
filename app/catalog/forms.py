from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, IntegerField, SelectField, StringField
from wtforms.validators import NumberRange, Optional, ValidationError

from app.models import RegionKind
from app.services.catalog import Sort
from app.services.money import MoneyFormatError, parse_yuan
from app.services.search import MAX_QUERY_LENGTH
from app.web.forms import options

#: A filter above ten million yuan means nothing here; refusing it keeps the number in range.
MAX_FILTER_PRICE_FEN = 10_000_000 * 100


def _price(form, field):
    if field.data:
        try:
            field.fen = parse_yuan(field.data, max_fen=MAX_FILTER_PRICE_FEN)
        except MoneyFormatError:
            raise ValidationError(
                _l(
                    "Enter a price such as 12.80 (not negative, at most two decimals, "
                    "at most ¥10,000,000)."
                )
            ) from None
    else:
        field.fen = None


class ProductFilterForm(FlaskForm):
    """The catalog's filters, read from the query string (GET, so no CSRF token)."""

    class Meta:
        csrf = False

    q = StringField(_l("Search"), filters=[lambda v: (v or "")[: MAX_QUERY_LENGTH * 8]])
    origin = SelectField(
        _l("Origin"),
        choices=options([("", _l("All")), *((k.value, k.label) for k in RegionKind)]),
        default="",
    )
    region = SelectField(_l("Region"), choices=[], validate_choice=True, default="")
    category = SelectField(_l("Category"), choices=[], validate_choice=True, default="")
    supplier = SelectField(_l("Supplier"), choices=[], validate_choice=True, default="")
    in_stock = BooleanField(_l("In stock only"), false_values=("false", "", "0", "no", "off"))
    min_price = StringField(_l("Lowest price (¥)"), validators=[_price])
    max_price = StringField(_l("Highest price (¥)"), validators=[_price])
    sort = SelectField(
        _l("Sort by"),
        choices=options((s.value, s.label) for s in Sort),
        default=Sort.NEWEST.value,
        validate_choice=True,
    )
    page = IntegerField(
        _l("Page"),
        default=1,
        validators=[Optional(), NumberRange(min=1, message=_l("Page numbers start at 1."))],
    )

    def validate_max_price(self, field):
        low, high = getattr(self.min_price, "fen", None), getattr(field, "fen", None)
        if low is not None and high is not None and high < low:
            raise ValidationError(_l("The highest price is below the lowest price."))
