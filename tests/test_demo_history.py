"""The demo's year of history is made through the real services and adds up, on any day."""

from datetime import UTC, date, datetime

import pytest
import sqlalchemy as sa

from app.models import (
    BulkOrder,
    BulkOrderStatus,
    ImportRow,
    Invoice,
    LedgerEntry,
    Organization,
    Pledge,
    Region,
)
from app.services import accounts, demo, demo_history, ledger, pledges
from app.services.clock import local_date
from tests import helpers

NOW = datetime(2026, 11, 27, 2, 0, tzinfo=UTC)  # 10:00 in Zhoushan


def seeded(app, session, monkeypatch, now: datetime):
    monkeypatch.setattr(accounts, "generate_password_hash", helpers.cheap_password_hash)
    monkeypatch.setattr(demo_history, "generate_password_hash", helpers.cheap_password_hash)
    with app.app_context():
        demo.seed_demo(session, password="demo-password-1", now=now)
        report = demo_history.seed_history(session, password="demo-password-1", now=now)
        session.commit()
    return report


@pytest.fixture
def history(app, session, monkeypatch):
    return seeded(app, session, monkeypatch, NOW)


def the_plan(session) -> Pledge:
    return session.scalar(sa.select(Pledge).where(Pledge.target_fen == 53_000_000))


def plan_parts(app, session, today: date) -> tuple[int, int, int]:
    """(the demo orders' part, the imported file's part, met) of the canteen's 530,000 plan."""
    plan = the_plan(session)
    counted = pledges.ledger_query(plan).whereclause

    def part(column) -> int:
        return session.scalar(
            sa.select(sa.func.coalesce(sa.func.sum(LedgerEntry.amount_fen), 0)).where(
                counted, column.is_not(None)
            )
        )

    with app.app_context():
        met = pledges.progress(session, plan, today).met_fen
    return part(LedgerEntry.bulk_order_id), part(LedgerEntry.import_batch_id), met


def test_the_demo_year_is_invoiced_paid_counted_and_added_once(app, session, history):
    # (One test: seeding the year takes seconds, and each part reads the same history.)
    assert history.bulk_orders == 10  # January to October
    orders = session.scalars(sa.select(BulkOrder)).all()
    assert {order.status for order in orders} == {BulkOrderStatus.COMPLETED}
    invoices = session.scalars(sa.select(Invoice)).all()
    assert len(invoices) == sum(len(order.deliveries) for order in orders)
    assert all(invoice.outstanding_fen == 0 for invoice in invoices)

    assert history.pledges == 3 and history.imported_rows == 20
    assert ledger.check_rollup(session) == []
    plan = the_plan(session)
    canteen = session.scalar(sa.select(Organization).where(Organization.code == "CANTEEN"))
    dazhou = session.scalar(sa.select(Region).where(Region.code == "dazhou"))
    direct = session.scalar(
        sa.select(sa.func.sum(LedgerEntry.amount_fen)).where(
            LedgerEntry.buyer_organization_id == canteen.id,
            LedgerEntry.origin_region_id == dazhou.id,
            LedgerEntry.occurred_on.between(date(2026, 1, 1), date(2026, 12, 31)),
        )
    )
    with app.app_context():
        figures = pledges.progress(session, plan, date(2026, 11, 27))
    assert figures.met_fen == direct
    assert 0.4 < figures.met_fen / plan.target_fen < 0.8  # partly met, behind the calendar
    assert figures.behind_alert

    assert demo_history.seed_history(session, password="demo-password-1", now=NOW) is None


def test_the_530000_plan_is_met_partly_by_the_orders_and_partly_by_the_imported_file(
    app, session, history
):
    orders_part, import_part, met = plan_parts(app, session, date(2026, 11, 27))
    assert orders_part > 0 and import_part > 0
    assert orders_part + import_part == met
    # Not left to chance: every fourth row of the file counts toward the plan.
    imported = session.scalar(
        sa.select(sa.func.count()).where(
            pledges.ledger_query(the_plan(session)).whereclause,
            LedgerEntry.import_batch_id.is_not(None),
        )
    )
    assert imported >= 5


@pytest.mark.parametrize(
    "now",
    [
        datetime(2026, 1, 2, 2, 0, tzinfo=UTC),  # 10:00 on 2 January in Zhoushan
        datetime(2026, 12, 31, 2, 0, tzinfo=UTC),
    ],
    ids=["2 January", "31 December"],
)
def test_the_demo_history_is_made_on_any_day_of_the_year(app, session, monkeypatch, now):
    today = local_date(now)

    report = seeded(app, session, monkeypatch, now)

    assert report.imported_rows == 20
    days = session.scalars(sa.select(ImportRow.occurred_on)).all()
    assert min(days) >= date(2026, 1, 1) and max(days) <= today
    # January has an order too (placed in December, received in the new year).
    assert report.bulk_orders == max(today.month - 1, 1)
    received = session.scalars(
        sa.select(LedgerEntry.occurred_on).where(LedgerEntry.bulk_order_id.is_not(None))
    ).all()
    assert received and all(date(2026, 1, 1) <= day <= today for day in received)
    orders_part, import_part, met = plan_parts(app, session, today)
    assert orders_part > 0 and import_part > 0
    assert orders_part + import_part == met < 53_000_000
    assert ledger.check_rollup(session) == []
