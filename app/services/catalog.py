"""Browsing the catalog: what buyers may see, filters, sorting, pagination, unit prices."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from decimal import Decimal

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session, joinedload, selectinload

from app.models import (
    BULK_ROLES,
    Category,
    ContentUnit,
    Organization,
    OrgKind,
    Product,
    ProductStatus,
    Region,
    RegionKind,
    Role,
    Unit,
)
from app.services import search, search_index
from app.services.accounts import Actor
from app.services.errors import NotFound
from app.services.money import price_per
from app.services.pagination import Page, paginate


class Sort(enum.StrEnum):
    RELEVANCE = "relevance"
    NEWEST = "newest"
    PRICE_ASC = "price_asc"
    PRICE_DESC = "price_desc"
    POPULAR = "popular"

    @property
    def label(self):
        return {
            Sort.RELEVANCE: _l("Best match"),
            Sort.NEWEST: _l("Newest"),
            Sort.PRICE_ASC: _l("Price: low to high"),
            Sort.PRICE_DESC: _l("Price: high to low"),
            Sort.POPULAR: _l("Most popular"),
        }[self]


@dataclass(frozen=True)
class ProductFilters:
    query: str = ""
    region_kind: RegionKind | None = None
    region_code: str | None = None
    category_slug: str | None = None
    supplier_id: int | None = None
    in_stock_only: bool = False
    min_price_fen: int | None = None
    max_price_fen: int | None = None
    sort: Sort = Sort.NEWEST


class _Unindexed(sa.sql.expression.FunctionElement):
    """A column as an expression SQLite cannot serve from an index ("+column"); elsewhere
    the plain column."""

    inherit_cache = True

    def __init__(self, column):
        super().__init__(column)
        self.type = column.type


@compiles(_Unindexed)
def _plain(element, compiler, **kw):
    return compiler.process(element.clauses, **kw)


@compiles(_Unindexed, "sqlite")
def _plus(element, compiler, **kw):
    return "+" + compiler.process(element.clauses, **kw)


def sellable(scan: bool = False):
    """On sale, from a supplier that has not been disabled.

    `scan` for a search, which reads every product's text anyway: SQLite would otherwise
    walk the status (or supplier) index and fetch nearly every row one at a time, two to
    three times slower than reading the table in order (bench/search.py). PostgreSQL's
    planner reads the table in order by itself.
    """
    active_suppliers = sa.select(Organization.id).where(Organization.active.is_(True))
    status, supplier = Product.status, Product.supplier_id
    if scan:
        status, supplier = _Unindexed(status), _Unindexed(supplier)
    return sa.and_(status == ProductStatus.ACTIVE, supplier.in_(active_suppliers))


def _apply_filters(stmt: sa.Select, filters: ProductFilters) -> sa.Select:
    stmt = stmt.where(sellable())
    if filters.region_code or filters.region_kind:
        stmt = stmt.join(Product.origin_region)
    if filters.region_code:
        stmt = stmt.where(Region.code == filters.region_code)
    if filters.region_kind:
        stmt = stmt.where(Region.kind == filters.region_kind)
    if filters.category_slug:
        stmt = stmt.join(Product.category).where(Category.slug == filters.category_slug)
    if filters.supplier_id:
        stmt = stmt.where(Product.supplier_id == filters.supplier_id)
    if filters.in_stock_only:
        stmt = stmt.where(Product.stock > 0)
    if filters.min_price_fen is not None:
        stmt = stmt.where(Product.retail_price_fen >= filters.min_price_fen)
    if filters.max_price_fen is not None:
        stmt = stmt.where(Product.retail_price_fen <= filters.max_price_fen)
    return stmt


def _has_filters(filters: ProductFilters) -> bool:
    """Anything besides the query and the sort narrows the list."""
    return bool(
        filters.region_code
        or filters.region_kind
        or filters.category_slug
        or filters.supplier_id
        or filters.in_stock_only
        or filters.min_price_fen is not None
        or filters.max_price_fen is not None
    )


def _order_by(filters: ProductFilters) -> list:
    sort = Sort.NEWEST if filters.sort == Sort.RELEVANCE else filters.sort
    return {
        Sort.NEWEST: [Product.created_at.desc(), Product.id.desc()],
        Sort.PRICE_ASC: [Product.retail_price_fen.asc(), Product.id.desc()],
        Sort.PRICE_DESC: [Product.retail_price_fen.desc(), Product.id.desc()],
        Sort.POPULAR: [Product.popularity.desc(), Product.id.desc()],
    }[sort]  # each ends with the id: a stable order, so pages never repeat or skip items


def _ordered(
    index, found: search.Search, positions: set[int], sort: Sort, limit: int | None
) -> list[int]:
    """The found positions in the order of `sort`, as _order_by orders in SQL (RELEVANCE: the
    search's ranking); with `limit`, only the first ones."""
    if sort == Sort.RELEVANCE:
        return found.ranked(index, positions, limit)
    ids = index.ids
    if sort == Sort.NEWEST:
        created = index.created
        return sorted(positions, key=lambda i: (-created[i], -ids[i]))
    if sort == Sort.POPULAR:
        return sorted(positions)  # the index's own order: most bought, then newest id
    prices = index.prices
    sign = 1 if sort == Sort.PRICE_ASC else -1
    return sorted(positions, key=lambda i: (sign * prices[i], -ids[i]))


def browse(session: Session, filters: ProductFilters, page: int, per_page: int) -> Page[Product]:
    """One page of sellable products; raises NotFound past the last page."""
    if filters.query:
        return _search_page(session, filters, page, per_page)
    total = session.scalar(_apply_filters(sa.select(sa.func.count(Product.id)), filters)) or 0
    stmt = (
        _apply_filters(sa.select(Product), filters)
        .options(
            joinedload(Product.origin_region),
            joinedload(Product.supplier),
            selectinload(Product.photos),  # the card shows the main photo
        )
        .order_by(*_order_by(filters))
    )
    return paginate(session, stmt, page, per_page, total=total)


def _search_page(
    session: Session, filters: ProductFilters, page: int, per_page: int
) -> Page[Product]:
    """A page of search results, ranked (see app.services.search).

    Matching and ranking run over the in-memory index (app.services.search_index); the
    database is asked which of the matches pass the other filters (only when there are any:
    stock is never read from the index) and then for the page's products by id.
    """
    index = search_index.current(session)
    found = search.Search(filters.query, index.names)
    positions = found.positions(index)
    # Without other filters every position found is on the list: only the pages up to this
    # one need ordering. With them, the database decides which stay, so all are ordered.
    filtered = _has_filters(filters)
    limit = None if filtered else page * per_page
    ids = [index.ids[i] for i in _ordered(index, found, positions, filters.sort, limit)]
    if ids and filtered:
        passing = set()
        for start in range(0, len(ids), _ID_CHUNK):
            chunk = ids[start : start + _ID_CHUNK]
            passing.update(
                session.scalars(
                    _apply_filters(sa.select(Product.id), filters).where(Product.id.in_(chunk))
                )
            )
        ids = [id_ for id_ in ids if id_ in passing]
    total = len(ids) if filtered else len(positions)
    page_ids = ids[(page - 1) * per_page : page * per_page]
    if not page_ids:
        if page > 1:
            raise NotFound(_l("There is no page %(page)d.", page=page))
        return Page(items=[], page=page, per_page=per_page, total=0)
    products = session.scalars(
        # Sellable checked again: the index may be a few seconds older than the database.
        sa.select(Product)
        .where(Product.id.in_(page_ids), sellable())
        .options(
            joinedload(Product.origin_region),
            joinedload(Product.supplier),
            selectinload(Product.photos),  # the card shows the main photo
        )
    ).unique()
    by_id = {product.id: product for product in products}
    items = [by_id[id_] for id_ in page_ids if id_ in by_id]
    return Page(items=items, page=page, per_page=per_page, total=total)


#: Ids per IN (...) list (SQLite and drivers limit parameters).
_ID_CHUNK = 900


@dataclass(frozen=True)
class Suggestion:
    product_id: int
    name_zh: str
    name_en: str
    origin_zh: str
    origin_en: str
    supplier_zh: str
    supplier_en: str


def suggestions(session: Session, query: str, limit: int = 8) -> list[Suggestion]:
    """The best `limit` sellable matches as you type, ranked as a search is.

    This runs on every key press: it reads only the in-memory index, no database at all.
    """
    if not query:
        return []
    index = search_index.current(session)
    found = search.Search(query, index.names)
    # One letter is in nearly every name: suggest only the names that start with it, which
    # are what the first key press means.
    one_letter = len(query) == 1 and query.isascii()
    positions = found.name_starts(index) if one_letter else found.positions(index)
    names = index.names_by_id
    result = []
    for i in found.ranked(index, positions, limit):
        origin = names.get(("region", index.region_ids[i]), ("", ""))
        supplier = names.get(("supplier", index.supplier_ids[i]), ("", ""))
        result.append(
            Suggestion(index.ids[i], index.display_zh[i], index.display_en[i], *origin, *supplier)
        )
    return result


def closest(session: Session, query: str, limit: int = 8) -> list[Product]:
    """For a search that found nothing: sellable products sharing the most pieces with it."""
    looser = search.looser_condition(query)
    if looser is None:
        return []
    condition, shared = looser
    stmt = (
        sa.select(Product)
        .where(condition, sellable(scan=True))
        .options(
            joinedload(Product.origin_region),
            joinedload(Product.supplier),
            selectinload(Product.photos),
        )
        .order_by(shared.desc(), Product.popularity.desc(), Product.id.desc())
        .limit(limit)
    )
    return list(session.scalars(stmt))


def featured(session: Session, region_kind: RegionKind, limit: int = 8) -> list[Product]:
    stmt = (
        sa.select(Product)
        .join(Product.origin_region)
        .where(sellable(), Region.kind == region_kind)
        .options(
            joinedload(Product.origin_region),
            joinedload(Product.supplier),
            selectinload(Product.photos),  # the card shows the main photo
        )
        .order_by(Product.featured.desc(), Product.popularity.desc(), Product.id)
        .limit(limit)
    )
    return list(session.scalars(stmt))


def filter_choices(session: Session) -> dict[str, list]:
    """Every region, category and supplier, for the filter form.

    All of them, not only those with something on sale today: a bookmarked link to a region
    that has sold out must show an empty list, not refuse the link.
    """
    return {
        "regions": list(session.scalars(sa.select(Region).order_by(Region.sort_order, Region.id))),
        "categories": list(
            session.scalars(sa.select(Category).order_by(Category.sort_order, Category.id))
        ),
        "suppliers": list(
            session.scalars(
                sa.select(Organization)
                .where(Organization.kind == OrgKind.SUPPLIER)
                .order_by(Organization.active.desc(), Organization.region_id, Organization.name_zh)
            )
        ),
    }


def can_view_unlisted(viewer: Actor | None, product: Product) -> bool:
    """Products not on sale are visible only to their supplier and the catalog's stewards."""
    if viewer is None:
        return False
    if viewer.has_role(Role.COORDINATOR, Role.ADMIN):
        return True
    return viewer.has_role(Role.SUPPLIER) and viewer.organization_id == product.supplier_id


def can_see_bulk_terms(viewer: Actor | None, product: Product) -> bool:
    if viewer is None:
        return False
    if not viewer.roles.isdisjoint(BULK_ROLES):
        return True
    return viewer.has_role(Role.SUPPLIER) and viewer.organization_id == product.supplier_id


def get_product_for_viewer(session: Session, product_id: int, viewer: Actor | None) -> Product:
    product = session.scalar(
        sa.select(Product)
        .where(Product.id == product_id)
        .options(
            joinedload(Product.origin_region),
            joinedload(Product.supplier),
            joinedload(Product.category),
            selectinload(Product.price_tiers),
        )
    )
    on_sale = product is not None and product.status == ProductStatus.ACTIVE
    if product is None or (
        not (on_sale and product.supplier.active) and not can_view_unlisted(viewer, product)
    ):
        raise NotFound(_l("This product does not exist or is no longer on sale."))
    return product


@dataclass(frozen=True)
class ReferencePrice:
    """The price of a common measure (per 斤, per litre, per piece) beside the pack price."""

    fen: int
    per: str


def reference_price(product: Product) -> ReferencePrice | None:
    if product.unit == Unit.KG:
        # Chinese shoppers compare by the 斤; show what a kg price means per 斤.
        return ReferencePrice(price_per(product.retail_price_fen, 1000, 500), "jin")
    if product.unit.is_weight or not product.content_amount or not product.content_unit:
        return None
    per = {
        ContentUnit.GRAM: (500, "jin"),
        ContentUnit.MILLILITRE: (1000, "litre"),
        ContentUnit.PIECE: (1, "piece"),
    }[product.content_unit]
    return ReferencePrice(
        price_per(product.retail_price_fen, product.content_amount, per[0]), per[1]
    )


def stock_state(product: Product) -> str:
    """'out', 'low' or 'in': buyers see a word, not a count that changes by the second."""
    if product.stock <= 0:
        return "out"
    if product.stock <= Decimal(5):
        return "low"
    return "in"


def audience(viewer: Actor | None) -> str | None:
    """Which shared version of a product page this viewer sees, or None if theirs is personal.

    Buyers see the same page as everyone of their kind ("public", or "bulk" with canteen
    prices); stewards and suppliers may see unlisted products and are never served a shared page.
    """
    if viewer is not None and viewer.has_role(Role.COORDINATOR, Role.ADMIN, Role.SUPPLIER):
        return None
    if viewer is not None and not viewer.roles.isdisjoint(BULK_ROLES):
        return "bulk"
    return "public"
