"""A double-clicked checkout and two tabs adding the same product, with real threads.

Committed data (threads cannot see the test's rolled-back transaction), deleted afterwards.
Runs on SQLite and, in `make test`, on PostgreSQL, where the requests truly overlap.
"""

import threading
from decimal import Decimal

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.models import CartLine, Order, Product, Role, StockMovement, User, UserRole
from app.services import accounts, cart, orders
from app.services.clock import utcnow
from app.services.errors import DomainError


@pytest.fixture
def buyer_id(race_engine, scarce_product):
    with Session(race_engine) as session:
        user = accounts.create_user(
            session,
            email="cart-race@shanhai.demo",
            name="并发买家",
            password="cart-race-password",
            roles={Role.STAFF},
            organization=None,
            now=utcnow(),
        )
        session.commit()
        user_id = user.id
    yield user_id
    with Session(race_engine) as session:
        numbers = list(session.scalars(sa.select(Order.number).where(Order.buyer_id == user_id)))
        session.execute(sa.delete(StockMovement).where(StockMovement.reference.in_(numbers)))
        for order in session.scalars(sa.select(Order).where(Order.buyer_id == user_id)):
            session.delete(order)
        session.execute(sa.delete(CartLine).where(CartLine.user_id == user_id))
        session.execute(sa.delete(UserRole).where(UserRole.user_id == user_id))
        session.execute(sa.delete(User).where(User.id == user_id))
        session.commit()


def _at_once(race_engine, buyer_id, work, threads=2) -> list[str]:
    """Run `work(session, buyer)` in several threads released together; their outcomes."""
    barrier = threading.Barrier(threads)
    outcomes = []

    def run():
        with Session(race_engine) as session:
            buyer = session.get(User, buyer_id)
            barrier.wait(timeout=30)
            try:
                work(session, buyer)
                session.commit()
                outcomes.append("ok")
            except (DomainError, sa.exc.OperationalError) as error:
                # OperationalError: SQLite refusing a writer that read an older snapshot.
                session.rollback()
                outcomes.append(type(error).__name__)

    running = [threading.Thread(target=run) for _ in range(threads)]
    for thread in running:
        thread.start()
    for thread in running:
        thread.join(timeout=60)
    return outcomes


def test_a_double_submitted_checkout_places_one_order(race_engine, scarce_product, buyer_id):
    with Session(race_engine) as session:
        cart.add(session, session.get(User, buyer_id), scarce_product, "2", utcnow())
        session.commit()

    outcomes = _at_once(
        race_engine, buyer_id, lambda s, buyer: orders.place_order(s, buyer, utcnow())
    )

    assert outcomes.count("ok") == 1, outcomes
    with Session(race_engine) as session:
        placed = sa.select(sa.func.count(Order.id)).where(Order.buyer_id == buyer_id)
        assert session.scalar(placed) == 1
        assert session.get(Product, scarce_product).stock == 3  # 5 less one order of 2


def test_two_tabs_adding_the_same_product_both_count(race_engine, scarce_product, buyer_id):
    outcomes = _at_once(
        race_engine,
        buyer_id,
        lambda s, buyer: cart.add(s, buyer, scarce_product, "1", utcnow()),
    )
    assert "ok" in outcomes and set(outcomes) <= {"ok", "OperationalError"}, outcomes
    with Session(race_engine) as session:
        line = session.scalar(sa.select(CartLine).where(CartLine.user_id == buyer_id))
        # Every add that was reported as done is in the cart: none lost, none an error page.
        assert line.quantity == Decimal(outcomes.count("ok"))
