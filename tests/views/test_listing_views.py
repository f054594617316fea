"""The supplier's listing pages, the coordinators' review, the profile and listing imports."""

from __future__ import annotations

import csv
import io

import pytest
import sqlalchemy as sa

from app.models import (
    CertificateKind,
    Product,
    ProductRevision,
    ProductStatus,
    RevisionStatus,
    Role,
    SupplierCertificate,
)
from tests.conftest import page_text


@pytest.fixture
def world(make, client):
    client.set_cookie("lang", "en")
    supplier = make.supplier(name_zh="巴山茶业", name_en="Bashan Tea Co.")
    return {
        "supplier": supplier,
        "seller": make.user(roles={Role.SUPPLIER}, organization=supplier),
        "other_seller": make.user(roles={Role.SUPPLIER}, organization=make.supplier()),
        "coordinator": make.user(roles={Role.COORDINATOR}),
        "buyer": make.user(roles={Role.STAFF}),
        "category": make.category(name_zh="茶叶"),
    }


def listing_form(world, **overrides):
    data = {
        "code": "DZ-TEA-01",
        "name_zh": "巴山雀舌",
        "name_en": "Bashan tea",
        "category": str(world["category"].id),
        "origin": str(world["supplier"].region_id),
        "unit": "box",
        "retail_price": "128.00",
        "case_size": "20",
        "tiers-0-min_quantity": "20",
        "tiers-0-price": "118",
        "tiers-1-min_quantity": "100",
        "tiers-1-price": "110",
        "lead_time_days": "3",
    }
    data.update(overrides)
    return data


def _product_count(session) -> int:
    return session.scalar(sa.select(sa.func.count(Product.id)))


def _create_through_the_form(actions, world, **overrides) -> Product:
    actions.login_as(world["seller"])
    response = actions.post("/supplier/products/new", listing_form(world, **overrides))
    assert response.status_code == 303, page_text(response)
    product_id = int(response.headers["Location"].split("/")[-2])
    return actions.client.application.extensions["sqlalchemy"].session.get(Product, product_id)


def test_a_supplier_adds_a_product_a_coordinator_approves_and_buyers_then_see_it(
    client, actions, session, world
):
    product = _create_through_the_form(actions, world)
    assert product.status == ProductStatus.PENDING_REVIEW
    assert [t.unit_price_fen for t in product.price_tiers] == [11800, 11000]

    actions.login_as(world["buyer"])
    assert client.get(f"/products/{product.id}").status_code == 404

    actions.login_as(world["coordinator"])
    queue = client.get("/review/")
    assert "巴山雀舌" in page_text(queue)
    revision = session.scalar(
        sa.select(ProductRevision).where(ProductRevision.product_id == product.id)
    )
    detail = page_text(client.get(f"/review/{revision.id}"))
    assert "New product" in detail and "¥128.00" in detail
    response = actions.post(f"/review/{revision.id}/approve", {"comment": ""})
    assert response.status_code == 303

    actions.login_as(world["buyer"])
    page = client.get(f"/products/{product.id}")
    assert page.status_code == 200
    assert "巴山雀舌" in page_text(page)


def test_bad_input_keeps_what_was_typed_says_why_and_saves_nothing(client, actions, session, world):
    actions.login_as(world["seller"])
    before = _product_count(session)

    response = actions.post(
        "/supplier/products/new",
        listing_form(world, retail_price="12.345", **{"tiers-1-min_quantity": "10"}),
    )

    assert response.status_code == 400
    text = page_text(response)
    assert "at most two decimals" in text
    assert "Tier quantities must increase" in text
    html = response.get_data(as_text=True)
    assert 'value="12.345"' in html and 'value="巴山雀舌"' in html
    assert _product_count(session) == before


@pytest.mark.parametrize("key", ["tiers-²-price", "tiers-١-min_quantity", "tiers-1٠-price"])
def test_a_tier_row_number_that_is_not_ascii_is_ignored_not_a_server_error(
    client, actions, session, world, key
):
    """str.isdigit() takes "²" and int() does not: WTForms' FieldList failed with a 500."""
    actions.login_as(world["seller"])
    before = _product_count(session)

    response = actions.post("/supplier/products/new", listing_form(world, **{key: "1"}))

    assert response.status_code == 303, page_text(response)
    assert _product_count(session) == before + 1


def test_a_large_price_edit_waits_while_buyers_see_the_approved_price(
    client, actions, session, world
):
    product = _create_through_the_form(actions, world)
    actions.login_as(world["coordinator"])
    revision = session.scalar(
        sa.select(ProductRevision).where(ProductRevision.product_id == product.id)
    )
    actions.post(f"/review/{revision.id}/approve", {})

    actions.login_as(world["seller"])
    response = actions.post(
        f"/supplier/products/{product.id}/edit", listing_form(world, retail_price="168.00")
    )
    assert response.status_code == 303
    edit_page = page_text(client.get(f"/supplier/products/{product.id}/edit"))
    assert "waits for a coordinator" in edit_page
    # The supplier's boxes show the version it saved last, not the approved one.
    assert 'value="168.00"' in client.get(f"/supplier/products/{product.id}/edit").get_data(
        as_text=True
    )

    actions.login_as(world["buyer"])
    assert "¥128.00" in page_text(client.get(f"/products/{product.id}"))

    actions.login_as(world["coordinator"])
    pending = session.scalar(
        sa.select(ProductRevision).where(
            ProductRevision.product_id == product.id,
            ProductRevision.status == RevisionStatus.PENDING,
        )
    )
    compare = page_text(client.get(f"/review/{pending.id}"))
    assert "¥128.00" in compare and "¥168.00" in compare
    refused = actions.post(f"/review/{pending.id}/send-back", {"comment": ""})
    assert refused.status_code == 400
    assert "Say what the supplier should change" in page_text(refused)
    actions.post(f"/review/{pending.id}/send-back", {"comment": "涨幅过大"})

    actions.login_as(world["seller"])
    assert "涨幅过大" in page_text(client.get(f"/supplier/products/{product.id}/edit"))
    actions.login_as(world["buyer"])
    assert "¥128.00" in page_text(client.get(f"/products/{product.id}"))


def test_another_suppliers_product_is_not_found_on_every_listing_route(
    client, actions, session, world
):
    product = _create_through_the_form(actions, world)
    actions.login_as(world["other_seller"])

    assert client.get(f"/supplier/products/{product.id}/edit").status_code == 404
    response = actions.post(
        f"/supplier/products/{product.id}/edit", listing_form(world, retail_price="1.00")
    )
    assert response.status_code == 404
    assert actions.post(f"/supplier/products/{product.id}/archive").status_code == 404
    assert actions.post(f"/supplier/products/{product.id}/restore").status_code == 404
    session.refresh(product)
    assert product.retail_price_fen == 12800
    assert product.status == ProductStatus.PENDING_REVIEW
    assert "巴山雀舌" not in page_text(client.get("/supplier/products"))


def test_staff_and_suppliers_cannot_open_the_review_pages(client, actions, world):
    for user in (world["buyer"], world["seller"]):
        actions.login_as(user)
        assert client.get("/review/").status_code == 403


def test_the_supplier_keeps_its_profile_and_buyers_see_it(client, actions, session, world):
    actions.login_as(world["seller"])
    response = actions.post(
        "/supplier/profile",
        {
            "county_zh": "万源市",
            "households_benefited": "320",
            "cooperative_members": "85",
            "story_zh": "大巴山深处的茶园。",
            "story_en": "Tea gardens deep in the Daba mountains.",
            "contact_name": "王经理",
            "contact_phone": "0818-1234567",
            "contact_email": "tea@bashan.example",
            "address": "达州市万源市",
        },
    )
    assert response.status_code == 303
    added = actions.post(
        "/supplier/profile/certificates",
        {
            "cert-kind": "selenium_rich",
            "cert-name": "富硒茶认证",
            "cert-number": "SE-2026-01",
            "cert-issuer": "四川省农业农村厅",
            "cert-valid_from": "2026-01-01",
            "cert-valid_until": "2028-12-31",
        },
    )
    assert added.status_code == 303

    public = page_text(client.get(f"/suppliers/{world['supplier'].id}"))
    assert "Tea gardens deep in the Daba mountains." in public
    assert "富硒茶认证" in public and "Selenium-rich" in public
    assert "320" in public and "85" in public


def test_bad_profile_and_certificate_input_is_refused_and_nothing_changes(
    client, actions, session, world
):
    actions.login_as(world["seller"])

    response = actions.post(
        "/supplier/profile", {"households_benefited": "-3", "contact_email": "not-an-email"}
    )
    assert response.status_code == 400
    assert "valid e-mail" in page_text(response)

    response = actions.post(
        "/supplier/profile/certificates",
        {
            "cert-kind": "organic",
            "cert-name": "有机认证",
            "cert-valid_from": "2027-01-01",
            "cert-valid_until": "2026-01-01",
        },
    )
    assert response.status_code == 400
    assert "before its start" in page_text(response)
    assert session.scalar(sa.select(sa.func.count(SupplierCertificate.id))) == 0


def test_a_certificate_of_another_supplier_cannot_be_removed(client, actions, session, world, make):
    other = world["other_seller"]
    certificate = SupplierCertificate(
        organization_id=other.organization_id, kind=CertificateKind.ORGANIC, name="有机"
    )
    session.add(certificate)
    session.commit()
    actions.login_as(world["seller"])

    response = actions.post(f"/supplier/profile/certificates/{certificate.id}/remove")

    assert response.status_code == 303
    assert session.get(SupplierCertificate, certificate.id) is not None


def test_a_supplier_page_of_a_non_supplier_is_not_found(client, make):
    department = make.organization()
    assert client.get(f"/suppliers/{department.id}").status_code == 404
    assert client.get("/suppliers/999999").status_code == 404


# --- imports ------------------------------------------------------------------------------------


def listings_csv(rows) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    for row in rows:
        writer.writerow(row)
    return buffer.getvalue().encode("utf-8")


HEADER = ["商品编码", "商品名称", "品类", "产地", "单位", "零售价", "每箱数量", "阶梯价"]


def _upload(actions, data: bytes, filename="products.csv"):
    return actions.post(
        "/supplier/products/import",
        {"file": (io.BytesIO(data), filename)},
        content_type="multipart/form-data",
    )


def test_an_import_with_bad_lines_names_each_and_saves_nothing(client, actions, session, world):
    taken = world["other_seller"].organization_id
    actions.login_as(world["other_seller"])
    actions.post("/supplier/products/new", listing_form(world, code="OTHER-1"))
    assert session.scalar(sa.select(Product).where(Product.code == "OTHER-1")).supplier_id == taken
    actions.login_as(world["seller"])
    before = _product_count(session)
    region = world["supplier"].region.code

    response = _upload(
        actions,
        listings_csv(
            [
                HEADER,
                ["DZ-1", "富硒茶", "茶叶", region, "盒", "88.00", "", ""],
                ["DZ-2", "腊肉", "茶叶", region, "盒", "0", "", ""],
                ["DZ-3", "香肠", "茶叶", region, "盒", "12.345", "", ""],
                ["DZ-4", "笋干", "茶叶", region, "盒", "20", "10", "50:18; 10:19"],
                ["OTHER-1", "抢注", "茶叶", region, "盒", "20", "", ""],
                ["DZ-1", "重复", "茶叶", region, "盒", "20", "", ""],
            ]
        ),
    )

    assert response.status_code == 422
    text = page_text(response)
    for line in (3, 4, 5, 6, 7):
        assert f" {line} " in text
    assert "belongs to another supplier" in text
    assert "also on line 2" in text
    assert "nothing was saved" in text
    assert _product_count(session) == before


def test_a_clean_import_creates_new_products_for_review_and_updates_known_ones(
    client, actions, session, world
):
    product = _create_through_the_form(actions, world)
    session.execute(
        sa.update(Product).where(Product.id == product.id).values(status=ProductStatus.ACTIVE)
    )
    session.commit()
    region = world["supplier"].region.code

    response = _upload(
        actions,
        listings_csv(
            [
                ["商品编码", "零售价", "阶梯价"],
                ["DZ-TEA-01", "130.00", "20:118; 100:110"],
            ]
        ),
    )
    assert response.status_code == 303, page_text(response)
    session.refresh(product)
    assert product.retail_price_fen == 13000
    assert product.name_zh == "巴山雀舌"  # left out of the file: kept

    response = _upload(
        actions,
        listings_csv([HEADER, ["DZ-NEW-1", "富硒茶", "茶叶", region, "盒", "88", "", ""]]),
    )
    assert response.status_code == 303
    new = session.scalar(sa.select(Product).where(Product.code == "DZ-NEW-1"))
    assert new.status == ProductStatus.PENDING_REVIEW
    assert new.supplier_id == world["supplier"].id


def test_import_refuses_a_file_that_is_not_a_spreadsheet(client, actions, session, world):
    actions.login_as(world["seller"])
    before = _product_count(session)

    response = _upload(actions, b"\x89PNG\r\n\x1a\n" + b"\x00" * 100, "products.csv")

    assert response.status_code == 422
    assert "products.csv" in page_text(response) or "spreadsheet" in page_text(response)
    assert _product_count(session) == before
    assert session.scalar(sa.select(sa.func.count(ProductRevision.id))) == 0


def test_flask_import_products_shows_progress_and_reports(runner, session, make, tmp_path):
    supplier = make.supplier(code="DZ-CLI")
    category = make.category(name_zh="腊味")
    path = tmp_path / "products.csv"
    path.write_bytes(
        listings_csv(
            [
                HEADER,
                ["CLI-1", "腊肉", category.name_zh, supplier.region.code, "斤", "45.00", "", ""],
                ["CLI-2", "香肠", category.name_zh, supplier.region.code, "斤", "38.50", "", ""],
            ]
        )
    )

    result = runner.invoke(args=["import-products", str(path), "--supplier", "dz-cli"])

    assert result.exit_code == 0, result.output
    assert "Checking rows" in result.output and "Saving products" in result.output
    assert "2 rows, 2 new" in result.output
    products = session.scalars(sa.select(Product).where(Product.supplier_id == supplier.id)).all()
    assert {p.code for p in products} == {"CLI-1", "CLI-2"}
    assert all(p.status == ProductStatus.PENDING_REVIEW for p in products)


def test_flask_import_products_lists_bad_lines_and_exits_1(runner, session, make, tmp_path):
    supplier = make.supplier(code="DZ-CLI2")
    path = tmp_path / "products.csv"
    path.write_bytes(
        listings_csv(
            [HEADER, ["CLI-9", "腊肉", "没有的品类", supplier.region.code, "斤", "0", "", ""]]
        )
    )

    result = runner.invoke(args=["import-products", str(path), "--supplier", "DZ-CLI2"])

    assert result.exit_code == 1
    assert "line 2:" in result.output
    assert session.scalar(sa.select(Product).where(Product.code == "CLI-9")) is None
    unknown = runner.invoke(args=["import-products", str(path), "--supplier", "NOPE"])
    assert unknown.exit_code != 0 and "No supplier" in unknown.output
