"""The supplier's stock pages: the list with its flags, corrections, thresholds and history."""

from __future__ import annotations

import re
from decimal import Decimal
from html import unescape

import pytest
import sqlalchemy as sa

from app.models import ProductStatus, Role, StockMovement, StockReason, Unit
from app.services import stock
from app.services.clock import utcnow
from tests.conftest import page_text


@pytest.fixture
def seller(make, client, actions):
    client.set_cookie("lang", "en")
    supplier = make.supplier(name_zh="达州灯影坊")
    return actions.login_as(make.user(roles={Role.SUPPLIER}, organization=supplier, name="李师傅"))


@pytest.fixture
def eggs(make, seller):
    return make.product(
        supplier=seller.organization, name_zh="黑鸡蛋", name_en="Black-chicken eggs", stock=50
    )


def row(response, product) -> str:
    """The text of one product's entry on the stock list."""
    html = response.get_data(as_text=True)
    found = re.search(rf'id="product-{product.id}"[^>]*>(.*?)</li>', html, re.S)
    assert found, f"product {product.id} is not listed"
    return unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", found.group(1))))


def input_value(response, name_id: str) -> str:
    html = response.get_data(as_text=True)
    tag = re.search(rf'<input[^>]*id="{name_id}"[^>]*>', html).group(0)
    value = re.search(r'value="([^"]*)"', tag)
    return unescape(value.group(1)) if value else ""


def level(session, product) -> Decimal:
    session.expire(product)
    return product.stock


def movements(session, product) -> list[StockMovement]:
    return list(
        session.scalars(sa.select(StockMovement).where(StockMovement.product_id == product.id))
    )


def adjust(actions, product, **data):
    data.setdefault("mode", "change")
    data.setdefault("reason", "received from the farm")
    return actions.post(f"/supplier/stock/{product.id}/adjust", data)


# --- the list ---------------------------------------------------------------------------------


def test_the_list_shows_own_products_with_level_unit_threshold_and_flags(
    client, make, seller, eggs
):
    org = seller.organization
    oil = make.product(supplier=org, name_zh="菜籽油", unit=Unit.BOTTLE, stock=0)
    beef = make.product(
        supplier=org, name_zh="灯影牛肉", unit=Unit.KG, stock=Decimal("2.5"),
        low_stock_threshold=Decimal(3), status=ProductStatus.DRAFT,
    )  # fmt: skip
    archived = make.product(supplier=org, name_zh="旧货", status=ProductStatus.ARCHIVED)
    theirs = make.product(name_zh="别人的腊肉", stock=0)

    response = client.get("/supplier/stock")

    assert response.status_code == 200
    text = page_text(response)
    assert "Black-chicken eggs" in row(response, eggs) and "50 box" in row(response, eggs)
    assert "No low-stock warning" in row(response, eggs)
    assert "Out of stock" in row(response, oil) and "0 bottle" in row(response, oil)
    assert "2.5 kg" in row(response, beef) and "Low" in row(response, beef)
    assert "Warn at 3" in row(response, beef) and "Draft" in row(response, beef)
    assert "Low" not in row(response, eggs) and "Out of stock" not in row(response, eggs)
    for hidden in (archived, theirs):
        assert f'id="product-{hidden.id}"' not in response.get_data(as_text=True)
        assert hidden.name_en not in text
    # Each form carries the level it was drawn with, for a count to be compared with.
    assert '<input type="hidden" name="seen" value="50">' in response.get_data(as_text=True)


def test_only_low_or_out_products_are_listed_when_asked(client, make, seller, eggs):
    out = make.product(supplier=seller.organization, stock=0)
    response = client.get("/supplier/stock?show=low")
    assert response.status_code == 200
    assert f'id="product-{out.id}"' in response.get_data(as_text=True)
    assert f'id="product-{eggs.id}"' not in response.get_data(as_text=True)
    assert client.get("/supplier/stock?show=everything").status_code == 400
    assert client.get("/supplier/stock?page=abc").status_code == 400
    assert client.get("/supplier/stock?page=9").status_code == 404


def test_a_new_supplier_is_told_it_has_no_products_yet(client, seller):
    response = client.get("/supplier/stock")
    assert response.status_code == 200
    assert "You have no products yet." in page_text(response)


# --- corrections ----------------------------------------------------------------------------------


def test_a_correction_is_saved_with_who_and_why_and_the_supplier_sees_the_new_level(
    client, actions, session, seller, eggs
):
    response = adjust(actions, eggs, quantity="+40")

    assert response.status_code == 303
    assert response.headers["Location"].endswith(f"/supplier/stock#product-{eggs.id}")
    assert level(session, eggs) == Decimal(90)
    [movement] = movements(session, eggs)
    assert (movement.change, movement.reason, movement.reference, movement.actor_id) == (
        Decimal(40),
        StockReason.ADJUSTMENT,
        "received from the farm",
        seller.id,
    )
    page = client.get("/supplier/stock")
    assert "+40, now 90 box" in page_text(page)
    assert "90 box" in row(page, eggs)


def test_a_correction_without_a_reason_is_refused_and_the_input_kept(
    client, actions, session, seller, eggs
):
    response = adjust(actions, eggs, quantity="+40", reason="  ")

    assert response.status_code == 400
    assert "Say why" in row(response, eggs)
    assert input_value(response, f"quantity-{eggs.id}") == "+40"
    assert "Not saved for Black-chicken eggs" in page_text(response)
    assert level(session, eggs) == Decimal(50)
    assert movements(session, eggs) == []


def test_a_correction_below_zero_is_refused_with_the_level_now(
    client, actions, session, seller, eggs
):
    response = adjust(actions, eggs, quantity="-60", reason="spoiled")

    assert response.status_code == 409
    assert "Only 50 box in stock now" in row(response, eggs)
    assert input_value(response, f"quantity-{eggs.id}") == "-60"
    assert input_value(response, f"reason-{eggs.id}") == "spoiled"
    assert level(session, eggs) == Decimal(50)
    assert movements(session, eggs) == []


def test_half_a_box_is_refused_but_half_a_kilo_is_taken(client, actions, session, make, seller):
    box = make.product(supplier=seller.organization, unit=Unit.BOX, stock=10)
    kilo = make.product(supplier=seller.organization, unit=Unit.KG, stock=10)

    refused = adjust(actions, box, quantity="1.5")
    assert refused.status_code == 422
    assert "whole numbers" in row(refused, box)
    assert adjust(actions, kilo, quantity="1.5").status_code == 303
    assert (level(session, box), level(session, kilo)) == (Decimal(10), Decimal("11.5"))


def test_a_count_is_applied_as_the_difference_from_the_level_the_page_showed(
    client, actions, session, seller, eggs
):
    page = client.get("/supplier/stock")
    seen = re.search(r'name="seen" value="([^"]+)"', page.get_data(as_text=True)).group(1)
    stock.take(session, eggs.id, 2, now=utcnow(), reference="261127-00001")  # meanwhile
    session.commit()

    response = adjust(actions, eggs, mode="count", quantity="45", seen=seen, reason="count")

    assert response.status_code == 303
    assert level(session, eggs) == Decimal(43)  # the order's 2 and the count's -5
    told = page_text(client.get("/supplier/stock"))
    assert "Orders changed the stock of Black-chicken eggs by -2" in told
    assert "change of -5 was applied on top, so it is now 43 box" in told


def test_a_count_from_a_tampered_page_asks_for_a_reload(client, actions, session, seller, eggs):
    response = adjust(actions, eggs, mode="count", quantity="45", seen="lots")
    assert response.status_code == 422
    assert "Reload it" in page_text(response)
    assert movements(session, eggs) == []


def test_an_archived_products_stock_is_not_corrected(client, actions, session, make, seller):
    old = make.product(supplier=seller.organization, status=ProductStatus.ARCHIVED, stock=5)
    response = adjust(actions, old, quantity="+1")
    assert response.status_code == 409
    assert "archived" in page_text(response)
    assert level(session, old) == Decimal(5)


# --- thresholds -------------------------------------------------------------------------------


def test_a_threshold_is_set_and_cleared_without_touching_the_stock(
    client, actions, session, seller, eggs
):
    client.get("/supplier/stock")  # the page shows 50 ...
    stock.take(session, eggs.id, 5, now=utcnow(), reference="261127-00002")  # ... an order
    session.commit()

    response = actions.post(f"/supplier/stock/{eggs.id}/threshold", {"threshold": "45"})

    assert response.status_code == 303
    session.expire(eggs)
    assert (eggs.stock, eggs.low_stock_threshold) == (Decimal(45), Decimal(45))
    page = client.get("/supplier/stock")
    assert "warned when Black-chicken eggs is at or below 45 box" in page_text(page)
    assert "Low" in row(page, eggs)  # flagged at the threshold itself

    actions.post(f"/supplier/stock/{eggs.id}/threshold", {"threshold": ""})
    session.expire(eggs)
    assert eggs.low_stock_threshold is None
    assert "Low" not in row(client.get("/supplier/stock"), eggs)


def test_a_negative_threshold_is_refused_beside_the_field(client, actions, session, seller, eggs):
    response = actions.post(f"/supplier/stock/{eggs.id}/threshold", {"threshold": "-1"})
    assert response.status_code == 422
    assert "cannot be below zero" in row(response, eggs)
    assert input_value(response, f"threshold-{eggs.id}") == "-1"
    session.expire(eggs)
    assert eggs.low_stock_threshold is None


# --- history ----------------------------------------------------------------------------------


def test_history_shows_who_when_why_and_the_level_after_newest_first(
    client, actions, make, session, seller, eggs
):
    buyer = make.user(name="王科长")
    stock.take(session, eggs.id, 3, now=utcnow(), reference="261127-00003", actor_id=buyer.id)
    session.commit()
    adjust(actions, eggs, quantity="-2", reason="spoiled")

    response = client.get(f"/supplier/stock/{eggs.id}")

    assert response.status_code == 200
    html = response.get_data(as_text=True)
    rows = re.findall(
        r"<tr>(.*?)</tr>", re.search(r"<tbody>(.*?)</tbody>", html, re.S).group(1), re.S
    )
    texts = [re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", r)).strip() for r in rows]
    assert len(texts) == 2
    assert "-2 45 Adjustment: spoiled 李师傅" in texts[0]
    assert "-3 47 Ordered: 261127-00003 —" in texts[1]
    assert "王科长" not in html  # a buyer's name is not the supplier's to see
    assert re.search(r"\d{1,2}/\d{1,2}/\d{2}", texts[0])  # a local date and time


def test_history_pages(client, actions, session, seller, eggs):
    for n in range(31):
        stock.give_back(session, eggs.id, 1, now=utcnow(), reference=f"r{n}")
    session.commit()
    assert client.get(f"/supplier/stock/{eggs.id}?page=2").status_code == 200
    assert client.get(f"/supplier/stock/{eggs.id}?page=3").status_code == 404
    assert client.get(f"/supplier/stock/{eggs.id}?page=0").status_code == 400


def test_a_product_with_no_movements_has_an_empty_history(client, seller, eggs):
    response = client.get(f"/supplier/stock/{eggs.id}")
    assert response.status_code == 200
    assert "No stock changes yet." in page_text(response)


# --- who may --------------------------------------------------------------------------------------


def test_another_suppliers_product_is_not_found_on_every_stock_route(
    client, actions, session, make, seller
):
    theirs = make.product(stock=7)
    assert client.get(f"/supplier/stock/{theirs.id}").status_code == 404
    assert adjust(actions, theirs, quantity="+1").status_code == 404
    assert (
        actions.post(f"/supplier/stock/{theirs.id}/threshold", {"threshold": "3"}).status_code
        == 404
    )
    assert level(session, theirs) == Decimal(7)
    assert theirs.low_stock_threshold is None
    assert movements(session, theirs) == []


@pytest.mark.parametrize("role", [Role.STAFF, Role.COORDINATOR, Role.CANTEEN_MANAGER])
def test_other_roles_are_refused_every_stock_route(client, actions, session, make, role):
    product = make.product(stock=7)
    actions.login_as(make.user(roles={role}))
    assert client.get("/supplier/stock").status_code == 403
    assert client.get(f"/supplier/stock/{product.id}").status_code == 403
    assert adjust(actions, product, quantity="+1").status_code == 403
    assert (
        actions.post(f"/supplier/stock/{product.id}/threshold", {"threshold": "3"}).status_code
        == 403
    )
    assert level(session, product) == Decimal(7)
    assert movements(session, product) == []


def test_the_list_filter_is_kept_across_a_correction_and_a_bad_one_refused_first(
    client, actions, session, make, seller
):
    out = make.product(supplier=seller.organization, stock=0)
    response = actions.post(
        f"/supplier/stock/{out.id}/adjust?show=low",
        {"mode": "change", "quantity": "+5", "reason": "received from the farm"},
    )
    assert response.headers["Location"].endswith(f"/supplier/stock?show=low#product-{out.id}")

    refused = actions.post(
        f"/supplier/stock/{out.id}/adjust?show=everything",
        {"mode": "change", "quantity": "+5", "reason": "received from the farm"},
    )
    assert refused.status_code == 400
    assert level(session, out) == Decimal(5)
    assert len(movements(session, out)) == 1
