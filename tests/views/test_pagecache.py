"""Catalog pages are rendered once and reused per locale and audience until the catalog changes."""

import pytest

from app import create_app
from app.extensions import cache
from app.models import Role
from app.signals import catalog_changed
from tests.conftest import page_text


@pytest.fixture
def cached_app(database_url):
    return create_app(
        "testing",
        SQLALCHEMY_DATABASE_URI=database_url,
        CACHE_TYPE="SimpleCache",
        CATALOG_CACHE_SECONDS=60,
    )


@pytest.fixture
def cached_client(cached_app, session):
    with cached_app.app_context():
        cache.clear()
    return cached_app.test_client()


def test_a_cached_list_is_reused_until_the_catalog_changes(
    cached_app, cached_client, make, session
):
    product = make.product(name_zh="旧名字")
    assert "旧名字" in page_text(cached_client.get("/products"))
    product.name_zh = "新名字"
    session.commit()
    assert "旧名字" in page_text(cached_client.get("/products"))
    with cached_app.app_context():
        catalog_changed.send("test")
    assert "新名字" in page_text(cached_client.get("/products"))


def test_cached_pages_keep_per_viewer_parts_fresh(cached_app, cached_client, make, session):
    make.product(name_zh="灯影牛肉")
    with cached_client.session_transaction() as flask_session:
        flask_session["_user_id"] = make.user(name="甲用户").get_id()
    assert "甲用户" in page_text(cached_client.get("/products"))
    with cached_client.session_transaction() as flask_session:
        flask_session["_user_id"] = make.user(name="乙用户").get_id()
    text = page_text(cached_client.get("/products"))
    assert "乙用户" in text and "甲用户" not in text


def test_canteen_prices_are_never_served_from_a_staff_members_cached_page(
    cached_app, cached_client, make
):
    product = make.product(tiers=[("20", 4580)])
    with cached_client.session_transaction() as flask_session:
        flask_session["_user_id"] = make.user(roles={Role.STAFF}).get_id()
    assert "食堂批量采购价" not in page_text(cached_client.get(f"/products/{product.id}"))
    with cached_client.session_transaction() as flask_session:
        flask_session["_user_id"] = make.user(roles={Role.CANTEEN_BUYER}).get_id()
    assert "食堂批量采购价" in page_text(cached_client.get(f"/products/{product.id}"))
    with cached_client.session_transaction() as flask_session:
        flask_session["_user_id"] = make.user(roles={Role.STAFF}).get_id()
    assert "食堂批量采购价" not in page_text(cached_client.get(f"/products/{product.id}"))


def test_english_and_chinese_pages_are_cached_separately(cached_client, make):
    make.product(name_zh="灯影牛肉", name_en="Dengying Beef")
    assert "灯影牛肉" in page_text(cached_client.get("/products"))
    cached_client.set_cookie("lang", "en")
    assert "Dengying Beef" in page_text(cached_client.get("/products"))


def test_bad_filters_stay_refused_when_served_from_the_cache(cached_client, make):
    make.product()
    assert cached_client.get("/products?page=-1").status_code == 400
    assert cached_client.get("/products?page=-1").status_code == 400
