"""Suppliers' listings: the one check for form and file, and the review workflow."""

from __future__ import annotations

from decimal import Decimal

import pytest
import sqlalchemy as sa
from flask_babel import force_locale

from app.models import (
    Notification,
    Product,
    ProductRevision,
    ProductStatus,
    RevisionStatus,
    Role,
    Unit,
)
from app.services import catalog, listings
from app.services.clock import utcnow
from app.services.errors import DomainError, LineErrors, NotFound

PERCENT = 10


@pytest.fixture
def world(make):
    supplier = make.supplier()
    return {
        "supplier": supplier,
        "seller": make.user(roles={Role.SUPPLIER}, organization=supplier),
        "coordinator": make.user(roles={Role.COORDINATOR}),
        "buyer": make.user(roles={Role.STAFF}),
        "category": make.category(name_zh="茶叶", slug="tea-test"),
        "other_seller": make.user(roles={Role.SUPPLIER}, organization=make.supplier()),
    }


def raw_row(world, **overrides):
    return {
        "code": "DZ-TEA-01",
        "name_zh": "巴山雀舌",
        "name_en": "Bashan tea",
        "category": "茶叶",
        "origin": str(world["supplier"].region_id),
        "unit": "盒",
        "retail_price": "128.00",
        "case_size": "20",
        "tiers": "20:118; 100:110.00",
        "lead_time_days": "3",
        **overrides,
    }


def parse(session, world, **overrides):
    return listings.parse_listing(
        raw_row(world, **overrides), listings.ListingChoices.load(session)
    )


def errors_of(session, world, **overrides) -> dict[str, str]:
    with pytest.raises(LineErrors) as caught:
        parse(session, world, **overrides)
    with force_locale("en"):
        return {name: str(message) for name, message in caught.value.errors.items()}


def test_a_good_row_becomes_a_listing_with_fen_and_decimal_tiers(session, world):
    listing = parse(session, world)

    assert listing.unit == Unit.BOX
    assert listing.retail_price_fen == 12800
    assert listing.tiers == ((Decimal(20), 11800), (Decimal(100), 11000))
    assert listing.case_size == Decimal(20)
    assert listing.category_id == world["category"].id


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"retail_price": "0"}, "retail_price", "above zero"),
        ({"retail_price": "12.345"}, "retail_price", "at most two decimals"),
        ({"retail_price": "abc"}, "retail_price", "at most two decimals"),
        ({"tiers": "100:110; 20:118"}, "tiers", "must increase"),
        ({"tiers": "20:110; 100:118"}, "tiers", "cannot cost more"),
        ({"tiers": "20-118"}, "tiers", "minimum quantity:price"),
        ({"tiers": "20:0"}, "tiers", "above zero"),
        ({"tiers": "20:130"}, "tiers", "above the retail price"),
        ({"case_size": ""}, "case_size", "need a case size"),
        ({"case_size": "2.5"}, "case_size", "whole units"),
        ({"category": "鞋子"}, "category", "category"),
        ({"unit": "吨"}, "unit", "unit"),
        ({"code": "bad code!"}, "code", "capital letters"),
        ({"name_zh": ""}, "name_zh", "required"),
        ({"name_zh": "长" * 129}, "name_zh", "At most 128"),
        ({"lead_time_days": "-1"}, "lead_time_days", "whole days"),
        # Pasted 100,000 digits: refused like any other number out of range, not a 500.
        ({"lead_time_days": "9" * 100_000}, "lead_time_days", "whole days"),
        ({"households_benefited": "9" * 100_000}, "households_benefited", "whole number"),
        ({"content_amount": "500"}, "content_amount", "neither"),
    ],
)
def test_bad_values_are_refused_with_a_message_on_their_field(
    session, world, overrides, field, message
):
    errors = errors_of(session, world, **overrides)

    assert message.lower() in errors[field].lower()


def test_every_bad_field_is_reported_at_once(session, world):
    errors = errors_of(session, world, retail_price="0", unit="", name_zh="")

    assert set(errors) == {"retail_price", "unit", "name_zh"}


def test_a_new_product_waits_unseen_for_a_coordinator(session, world):
    product, revision = listings.create(session, world["seller"], parse(session, world), utcnow())
    session.commit()

    assert product.status == ProductStatus.PENDING_REVIEW
    assert revision.status == RevisionStatus.PENDING
    assert revision.review_reasons == ["new"]
    with pytest.raises(NotFound):
        catalog.get_product_for_viewer(session, product.id, world["buyer"])
    told = session.scalars(
        sa.select(Notification).where(Notification.user_id == world["coordinator"].id)
    ).all()
    assert [note.kind for note in told] == ["listing_submitted"]


def _create_and_approve(session, world, **overrides):
    product, revision = listings.create(
        session, world["seller"], parse(session, world, **overrides), utcnow()
    )
    listings.approve(session, revision, world["coordinator"], utcnow())
    session.commit()
    return product


def test_an_approved_product_is_on_sale_and_its_supplier_is_told(session, world):
    product = _create_and_approve(session, world)

    assert catalog.get_product_for_viewer(session, product.id, world["buyer"]).name_zh == "巴山雀舌"
    assert product.search_text and "bsqs" in product.search_text
    told = session.scalars(
        sa.select(Notification.kind).where(Notification.user_id == world["seller"].id)
    ).all()
    assert told == ["listing_approved"]


def test_buyers_keep_seeing_the_approved_price_while_a_large_change_waits(session, world):
    product = _create_and_approve(session, world)
    raised = parse(session, world, retail_price="150.00", tiers="20:118; 100:110")

    revision = listings.edit(session, product, world["seller"], raised, utcnow(), PERCENT)
    session.commit()

    assert revision.status == RevisionStatus.PENDING
    assert revision.review_reasons == ["retail_price"]
    seen = catalog.get_product_for_viewer(session, product.id, world["buyer"])
    assert seen.retail_price_fen == 12800
    assert seen.status == ProductStatus.ACTIVE

    listings.approve(session, revision, world["coordinator"], utcnow())
    session.commit()
    assert (
        catalog.get_product_for_viewer(session, product.id, world["buyer"]).retail_price_fen
        == 15000
    )


def test_a_small_change_applies_at_once_and_is_recorded(session, world):
    product = _create_and_approve(session, world)
    small = parse(session, world, retail_price="135.00", description_zh="新茶上市")

    revision = listings.edit(session, product, world["seller"], small, utcnow(), PERCENT)
    session.commit()

    assert revision.status == RevisionStatus.APPROVED
    assert revision.reviewed_by_id is None
    assert product.retail_price_fen == 13500
    assert product.description_zh == "新茶上市"


def test_a_large_bulk_price_change_waits_too(session, world):
    product = _create_and_approve(session, world)
    cheaper = parse(session, world, tiers="20:90; 100:80")

    revision = listings.edit(session, product, world["seller"], cheaper, utcnow(), PERCENT)

    assert revision.review_reasons == ["bulk_prices"]
    assert [tier.unit_price_fen for tier in product.price_tiers] == [11800, 11000]


def test_a_newer_edit_withdraws_the_one_waiting(session, world):
    product = _create_and_approve(session, world)
    first = listings.edit(
        session,
        product,
        world["seller"],
        parse(session, world, retail_price="200"),
        utcnow(),
        PERCENT,
    )
    second = listings.edit(
        session,
        product,
        world["seller"],
        parse(session, world, retail_price="190"),
        utcnow(),
        PERCENT,
    )
    session.commit()
    session.refresh(first)

    assert first.status == RevisionStatus.WITHDRAWN
    assert second.status == RevisionStatus.PENDING
    with pytest.raises(DomainError, match="already decided"):
        listings.approve(session, first, world["coordinator"], utcnow())


def test_sending_back_needs_a_comment_and_leaves_buyers_what_they_saw(session, world):
    product = _create_and_approve(session, world)
    revision = listings.edit(
        session,
        product,
        world["seller"],
        parse(session, world, retail_price="300"),
        utcnow(),
        PERCENT,
    )
    with pytest.raises(DomainError) as caught:
        listings.send_back(session, revision, world["coordinator"], utcnow(), "  ")
    assert caught.value.field == "comment"

    listings.send_back(session, revision, world["coordinator"], utcnow(), "价格过高")
    session.commit()

    assert revision.status == RevisionStatus.RETURNED
    assert revision.review_comment == "价格过高"
    assert product.retail_price_fen == 12800
    assert product.status == ProductStatus.ACTIVE


def test_a_returned_new_product_goes_back_to_draft_and_resubmits_on_edit(session, world):
    product, revision = listings.create(session, world["seller"], parse(session, world), utcnow())
    listings.send_back(session, revision, world["coordinator"], utcnow(), "请补充产地")
    assert product.status == ProductStatus.DRAFT

    again = listings.edit(
        session,
        product,
        world["seller"],
        parse(session, world, county_zh="宣汉县"),
        utcnow(),
        PERCENT,
    )

    assert product.status == ProductStatus.PENDING_REVIEW
    assert again.status == RevisionStatus.PENDING
    assert product.county_zh == "宣汉县"


def test_a_supplier_cannot_edit_another_suppliers_product(session, world):
    product = _create_and_approve(session, world)

    with pytest.raises(NotFound):
        listings.edit(
            session,
            product,
            world["other_seller"],
            parse(session, world, retail_price="1.00", tiers="", case_size=""),
            utcnow(),
            PERCENT,
        )
    with pytest.raises(NotFound):
        listings.get_own_product(session, world["other_seller"], product.id)
    assert product.retail_price_fen == 12800


def test_only_coordinators_review(session, world):
    _product, revision = listings.create(session, world["seller"], parse(session, world), utcnow())

    with pytest.raises(DomainError):
        listings.approve(session, revision, world["seller"], utcnow())
    assert revision.status == RevisionStatus.PENDING


def test_a_code_is_unique_across_suppliers(session, world):
    _create_and_approve(session, world)
    with pytest.raises(DomainError) as caught:
        listings.create(session, world["other_seller"], parse(session, world), utcnow())
    assert caught.value.field == "code"


def test_archiving_takes_it_off_sale_and_restoring_puts_an_approved_product_back(session, world):
    product = _create_and_approve(session, world)

    listings.archive(session, product, world["seller"], utcnow())
    session.commit()
    with pytest.raises(NotFound):
        catalog.get_product_for_viewer(session, product.id, world["buyer"])

    listings.restore(session, product, world["seller"], utcnow())
    session.commit()
    assert product.status == ProductStatus.ACTIVE


def test_every_save_leaves_a_version_to_read_back(session, world):
    product = _create_and_approve(session, world)
    listings.edit(
        session, product, world["seller"], parse(session, world, name_en="Tea"), utcnow(), PERCENT
    )
    session.commit()

    versions = session.scalars(
        sa.select(ProductRevision.status)
        .where(ProductRevision.product_id == product.id)
        .order_by(ProductRevision.id)
    ).all()
    assert versions == [RevisionStatus.APPROVED, RevisionStatus.APPROVED]
    assert session.get(Product, product.id).name_en == "Tea"


def test_chinese_punctuation_stays_as_typed_while_full_width_digits_are_read(session, world):
    listing = parse(
        session,
        world,
        name_zh="舟山大黄鱼（养殖）",
        description_zh="富硒茶园，明前采摘；手工炒制。",
        retail_price="１２８．００",
    )

    assert listing.name_zh == "舟山大黄鱼（养殖）"
    assert listing.description_zh == "富硒茶园，明前采摘；手工炒制。"
    assert listing.retail_price_fen == 12800
