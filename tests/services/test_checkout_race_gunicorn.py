"""Twenty buyers racing for the last five units through two gunicorn servers on PostgreSQL.

The end-to-end version of test_stock_race.py: real logins through the login form, real checkout
POSTs, two gunicorn processes (two sync workers each) sharing one PostgreSQL database, so that
nothing in one Python process (a lock, a cache, the ORM's identity map) can be what keeps the
stock right. Only the database's conditional UPDATE (app.services.stock) stands between the
buyers and an oversold product.

PostgreSQL only: several processes writing one SQLite file is a different race, and the same
race on SQLite is covered by test_stock_race.py. On the SQLite run of `make test` this test is
skipped; in CI with TEST_DATABASE_URL set it never is (an unreachable server fails the run, see
tests/conftest.py).

Its data is committed for real, under codes and e-mails with a random suffix, and deleted
afterwards, like test_stock_race.py's.
"""

from __future__ import annotations

import os
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session
from werkzeug.security import generate_password_hash

from app.extensions import db
from app.models import (
    CartLine,
    Category,
    Order,
    OrderEvent,
    OrderLine,
    Organization,
    OrgKind,
    Product,
    ProductStatus,
    Region,
    Role,
    StockMovement,
    Unit,
    User,
    UserRole,
)
from app.services.clock import utcnow
from tools.loadtest import Client, Response

pytestmark = pytest.mark.postgres

IN_CI = os.environ.get("CI", "").lower() == "true"
ROOT = Path(__file__).resolve().parents[2]

BUYERS = 20
UNITS = 5
SERVERS = 2
WORKERS_PER_SERVER = 2
PRICE_FEN = 1234
PASSWORD = "race-password-9"

#: What a buyer who came too late may be answered: the checkout page again, with the reason.
#: (commit_form turns the OutOfStock refusal into the form's error, shown with 400.)
REFUSAL_STATUSES = {400, 409, 422}
#: The reason, in English (the buyers send the `lang=en` cookie): the stock was taken during the
#: checkout (OutOfStock), or was already gone when the cart was checked (the cart's "Sold out").
REFUSAL_TEXTS = ("Not enough left in stock", "Sold out", "cannot be bought")
ORDER_LOCATION = re.compile(r"/orders/(\d+)$")

# Bounded waits: the whole test takes a few seconds; a hang fails within these.
SERVER_START_SECONDS = 20
REQUEST_SECONDS = 20


# --------------------------------------------------------------------------------------------
# The database


@pytest.fixture
def postgres_engine(app) -> Iterator[sa.Engine]:
    """An engine of our own on the suite's PostgreSQL database; skips on SQLite."""
    with app.app_context():
        url = db.engine.url
    if url.get_backend_name() != "postgresql":
        if IN_CI and os.environ.get("TEST_DATABASE_URL"):
            pytest.fail(f"TEST_DATABASE_URL is set in CI but the suite runs on {url.drivername}")
        pytest.skip(
            "needs PostgreSQL (TEST_DATABASE_URL): gunicorn processes share one server database; "
            "the same race on SQLite is covered by tests/services/test_stock_race.py"
        )
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    yield engine
    engine.dispose()


@dataclass
class RaceData:
    product_id: int
    users: dict[str, int]  # e-mail -> user id
    organization_ids: list[int]
    region_id: int
    category_id: int


@pytest.fixture
def race_data(postgres_engine) -> Iterator[RaceData]:
    """One product with UNITS left, and BUYERS staff members with one of it in their cart."""
    suffix = secrets.token_hex(4)
    now = utcnow()
    # One hash for all: the password check at login is what costs, not making twenty hashes.
    password_hash = generate_password_hash(PASSWORD)
    created: RaceData | None = None
    try:
        with Session(postgres_engine) as session:
            region = Region(code=f"gr-{suffix}", name_zh="竞购地区", name_en="Race region")
            supplier = Organization(
                code=f"GR-SUP-{suffix}",
                kind=OrgKind.SUPPLIER,
                name_zh="竞购供应商",
                region=region,
                created_at=now,
            )
            department = Organization(
                code=f"GR-DEP-{suffix}",
                kind=OrgKind.DEPARTMENT,
                name_zh="竞购处室",
                created_at=now,
            )
            category = Category(slug=f"gr-{suffix}", name_zh="竞购类别", name_en="Race")
            product = Product(
                code=f"GR-{suffix}",
                name_zh="最后五盒",
                name_en="The last five boxes",
                supplier=supplier,
                origin_region=region,
                category=category,
                status=ProductStatus.ACTIVE,
                unit=Unit.BOX,
                retail_price_fen=PRICE_FEN,
                stock=Decimal(UNITS),
                created_at=now,
                updated_at=now,
            )
            users = [
                User(
                    email=f"race{n:02d}-{suffix}@shanhai.demo",
                    name=f"竞购者{n:02d}",
                    password_hash=password_hash,
                    organization=department,
                    created_at=now,
                    role_rows=[UserRole(role=Role.STAFF)],
                )
                for n in range(BUYERS)
            ]
            session.add_all([product, *users])
            session.flush()
            session.add_all(
                CartLine(user_id=user.id, product_id=product.id, quantity=Decimal(1), added_at=now)
                for user in users
            )
            session.commit()
            created = RaceData(
                product_id=product.id,
                users={user.email: user.id for user in users},
                organization_ids=[supplier.id, department.id],
                region_id=region.id,
                category_id=category.id,
            )
        yield created
    finally:
        if created is not None:
            _delete(postgres_engine, created)


def _delete(engine: sa.Engine, data: RaceData) -> None:
    user_ids = list(data.users.values())
    with engine.begin() as conn:
        order_ids = sa.select(Order.id).where(Order.buyer_id.in_(user_ids)).scalar_subquery()
        conn.execute(sa.delete(StockMovement).where(StockMovement.product_id == data.product_id))
        conn.execute(sa.delete(OrderEvent).where(OrderEvent.order_id.in_(order_ids)))
        conn.execute(sa.delete(OrderLine).where(OrderLine.order_id.in_(order_ids)))
        # Anything else hanging off these orders goes with them (ON DELETE CASCADE / SET NULL).
        conn.execute(sa.delete(Order).where(Order.buyer_id.in_(user_ids)))
        conn.execute(sa.delete(CartLine).where(CartLine.user_id.in_(user_ids)))
        conn.execute(sa.delete(UserRole).where(UserRole.user_id.in_(user_ids)))
        conn.execute(sa.delete(User).where(User.id.in_(user_ids)))
        conn.execute(sa.delete(Product).where(Product.id == data.product_id))
        conn.execute(sa.delete(Organization).where(Organization.id.in_(data.organization_ids)))
        conn.execute(sa.delete(Region).where(Region.id == data.region_id))
        conn.execute(sa.delete(Category).where(Category.id == data.category_id))


# --------------------------------------------------------------------------------------------
# The servers


@dataclass
class Server:
    process: subprocess.Popen
    log: Path
    port: int = 0

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def _gunicorn() -> list[str]:
    script = Path(sys.executable).with_name("gunicorn")
    return [str(script)] if script.exists() else [sys.executable, "-m", "gunicorn"]


def _server_env(url: sa.URL) -> dict[str, str]:
    env = dict(os.environ)
    for name in ("GUNICORN_CMD_ARGS", "REDIS_URL", "RATELIMIT_STORAGE_URI"):
        env.pop(name, None)
    for name in list(env):
        if name.startswith("STRIPE_"):  # staff pay at the counter
            env.pop(name)
    rendered = url.render_as_string(hide_password=False)
    env.update(
        # The test configuration, on the suite's database: counter payment only, no page cache,
        # its own fixed secret key (both servers sign the same cookies).
        APP_CONFIG="testing",
        TEST_DATABASE_URL=rendered,
        DATABASE_URL=rendered,
        # Twenty logins from 127.0.0.1 within a second.
        LOGIN_RATE_LIMIT="1000 per minute",
        PYTHONUNBUFFERED="1",
    )
    return env


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)


@pytest.fixture
def servers(postgres_engine, tmp_path) -> Iterator[list[Server]]:
    """SERVERS gunicorn processes serving wsgi:app on free ports of 127.0.0.1."""
    env = _server_env(postgres_engine.url)
    started: list[Server] = []
    try:
        for n in range(SERVERS):
            log = tmp_path / f"gunicorn-{n}.log"
            with log.open("wb") as log_file:
                process = subprocess.Popen(
                    [
                        *_gunicorn(),
                        "--workers",
                        str(WORKERS_PER_SERVER),
                        "--worker-class",
                        "sync",
                        # Port 0: the kernel picks a free port, which gunicorn then logs.
                        "--bind",
                        "127.0.0.1:0",
                        "--log-level",
                        "info",
                        # Two servers would share (and each remove) the default ~/.gunicorn one.
                        "--no-control-socket",
                        "--chdir",
                        str(ROOT),
                        "wsgi:app",
                    ],
                    env=env,
                    cwd=ROOT,
                    stdout=log_file,
                    stderr=subprocess.STDOUT,
                )
            started.append(Server(process, log))
        for server in started:
            _wait_until_ready(server)
        yield started
    finally:
        for server in started:
            _stop(server.process)


def _wait_until_ready(server: Server) -> None:
    deadline = time.monotonic() + SERVER_START_SECONDS
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            pytest.fail(
                f"gunicorn exited with {server.process.returncode}:\n{server.log_text()}",
                pytrace=False,
            )
        if not server.port:
            found = re.search(r"Listening at: http://127\.0\.0\.1:(\d+)", server.log_text())
            server.port = int(found.group(1)) if found else 0
        if server.port:
            try:
                if Client(server.port).get("/auth/login").status == 200:
                    return
            except OSError:
                pass
        time.sleep(0.1)
    pytest.fail(
        f"gunicorn did not answer within {SERVER_START_SECONDS} s:\n{server.log_text()}",
        pytrace=False,
    )


# --------------------------------------------------------------------------------------------
# A buyer's browser


def csrf_token(html: str) -> str:
    found = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html)
    assert found, "no csrf_token on the page"
    return found.group(1)


@dataclass
class Outcome:
    email: str
    port: int
    response: Response | None = None
    error: str = ""

    @property
    def order_id(self) -> int | None:
        if self.response is None or self.response.status != 303:
            return None
        found = ORDER_LOCATION.search(urllib.parse.urlsplit(self.response.location).path)
        return int(found.group(1)) if found else None

    def summary(self) -> str:
        if self.response is None:
            return f"{self.email} on :{self.port}: {self.error}"
        r = self.response
        text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", r.body))
        shown = next((t for t in REFUSAL_TEXTS if t in text), text[:160])
        return f"{self.email} on :{self.port}: {r.status} {r.location or shown}"


# --------------------------------------------------------------------------------------------


def test_twenty_buyers_across_two_gunicorn_servers_get_exactly_five(
    postgres_engine, race_data, servers
):
    start = threading.Barrier(BUYERS)
    outcomes = [
        Outcome(email, servers[n % len(servers)].port) for n, email in enumerate(race_data.users)
    ]

    def buyer(outcome: Outcome) -> None:
        try:
            browser = Client(outcome.port)
            login = browser.get("/auth/login")
            assert login.status == 200, f"login page: {login.status}"
            logged_in = browser.post(
                "/auth/login",
                {
                    "email": outcome.email,
                    "password": PASSWORD,
                    "csrf_token": csrf_token(login.body),
                },
            )
            assert logged_in.status in (302, 303), f"login: {logged_in.status}"
            page = browser.get("/checkout")
            assert page.status == 200, f"checkout page: {page.status} {page.location}"
            form = {
                "csrf_token": csrf_token(page.body),
                "fulfilment": "counter_pickup",
                "payment_method": "counter",
                "delivery_place_id": "0",
            }
        except BaseException as error:
            outcome.error = f"before the race: {error!r}"
            start.abort()  # the others stop waiting for a buyer who will not come
            return
        try:
            start.wait(timeout=REQUEST_SECONDS)
            outcome.response = browser.post("/checkout", form)
        except BaseException as error:
            outcome.error = f"in the race: {error!r}"

    threads = [threading.Thread(target=buyer, args=(outcome,)) for outcome in outcomes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=3 * REQUEST_SECONDS)

    def report() -> str:
        lines = [outcome.summary() for outcome in outcomes]
        for n, server in enumerate(servers):
            lines.append(f"--- gunicorn {n} (port {server.port}) ---\n{server.log_text()[-4000:]}")
        return "\n".join(lines)

    assert not any(thread.is_alive() for thread in threads), "a buyer hung\n" + report()
    assert not [o for o in outcomes if o.error], "a buyer failed\n" + report()
    # Both servers took part in the race.
    assert {o.port for o in outcomes} == {server.port for server in servers}

    bought = [o for o in outcomes if o.order_id is not None]
    refused = [o for o in outcomes if o.order_id is None]
    assert len(bought) == UNITS, report()
    for outcome in refused:
        response = outcome.response
        assert response is not None
        assert response.status in REFUSAL_STATUSES, report()
        assert any(text in response.body for text in REFUSAL_TEXTS), report()

    with Session(postgres_engine) as session:
        product = session.get(Product, race_data.product_id)
        assert product.stock == 0
        orders = session.scalars(
            sa.select(Order).where(
                Order.id.in_(
                    sa.select(OrderLine.order_id).where(
                        OrderLine.product_id == race_data.product_id
                    )
                )
            )
        ).all()
        assert len(orders) == UNITS, report()
        assert {order.id for order in orders} == {o.order_id for o in bought}
        buyer_ids = {race_data.users[o.email] for o in bought}
        assert {order.buyer_id for order in orders} == buyer_ids
        assert all(order.total_fen == PRICE_FEN for order in orders)
        assert len({order.number for order in orders}) == UNITS
        sold = session.scalar(
            sa.select(sa.func.sum(OrderLine.quantity)).where(
                OrderLine.product_id == race_data.product_id
            )
        )
        assert sold == UNITS
        movements = session.scalars(
            sa.select(StockMovement.change).where(StockMovement.product_id == race_data.product_id)
        ).all()
        assert len(movements) == UNITS
        assert sum(movements) == -UNITS
        # The winners' carts were emptied by their orders; the others still hold their box.
        carts = session.scalars(
            sa.select(CartLine.user_id).where(CartLine.product_id == race_data.product_id)
        ).all()
        assert sorted(carts) == sorted(set(race_data.users.values()) - buyer_ids)
