from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, HiddenField, PasswordField, SelectField, StringField
from wtforms.validators import DataRequired, EqualTo, Length

from app.services.accounts import MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH

_required = DataRequired(message=_l("This field is required."))


class LoginForm(FlaskForm):
    email = StringField(_l("E-mail"), validators=[_required, Length(max=254)])
    password = PasswordField(
        _l("Password"), validators=[_required, Length(max=MAX_PASSWORD_LENGTH)]
    )
    remember = BooleanField(_l("Keep me logged in on this device"))
    next = HiddenField()


class RegisterForm(FlaskForm):
    email = StringField(_l("Work e-mail"), validators=[_required, Length(max=254)])
    name = StringField(_l("Your name"), validators=[_required, Length(max=64)])
    department_id = SelectField(_l("Department"), coerce=int, choices=[], validate_choice=False)
    password = PasswordField(
        _l("Password"),
        validators=[_required, Length(min=MIN_PASSWORD_LENGTH, max=MAX_PASSWORD_LENGTH)],
        description=_l("At least %(n)d characters, not only digits.", n=MIN_PASSWORD_LENGTH),
    )
    confirm = PasswordField(
        _l("Repeat the password"),
        validators=[_required, EqualTo("password", message=_l("The two passwords differ."))],
    )


class ChangePasswordForm(FlaskForm):
    current_password = PasswordField(_l("Current password"), validators=[_required])
    new_password = PasswordField(
        _l("New password"),
        validators=[_required, Length(min=MIN_PASSWORD_LENGTH, max=MAX_PASSWORD_LENGTH)],
    )
    confirm = PasswordField(
        _l("Repeat the new password"),
        validators=[_required, EqualTo("new_password", message=_l("The two passwords differ."))],
    )
