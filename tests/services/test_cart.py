from decimal import Decimal

import pytest

from app.models import ProductStatus, Unit
from app.services import cart
from app.services.clock import utcnow
from app.services.errors import DomainError, NotFound
from app.services.money import line_total


@pytest.mark.parametrize(
    ("raw", "unit", "expected"),
    [("2", Unit.BOX, Decimal(2)), ("2.5", Unit.JIN, Decimal("2.5")), (" 1 ", Unit.PIECE, 1)],
)
def test_quantities_follow_the_unit(raw, unit, expected):
    assert cart.parse_quantity(raw, unit) == expected


@pytest.mark.parametrize(
    ("raw", "unit", "message"),
    [
        ("0", Unit.BOX, "above zero"),
        ("-1", Unit.BOX, "above zero"),
        ("1.5", Unit.BOX, "whole"),
        ("2.55", Unit.KG, "tenths"),
        ("abc", Unit.BOX, "number"),
        ("NaN", Unit.BOX, "above zero"),
        ("1e1000000000", Unit.BOX, "At most"),
        ("1000", Unit.BOX, "At most"),
        ("", Unit.BOX, "number"),
    ],
)
def test_nonsense_quantities_are_refused_with_a_reason(raw, unit, message):
    with pytest.raises(DomainError, match=message) as refused:
        cart.parse_quantity(raw, unit)
    assert refused.value.field == "quantity"


def test_adding_twice_adds_up_and_never_beyond_stock(session, make):
    buyer = make.user()
    product = make.product(stock=Decimal(3))
    cart.add(session, buyer, product.id, "2", utcnow())
    with pytest.raises(DomainError, match="Only 3 left"):
        cart.add(session, buyer, product.id, "2", utcnow())
    line = cart.add(session, buyer, product.id, "1", utcnow())
    assert line.quantity == 3


def test_products_not_on_sale_cannot_go_in_the_cart(session, make):
    buyer = make.user()
    hidden = make.product(status=ProductStatus.DRAFT)
    with pytest.raises(NotFound):
        cart.add(session, buyer, hidden.id, "1", utcnow())
    with pytest.raises(NotFound):
        cart.add(session, buyer, 999_999, "1", utcnow())


def test_the_cart_shows_todays_prices_and_flags_what_can_no_longer_be_had(session, make):
    buyer = make.user()
    beef = make.product(retail_price_fen=4980, stock=Decimal(5))
    fish = make.product(unit=Unit.KG, retail_price_fen=1880, stock=Decimal(10))
    cart.add(session, buyer, beef.id, "2", utcnow())
    cart.add(session, buyer, fish.id, "2.5", utcnow())
    beef.retail_price_fen = 5180  # a price change after adding: the cart follows the catalog
    fish.stock = Decimal(1)
    session.commit()
    view = cart.view(session, buyer)
    assert [item.total_fen for item in view.items] == [10360, 4700]
    assert view.items[1].problem == "Only 1 left."
    assert view.total_fen == 10360 and not view.can_check_out


def test_set_quantity_and_remove(session, make):
    buyer = make.user()
    product = make.product(stock=Decimal(9))
    cart.add(session, buyer, product.id, "1", utcnow())
    cart.set_quantity(session, buyer, product.id, "4")
    assert cart.view(session, buyer).items[0].line.quantity == 4
    cart.remove(session, buyer, product.id)
    assert cart.view(session, buyer).items == []
    with pytest.raises(NotFound):
        cart.remove(session, buyer, product.id)


def test_line_totals_round_half_up_to_the_fen():
    assert line_total(1880, Decimal("2.35")) == 4418  # 44.18
    assert line_total(333, Decimal("1.5")) == 500  # 4.995 -> 5.00
    assert line_total(4980, Decimal(2)) == 9960
