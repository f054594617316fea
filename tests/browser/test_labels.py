"""The counter's shelf labels in a real browser: the clerk ticks products on the chooser, the
sheet shows one label per copy with its QR code, and printed on A4 the labels stay on the
page, side by side without overlapping, as many pages as the 3 x 7 grid implies.

Screenshots (the sheet as printed, the chooser on a phone) are kept in the test's temporary
directory, whose path the test prints.
"""

from __future__ import annotations

import io
import math
import re
from itertools import combinations

import pytest
from playwright.sync_api import Page, expect
from pypdf import PdfReader

pytestmark = pytest.mark.browser

PER_PAGE = 21
#: CSS pixels in a millimetre.
MM = 96 / 25.4
#: What fits across an A4 page inside the sheet's @page margins (7 mm and 7.25 mm).
PRINTABLE_WIDTH = (210 - 7 - 7.25) * MM
PRINTABLE_HEIGHT = (297 - 15.15 - 13) * MM


def pick(page: Page, row: int, copies: int = 1) -> int:
    """Tick the chooser's row'th product with `copies`; returns its id."""
    item = page.locator("#labels-products > li").nth(row)
    product_id = int(item.get_attribute("data-product-id"))
    item.locator("input[type=checkbox]").check()
    item.locator("input[type=number]").fill(str(copies))
    return product_id


def boxes(page: Page) -> list[dict]:
    return [label.bounding_box() for label in page.locator(".shelf-label").all()]


def overlap(a: dict, b: dict) -> bool:
    return (
        a["x"] + a["width"] > b["x"] + 0.5
        and b["x"] + b["width"] > a["x"] + 0.5
        and a["y"] + a["height"] > b["y"] + 0.5
        and b["y"] + b["height"] > a["y"] + 0.5
    )


def pdf_pages(page: Page) -> int:
    return len(PdfReader(io.BytesIO(page.pdf(format="A4"))).pages)


def test_the_counter_prints_its_shelf_labels(new_page, log_in_as, tmp_path):
    page = new_page()
    log_in_as(page, "clerk")
    page.goto("/counter/")
    page.locator('main a[href="/counter/labels"]').click()
    expect(page).to_have_url(re.compile(r"/counter/labels$"))

    first = pick(page, 0)
    second = pick(page, 1, copies=3)
    page.locator("#labels-make").click()
    # A short address, to bookmark and print again.
    expect(page).to_have_url(re.compile(rf"/counter/labels/sheet\?p={first}&p={second}:3$"))

    labels = page.locator(".shelf-label")
    expect(labels).to_have_count(4)
    ids = [int(label.get_attribute("data-product-id")) for label in labels.all()]
    assert ids == [first, second, second, second]
    for label in labels.all():
        qr = label.locator("svg.qr")
        expect(qr).to_have_count(1)
        assert qr.get_attribute("aria-label").endswith(
            f"/products/{label.get_attribute('data-product-id')}"
        )
        # Inside its label, and big enough for a phone to read (at least 18 mm across).
        outer, inner = label.bounding_box(), qr.bounding_box()
        assert inner["width"] >= 18 * MM
        assert (
            outer["x"] <= inner["x"] and inner["x"] + inner["width"] <= outer["x"] + outer["width"]
        )
        assert (
            outer["y"] <= inner["y"]
            and inner["y"] + inner["height"] <= outer["y"] + outer["height"]
        )
    # Nothing of a label's text is cut off at its edge.
    clipped = page.evaluate(
        "[...document.querySelectorAll('.shelf-label')]"
        ".filter(l => l.scrollHeight > l.clientHeight + 1 || l.scrollWidth > l.clientWidth + 1)"
        ".length"
    )
    assert clipped == 0

    page.emulate_media(media="print")
    expect(page.locator("#labels-print")).to_be_hidden()
    expect(page.locator("nav.navbar")).to_be_hidden()
    expect(page.locator("footer")).to_be_hidden()
    placed = boxes(page)
    for a, b in combinations(placed, 2):
        assert not overlap(a, b), (a, b)
    left = min(box["x"] for box in placed)
    right = max(box["x"] + box["width"] for box in placed)
    assert right - left <= PRINTABLE_WIDTH
    for box in placed:
        assert box["width"] == pytest.approx(63.5 * MM, abs=1)
        assert box["height"] == pytest.approx(38.1 * MM, abs=1)
    sheet_png = tmp_path / "label-sheet-print.png"
    page.screenshot(path=sheet_png, full_page=True)
    assert pdf_pages(page) == 1
    print(f"\nlabel sheet (print): {sheet_png}")


def test_a_long_sheet_prints_on_as_many_a4_pages_as_its_grid_needs(new_page, log_in_as, tmp_path):
    page = new_page()
    log_in_as(page, "clerk")
    page.goto("/counter/labels")
    ids = [
        int(item.get_attribute("data-product-id"))
        for item in page.locator("#labels-products > li").all()[:3]
    ]
    # 30 + 30 + 4 = 64 labels: three full pages of 21 and one label on a fourth.
    page.goto(f"/counter/labels/sheet?p={ids[0]}:30&p={ids[1]}:30&p={ids[2]}:4")
    expect(page.locator(".shelf-label")).to_have_count(64)
    expect(page.locator("#labels-count")).to_have_attribute("data-pages", "4")
    page.emulate_media(media="print")
    placed = boxes(page)
    # Page by page (each .label-page starts a new sheet of paper), the grid stays within A4.
    for sheet in page.locator(".label-page").all():
        inside = [label.bounding_box() for label in sheet.locator(".shelf-label").all()]
        top = min(box["y"] for box in inside)
        bottom = max(box["y"] + box["height"] for box in inside)
        assert bottom - top <= PRINTABLE_HEIGHT
    for a, b in combinations(placed, 2):
        assert not overlap(a, b)
    assert pdf_pages(page) == math.ceil(64 / PER_PAGE)


def test_the_chooser_fits_a_phone(new_page, log_in_as, tmp_path):
    width = 390
    page = new_page(width=width, height=844)
    log_in_as(page, "clerk")
    page.goto("/counter/labels")
    expect(page.locator("#labels-products > li").first).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= width + 1
    # The copies box sits on the row it belongs to, beside the product's name.
    row = page.locator("#labels-products > li").first
    box, copies = row.bounding_box(), row.locator("input[type=number]").bounding_box()
    assert box["x"] + box["width"] >= copies["x"] + copies["width"]
    chooser_png = tmp_path / "label-chooser-390.png"
    page.screenshot(path=chooser_png, full_page=True)
    print(f"\nlabel chooser (390 px): {chooser_png}")
