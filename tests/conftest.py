"""Test fixtures: the schema built once from the migrations, a rolled-back transaction per test.

The suite runs on a SQLite file by default and on PostgreSQL when TEST_DATABASE_URL is set
(`make test` does both when it is). In CI (CI=true) a database or browser that cannot be reached
fails the run instead of skipping tests.
"""

from __future__ import annotations

import email
import email.policy
import os
import re
import socket

import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller
from flask_migrate import upgrade
from itsdangerous import URLSafeTimedSerializer
from sqlalchemy.orm import scoped_session, sessionmaker

from app import create_app
from app.extensions import db, limiter
from app.services.notify import MailSettings
from app.services.payments import StripeGateway
from tests import helpers
from tools.stripe_standin import StripeStandIn

IN_CI = os.environ.get("CI", "").lower() == "true"


def _reset_postgres(url: str) -> None:
    """Drop and recreate schema public: only ever on a database whose name says it is for tests."""
    database = sa.engine.make_url(url).database
    if not database or "test" not in database.lower():
        named = f"the database {database!r}" if database else "no database"
        pytest.exit(
            f"Refusing to run: TEST_DATABASE_URL names {named}, and the tests drop its whole "
            "schema public. Point it at a database whose name contains 'test'.",
            returncode=pytest.ExitCode.USAGE_ERROR,
        )
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("DROP SCHEMA public CASCADE"))
            conn.execute(sa.text("CREATE SCHEMA public"))
    except sa.exc.OperationalError as error:
        message = f"TEST_DATABASE_URL is set but PostgreSQL cannot be reached: {error}"
        if IN_CI:
            pytest.exit(message, returncode=3)
        raise
    finally:
        engine.dispose()


@pytest.fixture(scope="session")
def database_url(tmp_path_factory) -> str:
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        _reset_postgres(url)
        return url
    return f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.sqlite3'}"


@pytest.fixture(scope="session")
def app(database_url, tmp_path_factory):
    """The app, with the schema built once by running every migration."""
    app = create_app(
        "testing",
        SQLALCHEMY_DATABASE_URI=database_url,
        PHOTO_DIR=str(tmp_path_factory.mktemp("photos")),
    )
    with app.app_context():
        upgrade()
    return app


class _TestSession(scoped_session):
    """One session for the whole test, shared by the test code and every request it makes.

    Each request ends with `remove()`; here that only expires loaded objects, so the test keeps
    using what it built while the next request still reads fresh rows.
    """

    def remove(self) -> None:
        if self.registry.has():
            self.registry().expire_all()


@pytest.fixture
def session(app):
    """The database session; everything the test does is rolled back at the end."""
    with app.app_context():
        connection = db.engine.connect()
    transaction = connection.begin()
    # Commits inside the app become savepoint releases of the outer transaction.
    factory = sessionmaker(bind=connection, join_transaction_mode="create_savepoint")
    test_session = _TestSession(factory, scopefunc=lambda: "test")
    original = db.session
    db.session = test_session
    try:
        yield test_session
    finally:
        db.session = original
        test_session.registry().close()
        transaction.rollback()
        connection.close()


@pytest.fixture(autouse=True)
def _fresh_rate_limits(app):
    with app.app_context():
        limiter.reset()


@pytest.fixture
def client(app, session):
    return app.test_client()


@pytest.fixture
def runner(app, session):
    return app.test_cli_runner()


def csrf_token(app, client) -> str:
    """A valid CSRF token for the client's session, as Flask-WTF would put in a form."""
    with client.session_transaction() as flask_session:
        raw = flask_session.setdefault("csrf_token", os.urandom(20).hex())
    return URLSafeTimedSerializer(app.secret_key, salt="wtf-csrf-token").dumps(raw)


class Actions:
    """What a test does as a user: `actions.login_as(user)`, `actions.post(url, data)`."""

    def __init__(self, app, client):
        self.app = app
        self.client = client

    def login_as(self, user):
        with self.client.session_transaction() as flask_session:
            flask_session["_user_id"] = user.get_id()
            flask_session["_fresh"] = True
        return user

    def post(self, url, data=None, **kwargs):
        data = {"csrf_token": csrf_token(self.app, self.client), **(data or {})}
        return self.client.post(url, data=data, **kwargs)


@pytest.fixture
def actions(app, client):
    return Actions(app, client)


STRIPE_WEBHOOK_SECRET = "whsec_test_standin"


@pytest.fixture(scope="session")
def stripe_server():
    """The local Stripe stand-in (tools/stripe_standin.py) the real stripe library talks to."""
    server = StripeStandIn().serve()
    yield server
    server.close()


@pytest.fixture
def stripe_api(app, stripe_server):
    """Online payment switched on, pointed at the stand-in; its records start empty."""
    stripe_server.reset()
    previous = app.extensions["stripe_gateway"]
    app.extensions["stripe_gateway"] = StripeGateway(
        {
            "STRIPE_SECRET_KEY": "sk_test_standin",
            "STRIPE_WEBHOOK_SECRET": STRIPE_WEBHOOK_SECRET,
            "STRIPE_API_BASE": stripe_server.base_url,
            "STRIPE_PAYMENT_METHODS": ["card", "alipay", "wechat_pay"],
            "STRIPE_NETWORK_RETRIES": 0,
            "STRIPE_TIMEOUT_SECONDS": 2,
        }
    )
    yield stripe_server
    app.extensions["stripe_gateway"] = previous


@pytest.fixture
def make(session):
    """One-line builders: make.product(), make.user(roles={Role.STAFF}), ..."""
    return helpers.Builders(session)


MAIL_SENDER = "noreply@shanhai.demo"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Inbox:
    """An aiosmtpd handler that keeps what it is sent, and refuses the addresses in `refuse`."""

    def __init__(self):
        self.messages: list[tuple[list[str], email.message.EmailMessage]] = []
        self.refuse: set[str] = set()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refuse:
            return "550 5.1.1 No such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.messages.append((list(envelope.rcpt_tos), parsed))
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp_server():
    """A real SMTP server (aiosmtpd) on 127.0.0.1: (its inbox, MailSettings pointing at it)."""
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield (
            inbox,
            MailSettings(server="127.0.0.1", port=controller.port, sender=MAIL_SENDER, timeout=5),
        )
    finally:
        controller.stop()


def page_text(response) -> str:
    """The visible text of an HTML response, tags removed, spaces folded."""
    html = response.get_data(as_text=True)
    html = re.sub(r"<(script|style)\b.*?</\1>", " ", html, flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))
