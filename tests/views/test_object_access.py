"""Object-level access: by id, nobody reaches another's retail order or cart, another canteen's
bulk order, delivery or invoice, another supplier's delivery, product, photo or certificate.

Each intruder holds the role the page is for, and objects of their own, so it is the object
check that answers, not the role check. A refused request gets exactly the answer an id that
does not exist gets (404 for most: ids confirm nothing), and changes nothing in the database.

Every route taking an id is either checked here or declared shared on purpose, with the reason:
a new id-taking route fails the first test until it is one or the other.
"""

from __future__ import annotations

import io
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

import pytest
import sqlalchemy as sa

from app.models import (
    BulkOrderStatus,
    CertificateKind,
    DeliveryStatus,
    Invoice,
    Notification,
    ProductPhoto,
    ProductStatus,
    Role,
    SupplierCertificate,
)
from app.models.base import Base
from app.services import accounts, canteen, cart, notify
from app.services.clock import local_date, utcnow
from tests.conftest import page_text
from tests.helpers import cheap_password_hash
from tests.services.test_photos import jpeg_file
from tests.test_access import bulk_delivery

#: An id no object has.
MISSING_ID = 987_654_321

#: Routes taking an id where any user allowed on the route may name anyone's object, and why.
SHARED_BY_DESIGN = {
    "catalog.product_detail": "products on sale are public; one that is not is shown only to "
    "its supplier and the stewards (checked below)",
    "catalog.supplier_detail": "active suppliers' profiles are public",
    "shop.add_to_cart": "any product on sale may go into one's own cart",
    "counter.act": "the counter serves every buyer's order",
    "counter.refund": "the counter refunds every buyer's order",
    "invoices.record_payment": "the stewards settle every supplier's invoices",
    "invoices.record_refund": "the stewards settle every supplier's invoices",
    "invoices.credit": "the stewards correct every supplier's invoices",
    "review.detail": "the stewards review every supplier's versions",
    "review.approve": "the stewards review every supplier's versions",
    "review.send_back": "the stewards review every supplier's versions",
    "pledges.detail": "pledges are the programme's, kept by the stewards",
    "pledges.edit": "pledges are the programme's, kept by the stewards",
    "pledges.ledger": "pledges are the programme's, kept by the stewards",
    "pledges.report": "pledges are the programme's, kept by the stewards",
    "pledges.export_csv": "pledges are the programme's, kept by the stewards",
    "pledges.export_xlsx": "pledges are the programme's, kept by the stewards",
    "pledges.export_summary_csv": "pledges are the programme's, kept by the stewards",
    "pledges.import_detail": "offline sales imports are the programme's, kept by the stewards",
    "pledges.commit_import": "offline sales imports are the programme's, kept by the stewards",
    "pledges.discard_import": "offline sales imports are the programme's, kept by the stewards",
    "pledges.reverse_import": "offline sales imports are the programme's, kept by the stewards",
    "admin.edit_user": "the administrator manages every account",
    "admin.edit_organization": "the administrator manages every organization",
    "admin.edit_region": "the administrator manages every region",
    "admin.delivery_places": "the administrator manages every delivery place",
}


@pytest.fixture(autouse=True)
def _cheap_passwords(monkeypatch):
    # A world has some forty users, none of whom logs in with a password.
    monkeypatch.setattr(accounts, "generate_password_hash", cheap_password_hash)


# --- the two sides -----------------------------------------------------------------------------


@dataclass
class World:
    """Intruders (staff A, canteen X's buyer and manager, supplier S1's seller), each with
    objects of their own, and the other side's objects they try to reach."""

    people: dict
    objects: dict = field(default_factory=dict)


def _world(make) -> World:
    session = make.session
    now = utcnow()
    staff_a, staff_b = make.user(), make.user()
    canteen_x, canteen_y = make.canteen(), make.canteen()
    buyer_x = make.user(roles={Role.CANTEEN_BUYER}, organization=canteen_x)
    buyer_y = make.user(roles={Role.CANTEEN_BUYER}, organization=canteen_y)
    supplier_1, supplier_2 = make.supplier(), make.supplier()
    seller_1 = make.user(roles={Role.SUPPLIER}, organization=supplier_1)
    seller_2 = make.user(roles={Role.SUPPLIER}, organization=supplier_2)
    world = World(
        people={
            "staff A": staff_a,
            "buyer X": buyer_x,
            "manager X": make.user(roles={Role.CANTEEN_MANAGER}, organization=canteen_x),
            "seller S1": seller_1,
        }
    )
    objects = world.objects

    # Retail: staff B's placed order, and a product in B's cart; A has an order of A's own.
    objects["A's order"] = make.order(buyer=staff_a)
    objects["B's order"] = make.order(buyer=staff_b)
    in_b_cart = make.product()
    cart.add(session, staff_b, in_b_cart.id, "2", now)
    session.commit()
    objects["product in B's cart"] = in_b_cart

    # Canteen Y's bulk orders at the stage each action needs; canteen X has one of its own.
    product_y = make.bulk_product()
    objects["Y's draft"] = make.bulk_order(buyer_y, [(product_y, "10")], submit=False)
    objects["Y's large order"] = make.bulk_order(buyer_y, [(product_y, "300")])  # ¥6,000
    assert objects["Y's large order"].status == BulkOrderStatus.AWAITING_APPROVAL
    objects["Y's released delivery"] = bulk_delivery(make, buyer_y, "new")
    proposed = bulk_delivery(make, buyer_y, "new")
    seller = make.user(roles={Role.SUPPLIER}, organization=proposed.supplier)
    canteen.confirm(session, proposed, seller, now, {proposed.lines[0].id: "5"})
    session.commit()
    assert proposed.status == DeliveryStatus.CHANGES_PROPOSED
    objects["Y's reduced delivery"] = proposed
    objects["Y's shipped delivery"] = bulk_delivery(make, buyer_y, "shipped")
    objects["Y's invoice"] = _invoice_of(session, bulk_delivery(make, buyer_y, "received"))
    objects["X's order"] = bulk_delivery(make, buyer_x, "new").order
    objects["X's invoice"] = _invoice_of(session, bulk_delivery(make, buyer_x, "received"))

    # Supplier S2's deliveries, invoice, products, photo and certificate; S1 has its own.
    objects["S2's delivery"] = bulk_delivery(make, seller_2, "new")
    objects["S2's shipped delivery"] = bulk_delivery(make, seller_2, "shipped")
    objects["S2's invoice"] = _invoice_of(session, bulk_delivery(make, seller_2, "received"))
    objects["S2's product"] = make.product(supplier=supplier_2)
    objects["S2's archived product"] = make.product(
        supplier=supplier_2, status=ProductStatus.ARCHIVED
    )
    objects["S2's photo"] = _photo(make, objects["S2's product"])
    objects["S1's product"] = make.product(supplier=supplier_1)
    _photo(make, objects["S1's product"])
    objects["S2's certificate"] = make._add(
        SupplierCertificate(organization=supplier_2, kind=CertificateKind.ORGANIC, name="有机产品")
    )
    make._add(
        SupplierCertificate(organization=supplier_1, kind=CertificateKind.ORGANIC, name="绿色食品")
    )
    objects["S1's delivery"] = bulk_delivery(make, seller_1, "new")
    objects["S1's invoice"] = _invoice_of(session, bulk_delivery(make, seller_1, "received"))
    return world


def _invoice_of(session, delivery) -> Invoice:
    return session.scalar(sa.select(Invoice).where(Invoice.delivery_id == delivery.id))


def _photo(make, product) -> ProductPhoto:
    return make._add(
        ProductPhoto(
            product=product, key=secrets.token_hex(16), width=1, height=1, created_at=utcnow()
        )
    )


# --- what each intruder tries ------------------------------------------------------------------


@dataclass(frozen=True)
class Attempt:
    """`who` uses `endpoint` by `method`, each id argument naming an object of the world ("the
    order of" or "the first line of" one too); `data` is what the form would carry for the
    owner, so that a missing check would show as a change. `expect` is the refusal's status."""

    who: str
    endpoint: str
    method: str
    ids: dict[str, str]
    data: Callable[[World], dict] = lambda world: {}
    expect: int = 404
    #: The arguments naming the other side's object: set to MISSING_ID for the comparison.
    foreign: tuple[str, ...] | None = None

    def __str__(self):
        return f"{self.who}: {self.method} {self.endpoint} {self.ids}"


def _draft_details(world):
    line = world.objects["Y's draft"].lines[0]
    return {
        "delivery_date": (local_date(utcnow()) + timedelta(days=10)).isoformat(),
        "delivery_address": "改投别处",
        "po_reference": "PO-HIJACK",
        "notes": "",
        f"qty-{line.id}": "20",
    }


def _goods_in(world):
    line = world.objects["Y's shipped delivery"].lines[0]
    return {f"received-{line.id}": "10", f"rejected-{line.id}": "", f"note-{line.id}": ""}


def _confirm(world):
    line = world.objects["S2's delivery"].lines[0]
    return {f"available-{line.id}": "10", "note": ""}


def _listing(world):
    product = world.objects["S2's product"]
    return {"name_zh": "改名", "retail_price": "1.00", "category": str(product.category_id)}


def _upload(world):
    return {"photos": [(io.BytesIO(jpeg_file()), "photo.jpg")]}


RETAIL = [
    Attempt("staff A", endpoint, method, {"order_id": "B's order"})
    for endpoint, method in [
        ("shop.order_detail", "GET"),
        ("shop.payment_done", "GET"),
        ("shop.payment_cancelled", "GET"),
        ("shop.pay_online", "POST"),
        ("shop.pay_at_counter", "POST"),
        ("shop.cancel_order", "POST"),
    ]
] + [
    # The cart is one's own: another's cart line cannot be named; the answer is the one for a
    # product in nobody's cart (back to one's cart, saying it is not there).
    Attempt(
        "staff A",
        "shop.change_quantity",
        "POST",
        {"product_id": "product in B's cart"},
        data=lambda world: {"quantity": "5"},
        expect=303,
    ),
    Attempt(
        "staff A",
        "shop.remove_from_cart",
        "POST",
        {"product_id": "product in B's cart"},
        expect=303,
    ),
]

CANTEEN = [
    Attempt(
        "buyer X", "canteen.order_detail", "GET", {"order_id": "the order of Y's released delivery"}
    ),
    Attempt(
        "manager X",
        "canteen.order_detail",
        "GET",
        {"order_id": "the order of Y's released delivery"},
    ),
    Attempt(
        "buyer X", "canteen.order_detail", "POST", {"order_id": "Y's draft"}, data=_draft_details
    ),
    Attempt("buyer X", "canteen.submit", "POST", {"order_id": "Y's draft"}),
    Attempt("manager X", "canteen.approve", "POST", {"order_id": "Y's large order"}),
    Attempt(
        "manager X",
        "canteen.reject",
        "POST",
        {"order_id": "Y's large order"},
        data=lambda world: {"reason": "不要了"},
    ),
    Attempt(
        "buyer X", "canteen.reopen", "POST", {"order_id": "the order of Y's released delivery"}
    ),
    Attempt(
        "buyer X",
        "canteen.cancel",
        "POST",
        {"order_id": "the order of Y's released delivery"},
        data=lambda world: {"reason": "不要了"},
    ),
    Attempt("buyer X", "canteen.copy", "POST", {"order_id": "the order of Y's released delivery"}),
    *(
        Attempt(
            "buyer X",
            endpoint,
            "POST",
            {
                "order_id": "the order of Y's reduced delivery",
                "line_id": "the first line of Y's reduced delivery",
            },
        )
        for endpoint in ("canteen.accept_reduction", "canteen.cancel_line")
    ),
    # Canteen X's own order with canteen Y's line: the line is not found in the order (the
    # answer is a message on X's order page, as for a line that does not exist).
    *(
        Attempt(
            "buyer X",
            endpoint,
            "POST",
            {"order_id": "X's order", "line_id": "the first line of Y's reduced delivery"},
            expect=303,
            foreign=("line_id",),
        )
        for endpoint in ("canteen.accept_reduction", "canteen.cancel_line")
    ),
    Attempt("manager X", "canteen.goods_in", "GET", {"delivery_id": "Y's shipped delivery"}),
    Attempt(
        "manager X",
        "canteen.goods_in",
        "POST",
        {"delivery_id": "Y's shipped delivery"},
        data=_goods_in,
    ),
]

INVOICES = [
    Attempt(who, endpoint, "GET", {"invoice_id": invoice})
    for who, invoice in [
        ("buyer X", "Y's invoice"),
        ("manager X", "Y's invoice"),
        ("seller S1", "S2's invoice"),
    ]
    for endpoint in ("invoices.detail", "invoices.download_pdf")
]

SUPPLIER = [
    Attempt("seller S1", "supplier.delivery", "GET", {"delivery_id": "S2's delivery"}),
    Attempt(
        "seller S1", "supplier.confirm", "POST", {"delivery_id": "S2's delivery"}, data=_confirm
    ),
    Attempt(
        "seller S1",
        "supplier.ship",
        "POST",
        {"delivery_id": "S2's delivery"},
        data=lambda world: {"delivery_note_number": "DN-HIJACK", "note": ""},
    ),
    Attempt("seller S1", "supplier.delivery_note", "GET", {"delivery_id": "S2's shipped delivery"}),
    Attempt("seller S1", "supplier.edit_listing", "GET", {"product_id": "S2's product"}),
    Attempt(
        "seller S1", "supplier.edit_listing", "POST", {"product_id": "S2's product"}, data=_listing
    ),
    Attempt("seller S1", "supplier.archive_listing", "POST", {"product_id": "S2's product"}),
    Attempt(
        "seller S1", "supplier.restore_listing", "POST", {"product_id": "S2's archived product"}
    ),
    Attempt("seller S1", "supplier.photos", "GET", {"product_id": "S2's product"}),
    Attempt(
        "seller S1", "supplier.upload_photos", "POST", {"product_id": "S2's product"}, data=_upload
    ),
    *(
        Attempt(
            "seller S1",
            endpoint,
            "POST",
            {"product_id": "S2's product", "photo_id": "S2's photo"},
            data=lambda world: {"direction": "up"},
        )
        for endpoint in ("supplier.photo_main", "supplier.photo_move", "supplier.photo_delete")
    ),
    # S1's own product with S2's photo: the photo is not found on it.
    *(
        Attempt(
            "seller S1",
            endpoint,
            "POST",
            {"product_id": "S1's product", "photo_id": "S2's photo"},
            data=lambda world: {"direction": "up"},
            foreign=("photo_id",),
        )
        for endpoint in ("supplier.photo_main", "supplier.photo_move", "supplier.photo_delete")
    ),
    Attempt(
        "seller S1",
        "supplier.adjust_stock",
        "POST",
        {"product_id": "S2's product"},
        data=lambda world: {"mode": "change", "quantity": "-40", "reason": "损耗", "seen": ""},
    ),
    Attempt(
        "seller S1",
        "supplier.set_threshold",
        "POST",
        {"product_id": "S2's product"},
        data=lambda world: {"threshold": "45"},
    ),
    Attempt("seller S1", "supplier.stock_history", "GET", {"product_id": "S2's product"}),
    # The removal answers with a message on one's own profile page, as for a certificate that
    # does not exist.
    Attempt(
        "seller S1",
        "supplier.remove_certificate",
        "POST",
        {"certificate_id": "S2's certificate"},
        expect=303,
    ),
]

ATTEMPTS = {"retail": RETAIL, "canteen": CANTEEN, "invoices": INVOICES, "supplier": SUPPLIER}


def _id_rules(app):
    return [
        rule
        for rule in app.url_map.iter_rules()
        if any(argument.endswith("_id") for argument in rule.arguments)
    ]


def test_every_route_taking_an_id_is_checked_here_or_shared_on_purpose(app):
    checked = {(a.endpoint, a.method) for attempts in ATTEMPTS.values() for a in attempts}
    unchecked = sorted(
        f"{method} {rule.rule} ({rule.endpoint})"
        for rule in _id_rules(app)
        if rule.endpoint not in SHARED_BY_DESIGN
        for method in ("GET", "POST")
        if method in rule.methods and (rule.endpoint, method) not in checked
    )
    assert unchecked == [], (
        "Routes taking an id with no object-level check: add an Attempt by someone who must not "
        "reach another's object to tests/views/test_object_access.py, or say in "
        "SHARED_BY_DESIGN why anyone allowed on the route may name anyone's object."
    )
    id_endpoints = {rule.endpoint for rule in _id_rules(app)}
    stale = sorted(
        ({endpoint for endpoint, _method in checked} | SHARED_BY_DESIGN.keys()) - id_endpoints
    )
    assert stale == [], "no such id-taking routes any more"
    assert not SHARED_BY_DESIGN.keys() & {endpoint for endpoint, _method in checked}


# --- the walk ----------------------------------------------------------------------------------


def database_rows(session) -> dict[str, list]:
    """Every row of every table, in primary-key order: what "nothing changed" is checked on."""
    rows = {}
    for table in Base.metadata.sorted_tables:
        rows[table.name] = session.execute(
            sa.select(table).order_by(*table.primary_key.columns)
        ).all()
    return rows


def _changed_tables(before, after) -> list[str]:
    return sorted(name for name in before if before[name] != after[name])


def _rule(app, endpoint, method):
    (rule,) = [
        rule
        for rule in app.url_map.iter_rules()
        if rule.endpoint == endpoint and method in rule.methods
    ]
    return rule


def _resolve(world, ref: str) -> int:
    if ref.startswith("the order of "):
        return world.objects[ref.removeprefix("the order of ")].order_id
    if ref.startswith("the first line of "):
        return world.objects[ref.removeprefix("the first line of ")].lines[0].id
    return world.objects[ref].id


def _send(client, actions, method, url, data):
    """The request, and what it answered: status, where it leads, the flashed messages and the
    page's text (taken out of the session, so each answer stands alone)."""
    response = client.get(url) if method == "GET" else actions.post(url, data)
    with client.session_transaction() as flask_session:
        flashes = flask_session.pop("_flashes", [])
    location = response.headers.get("Location", "")
    if location:
        text = ""
    elif response.mimetype == "text/html":
        text = page_text(response)
    else:  # a file, e.g. an invoice's PDF
        text = f"{response.mimetype}, {len(response.data)} bytes"
    return response.status_code, location, flashes, text


def _walk(app, client, actions, session, world, attempts) -> list[str]:
    problems = []
    before = database_rows(session)
    for attempt in attempts:
        rule = _rule(app, attempt.endpoint, attempt.method)
        actions.login_as(world.people[attempt.who])
        ids = {name: _resolve(world, ref) for name, ref in attempt.ids.items()}
        _domain, url = rule.build(ids)
        foreign = attempt.foreign or tuple(ids)
        _domain, missing_url = rule.build({**ids, **dict.fromkeys(foreign, MISSING_ID)})

        answer = _send(client, actions, attempt.method, url, attempt.data(world))
        status = answer[0]
        if status != attempt.expect:
            problems.append(f"{attempt}: expected {attempt.expect}, got {status} {answer[1]}")
        elif status == 303 and [category for category, _text in answer[2]] != ["danger"]:
            problems.append(f"{attempt}: sent back without saying why: {answer[2]}")
        missing = _send(client, actions, attempt.method, missing_url, attempt.data(world))
        if answer != missing:
            problems.append(
                f"{attempt}: answered unlike an id that does not exist:\n"
                f"  {answer[:3]}\n  {missing[:3]}"
            )
        after = database_rows(session)
        if after != before:
            problems.append(f"{attempt}: changed {_changed_tables(before, after)}")
            before = after
    return problems


@pytest.mark.parametrize("area", ATTEMPTS)
def test_nobody_reaches_anothers_objects_by_id(app, client, make, actions, session, area):
    world = _world(make)
    problems = _walk(app, client, actions, session, world, ATTEMPTS[area])
    assert problems == [], "\n".join(problems)


# --- beyond ids ---------------------------------------------------------------------------------


def test_a_draft_of_another_canteen_cannot_be_loaded_into_the_order_sheet(
    client, make, actions, session
):
    world = _world(make)
    actions.login_as(world.people["buyer X"])

    draft = world.objects["Y's draft"]
    foreign = client.get(f"/canteen/sheet?order={draft.id}")
    missing = client.get(f"/canteen/sheet?order={MISSING_ID}")

    assert foreign.status_code == missing.status_code == 404
    assert page_text(foreign) == page_text(missing)


def test_marking_notifications_read_marks_only_ones_own(app, client, make, actions, session):
    reader, other = make.user(), make.user()
    now = utcnow()
    for user in (reader, other):
        session.add(Notification(user_id=user.id, kind="order_ready", params={}, created_at=now))
    session.commit()
    actions.login_as(reader)

    assert actions.post("/notifications/read").status_code == 303

    unread = session.scalars(
        sa.select(Notification.user_id).where(
            Notification.user_id.in_([reader.id, other.id]), Notification.read_at.is_(None)
        )
    ).all()
    assert unread == [other.id]
    assert notify.unread_count(session, other.id) == 1


@pytest.mark.parametrize("who", ["staff", "seller S1", "anonymous"])
def test_a_product_not_on_sale_is_not_found_on_the_public_page(client, make, actions, who):
    world = _world(make)
    archived = world.objects["S2's archived product"]
    if who == "staff":
        actions.login_as(world.people["staff A"])
    elif who != "anonymous":
        actions.login_as(world.people[who])

    on_sale = world.objects["S2's product"]
    assert client.get(f"/products/{archived.id}").status_code == 404
    assert client.get(f"/products/{on_sale.id}").status_code == 200


def _shown_as(world, key: str) -> str:
    """What a list shows of the object: its number, its order's number, or its code."""
    obj = world.objects[key]
    for name in ("number", "code"):
        if hasattr(obj, name):
            return getattr(obj, name)
    return obj.order.number


@pytest.mark.parametrize(
    ("who", "page", "own", "other"),
    [
        ("staff A", "/orders", "A's order", "B's order"),
        ("buyer X", "/canteen/orders", "X's order", "Y's draft"),
        ("manager X", "/canteen/orders", "X's order", "Y's large order"),
        ("buyer X", "/invoices/", "X's invoice", "Y's invoice"),
        ("seller S1", "/invoices/", "S1's invoice", "S2's invoice"),
        ("seller S1", "/supplier/deliveries", "S1's delivery", "S2's delivery"),
        ("seller S1", "/supplier/products", "S1's product", "S2's product"),
        ("seller S1", "/supplier/stock", "S1's product", "S2's product"),
    ],
    ids=lambda value: value,
)
def test_lists_show_ones_own_and_not_anothers(client, make, actions, who, page, own, other):
    world = _world(make)
    actions.login_as(world.people[who])

    text = page_text(client.get(page))

    assert _shown_as(world, own) in text
    assert _shown_as(world, other) not in text
