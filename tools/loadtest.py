"""Several gunicorn instances of the shop on one PostgreSQL and one Redis, a bounded mixed load
against them, and the checks that must hold afterwards.

Used by tests/scale/ (the scale-out and fault tests, run by CI) and bench/scale.py (the scaling
figures). The pieces:

- `Stack`: a fresh PostgreSQL database with the migrations and the demo data, a Stripe
  stand-in, a TCP relay in front of Redis that can be told to stop answering, and gunicorn
  instances started with the production settings (gunicorn.conf.py, APP_CONFIG=production).
- `run_load`: virtual users in several processes (so the load generator is not one GIL):
  anonymous browsing, staff members racing to buy a few scarce products and paying at the
  counter or online (the stand-in's hosted page, then its signed webhooks, each delivered to
  every instance at once: replays that race), and canteen managers checking deliveries in,
  two for each delivery, on different instances.
- `check_invariants`: what no load or fault may break, read from the database: no product
  below zero or with stock that its movements do not explain, no order sold beyond its stock,
  every paid order in the ledger once, the ledger's total equal to the counted lines, every
  Stripe event recorded once and every payment made at the stand-in recorded.
"""

from __future__ import annotations

import contextlib
import http.client
import http.cookies
import math
import multiprocessing
import os
import random
import re
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import sqlalchemy as sa

from tools.stripe_standin import StripeStandIn

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "load-test-9"
WEBHOOK_SECRET = "whsec_load_test"
SECRET_KEY = "load-test-" + secrets.token_hex(16)
REQUEST_SECONDS = 30

# ----------------------------------------------------------------------------------------------
# The database


def create_database(server_url: str) -> str:
    """A new, empty database on the server of `server_url`; returns its URL."""
    url = sa.make_url(server_url)
    name = f"shanhai_load_{secrets.token_hex(4)}"
    admin = sa.create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return url.set(database=name).render_as_string(hide_password=False)


def drop_database(url: str) -> None:
    url = sa.make_url(url)
    admin = sa.create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)'))
    admin.dispose()


@dataclass
class Fixture:
    """What the load works on, made before it starts."""

    staff: list[str]
    managers: list[str]
    scarce_ids: list[int]
    product_ids: list[int]
    #: Shipped canteen deliveries waiting for goods-in.
    delivery_ids: list[int]
    search_terms: list[str]
    #: Per product: stock minus the sum of its movements, which no sale or refund may change.
    stock_baseline: dict[int, Decimal]


def prepare(url: str, *, staff: int = 40, scarce: int = 3, deliveries: int = 16) -> Fixture:
    """Migrations, the demo catalog with this year's history, and the load's own people and
    objects: staff members, scarce products (a few units each), shipped canteen deliveries."""
    env = {**os.environ, "DATABASE_URL": url, "APP_CONFIG": "development"}
    flask = [sys.executable, "-m", "flask", "--app", "app"]
    for command in (["db", "upgrade"], ["seed-demo", "--password", PASSWORD]):
        subprocess.run([*flask, *command], env=env, cwd=ROOT, check=True, capture_output=True)
    from app import create_app

    app = create_app("testing", SQLALCHEMY_DATABASE_URI=url, SQLALCHEMY_ENGINE_OPTIONS={})
    with app.app_context():
        return _fixture(app, staff=staff, scarce=scarce, deliveries=deliveries)


def _fixture(app, *, staff: int, scarce: int, deliveries: int) -> Fixture:
    from werkzeug.security import generate_password_hash

    from app.extensions import db
    from app.models import (
        Organization,
        OrgKind,
        Product,
        ProductStatus,
        Role,
        StockMovement,
        User,
        UserRole,
    )
    from app.services import stock
    from app.services.clock import utcnow

    session = db.session
    now = utcnow()
    department = session.scalar(
        sa.select(Organization).where(Organization.kind == OrgKind.DEPARTMENT).limit(1)
    )
    password_hash = generate_password_hash(PASSWORD)
    emails = [f"load{n:03d}@shanhai.demo" for n in range(staff)]
    session.add_all(
        User(
            email=email,
            name=f"压测职工{n:03d}",
            password_hash=password_hash,
            organization=department,
            created_at=now,
            role_rows=[UserRole(role=Role.STAFF)],
        )
        for n, email in enumerate(emails)
    )
    retail = session.scalars(
        sa.select(Product)
        .where(Product.status == ProductStatus.ACTIVE, Product.retail_price_fen > 0)
        .order_by(Product.id)
    ).all()
    scarce_products = [p for p in retail if p.stock >= 10][:scarce]
    clerk = session.scalar(sa.select(User).where(User.email == "clerk@shanhai.demo"))
    for product in scarce_products:
        # A handful of units left: more buyers than stock, so checkouts race for the last ones.
        stock.adjust(
            session,
            product.id,
            Decimal(4) - product.stock,
            now=now,
            actor_id=clerk.id,
            reference="load test: last units",
        )

    delivery_ids = _shipped_deliveries(session, deliveries, now)
    session.commit()

    moved = dict(
        session.execute(
            sa.select(StockMovement.product_id, sa.func.sum(StockMovement.change)).group_by(
                StockMovement.product_id
            )
        ).all()
    )
    baseline = {
        pid: stock_now - (moved.get(pid) or Decimal(0))
        for pid, stock_now in session.execute(sa.select(Product.id, Product.stock)).all()
    }
    return Fixture(
        staff=emails,
        managers=["manager@shanhai.demo"],
        scarce_ids=[p.id for p in scarce_products],
        product_ids=[p.id for p in retail],
        delivery_ids=delivery_ids,
        search_terms=["蜂蜜", "fm", "dynr", "茶", "带鱼", "腊肉", "yuxiang", "大米"],
        stock_baseline=baseline,
    )


def _shipped_deliveries(session, count: int, now) -> list[int]:
    """Canteen orders of the demo canteen, confirmed and shipped by the demo supplier."""
    from app.models import Product, ProductStatus, User
    from app.services import canteen
    from app.services.canteen import CanteenPolicy
    from app.services.clock import local_date

    buyer = session.scalar(sa.select(User).where(User.email == "buyer@shanhai.demo"))
    supplier_user = session.scalar(sa.select(User).where(User.email == "supplier@shanhai.demo"))
    bulk = [
        p
        for p in session.scalars(
            sa.select(Product)
            .where(
                Product.supplier_id == supplier_user.organization_id,
                Product.status == ProductStatus.ACTIVE,
            )
            .order_by(Product.id)
        )
        if p.offers_bulk
    ]
    policy = CanteenPolicy(approval_threshold_fen=10**12)
    delivery_ids = []
    for n in range(count):
        product = bulk[n % len(bulk)]
        cases = math.ceil(
            max(product.min_bulk_quantity or 1, product.case_size) / product.case_size
        )
        quantity = product.case_size * cases
        order = canteen.create_draft(session, buyer, now, {product.id: quantity})
        canteen.update_details(
            session,
            order,
            buyer,
            delivery_date=local_date(now) + timedelta(days=30),
            delivery_address=order.delivery_address,
            po_reference=f"LOAD-{n:03d}",
            notes="",
        )
        canteen.submit(session, order, buyer, now, policy)
        (delivery,) = order.deliveries
        canteen.confirm(session, delivery, supplier_user, now)
        canteen.ship(session, delivery, supplier_user, now, f"DN-LOAD-{n:03d}")
        delivery_ids.append(delivery.id)
    return delivery_ids


def refill(url: str, fixture: Fixture, *, units: int = 4, deliveries: int = 16) -> None:
    """Between runs: the scarce products get a few units again (recorded as stock movements),
    and there are new shipped deliveries for the managers to check in."""
    from app import create_app
    from app.extensions import db
    from app.models import User
    from app.services import stock
    from app.services.clock import utcnow

    app = create_app("testing", SQLALCHEMY_DATABASE_URI=url, SQLALCHEMY_ENGINE_OPTIONS={})
    with app.app_context():
        session = db.session
        now = utcnow()
        clerk = session.scalar(sa.select(User).where(User.email == "clerk@shanhai.demo"))
        for product_id in fixture.scarce_ids:
            stock.adjust(
                session, product_id, units, now=now, actor_id=clerk.id, reference="load test: more"
            )
        fixture.delivery_ids = _shipped_deliveries(session, deliveries, now)
        session.commit()


# ----------------------------------------------------------------------------------------------
# Redis, behind a relay that can stop answering


class TcpRelay:
    """Forwards 127.0.0.1:<port> to a target. `stall()` makes it stop answering: connections
    are still accepted and requests still read, but nothing comes back, which is what a hung
    server or a black-holed network path looks like to a client."""

    def __init__(self, target: tuple[str, int]):
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.stalled = threading.Event()
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def stall(self) -> None:
        self.stalled.set()

    def resume(self) -> None:
        # Connections that stalled are dead to their clients (they timed out); drop them.
        with self._lock:
            for sock in self._sockets:
                with contextlib.suppress(OSError):
                    sock.close()
            self._sockets.clear()
        self.stalled.clear()

    def close(self) -> None:
        self.listener.close()
        self.resume()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if self.stalled.is_set():
                with self._lock:
                    self._sockets.append(client)  # accepted, never answered
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                while self.stalled.is_set():
                    time.sleep(0.05)  # swallow: the reply never comes
                    if source.fileno() < 0:
                        return
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.close()


# ----------------------------------------------------------------------------------------------
# gunicorn instances


@dataclass
class Instance:
    process: subprocess.Popen
    log: Path
    port: int = 0

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def worker_pids(self) -> list[int]:
        out = subprocess.run(
            ["ps", "-o", "pid=", "--ppid", str(self.process.pid)], capture_output=True, text=True
        ).stdout
        return [int(pid) for pid in out.split()]

    def worker_rss_mb(self) -> list[float]:
        sizes = []
        for pid in self.worker_pids():
            try:
                status = Path(f"/proc/{pid}/status").read_text()
            except OSError:
                continue
            found = re.search(r"VmRSS:\s+(\d+) kB", status)
            if found:
                sizes.append(int(found.group(1)) / 1024)
        return sizes

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


def start_instance(env: dict[str, str], log: Path, workers: int = 2) -> Instance:
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "gunicorn.conf.py"), "wsgi:app"],
            env={**env, "GUNICORN_BIND": "127.0.0.1:0", "WEB_CONCURRENCY": str(workers)},
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    instance = Instance(process, log)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {process.returncode}:\n{instance.log_text()}")
        if not instance.port:
            found = re.search(r"Listening at: http://127\.0\.0\.1:(\d+)", instance.log_text())
            instance.port = int(found.group(1)) if found else 0
        if instance.port:
            try:
                if Client(instance.port).get("/readyz").status == 200:
                    return instance
            except OSError:
                pass
        time.sleep(0.2)
    instance.stop()
    raise RuntimeError(f"gunicorn did not become ready:\n{instance.log_text()}")


@dataclass
class Stack:
    """The database, Redis relay, Stripe stand-in and instances of one run."""

    url: str
    fixture: Fixture
    #: None: the instances talk to Redis directly (a benchmark measures the app, not the relay).
    relay: TcpRelay | None
    standin: StripeStandIn
    workdir: Path
    instances: list[Instance] = field(default_factory=list)
    #: This run's keys in the shared Redis, apart from any other run's or deployment's.
    redis_prefix: str = field(default_factory=lambda: f"loadtest-{secrets.token_hex(4)}")

    @classmethod
    def create(
        cls, server_url: str, workdir: Path, *, relay: bool = True, **fixture_options
    ) -> Stack:
        url = create_database(server_url)
        try:
            fixture = prepare(url, **fixture_options)
        except BaseException:
            drop_database(url)
            raise
        redis = urllib.parse.urlsplit(os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379"))
        target = (redis.hostname or "127.0.0.1", redis.port or 6379)
        standin = StripeStandIn(webhook_secret=WEBHOOK_SECRET, webhook_retries=5).serve()
        return cls(url, fixture, TcpRelay(target) if relay else None, standin, workdir)

    @property
    def redis_url(self) -> str:
        if self.relay is not None:
            return self.relay.url
        return os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("STRIPE_", "GUNICORN"))}
        env.update(
            APP_CONFIG="production",
            SECRET_KEY=SECRET_KEY,
            DATABASE_URL=self.url,
            REDIS_URL=self.redis_url,
            # Plain HTTP on loopback: the load generator is no browser, but keep the cookies
            # sendable; everything else is the production configuration.
            SESSION_COOKIE_SECURE="0",
            STRIPE_SECRET_KEY="sk_test_load",
            STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET,
            STRIPE_API_BASE=self.standin.base_url,
            STRIPE_TIMEOUT_SECONDS="2",
            STRIPE_NETWORK_RETRIES="0",
            # Forty staff members log in from 127.0.0.1 within a second.
            LOGIN_RATE_LIMIT="10000 per minute",
            LOGIN_RATE_LIMIT_FALLBACK="10000 per minute",
            PHOTO_DIR=str(self.workdir / "photos"),
            SITE_URL="http://127.0.0.1",
            REQUEST_LOG="0",
            REDIS_KEY_PREFIX=self.redis_prefix,
            PYTHONUNBUFFERED="1",
        )
        return env

    def start(self, count: int = 2, workers: int = 2) -> list[Instance]:
        self.stop()
        self.instances = [
            start_instance(self.env(), self.workdir / f"gunicorn-{n}.log", workers)
            for n in range(count)
        ]
        urls = [f"{i.base}/stripe/webhook" for i in self.instances]
        self.standin.webhook_url, self.standin.replay_urls = urls[0], urls[1:]
        return self.instances

    def stop(self) -> None:
        for instance in self.instances:
            instance.stop()
        self.instances = []

    def close(self) -> None:
        self.stop()
        self.standin.close()
        if self.relay is not None:
            self.relay.close()
        drop_database(self.url)

    def engine(self) -> sa.Engine:
        return sa.create_engine(self.url, poolclass=sa.pool.NullPool)


# ----------------------------------------------------------------------------------------------
# The load


@dataclass
class Response:
    status: int
    location: str
    body: str


class Client:
    """One user's cookies: enough of a browser for forms and redirects."""

    def __init__(self, port: int):
        self.port = port
        self.cookies: dict[str, str] = {"lang": "en"}

    def request(
        self, method: str, path: str, form: dict | None = None, port: int | None = None
    ) -> Response:
        headers = {"User-Agent": "shanhai-loadtest/1", "Connection": "close"}
        headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        body = None
        if form is not None:
            body = urllib.parse.urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        conn = http.client.HTTPConnection("127.0.0.1", port or self.port, timeout=REQUEST_SECONDS)
        try:
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            text = response.read().decode("utf-8", "replace")
            for header in response.headers.get_all("Set-Cookie") or []:
                jar = http.cookies.SimpleCookie()
                jar.load(header)
                for name, morsel in jar.items():
                    if morsel["max-age"] == "0" or "1970" in morsel["expires"]:
                        self.cookies.pop(name, None)
                    else:
                        self.cookies[name] = morsel.value
            return Response(response.status, response.headers.get("Location", ""), text)
        finally:
            conn.close()

    def get(self, path: str, port: int | None = None) -> Response:
        return self.request("GET", path, port=port)

    def post(self, path: str, form: dict, port: int | None = None) -> Response:
        return self.request("POST", path, form, port)


CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


@dataclass
class Record:
    port: int
    kind: str
    status: int  # 0: no HTTP answer (connection refused or reset, timeout)
    seconds: float
    at: float  # seconds since the load started
    detail: str = ""


@dataclass
class Plan:
    """What one load-generator process runs."""

    ports: list[int]
    fixture: Fixture
    seconds: float
    browsers: int
    shoppers: int
    managers: int
    online_share: float
    start_at: float  # time.time() when everyone starts
    seed: int
    shopper_offset: int = 0
    delivery_slice: tuple[int, int] = (0, 0)


class VirtualUser:
    def __init__(self, plan: Plan, rng: random.Random, records: list[Record], lock):
        self.plan, self.rng, self.records, self.lock = plan, rng, records, lock
        self.client = Client(rng.choice(plan.ports))

    def port(self) -> int:
        # Like a load balancer without sticky sessions: any instance, any request.
        return self.rng.choice(self.plan.ports)

    def call(self, kind: str, method: str, path: str, form: dict | None = None) -> Response | None:
        port = self.port()
        started = time.monotonic()
        try:
            response = self.client.request(method, path, form, port)
            status, detail = response.status, ""
            if status >= 500:
                found = re.search(r"[0-9a-f]{32}", response.body)
                detail = found.group(0) if found else response.body[:200]
        except OSError as error:
            response, status, detail = None, 0, f"{type(error).__name__}: {error}"
        record = Record(
            port,
            kind,
            status,
            time.monotonic() - started,
            time.time() - self.plan.start_at,
            detail,
        )
        with self.lock:
            self.records.append(record)
        return response

    def running(self) -> bool:
        return time.time() < self.plan.start_at + self.plan.seconds

    def csrf(self, response: Response | None) -> str | None:
        found = CSRF.search(response.body) if response else None
        return found.group(1) if found else None

    def login(self, email: str) -> bool:
        page = self.call("login", "GET", "/auth/login")
        token = self.csrf(page)
        if not token:
            return False
        form = {"csrf_token": token, "email": email, "password": PASSWORD}
        answer = self.call("login", "POST", "/auth/login", form)
        return answer is not None and answer.status in (302, 303)

    def browse_once(self) -> None:
        fx = self.plan.fixture
        choice = self.rng.random()
        if choice < 0.25:
            self.call("catalog", "GET", "/products")
        elif choice < 0.45:
            term = urllib.parse.quote(self.rng.choice(fx.search_terms))
            self.call("search", "GET", f"/products?q={term}")
        elif choice < 0.75:
            self.call("product", "GET", f"/products/{self.rng.choice(fx.product_ids)}")
        elif choice < 0.85:
            self.call("home", "GET", "/")
        elif choice < 0.93:
            self.call("board", "GET", "/board")
        else:
            self.call("api", "GET", "/api/v1/pledges")

    def browser(self) -> None:
        while self.running():
            self.browse_once()

    def shopper(self, email: str) -> None:
        fx = self.plan.fixture
        while self.running() and not self.login(email):
            time.sleep(0.5)
        while self.running():
            scarce = self.rng.random() < 0.6
            product_id = self.rng.choice(fx.scarce_ids if scarce else fx.product_ids)
            page = self.call("product", "GET", f"/products/{product_id}")
            token = self.csrf(page)
            if not token:
                continue
            form = {"csrf_token": token, "quantity": "1"}
            self.call("cart", "POST", f"/cart/add/{product_id}", form)
            page = self.call("checkout", "GET", "/checkout")
            token = self.csrf(page)
            if not token:
                continue  # an empty cart (the product sold out meanwhile) goes back to the cart
            online = self.rng.random() < self.plan.online_share
            form = {
                "csrf_token": token,
                "fulfilment": "counter_pickup",
                "payment_method": "stripe" if online else "counter",
                "delivery_place_id": "0",
            }
            placed = self.call("checkout", "POST", "/checkout", form)
            if placed and placed.status == 303 and "/pay/" in placed.location:
                self.pay(placed.location)
            elif placed and placed.status == 303:
                self.call("order", "GET", urllib.parse.urlsplit(placed.location).path)
            elif placed and placed.status in (400, 409, 422):
                # Too late for the last unit: empty the cart as a buyer would.
                cart = self.call("cart", "GET", "/cart")
                token = self.csrf(cart)
                if token:
                    for pid in set(re.findall(r"/cart/(\d+)/remove", cart.body)):
                        self.call("cart", "POST", f"/cart/{pid}/remove", {"csrf_token": token})
            self.browse_once()

    def pay(self, location: str) -> None:
        """On the stand-in's hosted page: Pay, then back to the shop's return URL."""
        parts = urllib.parse.urlsplit(location)
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=REQUEST_SECONDS)
        try:
            conn.request(
                "POST",
                parts.path,
                body="choice=pay",
                headers={"Content-Type": "application/x-www-form-urlencoded"},
            )
            answer = conn.getresponse()
            answer.read()
            back = answer.getheader("Location", "")
        except OSError:
            return
        finally:
            conn.close()
        if back:
            target = urllib.parse.urlsplit(back)
            self.call("order", "GET", f"{target.path}?{target.query}")

    def manager(self, email: str, deliveries: list[int]) -> None:
        while self.running() and not self.login(email):
            time.sleep(0.5)
        pending = list(deliveries)
        self.rng.shuffle(pending)
        while self.running():
            if not pending:
                self.call("canteen", "GET", "/canteen/orders")
                self.browse_once()
                continue
            delivery_id = pending.pop()
            path = f"/canteen/deliveries/{delivery_id}/goods-in"
            page = self.call("goods-in", "GET", path)
            token = self.csrf(page)
            if not token or page.status != 200:
                continue  # already checked in by the other manager
            form = {"csrf_token": token}
            for line_id, ordered in re.findall(
                r'name="received-(\d+)"[^>]*value="([0-9.]*)"', page.body
            ):
                # Weights differ from what was ordered: a little less arrived.
                ordered = Decimal(ordered or "1")
                form[f"received-{line_id}"] = str(ordered - 1 if ordered > 1 else ordered)
            self.call("goods-in", "POST", path, form)


def _generate(plan: Plan) -> list[Record]:
    """One load-generator process: its virtual users in threads, until the plan's time is up."""
    records: list[Record] = []
    lock = threading.Lock()
    threads = []
    fx = plan.fixture
    rng = random.Random(plan.seed)

    def start(target: Callable, *args) -> None:
        user = VirtualUser(plan, random.Random(rng.random()), records, lock)
        threads.append(threading.Thread(target=getattr(user, target), args=args, daemon=True))

    for _ in range(plan.browsers):
        start("browser")
    for n in range(plan.shoppers):
        start("shopper", fx.staff[(plan.shopper_offset + n) % len(fx.staff)])
    first, last = plan.delivery_slice
    for _ in range(plan.managers):
        start("manager", fx.managers[0], fx.delivery_ids[first:last])
    while time.time() < plan.start_at:
        time.sleep(0.01)
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=plan.seconds + REQUEST_SECONDS + 10)
    return records


@dataclass
class LoadResult:
    records: list[Record]
    seconds: float

    def by_port(self) -> dict[int, list[Record]]:
        grouped = defaultdict(list)
        for record in self.records:
            grouped[record.port].append(record)
        return dict(grouped)

    def server_errors(self, outside: list[tuple[float, float]] = ()) -> list[Record]:
        """5xx answers and requests that got no answer, except within the given windows."""
        return [
            r
            for r in self.records
            if (r.status >= 500 or r.status == 0)
            and not any(start <= r.at <= end for start, end in outside)
        ]

    def rate(self) -> float:
        return len(self.records) / self.seconds

    @staticmethod
    def percentile(values: list[float], share: float) -> float:
        if not values:
            return 0.0
        ordered = sorted(values)
        return ordered[min(len(ordered) - 1, int(share * len(ordered)))]

    def summary(self) -> list[str]:
        lines = [
            f"{len(self.records)} requests in {self.seconds:.1f} s: {self.rate():.0f} req/s; "
            f"statuses {dict(sorted(Counter(r.status for r in self.records).items()))}"
        ]
        for port, records in sorted(self.by_port().items()):
            times = [r.seconds for r in records]
            lines.append(
                f"  instance :{port}: {len(records) / self.seconds:.0f} req/s, "
                f"p50 {statistics.median(times) * 1000:.0f} ms, "
                f"p99 {self.percentile(times, 0.99) * 1000:.0f} ms"
            )
        kinds = defaultdict(list)
        for record in self.records:
            kinds[record.kind].append(record.seconds)
        for kind, times in sorted(kinds.items()):
            lines.append(
                f"  {kind:<9} {len(times):>6} requests, p50 {statistics.median(times) * 1000:5.0f}"
                f" ms, p99 {self.percentile(times, 0.99) * 1000:5.0f} ms"
            )
        return lines


def run_load(
    stack: Stack,
    *,
    seconds: float,
    processes: int = 2,
    browsers: int = 6,
    shoppers: int = 12,
    managers: int = 2,
    online_share: float = 0.5,
    during: Callable[[float], None] | None = None,
    seed: int = 2026,
) -> LoadResult:
    """Run the mixed load for `seconds` on every started instance. `during(t0)`, if given, runs
    in this process while the load runs (it injects the faults); t0 is the start time."""
    ports = [instance.port for instance in stack.instances]
    fx = stack.fixture
    start_at = time.time() + 1.0
    per = len(fx.delivery_ids) // processes
    plans = [
        Plan(
            ports=ports,
            fixture=fx,
            seconds=seconds,
            browsers=browsers // processes,
            shoppers=shoppers // processes,
            managers=managers,  # two per delivery: the deliveries of a slice are raced
            online_share=online_share,
            start_at=start_at,
            seed=seed + n,
            shopper_offset=n * (shoppers // processes),
            delivery_slice=(n * per, (n + 1) * per),
        )
        for n in range(processes)
    ]
    context = multiprocessing.get_context("spawn")
    with context.Pool(processes) as pool:
        pending = pool.map_async(_generate, plans)
        if during is not None:
            during(start_at)
        results = pending.get(timeout=seconds + 3 * REQUEST_SECONDS + 30)
    records = [record for result in results for record in result]
    return LoadResult(records, seconds)


# ----------------------------------------------------------------------------------------------
# The checks


def check_invariants(stack: Stack) -> list[str]:
    """Everything that no load or fault may break; an empty list when all hold."""
    from app.models import (
        LedgerEntry,
        LedgerSource,
        Order,
        OrderLine,
        PaymentStatus,
        Product,
        Refund,
        StockMovement,
        StripeEvent,
    )
    from app.models.canteen import Invoice

    problems: list[str] = []
    engine = stack.engine()
    with engine.connect() as conn:
        # Stock: never below zero, and explained by its movements (nothing sold off the books).
        moved = dict(
            conn.execute(
                sa.select(StockMovement.product_id, sa.func.sum(StockMovement.change)).group_by(
                    StockMovement.product_id
                )
            ).all()
        )
        for pid, level in conn.execute(sa.select(Product.id, Product.stock)).all():
            if level < 0:
                problems.append(f"product {pid} has stock {level}")
            explained = stack.fixture.stock_baseline.get(pid, Decimal(0)) + (moved.get(pid) or 0)
            if level != explained:
                problems.append(f"product {pid}: stock {level}, movements explain {explained}")
        # Oversold: what live orders hold of a scarce product never exceeds what came in.
        for pid in stack.fixture.scarce_ids:
            sold = conn.scalar(
                sa.select(sa.func.coalesce(sa.func.sum(OrderLine.quantity), 0))
                .join(Order, Order.id == OrderLine.order_id)
                .where(OrderLine.product_id == pid, Order.status != "cancelled")
            )
            came_in = stack.fixture.stock_baseline[pid] + conn.scalar(
                sa.select(sa.func.coalesce(sa.func.sum(StockMovement.change), 0)).where(
                    StockMovement.product_id == pid, StockMovement.change > 0
                )
            )
            if sold > came_in:
                problems.append(f"scarce product {pid}: {sold} sold, only {came_in} came in")

        # Nothing half-written: every order has its lines; a delivery is invoiced at most once,
        # however many managers signed it off at the same moment.
        empty = conn.scalar(
            sa.select(sa.func.count())
            .select_from(Order)
            .where(~sa.exists().where(OrderLine.order_id == Order.id))
        )
        if empty:
            problems.append(f"{empty} orders without lines")
        twice = conn.execute(
            sa.select(Invoice.delivery_id)
            .where(Invoice.kind == "invoice")
            .group_by(Invoice.delivery_id)
            .having(sa.func.count() > 1)
        ).all()
        problems += [f"delivery {delivery_id} invoiced twice" for (delivery_id,) in twice]

        # Every paid order line is in the ledger exactly once; no unpaid order is.
        paid_states = [
            PaymentStatus.PAID.value,
            PaymentStatus.PARTLY_REFUNDED.value,
            PaymentStatus.REFUNDED.value,
        ]
        missing = conn.execute(
            sa.select(Order.number)
            .join(OrderLine, OrderLine.order_id == Order.id)
            .where(Order.payment_status.in_(paid_states))
            .where(
                ~sa.exists().where(
                    LedgerEntry.dedupe_key
                    == sa.literal("retail-paid:line:") + sa.cast(OrderLine.id, sa.String)
                )
            )
        ).all()
        problems += [
            f"paid order {number} has a line missing from the ledger" for (number,) in missing
        ]
        unpaid_in_ledger = conn.scalar(
            sa.select(sa.func.count())
            .select_from(LedgerEntry)
            .join(Order, Order.id == LedgerEntry.retail_order_id)
            .where(Order.payment_status == PaymentStatus.UNPAID.value)
        )
        if unpaid_in_ledger:
            problems.append(f"{unpaid_in_ledger} ledger entries belong to unpaid orders")

        # The ledger's total equals the counted lines: paid retail lines, less refunds, plus
        # canteen invoices (goods-in x frozen price) and their credit notes, plus imports.
        ledger_total = conn.scalar(
            sa.select(sa.func.coalesce(sa.func.sum(LedgerEntry.amount_fen), 0))
        )
        retail = conn.scalar(
            sa.select(sa.func.coalesce(sa.func.sum(OrderLine.total_fen), 0))
            .join(Order, Order.id == OrderLine.order_id)
            .where(Order.payment_status.in_(paid_states))
        )
        refunded = conn.scalar(
            sa.select(sa.func.coalesce(sa.func.sum(Refund.amount_fen), 0))
            .join(Order, Order.id == Refund.order_id)
            .where(Order.payment_status.in_(paid_states))
        )
        invoiced = conn.scalar(sa.select(sa.func.coalesce(sa.func.sum(Invoice.total_fen), 0)))
        other = conn.scalar(
            sa.select(sa.func.coalesce(sa.func.sum(LedgerEntry.amount_fen), 0)).where(
                LedgerEntry.source.not_in(
                    [
                        LedgerSource.RETAIL_LINE.value,
                        LedgerSource.RETAIL_REFUND.value,
                        LedgerSource.BULK_LINE.value,
                        LedgerSource.CREDIT_NOTE.value,
                    ]
                )
            )
        )
        counted = retail - refunded + invoiced + other
        if ledger_total != counted:
            problems.append(
                f"ledger total {ledger_total} fen, counted lines {counted} fen "
                f"(retail {retail}, refunded {refunded}, invoiced {invoiced}, other {other})"
            )

        # Webhooks: every event the stand-in sent is recorded once, whatever the replays.
        sent = {event_id for event_id, _url, _status in stack.standin.deliveries}
        recorded = set(conn.scalars(sa.select(StripeEvent.id)))
        if sent - recorded:
            problems.append(f"{len(sent - recorded)} webhook events never recorded")
        # Every session paid at the stand-in is a paid order here, paid once.
        for session in list(stack.standin.sessions.values()):
            if session["status"] != "complete":
                continue
            order_id = int(session["metadata"]["order_id"])
            state = conn.execute(
                sa.select(Order.payment_status, Order.stripe_payment_intent_id).where(
                    Order.id == order_id
                )
            ).one()
            late = conn.scalar(
                sa.select(sa.func.count())
                .select_from(Refund)
                .where(Refund.order_id == order_id, Refund.kind == "late_payment")
            )
            if state.payment_status == PaymentStatus.UNPAID.value and not late:
                problems.append(f"order {order_id} was paid at Stripe but is unpaid here")
        paid_twice = conn.execute(
            sa.select(LedgerEntry.dedupe_key, sa.func.count())
            .group_by(LedgerEntry.dedupe_key)
            .having(sa.func.count() > 1)
        ).all()
        problems += [f"ledger entry {key} written {n} times" for key, n in paid_twice]
    engine.dispose()
    return problems


def settled_invariants(stack: Stack, seconds: float = 20) -> list[str]:
    """check_invariants once the webhooks of the last payments have arrived (the stand-in
    sends them a second after the payment, and retries failed deliveries)."""
    deadline = time.monotonic() + seconds
    while stack.standin.pending and time.monotonic() < deadline:
        time.sleep(0.2)
    problems = check_invariants(stack)
    while problems and time.monotonic() < deadline:
        time.sleep(1)
        problems = check_invariants(stack)
    return problems


def wait_for(condition: Callable[[], bool], seconds: float, step: float = 0.2) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(step)
    return condition()
