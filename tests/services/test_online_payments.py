"""Online payment through the real `stripe` library, against the local stand-in.

Each test checks what Stripe was sent (amounts in fen, currency, line items, metadata,
idempotency keys) and what the order, its stock and its refunds look like afterwards.
"""

import http.client
import time
from datetime import timedelta
from decimal import Decimal
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa

from app.models import (
    FulfilmentStatus,
    PaymentStatus,
    Product,
    Refund,
    RefundKind,
    Role,
)
from app.services import orders, payments
from app.services.clock import utcnow
from app.services.payments import CheckoutSession, PaymentUnavailable

SUCCESS = "http://shop.test/orders/1/paid?session_id={CHECKOUT_SESSION_ID}"
CANCEL = "http://shop.test/orders/1/payment-cancelled"


@pytest.fixture
def gateway(app, stripe_api):
    return app.extensions["stripe_gateway"]


@pytest.fixture
def clerk(make):
    return make.user(roles={Role.COUNTER_CLERK})


def _start(session, order, gateway, now=None):
    return orders.start_online_payment(
        session, order, order.buyer, now or utcnow(), gateway, SUCCESS, CANCEL
    )


def _stock(session, order):
    session.expire_all()
    return [session.get(Product, line.product_id).stock for line in order.lines]


def _paid(session, order, gateway, stripe_api):
    _start(session, order, gateway)
    paid = stripe_api.pay(order.stripe_session_id)
    orders.record_online_payment(
        session, order, CheckoutSession.from_stripe(paid), utcnow(), gateway
    )
    session.commit()
    return paid


def test_the_checkout_session_asks_for_exactly_the_order_in_fen(session, make, gateway, stripe_api):
    order = make.online_order(quantities=("2", "1.5"), retail_price_fen=1999, unit="jin")
    url = _start(session, order, gateway)

    [call] = stripe_api.calls("POST", "/v1/checkout/sessions")
    sent = call.params
    assert url == f"{stripe_api.base_url}/pay/{order.stripe_session_id}"
    assert (sent["mode"], sent["currency"]) == ("payment", "cny")
    # 2 x 19.99 = 39.98 and 1.5 x 19.99 = 29.985 -> 29.99 (half up): one item per line, at
    # the line's total, so Stripe charges exactly the order's total.
    assert [item["price_data"]["unit_amount"] for item in sent["line_items"]] == ["3998", "2999"]
    assert {item["quantity"] for item in sent["line_items"]} == {"1"}
    assert {item["price_data"]["currency"] for item in sent["line_items"]} == {"cny"}
    assert order.total_fen == 3998 + 2999
    assert stripe_api.sessions[order.stripe_session_id]["amount_total"] == order.total_fen
    assert sent["allowed_payment_method_types"] == ["card", "alipay", "wechat_pay"]
    assert "payment_method_types" not in sent
    assert sent["payment_method_options"] == {"wechat_pay": {"client": "web"}}
    assert sent["client_reference_id"] == str(order.id)
    assert sent["payment_intent_data"]["metadata"]["order_id"] == str(order.id)
    assert sent["metadata"]["order_number"] == order.number
    assert sent["success_url"] == SUCCESS and sent["cancel_url"] == CANCEL
    assert call.headers["Idempotency-Key"] == f"shanhai-order-{order.id}-checkout-0"
    assert call.headers["Authorization"] == "Bearer sk_test_standin"
    # Stripe keeps a session open at least 30 minutes; ours closes when the hold ends.
    assert int(sent["expires_at"]) == int(order.payment_due_at.timestamp())


def test_going_back_to_pay_reuses_the_open_session(session, make, gateway, stripe_api):
    order = make.online_order()
    first = _start(session, order, gateway)
    assert _start(session, order, gateway) == first
    assert len(stripe_api.calls("POST", "/v1/checkout/sessions")) == 1


def test_stripe_answering_an_error_keeps_the_order_and_the_retry_uses_a_new_key(
    session, make, gateway, stripe_api
):
    order = make.online_order(stock=Decimal(3))
    stripe_api.fail_next = 1
    with pytest.raises(PaymentUnavailable) as refused:
        _start(session, order, gateway)
    assert refused.value.answered
    session.commit()  # as the view does: the attempt number is kept
    assert (order.status, order.payment_status) == (FulfilmentStatus.PLACED, PaymentStatus.UNPAID)
    assert _stock(session, order) == [2]  # still held for the buyer

    _start(session, order, gateway)
    keys = [c.headers["Idempotency-Key"] for c in stripe_api.calls("POST", "/v1/checkout/")]
    assert keys == [f"shanhai-order-{order.id}-checkout-0", f"shanhai-order-{order.id}-checkout-1"]


def test_stripe_unreachable_keeps_the_order_and_the_same_key(app, session, make, stripe_api):
    unreachable = payments.StripeGateway(
        {"STRIPE_SECRET_KEY": "sk_test_x", "STRIPE_API_BASE": "http://127.0.0.1:9"}
        | {"STRIPE_NETWORK_RETRIES": 0, "STRIPE_TIMEOUT_SECONDS": 1}
    )
    order = make.online_order()
    with pytest.raises(PaymentUnavailable) as refused:
        _start(session, order, unreachable)
    assert not refused.value.answered
    assert "reached" in str(refused.value.message)
    # A request that may have reached Stripe is retried under the same key.
    assert order.checkout_attempt == 0 and order.stripe_session_id is None


def test_a_slow_stripe_times_out_as_unreachable(app, session, make, stripe_api):
    slow = payments.StripeGateway(
        {"STRIPE_SECRET_KEY": "sk_test_x", "STRIPE_API_BASE": stripe_api.base_url}
        | {"STRIPE_NETWORK_RETRIES": 0, "STRIPE_TIMEOUT_SECONDS": 0.3}
    )
    stripe_api.delay_seconds = 1
    with pytest.raises(PaymentUnavailable) as refused:
        _start(session, make.online_order(), slow)
    assert not refused.value.answered


def test_a_call_left_sleeping_by_a_timed_out_client_never_reaches_the_next_test(stripe_api):
    # The test above leaves the stand-in asleep on a call its client gave up on. Woken in a
    # later test, it used to take that test's fail_next, and the later test failed at random.
    address = urlsplit(stripe_api.base_url)
    stripe_api.delay_seconds = 0.4
    impatient = http.client.HTTPConnection(address.hostname, address.port, timeout=0.05)
    with pytest.raises(TimeoutError):
        impatient.request("GET", "/v1/checkout/sessions/cs_gone")
        impatient.getresponse()
    impatient.close()

    stripe_api.reset()  # as the next test's fixture does
    stripe_api.fail_next = 1
    time.sleep(0.5)  # the sleeping call has woken by now, whatever reset did
    next_test = http.client.HTTPConnection(address.hostname, address.port, timeout=5)
    next_test.request("GET", "/v1/checkout/sessions/cs_new")
    assert next_test.getresponse().status == 500  # the failure it asked for, still its own
    next_test.close()


def test_payment_marks_the_order_paid_once(session, make, gateway, stripe_api):
    order = make.online_order()
    paid = _paid(session, order, gateway, stripe_api)
    assert order.payment_status == PaymentStatus.PAID
    assert order.stripe_payment_intent_id == paid["payment_intent"]
    # The webhook arriving after the return page recorded it changes nothing.
    again = orders.record_online_payment(
        session, order, CheckoutSession.from_stripe(paid), utcnow(), gateway
    )
    assert again == "already recorded"
    assert [e.to_state for e in order.events if e.machine == "payment"] == ["paid"]


def test_an_unpaid_order_is_released_after_its_session_is_expired_through_the_api(
    session, make, gateway, stripe_api
):
    order = make.online_order(stock=Decimal(4))
    _start(session, order, gateway)
    session.commit()
    early = orders.release_unpaid(session, order, utcnow(), gateway)
    assert not early and _stock(session, order) == [3]

    later = order.payment_due_at + timedelta(seconds=1)
    assert orders.release_unpaid(session, order, later, gateway)
    session.commit()
    assert stripe_api.calls("POST", f"/v1/checkout/sessions/{order.stripe_session_id}/expire")
    assert stripe_api.sessions[order.stripe_session_id]["status"] == "expired"
    assert order.status == FulfilmentStatus.CANCELLED
    assert _stock(session, order) == [4]


def test_a_payment_made_just_before_the_release_is_kept(session, make, gateway, stripe_api):
    order = make.online_order(stock=Decimal(4))
    _start(session, order, gateway)
    stripe_api.pay(order.stripe_session_id)  # the webhook has not arrived yet
    assert not orders.release_unpaid(
        session, order, order.payment_due_at + timedelta(seconds=1), gateway
    )
    assert (order.status, order.payment_status) == (FulfilmentStatus.PLACED, PaymentStatus.PAID)
    assert _stock(session, order) == [3]


def test_stripe_down_at_release_time_keeps_the_stock_for_the_next_run(
    session, make, gateway, stripe_api
):
    order = make.online_order(stock=Decimal(4))
    _start(session, order, gateway)
    session.commit()
    stripe_api.fail_next = 1
    stripe_api.fail_status = 503
    with pytest.raises(PaymentUnavailable):
        orders.release_unpaid(session, order, order.payment_due_at + timedelta(seconds=1), gateway)
    session.rollback()
    assert order.status == FulfilmentStatus.PLACED and _stock(session, order) == [3]


def test_a_late_payment_on_a_released_order_is_refunded_and_listed(
    session, make, gateway, stripe_api
):
    order = make.online_order(stock=Decimal(4))
    _start(session, order, gateway)
    # Released while Stripe kept the page open (a session the shop never heard back about).
    orders.release_unpaid(session, order, order.payment_due_at + timedelta(seconds=1), gateway)
    session.commit()
    stripe_api.sessions[order.stripe_session_id]["status"] = "open"
    paid = stripe_api.pay(order.stripe_session_id)

    outcome = orders.record_online_payment(
        session, order, CheckoutSession.from_stripe(paid), utcnow(), gateway
    )
    session.commit()
    assert outcome == "late payment refunded"
    [call] = stripe_api.calls("POST", "/v1/refunds")
    assert call.params == {"payment_intent": paid["payment_intent"], "amount": str(order.total_fen)}
    assert call.headers["Idempotency-Key"] == f"shanhai-late-{paid['payment_intent']}"
    assert (order.status, order.payment_status) == (
        FulfilmentStatus.CANCELLED,
        PaymentStatus.REFUNDED,
    )
    assert _stock(session, order) == [4]  # the stock stays released
    listed = orders.refunds(session, 1, 50, RefundKind.LATE_PAYMENT).items
    assert [(r.order_id, r.amount_fen) for r in listed] == [(order.id, order.total_fen)]


def test_refund_by_line_through_stripe_and_never_twice(session, make, gateway, stripe_api, clerk):
    order = make.online_order(quantities=("1", "2"), retail_price_fen=1000, stock=Decimal(5))
    _paid(session, order, gateway, stripe_api)
    _first, second = order.lines

    orders.refund(session, order, clerk, utcnow(), gateway, [second.id], "坏了")
    session.commit()
    [call] = stripe_api.calls("POST", "/v1/refunds")
    assert call.params["amount"] == "2000"
    assert call.headers["Idempotency-Key"] == f"shanhai-refund-{order.id}-{second.id}"
    assert (order.payment_status, order.refunded_fen) == (PaymentStatus.PARTLY_REFUNDED, 2000)
    assert order.status == FulfilmentStatus.PLACED
    assert _stock(session, order) == [4, 5]  # the refunded line's goods are back on sale

    with pytest.raises(orders.InvalidTransition, match="already"):
        orders.refund(session, order, clerk, utcnow(), gateway, [second.id], "again")
    session.rollback()
    assert len(stripe_api.calls("POST", "/v1/refunds")) == 1

    orders.refund(session, order, clerk, utcnow(), gateway, None, "顾客不要了")
    session.commit()
    assert (order.payment_status, order.refunded_fen) == (PaymentStatus.REFUNDED, 3000)
    # Everything refunded before the handover: the order is withdrawn, all stock is back.
    assert order.status == FulfilmentStatus.CANCELLED
    assert order.events[-1].from_state == "placed" and order.events[-1].to_state == "cancelled"
    assert _stock(session, order) == [5, 5]
    assert stripe_api.refunded(order.stripe_payment_intent_id) == 3000
    with pytest.raises(orders.InvalidTransition):
        orders.refund(session, order, clerk, utcnow(), gateway, None, "third time")


def test_a_refund_stripe_refuses_changes_nothing(session, make, gateway, stripe_api, clerk):
    order = make.online_order(stock=Decimal(5))
    _paid(session, order, gateway, stripe_api)
    stripe_api.fail_next = 1
    with pytest.raises(PaymentUnavailable):
        orders.refund(session, order, clerk, utcnow(), gateway, None, "x")
    session.rollback()
    session.expire_all()
    assert (order.payment_status, order.refunded_fen) == (PaymentStatus.PAID, 0)
    assert all(line.refund_id is None for line in order.lines)
    assert session.scalar(sa.select(sa.func.count(Refund.id))) == 0


def test_a_counter_payment_is_refunded_without_stripe_and_after_handover_stock_stays_out(
    session, make, clerk
):
    order = make.order(stock=Decimal(5), quantity="2")
    orders.mark_ready(session, order, clerk, utcnow())
    orders.take_counter_payment(session, order, clerk, utcnow())
    orders.hand_over(session, order, clerk, utcnow())
    record = orders.refund(session, order, clerk, utcnow(), None, None, "品质问题")
    session.commit()
    assert (record.method.value, record.amount_fen, record.actor_id) == (
        "counter",
        order.total_fen,
        clerk.id,
    )
    assert order.payment_status == PaymentStatus.REFUNDED
    assert order.status == FulfilmentStatus.HANDED_OVER
    assert _stock(session, order) == [3]  # the goods left with the buyer


def test_only_the_counter_refunds(session, make):
    order = make.order()
    with pytest.raises(orders.PermissionDenied):
        orders.refund(session, order, order.buyer, utcnow(), None, None, "me")


def test_the_buyer_cancelling_a_paid_online_order_is_refunded_in_full(
    session, make, gateway, stripe_api
):
    order = make.online_order(stock=Decimal(5))
    _paid(session, order, gateway, stripe_api)
    orders.cancel(session, order, order.buyer, utcnow(), gateway)
    session.commit()
    assert (order.status, order.payment_status) == (
        FulfilmentStatus.CANCELLED,
        PaymentStatus.REFUNDED,
    )
    assert stripe_api.refunded(order.stripe_payment_intent_id) == order.total_fen
    assert _stock(session, order) == [5]


def test_cancelling_an_unpaid_online_order_closes_its_payment_page_first(
    session, make, gateway, stripe_api
):
    order = make.online_order(stock=Decimal(5))
    _start(session, order, gateway)
    orders.cancel(session, order, order.buyer, utcnow(), gateway)
    session.commit()
    assert stripe_api.sessions[order.stripe_session_id]["status"] == "expired"
    assert order.status == FulfilmentStatus.CANCELLED and _stock(session, order) == [5]


def test_switching_to_the_counter_closes_the_payment_page(session, make, gateway, stripe_api):
    order = make.online_order()
    _start(session, order, gateway)
    orders.pay_at_counter_instead(session, order, order.buyer, utcnow(), gateway)
    session.commit()
    assert stripe_api.sessions[order.stripe_session_id]["status"] == "expired"
    assert (order.payment_method.value, order.payment_due_at) == ("counter", None)
    assert order.can_prepare


def test_an_unpaid_online_order_is_not_prepared_or_paid_at_the_counter(session, make, clerk):
    order = make.online_order()
    with pytest.raises(orders.InvalidTransition, match="online payment"):
        orders.mark_ready(session, order, clerk, utcnow())
    with pytest.raises(orders.InvalidTransition, match="online"):
        orders.take_counter_payment(session, order, clerk, utcnow())
    assert order not in orders.counter_queue(session)["to_prepare"]
