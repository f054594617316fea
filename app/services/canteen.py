"""Canteen bulk orders and their state machines: the only module that moves a bulk order.

Order: draft -> (submit) -> awaiting approval -> (approve) -> released, or straight to released
when its total is at most the approval threshold; awaiting approval -> (reject) -> rejected;
draft, rejected, awaiting approval or released-but-unconfirmed -> (reopen) -> draft; any of
those -> cancelled; released -> completed once every supplier delivery is received or
cancelled.

Supplier delivery (one per supplier of a released order): new -> confirmed, or new -> changes
proposed -> (buyer accepts or cancels each reduced line) -> confirmed (or cancelled if no line
is left); confirmed -> shipped -> received (goods-in signed off, which issues the invoice);
new -> withdrawn when the buyer reopens the order.

Every move checks who is acting and the current state, and is applied with a compare-and-set
UPDATE, so two people pressing buttons at once cannot both move the same state: the second is
told it was already done. Each move appends a BulkOrderEvent (who, when, from, to, reason).
Prices are decided here, at submission, and frozen into the lines.
"""

from __future__ import annotations

import secrets
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import Session, joinedload, selectinload

from app.models import (
    BulkOrder,
    BulkOrderEvent,
    BulkOrderLine,
    BulkOrderStatus,
    DeliveryStatus,
    Organization,
    OrgKind,
    PriceTier,
    Product,
    ProductStatus,
    Region,
    Role,
    SupplierDelivery,
    Unit,
    User,
)
from app.services import invoices, ledger, notify
from app.services.accounts import Actor
from app.services.clock import local_date
from app.services.errors import DomainError, LineErrors, NotFound, PermissionDenied
from app.services.money import format_yuan, line_total
from app.services.pagination import Page, paginate
from app.services.pricing import QuantityError, check_bulk_line, fmt_quantity, parse_quantity

BUYER_ROLES = (Role.CANTEEN_BUYER,)
MANAGER_ROLES = (Role.CANTEEN_MANAGER,)
#: May look at every canteen order and settle invoices.
STEWARD_ROLES = (Role.COORDINATOR, Role.ADMIN)
MAX_TEXT = {"po_reference": 64, "delivery_address": 255, "notes": 2000, "reason": 500}


class InvalidTransition(DomainError):
    """The order or delivery moved on in the meantime (perhaps someone else did it first)."""

    status_code = 409


@dataclass(frozen=True)
class CanteenPolicy:
    """Settings from the configuration that the rules depend on."""

    #: Orders above this total need the canteen manager's approval.
    approval_threshold_fen: int = 500_000
    #: A delivered quantity (accepted and refused) more than this percentage above the ordered
    #: one needs a reason.
    goods_in_tolerance_percent: int = 10
    #: More than this percentage of the ordered quantity is refused at goods-in even with a
    #: reason: it is a typing error, not a delivery.
    goods_in_max_percent: int = 200

    @classmethod
    def from_config(cls, config) -> CanteenPolicy:
        return cls(
            approval_threshold_fen=int(config["CANTEEN_APPROVAL_THRESHOLD_FEN"]),
            goods_in_tolerance_percent=int(config["GOODS_IN_TOLERANCE_PERCENT"]),
            goods_in_max_percent=int(config["GOODS_IN_MAX_PERCENT"]),
        )


# --- who may do what -------------------------------------------------------------------------


def _is_member(actor: Actor, order: BulkOrder) -> bool:
    return actor.organization_id == order.organization_id


def can_view(actor: Actor, order: BulkOrder) -> bool:
    if actor.has_role(*STEWARD_ROLES):
        return True
    return _is_member(actor, order) and actor.has_role(*BUYER_ROLES, *MANAGER_ROLES)


def can_edit(actor: Actor, order: BulkOrder) -> bool:
    return _is_member(actor, order) and actor.has_role(*BUYER_ROLES)


def can_manage(actor: Actor, order: BulkOrder) -> bool:
    """Approve, reject and check goods in: the canteen's own manager."""
    return _is_member(actor, order) and actor.has_role(*MANAGER_ROLES)


def _require(allowed: bool, message=None) -> None:
    if not allowed:
        raise PermissionDenied(message or _l("You cannot do this for this order."))


def _require_canteen_buyer(session: Session, actor: Actor) -> Organization:
    organization = (
        session.get(Organization, actor.organization_id) if actor.organization_id else None
    )
    if (
        not actor.has_role(*BUYER_ROLES)
        or organization is None
        or organization.kind != OrgKind.CANTEEN
    ):
        raise PermissionDenied(_l("Only a canteen's buyers can place bulk orders."))
    return organization


# --- reading ---------------------------------------------------------------------------------


@dataclass(slots=True)
class SheetRow:
    """One product of the quick order sheet: plain values, no ORM object (2,000 of them)."""

    id: int
    code: str
    name_zh: str
    name_en: str
    unit: Unit
    region_zh: str
    region_en: str
    supplier_zh: str
    case_size: str  # as shown: "20", "2.5"
    minimum: str
    tiers: list[tuple[Decimal, int]]


def sheet_rows(
    session: Session,
    *,
    region_id: int | None = None,
    category_id: int | None = None,
    supplier_id: int | None = None,
    query: str = "",
) -> list[SheetRow]:
    """Everything the canteen can order in bulk now, in catalog order, read as plain rows.

    Two queries (products with their names joined in, then every tier of them) and no ORM
    entities: the sheet lists the whole bulk catalog, and building thousands of objects with
    their relationships was most of its time.
    """
    region = sa.orm.aliased(Region)
    stmt = (
        sa.select(
            Product.id,
            Product.code,
            Product.name_zh,
            Product.name_en,
            Product.unit,
            Product.case_size,
            Product.min_bulk_quantity,
            region.name_zh,
            region.name_en,
            Organization.name_zh,
        )
        .join(Organization, Product.supplier_id == Organization.id)
        .join(region, Product.origin_region_id == region.id)
        .where(
            Product.status == ProductStatus.ACTIVE,
            Product.case_size.is_not(None),
            Organization.active.is_(True),
        )
        .order_by(Product.category_id, Product.name_pinyin, Product.id)
    )
    if region_id:
        stmt = stmt.where(Product.origin_region_id == region_id)
    if category_id:
        stmt = stmt.where(Product.category_id == category_id)
    if supplier_id:
        stmt = stmt.where(Product.supplier_id == supplier_id)
    if query:
        like = f"%{query.strip().lower()}%"
        stmt = stmt.where(
            sa.or_(
                Product.name_zh.like(like),
                Product.search_keys.like(like),
                sa.func.lower(Product.code).like(like),
            )
        )
    products = session.execute(stmt).all()
    tiers: dict[int, list[tuple[Decimal, int]]] = defaultdict(list)
    tier_rows = session.execute(
        sa.select(PriceTier.product_id, PriceTier.min_quantity, PriceTier.unit_price_fen)
        .where(PriceTier.product_id.in_(stmt.with_only_columns(Product.id).order_by(None)))
        .order_by(PriceTier.product_id, PriceTier.min_quantity)
    )
    for product_id, min_quantity, price in tier_rows:
        tiers[product_id].append((Decimal(min_quantity), price))
    rows = []
    for pid, code, name_zh, name_en, unit, case, min_bulk, r_zh, r_en, supplier in products:
        if not tiers[pid]:
            continue  # no price tiers: not offered in bulk
        case = Decimal(case)
        minimum = fmt_quantity(max(Decimal(min_bulk or 0), tiers[pid][0][0], case))
        case = fmt_quantity(case)
        rows.append(
            SheetRow(
                pid, code, name_zh, name_en, unit, r_zh, r_en, supplier, case, minimum, tiers[pid]
            )
        )
    return rows


def get_order(session: Session, actor: Actor, order_id: int) -> BulkOrder:
    order = session.scalar(
        sa.select(BulkOrder)
        .where(BulkOrder.id == order_id)
        .options(
            selectinload(BulkOrder.lines).joinedload(BulkOrderLine.product),
            selectinload(BulkOrder.deliveries).joinedload(SupplierDelivery.supplier),
            selectinload(BulkOrder.events).joinedload(BulkOrderEvent.actor),
        )
    )
    if order is None or not can_view(actor, order):
        # Another canteen's order is "not found", not "forbidden": ids reveal nothing.
        raise NotFound(_l("There is no such bulk order."))
    return order


def get_delivery_for_supplier(session: Session, actor: Actor, delivery_id: int):
    delivery = session.scalar(
        sa.select(SupplierDelivery)
        .where(SupplierDelivery.id == delivery_id)
        .options(
            selectinload(SupplierDelivery.lines),
            joinedload(SupplierDelivery.order).joinedload(BulkOrder.organization),
        )
    )
    if (
        delivery is None
        or not actor.has_role(Role.SUPPLIER)
        or delivery.supplier_id != actor.organization_id
        or delivery.status == DeliveryStatus.WITHDRAWN
    ):
        raise NotFound(_l("There is no such delivery."))
    return delivery


def get_delivery(session: Session, actor: Actor, delivery_id: int) -> SupplierDelivery:
    """A delivery as the canteen (or a steward) sees it."""
    delivery = session.get(SupplierDelivery, delivery_id)
    if delivery is None or not can_view(actor, delivery.order):
        raise NotFound(_l("There is no such delivery."))
    return delivery


@dataclass
class OrderFilters:
    status: BulkOrderStatus | None = None
    supplier_id: int | None = None
    delivery_from: date | None = None
    delivery_to: date | None = None


def _filtered(stmt, filters: OrderFilters):
    if filters.status:
        stmt = stmt.where(BulkOrder.status == filters.status)
    if filters.supplier_id:
        stmt = stmt.where(
            sa.exists().where(
                SupplierDelivery.order_id == BulkOrder.id,
                SupplierDelivery.supplier_id == filters.supplier_id,
            )
            | sa.exists().where(
                BulkOrderLine.order_id == BulkOrder.id,
                BulkOrderLine.product_id == Product.id,
                Product.supplier_id == filters.supplier_id,
            )
        )
    if filters.delivery_from:
        stmt = stmt.where(BulkOrder.delivery_date >= filters.delivery_from)
    if filters.delivery_to:
        stmt = stmt.where(BulkOrder.delivery_date <= filters.delivery_to)
    return stmt


def visible_orders(session: Session, actor: Actor):
    stmt = sa.select(BulkOrder)
    if not actor.has_role(*STEWARD_ROLES):
        if not actor.has_role(*BUYER_ROLES, *MANAGER_ROLES) or actor.organization_id is None:
            return stmt.where(sa.false())
        stmt = stmt.where(BulkOrder.organization_id == actor.organization_id)
    return stmt


def list_orders(
    session: Session, actor: Actor, filters: OrderFilters, page: int, per_page: int = 30
) -> Page:
    stmt = _filtered(visible_orders(session, actor), filters).options(
        joinedload(BulkOrder.created_by), joinedload(BulkOrder.organization)
    )
    stmt = stmt.order_by(BulkOrder.delivery_date.desc().nulls_first(), BulkOrder.id.desc())
    return paginate(session, stmt, page, per_page)


def recent_orders(session: Session, actor: Actor, limit: int = 10) -> list[tuple[BulkOrder, int]]:
    """The canteen's latest orders with their number of lines, to copy from."""
    line_count = (
        sa.select(sa.func.count(BulkOrderLine.id))
        .where(BulkOrderLine.order_id == BulkOrder.id)
        .scalar_subquery()
    )
    stmt = (
        visible_orders(session, actor)
        .add_columns(line_count)
        .order_by(BulkOrder.id.desc())
        .limit(limit)
    )
    return [(order, count) for order, count in session.execute(stmt)]


def export_lines(session: Session, actor: Actor, filters: OrderFilters) -> list[BulkOrderLine]:
    orders = _filtered(visible_orders(session, actor), filters).with_only_columns(BulkOrder.id)
    return list(
        session.scalars(
            sa.select(BulkOrderLine)
            .where(BulkOrderLine.order_id.in_(orders.scalar_subquery()))
            .options(
                joinedload(BulkOrderLine.order),
                joinedload(BulkOrderLine.product).joinedload(Product.supplier),
            )
            .order_by(BulkOrderLine.order_id, BulkOrderLine.id)
        )
    )


def supplier_deliveries(
    session: Session, actor: Actor, status: DeliveryStatus | None, page: int, per_page: int = 30
) -> Page:
    if not actor.has_role(Role.SUPPLIER) or actor.organization_id is None:
        raise PermissionDenied(_l("Only suppliers have deliveries to fill."))
    stmt = (
        sa.select(SupplierDelivery)
        .join(SupplierDelivery.order)
        .where(
            SupplierDelivery.supplier_id == actor.organization_id,
            SupplierDelivery.status != DeliveryStatus.WITHDRAWN,
        )
        .options(
            joinedload(SupplierDelivery.order).joinedload(BulkOrder.organization),
            selectinload(SupplierDelivery.lines),
        )
        .order_by(BulkOrder.delivery_date, SupplierDelivery.id)
    )
    if status:
        stmt = stmt.where(SupplierDelivery.status == status)
    return paginate(session, stmt, page, per_page)


# --- history and state helpers ----------------------------------------------------------------


def _event(order, action, from_state, to_state, actor, now, reason="", delivery=None) -> None:
    order.events.append(
        BulkOrderEvent(
            action=action,
            from_state=from_state.value if from_state else None,
            to_state=to_state.value if to_state else None,
            actor_id=actor.id if actor else None,
            reason=reason,
            at=now,
            delivery=delivery,
        )
    )


def _cas(session: Session, row, column, expected, target, gone_message) -> None:
    """Move a state with UPDATE ... WHERE state = :expected; the loser of a race is told."""
    model = type(row)
    moved = session.execute(
        sa.update(model)
        .where(model.id == row.id, column == expected)
        .values({column.key: target})
        .execution_options(synchronize_session="fetch")
    ).rowcount
    if moved != 1:
        session.refresh(row)
        raise InvalidTransition(gone_message)


def _move_order(session, order, allowed, target, action, actor, now, reason="") -> None:
    current = order.status
    if current not in allowed:
        raise InvalidTransition(
            _l(
                "Order %(number)s is %(status)s; that cannot be done now.",
                number=order.number,
                status=current.label,
            )
        )
    _cas(
        session,
        order,
        BulkOrder.status,
        current,
        target,
        _l("Order %(number)s was changed by someone else in the meantime.", number=order.number),
    )
    _event(order, action, current, target, actor, now, reason)


def _move_delivery(session, delivery, allowed, target, action, actor, now, reason="") -> None:
    current = delivery.status
    if current not in allowed:
        raise InvalidTransition(
            _l(
                "This delivery is %(status)s; that cannot be done now.",
                status=current.label,
            )
        )
    _cas(
        session,
        delivery,
        SupplierDelivery.status,
        current,
        target,
        _l("This delivery was already handled by someone else."),
    )
    _event(delivery.order, action, current, target, actor, now, reason, delivery=delivery)


def _text(value: str | None, name: str, required: bool = False) -> str:
    value = (value or "").strip()
    if required and not value:
        raise DomainError(_l("Give a reason."), field=name)
    if len(value) > MAX_TEXT.get(name, 255):
        raise DomainError(_l("At most %(n)d characters.", n=MAX_TEXT.get(name, 255)), field=name)
    return value


def _link(order: BulkOrder) -> str:
    return f"/canteen/orders/{order.id}"


# --- drafting --------------------------------------------------------------------------------


def _load_products(session: Session, ids) -> dict[int, Product]:
    return {
        product.id: product
        for product in session.scalars(
            sa.select(Product)
            .where(Product.id.in_(list(ids)))
            .options(selectinload(Product.price_tiers), joinedload(Product.supplier))
        ).unique()
    }


def _checked_quantities(session: Session, quantities: Mapping[int, object]) -> dict[int, Decimal]:
    """Parse and check every line; every refused line is reported, none is kept."""
    errors: dict[int, str] = {}
    parsed: dict[int, Decimal] = {}
    for product_id, raw in quantities.items():
        try:
            quantity = parse_quantity(raw)
        except QuantityError as error:
            errors[product_id] = str(error.message)
            continue
        if quantity:
            parsed[product_id] = quantity
    products = _load_products(session, parsed)
    for product_id, quantity in parsed.items():
        product = products.get(product_id)
        if product is None:
            errors[product_id] = str(_l("This product does not exist."))
            continue
        try:
            check_bulk_line(product, quantity)
        except QuantityError as error:
            errors[product_id] = str(error.message)
    if errors:
        raise LineErrors(errors)
    return parsed


def _new_number(order: BulkOrder, now: datetime) -> str:
    return f"C{local_date(now):%y%m%d}-{order.id:05d}"


def create_draft(
    session: Session, actor: Actor, now: datetime, quantities: Mapping[int, object]
) -> BulkOrder:
    """A new draft with these lines (product id -> quantity), for the buyer's canteen."""
    organization = _require_canteen_buyer(session, actor)
    checked = _checked_quantities(session, quantities)
    if not checked:
        raise DomainError(_l("Enter a quantity for at least one product."))
    order = BulkOrder(
        number=f"new-{secrets.token_hex(6)}",
        organization_id=organization.id,
        created_by_id=actor.id,
        status=BulkOrderStatus.DRAFT,
        delivery_address=organization.address,
        created_at=now,
        lines=[BulkOrderLine(product_id=pid, quantity=qty) for pid, qty in checked.items()],
    )
    session.add(order)
    session.flush()
    order.number = _new_number(order, now)
    _event(order, "create", None, BulkOrderStatus.DRAFT, actor, now)
    return order


def set_lines(
    session: Session,
    order: BulkOrder,
    actor: Actor,
    now: datetime,
    quantities: Mapping[int, object],
    *,
    replace: bool = True,
) -> None:
    """Change a draft's quantities; an empty or zero quantity removes the line.

    With replace=False, products not mentioned keep their lines (adding from the sheet).
    """
    _require(can_edit(actor, order), _l("Only the canteen's buyers can change this order."))
    if order.status != BulkOrderStatus.DRAFT:
        raise InvalidTransition(_l("Only a draft can be changed; reopen the order first."))
    removed = {pid for pid, raw in quantities.items() if not parse_quantity_or_none(raw)}
    checked = _checked_quantities(session, quantities)
    by_product = {line.product_id: line for line in order.lines}
    for product_id, line in by_product.items():
        if product_id in removed or (replace and product_id not in checked):
            order.lines.remove(line)
    for product_id, quantity in checked.items():
        if product_id in by_product and by_product[product_id] in order.lines:
            by_product[product_id].quantity = quantity
        else:
            order.lines.append(BulkOrderLine(product_id=product_id, quantity=quantity))


def parse_quantity_or_none(raw) -> Decimal | None:
    try:
        return parse_quantity(raw)
    except QuantityError:
        return Decimal(1)  # not empty: _checked_quantities reports it


def update_details(
    session: Session,
    order: BulkOrder,
    actor: Actor,
    *,
    delivery_date: date | None,
    delivery_address: str,
    po_reference: str,
    notes: str,
) -> None:
    _require(can_edit(actor, order), _l("Only the canteen's buyers can change this order."))
    if order.status != BulkOrderStatus.DRAFT:
        raise InvalidTransition(_l("Only a draft can be changed; reopen the order first."))
    order.delivery_date = delivery_date
    order.delivery_address = _text(delivery_address, "delivery_address")
    order.po_reference = _text(po_reference, "po_reference")
    order.notes = _text(notes, "notes")


def copy_order(
    session: Session, source: BulkOrder, actor: Actor, now: datetime
) -> tuple[BulkOrder, list[str]]:
    """A new draft with the lines of an earlier order (as ordered), at today's prices.

    Lines that can no longer be ordered as they were (product withdrawn, new case size) are
    left out and reported, so the copy itself is always a valid draft.
    """
    _require(can_edit(actor, source), _l("Only the canteen's buyers can copy its orders."))
    wanted = {line.product_id: (line.ordered_quantity or line.quantity) for line in source.lines}
    products = _load_products(session, wanted)
    usable: dict[int, Decimal] = {}
    skipped: list[str] = []
    for product_id, quantity in wanted.items():
        product = products.get(product_id)
        try:
            if product is None:
                raise QuantityError(_l("This product does not exist."))
            check_bulk_line(product, quantity)
        except QuantityError:
            skipped.append(product.name_zh if product else str(product_id))
            continue
        usable[product_id] = quantity
    if not usable:
        raise DomainError(_l("None of this order's products can be ordered as they were."))
    order = create_draft(session, actor, now, usable)
    order.delivery_address = source.delivery_address
    order.notes = source.notes
    return order, skipped


# --- submission and approval -----------------------------------------------------------------


def draft_estimates(order: BulkOrder) -> dict[int, tuple[int, int]]:
    """{line id: (unit price, amount)} at today's tiers for a draft's valid lines: what the
    buyer would pay if it were submitted now (submission decides; this only shows it)."""
    estimates = {}
    for line in order.lines:
        try:
            price = check_bulk_line(line.product, line.quantity)
        except QuantityError:
            continue
        estimates[line.id] = (price, line_total(price, line.quantity))
    return estimates


def earliest_delivery(session: Session, order: BulkOrder, now: datetime) -> dict[int, date]:
    """Per supplier id: the earliest date it can deliver (today + its longest lead time)."""
    today = local_date(now)
    lead: dict[int, int] = defaultdict(int)
    for line in order.open_lines:
        product = line.product
        lead[product.supplier_id] = max(lead[product.supplier_id], product.lead_time_days)
    return {supplier: today + timedelta(days=days) for supplier, days in lead.items()}


def _check_delivery_date(session: Session, order: BulkOrder, now: datetime) -> None:
    if order.delivery_date is None:
        raise DomainError(_l("Choose a delivery date."), field="delivery_date")
    today = local_date(now)
    if order.delivery_date < today:
        raise DomainError(_l("The delivery date is in the past."), field="delivery_date")
    earliest = earliest_delivery(session, order, now)
    too_soon = {sid: day for sid, day in earliest.items() if order.delivery_date < day}
    if too_soon:
        suppliers = {
            o.id: o
            for o in session.scalars(
                sa.select(Organization).where(Organization.id.in_(list(too_soon)))
            )
        }
        latest = max(too_soon.values())
        names = "、".join(suppliers[sid].name_zh for sid in sorted(too_soon))
        raise DomainError(
            _l(
                "Too soon for %(suppliers)s: the earliest possible delivery date is %(date)s.",
                suppliers=names,
                date=latest.isoformat(),
            ),
            field="delivery_date",
        )


def submit(
    session: Session, order: BulkOrder, actor: Actor, now: datetime, policy: CanteenPolicy
) -> None:
    """Freeze prices, check every rule, then send for approval or straight to the suppliers."""
    _require(can_edit(actor, order), _l("Only the canteen's buyers can submit this order."))
    if order.status != BulkOrderStatus.DRAFT:
        raise InvalidTransition(_l("Only a draft can be submitted."))
    if not order.lines:
        raise DomainError(_l("The order has no lines."))
    # The lines as they stand, checked and priced again now: the catalog may have moved since.
    checked = _checked_quantities(session, {line.product_id: line.quantity for line in order.lines})
    _check_delivery_date(session, order, now)
    total = 0
    for line in order.lines:
        product = line.product
        price = check_bulk_line(product, checked[line.product_id])
        line.unit_price_fen = price
        line.ordered_quantity = line.quantity
        line.product_code = product.code
        line.name_zh = product.name_zh
        line.name_en = product.name_en
        line.unit = product.unit
        line.supplier_id = product.supplier_id
        line.supplier_name_zh = product.supplier.name_zh
        line.origin_region_id = product.origin_region_id
        line.origin_region_name_zh = product.origin_region.name_zh
        total += line_total(price, line.quantity)
    order.total_fen = total
    order.submitted_at = now
    order.submitted_by_id = actor.id
    if total > policy.approval_threshold_fen:
        _move_order(
            session,
            order,
            {BulkOrderStatus.DRAFT},
            BulkOrderStatus.AWAITING_APPROVAL,
            "submit",
            actor,
            now,
        )
        # Not whoever placed it: they may not approve it themselves (see approve).
        managers = [
            user
            for user in notify.users_with(session, order.organization_id, Role.CANTEEN_MANAGER)
            if user.id not in (order.created_by_id, order.submitted_by_id)
        ]
        notify.notify(
            session,
            managers,
            "bulk_awaiting_approval",
            {"number": order.number, "total": format_yuan(total)},
            link=_link(order),
            now=now,
        )
    else:
        _move_order(
            session,
            order,
            {BulkOrderStatus.DRAFT},
            BulkOrderStatus.RELEASED,
            "submit",
            actor,
            now,
        )
        _release(session, order, now)


def needs_approval(order: BulkOrder, policy: CanteenPolicy) -> bool:
    return order.total_fen > policy.approval_threshold_fen


def approval_blocker(session: Session, order: BulkOrder, now: datetime):
    """Why an order waiting for approval cannot be released now, or None.

    It may have waited for days: released now, the suppliers must still be able to deliver on
    its date, as at submission. The order page shows this before the manager presses Approve.
    """
    if order.status != BulkOrderStatus.AWAITING_APPROVAL:
        return None
    try:
        _check_delivery_date(session, order, now)
    except DomainError as problem:
        return _l(
            "This order cannot be approved as it stands: %(problem)s Reject it, or have "
            "the buyer reopen it and choose a new delivery date.",
            problem=problem.message,
        )
    return None


def approve(session: Session, order: BulkOrder, actor: Actor, now: datetime) -> None:
    _require(can_manage(actor, order), _l("Only the canteen's manager can approve orders."))
    if actor.id in (order.submitted_by_id, order.created_by_id):
        raise PermissionDenied(_l("You cannot approve an order you placed yourself."))
    blocker = approval_blocker(session, order, now)
    if blocker is not None:
        raise InvalidTransition(blocker)
    _move_order(
        session,
        order,
        {BulkOrderStatus.AWAITING_APPROVAL},
        BulkOrderStatus.RELEASED,
        "approve",
        actor,
        now,
    )
    order.approved_at = now
    order.approved_by_id = actor.id
    _release(session, order, now)
    notify.notify(
        session,
        _buyers(session, order),
        "bulk_approved",
        {"number": order.number},
        link=_link(order),
        now=now,
    )


def reject(session: Session, order: BulkOrder, actor: Actor, now: datetime, reason: str) -> None:
    _require(can_manage(actor, order), _l("Only the canteen's manager can reject orders."))
    reason = _text(reason, "reason", required=True)
    if actor.id in (order.submitted_by_id, order.created_by_id):
        raise PermissionDenied(_l("You cannot reject an order you placed yourself."))
    _move_order(
        session,
        order,
        {BulkOrderStatus.AWAITING_APPROVAL},
        BulkOrderStatus.REJECTED,
        "reject",
        actor,
        now,
        reason,
    )
    notify.notify(
        session,
        _buyers(session, order),
        "bulk_rejected",
        {"number": order.number, "reason": reason},
        link=_link(order),
        now=now,
    )


def _buyers(session: Session, order: BulkOrder) -> list[User]:
    ids = {order.created_by_id, order.submitted_by_id} - {None}
    return list(session.scalars(sa.select(User).where(User.id.in_(ids), User.active.is_(True))))


def _release(session: Session, order: BulkOrder, now: datetime) -> None:
    """Split the order into one delivery per supplier and tell each supplier."""
    by_supplier: dict[int, list[BulkOrderLine]] = defaultdict(list)
    for line in order.open_lines:
        by_supplier[line.supplier_id].append(line)
    for supplier_id, lines in sorted(by_supplier.items()):
        delivery = SupplierDelivery(
            supplier_id=supplier_id, status=DeliveryStatus.NEW, created_at=now
        )
        # Into the session first, then the lines: appending loads order.deliveries, and the
        # autoflush of that load must not meet lines that point at a delivery it cannot save.
        order.deliveries.append(delivery)
        delivery.lines = lines
        session.flush()
        notify.notify(
            session,
            notify.users_with(session, supplier_id, Role.SUPPLIER),
            "delivery_new",
            {
                "number": order.number,
                "date": order.delivery_date.isoformat() if order.delivery_date else "",
                "lines": len(lines),
            },
            link=f"/supplier/deliveries/{delivery.id}",
            now=now,
        )


def _withdrawable(order: BulkOrder) -> bool:
    return all(d.status in (DeliveryStatus.NEW, DeliveryStatus.WITHDRAWN) for d in order.deliveries)


def _withdraw_deliveries(session, order, actor, now, reason) -> None:
    for delivery in order.deliveries:
        if delivery.status == DeliveryStatus.WITHDRAWN:
            continue
        _move_delivery(
            session,
            delivery,
            {DeliveryStatus.NEW},
            DeliveryStatus.WITHDRAWN,
            "withdraw",
            actor,
            now,
            reason,
        )
        for line in delivery.lines:
            line.delivery = None
        notify.notify(
            session,
            notify.users_with(session, delivery.supplier_id, Role.SUPPLIER),
            "delivery_withdrawn",
            {"number": order.number, "reason": reason or "—"},
            link="/supplier/deliveries",
            now=now,
        )


REOPENABLE = {
    BulkOrderStatus.AWAITING_APPROVAL,
    BulkOrderStatus.REJECTED,
    BulkOrderStatus.RELEASED,
}


def can_reopen(order: BulkOrder) -> bool:
    return order.status in REOPENABLE and _withdrawable(order)


def reopen(session: Session, order: BulkOrder, actor: Actor, now: datetime) -> None:
    """Back to a draft for editing, while no supplier has confirmed yet."""
    _require(can_edit(actor, order), _l("Only the canteen's buyers can change this order."))
    if order.status in REOPENABLE and not _withdrawable(order):
        raise InvalidTransition(
            _l("A supplier has already confirmed this order; it can no longer be edited.")
        )
    _move_order(session, order, REOPENABLE, BulkOrderStatus.DRAFT, "reopen", actor, now)
    _withdraw_deliveries(session, order, actor, now, str(_l("Reopened for editing")))
    for line in order.lines:
        line.unit_price_fen = None  # priced again at the next submission
        line.proposed_quantity = None
    order.total_fen = 0
    order.approved_at = order.approved_by_id = None


def cancel(session: Session, order: BulkOrder, actor: Actor, now: datetime, reason: str) -> None:
    _require(can_edit(actor, order), _l("Only the canteen's buyers can cancel this order."))
    reason = _text(reason, "reason", required=True)
    allowed = {BulkOrderStatus.DRAFT, *REOPENABLE}
    if order.status in REOPENABLE and not _withdrawable(order):
        raise InvalidTransition(
            _l("A supplier has already confirmed this order; cancel its lines instead.")
        )
    _move_order(session, order, allowed, BulkOrderStatus.CANCELLED, "cancel", actor, now, reason)
    _withdraw_deliveries(session, order, actor, now, reason)


# --- the supplier's side ----------------------------------------------------------------------


def confirm(
    session: Session,
    delivery: SupplierDelivery,
    actor: Actor,
    now: datetime,
    available: Mapping[int, object] | None = None,
    note: str = "",
) -> None:
    """The supplier confirms; for each line it can fill only in part it gives the quantity it
    can deliver, and the buyer then accepts or cancels that line."""
    if not actor.has_role(Role.SUPPLIER) or delivery.supplier_id != actor.organization_id:
        raise NotFound(_l("There is no such delivery."))
    note = _text(note, "note")
    proposals: dict[int, Decimal] = {}
    errors: dict[int, str] = {}
    lines = {line.id: line for line in delivery.open_lines}
    for line_id, raw in (available or {}).items():
        line = lines.get(line_id)
        if line is None:
            continue
        try:
            quantity = parse_quantity(raw)
        except QuantityError as error:
            errors[line_id] = str(error.message)
            continue
        if quantity is None or quantity == line.quantity:
            continue
        if quantity > line.quantity:
            errors[line_id] = str(_l("You can only offer less than was ordered."))
        else:
            proposals[line_id] = quantity
    if errors:
        raise LineErrors(errors)
    order = delivery.order
    if proposals:
        _move_delivery(
            session,
            delivery,
            {DeliveryStatus.NEW},
            DeliveryStatus.CHANGES_PROPOSED,
            "propose",
            actor,
            now,
            note,
        )
        for line_id, quantity in proposals.items():
            lines[line_id].proposed_quantity = quantity
            lines[line_id].proposal_note = note
        kind = "delivery_changes"
    else:
        _move_delivery(
            session,
            delivery,
            {DeliveryStatus.NEW},
            DeliveryStatus.CONFIRMED,
            "confirm",
            actor,
            now,
            note,
        )
        delivery.confirmed_at = now
        kind = "delivery_confirmed"
    notify.notify(
        session,
        _buyers(session, order),
        kind,
        {"number": order.number, "supplier": delivery.supplier.name_zh},
        link=_link(order),
        now=now,
    )


def _line_of(order: BulkOrder, line_id: int) -> BulkOrderLine:
    for line in order.lines:
        if line.id == line_id:
            return line
    raise NotFound(_l("There is no such line."))


def answer_proposal(
    session: Session, order: BulkOrder, line_id: int, actor: Actor, now: datetime, accept: bool
) -> None:
    """The buyer accepts a supplier's reduced quantity, or cancels the line."""
    _require(can_edit(actor, order), _l("Only the canteen's buyers can answer the supplier."))
    # One answer at a time per order: lock its row, then read its lines and deliveries again.
    # Two answers given at once would otherwise each see the other's line still open, and
    # neither would move the delivery on (nor would the total count both).
    session.execute(
        sa.update(BulkOrder)
        .where(BulkOrder.id == order.id)
        .values(total_fen=BulkOrder.total_fen)
        .execution_options(synchronize_session=False)
    )
    for model in (BulkOrderLine, SupplierDelivery):
        session.scalars(
            sa.select(model)
            .where(model.order_id == order.id)
            .execution_options(populate_existing=True)
        ).all()
    line = _line_of(order, line_id)
    delivery = line.delivery
    if (
        delivery is None
        or delivery.status != DeliveryStatus.CHANGES_PROPOSED
        or line.proposed_quantity is None
    ):
        raise InvalidTransition(_l("There is nothing to answer on this line any more."))
    quantity = line.proposed_quantity
    if accept and quantity > 0:
        reason = str(
            _l(
                "%(name)s: %(old)s → %(new)s accepted",
                name=line.name_zh,
                old=fmt_quantity(line.quantity),
                new=fmt_quantity(quantity),
            )
        )
        # The unit price stays as frozen: the buyer ordered at that tier, and the shortfall is
        # the supplier's, so a smaller quantity never makes the rest dearer.
        line.quantity = quantity
        action = "accept_reduction"
    else:
        line.cancelled = True
        reason = str(_l("%(name)s: line cancelled", name=line.name_zh))
        action = "cancel_line"
    line.proposed_quantity = None
    _event(order, action, None, None, actor, now, reason, delivery=delivery)
    order.total_fen = sum(line_total(x.unit_price_fen, x.quantity) for x in order.open_lines)
    if any(x.proposed_quantity is not None for x in delivery.lines):
        return
    if delivery.open_lines:
        _move_delivery(
            session,
            delivery,
            {DeliveryStatus.CHANGES_PROPOSED},
            DeliveryStatus.CONFIRMED,
            "confirm",
            actor,
            now,
        )
        delivery.confirmed_at = now
        kind = "delivery_agreed"
    else:
        _move_delivery(
            session,
            delivery,
            {DeliveryStatus.CHANGES_PROPOSED},
            DeliveryStatus.CANCELLED,
            "cancel",
            actor,
            now,
        )
        _maybe_complete(session, order, actor, now)
        kind = "delivery_cancelled"
    notify.notify(
        session,
        notify.users_with(session, delivery.supplier_id, Role.SUPPLIER),
        kind,
        {"number": order.number},
        link=f"/supplier/deliveries/{delivery.id}",
        now=now,
    )


def ship(
    session: Session,
    delivery: SupplierDelivery,
    actor: Actor,
    now: datetime,
    note_number: str,
    note: str = "",
) -> None:
    if not actor.has_role(Role.SUPPLIER) or delivery.supplier_id != actor.organization_id:
        raise NotFound(_l("There is no such delivery."))
    note_number = (note_number or "").strip()
    if not note_number:
        raise DomainError(_l("Enter the delivery note number."), field="delivery_note_number")
    if len(note_number) > 64:
        raise DomainError(_l("At most %(n)d characters.", n=64), field="delivery_note_number")
    note = _text(note, "note")
    _move_delivery(
        session,
        delivery,
        {DeliveryStatus.CONFIRMED},
        DeliveryStatus.SHIPPED,
        "ship",
        actor,
        now,
        note_number,
    )
    delivery.delivery_note_number = note_number
    delivery.shipping_note = note
    delivery.shipped_at = now
    order = delivery.order
    recipients = _buyers(session, order) + notify.users_with(
        session, order.organization_id, Role.CANTEEN_MANAGER
    )
    notify.notify(
        session,
        recipients,
        "delivery_shipped",
        {"number": order.number, "supplier": delivery.supplier.name_zh, "note": note_number},
        link=_link(order),
        now=now,
    )


# --- goods-in --------------------------------------------------------------------------------


@dataclass
class ReceivedLine:
    received: object  # as typed
    rejected: object = ""
    note: str = ""


@dataclass
class GoodsIn:
    lines: dict[int, ReceivedLine] = field(default_factory=dict)


def receive(
    session: Session,
    delivery: SupplierDelivery,
    actor: Actor,
    now: datetime,
    goods_in: Mapping[int, ReceivedLine],
    policy: CanteenPolicy,
):
    """Record what actually arrived, sign it off, and issue the supplier's invoice.

    Per line: the quantity accepted (billed), the quantity refused, and a note. What arrived is
    the two together: a refusal, or a delivery more than the tolerance above the ordered
    quantity, needs the note; a delivery above the ceiling (policy.goods_in_max_percent of the
    ordered quantity) is refused even with one. Two managers signing off at once: one UPDATE
    moves the delivery, the other is told it is done.
    """
    order = delivery.order
    _require(can_manage(actor, order), _l("Only the canteen's manager can check goods in."))
    if delivery.status != DeliveryStatus.SHIPPED:
        raise InvalidTransition(
            _l(
                "This delivery is %(status)s; it cannot be checked in now.",
                status=delivery.status.label,
            )
        )
    tolerance = Decimal(100 + policy.goods_in_tolerance_percent) / 100
    ceiling = Decimal(policy.goods_in_max_percent) / 100
    errors: dict[int, str] = {}
    values: dict[int, tuple[Decimal, Decimal, str]] = {}
    for line in delivery.open_lines:
        entry = goods_in.get(line.id)
        if entry is None:
            errors[line.id] = str(_l("Enter the quantity received."))
            continue
        try:
            received = parse_quantity(entry.received)
            rejected = parse_quantity(entry.rejected) or Decimal(0)
        except QuantityError as error:
            errors[line.id] = str(error.message)
            continue
        note = (entry.note or "").strip()
        if received is None:
            errors[line.id] = str(_l("Enter the quantity received (0 if nothing was accepted)."))
        elif len(note) > 255:
            errors[line.id] = str(_l("At most %(n)d characters.", n=255))
        elif received + rejected > line.quantity * ceiling:
            # No reason makes this right: 40,000 typed for 40.000 would be billed as given.
            errors[line.id] = str(
                _l(
                    "Accepted and refused together cannot be more than %(most)s "
                    "(%(percent)d%% of the %(ordered)s ordered); check the quantities.",
                    most=fmt_quantity(line.quantity * ceiling),
                    percent=policy.goods_in_max_percent,
                    ordered=fmt_quantity(line.quantity),
                )
            )
        elif rejected > 0 and not note:
            errors[line.id] = str(_l("Say why part of the delivery was refused."))
        elif received + rejected > line.quantity * tolerance and not note:
            errors[line.id] = str(
                _l(
                    "More than %(percent)d%% above the %(ordered)s ordered: give a reason.",
                    percent=policy.goods_in_tolerance_percent,
                    ordered=fmt_quantity(line.quantity),
                )
            )
        elif received == 0 and rejected == 0 and not note:
            errors[line.id] = str(_l("Nothing received: say why."))
        else:
            values[line.id] = (received, rejected, note)
    if errors:
        raise LineErrors(errors)
    _move_delivery(
        session,
        delivery,
        {DeliveryStatus.SHIPPED},
        DeliveryStatus.RECEIVED,
        "receive",
        actor,
        now,
    )
    for line in delivery.open_lines:
        line.received_quantity, line.rejected_quantity, line.goods_in_note = values[line.id]
    delivery.received_at = now
    delivery.received_by_id = actor.id
    invoice = invoices.issue_for_delivery(session, delivery, actor, now)
    ledger.bulk_received(session, delivery, invoice, actor, now)
    notify.notify(
        session,
        notify.users_with(session, delivery.supplier_id, Role.SUPPLIER),
        "delivery_received",
        {"number": order.number, "invoice": invoice.number},
        link=f"/invoices/{invoice.id}",
        now=now,
    )
    _maybe_complete(session, order, actor, now)
    return invoice


def _maybe_complete(session: Session, order: BulkOrder, actor: Actor, now: datetime) -> None:
    """Completed once nothing more will arrive; cancelled if nothing at all did."""
    live = [d for d in order.deliveries if d.status != DeliveryStatus.WITHDRAWN]
    if not live or any(d.status.is_open for d in live):
        return
    if all(d.status == DeliveryStatus.CANCELLED for d in live):
        target, action = BulkOrderStatus.CANCELLED, "cancel"
    else:
        target, action = BulkOrderStatus.COMPLETED, "complete"
    _move_order(session, order, {BulkOrderStatus.RELEASED}, target, action, actor, now)


def received_amount(line: BulkOrderLine) -> int | None:
    if line.received_quantity is None or line.unit_price_fen is None:
        return None
    return line_total(line.unit_price_fen, line.received_quantity)
