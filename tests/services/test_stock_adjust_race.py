"""A supplier's stock corrections racing buyers for the last units, in real threads.

Each thread has its own session and connection; the data is committed for real (the threads
cannot see a test's rolled-back transaction) and deleted afterwards. On PostgreSQL the
transactions truly overlap; on SQLite they queue for the write lock one after the other in an
order nobody chose, and the same invariants must hold. The supplier's threads run inside a POST
request context, as the view does: on SQLite that takes the write lock up front.
"""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.models import (
    Category,
    Organization,
    OrgKind,
    Product,
    ProductStatus,
    Region,
    Role,
    StockMovement,
    Unit,
    User,
    UserRole,
)
from app.services import stock, supplier_portal
from app.services.accounts import Principal
from app.services.clock import utcnow
from app.services.supplier_portal import AdjustMode, StockBelowZero


@pytest.fixture
def shelf(race_engine):
    """A supplier with one account and one product of 10 boxes, committed; removed after."""
    now = utcnow()
    with Session(race_engine) as session:
        region = Region(code="adjust-race-region", name_zh="竞争地区")
        supplier = Organization(
            code="ADJUST-RACE-SUPPLIER",
            kind=OrgKind.SUPPLIER,
            name_zh="竞争供应商",
            region=region,
            created_at=now,
        )
        seller = User(
            email="adjust-race-seller@shanhai.demo",
            name="库管员",
            password_hash="unused",
            organization=supplier,
            created_at=now,
            role_rows=[UserRole(role=Role.SUPPLIER)],
        )
        product = Product(
            code="ADJUST-RACE-1",
            name_zh="最后几盒鸡蛋",
            supplier=supplier,
            origin_region=region,
            category=Category(slug="adjust-race-category", name_zh="竞争类别"),
            status=ProductStatus.ACTIVE,
            unit=Unit.BOX,
            retail_price_fen=100,
            stock=Decimal(10),
            created_at=now,
            updated_at=now,
        )
        session.add_all([seller, product])
        session.commit()
        ids = {
            "product": product.id,
            "seller": seller.id,
            "supplier": supplier.id,
            "region": region.id,
            "category": product.category_id,
        }
    # Only what the services read: no ORM object crosses into the threads.
    principal = Principal(
        id=ids["seller"],
        email="adjust-race-seller@shanhai.demo",
        name="库管员",
        organization_id=ids["supplier"],
        roles=frozenset({Role.SUPPLIER}),
        session_version=1,
    )
    yield ids["product"], principal
    with race_engine.begin() as connection:
        connection.execute(
            sa.delete(StockMovement).where(StockMovement.product_id == ids["product"])
        )
        connection.execute(sa.delete(Product).where(Product.id == ids["product"]))
        connection.execute(sa.delete(UserRole).where(UserRole.user_id == ids["seller"]))
        connection.execute(sa.delete(User).where(User.id == ids["seller"]))
        connection.execute(sa.delete(Organization).where(Organization.id == ids["supplier"]))
        connection.execute(sa.delete(Region).where(Region.id == ids["region"]))
        connection.execute(sa.delete(Category).where(Category.id == ids["category"]))


def _all_at_once(works) -> list:
    """Run each work in its own thread, released together; their results in the same order."""
    start = threading.Barrier(len(works))
    results: list = [None] * len(works)

    def run(index, work):
        start.wait(timeout=30)
        results[index] = work()

    threads = [threading.Thread(target=run, args=item) for item in enumerate(works)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert all(result is not None for result in results), "a thread did not finish"
    return results


def _buyer(race_engine, product_id, reference):
    def work():
        with Session(race_engine) as session:
            try:
                stock.take(session, product_id, 1, now=utcnow(), reference=reference)
                session.commit()
                return (reference, Decimal(-1), True)
            except stock.OutOfStock:
                session.rollback()
                return (reference, Decimal(-1), False)

    return work


def _supplier(app, race_engine, product_id, seller, reason, **adjustment):
    def work():
        with app.test_request_context(method="POST"), Session(race_engine) as session:
            try:
                done = supplier_portal.adjust_stock(
                    session, seller, product_id, reason=reason, now=utcnow(), **adjustment
                )
                session.commit()
                return (reason, done.change, True)
            except StockBelowZero:
                session.rollback()
                return (reason, None, False)

    return work


def _movements(race_engine, product_id) -> dict[str, Decimal]:
    with Session(race_engine) as session:
        rows = session.execute(
            sa.select(StockMovement.reference, StockMovement.change).where(
                StockMovement.product_id == product_id
            )
        ).all()
    by_reference = {reference: change for reference, change in rows}
    assert len(by_reference) == len(rows), "one movement per success, each with its reference"
    return by_reference


def _level(race_engine, product_id) -> Decimal:
    with Session(race_engine) as session:
        return session.get(Product, product_id).stock


def test_spoilage_written_off_while_buyers_take_the_last_units_never_goes_below_zero(
    app, race_engine, shelf
):
    product_id, seller = shelf
    buyers = [_buyer(race_engine, product_id, f"order-{n}") for n in range(10)]
    spoilage = [
        _supplier(
            app, race_engine, product_id, seller, f"spoiled #{n}", mode=AdjustMode.CHANGE,
            quantity="-3",
        )
        for n in range(4)
    ]  # fmt: skip

    outcomes = _all_at_once(buyers + spoilage)

    final = _level(race_engine, product_id)
    moved = _movements(race_engine, product_id)
    asked = {reference: Decimal(-1) if reference.startswith("order") else Decimal(-3)
             for reference, _change, _ok in outcomes}  # fmt: skip
    succeeded = {reference for reference, _change, ok in outcomes if ok}
    refused = {reference for reference, _change, ok in outcomes if not ok}
    assert final >= 0
    # Every success left its movement, and nothing else did.
    assert set(moved) == succeeded
    assert all(moved[reference] == asked[reference] for reference in succeeded)
    assert final == Decimal(10) + sum(moved.values())
    # 22 units were asked for out of 10: some were refused, and each refusal was truthful (the
    # stock only went down, so it is still less than what that request wanted).
    assert refused
    assert all(final < -asked[reference] for reference in refused)


def test_a_count_racing_orders_lands_on_top_of_them_instead_of_undoing_them(
    app, race_engine, shelf
):
    """The supplier's page showed 10. Three orders were placed, then the supplier submits the
    count of 8 (2 spoiled) at the same moment as four more orders. A count set as the level
    would give back the orders' boxes; applied as its change, the level ends at 10 - 7 - 2."""
    product_id, seller = shelf
    for n in range(3):
        assert _buyer(race_engine, product_id, f"early-{n}")()[2]
    count = _supplier(
        app, race_engine, product_id, seller, "weekly count", mode=AdjustMode.COUNT,
        quantity="8", seen="10",
    )  # fmt: skip
    buyers = [_buyer(race_engine, product_id, f"order-{n}") for n in range(4)]

    outcomes = _all_at_once([count, *buyers])

    assert all(ok for _reference, _change, ok in outcomes)
    assert outcomes[0][1] == Decimal(-2)
    assert _level(race_engine, product_id) == Decimal(1)
    assert sum(_movements(race_engine, product_id).values()) == Decimal(-9)
