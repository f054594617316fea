"""Suppliers' listings and the coordinators' review of them.

A listing is read from text, the same way whether a supplier typed it in the form or it came
from an imported file (`parse_listing`), so both are refused for the same reasons with the same
messages. Saving it always leaves a ProductRevision; what buyers see is the product row, which
holds the last approved version:

* a new product is created unlisted (pending review) and goes on sale when a coordinator
  approves it;
* an edit of a product on sale applies at once unless it changes a retail or bulk price by more
  than PRODUCT_REVIEW_PRICE_CHANGE_PERCENT (or offers bulk terms for the first time); then it
  waits, and buyers keep seeing the approved version until a coordinator approves the new one;
* a newer edit replaces (withdraws) a version still waiting, so at most one waits per product.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from decimal import Decimal
from itertools import pairwise

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import Session, joinedload, selectinload

from app.models import (
    Category,
    ContentUnit,
    Organization,
    PriceTier,
    Product,
    ProductRevision,
    ProductStatus,
    Region,
    RevisionStatus,
    Role,
    Unit,
    User,
    UserRole,
)
from app.services import notify, search
from app.services.accounts import Actor
from app.services.errors import DomainError, LineErrors, NotFound
from app.services.money import MoneyFormatError, format_yuan, parse_yuan
from app.services.pagination import Page, paginate
from app.services.pricing import QuantityError, fmt_quantity, parse_quantity, tier_price
from app.signals import note_catalog_change

CODE_PATTERN = re.compile(r"^[A-Z0-9][A-Z0-9_-]{1,31}$")
MAX_TIERS = 6
MAX_LEAD_TIME_DAYS = 60
MAX_SHELF_LIFE_DAYS = 3650
MAX_HOUSEHOLDS = 10_000_000
#: A retail price above this is a typo (¥100,000 for one unit of produce).
MAX_PRICE_FEN = 10_000_000

#: The text fields of a listing: name -> (maximum length, required).
TEXT_FIELDS = {
    "name_zh": (128, True),
    "name_en": (128, False),
    "description_zh": (4000, False),
    "description_en": (4000, False),
    "storage_zh": (128, False),
    "county_zh": (64, False),
    "cooperative_zh": (128, False),
    "certifications": (255, False),
}


class ReviewReason:
    NEW = "new"
    RETAIL_PRICE = "retail_price"
    BULK_PRICES = "bulk_prices"

    LABELS = {
        NEW: _l("New product"),
        RETAIL_PRICE: _l("Retail price changed by more than the allowed share"),
        BULK_PRICES: _l("Bulk prices changed by more than the allowed share"),
    }


def reason_labels(reasons: Iterable[str]) -> list:
    return [ReviewReason.LABELS.get(reason, reason) for reason in reasons]


@dataclass(frozen=True)
class Listing:
    """A validated listing. JSON-safe through `as_data` (quantities as strings)."""

    code: str
    name_zh: str
    category_id: int
    origin_region_id: int
    unit: Unit
    retail_price_fen: int
    name_en: str = ""
    description_zh: str = ""
    description_en: str = ""
    content_amount: int | None = None
    content_unit: ContentUnit | None = None
    case_size: Decimal | None = None
    min_bulk_quantity: Decimal | None = None
    #: (minimum quantity, unit price in fen), quantities increasing.
    tiers: tuple[tuple[Decimal, int], ...] = ()
    lead_time_days: int = 2
    shelf_life_days: int | None = None
    storage_zh: str = ""
    county_zh: str = ""
    cooperative_zh: str = ""
    households_benefited: int = 0
    certifications: str = ""

    def as_data(self) -> dict:
        data = asdict(self)
        data["unit"] = self.unit.value
        data["content_unit"] = self.content_unit.value if self.content_unit else None
        for key in ("case_size", "min_bulk_quantity"):
            data[key] = None if data[key] is None else str(data[key])
        data["tiers"] = [[str(quantity), price] for quantity, price in self.tiers]
        return data

    @classmethod
    def from_data(cls, data: Mapping) -> Listing:
        values = dict(data)
        values["unit"] = Unit(values["unit"])
        values["content_unit"] = (
            ContentUnit(values["content_unit"]) if values.get("content_unit") else None
        )
        for key in ("case_size", "min_bulk_quantity"):
            values[key] = None if values.get(key) is None else Decimal(values[key])
        values["tiers"] = tuple((Decimal(q), int(p)) for q, p in values.get("tiers", ()))
        known = cls.__dataclass_fields__.keys()
        return cls(**{key: value for key, value in values.items() if key in known})

    @classmethod
    def of_product(cls, product: Product) -> Listing:
        return cls(
            code=product.code,
            name_zh=product.name_zh,
            name_en=product.name_en,
            description_zh=product.description_zh,
            description_en=product.description_en,
            category_id=product.category_id,
            origin_region_id=product.origin_region_id,
            unit=product.unit,
            retail_price_fen=product.retail_price_fen,
            content_amount=product.content_amount,
            content_unit=product.content_unit,
            case_size=product.case_size,
            min_bulk_quantity=product.min_bulk_quantity,
            tiers=tuple((tier.min_quantity, tier.unit_price_fen) for tier in product.price_tiers),
            lead_time_days=product.lead_time_days,
            shelf_life_days=product.shelf_life_days,
            storage_zh=product.storage_zh,
            county_zh=product.county_zh,
            cooperative_zh=product.cooperative_zh,
            households_benefited=product.households_benefited,
            certifications=product.certifications,
        )


@dataclass
class ListingChoices:
    """What the category, origin and unit fields may name (by id, code, slug or name)."""

    categories: dict[str, int] = field(default_factory=dict)
    regions: dict[str, int] = field(default_factory=dict)

    @classmethod
    def load(cls, session: Session) -> ListingChoices:
        choices = cls()
        for category in session.scalars(sa.select(Category)):
            for name in (str(category.id), category.slug, category.name_zh, category.name_en):
                if name:
                    choices.categories[name.strip().lower()] = category.id
        for region in session.scalars(sa.select(Region)):
            for name in (str(region.id), region.code, region.name_zh, region.name_en):
                if name:
                    choices.regions[name.strip().lower()] = region.id
        return choices


_UNIT_NAMES = {
    **{unit.value: unit for unit in Unit},
    "斤": Unit.JIN,
    "公斤": Unit.KG,
    "千克": Unit.KG,
    "盒": Unit.BOX,
    "瓶": Unit.BOTTLE,
    "箱": Unit.CASE,
    "袋": Unit.BAG,
    "个": Unit.PIECE,
    "件": Unit.PIECE,
}
_CONTENT_UNIT_NAMES = {
    **{unit.value: unit for unit in ContentUnit},
    "克": ContentUnit.GRAM,
    "毫升": ContentUnit.MILLILITRE,
    "个": ContentUnit.PIECE,
}
_TIER_SEPARATORS = re.compile(r"[;；\n]+")


def _text(raw: Mapping[str, str], name: str, *, fold: bool = True) -> str:
    """The field's text, stripped. `fold` turns full-width digits, letters and signs (what a
    Chinese input method types) into ASCII: right for codes, numbers and names looked up in a
    list, wrong for prose, whose ，and （） must stay as typed."""
    value = raw.get(name)
    if value is None:
        return ""
    text = str(value)
    return (unicodedata.normalize("NFKC", text) if fold else text).strip()


def _whole(text: str, low: int, high: int, message) -> int:
    # The length first: int() refuses a pasted number of more than 4,300 digits with a
    # ValueError, and anything past 30 digits is out of every range here anyway.
    if not text.isascii() or not text.isdigit() or len(text) > 30 or not low <= int(text) <= high:
        raise DomainError(message)
    return int(text)


def _price(text: str) -> int:
    try:
        fen = parse_yuan(text, max_fen=MAX_PRICE_FEN)
    except MoneyFormatError:
        raise DomainError(
            _l("Enter a price in yuan with at most two decimals, such as 38 or 38.50.")
        ) from None
    if fen <= 0:
        raise DomainError(_l("A price must be above zero."))
    return fen


def _quantity(text: str) -> Decimal | None:
    try:
        value = parse_quantity(text)
    except QuantityError as error:
        raise DomainError(error.message) from None
    if value is not None and value <= 0:
        raise DomainError(_l("Enter a quantity above zero."))
    return value


def parse_tiers(text: str) -> tuple[tuple[Decimal, int], ...]:
    """ "10:45.00; 50:42" (minimum quantity : unit price), as typed in a file cell."""
    pairs = []
    for chunk in _TIER_SEPARATORS.split(unicodedata.normalize("NFKC", text or "")):
        if not chunk.strip():
            continue
        quantity, separator, price = chunk.partition(":")
        if not separator:
            raise DomainError(
                _l("Write each tier as minimum quantity:price, separated by semicolons.")
            )
        pairs.append((quantity.strip(), price.strip()))
    return check_tiers(pairs)


def check_tiers(pairs: Iterable[tuple[str, str]]) -> tuple[tuple[Decimal, int], ...]:
    """Tiers from (quantity text, price text) pairs; empty pairs are skipped."""
    tiers = []
    for quantity_text, price_text in pairs:
        if not quantity_text and not price_text:
            continue
        if not quantity_text or not price_text:
            raise DomainError(_l("Each tier needs both a minimum quantity and a price."))
        quantity = _quantity(quantity_text)
        tiers.append((quantity, _price(price_text)))
    if len(tiers) > MAX_TIERS:
        raise DomainError(_l("At most %(count)s price tiers.", count=MAX_TIERS))
    for (low, low_price), (high, high_price) in pairwise(tiers):
        if high <= low:
            raise DomainError(_l("Tier quantities must increase from one tier to the next."))
        if high_price > low_price:
            raise DomainError(_l("A larger quantity cannot cost more per unit than a smaller one."))
    return tuple(tiers)


def parse_listing(
    raw: Mapping[str, str],
    choices: ListingChoices,
    *,
    tiers: tuple[tuple[Decimal, int], ...] | None = None,
) -> Listing:
    """A Listing from text fields, or LineErrors {field: message} naming every bad field.

    The fields are named as the form's and the import file's columns: code, name_zh, ...,
    category (id, slug or name), origin (id, code or name), unit, retail_price (yuan),
    content_amount, content_unit, case_size, min_bulk_quantity, tiers, lead_time_days,
    shelf_life_days, households_benefited.

    `tiers` is given already checked by a form with one box per tier; otherwise the "tiers"
    field is parsed as a file cell.
    """
    errors: dict[str, object] = {}
    values: dict[str, object] = {}

    def check(name, parse, value_name=None, fold=True):
        try:
            values[value_name or name] = parse(_text(raw, name, fold=fold))
        except DomainError as error:
            errors[name] = error.message

    def code(text):
        text = text.upper()
        if not CODE_PATTERN.match(text):
            raise DomainError(_l("2 to 32 capital letters, digits, - or _, such as DZ-TEA-01."))
        return text

    check("code", code)
    for name, (length, required) in TEXT_FIELDS.items():

        def text(value, length=length, required=required):
            if required and not value:
                raise DomainError(_l("This field is required."))
            if len(value) > length:
                raise DomainError(_l("At most %(count)s characters.", count=length))
            return value

        check(name, text, fold=False)

    def lookup(table, message):
        def parse(text):
            found = table.get(text.lower()) if text else None
            if found is None:
                raise DomainError(message)
            return found

        return parse

    check(
        "category",
        lookup(choices.categories, _l("Choose a category from the list.")),
        "category_id",
    )
    check(
        "origin", lookup(choices.regions, _l("Choose an origin from the list.")), "origin_region_id"
    )
    check("unit", lookup(_UNIT_NAMES, _l("Choose a unit from the list.")))
    check("retail_price", _price, "retail_price_fen")
    check(
        "content_amount",
        lambda text: (
            _whole(text, 1, 1_000_000, _l("Enter a whole number above zero.")) if text else None
        ),
    )
    check(
        "content_unit",
        lambda text: (
            lookup(_CONTENT_UNIT_NAMES, _l("Choose a unit from the list."))(text) if text else None
        ),
    )
    check("case_size", _quantity)
    check("min_bulk_quantity", _quantity)
    if tiers is None:
        check("tiers", parse_tiers)
    else:
        values["tiers"] = tiers
    check(
        "lead_time_days",
        lambda text: _whole(
            text or "2",
            0,
            MAX_LEAD_TIME_DAYS,
            _l("Enter whole days from 0 to %(max)s.", max=MAX_LEAD_TIME_DAYS),
        ),
    )
    check(
        "shelf_life_days",
        lambda text: (
            _whole(
                text,
                1,
                MAX_SHELF_LIFE_DAYS,
                _l("Enter whole days from 1 to %(max)s.", max=MAX_SHELF_LIFE_DAYS),
            )
            if text
            else None
        ),
    )
    check(
        "households_benefited",
        lambda text: _whole(
            text or "0", 0, MAX_HOUSEHOLDS, _l("Enter a whole number of zero or more.")
        ),
    )
    if errors:
        raise LineErrors(errors)
    _check_consistency(values, errors)
    if errors:
        raise LineErrors(errors)
    return Listing(**values)


def _check_consistency(values: dict, errors: dict) -> None:
    """Rules across fields; errors are keyed by the field to correct."""
    if (values["content_amount"] is None) != (values["content_unit"] is None):
        errors["content_amount"] = _l("Give the net content with its unit, or neither.")
    tiers, case_size = values["tiers"], values["case_size"]
    if tiers and case_size is None:
        errors["case_size"] = _l("Bulk prices need a case size.")
    if case_size is not None and not tiers:
        errors["tiers"] = _l("A case size needs at least one bulk price tier.")
    unit = values["unit"]
    if case_size is not None and not unit.is_weight and case_size != case_size.to_integral():
        errors["case_size"] = _l("Only weights can be split; enter whole units.")
    if tiers and values["retail_price_fen"] < tiers[0][1]:
        errors["tiers"] = _l("A bulk price cannot be above the retail price.")


# --- saving -----------------------------------------------------------------------------------


def _price_moved(old: int, new: int, percent: int) -> bool:
    return abs(new - old) * 100 > old * percent


def review_reasons(product: Product | None, listing: Listing, percent: int) -> list[str]:
    """Why this listing needs a coordinator before buyers see it ([] when it does not)."""
    if product is None or product.status != ProductStatus.ACTIVE:
        return [ReviewReason.NEW]
    reasons = []
    if _price_moved(product.retail_price_fen, listing.retail_price_fen, percent):
        reasons.append(ReviewReason.RETAIL_PRICE)
    for quantity, price in listing.tiers:
        # Compared with what the same quantity costs today; a product without bulk terms
        # offering them for the first time is a new price too.
        before = tier_price(product, quantity)
        if before is None or _price_moved(before, price, percent):
            reasons.append(ReviewReason.BULK_PRICES)
            break
    return reasons


def _apply(session: Session, product: Product, listing: Listing, now: datetime) -> None:
    data = listing.as_data()
    for name in (
        "name_zh",
        "name_en",
        "description_zh",
        "description_en",
        "category_id",
        "origin_region_id",
        "retail_price_fen",
        "content_amount",
        "lead_time_days",
        "shelf_life_days",
        "storage_zh",
        "county_zh",
        "cooperative_zh",
        "households_benefited",
        "certifications",
    ):
        setattr(product, name, data[name])
    product.unit = listing.unit
    product.content_unit = listing.content_unit
    product.case_size = listing.case_size
    product.min_bulk_quantity = listing.min_bulk_quantity
    wanted = dict(listing.tiers)
    for tier in list(product.price_tiers):
        if tier.min_quantity in wanted:
            tier.unit_price_fen = wanted.pop(tier.min_quantity)
        else:
            product.price_tiers.remove(tier)
    for quantity, price in wanted.items():
        product.price_tiers.append(PriceTier(min_quantity=quantity, unit_price_fen=price))
    product.price_tiers.sort(key=lambda tier: tier.min_quantity)
    product.updated_at = now
    session.flush()
    # The relationships the search text reads must be the new ones, not the cached old ones.
    session.refresh(product, ["supplier", "origin_region", "category"])
    search.refresh_search_text(product)
    note_catalog_change(session)


def _supplier_of(actor: Actor) -> int:
    if not actor.has_role(Role.SUPPLIER) or actor.organization_id is None:
        raise DomainError(_l("Only a supplier's own users keep its listings."))
    return actor.organization_id


def _code_taken(session: Session, code: str) -> bool:
    return session.scalar(sa.select(Product.id).where(Product.code == code)) is not None


def pending_revision(session: Session, product_id: int) -> ProductRevision | None:
    return session.scalar(
        sa.select(ProductRevision).where(
            ProductRevision.product_id == product_id,
            ProductRevision.status == RevisionStatus.PENDING,
        )
    )


def _withdraw_pending(session: Session, product_id: int) -> None:
    session.execute(
        sa.update(ProductRevision)
        .where(
            ProductRevision.product_id == product_id,
            ProductRevision.status == RevisionStatus.PENDING,
        )
        .values(status=RevisionStatus.WITHDRAWN)
        .execution_options(synchronize_session="fetch")
    )


def create(
    session: Session, actor: Actor, listing: Listing, now: datetime, *, tell: bool = True
) -> tuple[Product, ProductRevision]:
    """A new product of the actor's supplier, unlisted until a coordinator approves it.

    `tell=False` leaves telling the coordinators to the caller (an import tells them once).
    """
    supplier_id = _supplier_of(actor)
    if _code_taken(session, listing.code):
        raise DomainError(_l("Another product already has this code."), field="code")
    product = Product(
        code=listing.code,
        supplier_id=supplier_id,
        status=ProductStatus.PENDING_REVIEW,
        stock=Decimal(0),
        created_at=now,
        updated_at=now,
    )
    session.add(product)
    _apply(session, product, listing, now)
    revision = _new_revision(session, product, actor, listing, [ReviewReason.NEW], now)
    if tell:
        _tell_coordinators(session, revision, now)
    return product, revision


def edit(
    session: Session,
    product: Product,
    actor: Actor,
    listing: Listing,
    now: datetime,
    percent: int,
    *,
    tell: bool = True,
) -> ProductRevision:
    """Save the supplier's new version: applied now, or waiting for review (see module doc)."""
    if product.supplier_id != _supplier_of(actor):
        raise NotFound(_l("This product does not exist or is no longer on sale."))
    if product.status == ProductStatus.ARCHIVED:
        raise DomainError(_l("Restore the product before editing it."))
    if listing.code != product.code:
        raise DomainError(_l("A product's code cannot change."), field="code")
    reasons = review_reasons(product, listing, percent)
    _withdraw_pending(session, product.id)
    if product.status != ProductStatus.ACTIVE:
        # Never approved: buyers see nothing of it yet, so the row holds the latest version.
        _apply(session, product, listing, now)
        product.status = ProductStatus.PENDING_REVIEW
    elif not reasons:
        _apply(session, product, listing, now)
    revision = _new_revision(session, product, actor, listing, reasons, now)
    if reasons and tell:
        _tell_coordinators(session, revision, now)
    return revision


def _new_revision(session, product, actor, listing, reasons, now) -> ProductRevision:
    revision = ProductRevision(
        product=product,
        status=RevisionStatus.PENDING if reasons else RevisionStatus.APPROVED,
        data=listing.as_data(),
        review_reasons=reasons,
        submitted_by_id=actor.id,
        submitted_at=now,
        reviewed_at=None if reasons else now,
    )
    session.add(revision)
    session.flush()
    return revision


def archive(session: Session, product: Product, actor: Actor, now: datetime) -> None:
    """Take a product off sale; a version waiting for review is withdrawn with it."""
    if product.supplier_id != _supplier_of(actor):
        raise NotFound(_l("This product does not exist or is no longer on sale."))
    if product.status == ProductStatus.ARCHIVED:
        raise DomainError(_l("This product is already off sale."))
    _withdraw_pending(session, product.id)
    product.status = ProductStatus.ARCHIVED
    product.updated_at = now
    note_catalog_change(session)


def restore(session: Session, product: Product, actor: Actor, now: datetime) -> None:
    """Put an archived product back: on sale if a coordinator approved it before, otherwise
    back to review."""
    if product.supplier_id != _supplier_of(actor):
        raise NotFound(_l("This product does not exist or is no longer on sale."))
    if product.status != ProductStatus.ARCHIVED:
        raise DomainError(_l("This product is not off sale."))
    statuses = set(
        session.scalars(
            sa.select(ProductRevision.status).where(ProductRevision.product_id == product.id)
        )
    )
    product.updated_at = now
    # No version at all: listed before reviews existed (the seeded catalog), so approved.
    if RevisionStatus.APPROVED in statuses or not statuses:
        product.status = ProductStatus.ACTIVE
    else:
        product.status = ProductStatus.PENDING_REVIEW
        revision = _new_revision(
            session, product, actor, Listing.of_product(product), [ReviewReason.NEW], now
        )
        _tell_coordinators(session, revision, now)
    note_catalog_change(session)


# Links are paths, not url_for(): `flask import-products` has no request to build URLs from.


# --- review -----------------------------------------------------------------------------------


def _reviewer(actor: Actor) -> None:
    if not actor.has_role(Role.COORDINATOR, Role.ADMIN):
        raise DomainError(_l("Only coordinators review listings."))


def _close(session: Session, revision: ProductRevision, status, actor, comment, now) -> None:
    """Compare-and-set: of two coordinators deciding at once, the second is told."""
    closed = session.execute(
        sa.update(ProductRevision)
        .where(ProductRevision.id == revision.id, ProductRevision.status == RevisionStatus.PENDING)
        .values(status=status, reviewed_by_id=actor.id, reviewed_at=now, review_comment=comment)
        .execution_options(synchronize_session="fetch")
    ).rowcount
    if closed != 1:
        raise DomainError(_l("This version was already decided or replaced by a newer one."))
    session.refresh(revision)


def approve(
    session: Session, revision: ProductRevision, actor: Actor, now: datetime, comment: str = ""
) -> None:
    """Put the version on sale: buyers see it from now on."""
    _reviewer(actor)
    _close(session, revision, RevisionStatus.APPROVED, actor, comment.strip(), now)
    product = revision.product
    _apply(session, product, Listing.from_data(revision.data), now)
    product.status = ProductStatus.ACTIVE
    _tell_supplier(session, revision, "listing_approved", now)


def send_back(
    session: Session, revision: ProductRevision, actor: Actor, now: datetime, comment: str
) -> None:
    """Return the version to the supplier with what to change; buyers keep what they saw."""
    _reviewer(actor)
    comment = comment.strip()
    if not comment:
        raise DomainError(_l("Say what the supplier should change."), field="comment")
    _close(session, revision, RevisionStatus.RETURNED, actor, comment, now)
    product = revision.product
    if product.status == ProductStatus.PENDING_REVIEW:
        product.status = ProductStatus.DRAFT
        product.updated_at = now
    _tell_supplier(session, revision, "listing_returned", now, comment=comment)


def _coordinators(session: Session) -> list[User]:
    return list(
        session.scalars(
            sa.select(User)
            .join(UserRole)
            .where(User.active.is_(True), UserRole.role == Role.COORDINATOR)
            .distinct()
        )
    )


def _tell_coordinators(session: Session, revision: ProductRevision, now: datetime) -> None:
    product = revision.product
    notify.notify(
        session,
        _coordinators(session),
        "listing_submitted",
        {"product": product.name_zh, "supplier": product.supplier.name_zh},
        link=f"/review/{revision.id}",
        now=now,
    )


def tell_coordinators_of_import(
    session: Session, supplier_id: int, waiting: int, now: datetime
) -> None:
    """One message for a whole imported file, not one per product."""
    if not waiting:
        return
    notify.notify(
        session,
        _coordinators(session),
        "listings_imported",
        {"supplier": session.get(Organization, supplier_id).name_zh, "count": waiting},
        link="/review/",
        now=now,
    )


def _tell_supplier(session, revision, kind, now, **params) -> None:
    product = revision.product
    notify.notify(
        session,
        notify.users_with(session, product.supplier_id, Role.SUPPLIER),
        kind,
        {"product": product.name_zh, **params},
        link=f"/supplier/products/{product.id}/edit",
        now=now,
    )


# --- reading ----------------------------------------------------------------------------------


def get_own_product(session: Session, actor: Actor, product_id: int) -> Product:
    """The actor's supplier's product; another supplier's is 'not found', not 'forbidden', so
    that changing the id in the address tells nothing."""
    product = session.scalar(
        sa.select(Product)
        .where(Product.id == product_id)
        .options(selectinload(Product.price_tiers), joinedload(Product.supplier))
    )
    if product is None or product.supplier_id != actor.organization_id:
        raise NotFound(_l("This product does not exist or is no longer on sale."))
    return product


def own_products(
    session: Session, actor: Actor, status: ProductStatus | None, page: int, per_page: int = 50
) -> Page[Product]:
    stmt = sa.select(Product).where(Product.supplier_id == actor.organization_id)
    if status is not None:
        stmt = stmt.where(Product.status == status)
    stmt = stmt.options(joinedload(Product.origin_region), joinedload(Product.category)).order_by(
        Product.updated_at.desc(), Product.id.desc()
    )
    return paginate(session, stmt, page, per_page)


def latest_revisions(session: Session, product_ids: Iterable[int]) -> dict[int, ProductRevision]:
    """Each product's newest revision, for the status column of the listings page."""
    ids = list(product_ids)
    if not ids:
        return {}
    newest = (
        sa.select(sa.func.max(ProductRevision.id))
        .where(ProductRevision.product_id.in_(ids))
        .group_by(ProductRevision.product_id)
    )
    return {
        revision.product_id: revision
        for revision in session.scalars(
            sa.select(ProductRevision).where(ProductRevision.id.in_(newest))
        )
    }


def history(session: Session, product_id: int, limit: int = 20) -> list[ProductRevision]:
    return list(
        session.scalars(
            sa.select(ProductRevision)
            .where(ProductRevision.product_id == product_id)
            .options(
                joinedload(ProductRevision.submitted_by), joinedload(ProductRevision.reviewed_by)
            )
            .order_by(ProductRevision.id.desc())
            .limit(limit)
        )
    )


def review_queue(session: Session, page: int, per_page: int = 50) -> Page[ProductRevision]:
    """Versions waiting for a coordinator, oldest first (first come, first reviewed)."""
    stmt = (
        sa.select(ProductRevision)
        .where(ProductRevision.status == RevisionStatus.PENDING)
        .options(
            joinedload(ProductRevision.product).joinedload(Product.supplier),
            joinedload(ProductRevision.submitted_by),
        )
        .order_by(ProductRevision.submitted_at, ProductRevision.id)
    )
    return paginate(session, stmt, page, per_page)


def get_revision(session: Session, revision_id: int) -> ProductRevision:
    revision = session.scalar(
        sa.select(ProductRevision)
        .where(ProductRevision.id == revision_id)
        .options(
            joinedload(ProductRevision.product).selectinload(Product.price_tiers),
            joinedload(ProductRevision.submitted_by),
        )
    )
    if revision is None:
        raise NotFound(_l("This version does not exist."))
    return revision


@dataclass(frozen=True)
class FieldChange:
    label: object
    before: str
    after: str

    @property
    def changed(self) -> bool:
        return self.before != self.after


def _display(session: Session, listing: Listing) -> dict[str, str]:
    category = session.get(Category, listing.category_id)
    region = session.get(Region, listing.origin_region_id)
    content = (
        f"{listing.content_amount} {CONTENT_UNIT_LABELS[listing.content_unit]}"
        if listing.content_unit
        else ""
    )
    return {
        "name_zh": listing.name_zh,
        "name_en": listing.name_en,
        "category": category.name_zh if category else "",
        "origin": region.name_zh if region else "",
        "unit": str(listing.unit.label),
        "retail_price": format_yuan(listing.retail_price_fen),
        "content": content,
        "case_size": fmt_quantity(listing.case_size) if listing.case_size else "",
        "min_bulk_quantity": (
            fmt_quantity(listing.min_bulk_quantity) if listing.min_bulk_quantity else ""
        ),
        "tiers": "; ".join(
            f"≥{fmt_quantity(quantity)}: {format_yuan(price)}" for quantity, price in listing.tiers
        ),
        "lead_time_days": str(listing.lead_time_days),
        "shelf_life_days": str(listing.shelf_life_days or ""),
        "storage_zh": listing.storage_zh,
        "county_zh": listing.county_zh,
        "cooperative_zh": listing.cooperative_zh,
        "households_benefited": str(listing.households_benefited),
        "certifications": listing.certifications,
        "description_zh": listing.description_zh,
        "description_en": listing.description_en,
    }


CONTENT_UNIT_LABELS = {
    ContentUnit.GRAM: _l("g"),
    ContentUnit.MILLILITRE: _l("ml"),
    ContentUnit.PIECE: _l("pieces"),
}

FIELD_LABELS = {
    "name_zh": _l("Name (Chinese)"),
    "name_en": _l("Name (English)"),
    "category": _l("Category"),
    "origin": _l("Origin"),
    "unit": _l("Unit"),
    "retail_price": _l("Retail price"),
    "content": _l("Net content"),
    "case_size": _l("Case size"),
    "min_bulk_quantity": _l("Minimum bulk quantity"),
    "tiers": _l("Bulk price tiers"),
    "lead_time_days": _l("Lead time (days)"),
    "shelf_life_days": _l("Shelf life (days)"),
    "storage_zh": _l("Storage"),
    "county_zh": _l("County"),
    "cooperative_zh": _l("Cooperative"),
    "households_benefited": _l("Households benefited"),
    "certifications": _l("Certifications"),
    "description_zh": _l("Description (Chinese)"),
    "description_en": _l("Description (English)"),
}


def compare(session: Session, revision: ProductRevision) -> list[FieldChange]:
    """The proposed version beside what buyers see now (empty 'before' for a new product)."""
    product = revision.product
    proposed = _display(session, Listing.from_data(revision.data))
    if product.status == ProductStatus.ACTIVE:
        current = _display(session, Listing.of_product(product))
    else:
        current = dict.fromkeys(proposed, "")
    return [FieldChange(FIELD_LABELS[key], current[key], proposed[key]) for key in proposed]
