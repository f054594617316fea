from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    IntegerField,
    PasswordField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
    widgets,
)
from wtforms.validators import DataRequired, Length, NumberRange, Optional

from app.models import OrgKind, RegionKind, Role, SupplierType
from app.services.accounts import MAX_PASSWORD_LENGTH
from app.web.forms import options

_required = DataRequired(message=_l("This field is required."))


class MultiCheckboxField(SelectMultipleField):
    widget = widgets.ListWidget(prefix_label=False)
    option_widget = widgets.CheckboxInput()


def _optional_int(value):
    return int(value) if value not in (None, "", "0", 0) else None


class UserForm(FlaskForm):
    email = StringField(_l("E-mail"), validators=[_required, Length(max=254)])
    name = StringField(_l("Name"), validators=[_required, Length(max=64)])
    roles = MultiCheckboxField(
        _l("Roles"), choices=options((r.value, r.label) for r in Role), validate_choice=True
    )
    organization_id = SelectField(_l("Organization"), coerce=_optional_int, choices=[])
    active = BooleanField(_l("Account enabled"), default=True)
    password = PasswordField(
        _l("Password"),
        validators=[Optional(), Length(max=MAX_PASSWORD_LENGTH)],
        description=_l("Leave empty to keep the current password."),
    )


class UserFilterForm(FlaskForm):
    class Meta:
        csrf = False

    q = StringField(_l("Name or e-mail"), filters=[lambda v: (v or "").strip()[:100]])
    role = SelectField(
        _l("Role"),
        choices=options([("", _l("All")), *((r.value, r.label) for r in Role)]),
        default="",
    )
    page = IntegerField(
        _l("Page"),
        default=1,
        validators=[Optional(), NumberRange(min=1, message=_l("Page numbers start at 1."))],
    )


class OrganizationForm(FlaskForm):
    code = StringField(_l("Code"), validators=[_required, Length(max=32)])
    kind = SelectField(_l("Kind"), choices=options((k.value, k.label) for k in OrgKind))
    name_zh = StringField(_l("Name (Chinese)"), validators=[_required, Length(max=128)])
    name_en = StringField(_l("Name (English)"), validators=[Length(max=128)])
    region_id = SelectField(_l("Region"), coerce=_optional_int, choices=[])
    address = StringField(_l("Address"), validators=[Length(max=255)])
    contact_name = StringField(_l("Contact person"), validators=[Length(max=64)])
    contact_phone = StringField(_l("Contact phone"), validators=[Length(max=32)])
    supplier_type = SelectField(
        _l("Supplier type"),
        choices=options([("", "—"), *((t.value, t.label) for t in SupplierType)]),
        default="",
    )
    county_zh = StringField(_l("County"), validators=[Length(max=64)])
    households_benefited = IntegerField(
        _l("Farm households benefited"),
        default=0,
        validators=[
            Optional(),
            NumberRange(min=0, max=10_000_000, message=_l("Cannot be negative.")),
        ],
    )
    certifications = StringField(_l("Certifications"), validators=[Length(max=255)])
    story_zh = TextAreaField(_l("Story (Chinese)"), validators=[Length(max=5000)])
    story_en = TextAreaField(_l("Story (English)"), validators=[Length(max=5000)])
    active = BooleanField(_l("Active"), default=True)


class DeliveryPlaceForm(FlaskForm):
    building_zh = StringField(_l("Building"), validators=[_required, Length(max=64)])
    room = StringField(_l("Room"), validators=[_required, Length(max=32)])
    active = BooleanField(_l("Active"), default=True)


class RegionForm(FlaskForm):
    code = StringField(_l("Code"), validators=[_required, Length(max=32)])
    name_zh = StringField(_l("Name (Chinese)"), validators=[_required, Length(max=64)])
    name_en = StringField(_l("Name (English)"), validators=[Length(max=64)])
    province_zh = StringField(_l("Province (Chinese)"), validators=[Length(max=64)])
    province_en = StringField(_l("Province (English)"), validators=[Length(max=64)])
    kind = SelectField(_l("Kind"), choices=options((k.value, k.label) for k in RegionKind))
