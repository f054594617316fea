"""Upload a file of listings: create and update products by code, every bad line reported."""

from __future__ import annotations

from flask import Response, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired

from app.extensions import db
from app.services import product_import
from app.services.clock import utcnow
from app.services.errors import DomainError, LineErrors
from app.supplier.views import bp, suppliers_only
from app.web.forms import add_domain_error


class ProductImportForm(FlaskForm):
    file = FileField(
        _l("Listings file (CSV or XLSX)"),
        validators=[FileRequired(message=_l("Choose a file to upload."))],
    )


def _page(form, errors=None, status=200):
    config = current_app.config
    return render_template(
        "supplier/product_import.html",
        form=form,
        errors=errors,
        headers=product_import.HEADERS,
        needed_for_new=[product_import.HEADERS[name][0] for name in product_import.NEEDED_FOR_NEW],
        max_bytes=config["PRODUCT_IMPORT_MAX_BYTES"],
        max_rows=config["PRODUCT_IMPORT_MAX_ROWS"],
    ), status


@bp.route("/products/import", methods=["GET", "POST"])
@suppliers_only
def import_products():
    """Check a whole file, then save it; a file with any bad line saves nothing."""
    form = ProductImportForm()
    if request.method == "GET":
        return _page(form)
    if not form.validate():
        return _page(form, status=400)
    config = current_app.config
    upload = form.file.data
    # Read one byte past the limit: the size check must not trust a declared length.
    data = upload.read(config["PRODUCT_IMPORT_MAX_BYTES"] + 1)
    try:
        report = product_import.import_file(
            db.session,
            current_user,
            upload.filename or "",
            data,
            utcnow(),
            percent=config["PRODUCT_REVIEW_PRICE_CHANGE_PERCENT"],
            max_bytes=config["PRODUCT_IMPORT_MAX_BYTES"],
            max_rows=config["PRODUCT_IMPORT_MAX_ROWS"],
        )
        db.session.commit()
    except LineErrors as error:
        db.session.rollback()
        form.form_errors.append(error.message)
        return _page(form, errors=sorted(error.errors.items()), status=422)
    except DomainError as error:
        db.session.rollback()
        add_domain_error(form, error)
        return _page(form, status=error.status_code)
    flash(
        _(
            "Imported %(rows)s rows: %(created)s new, %(updated)s updated, %(unchanged)s"
            " unchanged; %(waiting)s wait for a coordinator.",
            rows=report.rows,
            created=report.created,
            updated=report.updated,
            unchanged=report.unchanged,
            waiting=report.waiting_for_review,
        ),
        "success",
    )
    return redirect(url_for("supplier.listings"), 303)


@bp.get("/products/import/template.csv")
@suppliers_only
def import_template():
    """An example file with every column."""
    return Response(
        product_import.template_csv(),
        mimetype="text/csv",
        headers={"Content-Disposition": "attachment; filename=products-template.csv"},
    )
