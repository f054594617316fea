"""Order placement benchmark: staff buyers checking out at once under gunicorn on PostgreSQL.

Builds a fresh PostgreSQL database (its own, `shanhai_bench_orders`, created and dropped here),
serves the app and a bare Flask app (bench/bare_app.py) with identical gunicorn settings (2 sync
workers each), and logs in --buyers staff members through the login form. Each buyer is a thread
with its own session that, over and over, puts one product in its cart (POST /cart/add/<id>) and
checks out (POST /checkout: pickup at the counter, payment there). Only the checkout POST is
timed for the latencies; orders per second count whole orders (cart + checkout). The bare page
is loaded by the same threads in the same run, the two taking turns for --rounds rounds, and
orders per second are reported as a share of the bare page's requests per second, because on a
small machine the load generator shares the CPU with the servers and only the ratio carries from
one machine to another.

The products have plenty of stock (it never runs out), except one scarce product (--scarce
units) that the buyers also reach for until it is gone, so that the last units are fought over.
Afterwards the database is checked: for every product, the quantities of its order lines (orders
not cancelled) plus the stock left must equal the stock it started with, and its stock movements
must explain the level. That check is a correctness check: the script exits 1 if it fails. The
speed figures are only reported; missing any aim never fails the run.

    .venv/bin/python bench/orders.py
    .venv/bin/python bench/orders.py --seconds 15 --buyers 16
    .venv/bin/python bench/orders.py --database-url postgresql+psycopg://postgres@db.internal:5432/postgres
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import http.cookiejar
import json
import math
import os
import random
import re
import secrets
import shlex
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Run as `python bench/orders.py`, the script's own folder is on sys.path, not the project.
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402
from flask_migrate import upgrade  # noqa: E402
from serving import (  # noqa: E402  (bench/ is on sys.path when run as a script)
    GUNICORN_SETTINGS,
    free_port,
    gunicorn_command,
    run_facts,
    stop,
)
from werkzeug.security import generate_password_hash  # noqa: E402

from app import create_app  # noqa: E402
from app.extensions import db  # noqa: E402
from app.models import (  # noqa: E402
    Category,
    FulfilmentStatus,
    Order,
    OrderLine,
    Organization,
    OrgKind,
    Product,
    ProductStatus,
    Region,
    RegionKind,
    Role,
    StockMovement,
    Unit,
    User,
    UserRole,
)
from app.services.clock import utcnow  # noqa: E402

PASSWORD = "bench-password"
EMAIL_DOMAIN = "shanhai.demo"
DEFAULT_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
PG_BENCH_DATABASE = "shanhai_bench_orders"

PLENTIFUL_STOCK = Decimal(100_000)
#: name_zh, name_en, unit, retail price (fen), quantities a buyer takes (weights in tenths).
PRODUCTS = [
    ("灯影牛肉", "Dengying Beef", Unit.BOX, 3980, ["1", "2", "3"]),
    ("宣汉富硒大米", "Xuanhan Selenium-rich Rice", Unit.BAG, 5990, ["1", "2"]),
    ("东海带鱼", "East China Sea Hairtail", Unit.JIN, 3600, ["0.5", "1", "1.5", "2.5"]),
    ("巴山菜籽油", "Bashan Rapeseed Oil", Unit.BOTTLE, 6800, ["1", "2"]),
]
SCARCE = ("大竹醪糟（限量）", "Dazhu Fermented Rice (limited)", Unit.BOX, 1880, ["1"])
#: How often a buyer reaches for the scarce product while it lasts.
SCARCE_SHARE = 0.25


# --------------------------------------------------------------------------------------------
# Database


@contextlib.contextmanager
def bench_database(database_url: str):
    """Our own fresh database on the PostgreSQL server the URL names; dropped afterwards."""
    server = sa.make_url(database_url)
    if not server.drivername.startswith("postgresql"):
        raise SystemExit("--database-url: only PostgreSQL URLs are supported")
    # Whatever database the URL names, we only ever create and drop our own.
    admin_url = server.set(database="postgres")
    bench_url = server.set(database=PG_BENCH_DATABASE)
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    drop = sa.text(f'DROP DATABASE IF EXISTS "{PG_BENCH_DATABASE}" WITH (FORCE)')
    try:
        with admin.connect() as conn:
            conn.execute(drop)  # left over by an interrupted run
            conn.execute(sa.text(f'CREATE DATABASE "{PG_BENCH_DATABASE}"'))
    except sa.exc.OperationalError as error:
        raise SystemExit(f"PostgreSQL at {admin_url} cannot be reached: {error}") from None
    try:
        yield bench_url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(drop)
        admin.dispose()


@dataclass
class World:
    """What the benchmark built: product id -> (starting stock, quantities to take), buyers."""

    products: dict[int, tuple[Decimal, list[str]]]
    scarce_id: int | None
    buyers: list[str]
    probe: str  # a staff member for the in-process SQL count, not one of the timed buyers
    queries: dict[str, int] = field(default_factory=dict)


def build_world(url: str, buyers: int, scarce: int, secret_key: str) -> World:
    """Schema from the migrations, then a supplier, products and staff buyers with carts empty."""
    app = create_app("development", SQLALCHEMY_DATABASE_URI=url, SECRET_KEY=secret_key)
    now = utcnow()
    with app.app_context():
        upgrade()
        session = db.session
        region = Region(code="dazhou", name_zh="达州", name_en="Dazhou", kind=RegionKind.PAIRED)
        supplier = Organization(
            code="BENCH-SUPPLIER",
            kind=OrgKind.SUPPLIER,
            name_zh="达州山海农产品有限公司",
            region=region,
            created_at=now,
        )
        department = Organization(
            code="BENCH-DEPT", kind=OrgKind.DEPARTMENT, name_zh="办公室", created_at=now
        )
        category = Category(slug="bench", name_zh="特产", name_en="Specialities")
        rows = [(*spec, PLENTIFUL_STOCK) for spec in PRODUCTS]
        if scarce:
            rows.append((*SCARCE, Decimal(scarce)))
        products = []
        for n, (name_zh, name_en, unit, price, _quantities, stock) in enumerate(rows, 1):
            products.append(
                Product(
                    code=f"BO-{n:03d}",
                    name_zh=name_zh,
                    name_en=name_en,
                    supplier=supplier,
                    origin_region=region,
                    category=category,
                    status=ProductStatus.ACTIVE,
                    unit=unit,
                    retail_price_fen=price,
                    stock=stock,
                    created_at=now,
                    updated_at=now,
                )
            )
        # One hash for all: the password check at login costs, not making the hashes.
        password_hash = generate_password_hash(PASSWORD)
        emails = [f"buyer{n:03d}@{EMAIL_DOMAIN}" for n in range(1, buyers + 2)]
        users = [
            User(
                email=email,
                name=f"买家{n:03d}",
                password_hash=password_hash,
                organization=department,
                created_at=now,
                role_rows=[UserRole(role=Role.STAFF)],
            )
            for n, email in enumerate(emails, 1)
        ]
        session.add_all([*products, *users])
        session.commit()
        world = World(
            products={p.id: (p.stock, row[4]) for p, row in zip(products, rows, strict=True)},
            scarce_id=products[-1].id if scarce else None,
            buyers=emails[:buyers],
            probe=emails[-1],
        )
    world.queries = count_queries(app, world.probe, next(iter(world.products)))
    with app.app_context():
        db.engine.dispose()
    return world


def count_queries(app, email: str, product_id: int) -> dict[str, int]:
    """SQL statements of one cart add and one checkout, in-process, as a logged-in buyer."""
    client = app.test_client()
    page = client.get("/auth/login").get_data(as_text=True)
    client.post(
        "/auth/login",
        data={"email": email, "password": PASSWORD, "csrf_token": csrf_token(page)},
        follow_redirects=True,
    )
    token = csrf_token(client.get("/products").get_data(as_text=True))
    statements = 0

    def _count(_conn, _cursor, statement, *_rest) -> None:
        nonlocal statements
        statements += 1

    with app.app_context():
        engine = db.engine
    sa.event.listen(engine, "before_cursor_execute", _count)
    result = {}
    try:
        response = client.post(
            f"/cart/add/{product_id}", data={"quantity": "1", "csrf_token": token}
        )
        if response.status_code != 303:
            raise SystemExit(f"cart add failed in-process: {response.status_code}")
        result["cart_add"] = statements
        statements = 0
        response = client.post("/checkout", data=checkout_form(token))
        if response.status_code != 303 or "/orders/" not in response.location:
            raise SystemExit(f"checkout failed in-process: {response.status_code}")
        result["checkout"] = statements
    finally:
        sa.event.remove(engine, "before_cursor_execute", _count)
    return result


@dataclass
class Check:
    rows: list[dict]
    orders_in_database: int
    ok: bool


def check_stock(url: str, world: World, orders_seen: int, unknown: int) -> Check:
    """For each product: sold (orders not cancelled) + remaining == starting stock, and the
    stock movements explain the level; and the database holds the orders the buyers saw placed
    (plus at most those whose answer never came)."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    rows = []
    try:
        with engine.connect() as conn:
            for product_id, (start, _) in world.products.items():
                remaining = conn.scalar(sa.select(Product.stock).where(Product.id == product_id))
                sold = conn.scalar(
                    sa.select(sa.func.coalesce(sa.func.sum(OrderLine.quantity), 0))
                    .join(Order, Order.id == OrderLine.order_id)
                    .where(
                        OrderLine.product_id == product_id,
                        Order.status != FulfilmentStatus.CANCELLED,
                    )
                )
                moved = conn.scalar(
                    sa.select(sa.func.coalesce(sa.func.sum(StockMovement.change), 0)).where(
                        StockMovement.product_id == product_id
                    )
                )
                rows.append(
                    {
                        "product_id": product_id,
                        "start": str(start),
                        "sold": str(sold),
                        "remaining": str(remaining),
                        "movements": str(moved),
                        "ok": bool(
                            remaining >= 0
                            and sold + remaining == start
                            and start + moved == remaining
                        ),
                    }
                )
            probe_orders = 1  # placed by count_queries, before the timed run
            orders = conn.scalar(sa.select(sa.func.count(Order.id))) - probe_orders
    finally:
        engine.dispose()
    ok = all(row["ok"] for row in rows) and orders_seen <= orders <= orders_seen + unknown
    return Check(rows, orders, ok)


def duplicate_pickup_codes(url: str) -> int:
    """Open orders that share their pickup code with another open order."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            shared = (
                sa.select(Order.pickup_code, sa.func.count().label("n"))
                .where(Order.status.in_([FulfilmentStatus.PLACED, FulfilmentStatus.READY]))
                .group_by(Order.pickup_code)
                .having(sa.func.count() > 1)
                .subquery()
            )
            return int(conn.scalar(sa.select(sa.func.coalesce(sa.func.sum(shared.c.n), 0))))
    finally:
        engine.dispose()


# --------------------------------------------------------------------------------------------
# Servers


def server_env(database_url: str) -> dict[str, str]:
    env = dict(os.environ)
    # Settings injected from the environment would differ from the command we print.
    env.pop("GUNICORN_CMD_ARGS", None)
    # Without a Stripe key staff pay at the counter, which is what this measures.
    for name in [name for name in env if name.startswith("STRIPE_")]:
        env.pop(name)
    env.update(
        DATABASE_URL=database_url,
        APP_CONFIG="development",
        SECRET_KEY=secrets.token_hex(32),
        LOGIN_RATE_LIMIT="1000 per minute",
    )
    return env


@contextlib.contextmanager
def gunicorn(target: str, env: dict[str, str], log: Path, ready_path: str):
    port = free_port()
    command = gunicorn_command(target, port)
    with log.open("wb") as log_file:
        process = subprocess.Popen(
            command, env=env, stdout=log_file, stderr=subprocess.STDOUT, cwd=ROOT
        )
    try:
        wait_until_ready(process, port, ready_path, log)
        yield port, command
    finally:
        stop(process)


def wait_until_ready(process: subprocess.Popen, port: int, path: str, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"gunicorn exited with {process.returncode}:\n{log.read_text()}")
        with contextlib.suppress(OSError):
            if request(port, "GET", path)[0] == 200:
                return
        time.sleep(0.2)
    raise SystemExit(f"gunicorn did not answer on port {port} within 60 s:\n{log.read_text()}")


# --------------------------------------------------------------------------------------------
# HTTP


#: Sent with every request, the login included: Flask-Login ties the session to the user agent.
USER_AGENT = "shanhai-bench/1"


def request(
    port: int, method: str, path: str, cookie: str = "", form: dict[str, str] | None = None
) -> tuple[int, str, str]:
    """One request on a new connection (gunicorn's sync workers close it after each reply)."""
    headers = {"User-Agent": USER_AGENT, **({"Cookie": cookie} if cookie else {})}
    body = None
    if form is not None:
        body = urllib.parse.urlencode(form)
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        text = response.read().decode("utf-8", "replace")
        return response.status, response.headers.get("Location", ""), text
    finally:
        conn.close()


def csrf_token(html: str) -> str:
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html)
    if not match:
        raise SystemExit("no csrf_token field on the page")
    return match.group(1)


def checkout_form(token: str) -> dict[str, str]:
    return {
        "csrf_token": token,
        "fulfilment": "counter_pickup",
        "payment_method": "counter",
        "delivery_place_id": "0",
    }


@dataclass
class Buyer:
    email: str
    cookie: str
    token: str
    rng: random.Random


def log_in(port: int, email: str, seed: int) -> Buyer:
    """A buyer's session, logged in through the real login form, and its CSRF token."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    opener.addheaders = [("User-Agent", USER_AGENT)]
    base = f"http://127.0.0.1:{port}"
    with opener.open(f"{base}/auth/login", timeout=10) as response:
        token = csrf_token(response.read().decode())
    form = {"email": email, "password": PASSWORD, "csrf_token": token}
    # The redirect after login is followed, so the welcome flash is shown once and leaves the
    # session that every later request sends.
    with opener.open(f"{base}/auth/login", urllib.parse.urlencode(form).encode(), timeout=10):
        pass
    with opener.open(f"{base}/cart", timeout=10) as response:
        page = response.read().decode()
        landed = urllib.parse.urlsplit(response.geturl()).path
    if landed != "/cart":  # the login page again: not logged in
        raise SystemExit(f"logging in as {email} failed (landed on {landed})")
    cookie = "; ".join(f"{c.name}={c.value}" for c in jar)
    if "session=" not in cookie:
        raise SystemExit(f"logging in as {email} gave no session cookie")
    return Buyer(email, cookie, csrf_token(page), random.Random(seed))


# --------------------------------------------------------------------------------------------
# Load


@dataclass
class Run:
    """One timed run: the buyers placing orders, or the same threads loading the bare page."""

    kind: str
    seconds: float
    requests: int = 0  # every request made, cart adds included
    orders: int = 0
    refused: int = 0  # checkouts answered "no" (the scarce product gone): not orders
    errors: int = 0  # 5xx, unexpected answers, timeouts
    latencies_ms: list[float] = field(default_factory=list)  # checkouts that placed an order
    add_latencies_ms: list[float] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def per_second(self) -> float:
        count = self.orders if self.kind == "orders" else self.requests
        return count / self.seconds if self.seconds else 0.0


def percentile(values: list[float], pct: float) -> float:
    """Nearest rank, as wrk computes its percentiles."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[max(0, math.ceil(pct / 100 * len(ordered)) - 1)]


class Shop:
    """What the buyers share: the app's port, the products, and whether the scarce one is gone."""

    def __init__(self, port: int, world: World):
        self.port = port
        self.world = world
        self.plentiful = [pid for pid in world.products if pid != world.scarce_id]
        self.scarce_gone = world.scarce_id is None

    def order_once(self, buyer: Buyer, run: Run, lock: threading.Lock) -> None:
        """Cart add, then checkout; only the checkout is timed."""
        scarce = not self.scarce_gone and buyer.rng.random() < SCARCE_SHARE
        product_id = self.world.scarce_id if scarce else buyer.rng.choice(self.plentiful)
        quantity = buyer.rng.choice(self.world.products[product_id][1])
        form = {"quantity": quantity, "csrf_token": buyer.token}
        started = time.perf_counter()
        status, _, _ = request(self.port, "POST", f"/cart/add/{product_id}", buyer.cookie, form)
        added_ms = (time.perf_counter() - started) * 1000
        if status != 303:
            with lock:
                run.requests += 1
                run.errors += 1
                run.problems.append(f"cart add {product_id}: {status}")
            return
        started = time.perf_counter()
        status, location, body = request(
            self.port, "POST", "/checkout", buyer.cookie, checkout_form(buyer.token)
        )
        elapsed_ms = (time.perf_counter() - started) * 1000
        placed = status == 303 and "/orders/" in location
        refused = status in (400, 409, 422) and scarce
        if refused:
            # Gone: nobody reaches for it again, and this buyer's cart is emptied of it.
            self.scarce_gone = True
            request(
                self.port,
                "POST",
                f"/cart/{product_id}/remove",
                buyer.cookie,
                {"csrf_token": buyer.token},
            )
        with lock:
            run.requests += 2 + refused
            run.add_latencies_ms.append(added_ms)
            if placed:
                run.orders += 1
                run.latencies_ms.append(elapsed_ms)
            elif refused:
                run.refused += 1
            else:
                run.errors += 1
                text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", body))[:200]
                run.problems.append(f"checkout of {product_id}: {status} {location or text}")

    def bare_once(self, port: int, buyer: Buyer, run: Run, lock: threading.Lock) -> None:
        started = time.perf_counter()
        status, _, _ = request(port, "GET", "/", buyer.cookie)
        elapsed_ms = (time.perf_counter() - started) * 1000
        with lock:
            run.requests += 1
            if status == 200:
                run.latencies_ms.append(elapsed_ms)
            else:
                run.errors += 1


def load(kind: str, buyers: list[Buyer], seconds: float, step) -> Run:
    """Every buyer a thread, repeating `step` until the time is up."""
    run = Run(kind, 0.0)
    lock = threading.Lock()
    start = threading.Barrier(len(buyers) + 1)
    deadline = 0.0

    def worker(buyer: Buyer) -> None:
        start.wait()
        while time.perf_counter() < deadline:
            try:
                step(buyer, run, lock)
            except (OSError, http.client.HTTPException) as error:
                with lock:
                    run.requests += 1
                    run.errors += 1
                    run.problems.append(repr(error))

    threads = [threading.Thread(target=worker, args=(buyer,)) for buyer in buyers]
    for thread in threads:
        thread.start()
    started = time.perf_counter()
    deadline = started + seconds
    start.wait()
    for thread in threads:
        thread.join()
    run.seconds = time.perf_counter() - started
    return run


# --------------------------------------------------------------------------------------------
# Report


def merged(runs: list[Run]) -> dict:
    seconds = sum(run.seconds for run in runs)
    latencies = [ms for run in runs for ms in run.latencies_ms]
    adds = [ms for run in runs for ms in run.add_latencies_ms]
    count = sum(run.orders if run.kind == "orders" else run.requests for run in runs)
    return {
        "per_second": round(count / seconds, 1) if seconds else 0.0,
        "requests_per_second": round(sum(run.requests for run in runs) / seconds, 1)
        if seconds
        else 0.0,
        "p50_ms": round(percentile(latencies, 50), 2),
        "p90_ms": round(percentile(latencies, 90), 2),
        "p99_ms": round(percentile(latencies, 99), 2),
        "max_ms": round(percentile(latencies, 100), 2),
        "cart_add_p50_ms": round(percentile(adds, 50), 2) if adds else None,
        "cart_add_p99_ms": round(percentile(adds, 99), 2) if adds else None,
        "orders": sum(run.orders for run in runs),
        "refused": sum(run.refused for run in runs),
        "requests": sum(run.requests for run in runs),
        "errors": sum(run.errors for run in runs),
        "seconds": round(seconds, 2),
        "rounds": [
            {
                "per_second": round(run.per_second, 1),
                "p50_ms": round(percentile(run.latencies_ms, 50), 2),
                "p99_ms": round(percentile(run.latencies_ms, 99), 2),
                "errors": run.errors,
            }
            for run in runs
        ],
        "problems": [problem for run in runs for problem in run.problems][:20],
    }


# --------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="Speed figures are reported, never enforced; the exit status is 1 only if the "
        "stock check fails.",
    )
    parser.add_argument(
        "--buyers", type=int, default=16, help="concurrent buyers, one thread each [16]"
    )
    parser.add_argument(
        "--seconds",
        type=float,
        default=20,
        help="timed seconds of order placement, split over the rounds; the bare page gets as "
        "long [20]",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=2,
        help="order placement and the bare page take turns this many times, so that a burst "
        "of other work on the machine does not fall on one only [2]",
    )
    parser.add_argument(
        "--warmup", type=float, default=1, help="untimed seconds before each timed run [1]"
    )
    parser.add_argument(
        "--scarce",
        type=int,
        default=50,
        help="units of the one scarce product the buyers fight over until it is gone "
        "(0: none) [50]",
    )
    parser.add_argument(
        "--database-url",
        default=DEFAULT_SERVER,
        help=f"the PostgreSQL server [{DEFAULT_SERVER}]; the benchmark creates and drops its "
        f"own database {PG_BENCH_DATABASE!r} there and touches no other",
    )
    parser.add_argument(
        "--results-dir", type=Path, default=ROOT / "bench" / "results", help="where JSON goes"
    )
    args = parser.parse_args(argv)
    if min(args.buyers, args.seconds, args.rounds) <= 0 or args.warmup < 0 or args.scarce < 0:
        parser.error("--buyers, --seconds, --rounds must be > 0; --warmup, --scarce >= 0")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    load_average = os.getloadavg()
    per_round = args.seconds / args.rounds

    with (
        tempfile.TemporaryDirectory(prefix="shanhai-bench-") as tmp,
        bench_database(args.database_url) as url,
    ):
        workdir = Path(tmp)
        seed_started = time.monotonic()
        world = build_world(url, args.buyers, args.scarce, secrets.token_hex(16))
        seed_seconds = time.monotonic() - seed_started
        print(
            f"database: {PG_BENCH_DATABASE} on {sa.make_url(url).host}, "
            f"{len(world.products)} products, {args.buyers} buyers, in {seed_seconds:.1f} s",
            flush=True,
        )
        env = server_env(url)
        runs: dict[str, list[Run]] = {"bare": [], "orders": []}
        with (
            gunicorn("wsgi:app", env, workdir / "app.log", "/auth/login") as (port, app_cmd),
            gunicorn("bench.bare_app:app", env, workdir / "bare.log", "/") as (
                bare_port,
                bare_cmd,
            ),
        ):
            buyers = [log_in(port, email, n) for n, email in enumerate(world.buyers)]
            shop = Shop(port, world)
            steps = {
                "bare": lambda buyer, run, lock: shop.bare_once(bare_port, buyer, run, lock),
                "orders": shop.order_once,
            }
            for round_no in range(1, args.rounds + 1):
                for kind, step in steps.items():
                    if args.warmup:
                        warm = load(kind, buyers, args.warmup, step)
                        runs.setdefault(f"{kind}-warmup", []).append(warm)
                    run = load(kind, buyers, per_round, step)
                    runs[kind].append(run)
                    unit = "orders/s" if kind == "orders" else "req/s   "
                    print(
                        f"  round {round_no}  {kind:<7}{run.per_second:8.1f} {unit}  "
                        f"p50 {percentile(run.latencies_ms, 50):6.2f} ms  "
                        f"p99 {percentile(run.latencies_ms, 99):6.2f} ms  "
                        f"errors {run.errors}",
                        flush=True,
                    )
            app_log = (workdir / "app.log").read_text(errors="replace")

        every_order_run = runs["orders"] + runs.get("orders-warmup", [])
        orders_seen = sum(run.orders for run in every_order_run)
        unknown = sum(run.errors for run in every_order_run)
        check = check_stock(url, world, orders_seen, unknown)
        shared_codes = duplicate_pickup_codes(url)

    bare = merged(runs["bare"])
    orders = merged(runs["orders"])
    ratio = orders["per_second"] / bare["per_second"] if bare["per_second"] else 0.0
    elapsed = time.monotonic() - started
    server_settings = " ".join([*GUNICORN_SETTINGS, "--bind", "127.0.0.1:<free port>"])
    env_shown = (
        f"DATABASE_URL=<{PG_BENCH_DATABASE}> APP_CONFIG=development SECRET_KEY=<random> "
        "LOGIN_RATE_LIMIT='1000 per minute' (STRIPE_* removed)"
    )
    report = {
        "benchmark": "orders",
        **run_facts(load_average),
        "database": "postgresql",
        "seed_seconds": round(seed_seconds, 1),
        "buyers": args.buyers,
        "rounds": args.rounds,
        "seconds_per_round": per_round,
        "warmup_seconds": args.warmup,
        "scarce_units": args.scarce,
        "gunicorn": {"app": shlex.join(app_cmd), "bare": shlex.join(bare_cmd), "env": env_shown},
        "sql_per_request": world.queries,
        "bare": bare,
        "orders": orders,
        "ratio_orders_to_bare": round(ratio, 4),
        "stock_check": {
            "ok": check.ok,
            "orders_seen_by_buyers": orders_seen,
            "orders_in_database": check.orders_in_database,
            "unanswered_or_failed": unknown,
            "products": check.rows,
        },
        "open_orders_sharing_a_pickup_code": shared_codes,
        "run_seconds": round(elapsed, 1),
    }

    print()
    print(f"command:  {report['command']}")
    print(
        f"machine:  {report['cores']} cores, load average {load_average[0]:.2f} at start, "
        f"{report['platform']}, Python {report['python']}"
    )
    print(f"servers:  gunicorn {server_settings}, each; {env_shown}")
    print(
        f"load:     {args.buyers} buyer threads (new connection per request), {args.rounds} "
        f"rounds of {per_round:g} s each for orders and the bare page, after {args.warmup:g} s "
        f"warm-up; products: {len(world.products) - bool(world.scarce_id)} with "
        f"{PLENTIFUL_STOCK:,} in stock" + (f", 1 with {args.scarce}" if args.scarce else "")
    )
    print(
        f"SQL:      {world.queries['cart_add']} statements per cart add, "
        f"{world.queries['checkout']} per checkout (in-process)"
    )
    print()
    head = f"{'':<18}{'per second':>16}{'rounds':>14}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}"
    print(head)
    print("-" * len(head))
    for label, figures, unit in (
        ("bare Flask page", bare, "req/s"),
        ("order placement", orders, "orders/s"),
    ):
        spread = "/".join(f"{r['per_second']:.0f}" for r in figures["rounds"])
        print(
            f"{label:<18}{figures['per_second']:>7.1f} {unit:<8}{spread:>14}"
            f"{figures['p50_ms']:>9.2f}{figures['p99_ms']:>9.2f}{figures['errors']:>8}"
        )
    print()
    print(
        f"orders:   {orders['orders']} placed in {orders['seconds']:.1f} s timed "
        f"({orders['requests_per_second']:.1f} app requests/s: cart add + checkout), "
        f"{orders['refused']} refused (scarce product gone); latencies are the checkout POST "
        f"alone; cart add p50 {orders['cart_add_p50_ms']} ms, p99 {orders['cart_add_p99_ms']} ms"
    )
    print(f"ratio:    order placement / bare page = {ratio:.1%} (orders/s ÷ bare requests/s)")
    print(
        f"stock:    {'PASS' if check.ok else 'FAIL'}: sold + remaining == starting stock and "
        f"movements explain the level for {sum(r['ok'] for r in check.rows)}/{len(check.rows)} "
        f"products; {check.orders_in_database} orders in the database, {orders_seen} seen placed "
        f"by the buyers, {unknown} unanswered or failed"
    )
    for row in check.rows:
        print(
            f"          product {row['product_id']}: start {row['start']}, sold {row['sold']}, "
            f"remaining {row['remaining']}, movements {row['movements']}"
            f"{'' if row['ok'] else '  <-- MISMATCH'}"
        )
    if shared_codes:
        print(f"note:     {shared_codes} open orders share their pickup code with another one")
    if orders["errors"] or bare["errors"]:
        print("warning:  some requests failed; the figures are not comparable. First problems:")
        for problem in orders["problems"][:5]:
            print(f"          {problem}")
        if "Traceback" in app_log:
            print("          app log (last lines):")
            for line in app_log.strip().splitlines()[-15:]:
                print(f"          {line}")

    args.results_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = args.results_dir / f"orders-{stamp}.json"
    out.write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n")
    print(f"written:  {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}")
    print(f"run time: {elapsed:.1f} s")
    return 0 if check.ok else 1


if __name__ == "__main__":
    sys.exit(main())
