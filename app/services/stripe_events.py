"""Stripe's webhook events, applied to our orders once each.

The event id is stored first, in the same transaction as the event's effect: a replayed event
finds its id taken and changes nothing, and if the effect fails (Stripe unreachable for a late
payment's refund, say) the id goes too, so Stripe's retry gets another chance. The id is
inserted before anything is read, which on SQLite makes a concurrent delivery wait for the
write lock instead of reading an old snapshot.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.models import Order, StripeEvent
from app.services import orders
from app.services.payments import CheckoutSession, StripeGateway

DUPLICATE = "duplicate"


def _order_for(session: Session, order_id: int | None, payment_intent: str | None) -> Order | None:
    if payment_intent:
        order = session.scalar(
            sa.select(Order).where(Order.stripe_payment_intent_id == payment_intent)
        )
        if order is not None:
            return order
    return session.get(Order, order_id) if order_id else None


def _metadata_order_id(obj) -> int | None:
    value = str((obj.get("metadata") or {}).get("order_id") or "")
    return int(value) if value.isdigit() else None


def handle(session: Session, event, gateway: StripeGateway | None, now: datetime) -> str:
    """Apply one verified event; returns its outcome in a word (also stored with the id)."""
    record = StripeEvent(id=event["id"], type=event["type"], outcome="", received_at=now)
    try:
        with session.begin_nested():
            session.add(record)
    except sa.exc.IntegrityError:
        return DUPLICATE

    obj = event["data"]["object"]
    order = None
    outcome = "ignored"
    if event["type"] in (
        "checkout.session.completed",
        "checkout.session.async_payment_succeeded",
    ):
        checkout = CheckoutSession.from_stripe(obj)
        order = _order_for(session, checkout.order_id, None)
        if order is not None:
            outcome = orders.record_online_payment(session, order, checkout, now, gateway)
    elif event["type"] == "checkout.session.expired":
        checkout = CheckoutSession.from_stripe(obj)
        order = _order_for(session, checkout.order_id, None)
        if order is not None:
            outcome = orders.online_payment_page_expired(session, order, checkout, now)
    elif event["type"] == "charge.refunded":
        intent = obj.get("payment_intent")
        order = _order_for(session, _metadata_order_id(obj), intent)
        if order is not None and intent:
            outcome = orders.record_stripe_refunds(
                session, order, intent, int(obj.get("amount_refunded") or 0), now
            )
    if event["type"].startswith(("checkout.", "charge.")) and order is None:
        outcome = "unknown order"
    record.order_id = order.id if order is not None else None
    record.outcome = outcome[:32]
    session.flush()
    return outcome
