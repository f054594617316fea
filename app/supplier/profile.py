"""The supplier's own profile: story, county, members, certificates, contact."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import DateField, EmailField, IntegerField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Email, Length, NumberRange, Optional

from app.extensions import db
from app.models import CertificateKind
from app.services import supplier_profile
from app.services.clock import utcnow
from app.supplier.views import bp, suppliers_only
from app.web.forms import commit_form, commit_or_flash, form_status, options


class ProfileForm(FlaskForm):
    county_zh = StringField(_l("County"), validators=[Length(max=64)])
    households_benefited = IntegerField(
        _l("Farm households benefited"),
        validators=[
            Optional(),
            NumberRange(min=0, max=10_000_000, message=_l("Enter a whole number of zero or more.")),
        ],
        render_kw={"inputmode": "numeric"},
    )
    cooperative_members = IntegerField(
        _l("Cooperative members"),
        validators=[
            Optional(),
            NumberRange(min=0, max=10_000_000, message=_l("Enter a whole number of zero or more.")),
        ],
        render_kw={"inputmode": "numeric"},
    )
    story_zh = TextAreaField(_l("Your story (Chinese)"), validators=[Length(max=4000)])
    story_en = TextAreaField(_l("Your story (English)"), validators=[Length(max=4000)])
    contact_name = StringField(_l("Contact person"), validators=[Length(max=64)])
    contact_phone = StringField(_l("Phone"), validators=[Length(max=32)])
    contact_email = EmailField(
        _l("E-mail"),
        validators=[
            Optional(),
            Length(max=254),
            Email(message=_l("Enter a valid e-mail address.")),
        ],
    )
    address = StringField(_l("Address"), validators=[Length(max=255)])


class CertificateForm(FlaskForm):
    kind = SelectField(_l("Kind"))
    name = StringField(
        _l("Name"),
        validators=[DataRequired(message=_l("Name the certificate.")), Length(max=128)],
        description=_l("e.g. 宣汉黄牛肉 地理标志证明商标"),
    )
    number = StringField(_l("Certificate number"), validators=[Length(max=64)])
    issuer = StringField(_l("Issued by"), validators=[Length(max=128)])
    valid_from = DateField(_l("Valid from"), validators=[Optional()])
    valid_until = DateField(_l("Valid until"), validators=[Optional()])


class RemoveForm(FlaskForm):
    pass


def _certificate_form() -> CertificateForm:
    form = CertificateForm(prefix="cert")
    form.kind.choices = options([(k.value, k.label) for k in CertificateKind])
    return form


def _page(form=None, certificate_form=None, status=200):
    org = supplier_profile.own_supplier(db.session, current_user)
    if form is None:
        form = ProfileForm(obj=org)
    return render_template(
        "supplier/profile.html",
        org=org,
        form=form,
        certificate_form=certificate_form or _certificate_form(),
        remove_form=RemoveForm(),
        today=utcnow().date(),
    ), status


@bp.get("/profile")
@suppliers_only
def profile():
    """The profile as the supplier keeps it, with a link to how buyers see it."""
    return _page()


@bp.post("/profile")
@suppliers_only
def save_profile():
    form = ProfileForm()
    if form.validate():
        data = supplier_profile.ProfileData(
            county_zh=form.county_zh.data or "",
            households_benefited=form.households_benefited.data or 0,
            cooperative_members=form.cooperative_members.data or 0,
            story_zh=form.story_zh.data or "",
            story_en=form.story_en.data or "",
            contact_name=form.contact_name.data or "",
            contact_phone=form.contact_phone.data or "",
            contact_email=form.contact_email.data or "",
            address=form.address.data or "",
        )
        if commit_form(
            form, lambda: supplier_profile.update_profile(db.session, current_user, data)
        ).ok:
            flash(_("Profile saved; buyers see it now."), "success")
            return redirect(url_for("supplier.profile"), 303)
    return _page(form=form, status=form_status(form))


@bp.post("/profile/certificates")
@suppliers_only
def add_certificate():
    form = _certificate_form()
    if form.validate():
        outcome = commit_form(
            form,
            lambda: supplier_profile.add_certificate(
                db.session,
                current_user,
                kind=CertificateKind(form.kind.data),
                name=form.name.data,
                number=form.number.data or "",
                issuer=form.issuer.data or "",
                valid_from=form.valid_from.data,
                valid_until=form.valid_until.data,
            ),
        )
        if outcome.ok:
            flash(_("Certificate added."), "success")
            return redirect(url_for("supplier.profile"), 303)
    return _page(certificate_form=form, status=400)


@bp.post("/profile/certificates/<int:certificate_id>/remove")
@suppliers_only
def remove_certificate(certificate_id: int):
    if not RemoveForm().validate():
        abort(400)
    commit_or_flash(
        lambda: supplier_profile.remove_certificate(db.session, current_user, certificate_id),
        _("Certificate removed."),
    )
    return redirect(url_for("supplier.profile"), 303)
