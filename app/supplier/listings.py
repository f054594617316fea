"""The supplier's listings: create and edit products; some changes wait for a coordinator.

Every field is a text box checked by app.services.listings.parse_listing, the same check an
imported file goes through, so the form and the file refuse the same things with the same words.
"""

from __future__ import annotations

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import Form as PlainForm
from wtforms import FormField, SelectField, StringField, TextAreaField

from app.extensions import db
from app.models import Category, Organization, ProductStatus, Region, Unit
from app.services import listings
from app.services.clock import utcnow
from app.services.errors import DomainError, LineErrors
from app.services.pricing import fmt_quantity
from app.supplier.views import bp, suppliers_only
from app.web.filters import localized
from app.web.forms import RowList, add_domain_error, commit_or_flash, options, requested_page

TIER_ROWS = listings.MAX_TIERS


class TierForm(PlainForm):
    min_quantity = StringField(_l("From quantity"))
    price = StringField(_l("Unit price (yuan)"))


class ListingForm(FlaskForm):
    """Text boxes only as far as WTForms goes: parse_listing checks every value (the choices
    too), so the form and an imported file are refused for the same reasons."""

    code = StringField(
        _l("Product code"), description=_l("Your article code, e.g. DZ-TEA-01; it cannot change.")
    )
    name_zh = StringField(_l("Name (Chinese)"))
    name_en = StringField(_l("Name (English)"))
    category = SelectField(_l("Category"), validate_choice=False)
    origin = SelectField(_l("Origin"), validate_choice=False)
    unit = SelectField(
        _l("Unit"), description=_l("What one retail price buys."), validate_choice=False
    )
    retail_price = StringField(_l("Retail price (yuan)"), render_kw={"inputmode": "decimal"})
    content_amount = StringField(
        _l("Net content"), description=_l("Of one unit, e.g. 500 (g) for a 500 g bag.")
    )
    content_unit = SelectField(_l("Content unit"), validate_choice=False)
    description_zh = TextAreaField(_l("Description (Chinese)"))
    description_en = TextAreaField(_l("Description (English)"))
    case_size = StringField(
        _l("Case size"), description=_l("Units per case for canteen orders; empty: no bulk sale.")
    )
    min_bulk_quantity = StringField(_l("Minimum bulk quantity"))
    tiers = RowList(FormField(TierForm), min_entries=TIER_ROWS, max_entries=TIER_ROWS)
    lead_time_days = StringField(_l("Lead time (days)"), render_kw={"inputmode": "numeric"})
    shelf_life_days = StringField(_l("Shelf life (days)"), render_kw={"inputmode": "numeric"})
    storage_zh = StringField(_l("Storage"))
    county_zh = StringField(_l("County"))
    cooperative_zh = StringField(_l("Cooperative or farm"))
    households_benefited = StringField(
        _l("Households benefited"), render_kw={"inputmode": "numeric"}
    )
    certifications = StringField(_l("Certifications"))


class ArchiveForm(FlaskForm):
    pass


def _choices(form: ListingForm) -> None:
    form.category.choices = options(
        [("", _l("Choose…"))]
        + [
            (str(c.id), localized(c))
            for c in db.session.scalars(select(Category).order_by(Category.sort_order, Category.id))
        ]
    )
    form.origin.choices = options(
        [("", _l("Choose…"))]
        + [
            (str(r.id), localized(r))
            for r in db.session.scalars(select(Region).order_by(Region.sort_order, Region.id))
        ]
    )
    form.unit.choices = options([("", _l("Choose…"))] + [(u.value, u.label) for u in Unit])
    form.content_unit.choices = options(
        [("", "—"), *((unit.value, label) for unit, label in listings.CONTENT_UNIT_LABELS.items())]
    )


def _fill(form: ListingForm, listing: listings.Listing) -> None:
    """Put a saved version into the boxes, as text the way the supplier would type it."""
    form.code.data = listing.code
    for name in listings.TEXT_FIELDS:
        getattr(form, name).data = getattr(listing, name)
    form.category.data = str(listing.category_id)
    form.origin.data = str(listing.origin_region_id)
    form.unit.data = listing.unit.value
    form.retail_price.data = f"{listing.retail_price_fen / 100:.2f}"
    form.content_amount.data = str(listing.content_amount or "")
    form.content_unit.data = listing.content_unit.value if listing.content_unit else ""
    form.case_size.data = fmt_quantity(listing.case_size) if listing.case_size else ""
    form.min_bulk_quantity.data = (
        fmt_quantity(listing.min_bulk_quantity) if listing.min_bulk_quantity else ""
    )
    for entry, (quantity, price) in zip(form.tiers.entries, listing.tiers, strict=False):
        entry.form.min_quantity.data = fmt_quantity(quantity)
        entry.form.price.data = f"{price / 100:.2f}"
    form.lead_time_days.data = str(listing.lead_time_days)
    form.shelf_life_days.data = str(listing.shelf_life_days or "")
    form.households_benefited.data = str(listing.households_benefited)


def _read(form: ListingForm, code: str | None = None) -> listings.Listing:
    """The typed listing, or errors put beside their boxes (LineErrors is re-raised)."""
    raw = {name: field.data or "" for name, field in form._fields.items() if name != "tiers"}
    if code is not None:
        raw["code"] = code
    try:
        tiers = listings.check_tiers(
            (entry.form.min_quantity.data or "", entry.form.price.data or "")
            for entry in form.tiers.entries
        )
    except DomainError as error:
        tiers = None
        tier_error = error.message
    else:
        tier_error = None
    try:
        listing = listings.parse_listing(
            raw, listings.ListingChoices.load(db.session), tiers=tiers or ()
        )
    except LineErrors as error:
        errors = dict(error.errors)
        if tier_error:
            errors["tiers"] = tier_error
        raise LineErrors(errors) from None
    if tier_error:
        raise LineErrors({"tiers": tier_error})
    return listing


def _show_errors(form: ListingForm, errors: dict) -> None:
    for name, message in errors.items():
        if name == "tiers":
            form.form_errors.append(message)
            form.tiers.errors = [message]
        elif name in form._fields:
            form._fields[name].errors = [*form._fields[name].errors, message]
        else:
            form.form_errors.append(message)


@bp.get("/products", endpoint="listings")
@suppliers_only
def listings_index():
    """This supplier's products, with where each stands (on sale, waiting, sent back)."""
    raw = request.args.get("status", "")
    if raw and raw not in ProductStatus._value2member_map_:
        abort(400, description=_l("That filter value is not valid."))
    status = ProductStatus(raw) if raw else None
    page = listings.own_products(db.session, current_user, status, requested_page())
    latest = listings.latest_revisions(db.session, (p.id for p in page.items))
    return render_template(
        "supplier/listings.html",
        page=page,
        latest=latest,
        status=status,
        statuses=list(ProductStatus),
    )


@bp.route("/products/new", methods=["GET", "POST"])
@suppliers_only
def new_listing():
    """A new product; it goes on sale once a coordinator approves it."""
    form = ListingForm()
    _choices(form)
    if request.method == "GET":
        # Most products come from where the supplier is.
        supplier = db.session.get(Organization, current_user.organization_id)
        form.origin.data = str(supplier.region_id or "") if supplier else ""
        form.lead_time_days.data = "2"
        return render_template("supplier/listing_form.html", form=form, product=None)
    if form.validate():
        try:
            listing = _read(form)
            product, _revision = listings.create(db.session, current_user, listing, utcnow())
            db.session.commit()
        except LineErrors as error:
            db.session.rollback()
            _show_errors(form, error.errors)
        except DomainError as error:
            db.session.rollback()
            add_domain_error(form, error)
        else:
            flash(_("Saved. A coordinator will review it; add photos meanwhile."), "success")
            return redirect(url_for("supplier.edit_listing", product_id=product.id), 303)
    return render_template("supplier/listing_form.html", form=form, product=None), 400


def _edit_page(product, form, status=200):
    pending = listings.pending_revision(db.session, product.id)
    return render_template(
        "supplier/listing_form.html",
        form=form,
        product=product,
        pending=pending,
        history=listings.history(db.session, product.id),
        reason_labels=listings.reason_labels,
        archive_form=ArchiveForm(),
        threshold=current_app.config["PRODUCT_REVIEW_PRICE_CHANGE_PERCENT"],
    ), status


@bp.route("/products/<int:product_id>/edit", methods=["GET", "POST"])
@suppliers_only
def edit_listing(product_id: int):
    """Edit a product. The boxes show the supplier's latest version, waiting or not."""
    product = listings.get_own_product(db.session, current_user, product_id)
    form = ListingForm()
    _choices(form)
    if request.method == "GET":
        pending = listings.pending_revision(db.session, product.id)
        latest = (
            listings.Listing.from_data(pending.data)
            if pending
            else listings.Listing.of_product(product)
        )
        _fill(form, latest)
        return _edit_page(product, form)
    if not form.validate():
        return _edit_page(product, form, 400)
    try:
        listing = _read(form, code=product.code)
        revision = listings.edit(
            db.session,
            product,
            current_user,
            listing,
            utcnow(),
            current_app.config["PRODUCT_REVIEW_PRICE_CHANGE_PERCENT"],
        )
        db.session.commit()
    except LineErrors as error:
        db.session.rollback()
        _show_errors(form, error.errors)
        return _edit_page(product, form, 400)
    except DomainError as error:
        db.session.rollback()
        add_domain_error(form, error)
        return _edit_page(product, form, error.status_code)
    if revision.review_reasons:
        flash(
            _("Saved. It waits for a coordinator; buyers see the approved version until then."),
            "info",
        )
    else:
        flash(_("Saved; buyers see the change now."), "success")
    return redirect(url_for("supplier.edit_listing", product_id=product.id), 303)


@bp.post("/products/<int:product_id>/archive")
@suppliers_only
def archive_listing(product_id: int):
    """Take the product off sale."""
    product = listings.get_own_product(db.session, current_user, product_id)
    if not ArchiveForm().validate():
        abort(400)
    commit_or_flash(
        lambda: listings.archive(db.session, product, current_user, utcnow()),
        _("The product is off sale."),
    )
    return redirect(url_for("supplier.edit_listing", product_id=product.id), 303)


@bp.post("/products/<int:product_id>/restore")
@suppliers_only
def restore_listing(product_id: int):
    """Put an archived product back on sale (or back to review if it never was approved)."""
    product = listings.get_own_product(db.session, current_user, product_id)
    if not ArchiveForm().validate():
        abort(400)
    commit_or_flash(
        lambda: listings.restore(db.session, product, current_user, utcnow()),
        _("The product is back."),
    )
    return redirect(url_for("supplier.edit_listing", product_id=product.id), 303)
