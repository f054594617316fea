"""Stripe's webhook: signed with Stripe's documented scheme, applied once, in any order."""

import json
import time
from decimal import Decimal

import sqlalchemy as sa

from app.models import (
    FulfilmentStatus,
    LedgerEntry,
    LedgerSource,
    PaymentStatus,
    Product,
    Refund,
    StripeEvent,
)
from app.services import orders
from app.services.clock import utcnow
from tests.conftest import STRIPE_WEBHOOK_SECRET
from tools.stripe_standin import sign


def _deliver(client, event, secret=STRIPE_WEBHOOK_SECRET, timestamp=None):
    payload = json.dumps(event).encode()
    return client.post(
        "/stripe/webhook",
        data=payload,
        headers={"Stripe-Signature": sign(payload, secret, timestamp)},
        content_type="application/json",
    )


def _open_session(app, session, order):
    return orders.start_online_payment(
        session,
        order,
        order.buyer,
        utcnow(),
        app.extensions["stripe_gateway"],
        "http://t/ok",
        "http://t/no",
    )


def _stock(session, order):
    session.expire_all()
    return session.get(Product, order.lines[0].product_id).stock


def _paid_event(app, session, make, stripe_api, **product):
    order = make.online_order(**product)
    _open_session(app, session, order)
    session.commit()
    stripe_api.pay(order.stripe_session_id)
    return order, stripe_api.session_event("checkout.session.completed", order.stripe_session_id)


def test_a_completed_session_marks_the_order_paid(app, client, session, make, stripe_api):
    order, event = _paid_event(app, session, make, stripe_api)
    response = _deliver(client, event)
    assert response.status_code == 200 and response.json["outcome"] == "paid"
    session.expire_all()
    assert order.payment_status == PaymentStatus.PAID
    assert order.paid_at is not None and order.paid_by_id is None


def test_a_bad_signature_is_refused_and_changes_nothing(app, client, session, make, stripe_api):
    order, event = _paid_event(app, session, make, stripe_api)
    assert _deliver(client, event, secret="whsec_someone_else").status_code == 400
    # A signature older than Stripe's five-minute tolerance is a replay attack.
    assert _deliver(client, event, timestamp=int(time.time()) - 3600).status_code == 400
    unsigned = client.post("/stripe/webhook", data=json.dumps(event), content_type="text/plain")
    assert unsigned.status_code == 400
    session.expire_all()
    assert order.payment_status == PaymentStatus.UNPAID
    assert session.scalar(sa.select(sa.func.count()).select_from(StripeEvent)) == 0


def test_the_same_event_twice_is_processed_once(app, client, session, make, stripe_api):
    order, event = _paid_event(app, session, make, stripe_api)
    assert _deliver(client, event).json["outcome"] == "paid"
    assert _deliver(client, event).json["outcome"] == "duplicate"
    session.expire_all()
    assert [e.to_state for e in order.events if e.machine == "payment"] == ["paid"]


def test_expired_after_completed_leaves_the_order_paid(app, client, session, make, stripe_api):
    order, completed = _paid_event(app, session, make, stripe_api, stock=Decimal(3))
    expired = stripe_api.session_event("checkout.session.expired", order.stripe_session_id)
    expired["data"]["object"]["status"] = "expired"
    assert _deliver(client, completed).status_code == 200
    assert _deliver(client, expired).json["outcome"] == "ignored"
    session.expire_all()
    assert (order.status, order.payment_status) == (FulfilmentStatus.PLACED, PaymentStatus.PAID)
    assert _stock(session, order) == 2


def test_an_expired_session_releases_the_unpaid_order(app, client, session, make, stripe_api):
    order = make.online_order(stock=Decimal(3))
    _open_session(app, session, order)
    session.commit()
    stripe_api.expire_session(order.stripe_session_id)
    event = stripe_api.session_event("checkout.session.expired", order.stripe_session_id)
    assert _deliver(client, event).json["outcome"] == "released"
    session.expire_all()
    assert order.status == FulfilmentStatus.CANCELLED
    assert _stock(session, order) == 3


def test_a_refund_made_in_stripe_is_recorded_once(app, client, session, make, stripe_api):
    order, completed = _paid_event(app, session, make, stripe_api, retail_price_fen=5000)
    _deliver(client, completed)
    session.expire_all()
    status, _ = stripe_api.create_refund(
        {"payment_intent": order.stripe_payment_intent_id, "amount": "1200"}
    )
    assert status == 200
    refunded = stripe_api.charge_refunded_event(order.stripe_payment_intent_id)
    assert _deliver(client, refunded).json["outcome"] == "refund recorded"
    # What stops counting toward the pledges: the refund, once.
    assert _refund_entries(session, order) == (-1200, 1)
    # The same event delivered again, and the same total reported again by a later event,
    # add nothing.
    assert _deliver(client, refunded).json["outcome"] == "duplicate"
    again = stripe_api.charge_refunded_event(order.stripe_payment_intent_id)
    assert _deliver(client, again).json["outcome"] == "already recorded"
    session.expire_all()
    assert (order.payment_status, order.refunded_fen) == (PaymentStatus.PARTLY_REFUNDED, 1200)
    assert [r.amount_fen for r in session.scalars(sa.select(Refund))] == [1200]
    assert _refund_entries(session, order) == (-1200, 1)


def _refund_entries(session, order) -> tuple[int, int]:
    """The sum and number of the order's ledger entries for refunds."""
    return tuple(
        session.execute(
            sa.select(
                sa.func.coalesce(sa.func.sum(LedgerEntry.amount_fen), 0), sa.func.count()
            ).where(
                LedgerEntry.retail_order_id == order.id,
                LedgerEntry.source == LedgerSource.RETAIL_REFUND,
            )
        ).one()
    )


def test_a_refund_made_here_is_not_counted_again_when_stripe_reports_it(
    app, client, session, make, stripe_api
):
    order, completed = _paid_event(app, session, make, stripe_api)
    _deliver(client, completed)
    session.expire_all()
    clerk = make.user(roles={"counter_clerk"})
    orders.refund(session, order, clerk, utcnow(), app.extensions["stripe_gateway"], None, "退货")
    session.commit()
    event = stripe_api.charge_refunded_event(order.stripe_payment_intent_id)
    assert _deliver(client, event).json["outcome"] == "already recorded"
    session.expire_all()
    assert order.refunded_fen == order.total_fen
    assert session.scalar(sa.select(sa.func.count()).select_from(Refund)) == 1


def test_a_late_payment_arriving_by_webhook_is_refunded(app, client, session, make, stripe_api):
    order = make.online_order()
    _open_session(app, session, order)
    orders.cancel(session, order, order.buyer, utcnow(), app.extensions["stripe_gateway"])
    session.commit()
    # The buyer had paid in the moment before the page closed; Stripe's event comes late.
    stripe_api.sessions[order.stripe_session_id]["status"] = "open"
    stripe_api.pay(order.stripe_session_id)
    event = stripe_api.session_event("checkout.session.completed", order.stripe_session_id)
    assert _deliver(client, event).json["outcome"] == "late payment refunded"
    assert stripe_api.refunded(stripe_api.sessions[order.stripe_session_id]["payment_intent"]) == (
        order.total_fen
    )


def test_stripe_down_when_a_late_payment_must_be_refunded_asks_for_a_retry(
    app, client, session, make, stripe_api
):
    order = make.online_order()
    _open_session(app, session, order)
    orders.cancel(session, order, order.buyer, utcnow(), app.extensions["stripe_gateway"])
    session.commit()
    stripe_api.sessions[order.stripe_session_id]["status"] = "open"
    stripe_api.pay(order.stripe_session_id)
    event = stripe_api.session_event("checkout.session.completed", order.stripe_session_id)
    stripe_api.fail_next = 1
    assert _deliver(client, event).status_code == 503
    # Nothing was kept, not even the event id: Stripe's retry is processed in full.
    assert _deliver(client, event).json["outcome"] == "late payment refunded"


def test_other_events_are_acknowledged_and_ignored(client, stripe_api):
    event = stripe_api.event("customer.created", {"id": "cus_1", "object": "customer"})
    assert _deliver(client, event).json == {"received": True, "outcome": "ignored"}


def test_without_stripe_configured_the_webhook_is_not_there(client):
    assert client.post("/stripe/webhook", data="{}").status_code == 404
