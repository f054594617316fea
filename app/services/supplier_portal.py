"""What a supplier reads and keeps in its portal: its own products' stock and its dashboard.

Everything here is scoped to the acting supplier's organization. Another supplier's product is
NotFound, not PermissionDenied: a supplier is not told which ids belong to others.

Stock itself only ever changes through app.services.stock, the conditional UPDATE that orders
use too, so a supplier's correction and a buyer's order can never together take the stock
below zero, and every change leaves its StockMovement (who, when, why).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import Session, joinedload

from app.models import (
    BulkOrder,
    DeliveryStatus,
    LedgerMonth,
    Organization,
    Product,
    ProductRevision,
    ProductStatus,
    RevisionStatus,
    Role,
    StockMovement,
    StockReason,
    SupplierDelivery,
    Unit,
    User,
)
from app.services import stock
from app.services.accounts import Actor
from app.services.clock import local_date
from app.services.errors import DomainError, NotFound, PermissionDenied
from app.services.ledger import month_of, supplier_key
from app.services.pagination import Page, count, paginate
from app.signals import note_catalog_change

#: What the reference column of a stock movement holds; a longer reason would be cut.
MAX_REASON_LENGTH = 64
MAX_LEVEL = stock.MAX_QUANTITY
SALES_MONTHS = 12


class AdjustMode(enum.StrEnum):
    #: "+40" received, "-3" spoiled.
    CHANGE = "change"
    #: "37" counted on the shelf: the change is worked out from the level the page showed.
    COUNT = "count"

    @property
    def label(self):
        return {
            AdjustMode.CHANGE: _l("Change by (+/−)"),
            AdjustMode.COUNT: _l("Counted level"),
        }[self]


class StockBelowZero(DomainError):
    """A correction that would leave less than nothing; says what is there now."""

    status_code = 409


class NotKept(DomainError):
    """An archived product: off the stock page, so its stock is not corrected any more."""

    status_code = 409


# --- whose product ------------------------------------------------------------------------------


def supplier_of(actor: Actor) -> int:
    """The acting supplier's organization id; anyone else is refused."""
    if not actor.has_role(Role.SUPPLIER) or actor.organization_id is None:
        raise PermissionDenied(_l("Only a supplier's own accounts keep its products."))
    return actor.organization_id


def own_product(session: Session, actor: Actor, product_id: int) -> Product:
    supplier_id = supplier_of(actor)
    product = session.get(Product, product_id)
    if product is None or product.supplier_id != supplier_id:
        raise NotFound(_l("There is no such product among your listings."))
    return product


def _kept(session: Session, actor: Actor, product_id: int) -> Product:
    product = own_product(session, actor, product_id)
    if product.status == ProductStatus.ARCHIVED:
        raise NotKept(_l("This product is archived; its stock is no longer kept."))
    return product


def _flagged():
    """Out of stock, or at or below the supplier's own low-stock threshold."""
    return sa.or_(
        Product.stock <= 0,
        sa.and_(
            Product.low_stock_threshold.is_not(None),
            Product.stock <= Product.low_stock_threshold,
        ),
    )


# --- reading quantities ---------------------------------------------------------------------------

# Phones in Chinese input mode type full-width signs and points.
_NORMALISE = str.maketrans({"−": "-", "－": "-", "＋": "+", "．": ".", "。": "."})


def _number(raw: str | None, message, field_name: str) -> Decimal:
    text = (raw or "").strip().translate(_NORMALISE).replace(" ", "")
    try:
        value = Decimal(text)
    except (InvalidOperation, ValueError):
        raise DomainError(message, field=field_name) from None
    if not value.is_finite():
        raise DomainError(message, field=field_name)
    return value


def _fits_unit(value: Decimal, unit: Unit, field_name: str) -> Decimal:
    """Weight is kept to the gram (three decimals, as the stock service takes it); boxes,
    bottles and pieces are whole."""
    # copy_abs, not abs(): abs() rounds to the context and raises Overflow on 1e1000000000.
    if value.copy_abs() > MAX_LEVEL:
        raise DomainError(
            _l("That is more than the stock can hold (at most 999,999,999)."), field=field_name
        )
    if unit.is_weight:
        if value != value.quantize(stock.QUANTUM):
            raise DomainError(_l("At most three decimals."), field=field_name)
    elif value != value.to_integral_value():
        raise DomainError(
            _l("Stock in %(unit)s is kept in whole numbers.", unit=unit.label), field=field_name
        )
    # 40.000 and 4E+1 are 40: store and show them the same way.
    return value.quantize(stock.QUANTUM) if unit.is_weight else value.quantize(Decimal(1))


def parse_change(raw: str | None, unit: Unit) -> Decimal:
    value = _number(raw, _l("Enter the change as a number, such as +40 or -3."), "quantity")
    value = _fits_unit(value, unit, "quantity")
    if value == 0:
        raise DomainError(
            _l("A change of zero changes nothing: enter what came in (+) or went out (−)."),
            field="quantity",
        )
    return value


def parse_level(raw: str | None, unit: Unit, field_name: str = "quantity") -> Decimal:
    """A level that cannot be negative: a count, or a threshold."""
    value = _number(raw, _l("Enter a number, such as 37."), field_name)
    if value < 0:
        raise DomainError(_l("A level cannot be below zero."), field=field_name)
    return _fits_unit(value, unit, field_name)


def check_reason(reason: str | None) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise DomainError(
            _l('Say why, such as "received from the farm" or "spoiled".'), field="reason"
        )
    if len(reason) > MAX_REASON_LENGTH:
        raise DomainError(_l("At most %(n)d characters.", n=MAX_REASON_LENGTH), field="reason")
    return reason


def _seen_level(raw: str | None) -> Decimal:
    try:
        value = Decimal((raw or "").strip())
    except (InvalidOperation, ValueError):
        value = Decimal(-1)
    if not value.is_finite() or value < 0 or value > MAX_LEVEL:
        # Only a page from before this form existed, or a tampered one, sends this.
        raise DomainError(_l("The page was out of date. Reload it and enter your count again."))
    return value


def current_level(session: Session, product_id: int) -> Decimal:
    level = session.scalar(sa.select(Product.stock).where(Product.id == product_id))
    return Decimal(level).quantize(stock.QUANTUM)


# --- stock ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Adjustment:
    product: Product
    #: What was applied: 0 when a count matched the level the page showed.
    change: Decimal
    #: The level after it.
    level: Decimal
    #: For a count: how far orders (or anyone) moved the level between the page and the count.
    moved_meanwhile: Decimal = Decimal(0)


def adjust_stock(
    session: Session,
    actor: Actor,
    product_id: int,
    *,
    mode: AdjustMode | str,
    quantity: str,
    reason: str,
    seen: str | None = None,
    now: datetime,
) -> Adjustment:
    """Correct a product's stock by a change, or to a counted level, recording why.

    A count is turned into a change against the level the supplier saw when the page was
    drawn (`seen`), not against the level now: if an order took two boxes meanwhile, setting
    the level outright would give them back and sell them twice. The supplier's intended
    change (counted - seen) is applied on top of whatever orders did instead, through the
    same conditional UPDATE, so it can still never take the stock below zero.
    """
    product = _kept(session, actor, product_id)
    mode = AdjustMode(mode) if mode in AdjustMode._value2member_map_ else None
    if mode is None:
        raise DomainError(_l("Choose a change or a counted level."), field="mode")
    reason = check_reason(reason)
    if mode == AdjustMode.COUNT:
        seen_level = _seen_level(seen)
        change = parse_level(quantity, product.unit) - seen_level
        if change == 0:
            level = current_level(session, product.id)
            return Adjustment(product, Decimal(0), level, level - seen_level)
    else:
        seen_level = None
        change = parse_change(quantity, product.unit)
    if change > 0 and current_level(session, product.id) + change > MAX_LEVEL:
        raise DomainError(
            _l("That is more than the stock can hold (at most 999,999,999)."), field="quantity"
        )
    try:
        stock.adjust(session, product.id, change, now=now, actor_id=actor.id, reference=reason)
    except stock.OutOfStock:
        level = current_level(session, product.id)
        raise StockBelowZero(
            _l(
                "Only %(level)s %(unit)s in stock now: a change of %(change)s would leave "
                "less than zero. Nothing was changed.",
                level=_plain(level),
                unit=product.unit.label,
                change=signed(change),
            ),
            field="quantity",
        ) from None
    level = current_level(session, product.id)
    if product.status == ProductStatus.ACTIVE:
        # Buyers see "in stock / few left / sold out": a restock should show at once, not
        # when the cached catalog page expires.
        note_catalog_change(session)
    moved = (level - change - seen_level) if seen_level is not None else Decimal(0)
    return Adjustment(product, change, level, moved)


def set_threshold(session: Session, actor: Actor, product_id: int, raw: str | None):
    """Set (or, when empty, clear) the level at which the dashboard flags the product.

    One column is written; the stock is never written from a form, so a stale page cannot
    put back units an order took.
    """
    product = _kept(session, actor, product_id)
    text = (raw or "").strip()
    value = parse_level(text, product.unit, "threshold") if text else None
    session.execute(
        sa.update(Product)
        .where(Product.id == product.id, Product.supplier_id == product.supplier_id)
        .values(low_stock_threshold=value)
    )
    return product, value


def stock_page(
    session: Session, actor: Actor, page: int, *, only_flagged: bool = False, per_page: int = 50
) -> Page[Product]:
    """The supplier's products that are not archived, by name; or only those low or out."""
    stmt = (
        sa.select(Product)
        .where(
            Product.supplier_id == supplier_of(actor),
            Product.status != ProductStatus.ARCHIVED,
        )
        .order_by(Product.name_zh, Product.id)
    )
    if only_flagged:
        stmt = stmt.where(_flagged())
    return paginate(session, stmt, page, per_page)


@dataclass(frozen=True)
class HistoryRow:
    movement: StockMovement
    #: Whose correction it was; empty for orders (a buyer's name is not the supplier's to see).
    who: str
    #: The level right after this movement.
    level: Decimal


def stock_history(
    session: Session, actor: Actor, product_id: int, page: int, per_page: int = 30
) -> tuple[Product, Page[HistoryRow]]:
    """A product's stock movements, newest first, each with the level it left."""
    product = own_product(session, actor, product_id)
    stmt = (
        sa.select(StockMovement, User.name)
        .outerjoin(User, User.id == StockMovement.actor_id)
        .where(StockMovement.product_id == product.id)
        .order_by(StockMovement.id.desc())
    )
    result: Page[HistoryRow] = Page(
        items=[], page=page, per_page=per_page, total=count(session, stmt)
    )
    if page > result.pages:
        raise NotFound(_l("There is no page %(page)d.", page=page))
    rows = session.execute(stmt.limit(per_page).offset((page - 1) * per_page)).all()
    if not rows:
        return product, result
    # Counted back from the level now, in one statement (one snapshot): the movements after
    # this page, then each row of it. A product's first level was set when it was listed,
    # without a movement, so counting forward from zero would be wrong.
    newer = (
        sa.select(sa.func.coalesce(sa.func.sum(StockMovement.change), 0))
        .where(StockMovement.product_id == product.id, StockMovement.id > rows[0][0].id)
        .scalar_subquery()
    )
    level_now, newer_sum = session.execute(
        sa.select(Product.stock, newer).where(Product.id == product.id)
    ).one()
    level = _quantity(level_now) - _quantity(newer_sum)
    for movement, name in rows:
        is_correction = movement.reason == StockReason.ADJUSTMENT
        result.items.append(HistoryRow(movement, (name or "") if is_correction else "", level))
        level -= _quantity(movement.change)
    return product, result


def _quantity(value) -> Decimal:
    # SQLite sums NUMERIC as binary floats: 0.1 + 0.2 comes back as 0.30000000000000004.
    return Decimal(str(value)).quantize(stock.QUANTUM)


def _plain(value: Decimal) -> str:
    text = f"{value:f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def signed(value: Decimal) -> str:
    """+40, -3, +2.5: a change as a person writes it."""
    return ("+" if value > 0 else "") + _plain(value)


# --- the dashboard ------------------------------------------------------------------------------


#: The deliveries a supplier has to do something about, or is waiting on, in the order it
#: acts on them.
ACTION_STATUSES = (
    DeliveryStatus.NEW,
    DeliveryStatus.CONFIRMED,
    DeliveryStatus.CHANGES_PROPOSED,
)


@dataclass(frozen=True)
class DeliveryGroup:
    status: DeliveryStatus
    #: The soonest few.
    deliveries: list[SupplierDelivery]
    #: All of them.
    total: int


@dataclass(frozen=True)
class SalesRow:
    #: The ledger's product key: "p<id>", or "n<name>" for a product only named by an import.
    key: str
    name_zh: str
    name_en: str
    product_id: int | None
    #: Fen per month, aligned with SalesTable.months.
    months: list[int]
    total: int


@dataclass(frozen=True)
class SalesTable:
    #: The first day of each month, oldest first.
    months: list[date]
    rows: list[SalesRow]
    month_totals: list[int]
    total: int


@dataclass
class Dashboard:
    supplier: Organization
    today: date
    deliveries: list[DeliveryGroup]
    sales: SalesTable
    #: Products out of stock or at or below their threshold, out ones first.
    stock_warnings: list[Product]
    stock_warnings_total: int
    #: The latest version of each listing when it waits for review or was sent back.
    revisions: list[ProductRevision] = field(default_factory=list)

    @property
    def deliveries_to_act_on(self) -> int:
        return sum(group.total for group in self.deliveries)


def add_months(month: date, count: int) -> date:
    index = month.year * 12 + month.month - 1 + count
    return date(index // 12, index % 12 + 1, 1)


def _delivery_groups(session: Session, supplier_id: int, per_group: int) -> list[DeliveryGroup]:
    totals = dict(
        session.execute(
            sa.select(SupplierDelivery.status, sa.func.count())
            .where(
                SupplierDelivery.supplier_id == supplier_id,
                SupplierDelivery.status.in_(ACTION_STATUSES),
            )
            .group_by(SupplierDelivery.status)
        ).all()
    )
    groups = []
    for status in ACTION_STATUSES:
        deliveries = []
        if totals.get(status):
            deliveries = list(
                session.scalars(
                    sa.select(SupplierDelivery)
                    .join(SupplierDelivery.order)
                    .where(
                        SupplierDelivery.supplier_id == supplier_id,
                        SupplierDelivery.status == status,
                    )
                    .options(joinedload(SupplierDelivery.order).joinedload(BulkOrder.organization))
                    .order_by(BulkOrder.delivery_date, SupplierDelivery.id)
                    .limit(per_group)
                )
            )
        groups.append(DeliveryGroup(status, deliveries, totals.get(status, 0)))
    return groups


def sales_by_month(session: Session, supplier_id: int, today: date) -> SalesTable:
    """What counted for this supplier in the ledger, per product and month, for the last
    twelve months including this one (LedgerMonth: the ledger's own monthly sums)."""
    last = month_of(today)
    months = [add_months(last, offset) for offset in range(1 - SALES_MONTHS, 1)]
    column = {month: index for index, month in enumerate(months)}
    rows = session.execute(
        sa.select(
            LedgerMonth.product_key,
            LedgerMonth.month,
            sa.func.sum(LedgerMonth.amount_fen),
            sa.func.max(LedgerMonth.product_name),
        )
        .where(
            LedgerMonth.supplier_key == supplier_key(supplier_id, ""),
            LedgerMonth.month >= months[0],
            LedgerMonth.month <= last,
        )
        .group_by(LedgerMonth.product_key, LedgerMonth.month)
    ).all()
    amounts: dict[str, list[int]] = {}
    names: dict[str, str] = {}
    for key, month, amount, name in rows:
        amounts.setdefault(key, [0] * SALES_MONTHS)[column[month]] += int(amount or 0)
        names[key] = name or ""
    ids = [int(key[1:]) for key in amounts if key.startswith("p") and key[1:].isdigit()]
    products = {
        product_id: (name_zh, name_en)
        for product_id, name_zh, name_en in session.execute(
            sa.select(Product.id, Product.name_zh, Product.name_en).where(Product.id.in_(ids))
        )
    }
    table_rows = []
    for key, cells in amounts.items():
        product_id = int(key[1:]) if key.startswith("p") and key[1:].isdigit() else None
        name_zh, name_en = products.get(product_id, (names[key], ""))
        table_rows.append(SalesRow(key, name_zh, name_en, product_id, cells, sum(cells)))
    table_rows.sort(key=lambda row: (-row.total, row.name_zh, row.key))
    month_totals = [sum(row.months[index] for row in table_rows) for index in range(SALES_MONTHS)]
    return SalesTable(months, table_rows, month_totals, sum(month_totals))


def _stock_warnings(session: Session, supplier_id: int, limit: int) -> tuple[list[Product], int]:
    stmt = (
        sa.select(Product)
        .where(
            Product.supplier_id == supplier_id,
            Product.status != ProductStatus.ARCHIVED,
            _flagged(),
        )
        .order_by((Product.stock > 0), Product.name_zh, Product.id)
    )
    return list(session.scalars(stmt.limit(limit))), count(session, stmt)


def _revisions(session: Session, supplier_id: int, limit: int) -> list[ProductRevision]:
    latest = (
        sa.select(sa.func.max(ProductRevision.id))
        .join(Product, Product.id == ProductRevision.product_id)
        .where(Product.supplier_id == supplier_id)
        .group_by(ProductRevision.product_id)
    )
    return list(
        session.scalars(
            sa.select(ProductRevision)
            .where(
                ProductRevision.id.in_(latest),
                ProductRevision.status.in_((RevisionStatus.RETURNED, RevisionStatus.PENDING)),
            )
            .options(joinedload(ProductRevision.product))
            # Sent back first: those wait for the supplier, the others for a coordinator.
            .order_by(
                (ProductRevision.status == RevisionStatus.PENDING),
                ProductRevision.reviewed_at.desc(),
                ProductRevision.submitted_at.desc(),
            )
            .limit(limit)
        )
    )


def dashboard(session: Session, actor: Actor, now: datetime, per_group: int = 8) -> Dashboard:
    supplier_id = supplier_of(actor)
    today = local_date(now)
    warnings, warnings_total = _stock_warnings(session, supplier_id, limit=20)
    return Dashboard(
        supplier=session.get(Organization, supplier_id),
        today=today,
        deliveries=_delivery_groups(session, supplier_id, per_group),
        sales=sales_by_month(session, supplier_id, today),
        stock_warnings=warnings,
        stock_warnings_total=warnings_total,
        revisions=_revisions(session, supplier_id, limit=20),
    )
