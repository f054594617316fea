"""The supplier portal's service (app.services.supplier_portal): stock corrections through the
stock service, thresholds, history, and the dashboard's figures, always scoped to one supplier.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa
from flask_babel import force_locale

from app.models import (
    DeliveryStatus,
    LedgerEntry,
    ProductRevision,
    ProductStatus,
    RevisionStatus,
    Role,
    StockMovement,
    StockReason,
    Unit,
)
from app.services import accounts, cart, ledger, orders, stock, supplier_portal
from app.services import canteen as bulk
from app.services.clock import LOCAL_TZ, utcnow
from app.services.errors import DomainError, NotFound, PermissionDenied
from app.services.supplier_portal import AdjustMode, StockBelowZero
from tests import helpers


@pytest.fixture(autouse=True)
def _english(app, monkeypatch):
    monkeypatch.setattr(accounts, "generate_password_hash", helpers.cheap_password_hash)
    with app.app_context(), force_locale("en"):
        yield


def at(day: date, hour: int = 10) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=LOCAL_TZ).astimezone(UTC)


def movements(session, product) -> list[StockMovement]:
    return list(
        session.scalars(
            sa.select(StockMovement)
            .where(StockMovement.product_id == product.id)
            .order_by(StockMovement.id)
        )
    )


def level(session, product) -> Decimal:
    session.expire(product)
    return product.stock


@pytest.fixture
def seller(make):
    return make.user(roles={Role.SUPPLIER}, organization=make.supplier(), name="李师傅")


def adjust(session, seller, product, quantity, reason="received from the farm", **kw):
    kw.setdefault("mode", AdjustMode.CHANGE)
    return supplier_portal.adjust_stock(
        session, seller, product.id, quantity=quantity, reason=reason, now=utcnow(), **kw
    )


# --- corrections ----------------------------------------------------------------------------------


def test_a_correction_moves_the_stock_and_records_who_when_and_why(session, make, seller):
    eggs = make.product(supplier=seller.organization, stock=Decimal(50))
    done = adjust(session, seller, eggs, "+40")
    spoiled = adjust(session, seller, eggs, "-3", reason="spoiled")
    session.commit()

    assert (done.level, spoiled.level) == (Decimal(90), Decimal(87))
    assert level(session, eggs) == Decimal(87)
    assert [(m.change, m.reason, m.reference, m.actor_id) for m in movements(session, eggs)] == [
        (Decimal(40), StockReason.ADJUSTMENT, "received from the farm", seller.id),
        (Decimal(-3), StockReason.ADJUSTMENT, "spoiled", seller.id),
    ]


def test_a_correction_below_zero_is_refused_with_the_level_and_changes_nothing(
    session, make, seller
):
    eggs = make.product(supplier=seller.organization, stock=Decimal(2))
    with pytest.raises(StockBelowZero) as refused:
        adjust(session, seller, eggs, "-3", reason="spoiled")
    assert refused.value.status_code == 409 and refused.value.field == "quantity"
    assert "Only 2 box in stock now" in str(refused.value.message)
    session.rollback()
    assert level(session, eggs) == Decimal(2)
    assert movements(session, eggs) == []


@pytest.mark.parametrize("reason", ["", "   ", None, "x" * 65])
def test_a_correction_needs_a_short_reason_and_stores_nothing_without_one(
    session, make, seller, reason
):
    eggs = make.product(supplier=seller.organization, stock=Decimal(50))
    with pytest.raises(DomainError) as refused:
        adjust(session, seller, eggs, "+40", reason=reason)
    assert refused.value.field == "reason"
    session.rollback()
    assert level(session, eggs) == Decimal(50)
    assert movements(session, eggs) == []


@pytest.mark.parametrize(
    ("unit", "typed", "message"),
    [
        (Unit.BOX, "1.5", "whole numbers"),
        (Unit.PIECE, "0.5", "whole numbers"),
        (Unit.KG, "0.0001", "three decimals"),
        (Unit.BOX, "0", "zero changes nothing"),
        (Unit.BOX, "-0", "zero changes nothing"),
        (Unit.BOX, "abc", "as a number"),
        (Unit.BOX, "NaN", "as a number"),
        (Unit.BOX, "Infinity", "as a number"),
        (Unit.BOX, "", "as a number"),
        (Unit.BOX, "1e12", "more than the stock can hold"),
        (Unit.BOX, "-1e12", "more than the stock can hold"),
        # Beyond the exponents Decimal arithmetic takes: abs() of it raised Overflow.
        (Unit.BOX, "1e1000000000", "more than the stock can hold"),
        (Unit.BOX, "-1e1000000000", "more than the stock can hold"),
    ],
)
def test_nonsense_changes_are_refused_beside_the_quantity(
    session, make, seller, unit, typed, message
):
    product = make.product(supplier=seller.organization, unit=unit, stock=Decimal(50))
    with pytest.raises(DomainError) as refused:
        adjust(session, seller, product, typed)
    assert refused.value.field == "quantity"
    assert message in str(refused.value.message)
    session.rollback()
    assert movements(session, product) == []


@pytest.mark.parametrize(
    ("unit", "typed", "expected"),
    [
        (Unit.KG, "2.5", Decimal("52.5")),
        (Unit.JIN, "-0.125", Decimal("49.875")),
        (Unit.BOX, "＋40", Decimal(90)),  # full-width plus, as a Chinese keyboard types it
        (Unit.BOX, "－3", Decimal(47)),
        (Unit.BOX, "−3", Decimal(47)),
        (Unit.BOX, " 40.000 ", Decimal(90)),
    ],
)
def test_weights_take_grams_and_phone_keyboards_signs_are_understood(
    session, make, seller, unit, typed, expected
):
    product = make.product(supplier=seller.organization, unit=unit, stock=Decimal(50))
    assert adjust(session, seller, product, typed).level == expected


def test_the_stock_cannot_be_pushed_past_what_the_column_holds(session, make, seller):
    product = make.product(supplier=seller.organization, stock=Decimal(999_999_990))
    with pytest.raises(DomainError, match="more than the stock can hold"):
        adjust(session, seller, product, "+20")
    assert level(session, product) == Decimal(999_999_990)


def test_a_count_applies_the_difference_from_the_level_the_page_showed(session, make, seller):
    """The page showed 50; an order took 2; the supplier counted 45 on the shelf. Setting 45
    outright would hand the order's 2 boxes back; the count's -5 lands on top of the order."""
    eggs = make.product(supplier=seller.organization, stock=Decimal(50))
    stock.take(session, eggs.id, 2, now=utcnow(), reference="261127-00001")

    done = adjust(
        session, seller, eggs, "45", reason="monthly count", mode=AdjustMode.COUNT, seen="50"
    )

    assert (done.change, done.level, done.moved_meanwhile) == (
        Decimal(-5),
        Decimal(43),
        Decimal(-2),
    )
    assert [m.change for m in movements(session, eggs)] == [Decimal(-2), Decimal(-5)]


def test_a_count_equal_to_the_level_shown_records_nothing(session, make, seller):
    eggs = make.product(supplier=seller.organization, stock=Decimal(50))
    done = adjust(session, seller, eggs, "50", mode=AdjustMode.COUNT, seen="50")
    assert (done.change, done.level) == (Decimal(0), Decimal(50))
    assert movements(session, eggs) == []


def test_a_count_that_orders_overtook_is_refused_rather_than_going_below_zero(
    session, make, seller
):
    eggs = make.product(supplier=seller.organization, stock=Decimal(5))
    stock.take(session, eggs.id, 4, now=utcnow(), reference="261127-00002")
    with pytest.raises(StockBelowZero, match="Only 1 box"):
        adjust(session, seller, eggs, "2", mode=AdjustMode.COUNT, seen="5")
    assert level(session, eggs) == Decimal(1)


@pytest.mark.parametrize("seen", ["", None, "abc", "-1", "NaN", "1e1000000000"])
def test_a_count_without_a_sane_level_shown_asks_for_a_reload(session, make, seller, seen):
    eggs = make.product(supplier=seller.organization, stock=Decimal(5))
    with pytest.raises(DomainError, match="Reload"):
        adjust(session, seller, eggs, "3", mode=AdjustMode.COUNT, seen=seen)
    assert movements(session, eggs) == []


@pytest.mark.parametrize("typed", ["-1", "2.5"])
def test_a_counted_level_is_whole_and_not_negative(session, make, seller, typed):
    eggs = make.product(supplier=seller.organization, stock=Decimal(5))
    with pytest.raises(DomainError) as refused:
        adjust(session, seller, eggs, typed, mode=AdjustMode.COUNT, seen="5")
    assert refused.value.field == "quantity"


def test_an_unknown_mode_is_refused(session, make, seller):
    eggs = make.product(supplier=seller.organization)
    with pytest.raises(DomainError) as refused:
        adjust(session, seller, eggs, "3", mode="replace")
    assert refused.value.field == "mode"


def test_another_suppliers_product_is_not_found_for_every_stock_action(session, make, seller):
    theirs = make.product(stock=Decimal(9))
    for action in (
        lambda: adjust(session, seller, theirs, "+1"),
        lambda: supplier_portal.set_threshold(session, seller, theirs.id, "3"),
        lambda: supplier_portal.stock_history(session, seller, theirs.id, 1),
        lambda: supplier_portal.own_product(session, seller, 10**9),
    ):
        with pytest.raises(NotFound):
            action()
    assert level(session, theirs) == Decimal(9)
    assert theirs.low_stock_threshold is None


@pytest.mark.parametrize("role", [Role.STAFF, Role.COORDINATOR, Role.CANTEEN_BUYER])
def test_only_suppliers_keep_stock_here(session, make, role):
    user = make.user(roles={role})
    product = make.product(supplier=make.supplier())
    with pytest.raises(PermissionDenied):
        adjust(session, user, product, "+1")
    with pytest.raises(PermissionDenied):
        supplier_portal.dashboard(session, user, utcnow())


def test_an_archived_product_is_off_the_list_and_its_stock_not_corrected(session, make, seller):
    old = make.product(supplier=seller.organization, status=ProductStatus.ARCHIVED)
    draft = make.product(supplier=seller.organization, status=ProductStatus.DRAFT)
    listed = supplier_portal.stock_page(session, seller, 1)
    assert [p.id for p in listed.items] == [draft.id]
    with pytest.raises(supplier_portal.NotKept):
        adjust(session, seller, old, "+1")


# --- thresholds and flags ---------------------------------------------------------------------


def test_a_product_is_flagged_at_its_threshold_not_above_it(session, make, seller):
    org = seller.organization
    at_threshold = make.product(supplier=org, name_zh="甲", stock=Decimal(10))
    above = make.product(supplier=org, name_zh="乙", stock=Decimal(11))
    out = make.product(supplier=org, name_zh="丙", stock=Decimal(0))
    no_threshold = make.product(supplier=org, name_zh="丁", stock=Decimal(1))
    theirs = make.product(stock=Decimal(0))  # another supplier's, out of stock
    for product in (at_threshold, above):
        supplier_portal.set_threshold(session, seller, product.id, "10")
    session.commit()

    assert at_threshold.stock_is_low and not above.stock_is_low
    flagged = supplier_portal.stock_page(session, seller, 1, only_flagged=True)
    assert [p.id for p in flagged.items] == [out.id, at_threshold.id]  # by name: 丙, 甲
    board = supplier_portal.dashboard(session, seller, utcnow())
    assert [p.id for p in board.stock_warnings] == [out.id, at_threshold.id]  # out first
    assert board.stock_warnings_total == 2
    assert no_threshold.id not in [p.id for p in board.stock_warnings]
    assert theirs.id not in [p.id for p in board.stock_warnings]


def test_setting_a_threshold_writes_that_column_only(session, make, seller):
    """The page was loaded with 50 in stock; an order takes 5 before the threshold is saved.
    The order's take stands: the threshold form never writes the stock."""
    eggs = make.product(supplier=seller.organization, stock=Decimal(50))
    stock.take(session, eggs.id, 5, now=utcnow(), reference="261127-00003")
    session.commit()
    supplier_portal.set_threshold(session, seller, eggs.id, "12")
    session.commit()
    session.expire(eggs)
    assert (eggs.stock, eggs.low_stock_threshold) == (Decimal(45), Decimal(12))

    supplier_portal.set_threshold(session, seller, eggs.id, "  ")
    session.commit()
    session.expire(eggs)
    assert eggs.low_stock_threshold is None


@pytest.mark.parametrize("typed", ["-1", "abc", "2.5", "1e12"])
def test_a_bad_threshold_is_refused_beside_its_field(session, make, seller, typed):
    eggs = make.product(supplier=seller.organization, unit=Unit.BOX, low_stock_threshold=Decimal(3))
    with pytest.raises(DomainError) as refused:
        supplier_portal.set_threshold(session, seller, eggs.id, typed)
    assert refused.value.field == "threshold"
    session.rollback()
    session.expire(eggs)
    assert eggs.low_stock_threshold == Decimal(3)


# --- history ----------------------------------------------------------------------------------


def test_history_is_newest_first_with_the_level_after_each_and_no_buyer_names(
    session, make, seller
):
    buyer = make.user(name="王科长")
    eggs = make.product(supplier=seller.organization, stock=Decimal(20))
    cart.add(session, buyer, eggs.id, "3", utcnow())
    order = orders.place_order(session, buyer, utcnow())  # 20 -> 17
    adjust(session, seller, eggs, "+10")  # 27
    adjust(session, seller, eggs, "-2", reason="spoiled")  # 25
    session.commit()

    _product, page = supplier_portal.stock_history(session, seller, eggs.id, 1)

    assert [(r.movement.change, r.level, r.who) for r in page.items] == [
        (Decimal(-2), Decimal(25), "李师傅"),
        (Decimal(10), Decimal(27), "李师傅"),
        (Decimal(-3), Decimal(17), ""),
    ]
    assert page.items[2].movement.reference == order.number


def test_history_pages_count_the_level_back_from_now(session, make, seller):
    eggs = make.product(supplier=seller.organization, stock=Decimal(0))
    for n in range(1, 6):
        adjust(session, seller, eggs, str(n))  # 1, 3, 6, 10, 15
    session.commit()
    _product, second = supplier_portal.stock_history(session, seller, eggs.id, 2, per_page=2)
    assert [(r.movement.change, r.level) for r in second.items] == [
        (Decimal(3), Decimal(6)),
        (Decimal(2), Decimal(3)),
    ]
    assert second.pages == 3
    with pytest.raises(NotFound):
        supplier_portal.stock_history(session, seller, eggs.id, 4, per_page=2)


# --- the dashboard ------------------------------------------------------------------------------


def test_deliveries_to_act_on_are_this_suppliers_by_status(session, make):
    w = make.canteen_world()
    confirmed = make.bulk_order(w.buyer, [(w.bacon, "20")])
    new = make.bulk_order(w.buyer, [(w.mushrooms, "10"), (w.tea, "5")])
    (to_ship,) = confirmed.deliveries
    bulk.confirm(session, to_ship, w.seller_a, utcnow())
    shipped = make.bulk_order(w.buyer, [(w.bacon, "25")])
    make.shipped(shipped.deliveries[0], w.seller_a)
    session.commit()

    board = supplier_portal.dashboard(session, w.seller_a, utcnow())

    by_status = {g.status: [d.id for d in g.deliveries] for g in board.deliveries}
    mine = next(d for d in new.deliveries if d.supplier_id == w.supplier_a.id)
    assert by_status == {
        DeliveryStatus.NEW: [mine.id],
        DeliveryStatus.CONFIRMED: [to_ship.id],
        DeliveryStatus.CHANGES_PROPOSED: [],
    }
    assert board.deliveries_to_act_on == 2
    theirs = supplier_portal.dashboard(session, w.seller_b, utcnow())
    assert [d.supplier_id for g in theirs.deliveries for d in g.deliveries] == [w.supplier_b.id]


def test_sales_are_the_suppliers_ledger_sums_per_product_and_month(session, make):
    """Three staff orders and a canteen delivery of supplier A over fourteen months, and one
    of supplier B: A's table shows the last twelve months of A's only, equal to the ledger."""
    w = make.canteen_world()
    clerk = make.user(roles={Role.COUNTER_CLERK})
    staff = make.user()
    eggs = make.product(supplier=w.supplier_a, name_zh="黑鸡蛋", retail_price_fen=3600)
    tea_box = make.product(supplier=w.supplier_b, name_zh="茶叶礼盒", retail_price_fen=9900)

    def paid(product, quantity, day):
        cart.add(session, staff, product.id, quantity, at(day))
        order = orders.place_order(session, staff, at(day))
        orders.take_counter_payment(session, order, clerk, at(day, 11))
        session.commit()

    paid(eggs, "2", date(2025, 11, 30))  # thirteen months back: not shown
    paid(eggs, "1", date(2025, 12, 1))  # the first month shown
    paid(eggs, "3", date(2026, 6, 15))
    paid(eggs, "1", date(2026, 6, 30))
    paid(tea_box, "1", date(2026, 6, 15))  # supplier B
    order = make.bulk_order(w.buyer, [(w.bacon, "20")], now=at(date(2026, 10, 20)))
    (delivery,) = order.deliveries
    make.shipped(delivery, w.seller_a, now=at(date(2026, 10, 21)))
    bulk.receive(
        session,
        delivery,
        w.manager,
        at(date(2026, 10, 27)),
        {line.id: bulk.ReceivedLine("20") for line in delivery.open_lines},
        bulk.CanteenPolicy(),
    )
    session.commit()

    sales = supplier_portal.dashboard(session, w.seller_a, at(date(2026, 11, 20))).sales

    assert sales.months[0] == date(2025, 12, 1) and sales.months[-1] == date(2026, 11, 1)
    rows = {row.name_zh: row for row in sales.rows}
    assert set(rows) == {"黑鸡蛋", "腊肉"}
    assert rows["黑鸡蛋"].months[0] == 3600
    assert rows["黑鸡蛋"].months[6] == 4 * 3600  # June 2026
    assert rows["腊肉"].months[10] == 20 * 2150  # October 2026
    assert sales.total == 5 * 3600 + 20 * 2150
    assert sales.month_totals[6] == 4 * 3600
    # The same figures straight from the ledger, for supplier A in those twelve months.
    for row in sales.rows:
        for month, amount in zip(sales.months, row.months, strict=True):
            end = supplier_portal.add_months(month, 1) - timedelta(days=1)
            assert amount == (
                session.scalar(
                    sa.select(sa.func.coalesce(sa.func.sum(LedgerEntry.amount_fen), 0)).where(
                        LedgerEntry.supplier_id == w.supplier_a.id,
                        LedgerEntry.product_id == row.product_id,
                        LedgerEntry.occurred_on.between(month, end),
                    )
                )
            )
    assert ledger.check_rollup(session) == []


def test_listings_waiting_show_the_latest_version_when_pending_or_sent_back(session, make, seller):
    org = seller.organization
    now = utcnow()

    def revision(product, status, minutes):
        return make._add(
            ProductRevision(
                product=product,
                status=status,
                data={},
                review_reasons=["retail_price"],
                submitted_at=now - timedelta(minutes=minutes),
                reviewed_at=None if status == RevisionStatus.PENDING else now,
                review_comment="价格偏高" if status == RevisionStatus.RETURNED else "",
            )
        )

    waiting = make.product(supplier=org)
    returned = make.product(supplier=org)
    redone = make.product(supplier=org)
    approved = make.product(supplier=org)
    revision(waiting, RevisionStatus.PENDING, 5)
    revision(returned, RevisionStatus.RETURNED, 30)
    revision(redone, RevisionStatus.RETURNED, 60)
    revision(redone, RevisionStatus.APPROVED, 10)  # fixed and approved since
    revision(approved, RevisionStatus.APPROVED, 10)
    revision(make.product(), RevisionStatus.PENDING, 5)  # another supplier's

    board = supplier_portal.dashboard(session, seller, utcnow())

    assert [(r.product_id, r.status) for r in board.revisions] == [
        (returned.id, RevisionStatus.RETURNED),
        (waiting.id, RevisionStatus.PENDING),
    ]


def test_a_new_supplier_has_an_empty_dashboard(session, make, seller):
    board = supplier_portal.dashboard(session, seller, utcnow())
    assert board.deliveries_to_act_on == 0
    assert board.sales.rows == [] and board.sales.total == 0
    assert len(board.sales.months) == 12
    assert board.stock_warnings == [] and board.revisions == []
