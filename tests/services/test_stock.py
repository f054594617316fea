from decimal import Decimal

import pytest
import sqlalchemy as sa

from app.models import StockMovement, StockReason
from app.services import stock
from app.services.clock import utcnow
from app.services.errors import DomainError, NotFound


def movements(session, product):
    return session.scalars(
        sa.select(StockMovement)
        .where(StockMovement.product_id == product.id)
        .order_by(StockMovement.id)
    ).all()


def test_taking_stock_lowers_it_and_records_why(session, make):
    product = make.product(stock=Decimal(10))
    user = make.user()
    stock.take(session, product.id, 3, now=utcnow(), reference="SH-0001", actor_id=user.id)
    assert product.stock == Decimal(7)
    [movement] = movements(session, product)
    assert (movement.change, movement.reason, movement.reference, movement.actor_id) == (
        Decimal(-3),
        StockReason.ORDER,
        "SH-0001",
        user.id,
    )


def test_taking_more_than_is_left_changes_nothing(session, make):
    product = make.product(stock=Decimal(2))
    with pytest.raises(stock.OutOfStock) as refused:
        stock.take(session, product.id, 3, now=utcnow())
    assert refused.value.field == "quantity" and refused.value.status_code == 409
    session.refresh(product)
    assert product.stock == Decimal(2)
    assert movements(session, product) == []


def test_weights_are_taken_exactly_to_the_last_gram(session, make):
    product = make.product(stock=Decimal("0.3"))
    stock.take(session, product.id, "0.1", now=utcnow())
    stock.take(session, product.id, "0.2", now=utcnow())
    assert product.stock == Decimal(0)
    with pytest.raises(stock.OutOfStock):
        stock.take(session, product.id, "0.001", now=utcnow())


@pytest.mark.parametrize(
    "quantity", [0, -1, "abc", "1.0001", "NaN", "Infinity", "", None, "1e12", "1e1000000000"]
)
def test_nonsense_quantities_are_refused(session, make, quantity):
    product = make.product(stock=Decimal(10))
    with pytest.raises(DomainError) as refused:
        stock.take(session, product.id, quantity, now=utcnow())
    assert refused.value.field == "quantity"
    assert movements(session, product) == []


def test_giving_back_raises_stock(session, make):
    product = make.product(stock=Decimal(1))
    stock.give_back(session, product.id, "2.5", now=utcnow(), reference="SH-0002")
    assert product.stock == Decimal("3.5")
    assert movements(session, product)[0].reason == StockReason.ORDER_RELEASED


def test_corrections_go_both_ways_but_never_below_zero(session, make):
    product = make.product(stock=Decimal(5))
    stock.adjust(session, product.id, 40, now=utcnow(), actor_id=None, reference="到货")
    stock.adjust(session, product.id, "-3", now=utcnow(), actor_id=None, reference="损耗")
    assert product.stock == Decimal(42)
    with pytest.raises(stock.OutOfStock):
        stock.adjust(session, product.id, -43, now=utcnow(), actor_id=None, reference="盘点")
    assert [m.change for m in movements(session, product)] == [Decimal(40), Decimal(-3)]
    assert {m.reason for m in movements(session, product)} == {StockReason.ADJUSTMENT}


def test_unknown_products_are_not_found(session):
    with pytest.raises(NotFound):
        stock.take(session, 999_999, 1, now=utcnow())
    with pytest.raises(NotFound):
        stock.give_back(session, 999_999, 1, now=utcnow())
