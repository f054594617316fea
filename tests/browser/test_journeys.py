"""What a user of 山海集 notices in a real browser: finding a product by its pinyin, logging in
with each demo role, the language switch, canteen bulk prices, and pages that fit a phone."""

from __future__ import annotations

import re
from urllib.parse import quote

import pytest
from playwright.sync_api import Locator, Page, expect

from app.services.demo import DEMO_ACCOUNTS, DEMO_EMAIL_DOMAIN

pytestmark = pytest.mark.browser

ROLES = [local for local, _name, _roles, _org in DEMO_ACCOUNTS]
PRICE = re.compile(r"¥\d[\d,]*\.\d{2}")
DENGYING = "灯影牛肉"
PHONE, DESKTOP = 390, 1280


def navbar(page: Page) -> Locator:
    return page.locator("nav.navbar")


def heading(page: Page) -> Locator:
    return page.locator("main h1")


def open_product(page: Page, name: str) -> None:
    """Search for the product by its name and open it from the results."""
    page.goto(f"/products?q={quote(name)}")
    page.locator("main").get_by_role("link", name=name, exact=True).click()
    expect(heading(page)).to_have_text(name)


def assert_no_sideways_scrolling(page: Page, width: int) -> None:
    scroll_width = page.evaluate("document.documentElement.scrollWidth")
    assert scroll_width <= width, f"{page.url} is {scroll_width}px wide on a {width}px screen"


def test_suggestions_appear_as_the_initials_are_typed_and_open_the_product(page):
    page.goto("/")
    box = page.locator("main").get_by_role("search").get_by_role("combobox")
    box.press_sequentially("dyn", delay=60)

    suggestions = page.locator("main").get_by_role("listbox")
    expect(suggestions).to_be_visible()
    expect(box).to_have_attribute("aria-expanded", "true")
    first = suggestions.get_by_role("option").first
    expect(first).to_contain_text(DENGYING)
    box.press("ArrowDown")
    expect(box).to_have_attribute("aria-activedescendant", re.compile(r"\S+"))
    box.press("Enter")

    expect(heading(page)).to_have_text(DENGYING)


def test_a_visitor_finds_dengying_beef_by_typing_its_pinyin_initials(page):
    page.goto("/")
    # The big search box on the home page, not the one in the navbar.
    search = page.locator("main").get_by_role("search")
    search.get_by_role("combobox").fill("dynr")
    search.get_by_role("button", name="搜索").click()

    expect(heading(page)).to_have_text("“dynr”的搜索结果")
    page.locator("main").get_by_role("link", name=DENGYING, exact=True).click()

    expect(heading(page)).to_have_text(DENGYING)
    expect(page.locator("main .price-block .price")).to_have_text(PRICE)
    expect(page.get_by_role("heading", name="产品溯源", exact=True)).to_be_visible()


@pytest.mark.parametrize("role", ROLES)
def test_every_demo_account_logs_in_sees_its_name_in_the_navbar_and_logs_out(page, log_in_as, role):
    name = log_in_as(page, role)

    expect(page.locator("main")).to_contain_text(f"{name}，欢迎您。")
    expect(navbar(page).get_by_role("link", name=name, exact=True)).to_be_visible()
    if role in ("admin", "coordinator"):
        # Stewards' pages are in one menu, so that the bar fits on one line.
        navbar(page).get_by_role("button", name="工作台", exact=True).click()
    admin_link = navbar(page).get_by_role("link", name="管理", exact=True)
    expect(admin_link).to_have_count(1 if role == "admin" else 0)

    navbar(page).get_by_role("button", name="退出", exact=True).click()
    expect(page.locator("main")).to_contain_text("您已退出登录。")
    expect(navbar(page).get_by_role("link", name="登录", exact=True)).to_be_visible()
    expect(navbar(page).get_by_role("link", name=name, exact=True)).to_have_count(0)


def test_the_admin_opens_the_account_list_from_the_navbar_and_finds_every_demo_account(
    page, log_in_as
):
    log_in_as(page, "admin")
    navbar(page).get_by_role("button", name="工作台", exact=True).click()
    navbar(page).get_by_role("link", name="管理", exact=True).click()

    expect(page).to_have_url(re.compile(r"/admin/users$"))
    expect(heading(page)).to_have_text("账号")
    rows = page.locator("main table tbody tr")
    for local, name, _roles, _org in DEMO_ACCOUNTS:
        expect(rows.filter(has_text=f"{local}@{DEMO_EMAIL_DOMAIN}")).to_contain_text(name)


def test_a_staff_member_opening_the_account_list_is_told_access_is_not_allowed(page, log_in_as):
    log_in_as(page, "staff")

    response = page.goto("/admin/users")

    assert response is not None and response.status == 403
    expect(heading(page)).to_have_text("无权访问")
    expect(page).to_have_title(re.compile(r"^无权访问"))
    expect(page.locator("main table")).to_have_count(0)


def test_a_wrong_password_is_reported_above_the_form_and_the_typed_email_is_kept(page):
    email = f"buyer@{DEMO_EMAIL_DOMAIN}"
    page.goto("/auth/login")
    form = page.locator("main form")
    form.locator("#email").fill(email)
    form.locator("#password").fill("not-the-password")
    form.locator("button[type=submit]").click()

    # The alert appears only on the answer to the post, so the field checks below see that page.
    expect(page.locator("main").get_by_role("alert")).to_have_text("邮箱或密码错误。")
    expect(form.locator("#email")).to_have_value(email)
    expect(form.locator("#password")).to_have_value("")
    expect(page.locator('nav form[action$="/auth/logout"]')).to_have_count(0)


def test_the_language_switch_shows_the_same_page_in_english_and_back_in_chinese(page):
    page.goto("/products?q=dynr")
    expect(heading(page)).to_have_text("“dynr”的搜索结果")

    navbar(page).get_by_role("link", name="English", exact=True).click()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(heading(page)).to_have_text("Results for “dynr”")
    expect(navbar(page).get_by_role("link", name="All products", exact=True)).to_be_visible()
    expect(page).to_have_url(re.compile(r"/products\?q=dynr$"))

    navbar(page).get_by_role("link", name="中文", exact=True).click()
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    expect(heading(page)).to_have_text("“dynr”的搜索结果")
    expect(navbar(page).get_by_role("link", name="全部商品", exact=True)).to_be_visible()


def test_a_canteen_buyer_sees_the_bulk_price_table_on_dengying_beef(page, log_in_as):
    log_in_as(page, "buyer")
    open_product(page, DENGYING)

    bulk = page.locator("main section").filter(
        has=page.get_by_role("heading", name="食堂批量采购价", exact=True)
    )
    expect(bulk).to_be_visible()
    expect(bulk.locator("tbody tr").first).to_contain_text(PRICE)


def test_an_anonymous_visitor_sees_no_bulk_prices_on_dengying_beef(page):
    open_product(page, DENGYING)

    # The traceability section comes after where the bulk table would be: the page is complete.
    expect(page.get_by_role("heading", name="产品溯源", exact=True)).to_be_visible()
    expect(page.get_by_role("heading", name="食堂批量采购价")).to_have_count(0)


@pytest.mark.parametrize("width", [PHONE, DESKTOP])
def test_home_search_results_and_product_page_fit_the_screen_without_sideways_scrolling(
    new_page, screenshot, width
):
    page = new_page(width=width)

    page.goto("/")
    expect(heading(page)).to_be_visible()
    assert_no_sideways_scrolling(page, width)
    screenshot(page, f"home-{width}")

    page.goto("/products?q=dynr")
    expect(heading(page)).to_have_text("“dynr”的搜索结果")
    assert_no_sideways_scrolling(page, width)
    screenshot(page, f"search-dynr-{width}")

    page.locator("main").get_by_role("link", name=DENGYING, exact=True).click()
    expect(heading(page)).to_have_text(DENGYING)
    assert_no_sideways_scrolling(page, width)
    screenshot(page, f"product-dengying-{width}")


def test_on_a_phone_the_menu_button_opens_the_navbar_search(new_page):
    page = new_page(width=PHONE)
    page.goto("/products")
    toggler = navbar(page).get_by_role("button", name="菜单")
    search = navbar(page).get_by_role("search")
    expect(toggler).to_be_visible()
    expect(search).to_be_hidden()

    toggler.click()
    box = search.get_by_role("combobox")
    expect(box).to_be_in_viewport()
    box.fill("dynr")
    search.get_by_role("button", name="搜索").click()

    expect(heading(page)).to_have_text("“dynr”的搜索结果")
    expect(page.locator("main").get_by_role("link", name=DENGYING, exact=True)).to_be_visible()
