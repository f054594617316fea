"""Browser fixtures: the app on a real port with the demo data, driven by Debian's chromium.

The live server has its own SQLite file, built from the migrations and seeded with the demo
catalog and accounts, because the rest of the suite's per-test rollback cannot be seen from
another thread. Outside CI a missing or broken chromium skips these tests; in CI (CI=true) it
fails them, so a broken browser setup can never pass as green.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask_migrate import upgrade
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright
from playwright.sync_api import Error as PlaywrightError
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.serving import make_server

from app import create_app
from app.extensions import db
from app.services.clock import utcnow
from app.services.demo import DEMO_ACCOUNTS, DEMO_EMAIL_DOMAIN, seed_demo
from tools.stripe_standin import StripeStandIn

IN_CI = os.environ.get("CI", "").lower() == "true"
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

DEMO_PASSWORD = "browser-demo-2024"
#: Demo role (the e-mail's local part) -> the name the navbar shows once logged in.
DEMO_NAMES = {local: name for local, name, _roles, _org in DEMO_ACCOUNTS}

# Bounded waits: long enough for a loaded CI machine, short enough that a hang fails fast.
ACTION_TIMEOUT_MS = 10_000
NAVIGATION_TIMEOUT_MS = 15_000
LAUNCH_TIMEOUT_MS = 30_000
expect.set_options(timeout=ACTION_TIMEOUT_MS)

_PHASE_REPORTS = pytest.StashKey[dict[str, pytest.TestReport]]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> pytest.TestReport:
    # Kept on the item so the page fixture's teardown can tell whether the test failed.
    report = yield
    item.stash.setdefault(_PHASE_REPORTS, {})[report.when] = report
    return report


STRIPE_WEBHOOK_SECRET = "whsec_browser_standin"


@pytest.fixture(scope="session")
def stripe_standin() -> Iterator[StripeStandIn]:
    """The Stripe stand-in with its hosted payment page; it sends webhooks to the live server."""
    standin = StripeStandIn(webhook_secret=STRIPE_WEBHOOK_SECRET).serve()
    yield standin
    standin.close()


@pytest.fixture(scope="session")
def live_server(tmp_path_factory, stripe_standin) -> Iterator[str]:
    """The base URL of the app served with the demo data, online payment on the stand-in."""
    database = tmp_path_factory.mktemp("browser") / "browser.sqlite3"
    app = create_app(
        "testing",
        SQLALCHEMY_DATABASE_URI=f"sqlite:///{database}",
        PHOTO_DIR=str(tmp_path_factory.mktemp("photos")),
        # Every test logs in from 127.0.0.1 within a few seconds; the login limit has its own
        # tests, and here it would only turn later tests into 429 pages.
        LOGIN_RATE_LIMIT="1000 per minute",
        # As served in production: cached catalog content and the fast layout, which the
        # rest of the suite (NullCache) exercises only in test_pagecache.py.
        CACHE_TYPE="SimpleCache",
        CATALOG_CACHE_SECONDS=30,
        STRIPE_SECRET_KEY="sk_test_browser",
        STRIPE_WEBHOOK_SECRET=STRIPE_WEBHOOK_SECRET,
        STRIPE_API_BASE=stripe_standin.base_url,
        STRIPE_PAYMENT_METHODS=["card", "alipay", "wechat_pay"],
    )
    with app.app_context():
        upgrade()
        seed_demo(db.session, password=DEMO_PASSWORD, now=utcnow())
        db.session.commit()
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="live-server", daemon=True)
    thread.start()
    stripe_standin.webhook_url = f"http://127.0.0.1:{server.server_port}/stripe/webhook"
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()
        with app.app_context():
            db.engine.dispose()


@pytest.fixture(scope="session")
def live_db(live_server, tmp_path_factory) -> Iterator[sessionmaker[Session]]:
    """Sessions on the live server's SQLite file (made by its fixture under the session's
    temporary directory), to read what the pages do not show and to prepare data."""
    # pytest also links the directory as browsercurrent/: the same file twice.
    found = tmp_path_factory.getbasetemp().glob("browser*/browser.sqlite3")
    files = sorted({path.resolve() for path in found})
    assert len(files) == 1, f"expected the live server's one database, found {files}"
    engine = sa.create_engine(f"sqlite:///{files[0]}")
    yield sessionmaker(engine)
    engine.dispose()


def _browser_unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"Browser tests cannot run in CI: {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        _browser_unavailable(f"{CHROMIUM} is not installed (`make browser-deps` installs it)")
    with sync_playwright() as playwright:
        try:
            browser = playwright.chromium.launch(
                executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, timeout=LAUNCH_TIMEOUT_MS
            )
        except PlaywrightError as error:
            _browser_unavailable(f"{CHROMIUM} could not be started: {error.message}")
        try:
            yield browser
        finally:
            browser.close()


def _artifact_name(test_name: str) -> str:
    return re.sub(r"[^\w\[\]().-]+", "_", test_name)


@pytest.fixture
def new_page(browser, live_server, request) -> Iterator[Callable[..., Page]]:
    """Opens a page in a fresh context (own cookies): `new_page(width=390)`.

    When the test fails, every page it opened is saved to test-artifacts/<test name>.png.
    """
    contexts: list[BrowserContext] = []

    def open_page(width: int = 1280, height: int = 900, locale: str = "zh-CN") -> Page:
        context = browser.new_context(
            base_url=live_server, viewport={"width": width, "height": height}, locale=locale
        )
        context.set_default_timeout(ACTION_TIMEOUT_MS)
        context.set_default_navigation_timeout(NAVIGATION_TIMEOUT_MS)
        contexts.append(context)
        return context.new_page()

    yield open_page

    call = request.node.stash.get(_PHASE_REPORTS, {}).get("call")
    pages = [page for context in contexts for page in context.pages]
    if call is not None and call.failed and pages:
        ARTIFACTS.mkdir(exist_ok=True)
        name = _artifact_name(request.node.name)
        for number, page in enumerate(pages):
            suffix = f"-{number + 1}" if len(pages) > 1 else ""
            try:
                page.screenshot(path=ARTIFACTS / f"{name}{suffix}.png", full_page=True)
            except PlaywrightError as error:
                # The failure itself is what matters; a page that cannot be drawn adds nothing.
                print(f"No screenshot of {page.url}: {error.message}")
    for context in contexts:
        context.close()


@pytest.fixture
def page(new_page) -> Page:
    """A 1280 x 900 page with a Chinese browser, in a context of its own."""
    return new_page()


def _save_screenshot(page: Page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=path, full_page=True)
    return path


@pytest.fixture
def screenshot() -> Callable[[Page, str], Path]:
    """`screenshot(page, "home-390")` keeps a full-page picture in test-artifacts/ to look at."""
    return _save_screenshot


def _log_in_as(page: Page, role: str) -> str:
    page.goto("/auth/login")
    # Scoped to <main>: the navbar has a search form with its own submit button.
    form = page.locator("main form")
    form.locator("#email").fill(f"{role}@{DEMO_EMAIL_DOMAIN}")
    form.locator("#password").fill(DEMO_PASSWORD)
    form.locator("button[type=submit]").click()
    # The logout form exists only for a logged-in user, whatever the language or screen width.
    expect(page.locator('nav form[action$="/auth/logout"]')).to_be_attached()
    return DEMO_NAMES[role]


@pytest.fixture
def log_in_as() -> Callable[[Page, str], str]:
    """`log_in_as(page, "buyer")` logs in through the real form; returns the account's name."""
    return _log_in_as
