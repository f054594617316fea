"""A new product's whole way in a real browser, the issue's "done means": with the demo data, a
Dazhou supplier adds a product with photos, the coordinator approves it, a staff member finds
it by its pinyin initials and buys it, and the counter prints its shelf label.

Each person has a browser of their own. The live server and its database are shared with the
other browser tests of the session, so the product has a name and code no demo product and no
other test uses, and the staff cart is emptied before it is used.

Screenshots of the staff member's product page and of the label sheet are kept in the test's
temporary directory, whose path the test prints.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from PIL import Image
from playwright.sync_api import Locator, Page, expect

pytestmark = pytest.mark.browser

#: Not in the demo catalog; its initials "bsfxlc" are no other product's (万源富硒绿茶 is wyfxlc).
NAME = "巴山富硒绿茶"
NAME_EN = "Bashan Selenium Green Tea"
INITIALS = "bsfxlc"
CODE = "DZ-TEA-JOURNEY"
PRICE = "¥68.00"
UNIT = "盒"
SUPPLIER = "达州灯影坊食品有限公司"
PHOTO_SRC = re.compile(r"^/photos/[0-9a-f]{32}-\w+\.jpg$")
EDIT_URL = re.compile(r"/supplier/products/(\d+)/edit$")
REVIEW_URL = re.compile(r"/review/\d+$")


# --- helpers -----------------------------------------------------------------------------------


def heading(page: Page) -> Locator:
    return page.locator("main h1")


def alert(page: Page) -> Locator:
    return page.locator("main .alert")


def navbar(page: Page) -> Locator:
    return page.locator("nav.navbar")


def make_jpeg(path: Path, colour: tuple[int, int, int]) -> Path:
    """A real photo file, as a phone would send it (the server decodes and re-encodes it)."""
    image = Image.new("RGB", (800, 600), colour)
    # A lighter band, so that the picture is not one flat colour.
    image.paste((230, 240, 200), (0, 380, 800, 460))
    image.save(path, "JPEG", quality=90)
    return path


def add_the_product(page: Page) -> int:
    """Supplier: Products -> New product, fill the form, save and send for review; the id."""
    page.locator("main .nav-tabs").get_by_role("link", name="商品", exact=True).click()
    page.locator("main").get_by_role("link", name="新增商品").first.click()
    expect(heading(page)).to_have_text("新增商品")
    form = page.locator("main form.listing-form")
    form.get_by_label("商品编码").fill(CODE)
    form.get_by_label("名称（中文）").fill(NAME)
    form.get_by_label("名称（英文）").fill(NAME_EN)
    form.get_by_label("品类").select_option(label="茶叶饮品")
    # Most products come from where the supplier is: the origin is already Dazhou.
    expect(form.get_by_label("产地").locator("option:checked")).to_have_text("达州")
    form.get_by_label("单位", exact=True).select_option(label=UNIT)
    form.get_by_label("零售价（元）").fill(PRICE.removeprefix("¥"))
    form.get_by_label("净含量", exact=True).fill("250")
    form.get_by_label("净含量单位").select_option(label="克")
    form.get_by_label("商品描述（中文）").fill("大巴山深处的富硒茶园，明前采摘。")
    # Canteen terms: cases of 20 boxes, cheaper from 100.
    form.get_by_label("每箱数量").fill("20")
    form.locator("[name=tiers-0-min_quantity]").fill("20")
    form.locator("[name=tiers-0-price]").fill("62")
    form.locator("[name=tiers-1-min_quantity]").fill("100")
    form.locator("[name=tiers-1-price]").fill("58")
    form.get_by_label("备货天数").fill("3")
    form.get_by_role("button", name="保存并提交审核", exact=True).click()

    expect(page).to_have_url(EDIT_URL)
    expect(alert(page).first).to_have_text("已保存。协调员将进行审核，您可以先添加照片。")
    expect(heading(page)).to_contain_text(NAME)
    expect(heading(page).locator(".badge")).to_have_text("待审核")
    pending = page.locator("main .alert-info")
    expect(pending).to_contain_text("您最新提交的版本正在等待协调员审核。")
    expect(pending).to_contain_text("审核通过后买家即可看到该商品。")
    return int(EDIT_URL.search(page.url).group(1))


def upload_photos(page: Page, product_id: int, files: list[Path]) -> str:
    """Supplier, on the edit page: Photos, choose the files, upload; the main photo's src."""
    page.locator("main").get_by_role("link", name=re.compile(r"^照片")).click()
    expect(page).to_have_url(re.compile(rf"/supplier/products/{product_id}/photos$"))
    expect(page.locator("#no-photos")).to_be_visible()
    page.locator("main input[type=file][name=photos]").set_input_files(files)
    page.locator("main").get_by_role("button", name="上传", exact=True).click()

    expect(alert(page).first).to_have_text(f"已添加 {len(files)} 张照片。")
    photos = page.locator("#photos > li")
    expect(photos).to_have_count(len(files))
    main_photo = photos.first
    expect(main_photo.locator(".badge")).to_have_text("主图")
    thumbnail = main_photo.locator("img")
    expect(thumbnail).to_have_attribute("src", PHOTO_SRC)
    # Served and decodable: the browser has drawn it at its real size.
    expect(thumbnail).to_have_js_property("complete", True)
    assert thumbnail.evaluate("img => img.naturalWidth") > 0
    return thumbnail.get_attribute("src")


def stock_up(page: Page, product_id: int, quantity: int) -> None:
    """Supplier: a new product has no stock; record what came in, on the product's row."""
    page.locator("main .nav-tabs").get_by_role("link", name="库存", exact=True).click()
    row = page.locator(f"#product-{product_id}")
    expect(row).to_contain_text(NAME)
    expect(row.locator("[data-stock]")).to_have_text("0")
    row.get_by_label("数量").fill(f"+{quantity}")
    row.get_by_label("原因").fill("首批到货")
    row.get_by_role("button", name="保存", exact=True).click()
    expect(alert(page).first).to_have_text(
        f"“{NAME}”库存变动 +{quantity}，现为 {quantity} {UNIT}。"
    )
    expect(page.locator(f"#product-{product_id} [data-stock]")).to_have_text(str(quantity))


def approve(page: Page) -> None:
    """Coordinator: Work -> Listings to review -> the product's version -> Approve."""
    navbar(page).get_by_role("button", name="工作台", exact=True).click()
    navbar(page).get_by_role("link", name="待审核商品", exact=True).click()
    expect(heading(page)).to_have_text("待审核商品")
    row = page.locator("main table tbody tr").filter(has_text=CODE)
    expect(row).to_contain_text(SUPPLIER)
    row.get_by_role("link", name=NAME, exact=True).click()

    expect(page).to_have_url(REVIEW_URL)
    # The coordinator sees the photos the supplier added.
    expect(page.locator("main img.review-thumb")).to_have_count(2)
    page.locator("main").get_by_role("button", name="批准", exact=True).click()

    expect(page).to_have_url(re.compile(r"/review/$"))
    expect(alert(page).first).to_have_text("已通过审核；买家现在看到此版本，已通知供应商。")
    expect(page.locator("main").get_by_role("link", name=NAME, exact=True)).to_have_count(0)


def empty_the_cart(page: Page) -> None:
    """Remove whatever an earlier test left in the shared staff account's cart."""
    page.goto("/cart")
    remove = page.locator("main").get_by_role("button", name="移除", exact=True)
    for left in range(remove.count(), 0, -1):
        remove.first.click()
        expect(remove).to_have_count(left - 1)
    expect(page.locator("main")).to_contain_text("购物车是空的。")


def search_from_the_navbar(page: Page, query: str) -> None:
    # The box offers suggestions as one types (a combobox); Enter with none highlighted
    # submits the form: a full search.
    box = navbar(page).get_by_role("search").get_by_role("combobox", name="搜索商品")
    box.fill(query)
    box.press("Enter")
    expect(heading(page)).to_have_text(f"“{query}”的搜索结果")


def buy(page: Page, quantity: int) -> str:
    """Staff, on the product page: add to the cart, check out paying at the counter; the
    order number the order page shows."""
    buy_box = page.locator("main form.buy-box")
    buy_box.locator("#quantity").fill(str(quantity))
    buy_box.get_by_role("button", name="加入购物车", exact=True).click()
    expect(alert(page)).to_have_text("已加入购物车。")

    page.goto("/cart")
    expect(page.locator("main .cart-lines > li")).to_have_count(1)
    expect(page.locator("main .cart-lines > li")).to_contain_text(NAME)
    page.locator("main").get_by_role("link", name="去结算", exact=True).click()
    expect(heading(page)).to_have_text("去结算")
    page.locator("main").get_by_label("到专柜付款").check()
    page.locator("main").get_by_role("button", name="提交订单", exact=True).click()

    expect(heading(page)).to_have_text(re.compile(r"^订单 \S+$"))
    number = heading(page).inner_text().removeprefix("订单").strip()
    expect(alert(page)).to_have_text(f"订单 {number} 已提交。")
    return number


def make_the_label_sheet(page: Page, product_id: int) -> Locator:
    """Clerk: Counter -> Shelf labels, filter by the initials, tick the product, make the
    sheet; the sheet's labels."""
    page.goto("/counter/")
    page.locator("main").get_by_role("link", name="货架标签", exact=True).click()
    expect(page).to_have_url(re.compile(r"/counter/labels$"))
    page.locator("#labels-form #q").fill(INITIALS)
    page.locator("#labels-filter").click()
    item = page.locator(f'#labels-products > li[data-product-id="{product_id}"]')
    # The initials find this product and nothing else.
    expect(page.locator("#labels-products > li")).to_have_count(1)
    expect(item).to_contain_text(NAME)
    expect(item).to_contain_text(PRICE)
    item.get_by_role("checkbox").check()
    page.locator("#labels-make").click()
    expect(page).to_have_url(re.compile(rf"/counter/labels/sheet\?p={product_id}$"))
    return page.locator(".shelf-label")


# --- the journey -------------------------------------------------------------------------------


def test_a_dazhou_supplier_lists_a_product_that_is_approved_bought_and_labelled(
    new_page, log_in_as, tmp_path
):
    # The supplier adds the product, two photos and its first stock.
    supplier = new_page()
    log_in_as(supplier, "supplier")
    expect(supplier).to_have_url(re.compile(r"/supplier/$"))
    product_id = add_the_product(supplier)
    main_photo = upload_photos(
        supplier,
        product_id,
        [
            make_jpeg(tmp_path / "tea-garden.jpg", (74, 128, 62)),
            make_jpeg(tmp_path / "tea-box.jpg", (160, 52, 40)),
        ],
    )
    photo_key = main_photo.removeprefix("/photos/").split("-")[0]
    stock_up(supplier, product_id, 20)

    # Before approval, staff can neither open the product nor find it.
    staff = new_page()
    log_in_as(staff, "staff")
    response = staff.goto(f"/products/{product_id}")
    assert response is not None and response.status == 404
    search_from_the_navbar(staff, INITIALS)
    expect(staff.locator(f'main a[href="/products/{product_id}"]')).to_have_count(0)

    # The coordinator approves it.
    coordinator = new_page()
    log_in_as(coordinator, "coordinator")
    approve(coordinator)
    supplier.goto(f"/supplier/products/{product_id}/edit")
    expect(heading(supplier).locator(".badge")).to_have_text("在售")

    # A staff member finds it first by its pinyin initials (the same search as before: the
    # approval must not leave the cached result page behind), with its photo, and buys two.
    empty_the_cart(staff)
    search_from_the_navbar(staff, INITIALS)
    first = staff.locator("main article.product-card").first
    expect(first.locator(".pc-name")).to_have_text(NAME)
    expect(first).to_contain_text(PRICE)
    first.get_by_role("link", name=NAME, exact=True).click()

    expect(staff).to_have_url(re.compile(rf"/products/{product_id}$"))
    expect(heading(staff)).to_have_text(NAME)
    photo = staff.locator("main img.product-photo")
    expect(photo).to_have_attribute("src", re.compile(rf"^/photos/{photo_key}-large\.jpg$"))
    expect(photo).to_have_js_property("complete", True)
    assert photo.evaluate("img => img.naturalWidth") > 0
    expect(staff.locator("main .product-gallery img")).to_have_count(2)
    expect(staff.locator("main .price-block .price")).to_have_text(PRICE)
    expect(staff.locator("main").get_by_text("有货", exact=True)).to_be_visible()
    staff.screenshot(path=tmp_path / "product-page.png", full_page=True)
    number = buy(staff, 2)
    expect(staff.locator("main h1 + div .badge")).to_have_text(["已下单", "未付款"])
    expect(staff.locator("main table")).to_contain_text(NAME)
    expect(staff.locator("main tfoot .price")).to_have_text("¥136.00")
    expect(staff.locator("main .pickup-code .display-5")).to_have_text(re.compile(r"^\d{6}$"))

    # The order took its two boxes from the supplier's stock.
    supplier.goto("/supplier/stock")
    expect(supplier.locator(f"#product-{product_id} [data-stock]")).to_have_text("18")

    # The counter clerk sees the order and prints the product's shelf label.
    clerk = new_page()
    log_in_as(clerk, "clerk")
    clerk.goto("/counter/")
    expect(clerk.locator("main").get_by_role("link", name=number, exact=True)).to_be_visible()
    labels = make_the_label_sheet(clerk, product_id)
    expect(labels).to_have_count(1)
    label = labels.first
    expect(label).to_have_attribute("data-product-id", str(product_id))
    expect(label.locator(".sl-name")).to_have_text(NAME)
    expect(label.locator(".sl-price")).to_have_text(f"{PRICE} / {UNIT}")
    expect(label.locator(".sl-supplier")).to_contain_text(SUPPLIER)
    expect(label.locator(".sl-code")).to_have_text(CODE)
    qr = label.locator("svg.qr")
    expect(qr).to_have_count(1)
    expect(qr).to_have_attribute("aria-label", re.compile(rf"/products/{product_id}$"))
    clerk.screenshot(path=tmp_path / "label-sheet.png", full_page=True)
    print(f"\nscreenshots: {tmp_path}/product-page.png, {tmp_path}/label-sheet.png")
