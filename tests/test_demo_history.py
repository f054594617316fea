"""The demo's year of history is made through the real services and adds up."""

from datetime import UTC, date, datetime

import pytest
import sqlalchemy as sa

from app.models import (
    BulkOrder,
    BulkOrderStatus,
    Invoice,
    LedgerEntry,
    Organization,
    Pledge,
    Region,
)
from app.services import accounts, demo, demo_history, ledger, pledges
from tests import helpers

NOW = datetime(2026, 11, 27, 2, 0, tzinfo=UTC)  # 10:00 in Zhoushan


@pytest.fixture
def history(app, session, monkeypatch):
    monkeypatch.setattr(accounts, "generate_password_hash", helpers.cheap_password_hash)
    monkeypatch.setattr(demo_history, "generate_password_hash", helpers.cheap_password_hash)
    with app.app_context():
        demo.seed_demo(session, password="demo-password-1", now=NOW)
        report = demo_history.seed_history(session, password="demo-password-1", now=NOW)
        session.commit()
        yield report


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
    plan = session.scalar(sa.select(Pledge).where(Pledge.target_fen == 53_000_000))
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
