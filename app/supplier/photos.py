"""Product photos: upload, reorder, choose the main one, remove."""

from __future__ import annotations

import sqlalchemy as sa
from flask import abort, current_app, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext
from flask_login import current_user
from flask_wtf import FlaskForm
from flask_wtf.file import FileRequired, MultipleFileField
from wtforms import StringField
from wtforms.validators import AnyOf

from app.extensions import db
from app.models import Role
from app.services import photos
from app.services.clock import utcnow
from app.services.errors import DomainError, LineErrors
from app.supplier.views import bp
from app.web.access import roles_required
from app.web.forms import add_domain_error, commit_or_flash

suppliers_only = roles_required(Role.SUPPLIER)

#: What the file picker offers; the server checks the content whatever the picker allowed.
ACCEPT = "image/jpeg,image/png,image/webp"


class UploadForm(FlaskForm):
    photos = MultipleFileField(
        _l("Photos"), validators=[FileRequired(message=_l("Choose one or more photos."))]
    )


class MoveForm(FlaskForm):
    direction = StringField(
        validators=[AnyOf(("up", "down"), message=_l("Choose earlier or later."))]
    )


def _store() -> photos.PhotoStore:
    return photos.PhotoStore.from_config(current_app.config)


def _back(product_id: int):
    return redirect(url_for("supplier.photos", product_id=product_id), 303)


def _render(product, form=None, file_errors=(), status=200):
    store = _store()
    return render_template(
        "supplier/photos.html",
        product=product,
        form=form or UploadForm(),
        file_errors=file_errors,
        per_product=store.per_product,
        max_megabytes=photos.megabytes(store.max_bytes),
        # Flask refuses a whole request above this (413) before any file is looked at.
        request_megabytes=photos.megabytes(current_app.config["MAX_CONTENT_LENGTH"] or 0),
        accept=ACCEPT,
    ), status


@bp.get("/products/<int:product_id>/photos", endpoint="photos")
@suppliers_only
def photos_page(product_id: int):
    """A product's photos in order, the first being the main one, and the upload form."""
    return _render(photos.get_own_product(db.session, current_user, product_id))


@bp.post("/products/<int:product_id>/photos")
@suppliers_only
def upload_photos(product_id: int):
    """Add one or several photos: each file is checked, and all are added or none."""
    product = photos.get_own_product(db.session, current_user, product_id)
    form = UploadForm()
    if not form.validate():
        return _render(product, form, status=400)
    uploads = [photos.Upload(file.filename or "", file.stream) for file in form.photos.data if file]
    try:
        added = photos.add_photos(db.session, product, current_user, utcnow(), uploads, _store())
        db.session.commit()
    except LineErrors as error:
        db.session.rollback()
        form.form_errors.append(error.message)
        refused = [(uploads[number].label, message) for number, message in error.errors.items()]
        return _render(product, form, file_errors=refused, status=error.status_code)
    except DomainError as error:
        db.session.rollback()
        add_domain_error(form, error)
        return _render(product, form, status=error.status_code)
    except sa.exc.IntegrityError:
        db.session.rollback()
        form.form_errors.append(_l("Someone saved the same thing at the same moment. Try again."))
        return _render(product, form, status=409)
    flash(ngettext("%(num)d photo added.", "%(num)d photos added.", len(added)), "success")
    return _back(product.id)


@bp.post("/products/<int:product_id>/photos/<int:photo_id>/main")
@suppliers_only
def photo_main(product_id: int, photo_id: int):
    """Make the photo the main one, shown on the product's card."""
    photo = photos.get_own_photo(db.session, current_user, product_id, photo_id)
    # The CSRF token is checked for every POST before any view runs (CSRFProtect).
    commit_or_flash(
        lambda: photos.make_main(db.session, photo, current_user, utcnow()),
        _("This is now the main photo."),
    )
    return _back(product_id)


@bp.post("/products/<int:product_id>/photos/<int:photo_id>/move")
@suppliers_only
def photo_move(product_id: int, photo_id: int):
    """Move the photo one place earlier (up) or later (down)."""
    photo = photos.get_own_photo(db.session, current_user, product_id, photo_id)
    form = MoveForm()
    if not form.validate():
        abort(400, description=_l("Choose earlier or later."))
    commit_or_flash(
        lambda: photos.move(db.session, photo, current_user, utcnow(), form.direction.data),
        _("Photo moved."),
    )
    return _back(product_id)


@bp.post("/products/<int:product_id>/photos/<int:photo_id>/delete")
@suppliers_only
def photo_delete(product_id: int, photo_id: int):
    """Remove the photo; its files are deleted once the removal is saved."""
    photo = photos.get_own_photo(db.session, current_user, product_id, photo_id)
    commit_or_flash(
        lambda: photos.remove(db.session, photo, current_user, utcnow(), _store()),
        _("Photo removed."),
    )
    return _back(product_id)
