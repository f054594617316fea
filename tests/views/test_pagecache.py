"""Catalog pages are rendered once and reused per locale and audience until the catalog changes."""

import re

import pytest

from app import create_app
from app.extensions import cache
from app.models import ProductStatus, Role
from app.services.errors import DomainError
from app.services.organizations import OrganizationData, update_organization
from app.signals import catalog_changed
from app.web import pagecache
from tests.conftest import csrf_token, page_text


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


def test_the_logout_button_on_a_fast_page_carries_a_working_csrf_token(cached_client, make):
    make.product()
    with cached_client.session_transaction() as flask_session:
        flask_session["_user_id"] = make.user(name="要退出的人").get_id()
    pages = [cached_client.get("/products").get_data(as_text=True) for _ in range(2)]
    tokens = [re.search(r'name="csrf_token" value="([^"]+)"', page).group(1) for page in pages]
    assert tokens[0] == tokens[1]  # signed once per session, not per page
    response = cached_client.post("/auth/logout", data={"csrf_token": tokens[1]})
    assert response.status_code == 302
    assert "要退出的人" not in page_text(cached_client.get("/products"))


def test_an_admins_edit_reaches_cached_pages_once_committed(cached_app, cached_client, make):
    supplier = make.supplier(name_zh="灯影坊")
    product = make.product(name_zh="灯影牛肉", supplier=supplier)
    assert "灯影牛肉" in page_text(cached_client.get("/products"))
    assert cached_client.get(f"/products/{product.id}").status_code == 200
    admin = make.user(roles={Role.ADMIN})
    with cached_client.session_transaction() as flask_session:
        flask_session["_user_id"] = admin.get_id()
    token = csrf_token(cached_app, cached_client)
    response = cached_client.post(
        f"/admin/organizations/{supplier.id}",
        data={
            "csrf_token": token,
            "code": supplier.code,
            "kind": "supplier",
            "name_zh": "灯影坊",
            "region_id": supplier.region_id,
            "households_benefited": "1",
        },
    )  # "active" unticked
    assert response.status_code == 302
    with cached_client.session_transaction() as flask_session:
        flask_session.pop("_user_id")
    assert "灯影牛肉" not in page_text(cached_client.get("/products"))
    assert cached_client.get(f"/products/{product.id}").status_code == 404


def test_a_refused_edit_leaves_cached_pages_alone(cached_app, cached_client, make, session):
    product = make.product(name_zh="原来的")
    assert "原来的" in page_text(cached_client.get("/products"))
    admin = make.user(roles={Role.ADMIN})
    with cached_app.app_context():
        data = OrganizationData(code="x", kind=product.supplier.kind, name_zh="")
        with pytest.raises(DomainError):
            update_organization(session, admin, product.supplier, data)
        session.rollback()
    product.name_zh = "改过的"  # changed behind the cache's back: must not show yet
    session.commit()
    assert "原来的" in page_text(cached_client.get("/products"))


def test_stewards_viewing_unlisted_products_never_fill_the_shared_cache(
    cached_client, make, session
):
    product = make.product(name_zh="待审核商品", status=ProductStatus.PENDING_REVIEW)
    with cached_client.session_transaction() as flask_session:
        flask_session["_user_id"] = make.user(roles={Role.COORDINATOR}).get_id()
    assert "待审核商品" in page_text(cached_client.get(f"/products/{product.id}"))
    with cached_client.session_transaction() as flask_session:
        flask_session["_user_id"] = make.user(roles={Role.STAFF}).get_id()
    assert cached_client.get(f"/products/{product.id}").status_code == 404


def test_shared_content_that_reads_per_viewer_values_fails_loudly(cached_app):
    with cached_app.test_request_context("/"):
        template = cached_app.jinja_env.from_string("{{ current_user.name }}")
        with pytest.raises(RuntimeError, match="current_user used in shared page content"):
            template.render(**pagecache._PER_VIEWER)
