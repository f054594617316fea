"""Pledges (app.services.pledges): what counts, when and at which amount, through the real
order, canteen and invoice services; pace and forecast on fixed dates, worked out by hand;
breakdowns that add up; the drill-down equal to each figure; corrections that keep history.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa
from flask_babel import force_locale

from app.models import (
    BulkOrderStatus,
    Channel,
    LedgerEntry,
    LedgerMonth,
    LedgerSource,
    Organization,
    PaymentMethod,
    Pledge,
    PledgeKind,
    Product,
    Region,
    RegionKind,
    Role,
    User,
)
from app.services import accounts, canteen, cart, invoices, ledger, orders, pledges
from app.services.canteen import CanteenPolicy, ReceivedLine
from app.services.clock import LOCAL_TZ, utcnow
from app.services.errors import DomainError, NotFound, PermissionDenied
from app.services.money import line_total
from app.services.payments import CheckoutSession
from app.services.pledges import OTHERS, LedgerFilter, PledgeData
from tests import helpers

POLICY = CanteenPolicy(approval_threshold_fen=500_000, goods_in_tolerance_percent=10)
YEAR_START, YEAR_END = date(2026, 1, 1), date(2026, 12, 31)


def at(day: date, hour: int = 10) -> datetime:
    """`hour` o'clock in Zhoushan on `day`, as the UTC moment the services are given."""
    return datetime(day.year, day.month, day.day, hour, tzinfo=LOCAL_TZ).astimezone(UTC)


@pytest.fixture(autouse=True)
def _english(app, monkeypatch):
    monkeypatch.setattr(accounts, "generate_password_hash", helpers.cheap_password_hash)
    with app.app_context(), force_locale("en"):
        yield


@dataclass
class World:
    dazhou: Region
    zhoushan: Region
    finance: Organization
    health: Organization
    kitchen: Organization
    staff: User  # of finance
    nurse: User  # of health
    clerk: User
    coordinator: User
    buyer: User
    manager: User
    seller: User  # of the Dazhou bulk supplier
    fish_seller: User  # of the Zhoushan bulk supplier
    beef: Product  # Dazhou, retail ¥58.00
    eggs: Product  # Dazhou, retail ¥36.00
    fish: Product  # Zhoushan, retail ¥45.00
    bacon: Product  # Dazhou bulk: 21.50 from 20 kg, 19.99 from 40 kg, cases of 5
    hairtail: Product  # Zhoushan bulk: 35.80 from 10 kg, cases of 10


def build_world(make) -> World:
    """Dazhou and Zhoushan, two departments with a staff member each, a canteen with its buyer
    and manager, a supplier in each region with retail and bulk products, a clerk, a
    coordinator. (Needs an application context: canteen orders notify people.)"""
    dazhou = make.region(name_zh="达州", kind=RegionKind.PAIRED)
    zhoushan = make.region(name_zh="舟山", kind=RegionKind.LOCAL)
    dazhou_supplier = make.supplier(region=dazhou, name_zh="达州灯影坊")
    zhoushan_supplier = make.supplier(region=zhoushan, name_zh="舟山渔业")
    finance = make.organization(name_zh="市财政局")
    health = make.organization(name_zh="市卫健委")
    kitchen = make.canteen(name_zh="机关食堂")
    return World(
        dazhou=dazhou,
        zhoushan=zhoushan,
        finance=finance,
        health=health,
        kitchen=kitchen,
        staff=make.user(organization=finance),
        nurse=make.user(organization=health),
        clerk=make.user(roles={Role.COUNTER_CLERK}),
        coordinator=make.user(roles={Role.COORDINATOR}),
        buyer=make.user(roles={Role.CANTEEN_BUYER}, organization=kitchen),
        manager=make.user(roles={Role.CANTEEN_MANAGER}, organization=kitchen),
        seller=make.user(roles={Role.SUPPLIER}, organization=dazhou_supplier),
        fish_seller=make.user(roles={Role.SUPPLIER}, organization=zhoushan_supplier),
        beef=make.product(supplier=dazhou_supplier, name_zh="灯影牛肉", retail_price_fen=5800),
        eggs=make.product(supplier=dazhou_supplier, name_zh="黑鸡蛋", retail_price_fen=3600),
        fish=make.product(supplier=zhoushan_supplier, name_zh="舟山鱼干", retail_price_fen=4500),
        bacon=make.bulk_product(
            supplier=dazhou_supplier,
            name_zh="腊肉",
            tiers=[(20, 2150), (40, 1999)],
            case_size="5",
        ),
        hairtail=make.bulk_product(
            supplier=zhoushan_supplier, name_zh="带鱼", tiers=[(10, 3580)], case_size="10"
        ),
    )


@pytest.fixture
def w(make) -> World:
    return build_world(make)


def placed_order(session, buyer, items, placed: datetime):
    for product, quantity in items:
        cart.add(session, buyer, product.id, quantity, placed)
    order = orders.place_order(session, buyer, placed)
    session.commit()
    return order


def paid_order(session, w: World, buyer, items, placed: datetime, paid: datetime):
    order = placed_order(session, buyer, items, placed)
    orders.take_counter_payment(session, order, w.clerk, paid)
    session.commit()
    return order


def received_delivery(
    make, session, w: World, lines, ordered: datetime, received: dict, seller=None
):
    """A canteen order of `lines` shipped whole and checked in with `received` {product: qty}
    on the morning of its delivery day; (order, invoice)."""
    order = make.bulk_order(w.buyer, lines, now=ordered, policy=POLICY)
    (delivery,) = order.deliveries
    make.shipped(delivery, seller or w.seller, now=ordered + timedelta(hours=2))
    goods_in = {
        line.id: ReceivedLine(received[line.product_id], note="称重")
        for line in delivery.open_lines
    }
    invoice = canteen.receive(
        session, delivery, w.manager, at(order.delivery_date, 9), goods_in, POLICY
    )
    session.commit()
    return order, invoice


def paid_online(app, session, stripe_api, buyer, items):
    """An order of `items` paid on Stripe's page (the stand-in), now: real time, as Stripe's
    payment pages expire on the real clock."""
    now = utcnow()
    for product, quantity in items:
        cart.add(session, buyer, product.id, quantity, now)
    order = orders.place_order(
        session,
        buyer,
        now,
        payment_method=PaymentMethod.STRIPE,
        payment_due_at=now + timedelta(minutes=45),
    )
    gateway = app.extensions["stripe_gateway"]
    orders.start_online_payment(session, order, buyer, now, gateway, "http://t/ok", "http://t/no")
    paid = stripe_api.pay(order.stripe_session_id)
    orders.record_online_payment(session, order, CheckoutSession.from_stripe(paid), now, gateway)
    session.commit()
    return order


def net_by(session, column: str, **where) -> dict[int, int]:
    """The ledger's net per value of `column` (a unit, a product), among entries `where`."""
    net: dict[int, int] = {}
    for entry in entries_of(session, **where):
        key = getattr(entry, column)
        net[key] = net.get(key, 0) + entry.amount_fen
    return net


def year_pledge(make, w: World, **overrides) -> Pledge:
    overrides.setdefault("regions", [w.dazhou])
    return make.pledge(**overrides)


def direct_sum(session, first: date, last: date, regions, orgs=None, channels=None) -> int:
    """The sum over ledger_entries itself, written out in SQL."""
    sql = (
        "SELECT COALESCE(SUM(amount_fen), 0) FROM ledger_entries "
        "WHERE occurred_on BETWEEN :first AND :last AND origin_region_id IN :regions"
    )
    params: dict = {"first": first, "last": last, "regions": [r.id for r in regions]}
    bind = [sa.bindparam("regions", expanding=True)]
    if orgs is not None:
        sql += " AND buyer_organization_id IN :orgs"
        params["orgs"] = [o.id for o in orgs]
        bind.append(sa.bindparam("orgs", expanding=True))
    if channels is not None:
        sql += " AND channel IN :channels"
        params["channels"] = [c.value for c in channels]
        bind.append(sa.bindparam("channels", expanding=True))
    return session.scalar(sa.text(sql).bindparams(*bind), params)


def entries_of(session, **where) -> list[LedgerEntry]:
    stmt = sa.select(LedgerEntry).order_by(LedgerEntry.id)
    for name, value in where.items():
        stmt = stmt.where(getattr(LedgerEntry, name) == value)
    return list(session.scalars(stmt))


def met(session, pledge: Pledge, today: date = date(2026, 12, 31)) -> int:
    return pledges.progress(session, pledge, today).met_fen


# --- counting rules ----------------------------------------------------------------------------


def test_a_counter_paid_staff_order_counts_its_lines_for_the_buyers_unit_on_the_paid_day(
    session, make, w
):
    pledge = year_pledge(make, w)
    # Placed late on 2 March, paid at the counter at 8 am on 3 March (00:00 UTC).
    order = paid_order(
        session,
        w,
        w.staff,
        [(w.beef, "2"), (w.eggs, "1")],
        placed=at(date(2026, 3, 2), 22),
        paid=at(date(2026, 3, 3), 8),
    )

    entries = entries_of(session, retail_order_id=order.id)
    assert [(e.amount_fen, e.occurred_on, e.buyer_organization_id) for e in entries] == [
        (11600, date(2026, 3, 3), w.finance.id),
        (3600, date(2026, 3, 3), w.finance.id),
    ]
    assert {(e.channel, e.source, e.origin_region_id) for e in entries} == {
        (Channel.STAFF_RETAIL, LedgerSource.RETAIL_LINE, w.dazhou.id)
    }
    figures = pledges.progress(session, pledge, date(2026, 3, 10))
    assert figures.met_fen == 15200 == order.total_fen
    assert [(m.month, m.amount_fen) for m in figures.monthly if m.amount_fen] == [
        (date(2026, 3, 1), 15200)
    ]
    assert figures.by_channel == [("staff_retail", "Staff retail", 15200)]
    assert ledger.check_rollup(session) == []


def test_unpaid_and_cancelled_staff_orders_count_nothing(session, make, w):
    pledge = year_pledge(make, w)
    placed_order(session, w.staff, [(w.beef, "1")], at(date(2026, 3, 2)))
    cancelled = placed_order(session, w.staff, [(w.eggs, "3")], at(date(2026, 3, 2)))
    orders.cancel(session, cancelled, w.staff, at(date(2026, 3, 2), 11))
    session.commit()

    assert entries_of(session) == []
    assert met(session, pledge) == 0


def test_a_staff_order_counts_for_the_unit_of_its_placing_even_if_the_buyer_moves(session, make, w):
    finance_pledge = year_pledge(make, w, organizations=[w.finance])
    health_pledge = year_pledge(make, w, organizations=[w.health])
    order = placed_order(session, w.staff, [(w.beef, "1")], at(date(2026, 3, 2)))
    # Transferred to health before collecting and paying at the counter.
    w.staff.organization_id = w.health.id
    session.commit()
    orders.take_counter_payment(session, order, w.clerk, at(date(2026, 3, 9)))
    session.commit()

    assert net_by(session, "buyer_organization_id") == {w.finance.id: 5800}
    assert (met(session, finance_pledge), met(session, health_pledge)) == (5800, 0)


def test_rejected_and_cancelled_canteen_orders_and_lines_count_nothing(session, make, w):
    pledge = year_pledge(make, w, regions=[w.dazhou, w.zhoushan])
    # 300 kg of bacon at 19.99 is over the approval threshold: the manager rejects it.
    rejected = make.bulk_order(w.buyer, [(w.bacon, "300")], now=at(date(2026, 5, 4)), policy=POLICY)
    assert rejected.status == BulkOrderStatus.AWAITING_APPROVAL
    canteen.reject(session, rejected, w.manager, at(date(2026, 5, 4), 11), "太多")
    # Released to the supplier, then cancelled by the buyer before it was confirmed.
    cancelled = make.bulk_order(w.buyer, [(w.bacon, "20")], now=at(date(2026, 5, 4)), policy=POLICY)
    canteen.cancel(session, cancelled, w.buyer, at(date(2026, 5, 4), 11), "活动取消")
    # Two suppliers: the fish supplier has none, the buyer cancels that line; the bacon arrives.
    mixed = make.bulk_order(
        w.buyer, [(w.bacon, "20"), (w.hairtail, "10")], now=at(date(2026, 5, 4)), policy=POLICY
    )
    session.commit()
    bacon_delivery, fish_delivery = sorted(mixed.deliveries, key=lambda d: d.supplier_id)
    assert fish_delivery.supplier_id == w.fish_seller.organization_id
    (fish_line,) = fish_delivery.lines
    canteen.confirm(
        session, fish_delivery, w.fish_seller, at(date(2026, 5, 5)), {fish_line.id: "0"}
    )
    canteen.answer_proposal(session, mixed, fish_line.id, w.buyer, at(date(2026, 5, 5)), False)
    make.shipped(bacon_delivery, w.seller, now=at(date(2026, 5, 6)))
    canteen.receive(
        session,
        bacon_delivery,
        w.manager,
        at(mixed.delivery_date, 9),
        {line.id: ReceivedLine("20") for line in bacon_delivery.open_lines},
        POLICY,
    )
    session.commit()

    assert (rejected.status, cancelled.status) == (
        BulkOrderStatus.REJECTED,
        BulkOrderStatus.CANCELLED,
    )
    assert entries_of(session, bulk_order_id=rejected.id) == []
    assert entries_of(session, bulk_order_id=cancelled.id) == []
    assert net_by(session, "product_id", bulk_order_id=mixed.id) == {w.bacon.id: 43000}
    assert met(session, pledge) == 43000


def test_a_refunded_line_comes_off_on_the_day_of_the_refund(session, make, w):
    pledge = year_pledge(make, w)
    order = paid_order(
        session,
        w,
        w.staff,
        [(w.beef, "2"), (w.eggs, "1")],
        placed=at(date(2026, 3, 2)),
        paid=at(date(2026, 3, 2), 11),
    )
    eggs_line = next(line for line in order.lines if line.product_id == w.eggs.id)
    orders.refund(
        session, order, w.clerk, at(date(2026, 4, 1)), None, [eggs_line.id], reason="破损"
    )
    session.commit()

    figures = pledges.progress(session, pledge, date(2026, 4, 2))
    assert figures.met_fen == 11600
    assert [(m.month, m.amount_fen) for m in figures.monthly if m.amount_fen] == [
        (date(2026, 3, 1), 15200),
        (date(2026, 4, 1), -3600),
    ]
    refund = entries_of(session, source=LedgerSource.RETAIL_REFUND)
    assert [(e.amount_fen, e.occurred_on, e.reason) for e in refund] == [
        (-3600, date(2026, 4, 1), "破损")
    ]


def test_a_canteen_line_counts_the_received_quantity_at_the_frozen_price(session, make, w):
    pledge = year_pledge(make, w)
    # 40 kg ordered at the 40 kg tier (19.99); 38.5 kg arrive: 769.615 -> ¥769.62, not ¥799.60.
    order, invoice = received_delivery(
        make, session, w, [(w.bacon, "40")], at(date(2026, 5, 6)), {w.bacon.id: "38.5"}
    )
    (line,) = order.lines
    assert line.unit_price_fen == 1999 and order.total_fen == 79960

    (entry,) = entries_of(session, bulk_order_id=order.id)
    assert entry.amount_fen == line_total(1999, Decimal("38.5")) == 76962
    assert entry.occurred_on == date(2026, 5, 13)  # goods-in on the delivery day, not ordering
    assert (entry.channel, entry.buyer_organization_id) == (Channel.CANTEEN_BULK, w.kitchen.id)
    assert met(session, pledge) == 76962 == invoice.total_fen


def test_a_credit_note_comes_off(session, make, w):
    pledge = year_pledge(make, w)
    _order, invoice = received_delivery(
        make, session, w, [(w.bacon, "40")], at(date(2026, 5, 6)), {w.bacon.id: "40"}
    )
    (invoice_line,) = invoice.lines
    invoices.credit(
        session, invoice, w.coordinator, at(date(2026, 6, 2)), {invoice_line.id: "5"}, "变质"
    )
    session.commit()

    figures = pledges.progress(session, pledge, date(2026, 6, 3))
    assert figures.met_fen == 79960 - 5 * 1999
    assert [(m.month, m.amount_fen) for m in figures.monthly if m.amount_fen] == [
        (date(2026, 5, 1), 79960),
        (date(2026, 6, 1), -9995),
    ]


def test_overlapping_pledges_each_count_the_same_entry(session, make, w):
    whole_year = year_pledge(make, w, name="全年")
    spring = year_pledge(
        make,
        w,
        name="春季财政局",
        start=date(2026, 3, 1),
        end=date(2026, 5, 31),
        organizations=[w.finance],
        target_fen=1_000_000,
    )
    both_regions = year_pledge(make, w, name="山海", regions=[w.dazhou, w.zhoushan])
    paid_order(session, w, w.staff, [(w.beef, "1")], at(date(2026, 4, 8)), at(date(2026, 4, 8), 11))

    assert met(session, whole_year) == met(session, spring) == met(session, both_regions) == 5800
    assert len(entries_of(session)) == 1


def test_regions_units_channels_and_the_period_filter_what_counts(session, make, w):
    dazhou_only = year_pledge(make, w)
    zhoushan_only = year_pledge(make, w, regions=[w.zhoushan])
    health_only = year_pledge(make, w, organizations=[w.health])
    canteen_only = year_pledge(make, w, channels=[Channel.CANTEEN_BULK])
    retail_both = year_pledge(
        make, w, regions=[w.dazhou, w.zhoushan], channels=[Channel.STAFF_RETAIL]
    )
    summer = year_pledge(make, w, start=date(2026, 6, 1), end=date(2026, 8, 31))

    paid_order(  # finance, Dazhou and Zhoushan, retail, March
        session,
        w,
        w.staff,
        [(w.beef, "1"), (w.fish, "2")],
        at(date(2026, 3, 2)),
        at(date(2026, 3, 2), 11),
    )
    paid_order(  # health, Dazhou, retail, July
        session, w, w.nurse, [(w.eggs, "2")], at(date(2026, 7, 1)), at(date(2026, 7, 1), 11)
    )
    received_delivery(  # the canteen, Dazhou, bulk, May
        make, session, w, [(w.bacon, "20")], at(date(2026, 5, 6)), {w.bacon.id: "20"}
    )

    assert met(session, dazhou_only) == 5800 + 7200 + 43000
    assert met(session, zhoushan_only) == 9000
    assert met(session, health_only) == 7200
    assert met(session, canteen_only) == 43000
    assert met(session, retail_both) == 5800 + 9000 + 7200
    assert met(session, summer) == 7200
    for pledge, orgs, channels in (
        (dazhou_only, None, None),
        (health_only, [w.health], None),
        (canteen_only, None, [Channel.CANTEEN_BULK]),
    ):
        regions = pledge.regions
        assert met(session, pledge) == direct_sum(
            session, pledge.period_start, pledge.period_end, regions, orgs, channels
        )


# --- pace and forecast on fixed dates -----------------------------------------------------------


def test_pace_arithmetic_for_the_530000_yuan_plan_on_1_july():
    figures = pledges.pace(53_000_000, 20_000_000, YEAR_START, YEAR_END, date(2026, 7, 1))
    assert figures["days_total"] == 365
    assert figures["days_elapsed"] == 181  # January to June
    assert figures["share_elapsed"] == Decimal(181) / Decimal(365)
    assert figures["share_met"] == Decimal(20) / Decimal(53)
    # The even pace stands at 53,000,000 x 181/365 = 26,282,191.78 -> 26,282,192 fen.
    assert figures["ideal_fen"] == 26_282_192
    assert figures["ahead_fen"] == -6_282_192
    # 6,282,192 fen at 53,000,000/365 fen a day is 43.26 days.
    assert figures["ahead_days"] == Decimal("-43.3")
    # 33,000,000 fen left over 184 days = 26.29 weeks: 1,255,434.78 a week, rounded up.
    assert figures["needed_per_week_fen"] == 1_255_435
    # 20,000,000 x 365/181 = 40,331,491.71.
    assert figures["forecast_fen"] == 40_331_492
    assert figures["behind_alert"] is True  # 49.6 % of the year gone, 37.7 % met


def test_pace_before_the_start_at_the_end_and_ahead():
    before = pledges.pace(53_000_000, 0, YEAR_START, YEAR_END, date(2025, 12, 20))
    assert (before["days_elapsed"], before["forecast_fen"], before["ahead_fen"]) == (0, None, 0)
    assert before["needed_per_week_fen"] == -(-53_000_000 * 7 // 365)  # 1,016,439
    assert before["behind_alert"] is False

    first_day = pledges.pace(53_000_000, 0, YEAR_START, YEAR_END, YEAR_START)
    assert (first_day["days_elapsed"], first_day["forecast_fen"]) == (0, None)

    after = pledges.pace(53_000_000, 50_000_000, YEAR_START, YEAR_END, date(2027, 1, 5))
    assert (after["days_elapsed"], after["days_remaining"]) == (365, 0)
    assert after["forecast_fen"] == 50_000_000
    assert after["ahead_fen"] == -3_000_000
    assert after["needed_per_week_fen"] == 3_000_000  # nothing left but now
    assert after["behind_alert"] is False  # over: no longer "falling behind"

    ahead = pledges.pace(53_000_000, 30_000_000, YEAR_START, YEAR_END, date(2026, 7, 1))
    assert ahead["ahead_fen"] == 30_000_000 - 26_282_192
    assert ahead["ahead_days"] == Decimal("25.6")  # 3,717,808 x 365 / 53,000,000 = 25.604
    met_already = pledges.pace(53_000_000, 53_000_001, YEAR_START, YEAR_END, date(2026, 7, 1))
    assert met_already["needed_per_week_fen"] == 0


def test_the_behind_margin_is_percentage_points_of_share_and_configurable():
    # On 1 July 181/365 = 49.589 % of the year is gone; 5 points below is 44.589 %.
    just_inside = 23_632_192  # 44.589 % of 53,000,000 = 23,632,191.78: not more than 5 behind
    assert not pledges.pace(53_000_000, just_inside, YEAR_START, YEAR_END, date(2026, 7, 1))[
        "behind_alert"
    ]
    assert pledges.pace(53_000_000, just_inside - 1, YEAR_START, YEAR_END, date(2026, 7, 1))[
        "behind_alert"
    ]
    assert not pledges.pace(
        53_000_000, 20_000_000, YEAR_START, YEAR_END, date(2026, 7, 1), behind_margin_percent=12
    )["behind_alert"]


def test_progress_of_a_pledge_on_fixed_dates_from_real_orders(session, make, w):
    pledge = year_pledge(make, w, target_fen=1_000_000)  # ¥10,000.00
    # ¥430.00 of bacon in February, ¥116.00 of beef in March.
    received_delivery(make, session, w, [(w.bacon, "20")], at(date(2026, 2, 2)), {w.bacon.id: "20"})
    paid_order(session, w, w.staff, [(w.beef, "2")], at(date(2026, 3, 5)), at(date(2026, 3, 5), 11))

    figures = pledges.progress(session, pledge, date(2026, 4, 1), behind_margin_percent=5)
    met_fen = 43000 + 11600
    assert figures.met_fen == met_fen
    assert figures.target_fen == 1_000_000
    assert figures.days_elapsed == 90 and figures.days_total == 365
    assert figures.share_elapsed == Decimal(90) / Decimal(365)
    assert figures.share_met == Decimal(met_fen) / Decimal(1_000_000)
    ideal = 246_575  # 1,000,000 x 90/365 = 246,575.34
    assert figures.ideal_fen == ideal
    assert figures.ahead_fen == met_fen - ideal == -191_975
    assert figures.ahead_days == Decimal("-70.1")  # 191,975 x 365 / 1,000,000 = 70.07
    assert figures.needed_per_week_fen == -(-(1_000_000 - met_fen) * 7 // 275)  # 24,065
    assert figures.needed_per_week_fen == 24_065
    assert figures.forecast_fen == 221_433  # 54,600 x 365 / 90 = 221,433.33
    assert figures.behind_alert is True
    assert figures.monthly[0] == (date(2026, 1, 1), 0, 0, 84_932)  # 1,000,000 x 31/365
    assert figures.monthly[1] == (date(2026, 2, 1), 43000, 43000, 161_644)  # x 59/365
    assert figures.monthly[2] == (date(2026, 3, 1), 11600, 54600, 246_575)
    assert figures.monthly[-1] == (date(2026, 12, 1), 0, 54600, 1_000_000)
    assert len(figures.monthly) == 12


# --- breakdowns and the drill-down ---------------------------------------------------------------


def test_breakdowns_show_the_top_ten_and_the_rest_adds_up_to_the_amount_met(session, make, w):
    pledge = year_pledge(make, w)
    products = [
        make.product(
            supplier=make.supplier(region=w.dazhou, name_zh=f"合作社{i:02d}"),
            name_zh=f"山货{i:02d}",
            retail_price_fen=1000 * i,
        )
        for i in range(1, 13)
    ]
    paid_order(
        session,
        w,
        w.staff,
        [(p, "1") for p in products],
        at(date(2026, 3, 2)),
        at(date(2026, 3, 2), 11),
    )
    received_delivery(make, session, w, [(w.bacon, "20")], at(date(2026, 5, 6)), {w.bacon.id: "20"})

    figures = pledges.progress(session, pledge, date(2026, 6, 1))
    assert figures.met_fen == 78000 + 43000
    for slices in (figures.by_supplier, figures.by_product, figures.by_category):
        assert len(slices) == 11
        assert sum(s.amount_fen for s in slices) == figures.met_fen
        assert slices[-1].key == OTHERS
    # Suppliers: the Dazhou bulk supplier (43,000), then 12,000 ... 4,000; 3,000 + 2,000 +
    # 1,000 are the others.
    assert [s.amount_fen for s in figures.by_supplier] == [43000, *range(12000, 3000, -1000), 6000]
    assert figures.by_supplier[0] == (f"s{w.bacon.supplier_id}", "达州灯影坊", 43000)
    assert figures.by_product[1] == (f"p{products[-1].id}", "山货12", 12000)
    assert figures.by_channel == [
        ("staff_retail", "Staff retail", 78000),
        ("canteen_bulk", "Canteen bulk", 43000),
    ]

    def listed(selection: LedgerFilter) -> tuple[int, int]:
        rows = list(session.scalars(pledges.ledger_entries(session, pledge, selection)).unique())
        return sum(e.amount_fen for e in rows), len(rows)

    checks = [(LedgerFilter(), figures.met_fen)]
    checks += [(LedgerFilter(month=m.month), m.amount_fen) for m in figures.monthly]
    for dimension, slices in (
        ("supplier", figures.by_supplier),
        ("product", figures.by_product),
        ("category", figures.by_category),
    ):
        for s in slices:
            if s.key == OTHERS:
                selection = LedgerFilter(
                    excluded={dimension: pledges.top_keys(session, pledge, dimension)}
                )
            elif dimension == "category":
                selection = LedgerFilter(category_id=int(s.key))
            else:
                selection = LedgerFilter(**{f"{dimension}_key": s.key})
            checks.append((selection, s.amount_fen))
    checks += [(LedgerFilter(channel=Channel(s.key)), s.amount_fen) for s in figures.by_channel]
    for selection, figure in checks:
        amount, count = pledges.ledger_total(session, pledge, selection)
        assert amount == figure, selection
        assert listed(selection) == (amount, count), selection


def test_the_drill_down_of_a_month_outside_the_period_is_refused(session, make, w):
    pledge = year_pledge(make, w, start=date(2026, 3, 1), end=date(2026, 4, 30))
    with pytest.raises(NotFound):
        pledges.check_filter(pledge, LedgerFilter(month=date(2026, 5, 1)))


def test_a_share_pledge_targets_declared_spending_times_the_share_and_shows_the_actual_ratio(
    session, make, w
):
    pledge = year_pledge(
        make,
        w,
        kind=PledgeKind.SHARE,
        organizations=[w.kitchen],
        declared_spending_fen=200_000_000,  # ¥2,000,000 a year
        share_percent=Decimal("15"),
    )
    assert pledge.target_fen == 30_000_000
    received_delivery(  # Dazhou, covered: ¥430.00
        make, session, w, [(w.bacon, "20")], at(date(2026, 5, 6)), {w.bacon.id: "20"}
    )
    received_delivery(  # Zhoushan, not covered: ¥358.00
        make,
        session,
        w,
        [(w.hairtail, "10")],
        at(date(2026, 5, 6)),
        {w.hairtail.id: "10"},
        seller=w.fish_seller,
    )
    paid_order(  # retail is not canteen spending
        session, w, w.staff, [(w.fish, "1")], at(date(2026, 5, 6)), at(date(2026, 5, 6), 11)
    )

    figures = pledges.progress(session, pledge, date(2026, 6, 1))
    assert figures.met_fen == 43000
    assert (figures.actual_covered_fen, figures.actual_all_fen) == (43000, 43000 + 35800)
    assert figures.actual_ratio == Decimal(43000) / Decimal(78800)
    assert figures.declared_ratio == Decimal("0.15")


# --- defining pledges: what is refused ----------------------------------------------------------


def good_data(w: World, **changes) -> PledgeData:
    values = {
        "name": "2026年达州消费帮扶",
        "kind": PledgeKind.FIXED,
        "period_start": YEAR_START,
        "period_end": YEAR_END,
        "all_organizations": True,
        "region_ids": [w.dazhou.id],
        "target_fen": 53_000_000,
    }
    return PledgeData(**{**values, **changes})


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"target_fen": 0}, "target", "more than zero"),
        ({"target_fen": -100}, "target", "more than zero"),
        ({"target_fen": None}, "target", "target amount"),
        ({"period_end": date(2025, 12, 31)}, "period_end", "before it starts"),
        ({"period_start": date(2026, 1, 15)}, "period_start", "first day of a month"),
        ({"period_end": date(2026, 12, 30)}, "period_end", "last day of a month"),
        ({"period_start": None}, "period_start", "first month"),
        ({"all_organizations": False}, "organization_ids", "or all of them"),
        ({"region_ids": []}, "region_ids", "at least one origin region"),
        ({"region_ids": [999_999]}, "region_ids", "from the list"),
        ({"name": "  "}, "name", "name"),
        (
            {
                "kind": PledgeKind.SHARE,
                "declared_spending_fen": 100_000,
                "share_percent": Decimal(9),
            },
            "share_percent",
            "at least 10 per cent",
        ),
        (
            {"kind": PledgeKind.SHARE, "declared_spending_fen": 0, "share_percent": Decimal(15)},
            "declared_spending",
            "more than zero",
        ),
    ],
)
def test_bad_pledges_are_refused_with_a_message_and_nothing_is_saved(
    session, w, changes, field, message
):
    with pytest.raises(DomainError) as refused:
        pledges.create_pledge(session, w.coordinator, at(date(2026, 1, 5)), good_data(w, **changes))
    session.rollback()
    assert refused.value.field == field
    assert message in str(refused.value.message)
    assert session.scalar(sa.select(sa.func.count()).select_from(Pledge)) == 0


def test_all_and_some_organizations_at_once_are_refused_and_a_supplier_is_no_buyer(
    session, make, w
):
    with pytest.raises(DomainError, match="not both"):
        pledges.create_pledge(
            session, w.coordinator, at(YEAR_START), good_data(w, organization_ids=[w.finance.id])
        )
    supplier = make.supplier()
    with pytest.raises(DomainError, match="from the list"):
        pledges.create_pledge(
            session,
            w.coordinator,
            at(YEAR_START),
            good_data(w, all_organizations=False, organization_ids=[supplier.id]),
        )


def test_only_coordinators_and_admins_define_pledges(session, w):
    for user in (w.staff, w.buyer, w.seller, w.clerk):
        with pytest.raises(PermissionDenied):
            pledges.create_pledge(session, user, at(YEAR_START), good_data(w))


def test_a_pledge_is_edited_and_its_progress_follows(session, make, w):
    pledge = year_pledge(make, w)
    paid_order(session, w, w.staff, [(w.fish, "1")], at(date(2026, 3, 2)), at(date(2026, 3, 2), 11))
    assert met(session, pledge) == 0
    pledges.update_pledge(
        session,
        w.coordinator,
        at(date(2026, 3, 3)),
        pledge,
        good_data(
            w,
            name="山海协作",
            region_ids=[w.dazhou.id, w.zhoushan.id],
            all_organizations=False,
            organization_ids=[w.finance.id],
            channels=[Channel.STAFF_RETAIL],
            target_fen=10_000_000,
        ),
    )
    session.commit()
    pledge = pledges.get_pledge(session, pledge.id)
    assert (pledge.name, pledge.target_fen, pledge.channels) == (
        "山海协作",
        10_000_000,
        "staff_retail",
    )
    assert [o.id for o in pledge.organizations] == [w.finance.id]
    assert met(session, pledge) == 4500


# --- re-attribution ------------------------------------------------------------------------------


def test_reattribution_moves_the_amount_between_units_and_keeps_history(session, make, w):
    finance_pledge = year_pledge(make, w, organizations=[w.finance])
    health_pledge = year_pledge(make, w, organizations=[w.health])
    everyone = year_pledge(make, w)
    order = paid_order(
        session,
        w,
        w.staff,
        [(w.beef, "1"), (w.eggs, "1")],
        at(date(2026, 3, 2)),
        at(date(2026, 3, 2), 11),
    )
    before = [(e.id, e.amount_fen, e.buyer_organization_id) for e in entries_of(session)]

    written = pledges.reattribute(
        session,
        w.coordinator,
        at(date(2026, 4, 10)),
        to_organization_id=w.health.id,
        reason="工会慰问品，应计入卫健委",
        retail_order_id=order.id,
    )
    session.commit()

    assert sorted((e.buyer_organization_id, e.amount_fen) for e in written) == sorted(
        [(w.finance.id, -5800), (w.health.id, 5800), (w.finance.id, -3600), (w.health.id, 3600)]
    )
    assert {(e.source, e.occurred_on, e.reason, e.actor_id) for e in written} == {
        (LedgerSource.CORRECTION, date(2026, 4, 10), "工会慰问品，应计入卫健委", w.coordinator.id)
    }
    # The original entries are untouched.
    assert [
        (e.id, e.amount_fen, e.buyer_organization_id)
        for e in entries_of(session, source=LedgerSource.RETAIL_LINE)
    ] == before
    assert met(session, finance_pledge) == 0
    assert met(session, health_pledge) == 9400
    assert met(session, everyone) == 9400
    # As the figures stood in March, finance had it (the correction is dated April).
    march = pledges.progress(session, finance_pledge, date(2026, 4, 1))
    assert [(m.month, m.amount_fen) for m in march.monthly if m.amount_fen] == [
        (date(2026, 3, 1), 9400),
        (date(2026, 4, 1), -9400),
    ]
    found = pledges.attribution(session, retail_order_id=order.id)
    assert [(org.id, amount) for org, amount in found.net_by_organization] == [(w.health.id, 9400)]
    assert ledger.check_rollup(session) == []


def test_reattribution_needs_a_coordinator_a_reason_and_a_buying_unit(session, make, w):
    order = paid_order(
        session, w, w.staff, [(w.beef, "1")], at(date(2026, 3, 2)), at(date(2026, 3, 2), 11)
    )
    args = {"to_organization_id": w.health.id, "reason": "调整", "retail_order_id": order.id}
    with pytest.raises(PermissionDenied):
        pledges.reattribute(session, w.clerk, at(date(2026, 4, 1)), **args)
    with pytest.raises(DomainError, match="reason"):
        pledges.reattribute(session, w.coordinator, at(date(2026, 4, 1)), **{**args, "reason": " "})
    with pytest.raises(DomainError, match="unit"):
        pledges.reattribute(
            session,
            w.coordinator,
            at(date(2026, 4, 1)),
            **{**args, "to_organization_id": w.seller.organization_id},
        )
    with pytest.raises(DomainError, match="already counts"):
        pledges.reattribute(
            session,
            w.coordinator,
            at(date(2026, 4, 1)),
            **{**args, "to_organization_id": w.finance.id},
        )
    session.rollback()
    assert len(entries_of(session)) == 1


def test_a_refund_after_a_reattribution_comes_off_the_unit_it_now_counts_for(session, make, w):
    finance_pledge = year_pledge(make, w, organizations=[w.finance])
    health_pledge = year_pledge(make, w, organizations=[w.health])
    order = paid_order(
        session,
        w,
        w.staff,
        [(w.beef, "1"), (w.eggs, "1")],
        at(date(2026, 3, 2)),
        at(date(2026, 3, 2), 11),
    )
    pledges.reattribute(
        session,
        w.coordinator,
        at(date(2026, 4, 10)),
        to_organization_id=w.health.id,
        reason="应计入卫健委",
        retail_order_id=order.id,
    )
    session.commit()
    orders.refund(session, order, w.clerk, at(date(2026, 4, 20)), None, None, "退货")
    session.commit()

    assert net_by(session, "buyer_organization_id") == {w.finance.id: 0, w.health.id: 0}
    assert (met(session, finance_pledge), met(session, health_pledge)) == (0, 0)
    assert pledges.attribution(session, retail_order_id=order.id).net_by_organization == []
    assert ledger.check_rollup(session) == []


def test_canteen_entries_after_a_reattribution_count_for_the_unit_it_now_counts_for(
    session, make, w
):
    kitchen_pledge = year_pledge(make, w, regions=[w.dazhou, w.zhoushan], organizations=[w.kitchen])
    finance_pledge = year_pledge(make, w, regions=[w.dazhou, w.zhoushan], organizations=[w.finance])
    order = make.bulk_order(
        w.buyer, [(w.bacon, "20"), (w.hairtail, "10")], now=at(date(2026, 5, 4)), policy=POLICY
    )
    bacon_delivery, fish_delivery = sorted(order.deliveries, key=lambda d: d.supplier_id)
    make.shipped(bacon_delivery, w.seller, now=at(date(2026, 5, 5)))
    make.shipped(fish_delivery, w.fish_seller, now=at(date(2026, 5, 5)))

    def receive(delivery, hour):
        return canteen.receive(
            session,
            delivery,
            w.manager,
            at(order.delivery_date, hour),
            {line.id: ReceivedLine(str(line.quantity)) for line in delivery.open_lines},
            POLICY,
        )

    bacon_invoice = receive(bacon_delivery, 9)
    session.commit()
    pledges.reattribute(
        session,
        w.coordinator,
        at(order.delivery_date, 10),
        to_organization_id=w.finance.id,
        reason="财政局的接待用餐",
        bulk_order_id=order.id,
    )
    session.commit()
    # The fish arrives after the re-attribution, and 5 kg of the bacon is credited.
    receive(fish_delivery, 11)
    (bacon_line,) = bacon_invoice.lines
    invoices.credit(
        session, bacon_invoice, w.coordinator, at(date(2026, 6, 2)), {bacon_line.id: "5"}, "变质"
    )
    session.commit()

    expected = 20 * 2150 + 10 * 3580 - 5 * 2150
    assert net_by(session, "buyer_organization_id") == {w.kitchen.id: 0, w.finance.id: expected}
    assert (met(session, kitchen_pledge), met(session, finance_pledge)) == (0, expected)
    assert ledger.check_rollup(session) == []


def test_after_reattributing_twice_later_refunds_follow_the_latest_unit(session, make, w):
    education = make.organization(name_zh="市教育局")
    order = paid_order(
        session,
        w,
        w.staff,
        [(w.beef, "1"), (w.eggs, "1")],
        at(date(2026, 3, 2)),
        at(date(2026, 3, 2), 11),
    )
    beef_line, eggs_line = sorted(order.lines, key=lambda line: line.total_fen, reverse=True)

    def reattribute(unit, day):
        pledges.reattribute(
            session,
            w.coordinator,
            at(day),
            to_organization_id=unit.id,
            reason="调整",
            retail_order_id=order.id,
        )
        session.commit()

    def refund(line, day):
        orders.refund(session, order, w.clerk, at(day), None, [line.id], "退货")
        session.commit()

    reattribute(w.health, date(2026, 4, 1))
    reattribute(education, date(2026, 4, 2))
    refund(eggs_line, date(2026, 4, 3))
    units = net_by(session, "buyer_organization_id")
    assert (units[w.finance.id], units[w.health.id], units[education.id]) == (0, 0, 5800)

    reattribute(w.finance, date(2026, 4, 4))  # back where it started
    units = net_by(session, "buyer_organization_id")
    assert (units[w.finance.id], units[w.health.id], units[education.id]) == (5800, 0, 0)
    refund(beef_line, date(2026, 4, 5))
    assert set(net_by(session, "buyer_organization_id").values()) == {0}
    assert ledger.check_rollup(session) == []


# --- refunds made in Stripe's dashboard ----------------------------------------------------------


def stripe_refund(session, stripe_api, order, amount_fen: int) -> None:
    """Someone refunds `amount_fen` in Stripe's dashboard; its charge.refunded event arrives."""
    intent = order.stripe_payment_intent_id
    status, _ = stripe_api.create_refund({"payment_intent": intent, "amount": str(amount_fen)})
    assert status == 200
    orders.record_stripe_refunds(session, order, intent, stripe_api.refunded(intent), utcnow())
    session.commit()


def test_a_stripe_refund_after_a_line_refund_comes_off_the_lines_still_counted(
    app, session, make, w, stripe_api
):
    order = paid_online(app, session, stripe_api, w.staff, [(w.beef, "1"), (w.eggs, "1")])
    eggs_line = next(line for line in order.lines if line.product_id == w.eggs.id)
    gateway = app.extensions["stripe_gateway"]
    orders.refund(session, order, w.clerk, utcnow(), gateway, [eggs_line.id], "破损")
    session.commit()
    stripe_refund(session, stripe_api, order, 1000)

    assert net_by(session, "product_id") == {w.beef.id: 5800 - 1000, w.eggs.id: 0}
    assert order.refunded_fen == 3600 + 1000
    assert sum(net_by(session, "product_id").values()) == order.total_fen - order.refunded_fen
    assert ledger.check_rollup(session) == []


def test_a_line_refund_after_a_stripe_refund_takes_no_product_below_zero(
    app, session, make, w, stripe_api
):
    order = paid_online(app, session, stripe_api, w.staff, [(w.beef, "1"), (w.eggs, "1")])
    stripe_refund(session, stripe_api, order, 1000)
    # ¥10 over ¥58 and ¥36 in proportion: 6.17 off the beef, 3.83 off the eggs.
    assert net_by(session, "product_id") == {w.beef.id: 5183, w.eggs.id: 3217}

    beef_line = next(line for line in order.lines if line.product_id == w.beef.id)
    gateway = app.extensions["stripe_gateway"]
    orders.refund(session, order, w.clerk, utcnow(), gateway, [beef_line.id], "退货")
    session.commit()
    # The ¥58 refunded for the beef: the ¥51.83 it still counted, the rest off the eggs.
    assert order.refunded_fen == 1000 + 5800
    assert net_by(session, "product_id") == {w.beef.id: 0, w.eggs.id: 2600}

    stripe_refund(session, stripe_api, order, 2600)  # and the rest, in Stripe
    assert net_by(session, "product_id") == {w.beef.id: 0, w.eggs.id: 0}
    assert ledger.check_rollup(session) == []


def test_the_rollup_check_finds_an_amount_moved_between_products_of_a_unit(session, make, w):
    paid_order(
        session,
        w,
        w.staff,
        [(w.beef, "1"), (w.eggs, "1")],
        at(date(2026, 3, 2)),
        at(date(2026, 3, 2), 11),
    )
    assert ledger.check_rollup(session) == []
    beef_row, eggs_row = sorted(
        session.scalars(sa.select(LedgerMonth)), key=lambda row: row.amount_fen, reverse=True
    )
    # The month, unit and channel still add up; each product's figure is wrong.
    for row, change in ((beef_row, -100), (eggs_row, 100)):
        session.execute(
            sa.text("UPDATE ledger_months SET amount_fen = amount_fen + :change WHERE id = :id"),
            {"change": change, "id": row.id},
        )
    problems = ledger.check_rollup(session)
    assert len(problems) == 2
    assert f"product p{w.beef.id}: ledger 5800 fen" in problems[0] + problems[1]
    assert f"product p{w.eggs.id}: ledger 3600 fen" in problems[0] + problems[1]


@pytest.mark.parametrize(
    "change",
    [
        "UPDATE ledger_entries SET amount_fen = amount_fen * 2",
        "UPDATE ledger_entries SET buyer_organization_id = buyer_organization_id",
        "DELETE FROM ledger_entries",
    ],
)
def test_the_database_itself_refuses_to_change_or_delete_ledger_entries(session, make, w, change):
    order = paid_order(
        session, w, w.staff, [(w.beef, "1")], at(date(2026, 3, 2)), at(date(2026, 3, 2), 11)
    )
    before = [(e.id, e.amount_fen) for e in entries_of(session, retail_order_id=order.id)]
    assert before

    with pytest.raises(sa.exc.DatabaseError, match="append-only"), session.begin_nested():
        session.execute(sa.text(change))

    session.expire_all()
    assert [(e.id, e.amount_fen) for e in entries_of(session, retail_order_id=order.id)] == before


def test_orders_are_found_by_number(session, make, w):
    order = placed_order(session, w.staff, [(w.beef, "1")], at(date(2026, 3, 2)))
    bulk = make.bulk_order(w.buyer, [(w.bacon, "20")], now=at(date(2026, 3, 2)), policy=POLICY)
    assert pledges.find_order(session, order.number) == ("retail", order.id)
    assert pledges.find_order(session, f" {bulk.number} ") == ("bulk", bulk.id)
    with pytest.raises(DomainError, match="No order"):
        pledges.find_order(session, "NOPE-1")


def test_behind_pledges_lists_running_pledges_behind_by_more_than_the_margin(session, make, w):
    behind = year_pledge(make, w, name="落后")
    year_pledge(make, w, name="未开始", start=date(2026, 9, 1), end=date(2026, 12, 31))
    year_pledge(make, w, name="已结束", start=date(2025, 1, 1), end=date(2025, 12, 31))
    small = year_pledge(make, w, name="小目标", target_fen=10_000)
    paid_order(session, w, w.staff, [(w.beef, "1")], at(date(2026, 3, 2)), at(date(2026, 3, 2), 11))
    found = pledges.behind_pledges(session, date(2026, 7, 1))
    assert [pledge.id for pledge, _figures in found] == [behind.id]
    assert small.id not in [pledge.id for pledge, _ in found]
