"""What a staff member and the counter clerk notice when buying in a real browser: the cart and
its total, placing an order with a pickup code, the counter preparing, taking payment and
handing it over, sold-out products that cannot be added, and cart and order pages on a phone.

All tests share one live server and database, and other tests log in as staff too: a test
empties the staff cart through the page before using it, and reads order numbers and pickup
codes from the pages instead of assuming them.
"""

from __future__ import annotations

import re
from urllib.parse import quote

import pytest
from playwright.sync_api import Locator, Page, expect

pytestmark = pytest.mark.browser

DENGYING = "灯影牛肉"
RAPESEED_OIL = "万源菜籽油"
PRICE = re.compile(r"¥\d[\d,]*\.\d{2}")
PICKUP_CODE = re.compile(r"^\d{6}$")
PHONE = 390


def heading(page: Page) -> Locator:
    return page.locator("main h1")


def alert(page: Page) -> Locator:
    return page.locator("main .alert")


def fen(price: str) -> int:
    """'¥1,234.50' (possibly with text around it) -> 123450."""
    match = PRICE.search(price)
    assert match, f"no price in {price!r}"
    return int(re.sub(r"[¥,.]", "", match.group()))


def empty_the_cart(page: Page) -> None:
    """Remove whatever an earlier test left in the cart, one 移除 at a time."""
    page.goto("/cart")
    expect(heading(page)).to_have_text("购物车")
    remove = page.locator("main").get_by_role("button", name="移除", exact=True)
    for left in range(remove.count(), 0, -1):
        remove.first.click()
        expect(remove).to_have_count(left - 1)
    expect(page.locator("main")).to_contain_text("购物车是空的。")


def add_to_cart(page: Page, query: str, name: str, quantity: int) -> None:
    """Search the catalog, open the product from the results and add it to the cart."""
    page.goto(f"/products?q={quote(query)}")
    page.locator("main").get_by_role("link", name=name, exact=True).click()
    expect(heading(page)).to_have_text(name)
    buy_box = page.locator("main form.buy-box")
    buy_box.locator("#quantity").fill(str(quantity))
    buy_box.get_by_role("button", name="加入购物车", exact=True).click()
    expect(alert(page)).to_have_text("已加入购物车。")


def cart_line(page: Page, name: str) -> Locator:
    return page.locator("main .cart-lines > li").filter(
        has=page.get_by_role("link", name=name, exact=True)
    )


def place_the_order(page: Page) -> str:
    """From the cart: 去结算, then 提交订单; returns the order number the order page shows."""
    page.locator("main").get_by_role("link", name="去结算", exact=True).click()
    expect(heading(page)).to_have_text("去结算")
    page.locator("main").get_by_role("button", name="提交订单", exact=True).click()
    expect(heading(page)).to_have_text(re.compile(r"^订单 \S+$"))
    number = heading(page).inner_text().removeprefix("订单").strip()
    expect(alert(page)).to_have_text(f"订单 {number} 已提交。")
    return number


def order_badges(page: Page) -> Locator:
    # The two state badges beside the order number.
    return page.locator("main h1 + div .badge")


def assert_no_sideways_scrolling(page: Page, width: int) -> None:
    scroll_width = page.evaluate("document.documentElement.scrollWidth")
    assert scroll_width <= width, f"{page.url} is {scroll_width}px wide on a {width}px screen"


def test_staff_buys_two_products_and_the_counter_prepares_takes_payment_and_hands_over(
    page, new_page, log_in_as
):
    log_in_as(page, "staff")
    empty_the_cart(page)
    add_to_cart(page, "dynr", DENGYING, 2)
    add_to_cart(page, "wyczy", RAPESEED_OIL, 1)

    page.goto("/cart")
    expect(heading(page)).to_have_text("购物车")
    beef, oil = cart_line(page, DENGYING), cart_line(page, RAPESEED_OIL)
    expect(page.locator("main .cart-lines > li")).to_have_count(2)
    expect(beef.get_by_role("textbox", name="数量")).to_have_value("2")
    expect(oil.get_by_role("textbox", name="数量")).to_have_value("1")
    # Each line shows its unit price ("¥49.80/盒 · 达州") and its amount.
    beef_unit = fen(beef.locator(".text-body-secondary").first.inner_text())
    oil_unit = fen(oil.locator(".text-body-secondary").first.inner_text())
    beef_amount = fen(beef.locator(".price").inner_text())
    oil_amount = fen(oil.locator(".price").inner_text())
    assert beef_amount == 2 * beef_unit
    assert oil_amount == oil_unit
    total = page.locator("main").get_by_text(re.compile(r"^合计")).locator(".price")
    assert fen(total.inner_text()) == beef_amount + oil_amount
    cart_total = total.inner_text()

    number = place_the_order(page)
    expect(order_badges(page)).to_have_text(["已下单", "未付款"])
    expect(page.locator("main tfoot .price")).to_have_text(cart_total)
    pickup = page.locator("main .pickup-code")
    expect(pickup.get_by_role("heading", name="取货码", exact=True)).to_be_visible()
    expect(pickup.locator(".display-5")).to_have_text(PICKUP_CODE)
    code = pickup.locator(".display-5").inner_text().strip()

    # The counter clerk, on a computer of their own, finds the order by its pickup code.
    clerk = new_page()
    log_in_as(clerk, "clerk")
    clerk.goto("/counter/")
    clerk.locator("#q").fill(code)
    clerk.locator("main").get_by_role("button", name="查找", exact=True).click()
    found = clerk.locator("main section").filter(
        has=clerk.get_by_role("heading", name="查找结果", exact=True)
    )
    card = found.locator("li").filter(has=clerk.get_by_role("link", name=number, exact=True))
    expect(card).to_contain_text(code)
    expect(card).to_contain_text(f"{DENGYING} × 2")
    expect(card).to_contain_text(f"{RAPESEED_OIL} × 1")
    expect(card).to_contain_text(cart_total)
    # Nothing can be handed over before it is prepared and paid for.
    expect(card.get_by_role("button", name="交付", exact=True)).to_have_count(0)

    card.get_by_role("button", name="备货完成", exact=True).click()
    expect(alert(clerk)).to_have_text(f"订单 {number} 已备好，可以取货。")
    expect(card.locator(".badge")).to_have_text(["待取货", "未付款"])
    expect(card.get_by_role("button", name="备货完成", exact=True)).to_have_count(0)
    expect(card.get_by_role("button", name="交付", exact=True)).to_have_count(0)

    card.get_by_role("button", name="已收款", exact=True).click()
    expect(alert(clerk)).to_have_text(f"订单 {number} 已收款。")
    expect(card.locator(".badge")).to_have_text(["待取货", "已付款"])
    expect(card.get_by_role("button", name="已收款", exact=True)).to_have_count(0)

    card.get_by_role("button", name="交付", exact=True).click()
    expect(alert(clerk)).to_have_text(f"订单 {number} 已交付。")
    # A handed-over order is no longer open: the search for its code finds nothing now.
    expect(found).to_contain_text("没有找到该订单号或取货码对应的未完成订单。")
    expect(clerk.locator("main").get_by_role("link", name=number, exact=True)).to_have_count(0)

    # The staff member looks at the order again.
    page.reload()
    expect(heading(page)).to_have_text(f"订单 {number}")
    expect(order_badges(page)).to_have_text(["已取货", "已付款"])
    expect(page.locator("main ol.timeline li")).to_have_text(
        [re.compile(f"{label}$") for label in ("已下单", "待取货", "已付款", "已取货")]
    )
    expect(page.locator("main .pickup-code")).to_have_count(0)
    expect(page.locator("main").get_by_role("button", name="取消订单")).to_have_count(0)


@pytest.mark.parametrize("name", ["大竹香椿", "舟山晚稻杨梅"], ids=["toona", "bayberry"])
def test_a_sold_out_product_shows_sold_out_and_cannot_be_added_to_the_cart(page, log_in_as, name):
    log_in_as(page, "staff")
    page.goto(f"/products?q={quote(name)}")
    page.locator("main").get_by_role("link", name=name, exact=True).click()
    expect(heading(page)).to_have_text(name)

    expect(page.locator("main").get_by_text("已售罄", exact=True)).to_be_visible()
    buy_box = page.locator("main form.buy-box")
    expect(buy_box.get_by_role("button", name="加入购物车", exact=True)).to_be_disabled()
    expect(buy_box.locator("#quantity")).to_be_disabled()


def test_on_a_phone_the_cart_and_the_order_page_fit_the_screen_without_sideways_scrolling(
    new_page, log_in_as, screenshot
):
    page = new_page(width=PHONE)
    log_in_as(page, "staff")
    empty_the_cart(page)
    add_to_cart(page, "dynr", DENGYING, 2)
    add_to_cart(page, "wyczy", RAPESEED_OIL, 1)

    page.goto("/cart")
    expect(cart_line(page, DENGYING)).to_be_visible()
    expect(cart_line(page, RAPESEED_OIL)).to_be_visible()
    checkout = page.locator("main").get_by_role("link", name="去结算", exact=True)
    expect(checkout).to_be_visible()
    assert_no_sideways_scrolling(page, PHONE)
    screenshot(page, f"cart-{PHONE}")

    place_the_order(page)
    expect(page.locator("main .pickup-code .display-5")).to_have_text(PICKUP_CODE)
    expect(page.locator("main .pickup-code .display-5")).to_be_in_viewport()
    assert_no_sideways_scrolling(page, PHONE)
    screenshot(page, f"order-{PHONE}")


def test_staff_pays_online_on_stripe_and_comes_back_to_a_paid_order(
    page, new_page, log_in_as, stripe_standin
):
    log_in_as(page, "staff")
    empty_the_cart(page)
    add_to_cart(page, "wyczy", RAPESEED_OIL, 1)
    page.goto("/cart")
    total = page.locator("main").get_by_text(re.compile(r"^合计")).locator(".price").inner_text()

    page.locator("main").get_by_role("link", name="去结算", exact=True).click()
    page.get_by_label("线上支付（银行卡、支付宝、微信支付）").check()
    page.locator("main").get_by_role("button", name="提交订单", exact=True).click()

    # Stripe's hosted page (the stand-in's) asks for exactly the order's total.
    expect(page).to_have_url(re.compile(re.escape(stripe_standin.base_url) + r"/pay/cs_"))
    expect(page.locator("h1")).to_have_text(total)
    page.get_by_role("button", name="Pay 支付").click()

    # Back on the shop: the return page has asked Stripe and shows the order paid.
    expect(heading(page)).to_have_text(re.compile(r"^订单 \S+$"))
    number = heading(page).inner_text().removeprefix("订单").strip()
    expect(alert(page).filter(has_text="已收到付款")).to_be_visible()
    expect(order_badges(page)).to_have_text(["已下单", "已付款"])
    expect(page.locator("main .pickup-code .display-5")).to_have_text(PICKUP_CODE)

    # Stripe's webhook follows a second later and changes nothing more: one "paid" on the
    # timeline. The clerk sees the order to prepare, paid, with no payment to take.
    clerk = new_page()
    log_in_as(clerk, "clerk")
    clerk.goto("/counter/")
    card = clerk.locator("main li").filter(has=clerk.get_by_role("link", name=number, exact=True))
    expect(card.locator(".badge")).to_have_text(["已下单", "已付款"])
    expect(card.get_by_role("button", name="已收款", exact=True)).to_have_count(0)
    page.wait_for_timeout(1500)
    page.reload()
    expect(page.locator("main ol.timeline li").filter(has_text="已付款")).to_have_count(1)
