"""Checkout with online payment, the return pages, refunds at the counter, and the release job."""

from datetime import timedelta
from decimal import Decimal

import sqlalchemy as sa

from app.models import FulfilmentStatus, Order, PaymentStatus, Product, Role
from app.services import cart, orders
from app.services.clock import utcnow
from tests.conftest import page_text


def _cart(session, make, buyer, stock=Decimal(5)):
    product = make.product(stock=stock, retail_price_fen=2500)
    cart.add(session, buyer, product.id, "2", utcnow())
    session.commit()
    return product


def _checkout(actions, method):
    return actions.post(
        "/checkout",
        {"fulfilment": "counter_pickup", "payment_method": method, "delivery_place_id": "0"},
    )


def _only_order(session) -> Order:
    session.expire_all()
    return session.scalars(sa.select(Order)).one()


def test_without_stripe_only_the_counter_is_offered(session, client, make, actions):
    buyer = actions.login_as(make.user())
    _cart(session, make, buyer)
    text = page_text(client.get("/checkout"))
    assert "线上支付" not in text and "自提时在专柜付款" in text
    response = _checkout(actions, "stripe")
    assert response.status_code == 400
    assert session.scalar(sa.select(sa.func.count(Order.id))) == 0


def test_paying_online_sends_the_buyer_to_stripe_and_holds_the_stock(
    session, client, make, actions, stripe_api
):
    buyer = actions.login_as(make.user())
    product = _cart(session, make, buyer)
    assert "线上支付" in page_text(client.get("/checkout"))

    response = _checkout(actions, "stripe")
    order = _only_order(session)
    assert response.status_code == 303
    assert response.headers["Location"] == f"{stripe_api.base_url}/pay/{order.stripe_session_id}"
    [call] = stripe_api.calls("POST", "/v1/checkout/sessions")
    assert call.params["success_url"] == (
        f"http://localhost/orders/{order.id}/paid?session_id={{CHECKOUT_SESSION_ID}}"
    )
    assert order.payment_status == PaymentStatus.UNPAID
    assert session.get(Product, product.id).stock == 3


def test_stripe_failing_at_checkout_leaves_the_order_to_pay_later_or_at_the_counter(
    session, client, make, actions, stripe_api
):
    buyer = actions.login_as(make.user())
    product = _cart(session, make, buyer)
    stripe_api.fail_next = 1
    response = _checkout(actions, "stripe")
    order = _only_order(session)
    assert response.headers["Location"] == f"/orders/{order.id}"
    page = page_text(client.get(f"/orders/{order.id}"))
    assert "线上支付拒绝了请求" in page
    assert "立即线上支付" in page and "改为到柜台付款" in page
    assert session.get(Product, product.id).stock == 3  # held until the deadline

    retry = actions.post(f"/orders/{order.id}/pay")
    assert retry.headers["Location"].startswith(f"{stripe_api.base_url}/pay/")

    switched = actions.post(f"/orders/{order.id}/pay-at-counter")
    assert switched.status_code == 303
    session.expire_all()
    assert order.payment_method.value == "counter"
    assert "到柜台付款" in page_text(client.get(f"/orders/{order.id}"))


def test_the_return_page_tells_the_truth_while_the_webhook_is_on_its_way(
    session, client, make, actions, stripe_api
):
    buyer = actions.login_as(make.user())
    _cart(session, make, buyer)
    _checkout(actions, "stripe")
    order = _only_order(session)

    waiting = client.get(f"/orders/{order.id}/paid?session_id={order.stripe_session_id}")
    assert "正在确认" in page_text(waiting)
    assert 'http-equiv="refresh"' in waiting.get_data(as_text=True)

    stripe_api.pay(order.stripe_session_id)
    paid = client.get(f"/orders/{order.id}/paid?session_id={order.stripe_session_id}")
    assert "已收到付款" in page_text(paid)
    session.expire_all()
    assert order.payment_status == PaymentStatus.PAID


def test_the_cancel_page_says_nothing_was_charged(session, client, make, actions, stripe_api):
    buyer = actions.login_as(make.user())
    _cart(session, make, buyer)
    _checkout(actions, "stripe")
    order = _only_order(session)
    page = page_text(client.get(f"/orders/{order.id}/payment-cancelled"))
    assert "没有扣款" in page and "立即线上支付" in page


def test_looking_at_an_overdue_order_releases_it(session, client, make, actions, stripe_api):
    buyer = actions.login_as(make.user())
    order = make.online_order(buyer=buyer, stock=Decimal(2), due=utcnow() - timedelta(minutes=1))
    assert "已取消" in page_text(client.get(f"/orders/{order.id}"))
    session.expire_all()
    assert order.status == FulfilmentStatus.CANCELLED
    assert session.get(Product, order.lines[0].product_id).stock == 2


def test_another_buyers_order_cannot_be_paid_or_switched(session, client, make, actions):
    order = make.online_order()
    actions.login_as(make.user())
    assert client.get(f"/orders/{order.id}/paid").status_code == 404
    assert actions.post(f"/orders/{order.id}/pay").status_code == 404
    assert actions.post(f"/orders/{order.id}/pay-at-counter").status_code == 404


def test_the_counter_refunds_a_line_and_a_second_click_refunds_nothing(
    session, client, make, actions
):
    order = make.order(stock=Decimal(5))
    clerk = make.user(roles={Role.COUNTER_CLERK})
    orders.take_counter_payment(session, order, clerk, utcnow())
    session.commit()
    actions.login_as(clerk)
    assert "退款" in page_text(client.get(f"/orders/{order.id}"))

    line_id = order.lines[0].id
    refund = {"line_ids": str(line_id), "reason": "顾客退货"}
    first = actions.post(f"/counter/orders/{order.id}/refund", refund, follow_redirects=True)
    assert "已记录" in page_text(first)
    second = actions.post(f"/counter/orders/{order.id}/refund", refund, follow_redirects=True)
    assert "没有可退的款项" in page_text(second)
    session.expire_all()
    assert (order.payment_status, order.refunded_fen) == (PaymentStatus.REFUNDED, order.total_fen)
    listed = page_text(client.get("/counter/refunds"))
    assert order.number in listed and "顾客退货" in listed


def test_a_refund_needs_a_reason(session, client, make, actions):
    order = make.order()
    clerk = make.user(roles={Role.COUNTER_CLERK})
    orders.take_counter_payment(session, order, clerk, utcnow())
    session.commit()
    actions.login_as(clerk)
    response = actions.post(f"/counter/orders/{order.id}/refund", {}, follow_redirects=True)
    assert "请说明退款原因" in page_text(response)
    session.expire_all()
    assert order.payment_status == PaymentStatus.PAID


def test_the_release_command_releases_overdue_orders(session, runner, make, stripe_api):
    overdue = make.online_order(stock=Decimal(2), due=utcnow() - timedelta(minutes=1))
    waiting = make.online_order(stock=Decimal(2))
    result = runner.invoke(args=["release-unpaid-orders"])
    assert result.exit_code == 0, result.output
    assert "Released 1" in result.output
    session.expire_all()
    assert overdue.status == FulfilmentStatus.CANCELLED
    assert waiting.status == FulfilmentStatus.PLACED
