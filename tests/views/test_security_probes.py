"""Security probes: the headers every response carries (app/web/security.py), the cookies'
flags in production, hostile markup written where others read it, and every `next` or return
target that could send a user off the site.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import pytest

from app import create_app
from app.extensions import db
from app.models import (
    Fulfilment,
    Pledge,
    ProductRevision,
    ProductStatus,
    RevisionStatus,
    Role,
)
from app.models.base import Base
from app.services import accounts, cart, listings, orders
from app.services.clock import utcnow
from app.web.security import STRIPE_CHECKOUT_ORIGIN
from tests.conftest import csrf_token, page_text
from tests.helpers import PASSWORD, Builders, cheap_password_hash
from tests.test_access import RealObjects


@pytest.fixture(autouse=True)
def _quick_hashes(monkeypatch):
    # Dozens of users are made here; how passwords are hashed is tested elsewhere.
    monkeypatch.setattr(accounts, "generate_password_hash", cheap_password_hash)


# --- headers ------------------------------------------------------------------------------------

SECURITY_HEADERS = {
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "strict-origin-when-cross-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
}
#: The photo view serves only JPEGs we encoded and keeps its own, stricter policy.
OWN_POLICY = {"media.photo": "default-src 'none'; sandbox"}


def directives(policy: str) -> dict[str, str]:
    pairs = (part.strip().split(" ", 1) for part in policy.split(";") if part.strip())
    return {name: value for name, value in pairs}


def assert_security_headers(response, where: str) -> None:
    for name, value in SECURITY_HEADERS.items():
        assert response.headers.get(name) == value, (where, name)
    permissions = response.headers.get("Permissions-Policy", "")
    for feature in ("camera=()", "microphone=()", "geolocation=()"):
        assert feature in permissions, (where, permissions)
    policy = response.headers.get("Content-Security-Policy", "")
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy, (where, policy)
    found = directives(policy)
    assert found.get("script-src") == "'self'", (where, policy)
    assert found.get("style-src") == "'self'", (where, policy)
    assert found.get("object-src") == "'none'", (where, policy)
    assert found.get("frame-ancestors") == "'none'", (where, policy)
    assert found.get("base-uri") == "'self'", (where, policy)
    assert found.get("form-action", "").startswith("'self'"), (where, policy)


def every_get_url(app, make, user) -> Iterator[tuple[str, str]]:
    """(endpoint, url) of every GET rule, with real objects in the URL (a photo file too)."""
    objects = RealObjects(make, user, app)
    for rule in sorted(app.url_map.iter_rules(), key=lambda rule: rule.rule):
        if "GET" not in rule.methods:
            continue
        if rule.endpoint == "static":
            yield rule.endpoint, "/static/css/app.css"
        else:
            yield rule.endpoint, objects.url(rule)


def test_every_page_carries_the_security_headers(app, client, make, actions):
    admin = actions.login_as(make.user(roles={Role.ADMIN}))
    checked = 0
    for endpoint, url in every_get_url(app, make, admin):
        response = client.get(url)
        # (503 is an answer too: the invoice PDF on a machine without a Chinese font.)
        assert response.status_code != 500, (endpoint, url)
        if endpoint in OWN_POLICY:
            assert response.status_code == 200, (endpoint, url)
            assert response.headers["Content-Security-Policy"] == OWN_POLICY[endpoint]
            assert response.headers["X-Frame-Options"] == "DENY"
        else:
            assert_security_headers(response, f"{endpoint} {url}")
        # Testing is not production: no HSTS that would pin a developer's host to HTTPS.
        assert "Strict-Transport-Security" not in response.headers, endpoint
        checked += 1
    assert checked > 50
    assert_security_headers(client.get("/no-such-page"), "404 page")


def test_an_anonymous_visitor_and_a_refused_user_get_the_headers_too(client, make, actions):
    assert_security_headers(client.get("/admin/users"), "login redirect")
    actions.login_as(make.user(roles={Role.STAFF}))
    refused = client.get("/admin/users")
    assert refused.status_code == 403
    assert_security_headers(refused, "403 page")


def test_checkout_forms_may_go_to_stripe_and_no_further(client):
    # The checkout POST is answered with a 303 to Stripe's page; Chromium checks form-action
    # against that redirect too.
    policy = directives(client.get("/cart").headers["Content-Security-Policy"])
    assert policy["form-action"] == f"'self' {STRIPE_CHECKOUT_ORIGIN}"


def _policy_of(config: str, **overrides) -> str:
    with other_app(config, **overrides) as app:
        return app.test_client().get("/static/css/app.css").headers["Content-Security-Policy"]


@contextmanager
def other_app(config: str, **overrides):
    """An app in another configuration. Outside testing the factory gives the app's loggers
    handlers of their own; they are put back as they were, for the rest of the suite."""
    loggers = [logging.getLogger(name) for name in ("app", "shanhai")]
    saved = [(logger, list(logger.handlers), logger.propagate, logger.level) for logger in loggers]
    try:
        yield create_app(
            config,
            **{"SECRET_KEY": "s" * 32, "SQLALCHEMY_DATABASE_URI": "sqlite://", **overrides},
        )
    finally:
        for logger, handlers, propagate, level in saved:
            logger.handlers[:] = handlers
            logger.propagate = propagate
            logger.setLevel(level)


def test_with_a_stripe_stand_in_its_payment_page_may_receive_the_checkout_redirect():
    policy = directives(_policy_of("testing", STRIPE_API_BASE="http://127.0.0.1:8765/v1"))
    assert policy["form-action"] == f"'self' {STRIPE_CHECKOUT_ORIGIN} http://127.0.0.1:8765"


def test_production_sends_hsts_and_the_other_configurations_do_not():
    with other_app("production") as app:
        client = app.test_client()
        for url in ("/static/css/app.css", "/no-such-page"):
            response = client.get(url)
            assert response.headers["Strict-Transport-Security"] == (
                "max-age=31536000; includeSubDomains"
            ), url
            assert_security_headers(response, f"production {url}")
    with other_app("production", HSTS_SECONDS=0) as app:
        response = app.test_client().get("/static/css/app.css")
        assert "Strict-Transport-Security" not in response.headers
    for config in ("development", "testing"):
        with other_app(config) as app:
            response = app.test_client().get("/static/css/app.css")
            assert "Strict-Transport-Security" not in response.headers, config
            assert_security_headers(response, config)


# --- cookies ------------------------------------------------------------------------------------


def cookie_flags(response, name: str) -> set[str]:
    """The Set-Cookie attributes of cookie `name`, lower-cased: 'secure', 'samesite=lax'..."""
    for header in response.headers.getlist("Set-Cookie"):
        cookie_name, _, rest = header.partition("=")
        if cookie_name == name:
            return {part.strip().lower() for part in rest.split(";")[1:]}
    raise AssertionError(f"no {name} cookie set; got {response.headers.getlist('Set-Cookie')}")


def test_in_production_every_cookie_is_secure_http_only_and_same_site_lax():
    with other_app("production") as app:
        with app.app_context():
            Base.metadata.create_all(db.engine)
            Builders(db.session).user(email="cookie@shanhai.demo", roles={Role.STAFF})
        # Requests go to https://localhost (PREFERRED_URL_SCHEME); over HTTPS Flask-WTF wants
        # a same-site Referer, as a browser sends.
        client = app.test_client()
        login = client.post(
            "/auth/login",
            data={
                "csrf_token": csrf_token(app, client),
                "email": "cookie@shanhai.demo",
                "password": PASSWORD,
                "remember": "y",
            },
            headers={"Referer": "https://localhost/auth/login"},
        )
        assert login.status_code == 302
        switch = client.get("/lang/en")
        for response, name in ((login, "session"), (login, "remember_token"), (switch, "lang")):
            flags = cookie_flags(response, name)
            assert {"secure", "httponly", "samesite=lax"} <= flags, (name, flags)


def test_outside_production_the_language_cookie_works_on_plain_http(client):
    flags = cookie_flags(client.get("/lang/en"), "lang")
    assert {"httponly", "samesite=lax"} <= flags and "secure" not in flags


# --- hostile markup where others read it --------------------------------------------------------

#: Fits every name column (64 characters and up); each part would run script if not escaped.
HOSTILE = '"><img src=x onerror=alert(1)><script>alert(1)</script>{{7*7}}'
SHORT_HOSTILE = "<script>alert(1)</script>"  # for 32-character columns
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"
JS_URL = "javascript:alert(1)"
LIVE_MARKUP = ("<script>alert(1)", "<img src=x", "onerror=alert(1)>")
JS_IN_URL_ATTRIBUTE = re.compile(r"""\b(?:href|src|action|formaction)\s*=\s*["']?\s*javascript:""")


def assert_inert(response, where: str, shown: bool = True) -> None:
    """No hostile markup live in the page; with `shown`, the hostile text is there, escaped,
    and its template expression unevaluated."""
    html = response.get_data(as_text=True)
    for raw in LIVE_MARKUP:
        assert raw not in html, (where, raw)
    assert not JS_IN_URL_ATTRIBUTE.search(html), where
    if shown:
        assert ESCAPED in html, where
        assert "{{7*7}}" in html, where


@dataclass
class HostileWorld:
    supplier_user: object
    product: object
    staff: object
    clerk: object
    coordinator: object
    admin: object
    buyer: object
    manager: object
    order: object
    bulk_order: object
    pledge: Pledge


@pytest.fixture
def hostile(app, make, session) -> HostileWorld:
    """Hostile text in everything users write that others read."""
    with app.app_context():
        region = make.region(name_zh=HOSTILE)
        supplier = make.supplier(
            region=region,
            name_zh=HOSTILE,
            name_en=HOSTILE,
            county_zh=HOSTILE,
            certifications=HOSTILE,
            story_zh=f"{HOSTILE} {JS_URL}",
        )
        product = make.product(
            supplier=supplier,
            name_zh=HOSTILE,
            name_en=HOSTILE,
            description_zh=f"{HOSTILE} {JS_URL}",
            description_en=f"{HOSTILE} {JS_URL}",
            storage_zh=HOSTILE,
            cooperative_zh=HOSTILE,
            category=make.category(name_zh=HOSTILE, name_en=HOSTILE),
        )
        department = make.organization(name_zh=HOSTILE, name_en=HOSTILE)
        staff = make.user(roles={Role.STAFF}, organization=department, name=HOSTILE)
        place = make.delivery_place(building_zh=HOSTILE, room=SHORT_HOSTILE)
        cart.add(session, staff, product.id, "1", utcnow())
        order = orders.place_order(
            session,
            staff,
            utcnow(),
            fulfilment=Fulfilment.OFFICE_DELIVERY,
            delivery_place_id=place.id,
        )
        kitchen = make.canteen(name_zh=HOSTILE, address=HOSTILE)
        buyer = make.user(roles={Role.CANTEEN_BUYER}, organization=kitchen, name=HOSTILE)
        manager = make.user(roles={Role.CANTEEN_MANAGER}, organization=kitchen)
        bulk_product = make.bulk_product(supplier=supplier, name_zh=HOSTILE, name_en=HOSTILE)
        bulk_order = make.bulk_order(buyer, [(bulk_product, "10")], po_reference=SHORT_HOSTILE)
        bulk_order.notes = f"{HOSTILE} {JS_URL}"
        bulk_order.delivery_address = HOSTILE
        pledge = make.pledge(name=HOSTILE, regions=[region], public=True)
        # A new listing waiting for a coordinator's review.
        listing = make.product(
            supplier=supplier, name_zh=HOSTILE, status=ProductStatus.PENDING_REVIEW
        )
        make._add(
            ProductRevision(
                product=listing,
                status=RevisionStatus.PENDING,
                data=listings.Listing.of_product(listing).as_data(),
                review_reasons=["new"],
                submitted_at=utcnow(),
            )
        )
        session.commit()
        return HostileWorld(
            supplier_user=make.user(roles={Role.SUPPLIER}, organization=supplier, name=HOSTILE),
            product=product,
            staff=staff,
            clerk=make.user(roles={Role.COUNTER_CLERK}),
            coordinator=make.user(roles={Role.COORDINATOR}),
            admin=make.user(roles={Role.ADMIN}),
            buyer=buyer,
            manager=manager,
            order=order,
            bulk_order=bulk_order,
            pledge=pledge,
        )


def test_hostile_names_and_descriptions_show_as_text_on_the_pages_that_show_them(
    client, actions, session, hostile
):
    w = hostile
    product, pledge = w.product.id, w.pledge.id
    # Something in the cart again, so that checkout offers the hostile delivery place.
    cart.add(session, w.staff, product, "1", utcnow())
    session.commit()
    # Anyone: the catalog, the product page and the public board.
    for url in ("/", "/products", f"/products/{product}", "/board"):
        assert_inert(client.get(url), url)
    pages = {
        w.staff: ["/cart", "/checkout", "/orders", f"/orders/{w.order.id}"],
        w.clerk: ["/counter/", f"/counter/?q={w.order.pickup_code}"],
        w.coordinator: ["/pledges/", f"/pledges/{pledge}", "/pledges/ranking", "/review/"],
        w.admin: ["/admin/users", "/admin/organizations", "/admin/delivery-places"],
        w.supplier_user: ["/supplier/", "/supplier/products", "/supplier/deliveries"],
        w.buyer: ["/canteen/orders", f"/canteen/orders/{w.bulk_order.id}"],
    }
    for user, urls in pages.items():
        actions.login_as(user)
        for url in urls:
            response = client.get(url)
            assert response.status_code == 200, (url, response.status_code)
            assert_inert(response, url)


@pytest.mark.parametrize("role", [None, *Role], ids=lambda role: role or "anonymous")
def test_no_page_lets_hostile_text_run_for_anyone(app, client, make, actions, hostile, role):
    """Every GET page, as nobody and as a user of each role: whatever of the hostile world it
    shows, it shows as text."""
    user = {
        None: None,
        Role.STAFF: hostile.staff,
        Role.CANTEEN_BUYER: hostile.buyer,
        Role.CANTEEN_MANAGER: hostile.manager,
        Role.SUPPLIER: hostile.supplier_user,
        Role.COUNTER_CLERK: hostile.clerk,
        Role.COORDINATOR: hostile.coordinator,
        Role.ADMIN: hostile.admin,
    }[role]
    if user is not None:
        actions.login_as(user)
    for endpoint, url in every_get_url(app, make, user):
        response = client.get(url)
        if response.mimetype == "text/html":
            assert_inert(response, f"{endpoint} {url}", shown=False)


def test_the_search_box_and_results_show_a_hostile_query_as_text(client, hostile):
    response = client.get("/products", query_string={"q": HOSTILE})
    assert response.status_code == 200
    assert_inert(response, "search")
    # The navbar's search box keeps the query as its value, escaped.
    assert 'value="&#34;&gt;&lt;img src=x' in response.get_data(as_text=True)


def test_a_hostile_next_on_the_login_page_stays_an_escaped_value(client):
    response = client.get("/auth/login", query_string={"next": HOSTILE})
    assert_inert(response, "login next")


def test_json_endpoints_answer_json_that_no_browser_takes_for_a_page(client, hostile):
    for url, args in (
        ("/products/suggest", {"q": HOSTILE}),
        ("/products/suggest", {"q": "alert"}),
        ("/api/v1/pledges", {}),
    ):
        response = client.get(url, query_string=args)
        assert response.status_code == 200, url
        assert response.mimetype == "application/json", url
        assert response.headers["X-Content-Type-Options"] == "nosniff"
    pledges = client.get("/api/v1/pledges").get_json()
    assert HOSTILE in str(pledges)  # the data as it is, for a client to escape where it shows it


def test_hostile_names_sent_through_forms_come_back_escaped_in_the_flash_and_the_lists(
    client, actions, make, hostile
):
    actions.login_as(hostile.admin)
    response = actions.post(
        "/admin/organizations/new",
        {"code": "HOSTILE-1", "kind": "department", "name_zh": HOSTILE, "active": "y"},
        follow_redirects=True,
    )
    assert response.status_code == 200
    assert_inert(response, "organization saved")
    assert "已保存" in page_text(response)  # the flash that repeats the name

    actions.login_as(hostile.coordinator)
    region = hostile.pledge.regions[0]
    response = actions.post(
        "/pledges/new",
        {
            "name": HOSTILE,
            "kind": "fixed",
            "target": "1,000.00",
            "period_start": "2026-01",
            "period_end": "2026-12",
            "all_organizations": "y",
            "region_ids": [str(region.id)],
            "notes": f"{HOSTILE} {JS_URL}",
        },
        follow_redirects=True,
    )
    assert response.status_code == 200
    assert_inert(response, "pledge saved")

    # The welcome flash after logging in repeats the user's name.
    client.post("/auth/logout", data={"csrf_token": csrf_token(client.application, client)})
    response = actions.post(
        "/auth/login",
        {"email": hostile.staff.email, "password": PASSWORD},
        follow_redirects=True,
    )
    assert_inert(response, "welcome flash")


def test_a_refused_form_repeats_hostile_input_only_as_escaped_values(client, actions, hostile):
    actions.login_as(hostile.coordinator)
    response = actions.post("/pledges/new", {"name": HOSTILE, "target": "not a number"})
    assert response.status_code == 400
    assert_inert(response, "refused pledge form")


# --- open redirects -----------------------------------------------------------------------------

OFF_SITE = [
    "//evil.example",
    "///evil.example",
    "https://evil.example",
    "/\\evil.example",
    "\\\\evil.example",
    "%2F%2Fevil.example",
    "/%2F/evil.example",
    "\t//evil.example",
    "/\t/evil.example",
    "https:evil.example",
    "javascript:alert(1)",
    " //evil.example",
]
#: As sent on the wire, already percent-encoded: the server decodes them to the values above.
OFF_SITE_RAW_QUERIES = [
    "next=%2F%2Fevil.example",
    "next=%2F%5Cevil.example",
    "next=%09%2F%2Fevil.example",
    "next=%2F%09%2Fevil.example",
    "next=https%3A%2F%2Fevil.example",
]


def assert_stays_on_site(response, where: str) -> None:
    """A redirect a browser follows to this site: parsed the way browsers do (tabs and newlines
    dropped, backslashes read as slashes)."""
    assert response.status_code in (301, 302, 303, 307, 308), (where, response.status_code)
    location = response.headers["Location"]
    as_browser = re.sub(r"[\t\r\n]", "", location).replace("\\", "/")
    target = urlsplit(urljoin("http://shanhai.test/here/", as_browser))
    assert target.scheme == "http" and target.netloc == "shanhai.test", (where, location)
    assert "evil.example" not in target.netloc, (where, location)


@pytest.mark.parametrize("target", OFF_SITE)
def test_the_language_switch_never_leads_off_site(client, target):
    assert_stays_on_site(client.get("/lang/en", query_string={"next": target}), target)


@pytest.mark.parametrize("query", OFF_SITE_RAW_QUERIES)
def test_percent_encoded_targets_never_lead_off_site(client, make, actions, query):
    assert_stays_on_site(client.get(f"/lang/en?{query}"), query)
    actions.login_as(make.user(roles={Role.STAFF}))
    assert_stays_on_site(client.get(f"/auth/login?{query}"), f"login {query}")


@pytest.mark.parametrize("target", OFF_SITE)
def test_logging_in_never_leads_off_site(client, make, actions, target):
    user = make.user(roles={Role.STAFF})
    # The target in the form's hidden field, and in the URL the form is posted to.
    response = actions.post(
        "/auth/login", {"email": user.email, "password": PASSWORD, "next": target}
    )
    assert_stays_on_site(response, f"form {target!r}")
    client.post("/auth/logout", data={"csrf_token": csrf_token(client.application, client)})
    response = actions.post(
        "/auth/login",
        {"email": user.email, "password": PASSWORD},
        query_string={"next": target},
    )
    assert_stays_on_site(response, f"query {target!r}")
    # Already logged in, the login page sends the user on at once.
    response = client.get("/auth/login", query_string={"next": target})
    assert_stays_on_site(response, f"logged in {target!r}")


@pytest.mark.parametrize("target", OFF_SITE)
def test_logging_out_never_leads_off_site(client, make, actions, target):
    actions.login_as(make.user(roles={Role.STAFF}))
    response = actions.post("/auth/logout", {"next": target}, query_string={"next": target})
    assert_stays_on_site(response, target)


@pytest.mark.parametrize("target", OFF_SITE)
def test_the_counters_buttons_never_lead_off_site(client, make, actions, target):
    order = make.order()
    actions.login_as(make.user(roles={Role.COUNTER_CLERK}))
    response = actions.post(f"/counter/orders/{order.id}/ready", {"back": target})
    assert_stays_on_site(response, target)


def test_a_local_next_is_still_followed(client, make, actions):
    """The probes above can fail: a path on this site is where the user is sent."""
    user = make.user(roles={Role.STAFF})
    response = actions.post(
        "/auth/login", {"email": user.email, "password": PASSWORD, "next": "/cart"}
    )
    assert response.headers["Location"] == "/cart"
    assert client.get("/lang/en?next=/products%3Fq%3Ddynr").headers["Location"] == (
        "/products?q=dynr"
    )
