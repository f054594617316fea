"""The pledge form and the re-attribution form."""

from __future__ import annotations

import calendar
import re
import unicodedata
from datetime import date
from decimal import Decimal, InvalidOperation

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    Field,
    RadioField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
    widgets,
)
from wtforms.validators import Length, ValidationError

from app.models import Channel, PledgeKind
from app.services.money import MoneyFormatError, parse_yuan
from app.services.pledges import MAX_AMOUNT_FEN
from app.web.forms import options


class MultiCheckboxField(SelectMultipleField):
    widget = widgets.ListWidget(prefix_label=False)
    option_widget = widgets.CheckboxInput()


_MONTH = re.compile(r"^(\d{4})\s*[-/年.]\s*(\d{1,2})\s*月?$")
_DAY = re.compile(r"^(\d{4})\s*[-/年.]\s*(\d{1,2})\s*[-/月.]\s*(\d{1,2})\s*日?$")


def parse_month(text: str, end: bool) -> date:
    """'2026-01' (what <input type=month> sends, or 2026年1月) as the month's first day, or its
    last for the end of a period; a full date is kept as typed for the service to judge."""
    cleaned = unicodedata.normalize("NFKC", text or "").strip()
    day = _DAY.match(cleaned)
    if day:
        return date(int(day[1]), int(day[2]), int(day[3]))
    month = _MONTH.match(cleaned)
    if not month:
        raise ValueError(text)
    year, number = int(month[1]), int(month[2])
    last = calendar.monthrange(year, number)[1] if 1 <= number <= 12 else 1
    return date(year, number, last if end else 1)


class MonthField(Field):
    """A month, typed or picked (<input type="month">), read as a date."""

    widget = widgets.MonthInput()

    def __init__(self, label=None, validators=None, end: bool = False, **kwargs):
        super().__init__(label, validators, **kwargs)
        self.end = end
        self.raw = ""

    def _value(self) -> str:
        if self.raw_data:
            return self.raw_data[0]
        return f"{self.data:%Y-%m}" if isinstance(self.data, date) else ""

    def process_formdata(self, valuelist) -> None:
        self.raw = (valuelist[0] if valuelist else "").strip()
        self.data = None
        if not self.raw:
            return
        try:
            self.data = parse_month(self.raw, self.end)
        except ValueError as exc:
            self.data = None
            raise ValueError(_l("Write the month as 2026-01.")) from exc


def _yuan(field) -> int | None:
    text = (field.data or "").strip()
    if not text:
        return None
    try:
        return parse_yuan(text, max_fen=MAX_AMOUNT_FEN)
    except MoneyFormatError:
        normalized = unicodedata.normalize("NFKC", text).strip()
        if normalized.startswith("-"):
            raise ValidationError(_l("The amount must be more than zero.")) from None
        raise ValidationError(_l("Enter an amount in yuan, e.g. 530000 or 530,000.00.")) from None


def _percent(field) -> Decimal | None:
    text = unicodedata.normalize("NFKC", field.data or "").strip().removesuffix("%").strip()
    if not text:
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ValidationError(_l("Enter a percentage, e.g. 15.")) from None
    if not value.is_finite():
        raise ValidationError(_l("Enter a percentage, e.g. 15."))
    return value


class PledgeForm(FlaskForm):
    name = StringField(
        _l("Pledge name"),
        validators=[Length(max=128)],
        render_kw={"maxlength": 128},
    )
    kind = RadioField(
        _l("Kind of target"),
        choices=options((k.value, k.label) for k in PledgeKind),
        default=PledgeKind.FIXED.value,
    )
    target = StringField(
        _l("Target (yuan)"),
        description=_l("e.g. 530000 for the 53万元 plan."),
        render_kw={"inputmode": "decimal", "autocomplete": "off"},
    )
    declared_spending = StringField(
        _l("Declared annual canteen food spending (yuan)"),
        render_kw={"inputmode": "decimal", "autocomplete": "off"},
    )
    share_percent = StringField(
        _l("Reserved share (%)"),
        default="15",
        description=_l("At least 10 per cent; 15 per cent is encouraged."),
        render_kw={"inputmode": "decimal", "autocomplete": "off"},
    )
    period_start = MonthField(_l("First month"))
    period_end = MonthField(_l("Last month"), end=True)
    all_organizations = BooleanField(_l("All buying organizations"))
    organization_ids = MultiCheckboxField(_l("Buying organizations"), coerce=int, choices=[])
    region_ids = MultiCheckboxField(_l("Origin regions"), coerce=int, choices=[])
    channels = MultiCheckboxField(
        _l("Channels"),
        choices=options((c.value, c.label) for c in Channel),
        description=_l("None ticked: every channel counts."),
    )
    public = BooleanField(_l("Show on the public board"))
    notes = TextAreaField(_l("Notes"), validators=[Length(max=5000)])

    #: What the amounts read as, set while validating (only the chosen kind's are read).
    target_fen: int | None = None
    declared_spending_fen: int | None = None
    percent: Decimal | None = None

    def _kind_is(self, kind: PledgeKind) -> bool:
        return self.kind.data == kind.value

    def validate_target(self, field) -> None:
        if self._kind_is(PledgeKind.FIXED):
            self.target_fen = _yuan(field)

    def validate_declared_spending(self, field) -> None:
        if self._kind_is(PledgeKind.SHARE):
            self.declared_spending_fen = _yuan(field)

    def validate_share_percent(self, field) -> None:
        if self._kind_is(PledgeKind.SHARE):
            self.percent = _percent(field)


class ReattributeForm(FlaskForm):
    organization_id = SelectField(_l("Count it for"), coerce=int, choices=[])
    reason = StringField(
        _l("Reason"),
        validators=[Length(max=255)],
        render_kw={"maxlength": 255},
    )


class FindOrderForm(FlaskForm):
    class Meta:
        csrf = False

    number = StringField(_l("Order number"), validators=[Length(max=40)])
