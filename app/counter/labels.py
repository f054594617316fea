"""Shelf labels for the counter: choose products, print an A4 sheet with a QR code on each.

Routes of the `counter` blueprint (under /counter), for the counter's staff; what a label says
comes from app.services.labels. Everything is a GET, so a sheet's URL can be bookmarked and
printed again after the prices change.
"""

from __future__ import annotations

from flask import current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import IntegerField, SelectField, StringField
from wtforms.validators import NumberRange, Optional

from app.counter.views import bp, counter_only
from app.extensions import db
from app.services import catalog, labels
from app.services.catalog import ProductFilters, Sort
from app.services.labels import LabelRequestError
from app.services.search import MAX_QUERY_LENGTH, clean_query
from app.web.filters import localized
from app.web.forms import options

_COPIES_PREFIX = "copies-"


class LabelFilterForm(FlaskForm):
    """Which products the chooser lists (GET, so no CSRF token)."""

    class Meta:
        csrf = False

    q = StringField(_l("Search"), filters=[lambda v: (v or "")[: MAX_QUERY_LENGTH * 8]])
    region = SelectField(_l("Origin"), choices=[], validate_choice=True, default="")
    supplier = SelectField(_l("Supplier"), choices=[], validate_choice=True, default="")
    page = IntegerField(
        _l("Page"),
        default=1,
        validators=[Optional(), NumberRange(min=1, message=_l("Page numbers start at 1."))],
    )


def _chosen() -> dict[int, int]:
    """The products ticked so far, from `p` and the number boxes beside the tick boxes."""
    copies = {}
    for key, value in request.args.items():
        id_text = key.removeprefix(_COPIES_PREFIX)
        # Only boxes of ticked products count, and those are checked by parse_choices; a box
        # named after something that is not an id belongs to no product.
        if key.startswith(_COPIES_PREFIX) and id_text.isascii() and id_text.isdigit():
            copies[int(id_text)] = value
    return labels.parse_choices(request.args.getlist("p"), copies)


def _chooser(chosen: dict[int, int], error: str | None = None, status: int = 200):
    choices = catalog.filter_choices(db.session)
    form = LabelFilterForm(request.args)
    everything = ("", _l("All"))
    form.region.choices = options(
        [everything, *((r.code, localized(r)) for r in choices["regions"])]
    )
    form.supplier.choices = options(
        [everything, *((str(s.id), localized(s)) for s in choices["suppliers"])]
    )
    page = None
    if form.validate():
        query = clean_query(form.q.data)
        filters = ProductFilters(
            query=query,
            region_code=form.region.data or None,
            supplier_id=int(form.supplier.data) if form.supplier.data else None,
            sort=Sort.RELEVANCE if query else Sort.NEWEST,
        )
        page = catalog.browse(
            db.session, filters, form.page.data or 1, current_app.config["ADMIN_ROWS_PER_PAGE"]
        )
    elif status == 200:
        status = 400
    shown = {product.id for product in page.items} if page else set()
    # Ticked on other pages or under other filters: kept in hidden fields.
    carried = {pid: count for pid, count in chosen.items() if pid not in shown}
    return render_template(
        "counter/labels.html",
        form=form,
        page=page,
        chosen=chosen,
        carried=labels.encode_choices(carried),
        carried_labels=sum(carried.values()),
        error=error,
        max_copies=labels.MAX_COPIES,
        copies_prefix=_COPIES_PREFIX,
    ), status


@bp.get("/labels", endpoint="labels")
@counter_only
def labels_chooser():
    """Products on sale, to tick for shelf labels (with how many copies of each)."""
    try:
        chosen = _chosen()
    except LabelRequestError as error:
        return _chooser({}, str(error.message), 400)
    return _chooser(chosen)


@bp.get("/labels/sheet")
@counter_only
def label_sheet():
    """An A4 sheet of shelf labels for the chosen products, ready to print."""
    try:
        chosen = _chosen()
    except LabelRequestError as error:
        return _chooser({}, str(error.message), 400)
    if not chosen:
        flash(_("Tick at least one product to print labels for."), "warning")
        return redirect(url_for("counter.labels"))
    # The chooser's form sends tick boxes, number boxes and filters; the sheet's own address
    # says only which products and how many, so that it is short enough to bookmark.
    canonical = labels.encode_choices(chosen)
    if request.args.getlist("p") != canonical or set(request.args) != {"p"}:
        return redirect(url_for("counter.label_sheet", p=canonical))
    sheet = labels.build_sheet(db.session, chosen, current_app.config["SITE_URL"])
    if not sheet.labels:
        return _chooser(
            {}, _("None of the chosen products is on sale, so there is nothing to print."), 400
        )
    return render_template(
        "counter/label_sheet.html",
        sheet=sheet,
        back=url_for("counter.labels", p=canonical),
        columns=labels.COLUMNS,
        rows=labels.ROWS,
    )
