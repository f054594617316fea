"""Jinja filters and globals: money, quantities, localized names, dates."""

from __future__ import annotations

import hashlib
from datetime import datetime
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlencode

import qrcode
from flask import Flask, current_app, request, url_for
from flask_babel import format_datetime, get_locale
from flask_babel import lazy_gettext as _l
from markupsafe import Markup, escape
from qrcode.image.svg import SvgPathImage

from app.models import FulfilmentStatus, OrderEvent, PaymentStatus, Product
from app.services.catalog import reference_price, stock_state
from app.services.clock import to_local
from app.services.money import format_wan, format_yuan
from app.web.csrf import csrf_token


def is_english() -> bool:
    locale = get_locale()
    return locale is not None and locale.language == "en"


def localized(obj, field: str = "name") -> str:
    """obj.name_en in English when there is one, otherwise obj.name_zh."""
    if is_english():
        english = getattr(obj, f"{field}_en", "")
        if english:
            return english
    return getattr(obj, f"{field}_zh", "")


_COUNTY_SUFFIXES = ("市", "县", "区")


def tile_text(product: Product) -> str:
    """The words on a product's placeholder picture: its name without the place it comes from.

    Half the catalog starts with 舟山 or 达州; a tile that says "带鱼" tells more than "舟山".
    """
    name = product.name_zh.split("（")[0].split("(")[0]
    places = [product.origin_region.name_zh, product.county_zh]
    places += [place[:-1] for place in places if place and place.endswith(_COUNTY_SUFFIXES)]
    for place in sorted(filter(None, places), key=len, reverse=True):
        if name.startswith(place) and len(name) > len(place) + 1:
            name = name[len(place) :]
            break
    # A Chinese name ends with what the thing is (百里坡黑鸡蛋 is eggs): keep the end.
    return name if len(name) <= 4 else name[-3:]


def format_quantity(value: Decimal | int | None) -> str:
    """2.500 -> 2.5, 10.000 -> 10."""
    if value is None:
        return ""
    text = f"{Decimal(value):f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def local_datetime(value: datetime | None, fmt: str = "medium") -> str:
    """An aware UTC time as the clock in Zhoushan shows it."""
    if value is None:
        return ""
    return format_datetime(to_local(value), fmt)


def note_text(note: str) -> str:
    """A timeline note or refund reason: the system's translated, a person's as written."""
    from app.services.orders import SYSTEM_NOTES

    return str(SYSTEM_NOTES.get(note, note))


def event_label(event: OrderEvent) -> str:
    """An order timeline entry in words: the state one of its two machines moved to."""
    states = FulfilmentStatus if event.machine == "status" else PaymentStatus
    return str(states(event.to_state).label)


def tier_data(tiers) -> str:
    """Bulk price tiers as the order sheet's script reads them: "20:4580 60:4380"."""
    return " ".join(f"{format_quantity(quantity)}:{fen}" for quantity, fen in tiers)


def tier_lines(tiers) -> Markup:
    """Bulk price tiers, one per line: ≥20: ¥45.80 (one call per row, not a template loop)."""
    return Markup(
        "".join(f"<div>≥{format_quantity(q)}: {format_yuan(fen)}</div>" for q, fen in tiers)
    )


#: What each move of a bulk order is called on its history.
BULK_ACTIONS = {
    "create": _l("Draft created"),
    "submit": _l("Submitted"),
    "approve": _l("Approved"),
    "reject": _l("Rejected"),
    "reopen": _l("Reopened for editing"),
    "cancel": _l("Cancelled"),
    "withdraw": _l("Withdrawn from the supplier"),
    "confirm": _l("Confirmed by the supplier"),
    "propose": _l("Supplier proposes smaller quantities"),
    "accept_reduction": _l("Reduced quantity accepted"),
    "cancel_line": _l("Line cancelled"),
    "ship": _l("Shipped"),
    "receive": _l("Goods received and signed off"),
    "complete": _l("Completed"),
}


def bulk_action_label(action: str) -> str:
    return str(BULK_ACTIONS.get(action, action))


def bulk_state_label(event, value: str | None) -> str:
    """A state on a bulk order's history, in words: a delivery's or the order's own."""
    from app.models import BulkOrderStatus, DeliveryStatus

    states = DeliveryStatus if event.delivery_id else BulkOrderStatus
    try:
        return str(states(value).label)
    except ValueError:
        return value or ""


@lru_cache(maxsize=256)
def qr_svg(text: str) -> Markup:
    """A QR code as inline SVG (no image request, nothing from outside the app)."""
    image = qrcode.make(text, image_factory=SvgPathImage, border=2)
    svg = image.to_string(encoding="unicode")
    # Sized by CSS, not millimetres; labelled for screen readers.
    svg = svg.replace('width="', 'data-width="', 1).replace('height="', 'data-height="', 1)
    return Markup(
        svg.replace("<svg ", f'<svg class="qr" role="img" aria-label="{escape(text)}" ', 1)
    )


def url_with(**changes) -> str:
    """The current URL with some query arguments changed (pagination, sort links).

    The query string is appended as data, never passed to url_for as keyword arguments: there a
    visitor's `?_external=1` or `?endpoint=x` would be read as url_for's own options.
    """
    args = request.args.to_dict()
    for key, value in changes.items():
        if value is None:
            args.pop(key, None)
        else:
            args[key] = value
    path = url_for(request.endpoint, **(request.view_args or {}))
    return f"{path}?{urlencode(args)}" if args else path


@lru_cache(maxsize=64)
def _static_version(folder: str, filename: str) -> str:
    digest = hashlib.sha256((Path(folder) / filename).read_bytes()).hexdigest()
    return digest[:12]


def asset(filename: str) -> str:
    """A static file's URL with its content hash, so browsers may cache it for a year and
    still fetch the new file the moment it changes."""
    version = _static_version(current_app.static_folder, filename)
    return url_for("static", filename=filename, v=version)


def init_app(app: Flask) -> None:
    app.add_template_global(csrf_token)  # replaces Flask-WTF's; see app.web.csrf
    # Block tags leave no blank lines behind: a catalog page is a third smaller on the wire.
    app.jinja_env.trim_blocks = True
    app.jinja_env.lstrip_blocks = True
    app.add_template_global(asset)
    app.add_template_filter(format_yuan, "yuan")
    app.add_template_filter(format_wan, "wan")
    app.add_template_filter(format_quantity, "qty")
    app.add_template_filter(localized, "loc")
    app.add_template_filter(local_datetime, "local_dt")
    app.add_template_global(event_label)
    app.add_template_filter(bulk_action_label, "bulk_action")
    app.add_template_filter(tier_data, "tier_data")
    app.add_template_filter(tier_lines, "tier_lines")
    app.add_template_global(bulk_state_label)
    app.add_template_filter(note_text, "note")
    app.add_template_global(qr_svg)
    app.add_template_global(url_with)
    app.add_template_global(reference_price)
    app.add_template_global(stock_state)
    app.add_template_global(tile_text)
    app.add_template_global(is_english)
