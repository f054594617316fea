"""The review queue: approve a supplier's version, or send it back with a comment."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import TextAreaField
from wtforms.validators import Length

from app.extensions import db
from app.models import Role
from app.services import listings
from app.services.clock import utcnow
from app.services.errors import DomainError
from app.web.access import roles_required
from app.web.forms import add_domain_error, requested_page

bp = Blueprint("review", __name__)

stewards_only = roles_required(Role.COORDINATOR, Role.ADMIN)


class ApproveForm(FlaskForm):
    comment = TextAreaField(
        _l("Comment for the supplier (optional)"), validators=[Length(max=1000)]
    )


class SendBackForm(FlaskForm):
    comment = TextAreaField(_l("What should the supplier change?"), validators=[Length(max=1000)])


@bp.get("/")
@stewards_only
def index():
    """Versions waiting for review, oldest first."""
    page = listings.review_queue(db.session, requested_page())
    return render_template("review/index.html", page=page, reason_labels=listings.reason_labels)


def _detail(revision, approve_form=None, send_back_form=None, status=200):
    return render_template(
        "review/detail.html",
        revision=revision,
        product=revision.product,
        changes=listings.compare(db.session, revision),
        reason_labels=listings.reason_labels,
        approve_form=approve_form or ApproveForm(),
        send_back_form=send_back_form or SendBackForm(),
        history=listings.history(db.session, revision.product_id),
    ), status


@bp.get("/<int:revision_id>")
@stewards_only
def detail(revision_id: int):
    """One version beside what buyers see now, changed fields marked."""
    return _detail(listings.get_revision(db.session, revision_id))


def _decide(revision_id: int, form, decide, done_message):
    revision = listings.get_revision(db.session, revision_id)
    if not form.validate():
        return _detail(revision, status=400, **{_form_slot(form): form})
    try:
        decide(revision, form.comment.data or "")
        db.session.commit()
    except DomainError as error:
        db.session.rollback()
        if error.field:
            add_domain_error(form, error)
            return _detail(revision, status=400, **{_form_slot(form): form})
        flash(str(error.message), "warning")
        return redirect(url_for("review.detail", revision_id=revision_id), 303)
    flash(done_message, "success")
    return redirect(url_for("review.index"), 303)


def _form_slot(form) -> str:
    return "approve_form" if isinstance(form, ApproveForm) else "send_back_form"


@bp.post("/<int:revision_id>/approve")
@stewards_only
def approve(revision_id: int):
    """Approve: the version goes on sale at once."""
    return _decide(
        revision_id,
        ApproveForm(),
        lambda revision, comment: listings.approve(
            db.session, revision, current_user, utcnow(), comment
        ),
        _("Approved; buyers see this version now and the supplier has been told."),
    )


@bp.post("/<int:revision_id>/send-back")
@stewards_only
def send_back(revision_id: int):
    """Send back with a comment; buyers keep seeing what they saw."""
    return _decide(
        revision_id,
        SendBackForm(),
        lambda revision, comment: listings.send_back(
            db.session, revision, current_user, utcnow(), comment
        ),
        _("Sent back to the supplier with your comment."),
    )
