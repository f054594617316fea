import re
from decimal import Decimal

import pytest
import sqlalchemy as sa

from app.models import FulfilmentStatus, Order, PaymentStatus, Role, StockMovement
from app.services import cart, orders
from app.services.clock import utcnow
from app.services.errors import DomainError, NotFound, PermissionDenied


@pytest.fixture
def buyer(make):
    return make.user(roles={Role.STAFF})


@pytest.fixture
def clerk(make):
    return make.user(roles={Role.COUNTER_CLERK})


@pytest.fixture
def placed(session, make, buyer):
    product = make.product(name_zh="灯影牛肉", retail_price_fen=4980, stock=Decimal(10))
    cart.add(session, buyer, product.id, "2", utcnow())
    order = orders.place_order(session, buyer, utcnow())
    session.commit()
    return order


def test_placing_an_order_snapshots_lines_takes_stock_and_empties_the_cart(
    session, make, buyer, placed
):
    [line] = placed.lines
    assert (line.name_zh, line.unit_price_fen, line.quantity, line.total_fen) == (
        "灯影牛肉",
        4980,
        2,
        9960,
    )
    assert placed.total_fen == 9960
    assert re.fullmatch(r"\d{6}-\d{5}", placed.number)
    assert re.fullmatch(r"\d{6}", placed.pickup_code)
    assert placed.buyer_organization_id == buyer.organization_id
    assert (placed.status, placed.payment_status) == (FulfilmentStatus.PLACED, PaymentStatus.UNPAID)
    assert cart.view(session, buyer).items == []
    taken = session.scalar(
        sa.select(sa.func.sum(StockMovement.change)).where(StockMovement.reference == placed.number)
    )
    assert taken == -2


def test_later_catalog_edits_never_rewrite_an_order(session, make, buyer):
    product = make.product(name_zh="旧名", retail_price_fen=1000)
    cart.add(session, buyer, product.id, "1", utcnow())
    order = orders.place_order(session, buyer, utcnow())
    product.name_zh, product.retail_price_fen = "新名", 2000
    session.commit()
    session.expire_all()
    assert (order.lines[0].name_zh, order.lines[0].unit_price_fen, order.total_fen) == (
        "旧名",
        1000,
        1000,
    )


def test_an_empty_cart_cannot_be_placed(session, buyer):
    with pytest.raises(DomainError, match="empty"):
        orders.place_order(session, buyer, utcnow())


def test_if_stock_ran_out_meanwhile_nothing_is_placed(session, make, buyer):
    product = make.product(stock=Decimal(5))
    cart.add(session, buyer, product.id, "5", utcnow())
    product.stock = Decimal(4)
    session.commit()
    with pytest.raises(DomainError):
        orders.place_order(session, buyer, utcnow())
    session.rollback()
    assert session.scalar(sa.select(sa.func.count(Order.id))) == 0


# "withdraw" happens only through a full refund: see tests/services/test_refunds.py.
@pytest.mark.parametrize("move", sorted(set(orders.STATUS_MOVES) - {"withdraw"}))
@pytest.mark.parametrize("start", list(FulfilmentStatus))
def test_the_transition_table_is_enforced(session, placed, clerk, move, start):
    allowed_from, target = orders.STATUS_MOVES[move]
    session.execute(
        sa.update(Order)
        .where(Order.id == placed.id)
        .values(
            status=start, payment_status=PaymentStatus.PAID if move == "hand_over" else "unpaid"
        )
    )
    session.expire(placed)
    action = {
        "mark_ready": orders.mark_ready,
        "hand_over": orders.hand_over,
        "cancel": orders.cancel,
    }[move]
    if start in allowed_from:
        action(session, placed, clerk, utcnow())
        assert placed.status == target
        event = placed.events[-1]
        assert (event.from_state, event.to_state, event.actor_id) == (start, target, clerk.id)
    else:
        with pytest.raises(orders.InvalidTransition):
            action(session, placed, clerk, utcnow())


def test_the_counter_flow_ready_paid_handed_over(session, placed, clerk):
    orders.mark_ready(session, placed, clerk, utcnow())
    with pytest.raises(orders.InvalidTransition, match="payment"):
        orders.hand_over(session, placed, clerk, utcnow())
    orders.take_counter_payment(session, placed, clerk, utcnow())
    assert (placed.payment_status, placed.paid_by_id) == (PaymentStatus.PAID, clerk.id)
    with pytest.raises(orders.InvalidTransition, match="already paid"):
        orders.take_counter_payment(session, placed, clerk, utcnow())
    orders.hand_over(session, placed, clerk, utcnow())
    assert [(e.machine, e.to_state) for e in placed.events] == [
        ("status", "placed"),
        ("status", "ready"),
        ("payment", "paid"),
        ("status", "handed_over"),
    ]


def test_a_second_clerk_pressing_the_same_button_is_told_it_already_moved(session, placed, clerk):
    # Another clerk marked it ready a moment ago; this clerk's page still says "placed".
    session.execute(
        sa.update(Order)
        .where(Order.id == placed.id)
        .values(status=FulfilmentStatus.READY)
        .execution_options(synchronize_session=False)
    )
    with pytest.raises(orders.InvalidTransition, match="changed in the meantime"):
        orders.mark_ready(session, placed, clerk, utcnow())
    assert len(placed.events) == 1


def test_cancelling_gives_the_stock_back(session, placed, buyer):
    product_id = placed.lines[0].product_id
    orders.cancel(session, placed, buyer, utcnow())
    assert placed.status == FulfilmentStatus.CANCELLED
    returned = session.scalar(
        sa.select(sa.func.sum(StockMovement.change)).where(StockMovement.product_id == product_id)
    )
    assert returned == 0


def test_staff_cannot_work_the_counter_or_cancel_someone_elses_order(session, make, placed):
    other = make.user(roles={Role.STAFF})
    for action in (orders.mark_ready, orders.take_counter_payment, orders.hand_over, orders.cancel):
        with pytest.raises(PermissionDenied):
            action(session, placed, other, utcnow())


def test_a_paid_order_is_not_cancelled_online(session, placed, buyer, clerk):
    orders.take_counter_payment(session, placed, clerk, utcnow())
    with pytest.raises(orders.InvalidTransition):
        orders.cancel(session, placed, buyer, utcnow())


def test_only_the_buyer_and_the_counter_see_an_order(session, make, placed, buyer, clerk):
    assert orders.get_order(session, placed.id, buyer) is placed
    assert orders.get_order(session, placed.id, clerk) is placed
    with pytest.raises(NotFound):
        orders.get_order(session, placed.id, make.user(roles={Role.STAFF}))


def test_the_counter_finds_open_orders_by_number_or_pickup_code(session, placed):
    assert orders.find_orders(session, placed.number) == [placed]
    assert orders.find_orders(session, f" {placed.pickup_code} ") == [placed]
    assert orders.find_orders(session, "000") == []
    queue = orders.counter_queue(session)
    assert queue["to_prepare"] == [placed] and queue["ready"] == []
