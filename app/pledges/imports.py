"""Offline sales imports: upload a file, review it, commit or discard it, reverse it later.

Routes of the `pledges` blueprint (under /pledges), for coordinators and administrators; the
work is done by app.services.sales_import.
"""

from __future__ import annotations

from flask import current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import StringField
from wtforms.validators import DataRequired, Length

from app.extensions import db
from app.models import ImportStatus, Role
from app.pledges.views import bp
from app.services import sales_import
from app.services.clock import utcnow
from app.services.errors import DomainError, LineErrors
from app.web.access import roles_required
from app.web.forms import add_domain_error, commit_or_flash, requested_page

coordinators = roles_required(Role.COORDINATOR, Role.ADMIN)

BATCHES_PER_PAGE = 25
ROWS_PER_PAGE = 50
#: The detail page lists this many of a batch's ledger entries, and says how many there are.
ENTRIES_SHOWN = 100


class ImportForm(FlaskForm):
    source = StringField(
        _l("Source"),
        validators=[DataRequired(message=_l("Name the source.")), Length(max=64)],
        description=_l(
            "Where the sales were recorded, e.g. counter-till or zcy (政采云): lower-case letters,"
            " digits and hyphens. With each row's reference it recognises rows imported before."
        ),
        render_kw={"autocomplete": "off", "list": "known-sources", "spellcheck": "false"},
    )
    file = FileField(
        _l("Sales file (CSV or XLSX)"),
        validators=[FileRequired(message=_l("Choose a file to upload."))],
    )


class ReverseForm(FlaskForm):
    reason = StringField(
        _l("Reason"),
        validators=[DataRequired(message=_l("Give a reason.")), Length(max=255)],
    )


class ActionForm(FlaskForm):
    """A button that changes something: only the CSRF token travels."""


def _limits() -> dict[str, int]:
    config = current_app.config
    return {
        "max_bytes": config.get("SALES_IMPORT_MAX_BYTES", sales_import.WEB_MAX_BYTES),
        "max_rows": config.get("SALES_IMPORT_MAX_ROWS", sales_import.WEB_MAX_ROWS),
    }


def _render_list(form: ImportForm, errors: dict | None = None, status: int = 200):
    return render_template(
        "pledges/imports.html",
        form=form,
        errors=errors,
        page=sales_import.list_batches(db.session, requested_page(), BATCHES_PER_PAGE),
        sources=sales_import.known_sources(db.session),
        headers=sales_import.HEADERS,
        required=sales_import.REQUIRED,
        limits=_limits(),
    ), status


@bp.route("/imports", methods=["GET", "POST"])
@coordinators
def imports():
    """The imports so far, and the form to upload a file of offline sales."""
    form = ImportForm()
    if request.method == "GET":
        return _render_list(form)
    if not form.validate():
        return _render_list(form, status=400)
    limits = _limits()
    upload = form.file.data
    data = upload.read(limits["max_bytes"] + 1)
    try:
        rows = sales_import.read(upload.filename or "", data, **limits)
        batch = sales_import.stage(
            db.session, current_user, utcnow(), form.source.data, upload.filename or "", rows
        )
        db.session.commit()
    except LineErrors as error:
        db.session.rollback()
        form.form_errors.append(error.message)
        return _render_list(form, errors=error.errors, status=422)
    except DomainError as error:
        db.session.rollback()
        add_domain_error(form, error)
        return _render_list(form, status=error.status_code)
    flash(
        _(
            "File read: %(new)d new rows, %(counted)d already counted. Review them, then commit.",
            new=batch.rows_new,
            counted=batch.rows_already_counted,
        ),
        "success",
    )
    return redirect(url_for("pledges.import_detail", batch_id=batch.id), 303)


@bp.get("/imports/template.csv")
@coordinators
def import_template():
    """An import file with the expected columns and one example row."""
    response = current_app.response_class(sales_import.template_csv(), mimetype="text/csv")
    response.headers["Content-Disposition"] = "attachment; filename=offline-sales.csv"
    return response


def _render_detail(batch, reverse_form=None, status: int = 200):
    entries, entries_total = sales_import.batch_entries(db.session, batch, ENTRIES_SHOWN)
    return render_template(
        "pledges/import_detail.html",
        batch=batch,
        rows=sales_import.rows_page(db.session, batch, requested_page(), ROWS_PER_PAGE),
        entries=entries,
        entries_total=entries_total,
        net_fen=sales_import.batch_net_fen(db.session, batch),
        action_form=ActionForm(),
        reverse_form=reverse_form or ReverseForm(),
        statuses=ImportStatus,
    ), status


@bp.get("/imports/<int:batch_id>")
@coordinators
def import_detail(batch_id: int):
    """One import: its rows (new or already counted), totals, and what can be done with it."""
    return _render_detail(sales_import.get_batch(db.session, batch_id))


@bp.post("/imports/<int:batch_id>/commit")
@coordinators
def commit_import(batch_id: int):
    batch = sales_import.get_batch(db.session, batch_id)
    commit_or_flash(
        lambda: sales_import.commit(db.session, batch, current_user, utcnow()),
        _("Import %(id)d is counted.", id=batch_id),
    )
    return redirect(url_for("pledges.import_detail", batch_id=batch_id), 303)


@bp.post("/imports/<int:batch_id>/discard")
@coordinators
def discard_import(batch_id: int):
    batch = sales_import.get_batch(db.session, batch_id)
    commit_or_flash(
        lambda: sales_import.discard(db.session, batch, current_user, utcnow()),
        _("Import %(id)d was discarded; nothing of it counts.", id=batch_id),
    )
    return redirect(url_for("pledges.import_detail", batch_id=batch_id), 303)


@bp.post("/imports/<int:batch_id>/reverse")
@coordinators
def reverse_import(batch_id: int):
    batch = sales_import.get_batch(db.session, batch_id)
    form = ReverseForm()
    if not form.validate():
        return _render_detail(batch, reverse_form=form, status=400)
    try:
        sales_import.reverse(db.session, batch, current_user, utcnow(), form.reason.data)
        db.session.commit()
    except DomainError as error:
        db.session.rollback()
        if error.field is None:
            flash(str(error.message), "danger")
            return redirect(url_for("pledges.import_detail", batch_id=batch_id), 303)
        add_domain_error(form, error)
        return _render_detail(batch, reverse_form=form, status=error.status_code)
    flash(_("Import %(id)d was reversed; it no longer counts.", id=batch_id), "success")
    return redirect(url_for("pledges.import_detail", batch_id=batch_id), 303)
