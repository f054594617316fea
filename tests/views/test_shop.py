"""Staff buy with pickup and counter payment; the counter prepares, takes payment, hands over."""

import re
from decimal import Decimal

import sqlalchemy as sa

from app.models import FulfilmentStatus, Order, PaymentStatus, Product, Role
from tests.conftest import page_text


def add(actions, product, quantity="1"):
    return actions.post(f"/cart/add/{product.id}", {"quantity": quantity})


def test_the_product_page_has_an_add_to_cart_form_with_a_working_token(client, make, actions):
    product = make.product(name_zh="灯影牛肉", stock=Decimal(5))
    actions.login_as(make.user(roles={Role.STAFF}))
    html = client.get(f"/products/{product.id}").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', html.split("buy-box")[1]).group(1)
    response = client.post(f"/cart/add/{product.id}", data={"csrf_token": token, "quantity": "2"})
    assert response.status_code == 303
    assert "已加入购物车" in page_text(client.get(response.headers["Location"]))
    assert "¥59.60" in page_text(client.get("/cart"))  # 2 x ¥29.80


def test_bad_quantities_are_refused_and_the_cart_is_unchanged(client, make, actions):
    product = make.product(stock=Decimal(3))
    actions.login_as(make.user(roles={Role.STAFF}))
    add(actions, product, "1")
    for quantity, message in [
        ("0", "数量必须大于零"),
        ("-2", "数量必须大于零"),
        ("1.5", "只能按整件购买"),
        ("abc", "请输入数字"),
        ("9", "仅剩 3"),
    ]:
        response = add(actions, product, quantity)
        assert response.status_code == 303
        assert message in page_text(client.get(response.headers["Location"])), quantity
    cart_page = page_text(client.get("/cart"))
    assert 'value="1"' in client.get("/cart").get_data(as_text=True)
    assert "¥29.80" in cart_page


def test_anonymous_visitors_are_asked_to_log_in_to_buy(client, make, actions):
    product = make.product()
    response = add(actions, product)
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/auth/login")


def test_checkout_places_the_order_and_shows_the_pickup_code(client, make, actions, session):
    product = make.product(name_zh="百里坡黑鸡蛋", retail_price_fen=6800, stock=Decimal(10))
    actions.login_as(make.user(roles={Role.STAFF}))
    add(actions, product, "2")
    assert "¥136.00" in page_text(client.get("/checkout"))
    response = actions.post("/checkout")
    assert response.status_code == 303
    order = session.scalar(sa.select(Order))
    text = page_text(client.get(response.headers["Location"]))
    assert order.number in text and order.pickup_code in text and "¥136.00" in text
    assert "已下单" in text and "未付款" in text
    assert "购物车是空的" in page_text(client.get("/cart"))
    assert order.number in page_text(client.get("/orders"))


def test_another_users_order_is_not_found(client, make, actions):
    order = make.order()
    actions.login_as(make.user(roles={Role.STAFF}))
    assert client.get(f"/orders/{order.id}").status_code == 404
    assert actions.post(f"/orders/{order.id}/cancel").status_code == 404


def test_the_buyer_cancels_and_the_stock_comes_back(client, make, actions, session):
    buyer = make.user(roles={Role.STAFF})
    order = make.order(buyer=buyer, quantity="2", stock=Decimal(5))
    product = session.get(Product, order.lines[0].product_id)
    assert product.stock == 3
    actions.login_as(buyer)
    response = actions.post(f"/orders/{order.id}/cancel")
    assert "已取消" in page_text(client.get(response.headers["Location"]))
    session.expire_all()
    assert order.status == FulfilmentStatus.CANCELLED
    assert product.stock == 5


def test_the_counter_finds_prepares_takes_payment_and_hands_over(client, make, actions, session):
    order = make.order(name_zh="巴蜀名特酱香鸭")
    actions.login_as(make.user(roles={Role.COUNTER_CLERK}))
    text = page_text(client.get("/counter/"))
    assert "待备货 (1)" in text and order.number in text
    assert order.number in page_text(client.get(f"/counter/?q={order.pickup_code}"))
    assert "没有找到" in page_text(client.get("/counter/?q=999999x"))
    for action, message in [("ready", "可以取货"), ("paid", "已收款"), ("handed-over", "已交付")]:
        response = actions.post(f"/counter/orders/{order.id}/{action}", {"back": "/counter/"})
        assert response.status_code == 303 and response.headers["Location"] == "/counter/"
        assert message in page_text(client.get("/counter/")), action
    session.expire_all()
    assert (order.status, order.payment_status) == (
        FulfilmentStatus.HANDED_OVER,
        PaymentStatus.PAID,
    )
    timeline = page_text(client.get(f"/orders/{order.id}"))
    for label in ("已下单", "待取货", "已付款", "已取货"):
        assert label in timeline


def test_handing_over_before_payment_is_refused_with_a_message(client, make, actions):
    order = make.order()
    actions.login_as(make.user(roles={Role.COUNTER_CLERK}))
    actions.post(f"/counter/orders/{order.id}/ready")
    response = actions.post(f"/counter/orders/{order.id}/handed-over")
    assert "请先收款" in page_text(client.get(response.headers["Location"]))


def test_the_counters_back_link_never_leaves_the_site(client, make, actions):
    order = make.order()
    actions.login_as(make.user(roles={Role.COUNTER_CLERK}))
    response = actions.post(f"/counter/orders/{order.id}/ready", {"back": "https://evil.example/"})
    assert response.headers["Location"] == "/counter/"


def test_my_orders_refuses_a_bad_page_number(client, make, actions):
    actions.login_as(make.user(roles={Role.STAFF}))
    response = client.get("/orders?page=abc")
    assert response.status_code == 400
    assert "页码从 1 开始" in page_text(response)


def test_the_order_page_shows_a_qr_code_the_counter_can_scan(client, make, actions):
    buyer = make.user(roles={Role.STAFF})
    order = make.order(buyer=buyer)
    actions.login_as(buyer)
    html = client.get(f"/orders/{order.id}").get_data(as_text=True)
    assert f'<svg class="qr" role="img" aria-label="{order.number}"' in html
    assert "<path" in html


def test_the_pickup_note_reads_as_one_chinese_paragraph(client, make, actions):
    buyer = make.user(roles={Role.STAFF})
    order = make.order(buyer=buyer)
    actions.login_as(buyer)
    html = client.get(f"/orders/{order.id}").get_data(as_text=True)
    assert "出示此取货码。取货时付款。" in html
