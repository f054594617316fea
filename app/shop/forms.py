from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import StringField
from wtforms.validators import DataRequired, Length


class QuantityForm(FlaskForm):
    """Add to the cart, or change a cart line: the service checks the number against the unit."""

    quantity = StringField(
        _l("Quantity"),
        default="1",
        validators=[DataRequired(message=_l("Enter a quantity.")), Length(max=12)],
    )


class ActionForm(FlaskForm):
    """A button that changes something: only the CSRF token travels."""
