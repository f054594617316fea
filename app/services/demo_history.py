"""A year of demo history, made through the real services: what `flask seed-demo` adds after
the catalog and the accounts, so that the pledge pages have something to show.

- One canteen bulk order for each month of the year gone by: drafted and submitted by the demo
  buyer, approved by the demo manager, confirmed and shipped by each supplier's account,
  received with the weights actually weighed (a little short on goods sold by weight) and
  invoiced; the invoices of earlier months paid by bank transfer. In January, when no month of
  the year is over yet, one order placed in late December and received in the first days of
  January instead.
- A few staff purchases a month, paid at the counter and handed over.
- Three pledges for the current year: the canteen's 530,000 CNY plan with Dazhou, the whole
  administration's consumption-assistance pledge, and the canteen's reserved share (15 %).
- One imported file of offline sales (政采云), committed; a quarter of its rows are the
  canteen's offline purchases of Dazhou goods, so the 530,000 CNY plan is met partly by the
  orders and partly by the file, on any day of the year.

Every step goes through the same services as the pages, with the time of the step passed in,
so every figure can be traced as a real one would. It runs once: a database that already has a
bulk order is left alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import ROUND_DOWN, Decimal

import sqlalchemy as sa
from sqlalchemy.orm import Session
from werkzeug.security import generate_password_hash

from app.models import (
    BulkOrder,
    Channel,
    Organization,
    OrgKind,
    PledgeKind,
    Product,
    Region,
    Role,
    User,
)
from app.services import accounts, canteen, cart, invoices, orders, pledges, sales_import
from app.services.clock import LOCAL_TZ, local_date
from app.services.pricing import bulk_minimum

#: Month by month, what the canteen orders: (product code, cases beyond the bulk minimum).
CANTEEN_BASKETS = [
    [("DZ-0003", 3), ("DZ-0001", 2), ("DZ-0004", 4), ("ZS-0002", 1)],
    [("DZ-0012", 3), ("DZ-0013", 4), ("DZ-0007", 2), ("DZ-0026", 2)],
    [("DZ-0003", 2), ("DZ-0024", 1), ("DZ-0014", 3), ("ZS-0007", 1)],
    [("DZ-0001", 4), ("DZ-0004", 6), ("DZ-0018", 3), ("DZ-0016", 2)],
    [("DZ-0003", 4), ("DZ-0012", 2), ("DZ-0020", 2), ("ZS-0010", 1)],
    [("DZ-0013", 3), ("DZ-0001", 2), ("DZ-0002", 3), ("DZ-0008", 3)],
]
#: What staff buy at the counter in a month: (e-mail local part, product code, quantity).
STAFF_BASKETS = [
    ("staff", "DZ-0001", "2"),
    ("staff", "DZ-0004", "1"),
    ("coordinator", "DZ-0007", "1"),
    ("clerk", "ZS-0002", "1.5"),
]
DEMO_DOMAIN = "shanhai.demo"


@dataclass
class HistoryReport:
    bulk_orders: int = 0
    staff_orders: int = 0
    pledges: int = 0
    imported_rows: int = 0
    supplier_accounts: int = 0


def _at(day: date, hour: int) -> datetime:
    """That hour of that day in Zhoushan (stored in UTC like every other time)."""
    return datetime.combine(day, time(hour), tzinfo=LOCAL_TZ)


def _user(session: Session, local_part: str) -> User:
    user = accounts.find_user_by_email(session, f"{local_part}@{DEMO_DOMAIN}")
    if user is None:
        raise LookupError(f"the demo account {local_part}@{DEMO_DOMAIN} is missing")
    return user


def _supplier_accounts(session: Session, password: str, now: datetime, report) -> dict[int, User]:
    """One account per supplier (the first Dazhou supplier already has supplier@), so that each
    can confirm and ship its own part: <supplier code in lower case>@shanhai.demo."""
    found: dict[int, User] = {}
    for user in session.scalars(sa.select(User).where(User.organization_id.is_not(None))):
        if user.has_role(Role.SUPPLIER):
            found.setdefault(user.organization_id, user)
    shared_hash = None
    for supplier in session.scalars(
        sa.select(Organization).where(Organization.kind == OrgKind.SUPPLIER)
    ):
        if supplier.id in found:
            continue
        shared_hash = shared_hash or generate_password_hash(password)
        found[supplier.id] = accounts.create_user(
            session,
            email=f"{supplier.code.lower()}@{DEMO_DOMAIN}",
            name=supplier.contact_name or supplier.name_zh[:16],
            password=password,
            roles={Role.SUPPLIER},
            organization=supplier,
            now=now,
            password_hash=shared_hash,
        )
        report.supplier_accounts += 1
    return found


def _received(quantity: Decimal, by_weight: bool, month: int) -> Decimal:
    """What the scales said: goods sold by weight arrive a little short some months."""
    if not by_weight or month % 2:
        return quantity
    return (quantity * Decimal("0.985")).quantize(Decimal("0.1"), rounding=ROUND_DOWN)


def _canteen_order(
    session,
    basket,
    people,
    sellers,
    report,
    *,
    placed: datetime,
    delivery_date: date,
    received_at: datetime,
    today: date,
) -> None:
    """The canteen's order of `basket`, placed at `placed`, confirmed a day later, shipped four
    days later and received at `received_at`; paid 17 days after delivery if that is gone."""
    buyer, manager, coordinator = people
    products = {
        p.code: p
        for p in session.scalars(sa.select(Product).where(Product.code.in_([c for c, _ in basket])))
    }
    wanted = {}
    for code, extra_cases in basket:
        product = products.get(code)
        if product is None or not product.offers_bulk:
            continue
        # The canteen feeds some 1,500 people a day: several times the bulk minimum.
        wanted[product.id] = bulk_minimum(product) * 2 + extra_cases * 4 * product.case_size
    if not wanted:
        return
    order = canteen.create_draft(session, buyer, placed, wanted)
    canteen.update_details(
        session,
        order,
        buyer,
        delivery_date=delivery_date,
        delivery_address=order.delivery_address,
        po_reference=f"ST-{delivery_date:%Y%m}",
        notes="",
    )
    canteen.submit(session, order, buyer, placed, canteen.CanteenPolicy())
    if order.status.value == "awaiting_approval":
        canteen.approve(session, order, manager, placed + timedelta(hours=2))
    for delivery in order.deliveries:
        seller = sellers[delivery.supplier_id]
        canteen.confirm(session, delivery, seller, placed + timedelta(days=1))
        canteen.ship(
            session,
            delivery,
            seller,
            placed + timedelta(days=4),
            f"DN-{delivery_date:%Y%m}-{delivery.supplier_id}",
        )
        goods_in = {
            line.id: canteen.ReceivedLine(
                str(_received(line.quantity, line.unit.is_weight, delivery_date.month)),
                note="" if not line.unit.is_weight else "按实际过磅",
            )
            for line in delivery.open_lines
        }
        invoice = canteen.receive(
            session, delivery, manager, received_at, goods_in, canteen.CanteenPolicy()
        )
        paid_on = delivery_date + timedelta(days=17)
        if paid_on < today:
            invoices.record_payment(
                session,
                invoice,
                coordinator,
                _at(paid_on, 15),
                paid_on=paid_on,
                reference=f"ICBC-{paid_on:%Y%m%d}-{invoice.sequence_number:03d}",
                amount=str(Decimal(invoice.total_fen) / 100),
            )
    report.bulk_orders += 1


def _staff_month(session, month_start: date, clerk: User, report) -> None:
    codes = {code for _who, code, _q in STAFF_BASKETS}
    products = {
        p.code: p for p in session.scalars(sa.select(Product).where(Product.code.in_(codes)))
    }
    for offset, (who, code, quantity) in enumerate(STAFF_BASKETS):
        product = products.get(code)
        if product is None:
            continue
        buyer = _user(session, who)
        moment = _at(month_start + timedelta(days=10 + offset), 12)
        cart.add(session, buyer, product.id, quantity, moment)
        order = orders.place_order(session, buyer, moment)
        orders.take_counter_payment(session, order, clerk, moment + timedelta(minutes=20))
        orders.mark_ready(session, order, clerk, moment + timedelta(minutes=21))
        orders.hand_over(session, order, clerk, moment + timedelta(minutes=22))
        report.staff_orders += 1


def _pledges(session, coordinator: User, year: int, now: datetime, report) -> None:
    regions = {r.code: r for r in session.scalars(sa.select(Region))}
    orgs = {o.code: o for o in session.scalars(sa.select(Organization))}
    start, end = date(year, 1, 1), date(year, 12, 31)
    plans = [
        pledges.PledgeData(
            name=f"{year}年机关食堂达州农产品采购计划（53万元）",
            kind=PledgeKind.FIXED,
            period_start=start,
            period_end=end,
            organization_ids=[orgs["CANTEEN"].id],
            region_ids=[regions["dazhou"].id],
            target_fen=53_000_000,
            public=True,
            notes="食堂与达州签订的年度采购计划。",
        ),
        pledges.PledgeData(
            name=f"{year}年市级机关消费帮扶",
            kind=PledgeKind.FIXED,
            period_start=start,
            period_end=end,
            all_organizations=True,
            region_ids=[regions["dazhou"].id],
            target_fen=80_000_000,
            public=True,
        ),
        pledges.PledgeData(
            name=f"{year}年机关食堂脱贫地区农副产品预留份额（15%）",
            kind=PledgeKind.SHARE,
            period_start=start,
            period_end=end,
            organization_ids=[orgs["CANTEEN"].id],
            region_ids=[regions["dazhou"].id],
            channels=[Channel.CANTEEN_BULK, Channel.OFFLINE],
            declared_spending_fen=320_000_000,
            share_percent=Decimal("15"),
        ),
    ]
    for plan in plans:
        pledges.create_pledge(session, coordinator, now, plan)
        report.pledges += 1


def _offline_import(session, coordinator: User, year: int, now: datetime, report) -> None:
    today = local_date(now)
    data = sales_import.demo_offline_sales(today, year=year)
    rows = sales_import.read("zcy-demo.csv", data, max_bytes=2_000_000, max_rows=1000)
    batch = sales_import.stage(session, coordinator, now, "zcy", "zcy-demo.csv", rows)
    sales_import.commit(session, batch, coordinator, now)
    report.imported_rows += batch.rows_new


def seed_history(session: Session, *, password: str, now: datetime) -> HistoryReport | None:
    """Add the year's history, or None when the database already has bulk orders."""
    if session.scalar(sa.select(BulkOrder.id).limit(1)) is not None:
        return None
    report = HistoryReport()
    today = local_date(now)
    people = (_user(session, "buyer"), _user(session, "manager"), _user(session, "coordinator"))
    clerk = _user(session, "clerk")
    sellers = _supplier_accounts(session, password, now, report)
    for month in range(1, today.month):
        month_start = date(today.year, month, 1)
        basket = CANTEEN_BASKETS[(month - 1) % len(CANTEEN_BASKETS)]
        delivery_date = month_start + timedelta(days=8)
        _canteen_order(
            session,
            basket,
            people,
            sellers,
            report,
            placed=_at(month_start + timedelta(days=2), 9),
            delivery_date=delivery_date,
            received_at=_at(delivery_date, 10),
            today=today,
        )
        _staff_month(session, month_start, clerk, report)
    if today.month == 1:
        # No month of the year is over yet: the order placed before the holiday arrives in the
        # first days of January (by now at the latest), so the year's pledges start from it.
        delivery_date = min(today, date(today.year, 1, 2))
        _canteen_order(
            session,
            CANTEEN_BASKETS[0],
            people,
            sellers,
            report,
            placed=_at(date(today.year - 1, 12, 27), 9),
            delivery_date=delivery_date,
            received_at=min(_at(delivery_date, 10), now),
            today=today,
        )
    _pledges(session, people[2], today.year, now, report)
    _offline_import(session, people[2], today.year, now, report)
    session.flush()
    return report
