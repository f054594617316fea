from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import RadioField, SelectField, SelectMultipleField, StringField
from wtforms.validators import DataRequired, Length

from app.models import Fulfilment, PaymentMethod
from app.web.forms import options


class QuantityForm(FlaskForm):
    """Add to the cart, or change a cart line: the service checks the number against the unit."""

    quantity = StringField(
        _l("Quantity"),
        default="1",
        validators=[DataRequired(message=_l("Enter a quantity.")), Length(max=12)],
    )


class ActionForm(FlaskForm):
    """A button that changes something: only the CSRF token travels."""


class CheckoutForm(FlaskForm):
    fulfilment = RadioField(
        _l("Collection"),
        choices=options((f.value, f.label) for f in Fulfilment),
        default=Fulfilment.COUNTER_PICKUP.value,
    )
    payment_method = RadioField(
        _l("Payment"),
        choices=options((m.value, m.label) for m in PaymentMethod),
        default=PaymentMethod.COUNTER.value,
    )
    delivery_place_id = SelectField(
        _l("Deliver to"),
        coerce=lambda v: int(v) if str(v).isdigit() else 0,
        choices=[],
        validate_choice=False,
    )


class RefundForm(FlaskForm):
    """Lines to refund (none ticked: everything not yet refunded) and why."""

    line_ids = SelectMultipleField(_l("Lines"), coerce=int, choices=[], validate_choice=False)
    reason = StringField(
        _l("Reason"),
        validators=[DataRequired(message=_l("Say why the money goes back.")), Length(max=200)],
    )
