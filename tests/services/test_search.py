"""Catalog search: what it finds, in which order, and that the text it reads stays current."""

from types import SimpleNamespace

import pytest
import sqlalchemy as sa
from flask_migrate import upgrade

from app import create_app
from app.extensions import db
from app.models import OrgKind, ProductStatus, Role, SupplierType
from app.services import catalog, organizations, search
from app.services.catalog import ProductFilters, Sort
from app.services.errors import NotFound
from app.services.organizations import OrganizationData


def found(session, query, sort=Sort.RELEVANCE, **filters):
    page = catalog.browse(session, ProductFilters(query=query, sort=sort, **filters), 1, 50)
    return [p.name_zh for p in page.items]


def test_exact_name_then_prefix_then_contains_then_supplier_origin_or_category_only(session, make):
    make.product(name_zh="精品牛肉干", popularity=900)
    make.product(name_zh="牛肉酱", popularity=10)
    make.product(name_zh="牛肉", popularity=1)
    make.product(name_zh="腊肠", popularity=5000, supplier=make.supplier(name_zh="牛肉食品厂"))
    make.product(name_zh="腊鸡", popularity=3000, category=make.category(name_zh="牛肉制品"))
    region = make.region(name_zh="牛肉镇")
    make.product(name_zh="鸭蛋", popularity=4000, supplier=make.supplier(region=region))
    make.product(name_zh="菜籽油", popularity=9999)  # matches nothing
    assert found(session, "牛肉") == ["牛肉", "牛肉酱", "精品牛肉干", "腊肠", "鸭蛋", "腊鸡"]


def test_ties_go_to_the_most_bought_then_the_newest(session, make):
    older = make.product(name_zh="牛肉干甲", popularity=7)
    newer = make.product(name_zh="牛肉干乙", popularity=7)
    make.product(name_zh="牛肉干丙", popularity=8)
    assert newer.id > older.id
    assert found(session, "牛肉干") == ["牛肉干丙", "牛肉干乙", "牛肉干甲"]


@pytest.mark.parametrize(
    "typed", ["dynr", "DYNR", "dengyingniurou", "Deng Ying Niu Rou", "dyniurou", "dy牛肉"]
)
def test_initials_full_pinyin_and_mixes_find_the_name_and_rank_it_first(session, make, typed):
    make.product(name_zh="灯影牛肉干", popularity=900)  # starts with it
    make.product(name_zh="大灯影牛肉", popularity=800)  # contains it
    make.product(name_zh="灯影牛肉", popularity=1)
    make.product(name_zh="万源菜籽油", popularity=5000)
    assert found(session, typed) == ["灯影牛肉", "灯影牛肉干", "大灯影牛肉"]


def test_english_names_and_codes_are_searched(session, make):
    make.product(name_zh="灯影牛肉", name_en="Dengying Shredded Beef", code="DZ-0001")
    make.product(name_zh="菜籽油", name_en="Rapeseed Oil", code="WY-0002")
    assert found(session, "shredded BEEF") == ["灯影牛肉"]
    assert found(session, "wy-0002") == ["菜籽油"]


def test_latin_letters_in_names_match_in_any_case(session, make):
    make.product(name_zh="优质DHA藻油", popularity=900)
    make.product(name_zh="DHA藻油胶囊", popularity=500)
    make.product(name_zh="DHA藻油", popularity=1)
    make.product(name_zh="菜籽油", name_en="RAPESEED Oil")
    assert found(session, "dha藻油") == ["DHA藻油", "DHA藻油胶囊", "优质DHA藻油"]
    assert found(session, "Rapeseed OIL") == ["菜籽油"]


def test_products_are_found_by_their_suppliers_name_in_characters_pinyin_and_initials(
    session, make
):
    shop = make.supplier(name_zh="达州灯影坊食品有限公司", name_en="Dengying Workshop Foods")
    make.product(name_zh="牛肉干", supplier=shop)
    make.product(name_zh="香肠", supplier=shop)
    make.product(name_zh="菜籽油")
    for typed in ("灯影坊", "dengyingfang", "dzdyf", "workshop"):
        assert sorted(found(session, typed)) == ["牛肉干", "香肠"], typed


def test_products_are_found_by_their_origin_and_category(session, make):
    dazhou = make.region(code="dazhou", name_zh="达州")
    cured = make.category(name_zh="腊味熟食", name_en="Cured Meats")
    make.product(name_zh="灯影牛肉", supplier=make.supplier(region=dazhou))
    make.product(name_zh="腊肉", category=cured)
    make.product(name_zh="带鱼")
    assert found(session, "达州") == ["灯影牛肉"]
    assert found(session, "dazhou") == ["灯影牛肉"]
    assert found(session, "腊味") == ["腊肉"]
    assert found(session, "lwss") == ["腊肉"]
    assert found(session, "cured") == ["腊肉"]


def test_several_words_find_products_that_have_every_word_somewhere(session, make):
    dazhou = make.region(code="dazhou", name_zh="达州")
    make.product(name_zh="黄牛肉", supplier=make.supplier(region=dazhou))
    make.product(name_zh="牛肉酱")
    make.product(name_zh="菜籽油", supplier=make.supplier(region=dazhou))
    assert found(session, "牛肉 达州") == ["黄牛肉"]
    assert found(session, "达州 niurou") == ["黄牛肉"]


def test_characters_never_find_a_homophone_but_pinyin_finds_both(session, make):
    make.product(name_zh="牛肉")
    make.product(name_zh="纽柔")  # also "niurou"
    make.product(name_zh="腊肠", supplier=make.supplier(name_zh="纽柔食品"))
    assert found(session, "牛肉") == ["牛肉"]
    assert sorted(found(session, "niurou")) == sorted(["牛肉", "纽柔", "腊肠"])


@pytest.mark.parametrize(("typed", "expected"), [("100%", ["100%纯菜籽油"]), ("a_b", ["a_b酱"])])
def test_percent_and_underscore_are_literal(session, make, typed, expected):
    make.product(name_zh="100%纯菜籽油")
    make.product(name_zh="1000克菜籽油")
    make.product(name_zh="a_b酱")
    make.product(name_zh="axb酱")
    assert found(session, typed) == expected


def test_renaming_a_supplier_finds_its_products_by_the_new_name_only(session, make):
    center = make.organization(OrgKind.CENTER)
    admin = make.user(roles={Role.ADMIN}, organization=center)
    shop = make.supplier(name_zh="旧名食品厂")
    make.product(name_zh="牛肉干", supplier=shop)
    assert found(session, "旧名") == ["牛肉干"]
    data = OrganizationData(
        code=shop.code,
        kind=OrgKind.SUPPLIER,
        name_zh="新名食品厂",
        region_id=shop.region_id,
        supplier_type=SupplierType.ENTERPRISE,
    )
    organizations.update_organization(session, admin, shop, data)
    assert found(session, "新名") == ["牛肉干"]
    assert found(session, "xinming") == ["牛肉干"]
    assert found(session, "旧名") == []


def test_renaming_a_product_updates_what_the_search_reads(session, make):
    product = make.product(name_zh="牛肉干")
    product.name_zh = "猪肉脯"
    session.commit()
    assert "猪肉脯" in product.search_text
    assert found(session, "zrp") == ["猪肉脯"]
    assert found(session, "牛肉") == []


def test_the_search_text_starts_with_the_name_and_keeps_no_piece_twice(session, make):
    product = make.product(name_zh="灯影牛肉", name_en="Dengying Beef", code="DZ-1")
    pieces = product.search_text.split("\n")
    assert pieces[0] == "灯影牛肉"
    assert "dengying beef" in pieces and "dz-1" in pieces and "dyniurou" in pieces
    # "dynr" is inside "dynrou": every match of the one is a match of the other.
    assert "dynr" not in pieces
    assert len(pieces) == len(set(pieces))


def test_filters_and_other_sorts_still_apply_to_a_search(session, make):
    dazhou = make.region(code="dazhou", name_zh="达州")
    make.product(name_zh="牛肉干", retail_price_fen=3000, supplier=make.supplier(region=dazhou))
    make.product(name_zh="黄牛肉", retail_price_fen=1000, supplier=make.supplier(region=dazhou))
    make.product(name_zh="牛肉酱", retail_price_fen=2000)
    make.product(name_zh="牛肉片", retail_price_fen=500, stock=0)
    assert found(session, "牛肉", sort=Sort.PRICE_ASC) == ["牛肉片", "黄牛肉", "牛肉酱", "牛肉干"]
    assert found(session, "牛肉", sort=Sort.PRICE_DESC, region_code="dazhou") == [
        "牛肉干",
        "黄牛肉",
    ]
    assert found(session, "牛肉", in_stock_only=True, max_price_fen=2500) == ["牛肉酱", "黄牛肉"]


def test_unsellable_products_are_never_found(session, make):
    make.product(name_zh="牛肉干")
    make.product(name_zh="牛肉片", status=ProductStatus.DRAFT)
    closed = make.supplier(active=False)
    make.product(name_zh="牛肉酱", supplier=closed)
    assert found(session, "牛肉") == ["牛肉干"]


def test_search_pages_count_every_hit_and_end_where_the_hits_do(session, make):
    for n in range(5):
        make.product(name_zh=f"牛肉{n}")
    make.product(name_zh="菜籽油")
    first = catalog.browse(session, ProductFilters(query="牛肉", sort=Sort.RELEVANCE), 1, 2)
    third = catalog.browse(session, ProductFilters(query="牛肉", sort=Sort.RELEVANCE), 3, 2)
    assert (first.total, first.pages, len(first.items), len(third.items)) == (5, 3, 2, 1)
    with pytest.raises(NotFound):
        catalog.browse(session, ProductFilters(query="牛肉"), 4, 2)
    nothing = catalog.browse(session, ProductFilters(query="不存在"), 1, 2)
    assert (nothing.total, nothing.items) == (0, [])
    with pytest.raises(NotFound):
        catalog.browse(session, ProductFilters(query="不存在"), 2, 2)


def test_closest_offers_names_sharing_a_piece_of_a_query_that_found_nothing(session, make):
    make.product(name_zh="灯影牛肉", popularity=5)
    make.product(name_zh="牛肉酱", popularity=50)
    make.product(name_zh="菜籽油")
    assert found(session, "灯影牛肉丝卷") == []
    assert [p.name_zh for p in catalog.closest(session, "灯影牛肉丝卷")] == ["灯影牛肉", "牛肉酱"]
    assert [p.name_zh for p in catalog.closest(session, "dynx")] == ["灯影牛肉"]
    assert catalog.closest(session, "%") == []


def test_suggestions_are_ranked_capped_and_sellable_only(session, make):
    for n in range(10):
        make.product(name_zh=f"灯影牛肉{n}", popularity=n)
    make.product(name_zh="灯影牛肉", popularity=0)
    make.product(name_zh="灯影牛肉片", status=ProductStatus.ARCHIVED, popularity=99)
    rows = catalog.suggestions(session, "dynr", limit=8)
    assert [r.name_zh for r in rows] == ["灯影牛肉", *(f"灯影牛肉{n}" for n in range(9, 2, -1))]


def test_one_letter_suggests_only_names_starting_with_it(session, make):
    make.product(name_zh="带鱼", popularity=1)
    make.product(name_zh="黄豆", name_en="Soybeans", popularity=900)  # has a "d" inside
    assert [r.name_zh for r in catalog.suggestions(session, "d")] == ["带鱼"]


@pytest.mark.parametrize("typed", ["", "   "])
def test_an_empty_query_suggests_nothing(session, make, typed):
    make.product(name_zh="带鱼")
    assert catalog.suggestions(session, search.clean_query(typed)) == []


def test_the_migration_fills_the_search_text_as_the_app_composes_it(tmp_path):
    app = create_app("testing", SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path / 'old.sqlite3'}")
    now = "2026-11-27 00:00:00"
    name, name_en = "灯影牛肉（礼盒装）", "Dengying  Beef (Gift Box)"
    from app.pinyin import pinyin_keys

    full, initials, keys = pinyin_keys(name)
    with app.app_context():
        upgrade(revision="0007")
        with db.engine.begin() as connection:
            run = connection.exec_driver_sql
            run(
                "INSERT INTO regions (id, code, name_zh, name_en, province_zh, province_en, kind,"
                " sort_order) VALUES (1, 'dz', '达州', '', '', '', 'paired', 0)"
            )
            run(
                "INSERT INTO categories (id, slug, name_zh, name_en, sort_order)"
                " VALUES (1, 'c', '类', '', 0)"
            )
            run(
                "INSERT INTO organizations (id, code, kind, name_zh, name_en, region_id, address,"
                " contact_name, contact_phone, active, created_at, county_zh,"
                " households_benefited, certifications, story_zh, story_en)"
                f" VALUES (1, 'S', 'supplier', '社', '', 1, '', '', '', 1, '{now}', '', 0, '',"
                " '', '')"
            )
            connection.execute(
                sa.text(
                    "INSERT INTO products (id, code, supplier_id, origin_region_id, category_id,"
                    " status, name_zh, name_en, name_pinyin, name_initials, search_keys,"
                    " description_zh, description_en, unit, retail_price_fen, stock,"
                    " popularity, featured, lead_time_days, county_zh, cooperative_zh,"
                    " households_benefited, certifications, storage_zh, created_at,"
                    " updated_at) VALUES (1, 'DZ-001', 1, 1, 1, 'active', :name, :name_en,"
                    " :full, :initials, :keys, '', '', 'box', 100, 5, 0, 0, 2, '', '', 0, '',"
                    " '', :now, :now)"
                ),
                {
                    "name": name,
                    "name_en": name_en,
                    "full": full,
                    "initials": initials,
                    "keys": keys,
                    "now": now,
                },
            )
        upgrade()
        with db.engine.connect() as connection:
            stored = connection.scalar(sa.text("SELECT search_text FROM products"))
        db.engine.dispose()
    product = SimpleNamespace(name_zh=name, name_en=name_en, code="DZ-001", search_keys=keys)
    assert stored == search.compose_search_text(product)
    assert stored.startswith("灯影牛肉（礼盒装）\ndengying beef (gift box)")
