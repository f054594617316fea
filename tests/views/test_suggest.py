"""Suggestions as you type (GET /products/suggest), and what a search that finds nothing offers."""

import pytest

from app.models import ProductStatus, RegionKind
from tests.conftest import page_text


def suggest(client, q):
    response = client.get("/products/suggest", query_string={"q": q})
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    return response.get_json()


def test_a_suggestion_names_the_product_its_origin_and_supplier_and_links_to_it(client, make):
    dazhou = make.region(code="dazhou", name_zh="达州")
    shop = make.supplier(name_zh="达州灯影坊食品有限公司", region=dazhou)
    beef = make.product(name_zh="灯影牛肉", supplier=shop)
    data = suggest(client, "dynr")
    assert data == {
        "query": "dynr",
        "suggestions": [
            {
                "name": "灯影牛肉",
                "url": f"/products/{beef.id}",
                "origin": "达州",
                "supplier": "达州灯影坊食品有限公司",
            }
        ],
    }
    assert "灯影牛肉" in page_text(client.get(data["suggestions"][0]["url"]))


def test_suggestions_are_in_english_for_an_english_reader(client, make):
    shop = make.supplier(name_zh="灯影坊", name_en="Dengying Workshop")
    make.product(name_zh="灯影牛肉", name_en="Dengying Shredded Beef", supplier=shop, popularity=9)
    make.product(name_zh="灯影牛肉丝", name_en="")  # no English name: the Chinese one stands in
    client.set_cookie("lang", "en")
    found = suggest(client, "灯影")["suggestions"]
    assert [s["name"] for s in found] == ["Dengying Shredded Beef", "灯影牛肉丝"]
    assert found[0]["supplier"] == "Dengying Workshop"
    assert found[0]["origin"].startswith("Region ")


def test_at_most_eight_best_first(client, make):
    for n in range(12):
        make.product(name_zh=f"牛肉干{n}", popularity=n)
    make.product(name_zh="牛肉干", popularity=0)
    names = [s["name"] for s in suggest(client, "牛肉干")["suggestions"]]
    assert names == ["牛肉干", *(f"牛肉干{n}" for n in range(11, 4, -1))]


def test_products_not_on_sale_are_never_suggested(client, make):
    make.product(name_zh="牛肉干")
    for status in (ProductStatus.DRAFT, ProductStatus.PENDING_REVIEW, ProductStatus.ARCHIVED):
        make.product(name_zh=f"牛肉{status.value}", status=status)
    make.product(name_zh="牛肉酱", supplier=make.supplier(active=False))
    assert [s["name"] for s in suggest(client, "牛肉")["suggestions"]] == ["牛肉干"]


@pytest.mark.parametrize("q", ["", " ", "\t\n", "\u200b", "\x07"])
def test_nothing_typed_suggests_nothing(client, make, q):
    make.product(name_zh="牛肉干")
    assert suggest(client, q) == {"query": "", "suggestions": []}


def test_no_query_argument_at_all_suggests_nothing(client, make):
    make.product(name_zh="牛肉干")
    response = client.get("/products/suggest")
    assert response.status_code == 200
    assert response.get_json() == {"query": "", "suggestions": []}


@pytest.mark.parametrize(
    "q", ["%", "_", "'", '"', "' OR '1'='1", "<script>", "\\", "牛肉%", "ü€😀", "灯" * 500]
)
def test_junk_is_answered_not_a_crash(client, make, q):
    make.product(name_zh="灯影牛肉")
    data = suggest(client, q)
    assert len(data["query"]) <= 64
    assert data["suggestions"] == []


def test_an_overlong_query_is_cut_like_a_search(client, make):
    make.product(name_zh="灯影牛肉")
    assert suggest(client, "dynr" + "x" * 500)["query"] == "dynr" + "x" * 60


def test_bytes_that_are_not_utf8_are_answered(client, make):
    make.product(name_zh="灯影牛肉")
    response = client.get("/products/suggest?q=%ff%fe%E7%81")
    assert response.status_code == 200
    assert response.get_json()["suggestions"] == []


def test_a_nul_byte_is_refused_as_everywhere(client):
    assert client.get("/products/suggest", query_string={"q": "牛\x00肉"}).status_code == 400


def test_suggestions_may_be_cached_briefly_per_language(client, make):
    make.product(name_zh="灯影牛肉")
    response = client.get("/products/suggest?q=dy")
    assert response.headers["Cache-Control"] == "public, max-age=60"
    assert "Cookie" in response.headers["Vary"]


def test_the_navbar_search_box_asks_for_suggestions(client):
    html = client.get("/products").get_data(as_text=True)
    assert 'data-suggest-url="/products/suggest"' in html
    assert "/static/js/suggest.js?v=" in html
    assert client.get("/static/js/suggest.js").status_code == 200


def test_a_search_that_finds_nothing_offers_close_names_and_the_two_origins(client, make):
    make.product(name_zh="灯影牛肉", name_en="Dengying Beef")
    make.product(name_zh="菜籽油")
    client.set_cookie("lang", "en")
    response = client.get("/products", query_string={"q": "灯影牛肉丝卷"})
    html, text = response.get_data(as_text=True), page_text(response)
    assert "No products match." in text
    assert "Close matches" in text and "Dengying Beef" in text
    assert "菜籽油" not in text
    assert 'href="/products?origin=paired"' in html
    assert 'href="/products?origin=local"' in html


def test_a_search_with_results_shows_no_close_matches(client, make):
    make.product(name_zh="灯影牛肉")
    client.set_cookie("lang", "en")
    text = page_text(client.get("/products", query_string={"q": "灯影"}))
    assert "Close matches" not in text
    assert "No products match." not in text


def test_the_search_page_ranks_the_exact_name_first(client, make):
    dazhou = make.region(code="dazhou", name_zh="达州", kind=RegionKind.PAIRED)
    make.product(name_zh="达州牛肉干", popularity=900, supplier=make.supplier(region=dazhou))
    make.product(name_zh="牛肉", popularity=1)
    html = client.get("/products", query_string={"q": "牛肉"}).get_data(as_text=True)
    assert html.index('class="pc-name">牛肉<') < html.index('class="pc-name">达州牛肉干<')
