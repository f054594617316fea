"""The supplier's dashboard page: deliveries to act on, stock warnings, listings under review,
sales by product and month; a supplier lands here after logging in."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa

from app.models import LedgerEntry, ProductRevision, RevisionStatus, Role
from app.services import canteen, cart, orders
from app.services.clock import local_date, utcnow
from app.services.money import format_yuan
from tests.conftest import page_text
from tests.helpers import PASSWORD


@pytest.fixture
def english(client):
    client.set_cookie("lang", "en")


def section(response, section_id: str) -> str:
    html = response.get_data(as_text=True)
    found = re.search(rf'<section[^>]*id="{section_id}".*?</section>', html, re.S)
    assert found, f"no section {section_id}"
    return found.group(0)


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_a_new_supplier_sees_empty_states(client, actions, make, english):
    actions.login_as(make.user(roles={Role.SUPPLIER}, organization=make.supplier()))
    response = client.get("/supplier/")
    assert response.status_code == 200
    text = page_text(response)
    assert "Nothing to act on." in text
    assert "No product is low on stock." in text
    assert "No sales counted in the last twelve months." in text
    assert 'id="listings"' not in response.get_data(as_text=True)
    assert "<svg" not in response.get_data(as_text=True)


def test_deliveries_to_act_on_link_to_each_delivery_and_never_show_another_suppliers(
    client, actions, session, make, english
):
    w = make.canteen_world()
    first = make.bulk_order(w.buyer, [(w.bacon, "20"), (w.tea, "5")])
    second = make.bulk_order(w.buyer, [(w.mushrooms, "20")], po_reference="PO-2")
    to_ship = second.deliveries[0]
    canteen.confirm(session, to_ship, w.seller_a, utcnow())
    session.commit()
    mine = next(d for d in first.deliveries if d.supplier_id == w.supplier_a.id)
    theirs = next(d for d in first.deliveries if d.supplier_id == w.supplier_b.id)
    actions.login_as(w.seller_a)

    response = client.get("/supplier/")

    orders_html = section(response, "orders")
    new_html = re.search(r'id="deliveries-new".*?</ul>', orders_html, re.S).group(0)
    ship_html = re.search(r'id="deliveries-confirmed".*?</ul>', orders_html, re.S).group(0)
    assert f'href="/supplier/deliveries/{mine.id}"' in new_html
    assert f'href="/supplier/deliveries/{to_ship.id}"' in ship_html
    assert "To confirm" in text_of(new_html) and "To ship" in text_of(ship_html)
    assert str(first.delivery_date) in text_of(new_html)
    assert f"/supplier/deliveries/{theirs.id}" not in response.get_data(as_text=True)


def test_an_overdue_delivery_is_marked(client, actions, session, make, english):
    w = make.canteen_world()
    order = make.bulk_order(w.buyer, [(w.bacon, "20")])
    order.delivery_date = local_date(utcnow()) - timedelta(days=1)  # the date went by
    session.commit()
    actions.login_as(w.seller_a)
    assert "overdue" in text_of(section(client.get("/supplier/"), "orders"))


def test_sales_show_this_suppliers_ledger_per_product_and_month(
    client, actions, session, make, english
):
    w = make.canteen_world()
    clerk = make.user(roles={Role.COUNTER_CLERK})
    staff = make.user()
    eggs = make.product(
        supplier=w.supplier_a, name_zh="黑鸡蛋", name_en="Eggs", retail_price_fen=3600
    )
    tea_box = make.product(supplier=w.supplier_b, name_zh="茶叶礼盒", retail_price_fen=9900)
    for product, quantity in ((eggs, "3"), (tea_box, "1")):
        cart.add(session, staff, product.id, quantity, utcnow())
        order = orders.place_order(session, staff, utcnow())
        orders.take_counter_payment(session, order, clerk, utcnow())
    session.commit()
    actions.login_as(w.seller_a)

    response = client.get("/supplier/")

    sales = section(response, "sales")
    ledger_sum = session.scalar(
        sa.select(sa.func.sum(LedgerEntry.amount_fen)).where(
            LedgerEntry.supplier_id == w.supplier_a.id
        )
    )
    assert ledger_sum == 3 * 3600
    eggs_row = re.search(rf'<tr data-product="p{eggs.id}">.*?</tr>', sales, re.S).group(0)
    assert "Eggs" in text_of(eggs_row)
    assert text_of(eggs_row).split()[-1] == format_yuan(ledger_sum)
    total = re.search(r'id="sales-total">([^<]+)<', sales).group(1)
    assert total == format_yuan(ledger_sum)
    assert "茶叶礼盒" not in sales and format_yuan(9900) not in sales
    assert "<svg" in sales and "<script" not in sales  # drawn on the server


def test_stock_warnings_link_to_the_stock_page_and_show_only_own_low_products(
    client, actions, make, english
):
    supplier = make.supplier()
    low = make.product(supplier=supplier, name_en="Oil", stock=5, low_stock_threshold=Decimal(5))
    fine = make.product(supplier=supplier, name_en="Beef", stock=6, low_stock_threshold=Decimal(5))
    out = make.product(supplier=supplier, name_en="Eggs", stock=0)
    theirs = make.product(name_en="Duck", stock=0)
    actions.login_as(make.user(roles={Role.SUPPLIER}, organization=supplier))

    warnings = section(client.get("/supplier/"), "stock-warnings")

    assert f'href="/supplier/stock?show=low#product-{low.id}"' in warnings
    assert f'href="/supplier/stock?show=low#product-{out.id}"' in warnings
    assert warnings.index("Eggs") < warnings.index("Oil")  # out of stock first
    assert "Out of stock" in text_of(warnings) and "Low" in text_of(warnings)
    assert "Beef" not in warnings and "Duck" not in warnings
    assert f"product-{fine.id}" not in warnings and f"product-{theirs.id}" not in warnings


def test_listings_under_review_or_sent_back_link_to_their_edit_page(client, actions, make, english):
    supplier = make.supplier()
    returned = make.product(supplier=supplier, name_en="Beef")
    waiting = make.product(supplier=supplier, name_en="Duck")
    theirs = make.product(name_en="Tea")
    now = utcnow()
    for product, status in (
        (returned, RevisionStatus.RETURNED),
        (waiting, RevisionStatus.PENDING),
        (theirs, RevisionStatus.PENDING),
    ):
        make._add(
            ProductRevision(
                product=product,
                status=status,
                data={},
                submitted_at=now,
                reviewed_at=now if status == RevisionStatus.RETURNED else None,
                review_comment="请补充产地证明" if status == RevisionStatus.RETURNED else "",
            )
        )
    actions.login_as(make.user(roles={Role.SUPPLIER}, organization=supplier))

    listings = section(client.get("/supplier/"), "listings")

    assert f'href="/supplier/products/{returned.id}/edit"' in listings
    assert f'href="/supplier/products/{waiting.id}/edit"' in listings
    assert "请补充产地证明" in listings
    assert "Sent back" in text_of(listings) and "Awaiting review" in text_of(listings)
    assert "Tea" not in listings and f"/supplier/products/{theirs.id}/" not in listings


@pytest.mark.parametrize("role", [Role.STAFF, Role.COORDINATOR, Role.CANTEEN_BUYER])
def test_other_roles_are_refused(client, actions, make, role):
    actions.login_as(make.user(roles={role}))
    assert client.get("/supplier/").status_code == 403


def test_anonymous_visitors_are_sent_to_log_in(client):
    response = client.get("/supplier/")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/auth/login")


def test_a_supplier_lands_on_the_dashboard_after_logging_in(client, make, actions):
    user = make.user(roles={Role.SUPPLIER}, organization=make.supplier())
    response = actions.post("/auth/login", {"email": user.email, "password": PASSWORD})
    assert response.status_code == 302
    assert response.headers["Location"] == "/supplier/"
