"""Retail orders and their state machines: the only module that moves an order.

An order has two small state machines. Fulfilment: placed -> ready -> handed over, or placed
(or ready, when everything is refunded) -> cancelled. Payment: unpaid -> paid -> partly
refunded -> refunded, and unpaid -> refunded for money that arrived after the order was
cancelled. Every move is a named function below that checks the order's current state and who
is acting, then writes an OrderEvent (who, when, from, to). Anything else is refused with
InvalidTransition. Stock leaves through app.services.stock when an order is placed and comes
back when it is cancelled or refunded before the handover, in the same transaction.

Online orders (Stripe) hold their stock until `payment_due_at`. Before an unpaid online order is
released, its Checkout Session is expired through the API, so that no payment can land on an
order whose stock is gone; a payment that still arrives is refunded at once (RefundKind
LATE_PAYMENT) and listed for the coordinator. Calls to Stripe happen inside the transaction that
records their effect: if Stripe fails, nothing is recorded; if the commit fails after Stripe
acted, the idempotency key makes the retry a no-op at Stripe, and the webhook reconciles.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from datetime import datetime, timedelta

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
    Refund,
    RefundKind,
    Role,
)
from app.services import cart, ledger, stock
from app.services.accounts import Actor
from app.services.clock import local_date
from app.services.errors import DomainError, NotFound, PermissionDenied
from app.services.money import line_total
from app.services.pagination import Page, paginate
from app.services.payments import CheckoutSession, StripeGateway

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
    # Everything refunded before the handover: the goods go back on the shelf.
    "withdraw": ({FulfilmentStatus.PLACED, FulfilmentStatus.READY}, FulfilmentStatus.CANCELLED),
}

#: Timeline notes the system writes, stored as keys and shown in the reader's language;
#: any other note is a person's own words (a refund's reason) and shown as written.
SYSTEM_NOTES = {
    "not_paid_in_time": _l("Not paid in time"),
    "paid_online": _l("through Stripe"),
    "pay_at_counter_instead": _l("Will pay at the counter instead"),
    "refunded_in_stripe": _l("Refunded in Stripe"),
    "late_payment_refunded": _l("A late payment was refunded automatically"),
    "cancelled_by_buyer": _l("Cancelled by the buyer"),
}

#: Stripe keeps a Checkout Session open for at least 30 minutes after it is created.
STRIPE_MIN_SESSION = timedelta(minutes=31)


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


def _move(
    session: Session, order: Order, move: str, actor: Actor | None, now: datetime, note=""
) -> None:
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
    _event(order, "status", current, target, actor, now, note)


def _set_payment(session, order, target, actor, now, note="") -> None:
    current = order.payment_status
    _compare_and_set(session, order, Order.payment_status, current, target)
    _event(order, "payment", current, target, actor, now, note)


def _require_counter(actor: Actor) -> None:
    if not actor.has_role(*COUNTER_ROLES):
        raise PermissionDenied(_l("Only the counter staff can do this."))


def _new_pickup_code(session: Session) -> str:
    """Six random digits, not shared with another open order if a few tries can avoid it.

    (Two orders placed at the same moment could still draw the same code; the counter then
    sees both under it, each with its number and buyer, which is why the code is not unique.)
    """
    for _ in range(5):
        code = f"{secrets.randbelow(1_000_000):06d}"
        taken = session.scalar(
            sa.select(Order.id).where(
                Order.pickup_code == code,
                Order.status.in_([FulfilmentStatus.PLACED, FulfilmentStatus.READY]),
            )
        )
        if taken is None:
            return code
    return code


def place_order(
    session: Session,
    buyer: Actor,
    now: datetime,
    fulfilment: Fulfilment = Fulfilment.COUNTER_PICKUP,
    delivery_place_id: int | None = None,
    payment_method: PaymentMethod = PaymentMethod.COUNTER,
    payment_due_at: datetime | None = None,
) -> Order:
    """Turn the buyer's cart into an order, picked up or delivered, paid online or at the counter.

    Prices come from the catalog now, the lines keep a snapshot of them, and the stock is taken
    in this same transaction: if any line cannot be had, nothing is taken and nothing is placed.
    An online order holds its stock until `payment_due_at`.
    """
    if (payment_method == PaymentMethod.STRIPE) != (payment_due_at is not None):
        raise ValueError("an online order, and only an online order, has a payment deadline")
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
        pickup_code=_new_pickup_code(session),
        buyer_id=buyer.id,
        buyer_organization_id=buyer.organization_id,
        status=FulfilmentStatus.PLACED,
        payment_status=PaymentStatus.UNPAID,
        payment_method=payment_method,
        payment_due_at=payment_due_at,
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
    # The cart is emptied first: a second submission of the same checkout (a double click, a
    # second tab) waits here for the first, then finds the lines gone and places nothing.
    emptied = session.execute(
        sa.delete(CartLine).where(CartLine.id.in_([item.line.id for item in view.items]))
    ).rowcount
    if emptied != len(view.items):
        raise InvalidTransition(
            _l("This cart was checked out a moment ago, perhaps in another window.")
        )
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
    session.flush()
    return order


def _give_back(session: Session, order: Order, lines, actor: Actor | None, now) -> None:
    for line in lines:
        stock.give_back(
            session,
            line.product_id,
            line.quantity,
            now=now,
            reference=order.number,
            actor_id=actor.id if actor else None,
        )


def cancel(
    session: Session,
    order: Order,
    actor: Actor,
    now: datetime,
    gateway: StripeGateway | None = None,
) -> None:
    """The buyer (or the counter) cancels before the order is prepared; the stock goes back.

    An online payment is refunded through Stripe. An unpaid online order first has its payment
    page closed, so the buyer cannot pay for what was just cancelled.
    """
    if actor.id != order.buyer_id:
        _require_counter(actor)
    if order.status != FulfilmentStatus.PLACED:
        raise InvalidTransition(
            _l(
                "Order %(number)s is %(status)s; it can no longer be cancelled.",
                number=order.number,
                status=order.status.label,
            )
        )
    if order.awaits_online_payment:
        _close_payment_page(session, order, _need(gateway), now)
    if order.payment_status == PaymentStatus.UNPAID:
        _move(session, order, "cancel", actor, now)
        _give_back(session, order, order.lines, actor, now)
    elif order.payment_method == PaymentMethod.STRIPE:
        _refund_lines(session, order, actor, now, gateway, None, "cancelled_by_buyer")
    else:
        raise InvalidTransition(_l("A paid order is refunded at the counter, not cancelled here."))
    session.flush()


def _need(gateway: StripeGateway | None) -> StripeGateway:
    if gateway is None:
        raise InvalidTransition(_l("Online payment is not available at the moment."))
    return gateway


def _close_payment_page(session: Session, order: Order, gateway: StripeGateway, now) -> None:
    """Expire the order's Checkout Session; if the buyer paid after all, record the payment."""
    if not order.stripe_session_id:
        return
    ended = gateway.expire_checkout_session(order.stripe_session_id)
    if ended.payment_status == "paid":
        record_online_payment(session, order, ended, now, gateway)


def release_unpaid(session: Session, order: Order, now: datetime, gateway) -> bool:
    """Cancel an online order not paid in time and release its stock; True if it was released.

    Raises PaymentUnavailable when Stripe cannot be asked to close the payment page: then the
    order keeps its stock, and the next run (or the next look at the order) tries again.
    """
    if not (order.awaits_online_payment and order.payment_due_at <= now):
        return False
    if order.stripe_session_id:
        _close_payment_page(session, order, _need(gateway), now)
        if order.payment_status != PaymentStatus.UNPAID:
            return False
    _move(session, order, "cancel", None, now, "not_paid_in_time")
    _give_back(session, order, order.lines, None, now)
    session.flush()
    return True


def overdue_online_orders(session: Session, now: datetime, limit: int = 500) -> list[int]:
    """Ids of online orders whose time to pay has passed, oldest first."""
    return list(
        session.scalars(
            sa.select(Order.id)
            .where(
                Order.payment_method == PaymentMethod.STRIPE,
                Order.payment_status == PaymentStatus.UNPAID,
                Order.status == FulfilmentStatus.PLACED,
                Order.payment_due_at <= now,
            )
            .order_by(Order.payment_due_at)
            .limit(limit)
        )
    )


def start_online_payment(
    session: Session,
    order: Order,
    actor: Actor,
    now: datetime,
    gateway: StripeGateway | None,
    success_url: str,
    cancel_url: str,
) -> str:
    """The URL of the order's Stripe payment page: the open one, or a new one.

    Raises PaymentUnavailable if Stripe fails; when Stripe answered with an error, the order's
    attempt number has moved on (commit it), so that the retry asks for a new session.
    """
    if actor.id != order.buyer_id:
        raise NotFound(_l("No such order."))
    if not order.awaits_online_payment:
        raise InvalidTransition(_l("This order is not waiting for an online payment."))
    if order.payment_due_at <= now:
        raise InvalidTransition(_l("The time to pay for this order has passed."))
    gateway = _need(gateway)
    if order.stripe_session_id:
        existing = gateway.retrieve_checkout_session(order.stripe_session_id)
        if existing.payment_status == "paid":
            record_online_payment(session, order, existing, now, gateway)
            raise InvalidTransition(_l("This order is already paid."))
        if existing.status == "open" and existing.url:
            return existing.url
    try:
        checkout = gateway.create_checkout_session(
            order, success_url, cancel_url, max(order.payment_due_at, now + STRIPE_MIN_SESSION)
        )
    except DomainError as error:
        if getattr(error, "answered", False):
            order.checkout_attempt += 1
            session.flush()
        raise
    order.stripe_session_id = checkout.id
    order.stripe_session_url = checkout.url
    session.flush()
    return checkout.url


def pay_at_counter_instead(
    session: Session, order: Order, actor: Actor, now: datetime, gateway: StripeGateway | None
) -> None:
    """The buyer gives up paying online: the payment page is closed, the counter takes the money."""
    if actor.id != order.buyer_id:
        raise NotFound(_l("No such order."))
    if not order.awaits_online_payment:
        raise InvalidTransition(_l("This order is not waiting for an online payment."))
    if order.stripe_session_id:
        _close_payment_page(session, order, _need(gateway), now)
        if order.payment_status != PaymentStatus.UNPAID:
            raise InvalidTransition(_l("Your online payment has just arrived; nothing to change."))
    order.payment_method = PaymentMethod.COUNTER
    order.payment_due_at = None
    _event(
        order,
        "payment",
        PaymentStatus.UNPAID,
        PaymentStatus.UNPAID,
        actor,
        now,
        "pay_at_counter_instead",
    )
    session.flush()


def _locked(session: Session, order: Order) -> Order:
    """Re-read the order under a row lock (PostgreSQL), so refunds and webhooks take turns."""
    session.execute(sa.select(Order.id).where(Order.id == order.id).with_for_update()).one()
    session.refresh(order)
    return order


def record_online_payment(
    session: Session,
    order: Order,
    checkout: CheckoutSession,
    now: datetime,
    gateway: StripeGateway | None,
) -> str:
    """Stripe says this Checkout Session was paid (webhook, or the buyer's return page).

    The order becomes paid if it was still waiting. Money for an order that was cancelled or
    already paid by another session is refunded at once and listed for the coordinator.
    Returns what happened, in a word.
    """
    if checkout.payment_status != "paid" or not checkout.payment_intent:
        return "waiting"
    _locked(session, order)
    if order.stripe_payment_intent_id == checkout.payment_intent:
        return "already recorded"
    if any(
        r.stripe_payment_intent_id == checkout.payment_intent for r in _refunds_of(session, order)
    ):
        return "already refunded"
    if order.awaits_online_payment and checkout.amount_total == order.total_fen:
        _set_payment(session, order, PaymentStatus.PAID, None, now, "paid_online")
        order.paid_at = now
        order.stripe_payment_intent_id = checkout.payment_intent
        order.stripe_session_id = checkout.id
        order.payment_due_at = None
        session.flush()
        ledger.retail_paid(session, order, now)
        return "paid"
    _refund_late_payment(session, order, checkout, now, _need(gateway))
    return "late payment refunded"


def _refunds_of(session: Session, order: Order) -> list[Refund]:
    return list(session.scalars(sa.select(Refund).where(Refund.order_id == order.id)))


def _refund_late_payment(session, order, checkout: CheckoutSession, now, gateway) -> None:
    amount = checkout.amount_total or 0
    refund_id = gateway.refund(
        checkout.payment_intent, amount, f"shanhai-late-{checkout.payment_intent}"
    )
    session.add(
        Refund(
            order_id=order.id,
            kind=RefundKind.LATE_PAYMENT,
            method=PaymentMethod.STRIPE,
            amount_fen=amount,
            stripe_refund_id=refund_id,
            stripe_payment_intent_id=checkout.payment_intent,
            created_at=now,
        )
    )
    note = "late_payment_refunded"
    if order.payment_status == PaymentStatus.UNPAID:
        # The order was released: the money came in and went straight back.
        _set_payment(session, order, PaymentStatus.REFUNDED, None, now, note)
        order.stripe_payment_intent_id = checkout.payment_intent
        order.refunded_fen = min(amount, order.total_fen)
    else:
        _event(order, "payment", order.payment_status, order.payment_status, None, now, note)
    session.flush()


def online_payment_page_expired(
    session: Session, order: Order, checkout: CheckoutSession, now: datetime
) -> str:
    """Stripe closed the order's payment page unpaid: release the order and its stock.

    An expiry that arrives after the payment (events come in any order), or for an older
    session the buyer replaced, changes nothing.
    """
    _locked(session, order)
    if (
        checkout.id != order.stripe_session_id
        or order.payment_status != PaymentStatus.UNPAID
        or order.status != FulfilmentStatus.PLACED
    ):
        return "ignored"
    _move(session, order, "cancel", None, now, "not_paid_in_time")
    _give_back(session, order, order.lines, None, now)
    session.flush()
    return "released"


def refund(
    session: Session,
    order: Order,
    actor: Actor,
    now: datetime,
    gateway: StripeGateway | None,
    line_ids: Iterable[int] | None = None,
    reason: str = "",
) -> Refund:
    """The counter or a coordinator refunds a paid order, fully (no lines given) or by line."""
    _require_counter(actor)
    return _refund_lines(session, order, actor, now, gateway, line_ids, reason)


def _refund_lines(session, order, actor, now, gateway, line_ids, reason) -> Refund:
    if order.payment_status not in (PaymentStatus.PAID, PaymentStatus.PARTLY_REFUNDED):
        raise InvalidTransition(
            _l(
                "Order %(number)s is %(status)s; there is nothing to refund.",
                number=order.number,
                status=order.payment_status.label,
            )
        )
    if line_ids is not None:
        line_ids = set(line_ids)
        if not line_ids:
            raise DomainError(_l("Choose the lines to refund."), field="line_ids")
        if not line_ids <= {line.id for line in order.lines}:
            raise NotFound(_l("No such order line."))
    wanted = [
        line
        for line in order.lines
        if line.refund_id is None and (line_ids is None or line.id in line_ids)
    ]
    if not wanted:
        raise InvalidTransition(_l("These lines have already been refunded."))
    amount = min(sum(line.total_fen for line in wanted), order.total_fen - order.refunded_fen)
    # Claiming the amount on the order row first takes its lock: a second click waits here,
    # then finds the amount gone; the webhook's reconciliation waits for this commit too.
    claimed = session.execute(
        sa.update(Order)
        .where(Order.id == order.id, Order.refunded_fen + amount <= Order.total_fen)
        .values(refunded_fen=Order.refunded_fen + amount)
        .execution_options(synchronize_session=False)
    ).rowcount
    if amount <= 0 or claimed != 1:
        raise InvalidTransition(_l("This order has already been refunded."))
    record = Refund(
        order_id=order.id,
        kind=RefundKind.REQUESTED,
        method=order.payment_method,
        amount_fen=amount,
        reason=str(reason)[:255],
        actor_id=actor.id,
        created_at=now,
    )
    session.add(record)
    session.flush()
    ids = [line.id for line in wanted]
    taken = session.execute(
        sa.update(OrderLine)
        .where(OrderLine.id.in_(ids), OrderLine.refund_id.is_(None))
        .values(refund_id=record.id)
        .execution_options(synchronize_session=False)
    ).rowcount
    if taken != len(ids):
        raise InvalidTransition(_l("These lines have already been refunded."))
    if order.payment_method == PaymentMethod.STRIPE:
        record.stripe_payment_intent_id = order.stripe_payment_intent_id
        record.stripe_refund_id = _need(gateway).refund(
            order.stripe_payment_intent_id,
            amount,
            f"shanhai-refund-{order.id}-" + "-".join(map(str, sorted(ids))),
        )
    for line in wanted:
        line.refund_id = record.id
    ledger.retail_refunded(session, order, record, wanted, now)
    session.refresh(order, ["refunded_fen"])
    all_refunded = all(line.refund_id is not None for line in order.lines)
    _set_payment(
        session,
        order,
        PaymentStatus.REFUNDED if all_refunded else PaymentStatus.PARTLY_REFUNDED,
        actor,
        now,
        reason,
    )
    if order.status != FulfilmentStatus.HANDED_OVER:
        # The goods have not left the counter: they go back on sale.
        _give_back(session, order, wanted, actor, now)
        if all_refunded and order.status != FulfilmentStatus.CANCELLED:
            _move(session, order, "withdraw", actor, now, reason)
    session.flush()
    return record


def record_stripe_refunds(
    session: Session, order: Order, payment_intent: str, amount_refunded: int, now: datetime
) -> str:
    """Stripe reports the total refunded on the order's payment (charge.refunded).

    Refunds made here are already counted; anything beyond them was made elsewhere (in the
    Stripe Dashboard) and is recorded as such. Stock is left alone: which goods came back is
    not known here.
    """
    _locked(session, order)
    if payment_intent != order.stripe_payment_intent_id:
        return "ignored"
    target = min(amount_refunded, order.total_fen)
    if target <= order.refunded_fen:
        return "already recorded"
    extra = target - order.refunded_fen
    record = Refund(
        order_id=order.id,
        kind=RefundKind.EXTERNAL,
        method=PaymentMethod.STRIPE,
        amount_fen=extra,
        stripe_payment_intent_id=payment_intent,
        created_at=now,
    )
    session.add(record)
    session.flush()
    ledger.retail_refunded(session, order, record, None, now)
    order.refunded_fen = target
    _set_payment(
        session,
        order,
        PaymentStatus.REFUNDED if target == order.total_fen else PaymentStatus.PARTLY_REFUNDED,
        None,
        now,
        "refunded_in_stripe",
    )
    session.flush()
    return "refund recorded"


def refunds(session: Session, page: int, per_page: int, kind: RefundKind | None = None):
    """Every refund, newest first: what the coordinator checks, late payments above all."""
    stmt = (
        sa.select(Refund)
        .options(selectinload(Refund.order))
        .order_by(Refund.created_at.desc(), Refund.id.desc())
    )
    if kind is not None:
        stmt = stmt.where(Refund.kind == kind)
    return paginate(session, stmt, page, per_page)


def mark_ready(session: Session, order: Order, actor: Actor, now: datetime) -> None:
    _require_counter(actor)
    if order.awaits_online_payment:
        raise InvalidTransition(_l("This order is waiting for its online payment."))
    _move(session, order, "mark_ready", actor, now)
    session.flush()


def take_counter_payment(session: Session, order: Order, actor: Actor, now: datetime) -> None:
    """The clerk takes the money at the counter: who and when are kept on the order."""
    _require_counter(actor)
    if order.status == FulfilmentStatus.CANCELLED:
        raise InvalidTransition(_l("This order was cancelled."))
    if order.payment_status != PaymentStatus.UNPAID:
        raise InvalidTransition(_l("This order is already paid."))
    if order.payment_method != PaymentMethod.COUNTER:
        raise InvalidTransition(_l("This order is paid online, not at the counter."))
    _set_payment(session, order, PaymentStatus.PAID, actor, now)
    order.paid_at = now
    order.paid_by_id = actor.id
    session.flush()
    ledger.retail_paid(session, order, now)


def hand_over(session: Session, order: Order, actor: Actor, now: datetime) -> None:
    _require_counter(actor)
    if order.payment_status not in (PaymentStatus.PAID, PaymentStatus.PARTLY_REFUNDED):
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
        "to_prepare": [o for o in orders if o.status == FulfilmentStatus.PLACED and o.can_prepare],
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
