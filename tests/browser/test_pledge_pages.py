"""The pledge page and the public board in a real browser, with their figures checked against a
direct sum over the live server's ledger and kept as screenshots (test-artifacts/pledge-*.png,
board-*.png)."""

from __future__ import annotations

import re
from datetime import date

import pytest
import sqlalchemy as sa
from playwright.sync_api import expect

from app.models import LedgerEntry, Product, User
from app.services import cart, orders
from app.services.clock import local_date, utcnow
from app.services.demo import DEMO_EMAIL_DOMAIN
from app.services.money import format_wan
from tests.helpers import create_public_pledge

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def pledge_id(live_db) -> int:
    """A public pledge over this whole year, every unit, both regions: whatever the other
    browser tests bought counts toward it too, and the page must still add up."""
    with live_db() as session:
        pledge = create_public_pledge(session, f"{local_date(utcnow()).year}年浏览器检查承诺")
        # Something that counts, whichever tests ran before: a staff purchase paid at the counter.
        staff, clerk = (
            session.scalar(sa.select(User).where(User.email == f"{who}@{DEMO_EMAIL_DOMAIN}"))
            for who in ("staff", "clerk")
        )
        product = session.scalar(sa.select(Product).where(Product.code == "DZ-0001"))
        cart.add(session, staff, product.id, "2", utcnow())
        order = orders.place_order(session, staff, utcnow())
        orders.take_counter_payment(session, order, clerk, utcnow())
        session.commit()
        return pledge.id


def ledger_sum(live_db) -> int:
    year = local_date(utcnow()).year
    with live_db() as session:
        return session.scalar(
            sa.select(sa.func.coalesce(sa.func.sum(LedgerEntry.amount_fen), 0)).where(
                LedgerEntry.occurred_on.between(date(year, 1, 1), date(year, 12, 31))
            )
        )


@pytest.mark.parametrize("width", [1280, 390])
def test_the_pledge_page_shows_the_ledgers_sum_and_its_charts(
    new_page, log_in_as, screenshot, live_db, pledge_id, width
):
    page = new_page(width=width)
    log_in_as(page, "coordinator")
    expect(page).to_have_url(re.compile(r"/pledges/$"))  # a coordinator's home
    page.goto(f"/pledges/{pledge_id}")
    met = ledger_sum(live_db)
    assert met > 0
    figure = page.locator("#fig-met")
    expect(figure).to_have_attribute("data-fen", str(met))
    expect(figure).to_have_text(format_wan(met))
    expect(page.locator("svg.pledge-chart").first).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= width + 1
    screenshot(page, f"pledge-{width}")
    figure.click()  # the figure leads to the entries behind it
    expect(page).to_have_url(re.compile(rf"/pledges/{pledge_id}/ledger"))


@pytest.mark.parametrize(("width", "height"), [(1920, 1080), (390, 844)])
def test_the_public_board_needs_no_login_and_shows_the_public_pledge(
    new_page, screenshot, live_db, pledge_id, width, height
):
    page = new_page(width=width, height=height)
    page.goto("/board")
    card = page.locator(f"#board-pledge-{pledge_id}")
    met = ledger_sum(live_db)
    expect(card.locator(".board-met")).to_have_attribute("data-fen", str(met))
    expect(page.locator("meta[http-equiv=refresh]")).to_have_count(1)
    assert page.evaluate("document.documentElement.scrollWidth") <= width + 1
    screenshot(page, f"board-{width}")
