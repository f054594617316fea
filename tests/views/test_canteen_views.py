"""Canteen bulk orders through the web: sheet, upload, approval, supplier, goods-in, invoice."""

from __future__ import annotations

import io
import re
from datetime import timedelta
from decimal import Decimal

import openpyxl
import pytest
import sqlalchemy as sa
from pypdf import PdfReader

from app.models import (
    BankPayment,
    BulkOrder,
    BulkOrderStatus,
    DeliveryStatus,
    Invoice,
    OutboxMessage,
    Role,
    Unit,
)
from app.services import canteen
from app.services.clock import local_date, utcnow
from app.services.money import line_total
from app.services.pdf import find_font
from tests.conftest import IN_CI, page_text


@pytest.fixture
def world(make):
    """A canteen with a buyer and a manager, two suppliers each with a user and a bulk product."""
    kitchen = make.canteen(name_zh="机关食堂")
    buyer = make.user(roles={Role.CANTEEN_BUYER}, organization=kitchen, name="陈采购")
    manager = make.user(roles={Role.CANTEEN_MANAGER}, organization=kitchen, name="李主管")
    dazhou, zhoushan = make.supplier(name_zh="达州灯影坊"), make.supplier(name_zh="舟山渔业")
    beef = make.bulk_product(
        supplier=dazhou,
        name_zh="宣汉黄牛肉",
        unit=Unit.JIN,
        tiers=((20, 4580), (60, 4380), (120, 4180)),
        case_size="20",
    )
    fish = make.bulk_product(
        supplier=zhoushan, name_zh="舟山带鱼", unit=Unit.KG, tiers=((10, 3580),), case_size="10"
    )

    class World:
        pass

    w = World()
    w.kitchen, w.buyer, w.manager, w.beef, w.fish = kitchen, buyer, manager, beef, fish
    w.dazhou_user = make.user(roles={Role.SUPPLIER}, organization=dazhou)
    w.zhoushan_user = make.user(roles={Role.SUPPLIER}, organization=zhoushan)
    w.coordinator = make.user(roles={Role.COORDINATOR})
    return w


def in_days(days: int) -> str:
    return (local_date(utcnow()) + timedelta(days=days)).isoformat()


def orders_count(session) -> int:
    return session.scalar(sa.select(sa.func.count()).select_from(BulkOrder))


# --- the quick order sheet --------------------------------------------------------------------


def test_the_sheet_lists_bulk_products_with_case_size_minimum_and_tiers(client, actions, world):
    actions.login_as(world.buyer)
    response = client.get("/canteen/sheet")
    text = page_text(response)
    assert response.status_code == 200
    assert "宣汉黄牛肉" in text and "舟山带鱼" in text
    assert "≥60: ¥43.80" in text and "≥120: ¥41.80" in text
    html = response.get_data(as_text=True)
    assert f'name="qty-{world.beef.id}"' in html
    assert 'data-tiers="20:4580 60:4380 120:4180"' in html


def test_the_sheet_filters_by_supplier_and_by_pinyin(client, actions, world):
    actions.login_as(world.buyer)
    by_supplier = page_text(client.get(f"/canteen/sheet?supplier={world.fish.supplier_id}"))
    assert "舟山带鱼" in by_supplier and "宣汉黄牛肉" not in by_supplier
    by_initials = page_text(client.get("/canteen/sheet?q=xhhnr"))
    assert "宣汉黄牛肉" in by_initials and "舟山带鱼" not in by_initials
    assert client.get("/canteen/sheet?supplier=abc").status_code == 400


def test_the_sheet_filters_by_origin_and_by_category(client, actions, world):
    actions.login_as(world.buyer)
    by_origin = client.get(f"/canteen/sheet?region={world.beef.origin_region_id}")
    assert by_origin.status_code == 200
    assert "宣汉黄牛肉" in page_text(by_origin) and "舟山带鱼" not in page_text(by_origin)
    by_category = page_text(client.get(f"/canteen/sheet?category={world.fish.category_id}"))
    assert "舟山带鱼" in by_category and "宣汉黄牛肉" not in by_category
    both = page_text(
        client.get(
            f"/canteen/sheet?region={world.beef.origin_region_id}&category={world.fish.category_id}"
        )
    )
    assert "宣汉黄牛肉" not in both and "舟山带鱼" not in both
    for bad in ("region=abc", "category=-1", "region=1.5"):
        assert client.get(f"/canteen/sheet?{bad}").status_code == 400, bad


def test_bad_sheet_quantities_are_shown_per_row_and_nothing_is_saved(
    client, actions, world, session
):
    actions.login_as(world.buyer)
    response = actions.post(
        "/canteen/sheet", {f"qty-{world.beef.id}": "50", f"qty-{world.fish.id}": "5"}
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "请按整箱订购，每箱 20 斤（例如 40 或 60）" in page_text(response)
    assert "至少 10 千克" in page_text(response)
    assert f'name="qty-{world.beef.id}"' in html and 'value="50"' in html  # input kept
    assert orders_count(session) == 0


def test_a_good_sheet_becomes_a_draft_at_the_canteen_address(client, actions, world, session):
    actions.login_as(world.buyer)
    response = actions.post(
        "/canteen/sheet", {f"qty-{world.beef.id}": "６０", f"qty-{world.fish.id}": ""}
    )
    assert response.status_code == 303
    order = session.scalar(sa.select(BulkOrder))
    assert order.status == BulkOrderStatus.DRAFT
    assert [(line.product_id, line.quantity) for line in order.lines] == [
        (world.beef.id, Decimal(60))
    ]
    assert order.delivery_address == world.kitchen.address


def test_staff_and_suppliers_cannot_open_the_sheet(client, actions, make, world):
    for user in (make.user(roles={Role.STAFF}), world.dazhou_user, world.manager):
        actions.login_as(user)
        assert client.get("/canteen/sheet").status_code == 403


# --- uploads -----------------------------------------------------------------------------------


def upload(actions, name: str, data: bytes):
    return actions.post(
        "/canteen/sheet/upload",
        {"sheet": (io.BytesIO(data), name)},
        content_type="multipart/form-data",
    )


def test_a_clean_csv_sheet_becomes_a_draft(client, actions, world, session):
    actions.login_as(world.buyer)
    csv = f"商品编码,数量\n{world.beef.code},120\n舟山带鱼,20\n".encode()
    response = upload(actions, "sheet.csv", csv)
    assert response.status_code == 303
    order = session.scalar(sa.select(BulkOrder))
    assert {line.product_id: line.quantity for line in order.lines} == {
        world.beef.id: Decimal(120),
        world.fish.id: Decimal(20),
    }


def test_a_clean_xlsx_sheet_becomes_a_draft(client, actions, world, session):
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(["code", "quantity"])
    sheet.append([world.fish.code, 30])
    buffer = io.BytesIO()
    workbook.save(buffer)
    actions.login_as(world.buyer)
    assert upload(actions, "sheet.xlsx", buffer.getvalue()).status_code == 303
    order = session.scalar(sa.select(BulkOrder))
    assert [line.quantity for line in order.lines] == [Decimal(30)]


def test_every_bad_line_of_a_sheet_is_reported_by_number_and_nothing_is_saved(
    client, actions, world, session
):
    actions.login_as(world.buyer)
    csv = (
        "商品编码,数量\n"
        f"{world.beef.code},50\n"  # line 2: not whole cases
        "NO-SUCH,10\n"  # line 3: unknown
        f"{world.fish.code},20\n"  # line 4: fine
        f"{world.fish.code},abc\n"  # line 5: not a number
        f"{world.fish.code},30\n"  # line 6: the same product again
    ).encode()
    response = upload(actions, "sheet.csv", csv)
    assert response.status_code == 422
    rows = re.findall(r"<tr><td>(\d+)</td><td>([^<]*)</td></tr>", response.get_data(as_text=True))
    lines = {int(number): message for number, message in rows}
    assert sorted(lines) == [2, 3, 5, 6]
    assert "整箱" in lines[2] and "NO-SUCH" in lines[3] and "已在第 4 行出现" in lines[6]
    assert "下单表有错误，未保存任何内容" in page_text(response)
    assert orders_count(session) == 0


def test_reading_a_sheet_without_choosing_a_file_is_a_400_saying_so(
    client, actions, world, session
):
    actions.login_as(world.buyer)
    response = actions.post("/canteen/sheet/upload", {}, content_type="multipart/form-data")
    assert response.status_code == 400
    assert "请选择要上传的文件。" in page_text(response)
    assert orders_count(session) == 0


def test_a_sheet_with_a_wrong_header_or_too_large_is_refused(client, actions, world, session):
    actions.login_as(world.buyer)
    wrong = upload(actions, "sheet.csv", "货号,件数\nA,1\n".encode())
    assert wrong.status_code == 422
    assert "第一行须为列名" in page_text(wrong)
    huge = upload(actions, "sheet.csv", b"code,quantity\n" + b"x" * (20 * 1024 * 1024))
    assert huge.status_code == 413
    assert "文件超过 2 MB" in page_text(huge)
    picture = upload(actions, "sheet.xlsx", b"\x89PNG\r\n\x1a\n" + b"\0" * 100)
    assert picture.status_code == 422
    assert orders_count(session) == 0


# --- the order: details, submission, approval ---------------------------------------------------


def draft(make, world, lines=None):
    return make.bulk_order(world.buyer, lines or [(world.beef, "120")], submit=False)


def shipped_fish(make, world):
    """20 kg of Zhoushan fish, confirmed and shipped by its supplier: waiting for goods-in."""
    (delivery,) = make.bulk_order(world.buyer, [(world.fish, "20")]).deliveries
    canteen.confirm(make.session, delivery, world.zhoushan_user, utcnow())
    canteen.ship(make.session, delivery, world.zhoushan_user, utcnow(), "ZS-1")
    make.session.commit()
    return delivery


def test_submitting_with_a_date_too_soon_is_refused_and_stays_a_draft(
    client, actions, make, world, session
):
    order = draft(make, world)
    actions.login_as(world.buyer)
    form = {"delivery_address": "食堂", "po_reference": "PO-9", "notes": "", "then": "submit"}
    for day, message in [(-1, "送货日期已过"), (1, "来不及备货")]:
        response = actions.post(
            f"/canteen/orders/{order.id}", {**form, "delivery_date": in_days(day)}
        )
        assert response.status_code == 422, day
        assert message in page_text(response)
        assert 'value="PO-9"' in response.get_data(as_text=True)  # what was typed is kept
    session.refresh(order)
    assert order.status == BulkOrderStatus.DRAFT
    assert order.submitted_at is None and all(line.unit_price_fen is None for line in order.lines)


def test_a_refused_save_and_submit_keeps_nothing_of_the_edit(client, actions, make, world, session):
    """The "Save and submit" button is one step: when the submission is refused, the edit is
    not saved either (it is shown again as typed, with the reason)."""
    order = draft(make, world)
    actions.login_as(world.buyer)

    response = actions.post(
        f"/canteen/orders/{order.id}",
        {
            "delivery_date": in_days(-1),
            "delivery_address": "改过的地址",
            "po_reference": "PO-CHANGED",
            "notes": "",
            f"qty-{world.beef.id}": "140",
            "then": "submit",
        },
    )

    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert "送货日期已过" in page_text(response)
    assert 'value="PO-CHANGED"' in html and 'value="140"' in html
    session.refresh(order)
    assert order.status == BulkOrderStatus.DRAFT
    assert order.po_reference == "PO-2026-001" and order.delivery_address != "改过的地址"
    assert [line.quantity for line in order.lines] == [Decimal(120)]


@pytest.mark.parametrize("key", ["qty-²", "qty-" + "9" * 30])
def test_a_quantity_key_that_is_not_a_product_id_is_ignored(
    client, actions, make, world, session, key
):
    """A key "qty-²" passes str.isdigit() but not int(), and 30 digits fit no database integer:
    both were a 500."""
    order = draft(make, world)
    actions.login_as(world.buyer)

    sheet = actions.post("/canteen/sheet", {key: "5", f"qty-{world.fish.id}": "10"})
    edit = actions.post(
        f"/canteen/orders/{order.id}",
        {"delivery_date": in_days(7), "delivery_address": "食堂", key: "5"},
    )

    assert sheet.status_code == 303 and edit.status_code == 303
    session.refresh(order)
    assert [line.product_id for line in order.lines] == [world.beef.id]


def test_a_large_order_waits_for_a_manager_who_did_not_place_it(
    client, actions, make, world, session
):
    order = draft(make, world)  # 120 斤 x ¥41.80 = ¥5,016.00 > ¥5,000.00
    actions.login_as(world.buyer)
    response = actions.post(f"/canteen/orders/{order.id}/submit")
    assert response.status_code == 303
    page = page_text(client.get(f"/canteen/orders/{order.id}"))
    assert "待审批" in page and "¥5,016.00" in page

    # A manager who is also the buyer cannot approve their own order.
    both = make.user(roles={Role.CANTEEN_BUYER, Role.CANTEEN_MANAGER}, organization=world.kitchen)
    own = make.bulk_order(both, [(world.beef, "120")])
    actions.login_as(both)
    response = actions.post(f"/canteen/orders/{own.id}/approve")
    assert response.status_code == 403
    assert "不能审批自己下的订单" in page_text(response)
    session.refresh(own)
    assert own.status == BulkOrderStatus.AWAITING_APPROVAL

    actions.login_as(world.manager)
    # Its date can still be met: Approve is offered, with no warning beside it.
    page = client.get(f"/canteen/orders/{order.id}").text
    assert 'id="approval-blocker"' not in page and f"/canteen/orders/{order.id}/approve" in page
    actions.post(f"/canteen/orders/{order.id}/approve")
    session.refresh(order)
    assert order.status == BulkOrderStatus.RELEASED
    assert [d.supplier_id for d in order.deliveries] == [world.beef.supplier_id]


def test_an_order_whose_delivery_date_passed_while_waiting_is_not_approved(
    client, actions, make, world, session
):
    # Submitted a month ago for delivery a week later; nobody approved it since.
    order = make.bulk_order(world.buyer, [(world.beef, "120")], now=utcnow() - timedelta(days=30))
    assert order.status == BulkOrderStatus.AWAITING_APPROVAL
    client.set_cookie("lang", "en")
    actions.login_as(world.manager)
    warning = (
        "This order cannot be approved as it stands: The delivery date is in the past. "
        "Reject it, or have the buyer reopen it and choose a new delivery date."
    )
    # The manager is told instead of being offered Approve, and once more if it is sent anyway.
    page = client.get(f"/canteen/orders/{order.id}").text
    assert page_text(client.get(f"/canteen/orders/{order.id}")).count(warning) == 1
    assert f"/canteen/orders/{order.id}/approve" not in page
    response = actions.post(f"/canteen/orders/{order.id}/approve")
    assert response.status_code == 409
    assert page_text(response).count(warning) == 1
    status = re.search(r'id="order-status">([^<]*)<', response.get_data(as_text=True))
    assert status.group(1) == "Awaiting approval"
    session.refresh(order)
    assert (order.status, order.approved_by_id, order.deliveries) == (
        BulkOrderStatus.AWAITING_APPROVAL,
        None,
        [],
    )
    # The manager can still send it back.
    actions.post(f"/canteen/orders/{order.id}/reject", {"reason": "日期已过，请重新下单"})
    session.refresh(order)
    assert order.status == BulkOrderStatus.REJECTED


def history(response) -> str:
    found = re.search(r'<ol[^>]*id="history".*?</ol>', response.get_data(as_text=True), re.S)
    assert found, "no history on the page"
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", found.group(0)))


def test_the_order_page_shows_who_moved_it_from_what_to_what_and_why(
    client, actions, make, world, session
):
    order = make.bulk_order(world.buyer, [(world.beef, "120")])  # above the threshold
    actions.login_as(world.manager)
    actions.post(f"/canteen/orders/{order.id}/reject", {"reason": "数量太多"})
    actions.login_as(world.buyer)
    actions.post(f"/canteen/orders/{order.id}/cancel", {"reason": "改到下周再订"})
    session.refresh(order)
    assert order.status == BulkOrderStatus.CANCELLED

    events = history(client.get(f"/canteen/orders/{order.id}"))
    # Newest first: cancelled by the buyer, rejected by the manager, submitted, created.
    assert re.search(
        r"已取消 \(已驳回 → 已取消\) · 陈采购 “改到下周再订”.*"
        r"已驳回 \(待审批 → 已驳回\) · 李主管 “数量太多”.*"
        r"已提交 \(草稿 → 待审批\) · 陈采购.*"
        r"已创建草稿 · 陈采购",
        events,
    ), events


def test_a_submitted_order_is_reopened_as_a_draft(client, actions, make, world, session):
    order = make.bulk_order(world.buyer, [(world.fish, "20")])
    assert order.status == BulkOrderStatus.RELEASED
    actions.login_as(world.buyer)
    response = actions.post(f"/canteen/orders/{order.id}/reopen")
    assert response.status_code == 303
    assert response.headers["Location"].endswith(f"/canteen/orders/{order.id}")
    session.refresh(order)
    assert order.status == BulkOrderStatus.DRAFT
    assert [d.status for d in order.deliveries] == [DeliveryStatus.WITHDRAWN]
    page = client.get(response.headers["Location"])
    assert "草稿" in page_text(page)
    assert f'name="qty-{world.fish.id}"' in page.get_data(as_text=True)  # editable again


def test_copying_an_order_makes_a_new_draft_with_the_same_quantities(
    client, actions, make, world, session
):
    source = make.bulk_order(world.buyer, [(world.beef, "60"), (world.fish, "30")])
    actions.login_as(world.buyer)
    response = actions.post(f"/canteen/orders/{source.id}/copy")
    assert response.status_code == 303
    copy = session.scalar(sa.select(BulkOrder).where(BulkOrder.id != source.id))
    assert response.headers["Location"].endswith(f"/canteen/orders/{copy.id}")
    assert copy.status == BulkOrderStatus.DRAFT and copy.created_by_id == world.buyer.id
    assert sorted((line.product_id, line.quantity) for line in copy.lines) == sorted(
        [(world.beef.id, Decimal(60)), (world.fish.id, Decimal(30))]
    )
    assert copy.delivery_date is None
    assert copy.number in page_text(client.get(response.headers["Location"]))
    session.refresh(source)
    assert source.status == BulkOrderStatus.RELEASED  # the original is untouched


def test_the_approval_threshold_comes_from_the_configuration(
    app, client, actions, make, world, session, monkeypatch
):
    order = draft(make, world, [(world.fish, "20")])  # 20 kg x ¥35.80 = ¥716.00
    monkeypatch.setitem(app.config, "CANTEEN_APPROVAL_THRESHOLD_FEN", 70_000)
    actions.login_as(world.buyer)
    assert actions.post(f"/canteen/orders/{order.id}/submit").status_code == 303
    session.refresh(order)
    assert (order.status, order.total_fen) == (BulkOrderStatus.AWAITING_APPROVAL, 71_600)
    page = page_text(client.get(f"/canteen/orders/{order.id}"))
    assert "¥716.00" in page and "¥700.00" in page


def test_rejecting_needs_a_reason_and_the_buyer_sees_it(client, actions, make, world, session):
    order = make.bulk_order(world.buyer, [(world.beef, "120")])
    actions.login_as(world.manager)
    actions.post(f"/canteen/orders/{order.id}/reject", {"reason": ""})
    session.refresh(order)
    assert order.status == BulkOrderStatus.AWAITING_APPROVAL
    actions.post(f"/canteen/orders/{order.id}/reject", {"reason": "数量太多"})
    actions.login_as(world.buyer)
    page = page_text(client.get(f"/canteen/orders/{order.id}"))
    assert "食堂负责人已驳回：数量太多" in page


def test_another_canteen_sees_nothing_of_the_order(client, actions, make, world):
    order = make.bulk_order(world.buyer, [(world.fish, "20")])
    other = make.user(roles={Role.CANTEEN_BUYER, Role.CANTEEN_MANAGER}, organization=make.canteen())
    actions.login_as(other)
    assert client.get(f"/canteen/orders/{order.id}").status_code == 404
    assert actions.post(f"/canteen/orders/{order.id}/reopen").status_code == 404
    assert order.number not in page_text(client.get("/canteen/orders"))
    actions.login_as(world.coordinator)
    assert client.get(f"/canteen/orders/{order.id}").status_code == 200


# --- suppliers ----------------------------------------------------------------------------------


def test_a_supplier_sees_only_its_own_part_and_prices(client, actions, make, world):
    order = make.bulk_order(world.buyer, [(world.beef, "60"), (world.fish, "20")])
    beef_part, fish_part = sorted(order.deliveries, key=lambda d: d.supplier_id)
    if beef_part.supplier_id != world.beef.supplier_id:
        beef_part, fish_part = fish_part, beef_part
    actions.login_as(world.dazhou_user)
    listing = page_text(client.get("/supplier/deliveries"))
    assert order.number in listing
    page = page_text(client.get(f"/supplier/deliveries/{beef_part.id}"))
    assert "宣汉黄牛肉" in page and "舟山带鱼" not in page and "¥35.80" not in page
    assert client.get(f"/supplier/deliveries/{fish_part.id}").status_code == 404
    assert actions.post(f"/supplier/deliveries/{fish_part.id}/confirm").status_code == 404
    response = actions.post(
        f"/supplier/deliveries/{fish_part.id}/ship", {"delivery_note_number": "X"}
    )
    assert response.status_code == 404
    assert fish_part.status == DeliveryStatus.NEW


def test_offering_more_than_ordered_is_refused_beside_the_line(client, actions, make, world):
    order = make.bulk_order(world.buyer, [(world.fish, "20")])
    (delivery,) = order.deliveries
    actions.login_as(world.zhoushan_user)
    line = delivery.lines[0]
    response = actions.post(
        f"/supplier/deliveries/{delivery.id}/confirm", {f"available-{line.id}": "30"}
    )
    assert response.status_code == 400
    assert "只能提议少于订购的数量" in page_text(response)
    assert 'value="30"' in response.get_data(as_text=True)


# --- the whole path, with the amounts to the fen ------------------------------------------------


def test_sheet_to_paid_invoice_with_a_reduction_and_a_short_weight(
    client, actions, make, world, session
):
    # The buyer: two suppliers, one order above the approval amount.
    actions.login_as(world.buyer)
    response = actions.post(
        "/canteen/sheet", {f"qty-{world.beef.id}": "120", f"qty-{world.fish.id}": "20"}
    )
    order_url = response.headers["Location"]
    response = actions.post(
        order_url,
        {
            "delivery_date": in_days(7),
            "delivery_address": world.kitchen.address,
            "po_reference": "PO-2026-118",
            "notes": "早上 8 点前送到",
            "then": "submit",
        },
    )
    assert response.status_code == 303
    order = session.scalar(sa.select(BulkOrder))
    # 120 斤 at the 120 tier (¥41.80) + 20 kg at ¥35.80.
    assert order.total_fen == 120 * 4180 + 20 * 3580 == 573_200
    assert order.status == BulkOrderStatus.AWAITING_APPROVAL

    actions.login_as(world.manager)
    actions.post(f"/canteen/orders/{order.id}/approve")
    beef_part = next(d for d in order.deliveries if d.supplier_id == world.beef.supplier_id)
    fish_part = next(d for d in order.deliveries if d.supplier_id == world.fish.supplier_id)

    # Dazhou can only send 100 斤; the buyer accepts at the frozen price.
    actions.login_as(world.dazhou_user)
    beef_line = beef_part.lines[0]
    actions.post(
        f"/supplier/deliveries/{beef_part.id}/confirm",
        {f"available-{beef_line.id}": "100", "note": "库存不足"},
    )
    actions.login_as(world.buyer)
    assert "供应商可供 100" in page_text(client.get(order_url))
    actions.post(f"/canteen/orders/{order.id}/lines/{beef_line.id}/accept")
    session.refresh(order)
    assert order.total_fen == 100 * 4180 + 20 * 3580 == 489_600

    actions.login_as(world.zhoushan_user)
    actions.post(f"/supplier/deliveries/{fish_part.id}/confirm")
    actions.post(f"/supplier/deliveries/{fish_part.id}/ship", {"delivery_note_number": "ZS-7"})
    actions.login_as(world.dazhou_user)
    actions.post(f"/supplier/deliveries/{beef_part.id}/ship", {"delivery_note_number": "DZ-1"})
    note = page_text(client.get(f"/supplier/deliveries/{beef_part.id}/note"))
    assert "DZ-1" in note and "PO-2026-118" in note

    # Goods-in: 98.65 斤 of beef accepted, 1.35 refused; the fish as ordered.
    actions.login_as(world.manager)
    response = actions.post(
        f"/canteen/deliveries/{beef_part.id}/goods-in",
        {
            f"received-{beef_line.id}": "98.65",
            f"rejected-{beef_line.id}": "1.35",
            f"note-{beef_line.id}": "1.35 斤不新鲜",
        },
    )
    assert response.status_code == 303
    invoice = session.scalar(sa.select(Invoice).where(Invoice.delivery_id == beef_part.id))
    # 98.65 x ¥41.80 = ¥4,123.570 -> ¥4,123.57
    assert invoice.total_fen == line_total(4180, Decimal("98.65")) == 412_357
    fish_line = fish_part.lines[0]
    actions.post(f"/canteen/deliveries/{fish_part.id}/goods-in", {f"received-{fish_line.id}": "20"})
    session.refresh(order)
    assert order.status == BulkOrderStatus.COMPLETED

    # Finance pays in two transfers; the second settles it to the fen.
    actions.login_as(world.coordinator)
    today = local_date(utcnow()).isoformat()
    actions.post(
        f"/invoices/{invoice.id}/payments",
        {"paid_on": today, "reference": "ICBC-1", "amount": "4000"},
    )
    page = page_text(client.get(f"/invoices/{invoice.id}"))
    assert "部分付款" in page and "¥123.57" in page
    too_much = actions.post(
        f"/invoices/{invoice.id}/payments",
        {"paid_on": today, "reference": "ICBC-2", "amount": "123.58"},
    )
    assert too_much.status_code == 422
    assert "超过了尚未支付的 ¥123.57" in page_text(too_much)
    actions.post(
        f"/invoices/{invoice.id}/payments",
        {"paid_on": today, "reference": "ICBC-2", "amount": "123.57"},
    )
    session.refresh(invoice)
    assert invoice.outstanding_fen == 0
    assert sum(p.amount_fen for p in session.scalars(sa.select(BankPayment))) == 412_357
    assert "已付款" in page_text(client.get(f"/invoices/{invoice.id}"))

    # The supplier sees its invoice; the other supplier does not.
    actions.login_as(world.dazhou_user)
    assert client.get(f"/invoices/{invoice.id}").status_code == 200
    actions.login_as(world.zhoushan_user)
    assert client.get(f"/invoices/{invoice.id}").status_code == 404

    # Everyone was told by e-mail (kept in the outbox: no mail server in tests).
    subjects = [m.subject for m in session.scalars(sa.select(OutboxMessage))]
    assert any("等待您审批" in s for s in subjects)
    assert any("新的食堂订单" in s for s in subjects)
    assert any("已发出订单" in s for s in subjects)


def test_a_second_sign_off_is_told_it_was_already_done(client, actions, make, world, session):
    delivery = shipped_fish(make, world)
    line = delivery.lines[0]
    other_manager = make.user(roles={Role.CANTEEN_MANAGER}, organization=world.kitchen)
    actions.login_as(world.manager)
    form = actions.post(f"/canteen/deliveries/{delivery.id}/goods-in")  # fetched before...
    assert form.status_code == 400  # (nothing entered: refused, nothing written)
    actions.login_as(other_manager)
    actions.post(f"/canteen/deliveries/{delivery.id}/goods-in", {f"received-{line.id}": "19.5"})
    actions.login_as(world.manager)
    late = actions.post(
        f"/canteen/deliveries/{delivery.id}/goods-in", {f"received-{line.id}": "20"}
    )
    assert late.status_code == 303
    assert "现在不能验收" in page_text(client.get(late.headers["Location"]))
    invoices = session.scalars(sa.select(Invoice)).all()
    assert [i.total_fen for i in invoices] == [line_total(3580, Decimal("19.5"))]


def test_goods_in_refuses_negative_and_wild_quantities_without_a_reason(
    client, actions, make, world, session
):
    delivery = shipped_fish(make, world)
    line = delivery.lines[0]
    actions.login_as(world.manager)
    url = f"/canteen/deliveries/{delivery.id}/goods-in"
    negative = actions.post(url, {f"received-{line.id}": "-1"})
    assert negative.status_code == 400 and "不小于零" in page_text(negative)
    wild = actions.post(url, {f"received-{line.id}": "200"})
    assert wild.status_code == 400 and "多出 10% 以上" in page_text(wild)
    assert 'value="200"' in wild.get_data(as_text=True)
    assert session.scalar(sa.select(sa.func.count()).select_from(Invoice)) == 0
    explained = actions.post(url, {f"received-{line.id}": "22", f"note-{line.id}": "多送两公斤"})
    assert explained.status_code == 303


def test_the_invoice_pdf_has_the_chinese_lines_and_the_total(client, actions, make, world):
    if find_font(None) is None:
        if IN_CI:
            pytest.fail("No CJK font on the CI machine: make browser-deps installs fonts-noto-cjk")
        pytest.skip("no CJK font installed")
    delivery = shipped_fish(make, world)
    session = make.session
    invoice = canteen.receive(
        session,
        delivery,
        world.manager,
        utcnow(),
        {delivery.lines[0].id: canteen.ReceivedLine("19.85")},
        canteen.CanteenPolicy(),
    )
    session.commit()
    actions.login_as(world.manager)
    response = client.get(f"/invoices/{invoice.id}.pdf")
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    text = PdfReader(io.BytesIO(response.data)).pages[0].extract_text()
    assert "舟山带鱼" in text and invoice.number in text
    assert "¥710.63" in text  # 19.85 kg x ¥35.80 = ¥710.63


def test_xlsx_export_has_the_canteens_lines_only(client, actions, make, world):
    mine = make.bulk_order(world.buyer, [(world.fish, "20")])
    other_buyer = make.user(roles={Role.CANTEEN_BUYER}, organization=make.canteen())
    make.bulk_order(other_buyer, [(world.beef, "40")])
    actions.login_as(world.buyer)
    response = client.get("/canteen/orders/export.xlsx")
    assert response.status_code == 200
    rows = list(
        openpyxl.load_workbook(io.BytesIO(response.data)).active.iter_rows(values_only=True)
    )
    cells = [str(cell) for row in rows for cell in row if cell is not None]
    assert mine.number in cells and "舟山带鱼" in cells and "宣汉黄牛肉" not in cells


def test_the_list_and_the_export_filter_by_delivery_date(client, actions, make, world):
    today = local_date(utcnow())
    early = make.bulk_order(
        world.buyer, [(world.fish, "20")], delivery_date=today + timedelta(days=7)
    )
    late = make.bulk_order(
        world.buyer, [(world.beef, "40")], delivery_date=today + timedelta(days=14)
    )
    actions.login_as(world.buyer)

    def listed(query):
        return {o.number for o in (early, late) if o.number in page_text(client.get(query))}

    def exported(query):
        response = client.get(query)
        assert response.status_code == 200
        sheet = openpyxl.load_workbook(io.BytesIO(response.data)).active
        cells = {str(cell) for row in sheet.iter_rows(values_only=True) for cell in row}
        return {o.number for o in (early, late) if o.number in cells}

    for path, found in (("/canteen/orders", listed), ("/canteen/orders/export.xlsx", exported)):
        assert found(path) == {early.number, late.number}
        assert found(f"{path}?from={in_days(8)}") == {late.number}
        assert found(f"{path}?to={in_days(13)}") == {early.number}
        assert found(f"{path}?from={in_days(7)}&to={in_days(7)}") == {early.number}  # inclusive
        assert found(f"{path}?from={in_days(15)}") == set()
        for bad in ("from=2026-02-30", "to=27.11.2026", "from=tomorrow"):
            assert client.get(f"{path}?{bad}").status_code == 400, (path, bad)


def test_the_goods_in_tolerance_and_ceiling_come_from_the_configuration(
    app, client, actions, make, world, session, monkeypatch
):
    delivery = shipped_fish(make, world)
    line = delivery.lines[0]
    url = f"/canteen/deliveries/{delivery.id}/goods-in"
    monkeypatch.setitem(app.config, "GOODS_IN_TOLERANCE_PERCENT", 0)
    monkeypatch.setitem(app.config, "GOODS_IN_MAX_PERCENT", 150)
    actions.login_as(world.manager)

    one_gram_over = actions.post(url, {f"received-{line.id}": "20.001"})
    assert one_gram_over.status_code == 400
    assert "比订购的 20 多出 0% 以上：请说明原因。" in page_text(one_gram_over)
    client.set_cookie("lang", "en")
    past_ceiling = actions.post(url, {f"received-{line.id}": "30.001", f"note-{line.id}": "多送"})
    assert past_ceiling.status_code == 400
    assert "cannot be more than 30 (150% of the 20 ordered)" in page_text(past_ceiling)
    assert session.scalar(sa.select(sa.func.count()).select_from(Invoice)) == 0

    at_ceiling = actions.post(url, {f"received-{line.id}": "30", f"note-{line.id}": "多送，照收"})
    assert at_ceiling.status_code == 303
    invoice = session.scalar(sa.select(Invoice))
    assert invoice.total_fen == 30 * 3580


def test_the_admin_reads_the_outbox_and_suppliers_their_notifications(client, actions, make, world):
    order = make.bulk_order(world.buyer, [(world.fish, "20")])
    actions.login_as(make.user(roles={Role.ADMIN}))
    outbox = page_text(client.get("/admin/outbox"))
    assert world.zhoushan_user.email in outbox and order.number in outbox
    actions.login_as(world.zhoushan_user)
    inbox = page_text(client.get("/notifications"))
    assert f"新的食堂订单 {order.number}" in inbox
    assert "list-group-item-info" in client.get("/notifications").get_data(as_text=True)
    actions.post("/notifications/read")
    assert "list-group-item-info" not in client.get("/notifications").get_data(as_text=True)


def test_with_a_mail_server_the_manager_is_mailed_as_the_buyer_submits(
    app, client, actions, make, world, session, smtp_server, monkeypatch
):
    inbox, settings = smtp_server
    monkeypatch.setitem(app.config, "MAIL_SERVER", settings.server)
    monkeypatch.setitem(app.config, "MAIL_PORT", settings.port)
    order = draft(make, world)
    actions.login_as(world.buyer)
    assert actions.post(f"/canteen/orders/{order.id}/submit").status_code == 303
    [(recipients, message)] = inbox.messages
    assert recipients == [world.manager.email]
    assert f"大宗订单 {order.number}（¥5,016.00）等待您审批" in message["Subject"]
    assert f"/canteen/orders/{order.id}" in message.get_content()
    [row] = session.scalars(sa.select(OutboxMessage)).all()
    session.refresh(row)
    assert row.sent_at is not None
