"""The content security policy (app/web/security.py) holds in a real browser: the pages people
use every day, including paying on Stripe's hosted page after a form's redirect, run without a
single violation. Chromium reports each blocked inline style or script on the console and as a
securitypolicyviolation event; either one fails the test, so a `style="..."` added to one of
these pages, or a form-action that no longer allows Checkout, is caught here.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import ConsoleMessage, Page, expect

from app.services.clock import local_date, utcnow
from tests.helpers import create_public_pledge

pytestmark = pytest.mark.browser

RAPESEED_OIL = "万源菜籽油"
CSP_MARK = "Content Security Policy"

#: Registered before any page script: every violation the page sees is also written to the
#: console, whatever wording Chromium's own message has.
REPORT_VIOLATIONS = f"""
document.addEventListener("securitypolicyviolation", function (event) {{
  console.error("{CSP_MARK} violation: " + event.violatedDirective + " blocked "
    + (event.blockedURI || "inline") + " " + (event.sample || ""));
}});
"""


class ViolationWatch:
    """Collects CSP violations from every page it is attached to."""

    def __init__(self):
        self.violations: list[str] = []

    def attach(self, page: Page) -> Page:
        page.add_init_script(REPORT_VIOLATIONS)

        def on_console(message: ConsoleMessage) -> None:
            if CSP_MARK in message.text:
                self.violations.append(f"{page.url}: {message.text}")

        page.on("console", on_console)
        return page


def visit(page: Page, path: str) -> None:
    """Open a page of the shop and check that it carries the policy being tested."""
    response = page.goto(path)
    assert response is not None and response.ok, f"{path}: {response and response.status}"
    policy = response.headers.get("content-security-policy", "")
    assert "style-src 'self'" in policy and "unsafe-inline" not in policy, (path, policy)


@pytest.fixture(scope="module")
def pledge_id(live_db) -> int:
    """A public pledge over this year: its page and the board draw progress and breakdown bars."""
    with live_db() as session:
        pledge = create_public_pledge(session, f"{local_date(utcnow()).year}年安全策略检查承诺")
        session.commit()
        return pledge.id


@pytest.fixture
def watch() -> ViolationWatch:
    return ViolationWatch()


def test_shopping_and_paying_on_stripe_break_no_policy(
    page, log_in_as, stripe_standin, watch, live_server
):
    watch.attach(page)
    visit(page, "/board")  # anonymous, stand-alone page
    log_in_as(page, "staff")
    visit(page, "/")
    visit(page, "/products?q=wyczy")
    page.locator("main").get_by_role("link", name=RAPESEED_OIL, exact=True).click()
    expect(page.locator("main h1")).to_have_text(RAPESEED_OIL)
    page.locator("main form.buy-box #quantity").fill("1")
    page.locator("main form.buy-box button[type=submit]").click()
    expect(page.locator("main .alert")).to_have_text("已加入购物车。")
    visit(page, "/cart")
    page.locator("main").get_by_role("link", name="去结算", exact=True).click()
    expect(page.locator("main h1")).to_have_text("去结算")
    page.get_by_label("线上支付（银行卡、支付宝、微信支付）").check()
    page.locator("main").get_by_role("button", name="提交订单", exact=True).click()

    # The form's POST is answered with a 303 to the hosted payment page: form-action allows it.
    expect(page).to_have_url(re.compile(re.escape(stripe_standin.base_url) + r"/pay/cs_"))
    page.get_by_role("button", name="Pay 支付").click()
    expect(page).to_have_url(re.compile(re.escape(live_server) + r"/orders/\d+"))
    expect(page.locator("main .alert").filter(has_text="已收到付款")).to_be_visible()
    visit(page, "/orders")

    assert watch.violations == []


def test_the_coordinators_pledge_pages_break_no_policy(page, log_in_as, pledge_id, watch):
    watch.attach(page)
    log_in_as(page, "coordinator")
    for path in (
        "/pledges/",
        f"/pledges/{pledge_id}",
        f"/pledges/{pledge_id}/report",
        "/pledges/ranking",
        "/board",
    ):
        visit(page, path)
    # The bars really are on these pages (drawn as SVG), so the check above covered them.
    page.goto("/pledges/")
    expect(page.locator(f"#pledge-{pledge_id} .pace-bar svg rect.pace-met")).to_have_count(1)
    page.goto(f"/pledges/{pledge_id}")
    expect(page.locator("#by-channel .breakdown-track svg rect").first).to_be_attached()

    assert watch.violations == []


def test_the_watch_sees_a_style_attribute_the_policy_blocks(page, watch):
    """The check above can fail: an inline style on one of our pages is reported."""
    watch.attach(page)
    visit(page, "/")
    page.evaluate("document.querySelector('main').setAttribute('style', 'outline: 1px solid')")
    expect(page.locator("main")).not_to_have_css("outline-style", "solid")
    page.wait_for_timeout(200)  # console events arrive asynchronously
    assert watch.violations, "a blocked inline style went unnoticed"
    assert any("style-src" in violation for violation in watch.violations)
