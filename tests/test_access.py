"""Every route is used only by those tests/access_policy.py names: for each endpoint, each method
and each role (and nobody logged in), the outcome a user gets is the one the table says.

Also here: no POST does anything without the form's CSRF token, and `next` targets stay on site.
"""

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
from app.models.base import Base
from app.services import accounts, canteen, listings
from app.services.clock import utcnow
from app.services.photos import PhotoStore
from app.web.access import is_safe_next
from tests.access_policy import ACCESS, NARROWER_FOR_METHOD, allows
from tests.conftest import csrf_token, page_text
from tests.helpers import PASSWORD, cheap_password_hash, staged_import


@pytest.fixture(autouse=True)
def _cheap_passwords(monkeypatch):
    # Each walk makes dozens of users; none of them logs in with a password.
    monkeypatch.setattr(accounts, "generate_password_hash", cheap_password_hash)


# --- the policy table and the app agree --------------------------------------------------------


def _endpoints(app) -> set[str]:
    return {rule.endpoint for rule in app.url_map.iter_rules()} - {"static"}


def test_every_endpoint_has_an_entry_in_the_access_policy_and_every_entry_a_route(app):
    endpoints = _endpoints(app)
    missing = sorted(endpoints - ACCESS.keys())
    stale = sorted(ACCESS.keys() - endpoints)
    assert not missing, (
        f"No access rule for {', '.join(missing)}: say who may use each in ACCESS in "
        "tests/access_policy.py (PUBLIC, LOGGED_IN or the roles), in its area's group."
    )
    assert not stale, (
        f"ACCESS in tests/access_policy.py names endpoints the app no longer has: "
        f"{', '.join(stale)}. Remove or rename them."
    )


def _declared(view):
    return getattr(view, "access", "nothing (no public, login_required or roles_required)")


def test_each_view_declares_exactly_the_access_the_policy_gives_it(app):
    """The decorators and the table can never drift apart: a change to who may use a page is
    made in both, on purpose."""
    disagreements = [
        f"{endpoint}: the view declares {_declared(app.view_functions[endpoint])!r}, "
        f"the policy says {ACCESS[endpoint]!r}"
        for endpoint in sorted(_endpoints(app) & ACCESS.keys())
        if _declared(app.view_functions[endpoint]) != ACCESS[endpoint]
    ]
    assert disagreements == []


# --- real objects for the URLs ------------------------------------------------------------------

#: How far a canteen delivery must have gone for each page that shows one.
DELIVERY_STAGE = {
    "canteen.goods_in": "shipped",
    "supplier.delivery_note": "shipped",
    "invoices.detail": "received",
    "invoices.download_pdf": "received",
    "invoices.record_payment": "received",
    "invoices.record_refund": "received",
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


#: The blueprints whose order, delivery, line and invoice ids are a canteen's bulk order's.
BULK_AREAS = ("canteen", "supplier", "invoices")


class RealObjects:
    """Objects that exist, for the arguments of URL rules: each built on first use and reused by
    the next rule that needs one (building is what a walk over every route spends its time on).

    What ownership matters for belongs to `user`: a staff member's order is their own, a canteen
    user's bulk order their canteen's, a supplier's product and delivery its own; so it is the
    role check a request meets, not an object-level refusal. With `app`, a photo file named in
    a URL exists on disk too.
    """

    def __init__(self, make, user=None, app=None):
        self.make = make
        self.user = user
        self.app = app
        self._built: dict = {}

    def _once(self, key, build):
        if key not in self._built:
            self._built[key] = build()
        return self._built[key]

    def _own_supplier(self) -> dict:
        user = self.user
        return {"supplier": user.organization} if user and user.has_role(Role.SUPPLIER) else {}

    def delivery(self, stage: str = "new"):
        return self._once(("delivery", stage), lambda: bulk_delivery(self.make, self.user, stage))

    def product(self):
        return self._once("product", lambda: self.make.product(**self._own_supplier()))

    def photo(self) -> ProductPhoto:
        return self._once(
            "photo",
            lambda: self.make._add(
                ProductPhoto(
                    product=self.product(),
                    key=secrets.token_hex(16),
                    width=1,
                    height=1,
                    created_at=utcnow(),
                )
            ),
        )

    def photo_file_name(self) -> str:
        """A photo file's name; the file exists when the app (its photo folder) is known."""

        def build():
            key = secrets.token_hex(16)
            if self.app is not None:
                path = PhotoStore.from_config(self.app.config).path(key, "thumb")
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(b"\xff\xd8\xff\xd9")  # served as stored; the content is ours
            return f"{key}-thumb.jpg"

        return self._once("photo file", build)

    def certificate(self) -> SupplierCertificate:
        own = self._own_supplier().get("supplier")
        return self._once(
            "certificate",
            lambda: self.make._add(
                SupplierCertificate(
                    organization=own or self.make.supplier(),
                    kind=CertificateKind.ORGANIC,
                    name="有机产品",
                )
            ),
        )

    def arguments(self, rule) -> dict:
        make = self.make
        bulk = rule.endpoint.split(".")[0] in BULK_AREAS
        stage = DELIVERY_STAGE.get(rule.endpoint, "new")
        builders = {
            "user_id": lambda: self._once("user", make.user).id,
            # A supplier: the public supplier page shows only suppliers, and the admin's
            # organization page takes any organization.
            "org_id": lambda: self._once("org", make.supplier).id,
            "region_id": lambda: self._once("region", make.region).id,
            "product_id": lambda: self.product().id,
            "order_id": lambda: (
                self.delivery(stage).order_id
                if bulk
                else self._once("retail order", lambda: make.order(buyer=self.user)).id
            ),
            "delivery_id": lambda: self.delivery(stage).id,
            "line_id": lambda: self.delivery(stage).lines[0].id,
            "invoice_id": lambda: make.session.scalar(
                sa.select(Invoice.id).where(Invoice.delivery_id == self.delivery(stage).id)
            ),
            "action": lambda: "ready",
            # The default language: switching to English would change every later page.
            "code": lambda: "zh_CN",
            "name": self.photo_file_name,
            "place_id": lambda: self._once("place", make.delivery_place).id,
            "batch_id": lambda: self._once("batch", lambda: staged_import(make)).id,
            "pledge_id": lambda: self._once("pledge", make.pledge).id,
            "revision_id": lambda: self._once("revision", lambda: pending_revision(make)).id,
            "certificate_id": lambda: self.certificate().id,
            "photo_id": lambda: self.photo().id,
        }
        missing = rule.arguments - builders.keys()
        if missing:
            pytest.fail(
                f"{rule.rule}: say how to build a real object for {sorted(missing)} "
                "(RealObjects.arguments in tests/test_access.py)"
            )
        return {argument: builders[argument]() for argument in sorted(rule.arguments)}

    def url(self, rule) -> str:
        _domain, url = rule.build(self.arguments(rule))
        return url


def real_url(rule, make, user=None) -> str:
    """The rule's URL, each argument filled with the id of a new object that exists (an order
    is the acting user's own, so that object-level checks do not hide the role check)."""
    return RealObjects(make, user).url(rule)


# --- the matrix: every endpoint, every method, every role and nobody ---------------------------

#: What the app says when a role check refuses (the 403 page's message).
NO_ACCESS = "您的账号无权访问此页面"

#: Pages that answer a GET with a redirect on purpose, and where it must lead: a path, or the
#: start of one when it ends with "/".
REDIRECTS_BY_DESIGN = {
    "admin.index": "/admin/users",
    "shop.add_to_cart": "/products/",  # a GET (after logging in) goes back to the product
    "shop.checkout": "/cart",  # nothing to check out in an empty cart
    "counter.label_sheet": "/counter/labels",  # no product chosen: back to the chooser
    "i18n.switch": "/",  # back where the user came from
}
#: Pages with nothing to do for a user already logged in.
REDIRECTS_WHEN_LOGGED_IN = {"auth.login": "/", "auth.register": "/"}

#: What an allowed POST with nothing but the CSRF token may get: done (200, a redirect), or
#: refused by the form or the rules (400, 404 for an object an earlier POST removed, 409, 422).
#: Never 403, 405 or 500, nor the login page.
DOOR_OPEN_POST = {200, 302, 303, 400, 404, 409, 422}

IDENTITIES = [None, *Role]


def _identity_name(role) -> str:
    return role.value if role else "anonymous"


def _home_organization(make, role: Role):
    """Where a user of this role works: canteen staff in a canteen, suppliers in a supplier."""
    if role in (Role.CANTEEN_BUYER, Role.CANTEEN_MANAGER):
        return make.canteen()
    if role == Role.SUPPLIER:
        return make.supplier()
    return make.organization()


def table_counts(session) -> dict[str, int]:
    """How many rows each table holds, in one statement."""
    tables = Base.metadata.sorted_tables
    row = session.execute(
        sa.select(
            *(
                sa.select(sa.func.count()).select_from(table).scalar_subquery().label(table.name)
                for table in tables
            )
        )
    ).one()
    return dict(row._mapping)


def _location(response) -> str:
    return urlsplit(response.headers.get("Location", "")).path


def _leads_to(response, target: str) -> bool:
    path = _location(response)
    return path.startswith(target) if target.endswith("/") else path == target


def _sent_to_login(response) -> bool:
    return response.status_code in (302, 303) and _location(response) == "/auth/login"


#: What a request should meet, by the policy.
OPEN = "the door open"
TO_LOGIN = "a redirect to the login page"
NO_ROLE = "403, the role may not"
BY_THE_RULES = "403, the rules behind the door refuse"


def expected_outcome(endpoint: str, method: str, roles: frozenset[Role] | None) -> str:
    if not allows(ACCESS[endpoint], roles):
        return TO_LOGIN if roles is None else NO_ROLE
    narrower = NARROWER_FOR_METHOD.get((endpoint, method))
    if narrower is not None and not allows(narrower, roles):
        return BY_THE_RULES
    return OPEN


def _open_door_problem(endpoint, method, response, logged_in) -> str | None:
    status = response.status_code
    if _sent_to_login(response):
        return "sent to the login page"
    if method == "POST":
        if status not in DOOR_OPEN_POST:
            return f"expected the door open ({sorted(DOOR_OPEN_POST)}), got {status}"
        return None
    target = REDIRECTS_BY_DESIGN.get(endpoint) or (
        REDIRECTS_WHEN_LOGGED_IN.get(endpoint) if logged_in else None
    )
    if target is None:
        return None if status == 200 else f"expected 200, got {status} {_location(response)}"
    if status != 302 or not _leads_to(response, target):
        return f"expected a redirect to {target}, got {status} {_location(response)}"
    return None


def _problem(expected, endpoint, method, url, response, logged_in) -> str | None:
    """What is wrong with the answer, if anything."""
    status = response.status_code
    if expected == OPEN:
        return _open_door_problem(endpoint, method, response, logged_in)
    if expected == TO_LOGIN:
        if not _sent_to_login(response):
            return f"expected a redirect to the login page, got {status} {_location(response)}"
        next_target = parse_qs(urlsplit(response.headers["Location"]).query).get("next")
        if method == "GET" and next_target != [url]:
            return f"the login page should lead back to {url}, not to {next_target}"
        return None
    if status != 403:
        return f"expected 403, got {status} {_location(response)}"
    if expected == NO_ROLE and NO_ACCESS not in page_text(response):
        return "403 without the no-access page"
    return None


def _head_problem(client, url, get_response) -> str | None:
    """HEAD is GET without the body: it must be refused the same way."""
    head = client.head(url)
    if (head.status_code, _location(head)) != (get_response.status_code, _location(get_response)):
        return f"HEAD got {head.status_code} {_location(head)}, unlike GET"
    return "HEAD answered with a body" if head.data else None


def _requests(app):
    """(rule, method) for every rule and method, the GETs first: a POST may move on the
    objects that later requests share (approve the order, delete the photo)."""
    pairs = [
        (rule, method)
        for rule in app.url_map.iter_rules()
        if rule.endpoint != "static"
        for method in ("GET", "POST")
        if method in rule.methods
    ]
    return sorted(pairs, key=lambda pair: (pair[1] != "GET", pair[0].rule))


@pytest.mark.parametrize("role", IDENTITIES, ids=_identity_name)
def test_each_visitor_gets_through_exactly_the_doors_the_policy_opens(
    app, client, make, actions, session, role
):
    user = None
    if role is not None:
        user = make.user(roles={role}, organization=_home_organization(make, role))
    roles = frozenset({role}) if role else None
    objects = RealObjects(make, user, app)
    problems = []
    for rule, method in _requests(app):
        if rule.endpoint not in ACCESS:
            problems.append(f"{rule.endpoint}: no entry in tests/access_policy.py")
            continue
        url = objects.url(rule)
        expected = expected_outcome(rule.endpoint, method, roles)
        if user is not None:
            # Again each time: logging out, or a password change, must not end the walk.
            actions.login_as(user)
        if method == "GET":
            before = None
            response = client.get(url)
        else:
            before = table_counts(session) if expected != OPEN else None
            # A valid token, so that it is the access check that refuses and not CSRF.
            response = client.post(url, data={"csrf_token": csrf_token(app, client)})
        problem = _problem(expected, rule.endpoint, method, url, response, user is not None)
        if problem is None and before is not None and table_counts(session) != before:
            problem = "refused, yet rows were added or deleted"
        if problem is None and expected != OPEN and method == "GET":
            problem = _head_problem(client, url, response)
        if problem:
            problems.append(f"{method} {url} ({rule.endpoint}), expected {expected}: {problem}")
    assert problems == [], f"As {_identity_name(role)}:\n" + "\n".join(problems)


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
