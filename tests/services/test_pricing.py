"""Bulk prices and quantity rules (app.services.pricing) and the one rounding rule (line_total)."""

from decimal import Decimal

import pytest
from flask_babel import force_locale

from app.models import ProductStatus, Unit
from app.services.money import line_total
from app.services.pricing import (
    QuantityError,
    bulk_minimum,
    check_bulk_line,
    parse_quantity,
    tier_price,
)


@pytest.fixture(autouse=True)
def _english(app):
    """Messages read in English, whatever the catalog's Chinese says."""
    with app.app_context(), force_locale("en"):
        yield


@pytest.fixture
def rice(make):
    """Cases of 10 kg; 30 kg at least; cheaper from 50 kg and again from 100 kg."""
    return make.bulk_product(
        name_zh="五常大米", tiers=[(30, 2000), (50, 1800), (100, 1500)], case_size="10"
    )


def _refusal(product, quantity) -> str:
    with pytest.raises(QuantityError) as refused:
        check_bulk_line(product, Decimal(quantity))
    return str(refused.value.message)


# --- tiers ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("quantity", "price"),
    [
        ("30", 2000),  # exactly the minimum, the first tier
        ("40", 2000),  # one case below the second threshold: still the first tier
        ("50", 1800),  # exactly at the second threshold
        ("90", 1800),  # one case below the third
        ("100", 1500),  # exactly at the third
        ("2000", 1500),
    ],
)
def test_a_quantity_gets_the_price_of_the_highest_tier_it_reaches(rice, quantity, price):
    assert check_bulk_line(rice, Decimal(quantity)) == price


def test_below_the_first_tier_there_is_no_price(rice):
    assert tier_price(rice, Decimal("29.999")) is None
    assert tier_price(rice, Decimal(30)) == 2000


def test_below_the_minimum_is_refused_naming_the_minimum(rice):
    assert _refusal(rice, "20") == "At least 30 kg."


def test_the_products_own_minimum_counts_when_above_the_first_tier(make):
    product = make.bulk_product(tiers=[(10, 900), (50, 800)], case_size="10", min_bulk_quantity=40)
    assert bulk_minimum(product) == 40
    assert _refusal(product, "30") == "At least 40 kg."
    assert check_bulk_line(product, Decimal(40)) == 900


def test_a_quantity_that_is_not_whole_cases_is_refused_with_the_cases_either_side(rice):
    assert _refusal(rice, "45") == "Order whole cases of 10 kg (e.g. 40 or 50)."
    assert _refusal(rice, "100.5") == "Order whole cases of 10 kg (e.g. 100 or 110)."


def test_fractional_case_sizes_work_in_exact_decimals(make):
    product = make.bulk_product(tiers=[(5, 1200)], case_size="2.5", unit=Unit.KG)
    assert check_bulk_line(product, Decimal("7.5")) == 1200
    assert _refusal(product, "8") == "Order whole cases of 2.5 kg (e.g. 7.5 or 10)."


def test_the_suggested_smaller_quantity_is_never_below_the_minimum(make):
    # Minimum 30, cases of 20: 30 is not whole cases, and 20 (one case) is below the minimum.
    product = make.bulk_product(tiers=[(30, 1000)], case_size="20")
    message = _refusal(product, "30")
    assert message.startswith("Order whole cases of 20 kg")
    suggested = [Decimal(x) for x in message.split("e.g. ")[1].rstrip(").").split(" or ")]
    for quantity in suggested:
        assert check_bulk_line(product, quantity) == 1000


def test_products_not_sold_in_bulk_or_no_longer_on_sale_are_refused(make, session):
    assert _refusal(make.product(), "10") == "This product is not sold in bulk."
    archived = make.bulk_product(status=ProductStatus.ARCHIVED)
    assert _refusal(archived, "10") == "This product is no longer on sale."
    closed = make.bulk_product(tiers=[(10, 500)])
    closed.supplier.active = False
    session.commit()
    assert _refusal(closed, "10") == "This product is no longer on sale."


def test_zero_is_refused(rice):
    assert _refusal(rice, "0") == "Enter a quantity above zero."


# --- what a buyer types --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "value"),
    [
        ("120", Decimal(120)),
        ("１２０", Decimal(120)),  # full-width digits from a Chinese input method
        ("１２０．５", Decimal("120.5")),
        (" 1,200 ", Decimal(1200)),
        ("12.345", Decimal("12.345")),
        ("12.3450", Decimal("12.345")),  # a trailing zero is not a fourth decimal
        ("0", Decimal(0)),
        (Decimal("40"), Decimal(40)),
        (7, Decimal(7)),
    ],
)
def test_quantities_typed_are_read(typed, value):
    assert parse_quantity(typed) == value


@pytest.mark.parametrize("typed", ["", "   ", None])
def test_an_empty_box_is_no_quantity(typed):
    assert parse_quantity(typed) is None


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("abc", "Enter a number."),
        ("12kg", "Enter a number."),
        ("1.2.3", "Enter a number."),
        ("-10", "Enter a quantity of zero or more."),
        ("－１０", "Enter a quantity of zero or more."),  # full-width minus
        ("NaN", "Enter a number."),
        ("Infinity", "Enter a number."),
        ("1e3", "Enter a number."),  # Decimal() would read these; a person does not type them
        ("1_000", "Enter a number."),
        ("1000000000000", "Enter a quantity of zero or more."),  # above the largest stored
        ("12.3456", "At most three decimals."),
        ("0.0001", "At most three decimals."),
    ],
)
def test_what_is_not_a_quantity_is_refused_with_a_message(typed, message):
    with pytest.raises(QuantityError) as refused:
        parse_quantity(typed)
    assert str(refused.value.message) == message


# --- the one rounding rule -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("price", "quantity", "expected"),
    [
        # 1999 x 12.345 = 24677.655 fen -> 24678
        (1999, "12.345", 24678),
        # 1999 x 38.65 = 77261.35 fen -> 77261
        (1999, "38.65", 77261),
        # 1999 x 1.5 = 2998.5 fen: exactly half a fen goes up (half-even would give 2998)
        (1999, "1.5", 2999),
        # 1 x 0.5 = 0.5 fen -> 1 (half-even would give 0)
        (1, "0.5", 1),
        # 1880 x 2.35 = 4418.0 fen: exact, nothing to round
        (1880, "2.35", 4418),
        # 333 x 0.001 = 0.333 fen -> 0
        (333, "0.001", 0),
        # 4200 x 80 = 336000: whole quantities are exact
        (4200, "80", 336000),
        (1999, "0", 0),
    ],
)
def test_a_line_costs_quantity_times_price_rounded_half_up_to_the_fen(price, quantity, expected):
    assert line_total(price, Decimal(quantity)) == expected
