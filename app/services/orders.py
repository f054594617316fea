"""Retail orders and their state machines: the only module that moves an order.

An order has two small state machines. Fulfilment: placed -> ready -> handed over, or placed ->
cancelled. Payment: unpaid -> paid. Every move is a named function below that checks the order's
current state and who is acting, then writes an OrderEvent (who, when, from, to). Anything else
is refused with InvalidTransition. Stock leaves through app.services.stock when an order is
placed and comes back when it is cancelled, in the same transaction.
"""

from __future__ import annotations

import secrets
from datetime import datetime

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import Session, selectinload

from app.models import (
    CartLine,
    DeliveryPlace,
    Fulfilment,
    FulfilmentStatus,
    Order,
    OrderEvent,
    OrderLine,
    PaymentMethod,
    PaymentStatus,
    Role,
)
from app.services import cart, stock
from app.services.accounts import Actor
from app.services.clock import local_date
from app.services.errors import DomainError, NotFound, PermissionDenied
from app.services.money import line_total
from app.services.pagination import Page, paginate

#: Who works the counter's side of an order.
COUNTER_ROLES = (Role.COUNTER_CLERK, Role.COORDINATOR, Role.ADMIN)


class InvalidTransition(DomainError):
    """The order is not in a state that allows this (perhaps someone else moved it first)."""

    status_code = 409


#: The fulfilment moves: name -> (states it may start from, state it ends in).
STATUS_MOVES = {
    "mark_ready": ({FulfilmentStatus.PLACED}, FulfilmentStatus.READY),
    "hand_over": ({FulfilmentStatus.READY}, FulfilmentStatus.HANDED_OVER),
    "cancel": ({FulfilmentStatus.PLACED}, FulfilmentStatus.CANCELLED),
}


def _event(order: Order, machine: str, from_state, to_state, actor: Actor | None, now, note=""):
    """Append to the order's timeline: who moved which machine from where to where, when."""
    order.events.append(
        OrderEvent(
            machine=machine,
            from_state=from_state.value if from_state else None,
            to_state=to_state.value,
            actor_id=actor.id if actor else None,
            at=now,
            note=note,
        )
    )


def _compare_and_set(session: Session, order: Order, column, expected, target) -> None:
    """Move one state machine with UPDATE ... WHERE state = :expected.

    Two clerks pressing the same button at once: the database applies one UPDATE after the
    other and the second finds the state already moved, on SQLite and PostgreSQL alike.
    """
    moved = session.execute(
        sa.update(Order)
        .where(Order.id == order.id, column == expected)
        .values({column.key: target})
        .execution_options(synchronize_session="fetch")
    ).rowcount
    if moved != 1:
        session.refresh(order)
        raise InvalidTransition(
            _l(
                "Order %(number)s was changed in the meantime (now: %(status)s).",
                number=order.number,
                status=order.status.label,
            )
        )


def _move(session: Session, order: Order, move: str, actor: Actor, now: datetime) -> None:
    allowed_from, target = STATUS_MOVES[move]
    current = order.status
    if current not in allowed_from:
        raise InvalidTransition(
            _l(
                "Order %(number)s is %(status)s; that cannot be done now.",
                number=order.number,
                status=current.label,
            )
        )
    _compare_and_set(session, order, Order.status, current, target)
    _event(order, "status", current, target, actor, now)


def _require_counter(actor: Actor) -> None:
    if not actor.has_role(*COUNTER_ROLES):
        raise PermissionDenied(_l("Only the counter staff can do this."))


def _new_pickup_code() -> str:
    return f"{secrets.randbelow(1_000_000):06d}"


def place_order(
    session: Session,
    buyer: Actor,
    now: datetime,
    fulfilment: Fulfilment = Fulfilment.COUNTER_PICKUP,
    delivery_place_id: int | None = None,
) -> Order:
    """Turn the buyer's cart into an order, paid at the counter, picked up or delivered.

    Prices come from the catalog now, the lines keep a snapshot of them, and the stock is taken
    in this same transaction: if any line cannot be had, nothing is taken and nothing is placed.
    """
    view = cart.view(session, buyer)
    if not view.items:
        raise DomainError(_l("Your cart is empty."))
    if not view.can_check_out:
        raise DomainError(_l("Some products in your cart cannot be bought as they are."))
    place = None
    if fulfilment == Fulfilment.OFFICE_DELIVERY:
        place = session.get(DeliveryPlace, delivery_place_id) if delivery_place_id else None
        if place is None or not place.active:
            raise DomainError(_l("Choose the office to deliver to."), field="delivery_place_id")
    order = Order(
        number=f"new-{secrets.token_hex(6)}",  # replaced once the id is known, below
        pickup_code=_new_pickup_code(),
        buyer_id=buyer.id,
        buyer_organization_id=buyer.organization_id,
        status=FulfilmentStatus.PLACED,
        payment_status=PaymentStatus.UNPAID,
        payment_method=PaymentMethod.COUNTER,
        fulfilment=fulfilment,
        delivery_place_id=place.id if place else None,
        delivery_address=place.address if place else "",
        total_fen=0,
        placed_at=now,
    )
    for item in view.items:
        product = item.line.product
        order.lines.append(
            OrderLine(
                product_id=product.id,
                product_code=product.code,
                name_zh=product.name_zh,
                name_en=product.name_en,
                unit=product.unit,
                unit_price_fen=product.retail_price_fen,
                quantity=item.line.quantity,
                total_fen=line_total(product.retail_price_fen, item.line.quantity),
                origin_region_id=product.origin_region_id,
                origin_region_name_zh=product.origin_region.name_zh,
                supplier_id=product.supplier_id,
                supplier_name_zh=product.supplier.name_zh,
            )
        )
    order.total_fen = sum(line.total_fen for line in order.lines)
    _event(order, "status", None, FulfilmentStatus.PLACED, buyer, now)
    session.add(order)
    session.flush()
    order.number = f"{local_date(now):%y%m%d}-{order.id:05d}"
    for line in order.lines:
        stock.take(
            session,
            line.product_id,
            line.quantity,
            now=now,
            reference=order.number,
            actor_id=buyer.id,
        )
    session.execute(sa.delete(CartLine).where(CartLine.user_id == buyer.id))
    session.flush()
    return order


def cancel(session: Session, order: Order, actor: Actor, now: datetime) -> None:
    """The buyer (or the counter) cancels before the order is prepared; the stock goes back."""
    if actor.id != order.buyer_id:
        _require_counter(actor)
    if order.payment_status != PaymentStatus.UNPAID:
        raise InvalidTransition(_l("A paid order is refunded at the counter, not cancelled here."))
    _move(session, order, "cancel", actor, now)
    for line in order.lines:
        stock.give_back(
            session,
            line.product_id,
            line.quantity,
            now=now,
            reference=order.number,
            actor_id=actor.id,
        )
    session.flush()


def mark_ready(session: Session, order: Order, actor: Actor, now: datetime) -> None:
    _require_counter(actor)
    _move(session, order, "mark_ready", actor, now)
    session.flush()


def take_counter_payment(session: Session, order: Order, actor: Actor, now: datetime) -> None:
    """The clerk takes the money at the counter: who and when are kept on the order."""
    _require_counter(actor)
    if order.status == FulfilmentStatus.CANCELLED:
        raise InvalidTransition(_l("This order was cancelled."))
    if order.payment_status != PaymentStatus.UNPAID:
        raise InvalidTransition(_l("This order is already paid."))
    _compare_and_set(session, order, Order.payment_status, PaymentStatus.UNPAID, PaymentStatus.PAID)
    _event(order, "payment", PaymentStatus.UNPAID, PaymentStatus.PAID, actor, now)
    order.paid_at = now
    order.paid_by_id = actor.id
    session.flush()


def hand_over(session: Session, order: Order, actor: Actor, now: datetime) -> None:
    _require_counter(actor)
    if order.payment_status != PaymentStatus.PAID:
        raise InvalidTransition(_l("Take the payment before handing the order over."))
    _move(session, order, "hand_over", actor, now)
    session.flush()


def get_order(session: Session, order_id: int, viewer: Actor) -> Order:
    """An order its buyer or the counter may see; anyone else gets NotFound, not its data."""
    order = session.scalar(
        sa.select(Order)
        .where(Order.id == order_id)
        .options(selectinload(Order.lines), selectinload(Order.events))
    )
    if order is None or (order.buyer_id != viewer.id and not viewer.has_role(*COUNTER_ROLES)):
        raise NotFound(_l("No such order."))
    return order


def orders_of(session: Session, buyer: Actor, page: int, per_page: int) -> Page[Order]:
    stmt = (
        sa.select(Order)
        .where(Order.buyer_id == buyer.id)
        .options(selectinload(Order.lines))
        .order_by(Order.placed_at.desc(), Order.id.desc())
    )
    return paginate(session, stmt, page, per_page)


def counter_queue(session: Session) -> dict[str, list[Order]]:
    """Orders to prepare (oldest first) and orders waiting to be picked up."""
    stmt = (
        sa.select(Order)
        .where(Order.status.in_([FulfilmentStatus.PLACED, FulfilmentStatus.READY]))
        .options(selectinload(Order.lines))
        .order_by(Order.placed_at, Order.id)
    )
    orders = session.scalars(stmt).all()
    return {
        "to_prepare": [o for o in orders if o.status == FulfilmentStatus.PLACED],
        "ready": [o for o in orders if o.status == FulfilmentStatus.READY],
    }


def find_orders(session: Session, query: str) -> list[Order]:
    """Open orders by order number or pickup code, as the clerk types or scans it."""
    query = query.strip()
    if not query:
        return []
    stmt = (
        sa.select(Order)
        .where(
            sa.or_(Order.number == query, Order.pickup_code == query),
            Order.status.in_([FulfilmentStatus.PLACED, FulfilmentStatus.READY]),
        )
        .options(selectinload(Order.lines))
        .order_by(Order.placed_at)
        .limit(20)
    )
    return list(session.scalars(stmt))
