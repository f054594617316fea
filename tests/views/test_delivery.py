"""Office delivery: the admin keeps the places, staff choose one at checkout."""

from decimal import Decimal

import sqlalchemy as sa

from app.models import DeliveryPlace, Fulfilment, Order, Role
from tests.conftest import page_text


def test_admin_adds_and_retires_delivery_places(client, make, actions, session):
    actions.login_as(make.user(roles={Role.ADMIN}))
    response = actions.post(
        "/admin/delivery-places", {"building_zh": "市行政中心二号楼", "room": "305", "active": "y"}
    )
    assert response.status_code == 302
    assert "市行政中心二号楼" in page_text(client.get("/admin/delivery-places"))
    again = actions.post(
        "/admin/delivery-places", {"building_zh": "市行政中心二号楼", "room": "305", "active": "y"}
    )
    assert again.status_code == 400
    assert "已在列表中" in page_text(again)
    place = session.scalar(sa.select(DeliveryPlace))
    actions.post(
        f"/admin/delivery-places/{place.id}", {"building_zh": place.building_zh, "room": place.room}
    )
    session.refresh(place)
    assert place.active is False


def test_staff_choose_an_office_and_the_order_keeps_its_address(client, make, actions, session):
    place = make.delivery_place(building_zh="市行政中心三号楼", room="208")
    make.delivery_place(room="999", active=False)
    product = make.product(stock=Decimal(5))
    actions.login_as(make.user(roles={Role.STAFF}))
    actions.post(f"/cart/add/{product.id}", {"quantity": "1"})
    checkout = page_text(client.get("/checkout"))
    assert "市行政中心三号楼 208" in checkout and "999" not in checkout
    response = actions.post(
        "/checkout", {"fulfilment": "office_delivery", "delivery_place_id": place.id}
    )
    order = session.scalar(sa.select(Order))
    assert (order.fulfilment, order.delivery_address) == (
        Fulfilment.OFFICE_DELIVERY,
        "市行政中心三号楼 208",
    )
    assert "送达地点: 市行政中心三号楼 208" in page_text(client.get(response.headers["Location"]))


def test_delivery_without_an_office_is_refused_and_nothing_is_placed(
    client, make, actions, session
):
    product = make.product(stock=Decimal(5))
    actions.login_as(make.user(roles={Role.STAFF}))
    actions.post(f"/cart/add/{product.id}", {"quantity": "1"})
    response = actions.post(
        "/checkout", {"fulfilment": "office_delivery", "delivery_place_id": "0"}
    )
    assert response.status_code == 400
    assert "请选择送货的办公室" in page_text(response)
    assert session.scalar(sa.select(sa.func.count(Order.id))) == 0
    assert product.stock == 5
