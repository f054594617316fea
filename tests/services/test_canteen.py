"""Canteen bulk orders (app.services.canteen): drafting, approval, the split per supplier,
confirmation with reduced quantities, shipping, goods-in with its invoice, reopening.

Amounts are checked against numbers worked out by hand. The races at the end run real threads
with their own connections on PostgreSQL (skipped on the SQLite run, never in CI's PostgreSQL
run); each has a sequential version that runs on SQLite too.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa
from flask_babel import force_locale
from sqlalchemy.orm import Session

from app.models import (
    BulkOrder,
    BulkOrderEvent,
    BulkOrderLine,
    BulkOrderStatus,
    DeliveryStatus,
    Invoice,
    InvoiceSequence,
    Notification,
    Organization,
    OrgKind,
    OutboxMessage,
    Product,
    ProductStatus,
    Role,
    SupplierDelivery,
    User,
)
from app.services import accounts, canteen, invoices
from app.services.canteen import CanteenPolicy, InvalidTransition, OrderFilters, ReceivedLine
from app.services.clock import local_date
from app.services.errors import DomainError, LineErrors, NotFound, PermissionDenied
from app.services.money import line_total
from tests import helpers
from tests.helpers import CanteenWorld

#: 10:00 in Zhoushan on 27 November 2026.
NOW = datetime(2026, 11, 27, 2, 0, tzinfo=UTC)
TODAY = date(2026, 11, 27)
DELIVERY_DAY = TODAY + timedelta(days=7)
#: 09:00 on the delivery day, when the goods come in.
GOODS_IN = datetime(2026, 12, 4, 1, 0, tzinfo=UTC)
POLICY = CanteenPolicy(
    approval_threshold_fen=500_000, goods_in_tolerance_percent=10, goods_in_max_percent=200
)


@pytest.fixture(autouse=True)
def _english(app, monkeypatch):
    """An application context (notifications need it), messages read in English, and cheap
    password hashes for the many users made here (nobody logs in)."""
    monkeypatch.setattr(accounts, "generate_password_hash", helpers.cheap_password_hash)
    with app.app_context(), force_locale("en"):
        yield


@pytest.fixture
def w(make) -> CanteenWorld:
    return make.canteen_world()


def _line(order: BulkOrder, product: Product) -> BulkOrderLine:
    return next(line for line in order.lines if line.product_id == product.id)


def _delivery(order: BulkOrder, supplier: Organization) -> SupplierDelivery:
    return next(
        d
        for d in order.deliveries
        if d.supplier_id == supplier.id and d.status != DeliveryStatus.WITHDRAWN
    )


def _notes(session, user: User, kind: str | None = None) -> list[Notification]:
    stmt = sa.select(Notification).where(Notification.user_id == user.id)
    if kind:
        stmt = stmt.where(Notification.kind == kind)
    return list(session.scalars(stmt.order_by(Notification.id)))


def _mails(session, user: User) -> list[OutboxMessage]:
    return list(
        session.scalars(
            sa.select(OutboxMessage)
            .where(OutboxMessage.to_address == user.email)
            .order_by(OutboxMessage.id)
        )
    )


def _count(session, model) -> int:
    return session.scalar(sa.select(sa.func.count()).select_from(model))


def _db_status(session, delivery: SupplierDelivery) -> DeliveryStatus:
    return session.scalar(
        sa.select(SupplierDelivery.status).where(SupplierDelivery.id == delivery.id)
    )


def _ship(session, delivery: SupplierDelivery, seller: User, note_number="DN-0001") -> None:
    canteen.confirm(session, delivery, seller, NOW + timedelta(hours=3))
    canteen.ship(session, delivery, seller, NOW + timedelta(days=6), note_number)
    session.commit()


def _small_order(make, w: CanteenWorld, **kwargs) -> BulkOrder:
    """40 kg of bacon (79,960 fen) and 5 bags of tea (64,000): 1,439.60 yuan, released."""
    kwargs.setdefault("policy", POLICY)
    return make.bulk_order(w.buyer, [(w.bacon, "40"), (w.tea, "5")], now=NOW, **kwargs)


# --- drafting ------------------------------------------------------------------------------------


def test_a_draft_is_made_for_the_buyers_canteen_at_its_address_unpriced(session, w):
    order = canteen.create_draft(session, w.buyer, NOW, {w.bacon.id: "40", w.tea.id: "１０"})
    session.commit()
    assert re.fullmatch(rf"C261127-{order.id:05d}", order.number)
    assert (order.status, order.organization_id, order.created_by_id) == (
        BulkOrderStatus.DRAFT,
        w.canteen.id,
        w.buyer.id,
    )
    assert order.delivery_address == w.canteen.address
    assert [(line.product_id, line.quantity, line.unit_price_fen) for line in order.lines] == [
        (w.bacon.id, 40, None),
        (w.tea.id, 10, None),
    ]
    assert order.total_fen == 0
    assert [(e.action, e.to_state, e.actor_id) for e in order.events] == [
        ("create", "draft", w.buyer.id)
    ]


@pytest.mark.parametrize(
    ("roles", "kind"),
    [
        ({Role.CANTEEN_MANAGER}, OrgKind.CANTEEN),
        ({Role.STAFF}, OrgKind.CANTEEN),
        ({Role.CANTEEN_BUYER}, OrgKind.DEPARTMENT),
    ],
)
def test_only_a_canteens_buyers_draft_bulk_orders(session, make, w, roles, kind):
    user = make.user(roles=roles, organization=make.organization(kind))
    with pytest.raises(PermissionDenied):
        canteen.create_draft(session, user, NOW, {w.bacon.id: "40"})
    assert _count(session, BulkOrder) == 0


def test_every_wrong_line_of_a_draft_is_reported_and_nothing_is_kept(session, w):
    with pytest.raises(LineErrors) as refused:
        canteen.create_draft(
            session,
            w.buyer,
            NOW,
            {w.bacon.id: "42", w.mushrooms.id: "很多", w.tea.id: "5", 999_999: "10"},
        )
    assert refused.value.errors == {
        w.bacon.id: "Order whole cases of 5 kg (e.g. 40 or 45).",
        w.mushrooms.id: "Enter a number.",
        999_999: "This product does not exist.",
    }
    assert _count(session, BulkOrder) == 0
    assert _count(session, BulkOrderLine) == 0


def test_a_draft_needs_at_least_one_quantity(session, w):
    with pytest.raises(DomainError, match="at least one product"):
        canteen.create_draft(session, w.buyer, NOW, {w.bacon.id: "", w.tea.id: "0"})


def test_set_lines_changes_removes_and_adds_lines(session, make, w):
    order = make.bulk_order(w.buyer, [(w.bacon, "40"), (w.tea, "5")], submit=False, now=NOW)
    canteen.set_lines(session, order, w.buyer, NOW, {w.bacon.id: "60", w.tea.id: "0"})
    session.commit()
    assert [(line.product_id, line.quantity) for line in order.lines] == [(w.bacon.id, 60)]

    # From the price sheet: products not mentioned keep their lines.
    canteen.set_lines(session, order, w.buyer, NOW, {w.mushrooms.id: "20"}, replace=False)
    session.commit()
    assert sorted((line.product_id, line.quantity) for line in order.lines) == [
        (w.bacon.id, 60),
        (w.mushrooms.id, 20),
    ]

    # Replacing: what is not mentioned goes.
    canteen.set_lines(session, order, w.buyer, NOW, {w.mushrooms.id: "30"})
    session.commit()
    assert [(line.product_id, line.quantity) for line in order.lines] == [(w.mushrooms.id, 30)]


def test_a_refused_set_lines_changes_nothing(session, make, w):
    order = make.bulk_order(w.buyer, [(w.bacon, "40"), (w.tea, "5")], submit=False, now=NOW)
    with pytest.raises(LineErrors) as refused:
        canteen.set_lines(session, order, w.buyer, NOW, {w.bacon.id: "10", w.tea.id: ""})
    assert refused.value.errors == {w.bacon.id: "At least 20 kg."}
    session.flush()
    assert sorted(
        session.execute(
            sa.select(BulkOrderLine.product_id, BulkOrderLine.quantity).where(
                BulkOrderLine.order_id == order.id
            )
        ).all()
    ) == sorted([(w.bacon.id, Decimal(40)), (w.tea.id, Decimal(5))])


def test_only_a_draft_can_be_changed(session, make, w):
    order = _small_order(make, w)
    with pytest.raises(InvalidTransition):
        canteen.set_lines(session, order, w.buyer, NOW, {w.bacon.id: "60"})
    with pytest.raises(InvalidTransition):
        canteen.update_details(
            session,
            order,
            w.buyer,
            delivery_date=DELIVERY_DAY,
            delivery_address="x",
            po_reference="",
            notes="",
        )


def test_copying_an_order_takes_the_quantities_as_ordered_and_skips_what_is_gone(session, make, w):
    order = make.bulk_order(
        w.buyer, [(w.bacon, "40"), (w.mushrooms, "120"), (w.tea, "5")], now=NOW, policy=POLICY
    )
    order.notes = "请走后门"
    w.tea.status = ProductStatus.ARCHIVED
    # An accepted reduction does not shrink the copy: it copies what was ordered.
    _line(order, w.mushrooms).quantity = Decimal(80)
    session.commit()

    copy, skipped = canteen.copy_order(session, order, w.buyer, NOW + timedelta(days=30))
    session.commit()
    assert skipped == ["绿茶"]
    assert copy.id != order.id and copy.status == BulkOrderStatus.DRAFT
    assert [(line.product_id, line.quantity) for line in copy.lines] == [
        (w.bacon.id, 40),
        (w.mushrooms.id, 120),
    ]
    assert (copy.delivery_address, copy.notes, copy.delivery_date) == (
        order.delivery_address,
        "请走后门",
        None,
    )


# --- submission and approval ---------------------------------------------------------------------


def test_an_order_above_the_threshold_waits_for_the_canteens_managers(session, make, w):
    other_manager = make.user(roles={Role.CANTEEN_MANAGER}, organization=w.canteen)
    elsewhere = make.user(roles={Role.CANTEEN_MANAGER}, organization=make.canteen())
    order = make.bulk_order(
        w.buyer, [(w.bacon, "40"), (w.mushrooms, "120"), (w.tea, "10")], now=NOW, policy=POLICY
    )
    assert order.status == BulkOrderStatus.AWAITING_APPROVAL
    # 40 x 19.99 + 120 x 42.00 + 10 x 128.00 = 799.60 + 5,040.00 + 1,280.00
    assert order.total_fen == 711_960
    assert order.deliveries == []
    assert (order.submitted_by_id, order.submitted_at) == (w.buyer.id, NOW)
    for manager in (w.manager, other_manager):
        [note] = _notes(session, manager)
        assert (note.kind, note.params, note.link) == (
            "bulk_awaiting_approval",
            {"number": order.number, "total": "¥7,119.60"},
            f"/canteen/orders/{order.id}",
        )
        [mail] = _mails(session, manager)
        assert order.number in mail.subject and "¥7,119.60" in mail.body
    assert _notes(session, elsewhere) == []
    assert _notes(session, w.seller_a) == _notes(session, w.seller_b) == []


def test_submission_freezes_prices_and_a_snapshot_of_each_line(session, make, w):
    order = make.bulk_order(w.buyer, [(w.bacon, "40")], now=NOW, policy=POLICY)
    [line] = order.lines
    assert (line.unit_price_fen, line.ordered_quantity, line.ordered_total_fen) == (1999, 40, 79960)
    assert (line.name_zh, line.unit, line.supplier_id, line.supplier_name_zh) == (
        "腊肉",
        w.bacon.unit,
        w.supplier_a.id,
        "竹溪山货合作社",
    )
    assert line.product_code == w.bacon.code
    w.bacon.price_tiers[1].unit_price_fen = 2500
    w.bacon.name_zh = "新腊肉"
    session.commit()
    session.expire_all()
    assert (line.unit_price_fen, line.name_zh, order.total_fen) == (1999, "腊肉", 79960)


@pytest.mark.parametrize(
    ("threshold", "status"),
    [
        (143_960, BulkOrderStatus.RELEASED),  # the total exactly at the threshold
        (143_959, BulkOrderStatus.AWAITING_APPROVAL),  # one fen above it
    ],
)
def test_at_or_below_the_threshold_an_order_goes_straight_to_the_suppliers(
    session, make, w, threshold, status
):
    policy = CanteenPolicy(approval_threshold_fen=threshold)
    order = _small_order(make, w, policy=policy)
    assert order.total_fen == 143_960  # 40 x 19.99 + 5 x 128.00
    assert order.status == status
    assert (len(order.deliveries) == 2) is (status == BulkOrderStatus.RELEASED)
    assert bool(_notes(session, w.manager)) is (status == BulkOrderStatus.AWAITING_APPROVAL)


def test_a_manager_who_placed_the_order_cannot_approve_or_reject_it(session, make, w):
    both = make.user(roles={Role.CANTEEN_BUYER, Role.CANTEEN_MANAGER}, organization=w.canteen)
    order = make.bulk_order(both, [(w.mushrooms, "120")], now=NOW, policy=POLICY)
    assert order.status == BulkOrderStatus.AWAITING_APPROVAL
    with pytest.raises(PermissionDenied) as refused:
        canteen.approve(session, order, both, NOW)
    assert str(refused.value.message) == "You cannot approve an order you placed yourself."
    with pytest.raises(PermissionDenied) as refused:
        canteen.reject(session, order, both, NOW, "太贵")
    assert str(refused.value.message) == "You cannot reject an order you placed yourself."
    assert order.status == BulkOrderStatus.AWAITING_APPROVAL

    canteen.approve(session, order, w.manager, NOW + timedelta(hours=1))
    session.commit()
    assert (order.status, order.approved_by_id) == (BulkOrderStatus.RELEASED, w.manager.id)
    assert [n.kind for n in _notes(session, both)] == ["bulk_approved"]


def test_a_manager_cannot_approve_an_order_another_buyer_created_and_they_submitted(
    session, make, w
):
    both = make.user(roles={Role.CANTEEN_BUYER, Role.CANTEEN_MANAGER}, organization=w.canteen)
    order = make.bulk_order(w.buyer, [(w.mushrooms, "120")], now=NOW, submit=False)
    canteen.submit(session, order, both, NOW, POLICY)
    with pytest.raises(PermissionDenied):
        canteen.approve(session, order, both, NOW)


@pytest.mark.parametrize(
    ("days_later", "problem"),
    [
        (30, "The delivery date is in the past."),
        # Mushrooms need 3 days' notice: on 2 December, delivery on the 4th is too soon.
        (5, "Too soon for 竹溪山货合作社: the earliest possible delivery date is 2026-12-05."),
        (4, None),  # on 1 December it can still be met
    ],
)
def test_an_order_whose_delivery_date_can_no_longer_be_met_is_not_approved(
    session, make, w, days_later, problem
):
    order = make.bulk_order(w.buyer, [(w.mushrooms, "120")], now=NOW, policy=POLICY)
    assert (order.status, order.delivery_date) == (BulkOrderStatus.AWAITING_APPROVAL, DELIVERY_DAY)
    later = NOW + timedelta(days=days_later)
    if problem is None:
        canteen.approve(session, order, w.manager, later)
        session.commit()
        assert order.status == BulkOrderStatus.RELEASED
        return
    with pytest.raises(InvalidTransition) as refused:
        canteen.approve(session, order, w.manager, later)
    assert str(refused.value.message) == (
        f"This order cannot be approved as it stands: {problem} Reject it, or have the buyer "
        "reopen it and choose a new delivery date."
    )
    assert refused.value.status_code == 409
    session.flush()
    session.expire_all()
    assert (order.status, order.approved_at, order.approved_by_id) == (
        BulkOrderStatus.AWAITING_APPROVAL,
        None,
        None,
    )
    assert order.deliveries == []
    assert [e.action for e in order.events] == ["create", "submit"]
    assert _notes(session, w.buyer, "bulk_approved") == []
    assert _notes(session, w.seller_a) == []
    # The manager can still reject it; the buyer can still reopen it for a new date.
    canteen.reopen(session, order, w.buyer, later)
    order.delivery_date = local_date(later) + timedelta(days=3)
    canteen.submit(session, order, w.buyer, later, POLICY)
    canteen.approve(session, order, w.manager, later)
    assert order.status == BulkOrderStatus.RELEASED


def test_buyers_and_other_canteens_managers_cannot_approve(session, make, w):
    order = make.bulk_order(w.buyer, [(w.mushrooms, "120")], now=NOW, policy=POLICY)
    other_buyer = make.user(roles={Role.CANTEEN_BUYER}, organization=w.canteen)
    foreign_manager = make.user(roles={Role.CANTEEN_MANAGER}, organization=make.canteen())
    for actor in (w.buyer, other_buyer, foreign_manager):
        with pytest.raises(PermissionDenied):
            canteen.approve(session, order, actor, NOW)
    assert order.status == BulkOrderStatus.AWAITING_APPROVAL


def test_rejecting_needs_a_reason_which_the_buyer_is_told(session, make, w):
    order = make.bulk_order(w.buyer, [(w.mushrooms, "120")], now=NOW, policy=POLICY)
    with pytest.raises(DomainError) as refused:
        canteen.reject(session, order, w.manager, NOW, "   ")
    assert refused.value.field == "reason"
    assert order.status == BulkOrderStatus.AWAITING_APPROVAL

    canteen.reject(session, order, w.manager, NOW, "数量太多，下周再订")
    session.commit()
    assert order.status == BulkOrderStatus.REJECTED
    assert order.events[-1].reason == "数量太多，下周再订"
    [note] = _notes(session, w.buyer, "bulk_rejected")
    assert note.params == {"number": order.number, "reason": "数量太多，下周再订"}
    with pytest.raises(InvalidTransition):
        canteen.approve(session, order, w.manager, NOW)

    # The buyer takes it back, lowers it and sends it again.
    canteen.reopen(session, order, w.buyer, NOW)
    canteen.set_lines(session, order, w.buyer, NOW, {w.mushrooms.id: "50"})
    canteen.submit(session, order, w.buyer, NOW, POLICY)
    session.commit()
    assert (order.status, order.total_fen) == (BulkOrderStatus.RELEASED, 229_000)  # 50 x 45.80


def test_another_canteens_buyer_can_neither_see_nor_change_an_order(session, make, w):
    order = make.bulk_order(w.buyer, [(w.mushrooms, "120")], now=NOW, submit=False)
    other = make.canteen_world(canteen_name="第二食堂")
    for outsider in (other.buyer, other.manager, w.seller_a):
        with pytest.raises(NotFound):
            canteen.get_order(session, outsider, order.id)
        assert canteen.list_orders(session, outsider, OrderFilters(), 1).items == []
    with pytest.raises(PermissionDenied):
        canteen.set_lines(session, order, other.buyer, NOW, {w.mushrooms.id: "10"})
    with pytest.raises(PermissionDenied):
        canteen.update_details(
            session,
            order,
            other.buyer,
            delivery_date=DELIVERY_DAY,
            delivery_address="别处",
            po_reference="",
            notes="",
        )
    with pytest.raises(PermissionDenied):
        canteen.submit(session, order, other.buyer, NOW, POLICY)
    with pytest.raises(PermissionDenied):
        canteen.cancel(session, order, other.buyer, NOW, "不要了")
    with pytest.raises(PermissionDenied):
        canteen.copy_order(session, order, other.buyer, NOW)
    session.flush()
    session.expire_all()
    assert (order.status, order.delivery_address, order.lines[0].quantity) == (
        BulkOrderStatus.DRAFT,
        w.canteen.address,
        120,
    )
    # The canteen itself, and the coordinators, do see it.
    assert canteen.get_order(session, w.manager, order.id) is order
    coordinator = make.user(roles={Role.COORDINATOR})
    assert canteen.get_order(session, coordinator, order.id) is order


# --- the delivery date ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("delivery_date", "message"),
    [
        (None, "Choose a delivery date."),
        (TODAY - timedelta(days=1), "The delivery date is in the past."),
        # Tea needs 5 days' notice: 1 December is one day too soon.
        (
            TODAY + timedelta(days=4),
            "Too soon for 达州茶业: the earliest possible delivery date is 2026-12-02.",
        ),
    ],
)
def test_a_delivery_date_that_cannot_be_met_is_refused_and_nothing_changes(
    session, make, w, delivery_date, message
):
    order = make.bulk_order(w.buyer, [(w.bacon, "40"), (w.tea, "5")], now=NOW, submit=False)
    order.delivery_date = delivery_date
    session.commit()
    with pytest.raises(DomainError) as refused:
        canteen.submit(session, order, w.buyer, NOW, POLICY)
    assert (str(refused.value.message), refused.value.field) == (message, "delivery_date")
    session.flush()
    session.expire_all()
    assert (order.status, order.total_fen, order.submitted_at) == (BulkOrderStatus.DRAFT, 0, None)
    assert [line.unit_price_fen for line in order.lines] == [None, None]
    assert order.deliveries == []
    assert [e.action for e in order.events] == ["create"]
    assert _count(session, Notification) == 0


def test_the_earliest_date_is_the_longest_lead_time_and_every_late_supplier_is_named(
    session, make, w
):
    slow = make.bulk_product(supplier=w.supplier_a, tiers=[(10, 900)], lead_time_days=6)
    order = make.bulk_order(
        w.buyer, [(w.bacon, "40"), (slow, "10"), (w.tea, "5")], now=NOW, submit=False
    )
    order.delivery_date = TODAY + timedelta(days=5)
    with pytest.raises(DomainError) as refused:
        canteen.submit(session, order, w.buyer, NOW, POLICY)
    # Supplier A's slowest product decides for all of A; B (5 days) is in time.
    assert str(refused.value.message) == (
        "Too soon for 竹溪山货合作社: the earliest possible delivery date is 2026-12-03."
    )
    order.delivery_date = TODAY + timedelta(days=6)
    canteen.submit(session, order, w.buyer, NOW, POLICY)
    assert order.status == BulkOrderStatus.RELEASED


def test_today_is_the_day_in_zhoushan(session, make, w):
    # 01:00 on 28 November in Zhoushan, still the 27th in UTC: the 27th is past.
    late = datetime(2026, 11, 27, 17, 0, tzinfo=UTC)
    order = make.bulk_order(w.buyer, [(w.bacon, "40")], now=NOW, submit=False)
    order.delivery_date = date(2026, 11, 29)
    with pytest.raises(DomainError, match="Too soon"):
        canteen.submit(session, order, w.buyer, late, POLICY)  # bacon: 2 days from the 28th
    order.delivery_date = date(2026, 11, 30)
    canteen.submit(session, order, w.buyer, late, POLICY)
    assert order.status == BulkOrderStatus.RELEASED


# --- the split per supplier ----------------------------------------------------------------------


def test_release_splits_the_order_into_one_delivery_per_supplier_each_told(session, make, w):
    second_seller = make.user(roles={Role.SUPPLIER}, organization=w.supplier_a)
    order = make.bulk_order(
        w.buyer, [(w.bacon, "40"), (w.tea, "5"), (w.mushrooms, "10")], now=NOW, policy=POLICY
    )
    assert order.status == BulkOrderStatus.RELEASED
    assert sorted(d.supplier_id for d in order.deliveries) == sorted(
        [w.supplier_a.id, w.supplier_b.id]
    )
    a, b = _delivery(order, w.supplier_a), _delivery(order, w.supplier_b)
    assert [line.name_zh for line in a.lines] == ["腊肉", "香菇"]
    assert [line.name_zh for line in b.lines] == ["绿茶"]
    assert a.status == b.status == DeliveryStatus.NEW

    for seller, delivery, lines in ((w.seller_a, a, 2), (second_seller, a, 2), (w.seller_b, b, 1)):
        [note] = _notes(session, seller)
        assert (note.kind, note.link) == ("delivery_new", f"/supplier/deliveries/{delivery.id}")
        assert note.params == {
            "number": order.number,
            "date": DELIVERY_DAY.isoformat(),
            "lines": str(lines),
        }
        [mail] = _mails(session, seller)
        assert order.number in mail.subject
        assert mail.body.endswith(f"/supplier/deliveries/{delivery.id}")
    assert _notes(session, w.buyer) == []

    page = canteen.supplier_deliveries(session, w.seller_a, None, 1)
    assert [d.id for d in page.items] == [a.id]
    assert canteen.get_delivery_for_supplier(session, w.seller_b, b.id) is b


def test_a_supplier_cannot_see_confirm_or_ship_another_suppliers_delivery(session, make, w):
    order = _small_order(make, w)
    b = _delivery(order, w.supplier_b)
    with pytest.raises(NotFound):
        canteen.get_delivery_for_supplier(session, w.seller_a, b.id)
    with pytest.raises(NotFound):
        canteen.get_delivery_for_supplier(session, w.buyer, b.id)
    with pytest.raises(NotFound):
        canteen.confirm(session, b, w.seller_a, NOW)
    canteen.confirm(session, b, w.seller_b, NOW)
    session.commit()
    with pytest.raises(NotFound):
        canteen.ship(session, b, w.seller_a, NOW, "DN-1")
    assert _db_status(session, b) == DeliveryStatus.CONFIRMED


# --- confirmation, proposals, shipping -----------------------------------------------------------


def test_the_supplier_can_only_offer_less_than_ordered(session, make, w):
    order = _small_order(make, w)
    a = _delivery(order, w.supplier_a)
    bacon = _line(order, w.bacon)
    for offered, message in (
        ("45", "You can only offer less than was ordered."),
        ("少一点", "Enter a number."),
        ("-5", "Enter a quantity of zero or more."),
    ):
        with pytest.raises(LineErrors) as refused:
            canteen.confirm(session, a, w.seller_a, NOW, {bacon.id: offered})
        assert refused.value.errors == {bacon.id: message}
    assert (_db_status(session, a), bacon.proposed_quantity) == (DeliveryStatus.NEW, None)
    # Offering exactly what was ordered is a plain confirmation.
    canteen.confirm(session, a, w.seller_a, NOW, {bacon.id: "40"})
    assert a.status == DeliveryStatus.CONFIRMED


def test_a_reduction_the_buyer_refuses_cancels_the_line_and_an_empty_delivery(session, make, w):
    order = _small_order(make, w)
    b = _delivery(order, w.supplier_b)
    tea = _line(order, w.tea)
    canteen.confirm(session, b, w.seller_b, NOW, {tea.id: "0"}, note="今年春茶没了")
    session.commit()
    assert (b.status, tea.proposed_quantity, tea.proposal_note) == (
        DeliveryStatus.CHANGES_PROPOSED,
        0,
        "今年春茶没了",
    )
    [note] = _notes(session, w.buyer, "delivery_changes")
    assert note.params["supplier"] == "达州茶业"
    with pytest.raises(PermissionDenied):
        canteen.answer_proposal(session, order, tea.id, w.manager, NOW, accept=False)

    canteen.answer_proposal(session, order, tea.id, w.buyer, NOW, accept=False)
    session.commit()
    assert (tea.cancelled, tea.proposed_quantity, b.status) == (
        True,
        None,
        DeliveryStatus.CANCELLED,
    )
    assert order.total_fen == 79_960  # the bacon alone
    [told] = _notes(session, w.seller_b, "delivery_cancelled")
    assert told.params["number"] == order.number
    with pytest.raises(InvalidTransition, match="nothing to answer"):
        canteen.answer_proposal(session, order, tea.id, w.buyer, NOW, accept=True)

    # The rest arrives; with the other delivery cancelled the order is complete.
    a = _delivery(order, w.supplier_a)
    _ship(session, a, w.seller_a)
    bacon = _line(order, w.bacon)
    invoice = canteen.receive(
        session, a, w.manager, GOODS_IN, {bacon.id: ReceivedLine("40")}, POLICY
    )
    session.commit()
    assert invoice.total_fen == 79_960
    assert order.status == BulkOrderStatus.COMPLETED


def test_an_answer_given_on_a_stale_page_still_sees_the_other_answers(session, make, w):
    order = make.bulk_order(
        w.buyer,
        [(w.bacon, "40"), (w.mushrooms, "120")],
        now=NOW,
        policy=CanteenPolicy(approval_threshold_fen=10_000_000),
    )
    [delivery] = order.deliveries
    bacon, mushrooms = _line(order, w.bacon), _line(order, w.mushrooms)
    canteen.confirm(session, delivery, w.seller_a, NOW, {bacon.id: "30", mushrooms.id: "80"})
    session.commit()
    # Another buyer accepted the bacon a moment ago; this buyer's page still shows it open.
    session.execute(
        sa.update(BulkOrderLine)
        .where(BulkOrderLine.id == bacon.id)
        .values(quantity=30, proposed_quantity=None)
        .execution_options(synchronize_session=False)
    )
    assert bacon.proposed_quantity == 30
    canteen.answer_proposal(session, order, mushrooms.id, w.buyer, NOW, accept=True)
    session.commit()
    assert delivery.status == DeliveryStatus.CONFIRMED
    assert order.total_fen == 30 * 1999 + 80 * 4200
    # The supplier learns that it can ship now.
    assert _notes(session, w.seller_a, "delivery_agreed")


def test_an_order_whose_every_line_is_refused_ends_cancelled_not_completed(session, make, w):
    order = make.bulk_order(w.buyer, [(w.tea, "10")], now=NOW)
    [delivery] = order.deliveries
    tea = _line(order, w.tea)
    canteen.confirm(session, delivery, w.seller_b, NOW, {tea.id: "0"})
    canteen.answer_proposal(session, order, tea.id, w.buyer, NOW, accept=False)
    session.commit()
    assert (delivery.status, order.status) == (DeliveryStatus.CANCELLED, BulkOrderStatus.CANCELLED)
    assert order.events[-1].action == "cancel"


def test_accepting_an_offer_of_nothing_cancels_the_line(session, make, w):
    order = _small_order(make, w)
    b = _delivery(order, w.supplier_b)
    tea = _line(order, w.tea)
    canteen.confirm(session, b, w.seller_b, NOW, {tea.id: "0"})
    canteen.answer_proposal(session, order, tea.id, w.buyer, NOW, accept=True)
    assert (tea.cancelled, b.status, order.total_fen) == (True, DeliveryStatus.CANCELLED, 79_960)


def test_shipping_needs_a_confirmed_delivery_and_a_delivery_note_number(session, make, w):
    order = _small_order(make, w)
    a = _delivery(order, w.supplier_a)
    with pytest.raises(InvalidTransition):
        canteen.ship(session, a, w.seller_a, NOW, "DN-1")
    canteen.confirm(session, a, w.seller_a, NOW)
    for number in ("", "   ", "x" * 65):
        with pytest.raises(DomainError) as refused:
            canteen.ship(session, a, w.seller_a, NOW, number)
        assert refused.value.field == "delivery_note_number"
    assert _db_status(session, a) == DeliveryStatus.CONFIRMED
    canteen.ship(session, a, w.seller_a, NOW, " ZX-778 ", note="两车")
    session.commit()
    assert (a.status, a.delivery_note_number, a.shipping_note, a.shipped_at) == (
        DeliveryStatus.SHIPPED,
        "ZX-778",
        "两车",
        NOW,
    )
    for person in (w.buyer, w.manager):
        [note] = _notes(session, person, "delivery_shipped")
        assert note.params["note"] == "ZX-778"


# --- the whole path, to the fen ------------------------------------------------------------------


def test_the_whole_path_from_draft_to_paid_invoices(session, make, w):
    coordinator = make.user(roles={Role.COORDINATOR})
    order = make.bulk_order(
        w.buyer, [(w.bacon, "40"), (w.mushrooms, "120"), (w.tea, "10")], now=NOW, policy=POLICY
    )
    bacon, mushrooms, tea = (_line(order, p) for p in (w.bacon, w.mushrooms, w.tea))
    assert order.status == BulkOrderStatus.AWAITING_APPROVAL
    assert [(x.unit_price_fen, x.ordered_total_fen) for x in (bacon, mushrooms, tea)] == [
        (1999, 79_960),  # 40 kg exactly at the 40 kg tier
        (4200, 504_000),  # 120 boxes past the 100 box tier
        (12800, 128_000),
    ]
    assert order.total_fen == 711_960

    canteen.approve(session, order, w.manager, NOW + timedelta(hours=1))
    session.commit()
    assert order.status == BulkOrderStatus.RELEASED
    a, b = _delivery(order, w.supplier_a), _delivery(order, w.supplier_b)

    # Supplier A can fill only 80 of the 120 boxes of mushrooms.
    seen_by_a = canteen.get_delivery_for_supplier(session, w.seller_a, a.id)
    canteen.confirm(
        session, seen_by_a, w.seller_a, NOW + timedelta(hours=2), {mushrooms.id: "80"}, "减产"
    )
    session.commit()
    assert a.status == DeliveryStatus.CHANGES_PROPOSED
    assert (mushrooms.quantity, mushrooms.proposed_quantity, order.total_fen) == (120, 80, 711_960)

    # The buyer accepts: the line is 80 boxes at the price agreed, the order total follows.
    canteen.answer_proposal(
        session, order, mushrooms.id, w.buyer, NOW + timedelta(hours=3), accept=True
    )
    session.commit()
    assert (mushrooms.quantity, mushrooms.ordered_quantity, mushrooms.proposed_quantity) == (
        80,
        120,
        None,
    )
    assert mushrooms.unit_price_fen == 4200
    assert order.total_fen == 79_960 + 336_000 + 128_000 == 543_960
    assert (a.status, a.confirmed_at) == (DeliveryStatus.CONFIRMED, NOW + timedelta(hours=3))

    canteen.confirm(session, b, w.seller_b, NOW + timedelta(hours=4))
    canteen.ship(session, a, w.seller_a, NOW + timedelta(days=6), "ZX-20261203-01")
    canteen.ship(session, b, w.seller_b, NOW + timedelta(days=6), "DZ-0042")
    session.commit()
    assert (a.status, b.status) == (DeliveryStatus.SHIPPED, DeliveryStatus.SHIPPED)

    # Goods-in: 38.65 of the 40 kg of bacon came (short weight), all 80 boxes.
    invoice_a = canteen.receive(
        session,
        a,
        w.manager,
        GOODS_IN,
        {bacon.id: ReceivedLine("38.65"), mushrooms.id: ReceivedLine("80")},
        POLICY,
    )
    session.commit()
    assert (a.status, a.received_by_id, a.received_at) == (
        DeliveryStatus.RECEIVED,
        w.manager.id,
        GOODS_IN,
    )
    assert (bacon.received_quantity, bacon.rejected_quantity) == (Decimal("38.65"), 0)
    assert order.status == BulkOrderStatus.RELEASED  # B's part is still on the road
    assert [
        (x.name_zh, x.ordered_quantity, x.quantity, x.unit_price_fen, x.amount_fen)
        for x in invoice_a.lines
    ] == [
        ("腊肉", 40, Decimal("38.65"), 1999, 77_261),  # 77,261.35 fen
        ("香菇", 80, 80, 4200, 336_000),
    ]
    assert invoice_a.lines[0].amount_fen == line_total(1999, Decimal("38.65"))
    assert invoice_a.total_fen == 413_261
    assert invoice_a.number == f"{w.supplier_a.code}-000001"
    assert (invoice_a.buyer_organization_id, invoice_a.delivery_id) == (w.canteen.id, a.id)
    assert (invoice_a.outstanding_fen, str(invoices.status_label(invoice_a))) == (
        413_261,
        "Outstanding",
    )
    [received] = _notes(session, w.seller_a, "delivery_received")
    assert received.params == {"number": order.number, "invoice": invoice_a.number}

    invoice_b = canteen.receive(
        session, b, w.manager, GOODS_IN, {tea.id: ReceivedLine("10")}, POLICY
    )
    session.commit()
    assert (invoice_b.total_fen, invoice_b.number) == (128_000, f"{w.supplier_b.code}-000001")
    assert order.status == BulkOrderStatus.COMPLETED

    # Finance pays supplier A in two transfers; a third one too many is refused.
    paid_on = date(2026, 12, 10)
    pay_time = datetime(2026, 12, 10, 3, 0, tzinfo=UTC)
    invoices.record_payment(
        session, invoice_a, coordinator, pay_time, paid_on=paid_on, reference="B-1", amount="2000"
    )
    session.commit()
    assert (invoice_a.paid_fen, invoice_a.outstanding_fen) == (200_000, 213_261)
    assert str(invoices.status_label(invoice_a)) == "Partly paid"
    with pytest.raises(DomainError) as refused:
        invoices.record_payment(
            session,
            invoice_a,
            coordinator,
            pay_time,
            paid_on=paid_on,
            reference="B-2",
            amount="2132.62",
        )
    assert str(refused.value.message) == "That is more than the ¥2,132.61 still outstanding."
    assert refused.value.field == "amount"
    invoices.record_payment(
        session,
        invoice_a,
        coordinator,
        pay_time,
        paid_on=paid_on,
        reference="B-2",
        amount="２１３２.６１",
    )
    session.commit()
    session.expire_all()
    assert (invoice_a.paid_fen, invoice_a.outstanding_fen) == (413_261, 0)
    assert str(invoices.status_label(invoice_a)) == "Paid"
    assert [(p.reference, p.amount_fen) for p in invoice_a.payments] == [
        ("B-1", 200_000),
        ("B-2", 213_261),
    ]
    assert [n.params["amount"] for n in _notes(session, w.seller_a, "invoice_paid")] == [
        "¥2,000.00",
        "¥2,132.61",
    ]
    assert [(e.action, e.from_state, e.to_state) for e in order.events] == [
        ("create", None, "draft"),
        ("submit", "draft", "awaiting_approval"),
        ("approve", "awaiting_approval", "released"),
        ("propose", "new", "changes_proposed"),
        ("accept_reduction", None, None),
        ("confirm", "changes_proposed", "confirmed"),
        ("confirm", "new", "confirmed"),
        ("ship", "confirmed", "shipped"),
        ("ship", "confirmed", "shipped"),
        ("receive", "shipped", "received"),
        ("receive", "shipped", "received"),
        ("complete", "released", "completed"),
    ]


# --- goods-in ------------------------------------------------------------------------------------


@pytest.fixture
def shipped(session, make, w):
    """Supplier A's part of a released order (40 kg bacon, 10 boxes mushrooms), shipped."""
    order = make.bulk_order(w.buyer, [(w.bacon, "40"), (w.mushrooms, "10")], now=NOW)
    delivery = _delivery(order, w.supplier_a)
    _ship(session, delivery, w.seller_a)
    return delivery


def _goods_in(delivery, w, bacon: ReceivedLine | None) -> dict[int, ReceivedLine]:
    lines = {line.product_id: line.id for line in delivery.lines}
    entries = {lines[w.mushrooms.id]: ReceivedLine("10")}
    if bacon is not None:
        entries[lines[w.bacon.id]] = bacon
    return entries


CEILING = (
    "Accepted and refused together cannot be more than 80 (200% of the 40 ordered); "
    "check the quantities."
)


@pytest.mark.parametrize(
    ("bacon", "message"),
    [
        (ReceivedLine("-1"), "Enter a quantity of zero or more."),
        (ReceivedLine("39.5555"), "At most three decimals."),
        (ReceivedLine(""), "Enter the quantity received (0 if nothing was accepted)."),
        (ReceivedLine("44.001"), "More than 10% above the 40 ordered: give a reason."),
        (ReceivedLine("35", rejected="5"), "Say why part of the delivery was refused."),
        # Beyond twice the ordered quantity, accepted and refused together: no reason will do.
        (ReceivedLine("80.001", note="多送了"), CEILING),
        (ReceivedLine("40", rejected="40.001", note="多送的退回"), CEILING),
        (ReceivedLine("40", rejected="400", note="坏了"), CEILING),
        (ReceivedLine("0", rejected="400", note="全部退回"), CEILING),
        (ReceivedLine("40000", note="x"), CEILING),
        (ReceivedLine("35", rejected="-5", note="坏了"), "Enter a quantity of zero or more."),
        (ReceivedLine("0"), "Nothing received: say why."),
        (None, "Enter the quantity received."),
    ],
)
def test_goods_in_that_does_not_add_up_is_refused_and_nothing_is_written(
    session, w, shipped, bacon, message
):
    with pytest.raises(LineErrors) as refused:
        canteen.receive(session, shipped, w.manager, GOODS_IN, _goods_in(shipped, w, bacon), POLICY)
    bacon_line = next(line for line in shipped.lines if line.product_id == w.bacon.id)
    assert refused.value.errors == {bacon_line.id: message}
    assert _db_status(session, shipped) == DeliveryStatus.SHIPPED
    assert _count(session, Invoice) == _count(session, InvoiceSequence) == 0
    assert (
        session.scalar(
            sa.select(sa.func.count()).where(
                BulkOrderLine.delivery_id == shipped.id,
                BulkOrderLine.received_quantity.is_not(None),
            )
        )
        == 0
    )
    assert _notes(session, w.seller_a, "delivery_received") == []


@pytest.mark.parametrize(
    ("bacon", "billed_fen"),
    [
        (ReceivedLine("44"), 87_956),  # exactly 10 % over needs no reason: 44 x 19.99
        (ReceivedLine("50", note="多送了一箱，照收"), 99_950),
        (ReceivedLine("35", rejected="5", note="一箱变质"), 69_965),  # only what was accepted
        (ReceivedLine("0", rejected="40", note="全部退回"), 0),
        (ReceivedLine("80", note="多送一倍，照收"), 159_920),  # at the ceiling, with a reason
        (ReceivedLine("40", rejected="40", note="多送的一倍退回"), 79_960),  # likewise
    ],
)
def test_goods_in_bills_what_was_accepted(session, w, shipped, bacon, billed_fen):
    invoice = canteen.receive(
        session, shipped, w.manager, GOODS_IN, _goods_in(shipped, w, bacon), POLICY
    )
    session.commit()
    assert [line.amount_fen for line in invoice.lines] == [billed_fen, 45_800]
    assert invoice.total_fen == billed_fen + 45_800
    bacon_line = next(line for line in shipped.lines if line.product_id == w.bacon.id)
    assert bacon_line.goods_in_note == bacon.note
    assert canteen.received_amount(bacon_line) == billed_fen


def test_only_the_canteens_manager_checks_goods_in(session, make, w, shipped):
    outsider = make.user(roles={Role.CANTEEN_MANAGER}, organization=make.canteen())
    for actor in (w.buyer, outsider, w.seller_a):
        with pytest.raises(PermissionDenied):
            canteen.receive(
                session,
                shipped,
                actor,
                GOODS_IN,
                _goods_in(shipped, w, ReceivedLine("40")),
                POLICY,
            )
    assert _db_status(session, shipped) == DeliveryStatus.SHIPPED


def test_a_second_sign_off_is_told_it_was_already_done(session, make, w, shipped):
    entries = _goods_in(shipped, w, ReceivedLine("40"))
    canteen.receive(session, shipped, w.manager, GOODS_IN, entries, POLICY)
    session.commit()
    second = make.user(roles={Role.CANTEEN_MANAGER}, organization=w.canteen)
    with pytest.raises(InvalidTransition):
        canteen.receive(session, shipped, second, GOODS_IN, entries, POLICY)
    assert _count(session, Invoice) == 1


def test_a_sign_off_on_a_stale_page_loses_to_the_one_already_made(session, w, shipped):
    # Another manager signed off a moment ago; this manager's page still says "shipped".
    session.execute(
        sa.update(SupplierDelivery)
        .where(SupplierDelivery.id == shipped.id)
        .values(status=DeliveryStatus.RECEIVED)
        .execution_options(synchronize_session=False)
    )
    assert shipped.status == DeliveryStatus.SHIPPED
    with pytest.raises(InvalidTransition, match="already handled"):
        canteen.receive(
            session, shipped, w.manager, GOODS_IN, _goods_in(shipped, w, ReceivedLine("40")), POLICY
        )
    assert _count(session, Invoice) == 0


# --- reopening and cancelling --------------------------------------------------------------------


def test_reopening_before_any_confirmation_withdraws_the_deliveries(session, make, w):
    order = _small_order(make, w)
    a, b = _delivery(order, w.supplier_a), _delivery(order, w.supplier_b)
    assert canteen.can_reopen(order)

    canteen.reopen(session, order, w.buyer, NOW + timedelta(hours=1))
    session.commit()
    assert order.status == BulkOrderStatus.DRAFT
    assert (a.status, b.status) == (DeliveryStatus.WITHDRAWN, DeliveryStatus.WITHDRAWN)
    assert [line.unit_price_fen for line in order.lines] == [None, None]
    assert all(line.delivery_id is None for line in order.lines)
    assert order.total_fen == 0
    for seller in (w.seller_a, w.seller_b):
        [note] = _notes(session, seller, "delivery_withdrawn")
        assert note.params == {"number": order.number, "reason": "Reopened for editing"}
    # The suppliers no longer see it, and cannot confirm it.
    with pytest.raises(NotFound):
        canteen.get_delivery_for_supplier(session, w.seller_a, a.id)
    assert canteen.supplier_deliveries(session, w.seller_a, None, 1).items == []
    with pytest.raises(InvalidTransition):
        canteen.confirm(session, a, w.seller_a, NOW)

    # Edited and sent again: new deliveries, priced at the tiers the new quantities reach.
    canteen.set_lines(session, order, w.buyer, NOW, {w.bacon.id: "20", w.tea.id: "5"})
    canteen.submit(session, order, w.buyer, NOW + timedelta(hours=2), POLICY)
    session.commit()
    assert order.status == BulkOrderStatus.RELEASED
    assert order.total_fen == 20 * 2150 + 5 * 12800
    new_a = _delivery(order, w.supplier_a)
    assert new_a.id not in (a.id, b.id) and new_a.status == DeliveryStatus.NEW
    assert [d.id for d in canteen.supplier_deliveries(session, w.seller_a, None, 1).items] == [
        new_a.id
    ]


def test_once_a_supplier_confirmed_the_order_cannot_be_reopened_or_cancelled(session, make, w):
    order = _small_order(make, w)
    a, b = _delivery(order, w.supplier_a), _delivery(order, w.supplier_b)
    canteen.confirm(session, a, w.seller_a, NOW)
    session.commit()
    assert not canteen.can_reopen(order)
    with pytest.raises(InvalidTransition, match="already confirmed"):
        canteen.reopen(session, order, w.buyer, NOW)
    with pytest.raises(InvalidTransition, match="already confirmed"):
        canteen.cancel(session, order, w.buyer, NOW, "不要了")
    session.flush()
    session.expire_all()
    assert order.status == BulkOrderStatus.RELEASED
    assert (a.status, b.status) == (DeliveryStatus.CONFIRMED, DeliveryStatus.NEW)
    assert _line(order, w.bacon).unit_price_fen == 1999
    assert _notes(session, w.seller_b, "delivery_withdrawn") == []


def test_a_supplier_confirming_a_reopened_order_on_a_stale_page_is_refused(session, make, w):
    order = _small_order(make, w)
    a = _delivery(order, w.supplier_a)
    canteen.reopen(session, order, w.buyer, NOW)
    session.commit()
    with pytest.raises(InvalidTransition):
        canteen.confirm(session, a, w.seller_a, NOW)
    assert _db_status(session, a) == DeliveryStatus.WITHDRAWN


def test_a_buyer_reopening_on_a_stale_page_after_a_confirmation_is_refused(session, make, w):
    order = _small_order(make, w)
    a = _delivery(order, w.supplier_a)
    # The supplier confirmed a moment ago; the buyer's page still shows "waiting".
    session.execute(
        sa.update(SupplierDelivery)
        .where(SupplierDelivery.id == a.id)
        .values(status=DeliveryStatus.CONFIRMED)
        .execution_options(synchronize_session=False)
    )
    with pytest.raises(InvalidTransition):
        canteen.reopen(session, order, w.buyer, NOW)
    session.rollback()  # as the web layer does with a refused action
    session.expire_all()
    assert order.status == BulkOrderStatus.RELEASED


def test_cancelling_needs_a_reason_and_tells_the_suppliers(session, make, w):
    order = _small_order(make, w)
    with pytest.raises(DomainError) as refused:
        canteen.cancel(session, order, w.buyer, NOW, "")
    assert refused.value.field == "reason"
    canteen.cancel(session, order, w.buyer, NOW, "活动取消")
    session.commit()
    assert order.status == BulkOrderStatus.CANCELLED
    assert {d.status for d in order.deliveries} == {DeliveryStatus.WITHDRAWN}
    [note] = _notes(session, w.seller_b, "delivery_withdrawn")
    assert note.params["reason"] == "活动取消"
    with pytest.raises(InvalidTransition):
        canteen.reopen(session, order, w.buyer, NOW)


# --- lists and exports ---------------------------------------------------------------------------


def test_lists_and_exports_filter_by_status_and_supplier(session, make, w):
    released = _small_order(make, w)  # bacon (A) and tea (B)
    waiting = make.bulk_order(w.buyer, [(w.mushrooms, "120")], now=NOW, policy=POLICY)  # A only
    draft = make.bulk_order(w.buyer, [(w.tea, "5")], now=NOW, submit=False)  # B only, a draft

    def listed(**filters):
        return [
            o.id for o in canteen.list_orders(session, w.manager, OrderFilters(**filters), 1).items
        ]

    assert sorted(listed()) == sorted([released.id, waiting.id, draft.id])
    assert listed(status=BulkOrderStatus.AWAITING_APPROVAL) == [waiting.id]
    assert sorted(listed(supplier_id=w.supplier_b.id)) == sorted([released.id, draft.id])
    assert sorted(listed(supplier_id=w.supplier_a.id)) == sorted([released.id, waiting.id])

    exported = canteen.export_lines(session, w.buyer, OrderFilters(supplier_id=w.supplier_b.id))
    assert sorted((line.order_id, line.product_id) for line in exported) == sorted(
        [(released.id, w.bacon.id), (released.id, w.tea.id), (draft.id, w.tea.id)]
    )
    assert canteen.export_lines(session, w.seller_a, OrderFilters()) == []

    confirmed = canteen.supplier_deliveries(session, w.seller_a, DeliveryStatus.CONFIRMED, 1)
    assert confirmed.items == []
    with pytest.raises(PermissionDenied):
        canteen.supplier_deliveries(session, w.buyer, None, 1)


# --- races on PostgreSQL -------------------------------------------------------------------------


@pytest.fixture
def postgres_engine(app):
    yield from helpers.postgres_engine(app)


@dataclass
class Committed:
    ids: dict[str, int]
    order_id: int
    delivery_id: int


@pytest.fixture
def committed(app, postgres_engine):
    """A released order of 40 kg bacon (A) and 5 bags of tea (B), committed for real, and a
    second manager; deleted afterwards."""

    def prepare(make, world):
        second = make.user(roles={Role.CANTEEN_MANAGER}, organization=world.canteen)
        order = _small_order(make, world)
        return Committed(
            ids={
                "buyer": world.buyer.id,
                "manager": world.manager.id,
                "second_manager": second.id,
                "seller_a": world.seller_a.id,
                "supplier_a": world.supplier_a.id,
            },
            order_id=order.id,
            delivery_id=_delivery(order, world.supplier_a).id,
        )

    with helpers.committed_canteen_world(app, postgres_engine, prepare) as result:
        yield result


def _at_once(app, engine, *works) -> list[str]:
    """Run each work(session) in its own thread and transaction, released together."""
    barrier = threading.Barrier(len(works))
    outcomes: dict[int, str] = {}

    def run(index, work):
        with app.app_context(), force_locale("en"), Session(engine) as session:
            prepared = work(session)  # load what the page showed, then press the button at once
            barrier.wait(timeout=30)
            try:
                prepared()
                session.commit()
                outcomes[index] = "ok"
            except DomainError as error:
                session.rollback()
                outcomes[index] = type(error).__name__

    threads = [threading.Thread(target=run, args=(i, work)) for i, work in enumerate(works)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return [outcomes.get(i, "hung") for i in range(len(works))]


@pytest.mark.postgres
def test_two_managers_signing_off_one_delivery_at_once_make_one_invoice(
    app, postgres_engine, committed
):
    with app.app_context(), force_locale("en"), Session(postgres_engine) as session:
        seller = session.get(User, committed.ids["seller_a"])
        delivery = session.get(SupplierDelivery, committed.delivery_id)
        _ship(session, delivery, seller)

    def sign_off(manager_id):
        def prepare(session):
            manager = session.get(User, manager_id)
            delivery = canteen.get_delivery(session, manager, committed.delivery_id)
            [line] = delivery.lines
            entries = {line.id: ReceivedLine("38.65")}
            return lambda: canteen.receive(session, delivery, manager, GOODS_IN, entries, POLICY)

        return prepare

    outcomes = _at_once(
        app,
        postgres_engine,
        sign_off(committed.ids["manager"]),
        sign_off(committed.ids["second_manager"]),
    )
    assert sorted(outcomes) == ["InvalidTransition", "ok"], outcomes
    with Session(postgres_engine) as session:
        [invoice] = session.scalars(
            sa.select(Invoice).where(Invoice.delivery_id == committed.delivery_id)
        ).all()
        assert (invoice.sequence_number, invoice.total_fen) == (1, 77_261)
        sequence = session.get(InvoiceSequence, committed.ids["supplier_a"])
        assert sequence.next_number == 2
        delivery = session.get(SupplierDelivery, committed.delivery_id)
        assert delivery.status == DeliveryStatus.RECEIVED
        winner = [committed.ids["manager"], committed.ids["second_manager"]][outcomes.index("ok")]
        assert delivery.received_by_id == winner
        receipts = session.scalar(
            sa.select(sa.func.count())
            .select_from(BulkOrderEvent)
            .where(
                BulkOrderEvent.order_id == committed.order_id, BulkOrderEvent.action == "receive"
            )
        )
        assert receipts == 1


@pytest.fixture
def two_proposals(app, postgres_engine):
    """Committed: supplier A offers 30 of the 40 kg of bacon and 80 of the 120 boxes of
    mushrooms; two buyers of the canteen are about to answer."""

    def prepare(make, world):
        second_buyer = make.user(roles={Role.CANTEEN_BUYER}, organization=world.canteen)
        order = make.bulk_order(
            world.buyer,
            [(world.bacon, "40"), (world.mushrooms, "120")],
            now=NOW,
            policy=CanteenPolicy(approval_threshold_fen=10_000_000),
        )
        [delivery] = order.deliveries
        bacon, mushrooms = _line(order, world.bacon), _line(order, world.mushrooms)
        offer = {bacon.id: "30", mushrooms.id: "80"}
        canteen.confirm(make.session, delivery, world.seller_a, NOW, offer)
        return {
            "order": order.id,
            "delivery": delivery.id,
            "buyers": (world.buyer.id, second_buyer.id),
            "lines": (bacon.id, mushrooms.id),
        }

    with helpers.committed_canteen_world(app, postgres_engine, prepare) as ids:
        yield ids


@pytest.mark.postgres
def test_two_buyers_accepting_two_reductions_at_once_confirm_the_delivery(
    app, postgres_engine, two_proposals
):
    ids = two_proposals

    def accept(buyer_id, line_id):
        def prepare(session):
            buyer = session.get(User, buyer_id)
            order = canteen.get_order(session, buyer, ids["order"])
            return lambda: canteen.answer_proposal(session, order, line_id, buyer, NOW, True)

        return prepare

    outcomes = _at_once(
        app,
        postgres_engine,
        accept(ids["buyers"][0], ids["lines"][0]),
        accept(ids["buyers"][1], ids["lines"][1]),
    )
    assert outcomes == ["ok", "ok"]
    with Session(postgres_engine) as session:
        order = session.get(BulkOrder, ids["order"])
        assert [(x.quantity, x.proposed_quantity) for x in order.lines] == [(30, None), (80, None)]
        # Neither answer is lost: the last one confirms the delivery, the total counts both.
        assert session.get(SupplierDelivery, ids["delivery"]).status == DeliveryStatus.CONFIRMED
        assert order.total_fen == 30 * 1999 + 80 * 4200


@pytest.mark.postgres
def test_a_supplier_confirming_while_the_buyer_reopens_ends_with_exactly_one(
    app, postgres_engine, committed
):
    def confirm(session):
        seller = session.get(User, committed.ids["seller_a"])
        delivery = canteen.get_delivery_for_supplier(session, seller, committed.delivery_id)
        return lambda: canteen.confirm(session, delivery, seller, NOW)

    def reopen(session):
        buyer = session.get(User, committed.ids["buyer"])
        order = canteen.get_order(session, buyer, committed.order_id)
        return lambda: canteen.reopen(session, order, buyer, NOW)

    outcomes = _at_once(app, postgres_engine, confirm, reopen)
    assert sorted(outcomes) == ["InvalidTransition", "ok"], outcomes
    with Session(postgres_engine) as session:
        order = session.get(BulkOrder, committed.order_id)
        delivery = session.get(SupplierDelivery, committed.delivery_id)
        statuses = {d.supplier_id: d.status for d in order.deliveries}
        if outcomes[0] == "ok":  # the supplier was first: the order stays with the suppliers
            assert order.status == BulkOrderStatus.RELEASED
            assert delivery.status == DeliveryStatus.CONFIRMED
            assert all(line.unit_price_fen is not None for line in order.lines)
        else:  # the buyer was first: everything is withdrawn and back to a draft
            assert order.status == BulkOrderStatus.DRAFT
            assert set(statuses.values()) == {DeliveryStatus.WITHDRAWN}
            assert all(line.unit_price_fen is None for line in order.lines)
