"""Canteen bulk procurement in a real browser: the quick order sheet's running total, and one
order all the way from the sheet to a paid invoice, with the buyer, the canteen manager, the
supplier and the coordinator each in a browser of their own.

Elements are found by id, name and form action rather than by their wording, so a change of
translation does not break the journey; what is checked is figures: amounts, quantities and
order numbers. The
expected figures come from the live server's own database (tiers, frozen prices), read with a
plain SQLAlchemy session, and are computed with the app's one rounding rule (money.line_total).

Every page along the way is also kept at a phone and a desktop width in test-artifacts/
(canteen-*.png) to look at.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa
from playwright.sync_api import Locator, Page, expect
from sqlalchemy.orm import Session, joinedload, selectinload, sessionmaker

from app.models import (
    BulkOrder,
    BulkOrderLine,
    BulkOrderStatus,
    DeliveryStatus,
    Product,
    ProductStatus,
    SupplierDelivery,
    User,
)
from app.services.clock import local_date, utcnow
from app.services.demo import DEMO_EMAIL_DOMAIN
from app.services.money import format_yuan, line_total
from app.services.pricing import bulk_minimum, tier_price

pytestmark = pytest.mark.browser

APPROVAL_THRESHOLD_FEN = 500_000  # CANTEEN_APPROVAL_THRESHOLD_FEN of the testing config
VIEWPORTS = {"390": (390, 844), "1280": (1280, 900)}
ORDER_URL = re.compile(r"/canteen/orders/(\d+)$")
DELIVERY_URL = re.compile(r"/supplier/deliveries/(\d+)$")
INVOICE_URL = re.compile(r"/invoices/(\d+)$")
ORDER_NUMBER = re.compile(r"C\d{6}-\d{5}")


# --- the live server's database ----------------------------------------------------------------


def supplier_products(live_db: sessionmaker[Session]) -> list[Product]:
    """The bulk products of the supplier@ account's organization, by code, tiers loaded."""
    with live_db() as session:
        organization_id = session.scalar(
            sa.select(User.organization_id).where(User.email == f"supplier@{DEMO_EMAIL_DOMAIN}")
        )
        products = (
            session.scalars(
                sa.select(Product)
                .where(
                    Product.supplier_id == organization_id,
                    Product.status == ProductStatus.ACTIVE,
                    Product.case_size.is_not(None),
                )
                .options(selectinload(Product.price_tiers), joinedload(Product.supplier))
                .order_by(Product.code)
            )
            .unique()
            .all()
        )
    bulk = [p for p in products if p.price_tiers]
    assert bulk, "the supplier@ account's organization sells nothing in bulk"
    return bulk


def order_lines(live_db: sessionmaker[Session], order_id: int) -> list[BulkOrderLine]:
    with live_db() as session:
        return list(
            session.scalars(
                sa.select(BulkOrderLine)
                .where(BulkOrderLine.order_id == order_id)
                .order_by(BulkOrderLine.id)
            )
        )


def order_status(live_db: sessionmaker[Session], order_id: int) -> BulkOrderStatus:
    with live_db() as session:
        return session.scalar(sa.select(BulkOrder.status).where(BulkOrder.id == order_id))


def deliveries_of(live_db: sessionmaker[Session], order_id: int) -> list[SupplierDelivery]:
    with live_db() as session:
        return list(
            session.scalars(
                sa.select(SupplierDelivery).where(SupplierDelivery.order_id == order_id)
            )
        )


# --- figures -----------------------------------------------------------------------------------


def qty(value: Decimal) -> str:
    """A quantity as the pages write it: 98.500 -> 98.5, 100.000 -> 100."""
    text = f"{Decimal(value):f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def plain_yuan(fen: int) -> str:
    """What a person types into an amount box: 4314.30."""
    return f"{fen // 100}.{fen % 100:02d}"


def delivery_day() -> str:
    """Today + 7 in Zhoushan: beyond every demo supplier's lead time (3-4 days)."""
    return (local_date(utcnow()) + timedelta(days=7)).isoformat()


# --- pages -------------------------------------------------------------------------------------


def assert_no_sideways_scrolling(page: Page, width: int) -> None:
    scroll_width = page.evaluate("document.documentElement.scrollWidth")
    assert scroll_width <= width, f"{page.url} is {scroll_width}px wide on a {width}px screen"


@pytest.fixture
def keep(screenshot) -> Callable[..., list[Path]]:
    """`keep(page, "sheet", show=row)`: the whole page at a phone and a desktop width in
    test-artifacts/, and with `show` also the screen scrolled to it (the sheet scrolls inside
    its own box). Wide tables may scroll inside their box; the page must not scroll sideways."""

    def take(page: Page, name: str, show: Locator | None = None) -> list[Path]:
        original = page.viewport_size
        paths = []
        for label, (width, height) in VIEWPORTS.items():
            page.set_viewport_size({"width": width, "height": height})
            assert_no_sideways_scrolling(page, width)
            page.evaluate("scrollTo(0, 0)")
            paths.append(screenshot(page, f"canteen-{name}-{label}"))
            if show is not None:
                # What the screen shows with `show` scrolled to (a full-page picture of a
                # scrolled page would draw the sticky navbar and footer in mid-page).
                show.scroll_into_view_if_needed()
                path = paths[-1].with_name(f"canteen-{name}-view-{label}.png")
                page.screenshot(path=path)
                paths.append(path)
        if original:
            page.set_viewport_size(original)
        return paths

    return take


def sheet_row(page: Page, product_id: int) -> Locator:
    return page.locator("#order-sheet tbody tr").filter(has=page.locator(f"#qty-{product_id}"))


def order_id_of(page: Page) -> int:
    expect(page).to_have_url(ORDER_URL)
    return int(ORDER_URL.search(page.url).group(1))


def order_number_of(page: Page) -> str:
    match = ORDER_NUMBER.search(page.locator("main h1").inner_text())
    assert match, f"no order number in {page.locator('main h1').inner_text()!r}"
    return match.group()


def submit_button(form: Locator) -> Locator:
    return form.locator("button[type=submit]")


def fill_details_and_submit(page: Page, po_reference: str) -> None:
    """On a draft: the delivery date and PO reference, then "Save and submit"."""
    page.locator("#delivery_date").fill(delivery_day())
    page.locator("#po_reference").fill(po_reference)
    page.locator("button[name=then][value=submit]").click()


# --- (a) the quick order sheet -----------------------------------------------------------------


def test_the_sheet_prices_a_tier_threshold_flags_a_part_case_and_saves_a_draft_to_submit(
    page, log_in_as, live_db, keep
):
    products = supplier_products(live_db)
    # A quantity exactly at a higher tier's threshold (a whole number of cases, at least the
    # bulk minimum), so the price shown is that tier's and not the first one's.
    tiered = next(
        (p, tier)
        for p in products
        for tier in p.price_tiers[1:]
        if tier.min_quantity % p.case_size == 0 and tier.min_quantity >= bulk_minimum(p)
    )
    product, tier = tiered
    other = next(p for p in products if p.id != product.id)
    quantity = tier.min_quantity
    amount = line_total(tier.unit_price_fen, quantity)
    assert tier_price(product, quantity) == tier.unit_price_fen
    part_case = bulk_minimum(other) + other.case_size / 2
    fixed = bulk_minimum(other)
    other_amount = line_total(tier_price(other, fixed), fixed)

    log_in_as(page, "buyer")
    page.goto("/canteen/sheet")
    total = page.locator("#sheet-total")
    expect(total).to_have_text("¥0.00")

    row = sheet_row(page, product.id)
    row.locator(f"#qty-{product.id}").fill(qty(quantity))
    expect(row.locator("[data-role=price]")).to_have_text(format_yuan(tier.unit_price_fen))
    expect(row.locator("[data-role=amount]")).to_have_text(format_yuan(amount))
    expect(total).to_have_text(format_yuan(amount))
    expect(row).not_to_have_class(re.compile(r"\bsheet-warn\b"))

    # Half a case more than the minimum: flagged, no amount, and the total does not move.
    other_row = sheet_row(page, other.id)
    other_row.locator(f"#qty-{other.id}").fill(qty(part_case))
    expect(other_row).to_have_class(re.compile(r"\bsheet-warn\b"))
    expect(other_row.locator("[data-role=price]")).to_have_text(f"×{qty(other.case_size)}")
    expect(other_row.locator("[data-role=amount]")).to_have_text("—")
    expect(total).to_have_text(format_yuan(amount))
    keep(page, "sheet", show=other_row)

    other_row.locator(f"#qty-{other.id}").fill(qty(fixed))
    expect(other_row).not_to_have_class(re.compile(r"\bsheet-warn\b"))
    expect(other_row.locator("[data-role=amount]")).to_have_text(format_yuan(other_amount))
    expect(total).to_have_text(format_yuan(amount + other_amount))
    submit_button(page.locator("#order-sheet")).click()

    order_id = order_id_of(page)
    assert order_status(live_db, order_id) == BulkOrderStatus.DRAFT
    saved = {line.product_id: line.quantity for line in order_lines(live_db, order_id)}
    assert saved == {product.id: quantity, other.id: fixed}
    expect(page.locator(f"input[name=qty-{product.id}]")).to_have_value(qty(quantity))
    expect(page.locator(f"input[name=qty-{other.id}]")).to_have_value(qty(fixed))
    keep(page, "order-draft")

    fill_details_and_submit(page, po_reference="PO-SHEET-001")

    expect(page).to_have_url(re.compile(rf"/canteen/orders/{order_id}$"))
    expect(page.locator("#order-total")).to_have_text(format_yuan(amount + other_amount))
    status = (
        BulkOrderStatus.AWAITING_APPROVAL
        if amount + other_amount > APPROVAL_THRESHOLD_FEN
        else BulkOrderStatus.RELEASED
    )
    expect(page.locator("#order-status")).to_have_class(re.compile(rf"\bbulk-{status.value}\b"))
    expect(page.locator("main")).to_contain_text("PO-SHEET-001")
    expect(page.locator("main")).to_contain_text(delivery_day())
    assert order_status(live_db, order_id) == status
    frozen = {line.product_id: line.unit_price_fen for line in order_lines(live_db, order_id)}
    assert frozen == {product.id: tier.unit_price_fen, other.id: tier_price(other, fixed)}
    keep(page, "order-submitted")


# --- (b) from the sheet to a paid invoice --------------------------------------------------------


def large_weight_order(products: list[Product]) -> tuple[Product, Decimal, Decimal]:
    """A product sold by weight, the fewest whole cases that cost more than the approval
    threshold, and one case less (still at least the minimum) for the supplier to offer."""
    for product in products:
        if not product.unit.is_weight:
            continue
        quantity = bulk_minimum(product)
        while quantity <= 100_000:
            reduced = quantity - product.case_size
            price = tier_price(product, quantity)
            if (
                price is not None
                and line_total(price, quantity) > APPROVAL_THRESHOLD_FEN
                and reduced >= bulk_minimum(product)
            ):
                return product, quantity, reduced
            quantity += product.case_size
    raise AssertionError("the supplier@ organization sells nothing by weight in bulk")


def test_a_large_order_is_approved_reduced_shipped_received_invoiced_and_paid(
    page, new_page, log_in_as, live_db, keep
):
    product, ordered, offered = large_weight_order(supplier_products(live_db))
    received = offered - Decimal("1.5")  # weighed at the door: a little short
    note_number = f"DN-{local_date(utcnow()):%Y%m%d}-{product.id}"

    # The buyer: one line from the sheet, above the approval threshold, submitted.
    buyer = page
    log_in_as(buyer, "buyer")
    buyer.goto("/canteen/sheet")
    row = sheet_row(buyer, product.id)
    row.locator(f"#qty-{product.id}").fill(qty(ordered))
    price = tier_price(product, ordered)
    expect(buyer.locator("#sheet-total")).to_have_text(format_yuan(line_total(price, ordered)))
    submit_button(buyer.locator("#order-sheet")).click()
    order_id = order_id_of(buyer)
    order_number = order_number_of(buyer)
    fill_details_and_submit(buyer, po_reference="PO-JOURNEY-120")
    expect(buyer.locator("#order-status")).to_have_class(re.compile(r"\bbulk-awaiting_approval\b"))
    [line] = order_lines(live_db, order_id)
    assert (line.product_id, line.quantity, line.unit_price_fen) == (product.id, ordered, price)
    expect(buyer.locator("#order-total")).to_have_text(format_yuan(line_total(price, ordered)))
    # The buyer placed it, so the buyer sees no approve button (and is no manager anyway).
    expect(buyer.locator('form[action$="/approve"]')).to_have_count(0)
    keep(buyer, "order-awaiting-approval")

    # The canteen manager approves it.
    manager = new_page()
    log_in_as(manager, "manager")
    manager.goto(f"/canteen/orders/{order_id}")
    expect(manager.locator("main .alert-info")).to_contain_text(
        format_yuan(line_total(price, ordered))
    )
    submit_button(manager.locator('form[action$="/approve"]')).click()
    expect(manager.locator("#order-status")).to_have_class(re.compile(r"\bbulk-released\b"))
    [delivery] = deliveries_of(live_db, order_id)
    assert delivery.status == DeliveryStatus.NEW

    # The supplier finds the order among its deliveries and can deliver one case less.
    supplier = new_page()
    log_in_as(supplier, "supplier")
    supplier.goto("/supplier/deliveries")
    supplier.locator("main table").get_by_role("link", name=order_number, exact=True).click()
    expect(supplier).to_have_url(re.compile(rf"/supplier/deliveries/{delivery.id}$"))
    available = supplier.locator(f"input[name=available-{line.id}]")
    expect(available).to_have_value(qty(ordered))
    keep(supplier, "supplier-delivery-new")
    available.fill(qty(offered))
    supplier.locator("#note").fill("本周只能供应这么多")
    submit_button(supplier.locator('form[action$="/confirm"]')).click()
    expect(supplier.locator("#delivery-status")).to_have_class(
        re.compile(r"\bdelivery-changes_proposed\b")
    )
    expect(supplier.locator("#delivery-lines")).to_contain_text(qty(offered))

    # The buyer accepts the smaller quantity; the price stays the one frozen at submission.
    buyer.reload()
    accept = buyer.locator(f'form[action$="/lines/{line.id}/accept"]')
    expect(accept).to_contain_text(qty(offered))
    keep(buyer, "order-reduction-proposed")
    submit_button(accept).click()
    expect(accept).to_have_count(0)
    expect(buyer.locator("#order-total")).to_have_text(format_yuan(line_total(price, offered)))
    expect(buyer.locator("#order-lines tbody tr").first).to_contain_text(qty(offered))

    # The supplier ships with a delivery note number and opens the printable note.
    supplier.reload()
    expect(supplier.locator("#delivery-status")).to_have_class(
        re.compile(r"\bdelivery-confirmed\b")
    )
    supplier.locator("#delivery_note_number").fill(note_number)
    submit_button(supplier.locator('form[action$="/ship"]')).click()
    expect(supplier.locator("#delivery-status")).to_have_class(re.compile(r"\bdelivery-shipped\b"))
    keep(supplier, "supplier-delivery-shipped")
    supplier.locator(f'main a[href$="/supplier/deliveries/{delivery.id}/note"]').click()
    expect(supplier).to_have_url(re.compile(rf"/supplier/deliveries/{delivery.id}/note$"))
    note = supplier.locator("main article.print-sheet")
    expect(note).to_contain_text(note_number)
    expect(note).to_contain_text(order_number)
    expect(note.locator("tbody tr")).to_have_count(1)
    expect(note.locator("tbody tr td").nth(3)).to_have_text(qty(offered))
    keep(supplier, "delivery-note")

    # The manager checks the goods in: a little less than agreed, signed off -> the invoice.
    manager.goto(f"/canteen/orders/{order_id}")
    manager.locator(f'main a[href$="/canteen/deliveries/{delivery.id}/goods-in"]').click()
    received_box = manager.locator(f"#goods-in input[name=received-{line.id}]")
    expect(received_box).to_have_value(qty(offered))
    received_box.fill(qty(received))
    manager.locator(f"#goods-in input[name=note-{line.id}]").fill("过磅少1.5斤")
    keep(manager, "goods-in")
    submit_button(manager.locator("#goods-in")).click()
    expect(manager).to_have_url(INVOICE_URL)
    invoice_path = re.search(r"/invoices/\d+$", manager.url).group()
    billed = line_total(price, received)
    expect(manager.locator("#invoice-total")).to_have_text(format_yuan(billed))
    expect(manager.locator("#invoice-outstanding")).to_have_text(format_yuan(billed))
    invoice_row = manager.locator("#invoice-lines tbody tr")
    expect(invoice_row).to_have_count(1)
    # Product (with its code), unit, the agreed quantity, received, frozen unit price, amount.
    expect(invoice_row.locator("td").nth(0)).to_contain_text(product.code)
    expect(invoice_row.locator("td").nth(2)).to_have_text(qty(offered))
    expect(invoice_row.locator("td").nth(3)).to_have_text(qty(received))
    expect(invoice_row.locator("td").nth(4)).to_have_text(format_yuan(price))
    expect(invoice_row.locator("td").nth(5)).to_have_text(format_yuan(billed))
    expect(manager.locator("#invoice")).to_contain_text(note_number)
    expect(manager.locator("#payment-form")).to_have_count(0)  # the manager does not settle
    assert order_status(live_db, order_id) == BulkOrderStatus.COMPLETED

    # The coordinator records a partial bank transfer, then the rest.
    coordinator = new_page()
    log_in_as(coordinator, "coordinator")
    coordinator.goto(invoice_path)
    expect(coordinator.locator("#invoice-outstanding")).to_have_text(format_yuan(billed))
    keep(coordinator, "invoice-open")
    first = billed // 3
    today = local_date(utcnow()).isoformat()
    for reference, amount in [("BANK-0001", first), ("BANK-0002", billed - first)]:
        form = coordinator.locator("#payment-form")
        form.locator("#paid_on").fill(today)
        form.locator("#reference").fill(reference)
        form.locator("#amount").fill(plain_yuan(amount))
        submit_button(form).click()
        expect(coordinator.locator("#payments tbody tr").last).to_contain_text(reference)
    expect(coordinator.locator("#invoice-paid")).to_have_text(format_yuan(billed))
    expect(coordinator.locator("#invoice-outstanding")).to_have_text("¥0.00")
    expect(coordinator.locator("#payments tbody tr")).to_have_count(2)
    expect(coordinator.locator("#payment-form")).to_have_count(0)
    expect(coordinator.locator("#invoice-status")).to_have_class(re.compile(r"\binvoice-paid\b"))
    keep(coordinator, "invoice-paid")
