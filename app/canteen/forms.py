from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import DateField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional


class ActionForm(FlaskForm):
    """A button that changes something: only the CSRF token travels."""


class LinesForm(FlaskForm):
    """Quantities travel as qty-<product id> fields read by the view; this carries the CSRF."""


class DetailsForm(FlaskForm):
    delivery_date = DateField(
        _l("Delivery date"),
        validators=[Optional()],
        render_kw={"min": ""},
    )
    delivery_address = StringField(_l("Deliver to"), validators=[Length(max=255)])
    po_reference = StringField(
        _l("Purchase-order reference"),
        validators=[Length(max=64)],
        description=_l("The canteen's own reference; printed on the invoices."),
    )
    notes = TextAreaField(_l("Notes for the suppliers"), validators=[Length(max=2000)])


class ReasonForm(FlaskForm):
    reason = StringField(
        _l("Reason"),
        validators=[DataRequired(message=_l("Give a reason.")), Length(max=500)],
    )


class UploadForm(FlaskForm):
    sheet = FileField(
        _l("Order sheet (CSV or XLSX)"),
        validators=[FileRequired(message=_l("Choose a file to upload."))],
        description=_l("Two columns: product code (or exact name) and quantity."),
    )
