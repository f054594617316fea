import pytest
from flask_babel import force_locale

from app.models import ContentUnit, ProductStatus, Unit
from app.services import labels
from app.services.labels import LabelRequestError


@pytest.fixture(autouse=True)
def _request(app):
    # Labels link to product pages, which url_for builds inside a request.
    with app.test_request_context():
        yield


def test_choices_read_ids_with_and_without_a_number_of_copies():
    assert labels.parse_choices(["12", "15:3", " 7:30 "]) == {12: 1, 15: 3, 7: 30}


def test_a_bare_id_takes_its_copies_from_the_number_box_beside_it():
    assert labels.parse_choices(["12", "15"], {12: "4"}) == {12: 4, 15: 1}
    # A number written into the value itself wins over the box.
    assert labels.parse_choices(["12:2"], {12: "9"}) == {12: 2}


def test_a_product_chosen_twice_gets_the_copies_of_both_in_first_chosen_order():
    assert list(labels.parse_choices(["15", "12:2", "15:3"]).items()) == [(15, 4), (12, 2)]


@pytest.mark.parametrize(
    ("value", "names"),
    [
        ("abc", "“abc” is not a product number"),
        ("0", "“0” is not a product number"),
        ("-3", "“-3” is not a product number"),
        ("", "“” is not a product number"),
        ("1" * 40, "“11111111111111111111…” is not a product number"),
        ("١٢", "is not a product number"),  # Arabic-Indic digits: isdigit() but not ours
        ("12:0", "from 1 to 30 (product 12: “0”)"),
        ("12:31", "from 1 to 30 (product 12: “31”)"),
        ("12:2.5", "from 1 to 30 (product 12: “2.5”)"),
        ("12:", "from 1 to 30 (product 12: “”)"),
        ("12:3:4", "from 1 to 30 (product 12: “3:4”)"),
    ],
)
def test_a_value_that_cannot_be_read_is_refused_with_what_was_wrong(value, names):
    with force_locale("en"):
        with pytest.raises(LabelRequestError) as refused:
            labels.parse_choices([value])
        assert refused.value.status_code == 400
        assert names in str(refused.value.message)


def test_a_bad_number_box_is_refused_only_for_a_ticked_product():
    with force_locale("en"), pytest.raises(LabelRequestError, match="product 12: “lots”"):
        labels.parse_choices(["12"], {12: "lots"})
    assert labels.parse_choices(["12"], {13: "lots"}) == {12: 1}


def test_more_labels_than_one_print_run_are_refused():
    assert sum(labels.parse_choices([f"{n}:30" for n in range(1, 11)]).values()) == 300
    with force_locale("en"), pytest.raises(LabelRequestError, match="At most 300 labels"):
        labels.parse_choices([f"{n}:30" for n in range(1, 11)] + ["99"])
    # Refused by their number alone, before any is read.
    with force_locale("en"), pytest.raises(LabelRequestError, match="301 were asked for"):
        labels.parse_choices(["x"] * 301)


def test_choices_encode_back_to_the_values_they_were_read_from():
    chosen = {12: 1, 15: 3}
    assert labels.encode_choices(chosen) == ["12", "15:3"]
    assert labels.parse_choices(labels.encode_choices(chosen)) == chosen


def test_a_label_says_name_origin_supplier_price_per_unit_and_links_to_the_public_site(
    app, session, make
):
    region = make.region(name_zh="达州")
    supplier = make.supplier(region=region, name_zh="万源市巴山粮油加工有限公司")
    oil = make.product(
        supplier=supplier,
        code="DZ-OIL",
        name_zh="万源菜籽油",
        name_en="Wanyuan Rapeseed Oil",
        county_zh="万源市",
        unit=Unit.BOTTLE,
        retail_price_fen=6800,
        content_amount=5000,
        content_unit=ContentUnit.MILLILITRE,
    )
    sheet = labels.build_sheet(session, {oil.id: 1}, "https://shop.zhoushan.example/")
    (label,) = sheet.labels
    assert (label.code, label.name_zh, label.name_en) == (
        "DZ-OIL",
        "万源菜籽油",
        "Wanyuan Rapeseed Oil",
    )
    assert (label.region_zh, label.county_zh) == ("达州", "万源市")
    assert label.supplier_zh == "万源市巴山粮油加工有限公司"
    # SITE_URL, not the address the request came in on (http://localhost here).
    assert label.url == f"https://shop.zhoushan.example/products/{oil.id}"
    with force_locale("zh_CN"):
        assert label.price_text == "¥68.00 / 瓶"
        assert label.reference_text == "¥13.60 / 升"  # 5 litres for ¥68
    with force_locale("en"):
        assert label.price_text == "¥68.00 / bottle"


def test_a_kg_price_is_also_given_per_jin_and_a_jin_price_needs_no_reference(session, make):
    beef = make.product(unit=Unit.KG, retail_price_fen=7600)
    fish = make.product(unit=Unit.JIN, retail_price_fen=3800)
    sheet = labels.build_sheet(session, {beef.id: 1, fish.id: 1}, "http://shanhai.test")
    with force_locale("zh_CN"):
        assert [(lb.price_text, lb.reference_text) for lb in sheet.labels] == [
            ("¥76.00 / 千克", "¥38.00 / 斤"),
            ("¥38.00 / 斤", ""),
        ]


def test_each_copy_is_a_label_in_the_order_chosen(session, make):
    first, second = make.product(), make.product()
    sheet = labels.build_sheet(session, {second.id: 3, first.id: 1}, "http://shanhai.test")
    assert [lb.product_id for lb in sheet.labels] == [second.id] * 3 + [first.id]
    assert sheet.missing == []


def test_products_not_on_sale_are_left_out_and_named(session, make):
    on_sale = make.product()
    draft = make.product(status=ProductStatus.DRAFT)
    archived = make.product(status=ProductStatus.ARCHIVED)
    closed_supplier = make.supplier(active=False)
    of_closed_supplier = make.product(supplier=closed_supplier)
    chosen = {draft.id: 1, on_sale.id: 2, archived.id: 1, of_closed_supplier.id: 1, 999_999: 1}
    sheet = labels.build_sheet(session, chosen, "http://shanhai.test")
    assert [lb.product_id for lb in sheet.labels] == [on_sale.id, on_sale.id]
    assert sheet.missing == [draft.id, archived.id, of_closed_supplier.id, 999_999]


@pytest.mark.parametrize(
    ("count", "pages"), [(1, [1]), (21, [21]), (22, [21, 1]), (45, [21, 21, 3])]
)
def test_labels_fill_pages_of_twenty_one(session, make, count, pages):
    products = [make.product() for _ in range((count + 29) // 30)]
    chosen = {}
    left = count
    for product in products:
        chosen[product.id] = min(30, left)
        left -= chosen[product.id]
    sheet = labels.build_sheet(session, chosen, "http://shanhai.test")
    assert [len(page) for page in sheet.pages] == pages
