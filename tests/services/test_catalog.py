from decimal import Decimal

import pytest
import sqlalchemy as sa

from app.models import ContentUnit, ProductStatus, RegionKind, Role, Unit
from app.services import catalog
from app.services.catalog import ProductFilters, Sort
from app.services.errors import NotFound


def names(page):
    return [p.name_zh for p in page.items]


def test_only_active_products_are_listed(session, make):
    shown = make.product(name_zh="上架商品")
    for status in (ProductStatus.DRAFT, ProductStatus.PENDING_REVIEW, ProductStatus.ARCHIVED):
        make.product(name_zh=f"隐藏{status.value}", status=status)
    page = catalog.browse(session, ProductFilters(), 1, 50)
    assert names(page) == [shown.name_zh]


@pytest.mark.parametrize(
    "typed", ["灯影", "dengying", "dyniurou", "dynr", "DYNR", "Deng Ying", "shredded beef"]
)
def test_search_finds_dengying_beef_by_characters_pinyin_initials_and_english(session, make, typed):
    make.product(name_zh="灯影牛肉", name_en="Dengying Shredded Beef")
    make.product(name_zh="万源菜籽油", name_en="Wanyuan Rapeseed Oil")
    page = catalog.browse(session, ProductFilters(query=typed, sort=Sort.RELEVANCE), 1, 24)
    assert names(page) == ["灯影牛肉"]


@pytest.mark.parametrize(
    "typed", ["%", "_", "'", '"', "' OR 1=1 --", "牛肉%", "x" * 64, "; DROP TABLE products;"]
)
def test_search_with_sql_and_wildcards_is_literal(session, make, typed):
    make.product(name_zh="灯影牛肉")
    page = catalog.browse(session, ProductFilters(query=typed), 1, 24)
    assert page.items == []


def test_exact_name_ranks_before_names_that_merely_contain_it(session, make):
    make.product(name_zh="精品牛肉干", popularity=900)
    make.product(name_zh="牛肉", popularity=1)
    make.product(name_zh="牛肉酱", popularity=500)
    page = catalog.browse(session, ProductFilters(query="牛肉", sort=Sort.RELEVANCE), 1, 24)
    assert names(page) == ["牛肉", "牛肉酱", "精品牛肉干"]


def test_filters_by_region_category_supplier_stock_and_price(session, make):
    dazhou = make.region(code="dz-test", kind=RegionKind.PAIRED)
    local = make.region(code="zs-test", kind=RegionKind.LOCAL)
    meat = make.category(slug="meat-test")
    supplier = make.supplier(region=dazhou)
    a = make.product(name_zh="甲", supplier=supplier, category=meat, retail_price_fen=1000)
    make.product(
        name_zh="乙", supplier=supplier, category=meat, retail_price_fen=5000, stock=Decimal(0)
    )
    make.product(name_zh="丙", supplier=make.supplier(region=local), retail_price_fen=2000)

    def run(**kw):
        return sorted(names(catalog.browse(session, ProductFilters(**kw), 1, 24)))

    assert run(region_code="dz-test") == ["乙", "甲"]
    assert run(category_slug="meat-test") == ["乙", "甲"]
    assert run(supplier_id=supplier.id, in_stock_only=True) == [a.name_zh]
    assert run(min_price_fen=1500, max_price_fen=4000) == ["丙"]


def test_sorting_by_price_popularity_and_newest(session, make):
    cheap = make.product(name_zh="便宜", retail_price_fen=100, popularity=5)
    dear = make.product(name_zh="贵", retail_price_fen=9900, popularity=50)
    middle = make.product(name_zh="中", retail_price_fen=500, popularity=500)

    def order(sort):
        return names(catalog.browse(session, ProductFilters(sort=sort), 1, 24))

    assert order(Sort.PRICE_ASC) == ["便宜", "中", "贵"]
    assert order(Sort.PRICE_DESC) == ["贵", "中", "便宜"]
    assert order(Sort.POPULAR) == ["中", "贵", "便宜"]
    # The builder gives later products earlier creation times.
    assert order(Sort.NEWEST) == [cheap.name_zh, dear.name_zh, middle.name_zh]


def test_pages_cover_every_product_once_and_past_the_end_is_not_found(session, make):
    for i in range(7):
        make.product(name_zh=f"商品{i}", retail_price_fen=100 + i)
    seen = []
    for number in (1, 2, 3):
        page = catalog.browse(session, ProductFilters(sort=Sort.PRICE_ASC), number, 3)
        assert page.total == 7 and page.pages == 3
        seen += names(page)
    assert seen == [f"商品{i}" for i in range(7)]
    with pytest.raises(NotFound):
        catalog.browse(session, ProductFilters(), 4, 3)


def test_unlisted_products_are_visible_only_to_their_supplier_and_stewards(session, make):
    product = make.product(status=ProductStatus.PENDING_REVIEW)
    staff = make.user(roles={Role.STAFF})
    other_supplier = make.user(roles={Role.SUPPLIER}, organization=make.supplier())
    own_supplier = make.user(roles={Role.SUPPLIER}, organization=product.supplier)
    coordinator = make.user(roles={Role.COORDINATOR})
    for viewer in (None, staff, other_supplier):
        with pytest.raises(NotFound):
            catalog.get_product_for_viewer(session, product.id, viewer)
    for viewer in (own_supplier, coordinator):
        assert catalog.get_product_for_viewer(session, product.id, viewer) == product


def test_reference_price_per_jin_litre_and_piece(session, make):
    beef = make.product(
        unit=Unit.BOX, retail_price_fen=5800, content_amount=250, content_unit=ContentUnit.GRAM
    )
    oil = make.product(
        unit=Unit.BOTTLE,
        retail_price_fen=12800,
        content_amount=5000,
        content_unit=ContentUnit.MILLILITRE,
    )
    eggs = make.product(
        unit=Unit.BOX, retail_price_fen=6800, content_amount=30, content_unit=ContentUnit.PIECE
    )
    fish = make.product(unit=Unit.KG, retail_price_fen=9000)
    greens = make.product(unit=Unit.JIN, retail_price_fen=600)
    assert catalog.reference_price(beef) == catalog.ReferencePrice(11600, "jin")
    assert catalog.reference_price(oil) == catalog.ReferencePrice(2560, "litre")
    assert catalog.reference_price(eggs) == catalog.ReferencePrice(227, "piece")
    assert catalog.reference_price(fish) == catalog.ReferencePrice(4500, "jin")
    assert catalog.reference_price(greens) is None


def test_bulk_terms_are_for_canteen_roles_and_the_products_own_supplier(session, make):
    product = make.product(tiers=[("10", 2500), ("50", 2300)])
    assert product.offers_bulk
    assert catalog.can_see_bulk_terms(make.user(roles={Role.CANTEEN_BUYER}), product)
    assert catalog.can_see_bulk_terms(
        make.user(roles={Role.SUPPLIER}, organization=product.supplier), product
    )
    assert not catalog.can_see_bulk_terms(make.user(roles={Role.STAFF}), product)
    assert not catalog.can_see_bulk_terms(None, product)


def test_pinyin_is_recomputed_when_the_name_changes(session, make):
    product = make.product(name_zh="百里坡黑鸡蛋")
    assert product.name_initials == "blphjd"
    product.name_zh = "酱香鸭"
    assert product.name_pinyin == "jiangxiangya"


def test_products_of_a_disabled_supplier_are_not_on_sale(session, make):
    product = make.product(name_zh="停用供应商的货")
    product.supplier.active = False
    session.commit()
    assert catalog.browse(session, ProductFilters(), 1, 24).items == []
    with pytest.raises(NotFound):
        catalog.get_product_for_viewer(session, product.id, make.user())


def test_a_net_content_needs_its_unit(session, make):
    with pytest.raises(sa.exc.IntegrityError):
        make.product(content_amount=250, content_unit=None)
    session.rollback()
