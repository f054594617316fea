"""Hostile input on every form, upload and query string: never a server error, and a refused
request changes nothing.

For every URL rule that takes a POST, a user allowed to use it opens the page that holds its
form, and hypothesis fills that form's own fields (read from the rendered HTML) with random,
oversized, wrongly typed and unicode-heavy values, repeats or drops them, adds unknown keys and
uploads random bytes under random file names, always with a valid CSRF token so that the
request reaches the view's own checks. Every GET page gets the same treatment in its query
string. Each example runs in a savepoint that is rolled back after it, so examples do not leak
into each other and a failure replays the same way.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import parse_qsl, urljoin, urlsplit

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from werkzeug.datastructures import MultiDict

from app import create_app
from app.extensions import limiter
from app.models import Invoice, Role
from app.models.base import Base
from app.services import accounts, cart, invoices, orders, sales_import
from app.services import canteen as bulk
from app.services.clock import local_date, utcnow
from app.web.access import LOGGED_IN, PUBLIC
from tests.conftest import IN_CI, csrf_token
from tests.helpers import cheap_password_hash, staged_import
from tests.test_access import bulk_delivery, real_url

APP_DIR = Path(__file__).resolve().parents[2] / "app"

#: Examples per URL rule. Small, because there are a hundred rules and each example is a full
#: request plus a look at every table; CI replays the same examples (derandomize) so that a
#: failure there can be reproduced, a local run tries new ones each time.
#: HOSTILE_EXAMPLES=10 multiplies both, for a longer hunt by hand.
_SCALE = int(os.environ.get("HOSTILE_EXAMPLES", "1"))
POST_EXAMPLES = 20 * _SCALE
GET_EXAMPLES = 10 * _SCALE
HOSTILE = settings(
    deadline=None,
    derandomize=IN_CI,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
)


# --- the URL rules, as the tests are collected ----------------------------------------------


def _rules() -> list:
    return sorted(
        create_app("testing", SQLALCHEMY_DATABASE_URI="sqlite://").url_map.iter_rules(),
        key=lambda rule: (rule.rule, rule.endpoint),
    )


_RULES = _rules()
POST_RULES = [(rule.rule, rule.endpoint) for rule in _RULES if "POST" in rule.methods]
GET_RULES = [
    (rule.rule, rule.endpoint)
    for rule in _RULES
    if "GET" in rule.methods and rule.endpoint not in ("static", "i18n.switch")
]


def _rule(app, rule_text: str, endpoint: str, method: str):
    (rule,) = [
        rule
        for rule in app.url_map.iter_rules()
        if rule.rule == rule_text and rule.endpoint == endpoint and method in rule.methods
    ]
    return rule


# --- who asks -------------------------------------------------------------------------------

#: The role a rule's user gets: the most specific one the rule allows, so that object-level
#: checks (a canteen's own orders, a supplier's own products) pass and the form is reached.
ROLE_PREFERENCE = [
    Role.CANTEEN_BUYER,
    Role.CANTEEN_MANAGER,
    Role.SUPPLIER,
    Role.STAFF,
    Role.COUNTER_CLERK,
    Role.COORDINATOR,
    Role.ADMIN,
]


def _home(make, role: Role):
    if role in (Role.CANTEEN_BUYER, Role.CANTEEN_MANAGER):
        return make.canteen()
    if role == Role.SUPPLIER:
        return make.supplier()
    return make.organization()


#: Meant for visitors who are not logged in (a logged-in user is sent away from these).
ANONYMOUS = {"auth.login", "auth.register", "webhooks.stripe_webhook"}


def _user_for(app, make, rule):
    """A user allowed to use the rule, or None where it is meant for anonymous visitors."""
    access = getattr(app.view_functions[rule.endpoint], "access", PUBLIC)
    if rule.endpoint in ANONYMOUS:
        return None
    if access in (PUBLIC, LOGGED_IN):
        role = Role.STAFF
    else:
        role = next(role for role in ROLE_PREFERENCE if role in access)
    return make.user(roles={role}, organization=_home(make, role))


# --- objects in the state whose page shows the form ----------------------------------------


def _in_cart(make, user) -> int:
    product = make.product()
    cart.add(make.session, user, product.id, "1", utcnow())
    make.session.commit()
    return product.id


def _draft(make, user):
    return make.bulk_order(user, [(make.bulk_product(), "10")], submit=False)


def _awaiting_approval(make, manager):
    buyer = make.user(roles={Role.CANTEEN_BUYER}, organization=manager.organization)
    policy = bulk.CanteenPolicy(approval_threshold_fen=0)
    return make.bulk_order(buyer, [(make.bulk_product(), "10")], policy=policy)


def _refund_due(make, coordinator):
    """An invoice paid in full, then credited: the supplier owes money back."""
    delivery = bulk_delivery(make, None, "received")
    invoice = make.session.scalar(sa.select(Invoice).where(Invoice.delivery_id == delivery.id))
    now = utcnow()
    yuan, fen = divmod(invoice.total_fen, 100)
    invoices.record_payment(
        make.session,
        invoice,
        coordinator,
        now,
        paid_on=local_date(now),
        reference="CCB-1",
        amount=f"{yuan}.{fen:02d}",
    )
    invoices.credit(make.session, invoice, coordinator, now, {invoice.lines[0].id: "1"}, "破损")
    make.session.commit()
    return invoice


def _confirmed(make, seller):
    buyer = make.user(roles={Role.CANTEEN_BUYER}, organization=make.canteen())
    order = make.bulk_order(buyer, [(make.bulk_product(supplier=seller.organization), "10")])
    (delivery,) = order.deliveries
    bulk.confirm(make.session, delivery, seller, utcnow())
    make.session.commit()
    return delivery


def _paid_at_counter(make, clerk):
    order = make.order()
    orders.take_counter_payment(make.session, order, clerk, utcnow())
    make.session.commit()
    return order


def _committed_import(make, coordinator):
    batch = staged_import(make)
    sales_import.commit(make.session, batch, coordinator, utcnow())
    make.session.commit()
    return batch


#: URLs whose form a page shows only in a state test_access's `real_url` does not build.
SCENES = {
    "counter.refund": lambda make, user: (
        f"/counter/orders/{_paid_at_counter(make, user).id}/refund"
    ),
    "pledges.reverse_import": lambda make, user: (
        f"/pledges/imports/{_committed_import(make, user).id}/reverse"
    ),
    "shop.change_quantity": lambda make, user: f"/cart/{_in_cart(make, user)}/quantity",
    "shop.remove_from_cart": lambda make, user: f"/cart/{_in_cart(make, user)}/remove",
    "shop.checkout": lambda make, user: _in_cart(make, user) and "/checkout",
    "shop.pay_at_counter": lambda make, user: (
        f"/orders/{make.online_order(buyer=user).id}/pay-at-counter"
    ),
    "canteen.order_detail": lambda make, user: f"/canteen/orders/{_draft(make, user).id}",
    # No page shows a form for this one (see NO_FORM_SHOWN), but a draft is what it takes.
    "canteen.submit": lambda make, user: f"/canteen/orders/{_draft(make, user).id}/submit",
    "canteen.approve": lambda make, user: (
        f"/canteen/orders/{_awaiting_approval(make, user).id}/approve"
    ),
    "canteen.reject": lambda make, user: (
        f"/canteen/orders/{_awaiting_approval(make, user).id}/reject"
    ),
    "supplier.ship": lambda make, user: f"/supplier/deliveries/{_confirmed(make, user).id}/ship",
    "invoices.record_refund": lambda make, user: f"/invoices/{_refund_due(make, user).id}/refunds",
    "pledges.reattribute": lambda make, user: (
        f"/pledges/reattribute?bulk_order={bulk_delivery(make, None, 'received').order_id}"
    ),
}

#: POST rules whose form no page shows in the state built here: they get random keys only.
#: (The webhook is not a form; tests/views/test_webhook.py and the test below cover it.)
NO_FORM_SHOWN = {
    "canteen.accept_reduction",  # a supplier must first confirm less than was ordered
    "canteen.cancel_line",  # likewise
    "canteen.submit",  # a draft's page submits through its own form (then=submit)
    "inbox.mark_read",  # unread notifications
    "shop.pay_online",  # online payment configured (see test_online_checkout.py)
    "supplier.photo_main",  # a second photo
    "supplier.restore_listing",  # an archived listing
    "webhooks.stripe_webhook",
}


def _url_for(rule, make, user) -> str:
    scene = SCENES.get(rule.endpoint)
    return scene(make, user) if scene else real_url(rule, make, user)


# --- the forms on a page --------------------------------------------------------------------


@dataclass
class FormField:
    kind: str  # text, select, checkbox, radio, hidden, file, textarea, password, submit...
    values: list[str] = field(default_factory=list)  # what the page offers or fills in


@dataclass
class Form:
    method: str
    action: str
    fields: dict[str, FormField] = field(default_factory=dict)


class _FormParser(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.forms: list[Form] = []
        self._form: Form | None = None
        self._select: FormField | None = None

    def _field(self, name: str, kind: str) -> FormField:
        return self._form.fields.setdefault(name, FormField(kind))

    def handle_starttag(self, tag, attrs):
        a = {key: value or "" for key, value in attrs}
        if tag == "form":
            self._form = Form(a.get("method", "get").lower() or "get", a.get("action", ""))
            self.forms.append(self._form)
            return
        if self._form is None:
            return
        name = a.get("name")
        if tag == "input" and name:
            kind = a.get("type", "text").lower() or "text"
            self._field(name, kind).values.append(
                a.get("value", "on" if kind == "checkbox" else "")
            )
        elif tag == "button" and name:
            self._field(name, "submit").values.append(a.get("value", ""))
        elif tag == "select" and name:
            self._select = self._field(name, "select")
        elif tag == "option" and self._select is not None:
            self._select.values.append(a.get("value", ""))
        elif tag == "textarea" and name:
            self._field(name, "textarea").values.append("")

    def handle_endtag(self, tag):
        if tag == "form":
            self._form = None
        elif tag == "select":
            self._select = None


def forms_on(html: str) -> list[Form]:
    parser = _FormParser()
    parser.feed(html)
    return parser.forms


def _path(page_url: str, action: str) -> str:
    return urlsplit(urljoin(page_url, action or page_url)).path


def _candidate_pages(app, post_url: str) -> Iterator[str]:
    """Where the form that posts to `post_url` may be: the URL itself, the pages above it
    (/orders/7/cancel is a button on /orders/7), the pages about the same objects (a product's
    archive button is on its edit page) and, for forms in the layout, the home page."""
    yield post_url
    target = urlsplit(post_url).path
    page = target
    while page:
        yield page
        page = page.rstrip("/").rpartition("/")[0]
    _post_rule, values = app.url_map.bind("localhost").match(target, "POST", return_rule=True)
    for rule in app.url_map.iter_rules():
        if "GET" in rule.methods and rule.arguments and rule.arguments <= values.keys():
            yield rule.build({name: values[name] for name in rule.arguments})[1]
    yield "/"


def form_for(app, client, post_url: str) -> tuple[Form | None, str | None]:
    """The form that posts to `post_url`, and the page it was found on."""
    target = urlsplit(post_url).path
    for page in _candidate_pages(app, post_url):
        response = client.get(page)
        if response.status_code != 200 or response.mimetype != "text/html":
            continue
        for form in forms_on(response.get_data(as_text=True)):
            if form.method == "post" and _path(page, form.action) == target:
                return form, page
    return None, None


# --- hostile values --------------------------------------------------------------------------

#: What a browser can send (no lone surrogates), control characters and NUL included.
_ANY_CHAR = st.characters(exclude_categories=("Cs",))
_NUMBERS_AS_TEXT = [
    "0",
    "-0",
    "-1",
    "1e309",
    "-1e309",
    "1e-400",
    "NaN",
    "nan",
    "Infinity",
    "-inf",
    "１２",  # full-width digits
    "١٢٣",  # Arabic-Indic digits
    "²",  # a digit to str.isdigit(), not to int()
    "½",
    "12.345678901234567890",
    "0.001",
    "9" * 30,
    "-" + "9" * 30,
    "9" * 5000,  # past the 4,300 digits int() of a str accepts
    "0." + "0" * 5000 + "1",
    "1e999999999",
    "2147483648",
    "9223372036854775808",
    "-9223372036854775809",
    "1_000",
    "1,000.50",
    " 12 ",
    "0x1F",
    "1e3",
    "+5",
    "--5",
    ".",
    "3.",
    "¥12.50",
]
_DATES_AS_TEXT = [
    "2026-02-30",
    "2026-13-01",
    "0000-01-01",
    "0001-01-01",
    "9999-12-31",
    "10000-01-01",
    "-2026-01-01",
    "2026-1-1",
    "2026/01/01",
    "2026-01",
    "2026-00",
    "9999-99",
    "20260101",
    "2026-01-01T00:00:00",
]
_UNICODE = [
    "👨‍👩‍👧‍👦🧧🀄",
    "\u202eevil\u202c",  # right-to-left override
    "مرحبا بالعالم",
    "שלום",
    "\ufeffBOM",
    "a\u200bb\u200dc",  # zero-width characters
    "ｆｕｌｌ　ｗｉｄｔｈ",
    "e\u0301" * 200,  # combining marks
    "𠜎𠜱𠝹𠱓",  # outside the BMP
    "\x00",
    "a\x00b",
    "\r\n\t",
    "<script>alert(1)</script>",
    "' OR 1=1 --",
    "%00%ff",
    "{{7*7}}",
    "../../etc/passwd",
    "user@shanhai.demo",
]
_HUGE = [
    "9" * 100_000,
    "字" * 40_000,  # 120 kB of UTF-8
    "a" * 100_000,
    "😀" * 25_000,
]

_numbers = st.sampled_from(_NUMBERS_AS_TEXT)
hostile_text = st.one_of(
    st.text(_ANY_CHAR, max_size=40),
    _numbers,  # twice: most fields are numbers, and most 500s were in reading one
    _numbers,
    st.sampled_from(_DATES_AS_TEXT),
    st.sampled_from(_UNICODE),
    st.sampled_from(_HUGE),
    st.integers().map(str),
    st.decimals(allow_nan=True, allow_infinity=True).map(str),
    st.floats().map(repr),
    st.just(""),
)


def _value(form_field: FormField) -> st.SearchStrategy[str]:
    """Half the time what the page offers (so that the other fields pass and the hostile one
    is what the view must cope with), else anything."""
    offered = [value for value in form_field.values if value is not None]
    if offered:
        return st.one_of(st.sampled_from(offered), hostile_text)
    return hostile_text


def _renamed(name: str) -> st.SearchStrategy[str]:
    """The field's name with its number changed (lines-0-x, qty-12): such names are parsed."""
    parts = re.split(r"(\d+)", name)
    if len(parts) == 1:
        return st.just(name)
    number = st.sampled_from(["-1", "²", "１", "١", "9" * 25, "00", "2147483648", ""])
    return number.map(lambda n: "".join(n if i % 2 else part for i, part in enumerate(parts)))


_FILE_STARTS = [
    b"",
    b"PK\x03\x04",  # a zip (xlsx)
    b"\x89PNG\r\n\x1a\n",
    b"\xff\xd8\xff\xe0",
    b"GIF89a",
    b"RIFF\x00\x00\x00\x00WEBP",
    b"%PDF-1.7\n",
    b"\xef\xbb\xbf",  # a UTF-8 BOM (CSV from Excel)
    b"\xff\xfe",  # UTF-16
]
_FILE_NAMES = st.one_of(
    st.sampled_from(
        ["sheet.csv", "sheet.xlsx", "photo.jpg", "photo.png", "a.webp", "", "..", "../x.csv"]
    ),
    st.text(_ANY_CHAR.filter(lambda ch: ch not in '\r\n"\\'), max_size=30),
    st.tuples(
        st.text(_ANY_CHAR.filter(lambda ch: ch not in '\r\n"\\/'), max_size=10),
        st.sampled_from([".csv", ".xlsx", ".jpg", ".png", ".exe", ".CSV", ".tar.gz"]),
    ).map("".join),
)


def _csv_with(header: bytes | None) -> st.SearchStrategy[bytes]:
    """A CSV whose rows hold hostile values, under the page's own template header if known."""
    cell = hostile_text.filter(lambda text: len(text) < 2000)
    rows = st.lists(st.lists(cell, max_size=12), max_size=5)

    def render(data) -> bytes:
        lines = [",".join('"' + value.replace('"', '""') + '"' for value in row) for row in data]
        return (header or b"") + "\n".join(lines).encode("utf-8", "surrogatepass")

    return rows.map(render)


def _file(header: bytes | None) -> st.SearchStrategy[tuple]:
    content = st.one_of(
        st.tuples(st.sampled_from(_FILE_STARTS), st.binary(max_size=3000)).map(b"".join),
        _csv_with(header),
    )
    return st.tuples(content, _FILE_NAMES)


@st.composite
def form_data(draw, form: Form | None, csv_header: bytes | None) -> list[tuple[str, object]]:
    """(name, value) pairs in order: each known field sent 0-3 times, some renamed, and a few
    unknown keys."""
    pairs: list[tuple[str, object]] = []
    for name, form_field in (form.fields if form else {}).items():
        if name == "csrf_token":
            continue
        for _ in range(draw(st.sampled_from([1, 1, 1, 1, 0, 2, 3]))):
            key = draw(st.one_of(st.just(name), _renamed(name))) if draw(st.booleans()) else name
            if form_field.kind == "file":
                content, filename = draw(_file(csv_header))
                pairs.append((key, (io.BytesIO(content), filename)))
            else:
                pairs.append((key, draw(_value(form_field))))
    extra = st.tuples(st.text(_ANY_CHAR, min_size=1, max_size=20), hostile_text)
    pairs.extend(draw(st.lists(extra, max_size=2)))
    return pairs


#: Explicit examples ahead of the random ones: every text field of the form set to one of
#: these at once (the choices left at what the page offers), so that each kind of trouble
#: reaches every field whatever the random draws hit.
SWEEP = [
    "",
    "-1",
    "9" * 5000,
    "1e309",
    "NaN",
    "１２",
    "²",
    "0.001",
    "2026-02-30",
    "\u202eevil\u202c",
    "字" * 40_000,
    "a\x00b",
]
_CHOICES = {"select", "radio", "checkbox", "submit"}


def sweep(form: Form | None, literal: str) -> list[tuple[str, object]]:
    pairs: list[tuple[str, object]] = []
    for name, form_field in (form.fields if form else {}).items():
        if name == "csrf_token":
            continue
        if form_field.kind == "file":
            pairs.append((name, (io.BytesIO(literal.encode()), "sweep.csv")))
        elif form_field.kind in _CHOICES:
            offered = [value for value in form_field.values if value] or [""]
            pairs.append((name, offered[0]))
        else:
            pairs.append((name, literal))
    return pairs


# --- what the database holds ----------------------------------------------------------------


def fingerprint(session) -> dict[str, tuple[int, str]]:
    """(rows, digest of every row) of every table: an insert, delete or update shows."""
    found = {}
    for table in Base.metadata.sorted_tables:
        order = list(table.primary_key.columns) or list(table.columns)
        rows = session.execute(sa.select(table).order_by(*order)).all()
        digest = hashlib.blake2b(repr([tuple(row) for row in rows]).encode(), digest_size=16)
        found[table.name] = (len(rows), digest.hexdigest())
    return found


@contextmanager
def undone(session) -> Iterator[None]:
    """Everything the block writes, the app's commits included, is rolled back after it."""
    session.commit()
    savepoint = session.get_bind().begin_nested()
    try:
        yield
    finally:
        session.rollback()
        savepoint.rollback()
        session.expire_all()


def _changed(before: dict, after: dict) -> list[str]:
    return sorted(name for name in before if before[name] != after[name])


# --- the tests ------------------------------------------------------------------------------


@pytest.fixture
def quick_hashes(monkeypatch):
    # Users are made for every rule; the real password hash would take most of the time.
    monkeypatch.setattr(accounts, "generate_password_hash", cheap_password_hash)


def _log_in(client, user) -> None:
    with client.session_transaction() as flask_session:
        flask_session.clear()
        if user is not None:
            flask_session["_user_id"] = user.get_id()
            flask_session["_fresh"] = True


def _template_header(client, page: str | None) -> bytes | None:
    """The header row of the CSV template the page links to, if it links to one."""
    if page is None:
        return None
    html = client.get(page).get_data(as_text=True)
    link = re.search(r'href="([^"]*template[^"]*\.csv)"', html)
    if not link:
        return None
    response = client.get(link.group(1))
    if response.status_code != 200:
        return None
    return response.get_data().splitlines(keepends=True)[0]


def _shown(value) -> str:
    if isinstance(value, tuple):  # an upload: (stream, filename)
        value = f"<file {value[1]!r}, {len(value[0].getvalue())} bytes>"
    text = repr(value)
    return text if len(text) <= 80 else f"{text[:60]}…({len(text)} characters)"


def _sent(url, endpoint, form, pairs) -> str:
    """What is sent, readable even when a value is 100 kB (hypothesis leaves those out). Made
    before the request: the test client closes the uploads' streams."""
    sent = "\n  ".join(f"{key!r}: {_shown(value)}" for key, value in pairs)
    fields = ", ".join(sorted(form.fields)) if form else "(no form found on any page)"
    return f"{endpoint} {url}; its form: {fields}\nsent:\n  {sent}"


@pytest.mark.parametrize(("rule_text", "endpoint"), POST_RULES)
def test_hostile_form_posts_never_fail_and_refusals_change_nothing(
    app, client, session, make, quick_hashes, rule_text, endpoint
):
    rule = _rule(app, rule_text, endpoint, "POST")
    user = _user_for(app, make, rule)
    url = _url_for(rule, make, user)
    _log_in(client, user)
    form, page = form_for(app, client, url)
    csv_header = _template_header(client, page)
    session.commit()

    @settings(HOSTILE, max_examples=POST_EXAMPLES)
    @given(pairs=form_data(form, csv_header), with_token=st.sampled_from([True] * 5 + [False]))
    def attempt(pairs, with_token):
        with undone(session):
            limiter.reset()  # a login form must check its fields, not answer 429 at once
            _log_in(client, user)
            data = MultiDict(pairs)
            if with_token:
                data.add("csrf_token", csrf_token(app, client))
            report = _sent(url, endpoint, form, pairs)
            before = fingerprint(session)
            response = client.post(url, data=data)
            assert response.status_code < 500, report
            if 400 <= response.status_code < 500:
                assert _changed(before, fingerprint(session)) == [], report

    for literal in SWEEP:
        attempt = example(pairs=sweep(form, literal), with_token=True)(attempt)
    attempt()


#: Query arguments any page may read: those the app's code reads by name, found in its source.
_ARGUMENT_NAMES = sorted(
    {
        name
        for path in APP_DIR.rglob("*.py")
        for name in re.findall(
            r"request\.args\.(?:get|getlist)\(\s*[\"']([^\"']+)[\"']", path.read_text("utf-8")
        )
    }
)


def _query_names(html: str, page: str) -> dict[str, FormField]:
    """The query arguments the page itself offers: its GET forms' fields and the arguments of
    its links back to itself, with their values."""
    names: dict[str, FormField] = {}
    for form in forms_on(html):
        if form.method == "get":
            for name, form_field in form.fields.items():
                names.setdefault(name, FormField(form_field.kind)).values.extend(form_field.values)
    for href in re.findall(r'href="([^"]*\?[^"]*)"', html):
        href = href.replace("&amp;", "&")
        if _path(page, href) == urlsplit(page).path:
            for name, value in parse_qsl(urlsplit(href).query, keep_blank_values=True):
                names.setdefault(name, FormField("text")).values.append(value)
    return names


@st.composite
def query_args(draw, own: dict[str, FormField]) -> list[tuple[str, str]]:
    """Mostly the page's own arguments; else any the app reads somewhere, or a made-up one."""
    names = {name: FormField("text") for name in _ARGUMENT_NAMES} | own
    pick = st.sampled_from(sorted(own)) if own else st.sampled_from(_ARGUMENT_NAMES)
    chosen = draw(st.lists(st.one_of(pick, pick, st.sampled_from(_ARGUMENT_NAMES)), max_size=5))
    # At most what gunicorn lets through in a request line (4,094 bytes by default).
    pairs = [(name, draw(_value(names[name]).filter(lambda v: len(v) < 1000))) for name in chosen]
    extra = st.tuples(st.text(_ANY_CHAR, min_size=1, max_size=20), st.text(_ANY_CHAR, max_size=20))
    pairs.extend(draw(st.lists(extra, max_size=1)))
    return pairs


@pytest.mark.parametrize(("rule_text", "endpoint"), GET_RULES)
def test_hostile_query_strings_never_fail_and_refusals_change_nothing(
    app, client, session, make, quick_hashes, rule_text, endpoint
):
    rule = _rule(app, rule_text, endpoint, "GET")
    user = _user_for(app, make, rule)
    url = real_url(rule, make, user)
    _log_in(client, user)
    first = client.get(url)
    html = first.get_data(as_text=True) if first.mimetype == "text/html" else ""
    names = _query_names(html, url)
    session.commit()

    @settings(HOSTILE, max_examples=GET_EXAMPLES)
    @given(pairs=query_args(names))
    def attempt(pairs):
        with undone(session):
            _log_in(client, user)
            before = fingerprint(session)
            report = _sent(url, endpoint, None, pairs)
            response = client.get(url, query_string=MultiDict(pairs))
            assert response.status_code < 500, report
            if 400 <= response.status_code < 500:
                assert _changed(before, fingerprint(session)) == [], report

    for literal in SWEEP:
        if len(literal) < 1000:  # what fits a request line (see query_args)
            attempt = example(pairs=[(name, literal) for name in names])(attempt)
    attempt()


def test_the_stripe_webhook_refuses_hostile_bodies_and_changes_nothing(
    app, client, session, make, stripe_api
):
    """With online payment on, random bodies and signatures are refused (400), and nothing
    is written."""
    make.online_order()
    session.commit()

    @settings(HOSTILE, max_examples=POST_EXAMPLES)
    @given(
        body=st.one_of(
            st.binary(max_size=2000),
            st.text(_ANY_CHAR, max_size=200).map(str.encode),
            st.sampled_from(
                [b"{}", b'{"type": "checkout.session.completed"}', b"[]", b"null", b"1e309"]
            ),
        ),
        signature=st.one_of(
            st.none(),
            st.text(_ANY_CHAR.filter(lambda ch: ch not in "\r\n"), max_size=80),
            st.integers(min_value=0).map(lambda t: f"t={t},v1={'0' * 64}"),
        ),
    )
    def attempt(body, signature):
        with undone(session):
            before = fingerprint(session)
            headers = {"Stripe-Signature": signature} if signature is not None else {}
            try:
                headers["Stripe-Signature"].encode("latin-1")
            except (KeyError, UnicodeEncodeError):
                headers.pop("Stripe-Signature", None)
            response = client.post(
                "/stripe/webhook", data=body, headers=headers, content_type="application/json"
            )
            assert response.status_code == 400
            assert _changed(before, fingerprint(session)) == []

    attempt()


def test_the_fingerprint_sees_an_update_an_insert_and_a_delete(session, make):
    """The check above can fail: one changed value in one row is noticed."""
    product = make.product()
    session.commit()
    before = fingerprint(session)
    with undone(session):
        product.retail_price_fen += 1
        session.flush()
        assert _changed(before, fingerprint(session)) == ["products"]
    assert _changed(before, fingerprint(session)) == []
    with undone(session):
        make.category()
        assert _changed(before, fingerprint(session)) == ["categories"]
    assert _changed(before, fingerprint(session)) == []


def test_the_forms_are_found(app, client, session, make, quick_hashes):
    """The hostile posts reach real forms: the form of most POST rules is found on a page, with
    its fields (else the test above would only send unknown keys)."""
    found, uploads, templates = {}, set(), set()
    for rule_text, endpoint in POST_RULES:
        rule = _rule(app, rule_text, endpoint, "POST")
        user = _user_for(app, make, rule)
        url = _url_for(rule, make, user)
        _log_in(client, user)
        form, page = form_for(app, client, url)
        found[endpoint] = form is not None
        if form is not None and any(f.kind == "file" for f in form.fields.values()):
            uploads.add(endpoint)
            if _template_header(client, page):
                templates.add(endpoint)
    missing = sorted(endpoint for endpoint, ok in found.items() if not ok)
    assert set(missing) ^ NO_FORM_SHOWN == set()
    # Every upload gets random files, the spreadsheet imports also CSVs under their own header.
    assert uploads == {
        "canteen.upload_sheet",
        "pledges.imports",
        "supplier.import_products",
        "supplier.upload_photos",
    }
    assert templates == {"canteen.upload_sheet", "pledges.imports", "supplier.import_products"}
