"""Shelf labels through the web: the chooser, the sheet's URL, who may print, bad requests."""

from __future__ import annotations

import re
from html import unescape
from urllib.parse import parse_qs, urlsplit

import pytest

from app.models import ProductStatus, RegionKind, Role, Unit
from tests.conftest import page_text


@pytest.fixture
def english(client):
    client.set_cookie("lang", "en")


@pytest.fixture
def clerk(make, actions):
    return actions.login_as(make.user(roles={Role.COUNTER_CLERK}))


def sheet_args(response) -> list[str]:
    location = urlsplit(response.headers["Location"])
    assert location.path == "/counter/labels/sheet"
    return parse_qs(location.query)["p"]


def labels_on(response) -> list[int]:
    html = response.get_data(as_text=True)
    return [
        int(n) for n in re.findall(r'<article class="shelf-label" data-product-id="(\d+)"', html)
    ]


def pages_of(response) -> list[int]:
    """How many labels each printed page of the sheet holds."""
    html = response.get_data(as_text=True)
    pages = html.split('<section class="label-page"')[1:]
    return [page.count('<article class="shelf-label"') for page in pages]


def listed(response) -> list[int]:
    html = response.get_data(as_text=True)
    return [
        int(n)
        for n in re.findall(r'<li class="list-group-item[^"]*" data-product-id="(\d+)"', html)
    ]


@pytest.mark.parametrize("role", [Role.COUNTER_CLERK, Role.COORDINATOR, Role.ADMIN])
def test_the_counter_staff_choose_and_print_labels(client, make, actions, role):
    product = make.product(name_zh="百里坡黑鸡蛋")
    actions.login_as(make.user(roles={role}))
    chooser = client.get("/counter/labels")
    assert chooser.status_code == 200
    assert product.id in listed(chooser)
    sheet = client.get(f"/counter/labels/sheet?p={product.id}")
    assert sheet.status_code == 200
    assert labels_on(sheet) == [product.id]


@pytest.mark.parametrize("role", [Role.STAFF, Role.SUPPLIER, Role.CANTEEN_BUYER])
def test_other_roles_may_not(client, make, actions, role):
    product = make.product()
    actions.login_as(make.user(roles={role}))
    assert client.get("/counter/labels").status_code == 403
    assert client.get(f"/counter/labels/sheet?p={product.id}").status_code == 403


def test_anonymous_users_are_sent_to_log_in_and_back_to_the_sheet(client, make):
    product = make.product()
    url = f"/counter/labels/sheet?p={product.id}%3A3"
    response = client.get(url)
    assert response.status_code == 302
    location = urlsplit(response.headers["Location"])
    assert location.path == "/auth/login"
    assert parse_qs(location.query)["next"] == [f"/counter/labels/sheet?p={product.id}:3"]


def test_the_counter_page_links_to_the_chooser(client, clerk):
    assert 'href="/counter/labels"' in client.get("/counter/").get_data(as_text=True)


def test_the_chooser_lists_only_products_on_sale(client, clerk, make):
    on_sale = make.product()
    draft = make.product(status=ProductStatus.DRAFT)
    of_closed_supplier = make.product(supplier=make.supplier(active=False))
    shown = listed(client.get("/counter/labels"))
    assert on_sale.id in shown
    assert draft.id not in shown and of_closed_supplier.id not in shown


def test_the_chooser_filters_by_origin_supplier_and_search(client, clerk, make):
    dazhou = make.region(code="dz-labels", kind=RegionKind.PAIRED)
    zhoushan = make.region(code="zs-labels", kind=RegionKind.LOCAL)
    bailipo = make.supplier(region=dazhou)
    eggs = make.product(supplier=bailipo, name_zh="百里坡黑鸡蛋")
    duck = make.product(supplier=make.supplier(region=dazhou), name_zh="巴蜀酱香鸭")
    fish = make.product(supplier=make.supplier(region=zhoushan), name_zh="舟山带鱼")
    assert set(listed(client.get("/counter/labels?region=dz-labels"))) == {eggs.id, duck.id}
    assert listed(client.get(f"/counter/labels?supplier={bailipo.id}")) == [eggs.id]
    assert listed(client.get("/counter/labels?q=blpo")) == [eggs.id]  # pinyin initials
    assert fish.id in listed(client.get("/counter/labels?q=带鱼&region=zs-labels"))


def test_an_unknown_filter_value_is_a_400_not_a_crash(client, clerk, english):
    response = client.get("/counter/labels?region=atlantis&page=-1")
    assert response.status_code == 400
    text = page_text(response)
    assert "Not a valid choice" in text
    assert "Page numbers start at 1" in text


def test_ticks_survive_paging_and_filtering(app, client, clerk, make, monkeypatch):
    monkeypatch.setitem(app.config, "ADMIN_ROWS_PER_PAGE", 2)
    newest_first = [make.product() for _ in range(3)]  # the builder makes each older
    # Page 2 sent from page 1's form, where the first product was ticked with 4 copies.
    first = newest_first[0].id
    response = client.get(f"/counter/labels?p={first}&copies-{first}=4&copies-99=junk&page=2")
    assert response.status_code == 200
    assert listed(response) == [newest_first[2].id]
    html = response.get_data(as_text=True)
    assert f'<input type="hidden" name="p" value="{first}:4">' in html
    assert 'id="labels-carried" data-products="1" data-labels="4"' in html
    # Under a filter that hides it, too.
    html = client.get(f"/counter/labels?q=nothing+like+it&p={first}:4").get_data(as_text=True)
    assert f'<input type="hidden" name="p" value="{first}:4">' in html
    # Back on page 1 the box is ticked and shows its copies.
    html = client.get(f"/counter/labels?p={first}:4").get_data(as_text=True)
    assert re.search(rf'value="{first}" id="pick-{first}" checked', html)
    assert re.search(rf'name="copies-{first}" id="copies-{first}" value="4"', html)


def test_the_chooser_form_leads_to_a_short_sheet_address_to_bookmark(client, clerk, make):
    eggs, oil, beef = make.product(), make.product(), make.product()
    response = client.get(
        "/counter/labels/sheet",
        query_string=[
            ("q", ""),
            ("region", ""),
            ("p", str(eggs.id)),
            (f"copies-{eggs.id}", "1"),
            ("p", str(oil.id)),
            (f"copies-{oil.id}", "3"),
            (f"copies-{beef.id}", "5"),  # not ticked: no labels
        ],
    )
    assert response.status_code == 302
    assert sheet_args(response) == [str(eggs.id), f"{oil.id}:3"]
    sheet = client.get(response.headers["Location"])
    assert sheet.status_code == 200
    assert labels_on(sheet) == [eggs.id, oil.id, oil.id, oil.id]
    # "Change the selection" goes back to the chooser with the same ticks.
    back = re.search(r'href="(/counter/labels\?[^"]*)"', sheet.get_data(as_text=True)).group(1)
    assert parse_qs(urlsplit(unescape(back)).query)["p"] == [str(eggs.id), f"{oil.id}:3"]


def test_the_sheet_shows_what_each_label_says(client, clerk, make, english):
    region = make.region(name_zh="达州")
    oil = make.product(
        supplier=make.supplier(region=region, name_zh="万源市巴山粮油加工有限公司"),
        code="DZ-0007",
        name_zh="万源菜籽油",
        name_en="Wanyuan Rapeseed Oil",
        county_zh="万源市",
        unit=Unit.KG,
        retail_price_fen=3000,
    )
    response = client.get(f"/counter/labels/sheet?p={oil.id}")
    html = response.get_data(as_text=True)
    label = html[html.index('<article class="shelf-label"') : html.index("</article>")]
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", label))
    for words in (
        "万源菜籽油",
        "Wanyuan Rapeseed Oil",
        "¥30.00 / kg",
        "¥15.00 / jin",
        "达州 · 万源市",
        "万源市巴山粮油加工有限公司",
        "DZ-0007",
    ):
        assert words in text
    # The QR code is drawn in the page, and leads to the shop's public address.
    assert re.search(
        rf'<svg class="qr" role="img" aria-label="http://shanhai.test/products/{oil.id}"', label
    )
    assert "@page" not in html and "css/labels.css" in html


def test_labels_are_laid_out_twenty_one_to_a_page(client, clerk, make):
    a, b = make.product(), make.product()
    response = client.get(f"/counter/labels/sheet?p={a.id}:20&p={b.id}:5")
    assert pages_of(response) == [21, 4]
    assert 'data-labels="25" data-pages="2"' in response.get_data(as_text=True)
    assert pages_of(client.get(f"/counter/labels/sheet?p={a.id}:21")) == [21]


def test_a_sheet_with_nothing_chosen_goes_back_to_the_chooser_with_a_message(
    client, clerk, english
):
    response = client.get("/counter/labels/sheet?q=beef", follow_redirects=True)
    assert response.request.path == "/counter/labels"
    assert "Tick at least one product" in page_text(response)


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("p=abc", "“abc” is not a product number."),
        ("p=12:0", "from 1 to 30 (product 12: “0”)"),
        ("p=12:999", "from 1 to 30 (product 12: “999”)"),
        ("p=12&copies-12=many", "from 1 to 30 (product 12: “many”)"),
        ("p=" + "9" * 5000, "is not a product number"),
        (
            "&".join(["p=1:30"] * 11),
            "At most 300 labels can be printed at a time; 330 were asked for.",
        ),
        ("&".join(["p=1"] * 1000), "1000 were asked for"),
    ],
)
def test_a_sheet_address_that_cannot_be_read_is_a_400_on_the_chooser(
    client, clerk, english, query, message
):
    response = client.get(f"/counter/labels/sheet?{query}")
    assert response.status_code == 400
    assert message in page_text(response)
    assert 'id="labels-form"' in response.get_data(as_text=True)  # the chooser, to start again


def test_products_no_longer_on_sale_are_left_out_with_a_warning(client, clerk, make, english):
    on_sale = make.product()
    archived = make.product(status=ProductStatus.ARCHIVED)
    response = client.get(f"/counter/labels/sheet?p={archived.id}&p={on_sale.id}:2")
    assert response.status_code == 200
    assert labels_on(response) == [on_sale.id, on_sale.id]
    assert f"not on sale: product numbers {archived.id}." in page_text(response)


def test_a_sheet_of_only_products_not_on_sale_is_a_400(client, clerk, make, english):
    archived = make.product(status=ProductStatus.ARCHIVED)
    response = client.get(f"/counter/labels/sheet?p={archived.id}&p=987654")
    assert response.status_code == 400
    assert "None of the chosen products is on sale" in page_text(response)
