"""Every route declares who may use it; anonymous users and wrong roles are kept out."""

import secrets
from urllib.parse import parse_qs, urlsplit

import pytest
import sqlalchemy as sa

from app import create_app
from app.models import (
    CertificateKind,
    Invoice,
    Organization,
    ProductPhoto,
    ProductRevision,
    ProductStatus,
    Region,
    RevisionStatus,
    Role,
    SupplierCertificate,
    User,
)
from app.services import canteen, listings
from app.services.clock import utcnow
from app.web.access import LOGGED_IN, PUBLIC, is_safe_next
from tests.conftest import page_text
from tests.helpers import PASSWORD, staged_import

#: Protected pages that answer an allowed user with a redirect instead of a page.
#: Pages that answer a GET with a redirect on purpose, and where that redirect must lead
#: (a path, or the start of one).
REDIRECTS_BY_DESIGN = {
    "admin.index": "/admin/users",
    "shop.add_to_cart": "/products/",  # a GET (after logging in) goes back to the product
    "shop.checkout": "/cart",  # nothing to check out in an empty cart
    "counter.label_sheet": "/counter/labels",  # no product chosen: back to the chooser
}


def test_every_endpoint_declares_its_access(app):
    undeclared = [
        rule.endpoint
        for rule in app.url_map.iter_rules()
        if rule.endpoint != "static" and not hasattr(app.view_functions[rule.endpoint], "access")
    ]
    assert undeclared == []


#: How far a canteen delivery must have gone for each page that shows one.
DELIVERY_STAGE = {
    "canteen.goods_in": "shipped",
    "supplier.delivery_note": "shipped",
    "invoices.detail": "received",
    "invoices.download_pdf": "received",
    "invoices.record_payment": "received",
    "invoices.credit": "received",
}


def bulk_delivery(make, user, stage: str = "new"):
    """A released canteen order with one supplier delivery taken to `stage`, belonging to the
    user's own canteen or supplier when the user is one (object-level checks pass), else to
    fresh ones that coordinators and admins see anyway."""
    session = make.session
    canteen_org = (
        user.organization
        if user is not None and user.has_role(Role.CANTEEN_BUYER, Role.CANTEEN_MANAGER)
        else make.canteen()
    )
    supplier_org = user.organization if user is not None and user.has_role(Role.SUPPLIER) else None
    buyer = make.user(roles={Role.CANTEEN_BUYER}, organization=canteen_org)
    manager = make.user(roles={Role.CANTEEN_MANAGER}, organization=canteen_org)
    supplier_user = make.user(roles={Role.SUPPLIER}, organization=supplier_org or make.supplier())
    product = make.bulk_product(supplier=supplier_user.organization)
    order = make.bulk_order(buyer, [(product, "10")])
    (delivery,) = order.deliveries
    now = utcnow()
    if stage in ("shipped", "received"):
        canteen.confirm(session, delivery, supplier_user, now)
        canteen.ship(session, delivery, supplier_user, now, "DN-1")
    if stage == "received":
        received = {line.id: canteen.ReceivedLine("10") for line in delivery.open_lines}
        canteen.receive(session, delivery, manager, now, received, canteen.CanteenPolicy())
    session.commit()
    return delivery


def pending_revision(make) -> ProductRevision:
    """A new product waiting for a coordinator's review."""
    product = make.product(status=ProductStatus.PENDING_REVIEW)
    return make._add(
        ProductRevision(
            product=product,
            status=RevisionStatus.PENDING,
            data=listings.Listing.of_product(product).as_data(),
            review_reasons=["new"],
            submitted_at=utcnow(),
        )
    )


def real_url(rule, make, user=None) -> str:
    """The rule's URL, each argument filled with the id of an object that exists (an order
    is the acting user's own, so that object-level checks do not hide the role check)."""
    bulk = rule.endpoint.split(".")[0] in ("canteen", "supplier", "invoices")
    delivery = None
    if bulk and rule.arguments & {"order_id", "delivery_id", "invoice_id", "line_id"}:
        delivery = bulk_delivery(make, user, DELIVERY_STAGE.get(rule.endpoint, "new"))
    # A supplier's product pages answer only for its own products (others are not found).
    own = (
        {"supplier": user.organization} if user is not None and user.has_role(Role.SUPPLIER) else {}
    )
    builders = {
        "user_id": lambda: make.user().id,
        "org_id": lambda: make.organization().id,
        "region_id": lambda: make.region().id,
        "product_id": lambda: make.product(**own).id,
        "order_id": lambda: delivery.order_id if bulk else make.order(buyer=user).id,
        "delivery_id": lambda: delivery.id,
        "line_id": lambda: delivery.lines[0].id,
        "invoice_id": lambda: make.session.scalar(
            sa.select(Invoice.id).where(Invoice.delivery_id == delivery.id)
        ),
        "action": lambda: "ready",
        "place_id": lambda: make.delivery_place().id,
        "batch_id": lambda: staged_import(make).id,
        "pledge_id": lambda: make.pledge().id,
        "revision_id": lambda: pending_revision(make).id,
        "certificate_id": lambda: (
            make._add(
                SupplierCertificate(
                    organization=make.supplier(), kind=CertificateKind.ORGANIC, name="有机产品"
                )
            ).id
        ),
        "photo_id": lambda: (
            make._add(
                ProductPhoto(
                    product=make.product(**own),
                    key=secrets.token_hex(16),
                    width=1,
                    height=1,
                    created_at=utcnow(),
                )
            ).id
        ),
    }
    missing = rule.arguments - builders.keys()
    if missing:
        pytest.fail(f"{rule.rule}: say how to build a real object for {sorted(missing)}")
    _domain, url = rule.build({argument: builders[argument]() for argument in rule.arguments})
    return url


def protected_pages(app, make, user=None):
    """(endpoint, url, access) of every page that is not public, with real objects in the URL."""
    for rule in sorted(app.url_map.iter_rules(), key=lambda rule: rule.rule):
        access = getattr(app.view_functions[rule.endpoint], "access", PUBLIC)
        if access != PUBLIC and "GET" in rule.methods:
            yield rule.endpoint, real_url(rule, make, user), access


def test_anonymous_users_are_sent_to_login_from_every_protected_page(app, client, make):
    pages = list(protected_pages(app, make))
    assert len(pages) >= 5
    for endpoint, url, _access in pages:
        response = client.get(url)
        assert response.status_code == 302, endpoint
        location = urlsplit(response.headers["Location"])
        assert location.path == "/auth/login", endpoint
        assert parse_qs(location.query)["next"] == [url], endpoint


def _home_organization(make, role: Role):
    """Where a user of this role works: canteen staff in a canteen, suppliers in a supplier."""
    if role in (Role.CANTEEN_BUYER, Role.CANTEEN_MANAGER):
        return make.canteen()
    if role == Role.SUPPLIER:
        return make.supplier()
    return make.organization()


@pytest.mark.parametrize("role", list(Role))
def test_each_role_opens_exactly_the_pages_meant_for_it(app, client, make, actions, role):
    user = actions.login_as(make.user(roles={role}, organization=_home_organization(make, role)))
    for endpoint, url, access in protected_pages(app, make, user):
        response = client.get(url)
        if access != LOGGED_IN and role not in access:
            assert response.status_code == 403, endpoint
            assert "无权访问" in page_text(response), endpoint
        elif endpoint in REDIRECTS_BY_DESIGN:
            assert response.status_code == 302, endpoint
            assert response.headers["Location"].startswith(REDIRECTS_BY_DESIGN[endpoint]), endpoint
        else:
            assert response.status_code == 200, endpoint


# --- CSRF: no POST anywhere does anything without the form's token -------------------------


#: POST endpoints that carry no CSRF token because another check stands in for it.
CSRF_EXEMPT_BY_DESIGN = {
    # Stripe signs every request; a bad signature is refused in tests/views/test_webhook.py.
    "/stripe/webhook",
}


def _post_rules() -> list[str]:
    """Every URL rule that takes a POST, from the app's URL map as the tests are collected."""
    url_map = create_app("testing", SQLALCHEMY_DATABASE_URI="sqlite://").url_map
    return sorted(
        rule.rule
        for rule in url_map.iter_rules()
        if "POST" in rule.methods and rule.rule not in CSRF_EXEMPT_BY_DESIGN
    )


#: What a forged form would send: enough for each of the site's forms to do something if the
#: missing token were not noticed (create or rename, log in or out, change the password).
FORGED = {
    "email": "forged@shanhai.demo",
    "name": "伪造改名",
    "name_zh": "伪造改名",
    "code": "FORGED",
    "roles": ["staff", "admin"],
    "organization_id": "0",
    "region_id": "0",
    "supplier_type": "",
    "active": "y",
    "password": "forged-password",
    "confirm": "forged-password",
    "current_password": PASSWORD,
    "new_password": "forged-password",
}
#: `kind` means an OrgKind on the organization form and a RegionKind on the region form.
FORGED_KIND = {"admin.edit_organization": "department", "admin.edit_region": "paired"}


def _counts(session) -> dict[str, int]:
    return {model.__name__: session.query(model).count() for model in (User, Organization, Region)}


@pytest.mark.parametrize("rule_text", _post_rules())
def test_a_post_without_the_csrf_token_is_refused_and_changes_nothing(
    app, client, make, actions, session, rule_text
):
    # A URL may have a GET rule of its own beside the POST one.
    (rule,) = [
        rule
        for rule in app.url_map.iter_rules()
        if rule.rule == rule_text and "POST" in rule.methods
    ]
    # An administrator, so that it is the missing token and not a lack of rights that refuses.
    actions.login_as(make.user(roles={Role.ADMIN}))
    url = real_url(rule, make)
    with client.session_transaction() as flask_session:
        user_id = flask_session["_user_id"]
    before = _counts(session)

    response = client.post(url, data={**FORGED, "kind": FORGED_KIND.get(rule.endpoint, "")})

    assert response.status_code == 400
    assert "表单已过期" in page_text(response)
    assert _counts(session) == before
    with client.session_transaction() as flask_session:
        assert flask_session.get("_user_id") == user_id
    for page in ("/admin/users", "/admin/organizations", "/admin/regions"):
        response = client.get(page)
        assert response.status_code == 200, page
        assert "伪造改名" not in page_text(response), page


@pytest.mark.parametrize(
    "target",
    [
        "//evil.example",
        "https://evil.example/",
        "/\\evil.example",
        "javascript:alert(1)",
        "/\r\nLocation: https://evil.example",
        "",
        None,
        "evil.example",
        "\\\\evil",
    ],
)
def test_unsafe_next_targets_are_refused(target):
    assert not is_safe_next(target)


@pytest.mark.parametrize("target", ["/", "/products?q=dynr", "/products/1"])
def test_local_next_targets_are_allowed(target):
    assert is_safe_next(target)
