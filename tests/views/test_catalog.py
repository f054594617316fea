from decimal import Decimal

import pytest

from app.models import ContentUnit, ProductStatus, RegionKind, Role, Unit
from tests.conftest import page_text


def test_home_shows_paired_region_produce_before_local_produce(client, make):
    dazhou = make.region(code="dazhou-h", name_zh="达州", kind=RegionKind.PAIRED)
    zhoushan = make.region(code="zhoushan-h", name_zh="舟山", kind=RegionKind.LOCAL)
    make.product(name_zh="灯影牛肉", supplier=make.supplier(region=dazhou), featured=True)
    make.product(name_zh="舟山带鱼", supplier=make.supplier(region=zhoushan), featured=True)
    text = page_text(client.get("/"))
    assert text.index("灯影牛肉") < text.index("舟山带鱼")


def test_home_with_an_empty_catalog_says_so(client):
    text = page_text(client.get("/"))
    assert "对口地区的商品尚未上架" in text


def test_product_list_shows_price_with_unit_and_price_per_jin(client, make):
    make.product(
        name_zh="灯影牛肉",
        unit=Unit.BOX,
        retail_price_fen=4980,
        content_amount=250,
        content_unit=ContentUnit.GRAM,
    )
    text = page_text(client.get("/products"))
    assert "¥49.80 /盒" in text
    assert "¥99.60/斤" in text


@pytest.mark.parametrize("typed", ["灯影", "dengying", "dyniurou", "dynr"])
def test_search_page_finds_dengying_beef(client, make, typed):
    make.product(name_zh="灯影牛肉")
    make.product(name_zh="万源菜籽油")
    text = page_text(client.get("/products", query_string={"q": typed}))
    assert "灯影牛肉" in text
    assert "万源菜籽油" not in text


@pytest.mark.parametrize(
    "typed", ["%", "_", "'", '"', "' OR '1'='1", "灯" * 500, "<script>", "\u200b", "\x07"]
)
def test_odd_searches_return_a_normal_page(client, make, typed):
    make.product(name_zh="灯影牛肉")
    response = client.get("/products", query_string={"q": typed})
    assert response.status_code == 200
    assert "<script>" not in response.get_data(as_text=True).split("<main", 1)[1]


def test_nul_bytes_in_any_input_are_refused_with_400(client):
    response = client.get("/products", query_string={"q": "牛\x00肉"})
    assert response.status_code == 400
    assert "不允许的字符" in page_text(response)


@pytest.mark.parametrize(
    "disposition", [b"form-data", b'form-data; filename="order.csv"', b'form-data; name="a']
)
def test_a_form_part_without_a_readable_name_is_refused_with_400(
    client, make, actions, disposition
):
    """A crafted multipart part with no name arrives keyed None; views and WTForms expect
    strings and failed with a 500."""
    actions.login_as(make.user())
    body = b"--XyZ\r\nContent-Disposition: " + disposition + b"\r\n\r\nhello\r\n--XyZ--\r\n"
    response = client.post(
        "/auth/password", data=body, content_type="multipart/form-data; boundary=XyZ"
    )
    assert response.status_code == 400


def test_a_search_with_no_hits_shows_an_empty_state(client, make):
    make.product(name_zh="灯影牛肉")
    text = page_text(client.get("/products?q=不存在的东西"))
    assert "没有找到符合条件的商品" in text


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("page=abc", "不是有效的整数"),
        ("page=-1", "页码从 1 开始"),
        ("page=0", "页码从 1 开始"),
        ("min_price=-5", "不能为负"),
        ("max_price=1.234", "最多两位小数"),
        ("min_price=20&max_price=10", "最高价低于最低价"),
        ("sort=random", "不是有效的选择"),
        ("region=atlantis", "不是有效的选择"),
    ],
)
def test_bad_filters_are_refused_with_a_message(client, make, query, message):
    make.product()
    response = client.get(f"/products?{query}")
    assert response.status_code == 400
    assert message in page_text(response)


def test_a_page_past_the_end_is_not_found(client, make):
    make.product()
    assert client.get("/products?page=2").status_code == 404
    assert client.get("/products?page=1").status_code == 200


def test_pagination_links_keep_the_filters(client, make, app):
    region = make.region(code="dz-pages")
    supplier = make.supplier(region=region)
    for i in range(app.config["PRODUCTS_PER_PAGE"] + 1):
        make.product(supplier=supplier, name_zh=f"分页商品{i}")
    html = client.get("/products?region=dz-pages").get_data(as_text=True)
    assert "region=dz-pages" in html and "page=2" in html


def test_product_page_shows_traceability_and_supplier_story(client, make):
    supplier = make.supplier(name_zh="达州灯影坊食品有限公司", story_zh="与三百户农户签约收购。")
    product = make.product(
        name_zh="灯影牛肉",
        supplier=supplier,
        county_zh="通川区",
        cooperative_zh="宣汉黄牛养殖基地",
        households_benefited=520,
        shelf_life_days=180,
        storage_zh="常温避光保存",
    )
    text = page_text(client.get(f"/products/{product.id}"))
    for expected in (
        "灯影牛肉",
        "产品溯源",
        "通川区",
        "宣汉黄牛养殖基地",
        "520",
        "180 天",
        "常温避光保存",
        "达州灯影坊食品有限公司",
        "与三百户农户签约收购。",
    ):
        assert expected in text


def test_unknown_or_hidden_products_are_404(client, make):
    hidden = make.product(status=ProductStatus.DRAFT)
    assert client.get("/products/999999").status_code == 404
    assert client.get(f"/products/{hidden.id}").status_code == 404
    assert "该商品不存在或已下架" in page_text(client.get(f"/products/{hidden.id}"))


def test_bulk_tiers_are_shown_to_canteen_buyers_only(client, make, actions):
    product = make.product(unit=Unit.BOX, tiers=[("20", 4580), ("60", 4380)])
    assert "食堂批量采购价" not in page_text(client.get(f"/products/{product.id}"))
    actions.login_as(make.user(roles={Role.STAFF}))
    assert "食堂批量采购价" not in page_text(client.get(f"/products/{product.id}"))
    actions.login_as(make.user(roles={Role.CANTEEN_BUYER}))
    text = page_text(client.get(f"/products/{product.id}"))
    assert "食堂批量采购价" in text
    assert "¥45.80/盒" in text and "¥43.80/盒" in text


def test_html_in_product_text_is_shown_escaped(client, make):
    product = make.product(name_zh="<b>粗体</b>牛肉", description_zh="<script>alert(1)</script>")
    html = client.get(f"/products/{product.id}").get_data(as_text=True)
    assert "&lt;b&gt;粗体&lt;/b&gt;牛肉" in html
    assert "<script>alert(1)</script>" not in html


def test_sold_out_products_say_so_and_can_be_filtered_out(client, make):
    make.product(name_zh="卖完了", stock=Decimal(0))
    make.product(name_zh="还有货", stock=Decimal(8))
    assert "已售罄" in page_text(client.get("/products"))
    text = page_text(client.get("/products?in_stock=y"))
    assert "还有货" in text and "卖完了" not in text


def test_english_interface_shows_english_product_names(client, make):
    make.product(name_zh="灯影牛肉", name_en="Dengying Shredded Beef")
    client.set_cookie("lang", "en")
    text = page_text(client.get("/products"))
    assert "Dengying Shredded Beef" in text
    assert "Products" in text


def test_static_files_are_versioned_and_cached_long(client):
    html = client.get("/").get_data(as_text=True)
    css_url = next(part.split('"')[0] for part in html.split('href="')[1:] if "app.css" in part)
    assert "?v=" in css_url
    response = client.get(css_url)
    assert response.status_code == 200
    assert "max-age=31536000" in response.headers["Cache-Control"]


@pytest.mark.parametrize("product_id", ["2147483648", "9" * 30])
def test_ids_too_large_for_the_database_are_not_found(client, product_id):
    assert client.get(f"/products/{product_id}").status_code == 404


def test_a_price_filter_too_large_is_refused_not_a_crash(client, make):
    make.product()
    response = client.get("/products?max_price=21474836.48")
    assert response.status_code == 400
    assert "最多两位小数" in page_text(response)


@pytest.mark.parametrize(
    "junk", ["_external=1", "endpoint=x", "_method=POST", "_anchor=x", "_scheme=javascript"]
)
def test_query_arguments_never_reach_url_building(app, client, make, junk):
    for i in range(app.config["PRODUCTS_PER_PAGE"] + 1):
        make.product(name_zh=f"商品{i}")
    response = client.get(f"/products?{junk}", headers={"Host": "evil.example"})
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "evil.example" not in html
    assert 'href="/products?' in html and "page=2" in html


def test_origin_links_show_paired_or_local_produce(client, make):
    paired = make.region(code="dz-origin", kind=RegionKind.PAIRED)
    local = make.region(code="zs-origin", kind=RegionKind.LOCAL)
    make.product(name_zh="达州货", supplier=make.supplier(region=paired))
    make.product(name_zh="舟山货", supplier=make.supplier(region=local))
    text = page_text(client.get("/products?origin=paired"))
    assert "达州货" in text and "舟山货" not in text
    text = page_text(client.get("/products?origin=local"))
    assert "舟山货" in text and "达州货" not in text


def test_a_region_with_nothing_on_sale_shows_an_empty_list_not_an_error(client, make):
    make.region(code="empty-region")
    response = client.get("/products?region=empty-region")
    assert response.status_code == 200
    assert "没有找到符合条件的商品" in page_text(response)


def test_in_stock_no_means_everything(client, make):
    make.product(name_zh="卖完了", stock=Decimal(0))
    assert "卖完了" in page_text(client.get("/products?in_stock=no"))
