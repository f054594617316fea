"""Serving product photos, and the template helpers that link to them."""

from __future__ import annotations

import re

from flask import Blueprint, abort, current_app, send_file, url_for

from app.models import ProductPhoto
from app.services.photos import KEY_PATTERN, SIZES, PhotoStore, rendition_size
from app.web.access import public

bp = Blueprint("media", __name__)

#: A key's files never change (a new photo gets a new key), so they may be cached for good.
ONE_YEAR = 365 * 24 * 3600
_FILE_NAME = re.compile(rf"({KEY_PATTERN.pattern})-({'|'.join(SIZES)})\.jpg")


@bp.get("/photos/<name>")
@public
def photo(name: str):
    """One stored rendition of a product photo; any other name is not found."""
    match = _FILE_NAME.fullmatch(name)
    if match is None:
        abort(404)
    key, size = match.groups()
    path = PhotoStore.from_config(current_app.config).path(key, size)
    if not path.is_file():
        abort(404)
    response = send_file(
        path,
        mimetype="image/jpeg",
        download_name=f"photo-{size}.jpg",
        conditional=True,
        etag=True,
        max_age=ONE_YEAR,
    )
    response.cache_control.immutable = True
    # Only ever a JPEG we encoded; still, no browser may take it for anything else.
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response


@bp.app_template_global()
def photo_url(photo: ProductPhoto, size: str = "medium") -> str:
    if size not in SIZES:
        raise ValueError(f"unknown photo size {size!r}")
    return url_for("media.photo", name=f"{photo.key}-{size}.jpg")


@bp.app_template_global()
def photo_size(photo: ProductPhoto, size: str = "medium") -> tuple[int, int]:
    """(width, height) of a rendition, for the img tag, so the page does not jump as it loads."""
    return rendition_size(photo, size)
