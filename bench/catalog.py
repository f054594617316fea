"""Catalog benchmark: the product list, a pinyin search and a product page under gunicorn.

Builds a catalog of --products products (the demo data plus generated ones) in a fresh database,
serves the app and a bare Flask app (bench/bare_app.py) with identical gunicorn settings, logs in
as the demo staff user, and loads each page with a bounded generator on 127.0.0.1: wrk when it
is installed, threads with http.client otherwise. Each page's requests/s is reported as a share
of the bare page, because on a small machine the load generator shares the CPU with the server
and only the ratio carries from one machine to another.

The pages take turns for --rounds rounds, so that other work on the machine is spread over all
of them. The script prints its figures, writes them to bench/results/, and never fails for
missing the aim.

    .venv/bin/python bench/catalog.py
    .venv/bin/python bench/catalog.py --cache-seconds 0     # every page rendered afresh
    .venv/bin/python bench/catalog.py --database-url postgresql+psycopg://postgres@127.0.0.1/postgres
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
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import cache
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parent.parent
# Run as `python bench/catalog.py`, the script's own folder is on sys.path, not the project.
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

from app import create_app  # noqa: E402
from app.extensions import db  # noqa: E402
from app.models import Organization, OrgKind, Product, ProductStatus, Region  # noqa: E402
from app.models.catalog import Category  # noqa: E402
from app.pinyin import pinyin_keys  # noqa: E402
from app.services import demo  # noqa: E402
from app.services.clock import utcnow  # noqa: E402
from app.services.search import compose_search_text  # noqa: E402

PASSWORD = "bench-password"
STAFF_EMAIL = f"staff@{demo.DEMO_EMAIL_DOMAIN}"
STAFF_NAME = next(name for local, name, _, _ in demo.DEMO_ACCOUNTS if local == "staff")
SEARCH = "dynr"
SEARCH_TARGET = "灯影牛肉"  # the demo product "dynr" stands for
PG_BENCH_DATABASE = "shanhai_bench"
#: Generated names that happen to match the search too; more would change what it measures.
MAX_EXTRA_SEARCH_HITS = 3

AIM_LIST_RATIO = 0.35
AIM_SEARCH_RATIO = 0.25
AIM_P99_MS = 50.0


# --------------------------------------------------------------------------------------------
# Generated catalog: origin + quality word + food, in the category the food belongs to.


def _pairs(text: str) -> list[tuple[str, str]]:
    """'宣汉 Xuanhan; 东海 East China Sea' -> [('宣汉', 'Xuanhan'), ('东海', 'East China Sea')]."""
    return [tuple(item.strip().split(" ", 1)) for item in text.split(";")]


ORIGINS = {
    "dazhou": _pairs(
        "宣汉 Xuanhan; 万源 Wanyuan; 开江 Kaijiang; 渠县 Quxian; 大竹 Dazhu; 达川 Dachuan; "
        "通川 Tongchuan; 巴山 Bashan; 达州 Dazhou; 旧院 Jiuyuan"
    ),
    "zhoushan": _pairs(
        "舟山 Zhoushan; 嵊泗 Shengsi; 岱山 Daishan; 定海 Dinghai; 普陀 Putuo; "
        "东海 East China Sea; 朱家尖 Zhujiajian; 桃花岛 Taohua Island; 六横 Liuheng; 金塘 Jintang"
    ),
}
QUALITIES = _pairs(
    "有机 Organic; 农家 Farmhouse; 精选 Select; 特级 Premium; 野生 Wild; 生态 Eco; "
    "手工 Handmade; 富硒 Selenium-rich; 高山 Highland; 新鲜 Fresh; 古法 Traditional; "
    "散养 Free-range; 即食 Ready-to-eat; 头茬 First-harvest; 冰鲜 Chilled; 优选 Choice"
)
#: category slug -> (foods, the units they are sold in, storage)
_FOOD_TABLE = {
    "meat-eggs": (
        "土鸡蛋 Eggs; 黑猪肉 Black Pork; 黄牛肉 Beef; 咸鸭蛋 Salted Duck Eggs; 山羊肉 Goat Meat; "
        "土鸡 Chicken; 鹅蛋 Goose Eggs; 猪排骨 Pork Ribs",
        ["jin", "box", "piece"],
        "冷藏",
    ),
    "grain-oil": (
        "大米 Rice; 糯米 Glutinous Rice; 菜籽油 Rapeseed Oil; 挂面 Noodles; 玉米面 Cornmeal; "
        "荞麦面 Buckwheat Noodles; 小米 Millet; 红薯粉条 Sweet Potato Noodles",
        ["bag", "bottle", "kg"],
        "常温",
    ),
    "seafood": (
        "带鱼 Hairtail; 大黄鱼 Yellow Croaker; 梭子蟹 Swimming Crab; 鲳鱼 Pomfret; 贻贝 Mussels; "
        "虾仁 Shrimp; 墨鱼 Cuttlefish; 鱿鱼 Squid; 海蜇 Jellyfish",
        ["jin", "kg", "box"],
        "冷冻",
    ),
    "vegetables": (
        "香椿 Toon Shoots; 竹笋 Bamboo Shoots; 萝卜 Radish; 白菜 Cabbage; 土豆 Potatoes; "
        "青椒 Green Peppers; 莴笋 Celtuce; 芦笋 Asparagus",
        ["jin", "kg", "bag"],
        "冷藏",
    ),
    "fruit": (
        "脆李 Crisp Plums; 猕猴桃 Kiwi; 柑橘 Mandarins; 枇杷 Loquats; 杨梅 Bayberries; "
        "葡萄 Grapes; 蜜桃 Peaches; 柚子 Pomelo",
        ["jin", "box"],
        "冷藏",
    ),
    "tea-drinks": (
        "绿茶 Green Tea; 红茶 Black Tea; 毛峰 Maofeng Tea; 雀舌 Queshe Tea; "
        "醪糟 Fermented Rice; 米酒 Rice Wine; 苦荞茶 Tartary Buckwheat Tea",
        ["box", "bottle", "case"],
        "常温",
    ),
    "dried": (
        "核桃 Walnuts; 黄花菜 Daylily; 木耳 Wood Ear; 香菇 Shiitake; 淡菜干 Dried Mussels; "
        "紫菜 Laver; 虾皮 Dried Shrimp; 鳗鲞 Dried Eel",
        ["bag", "box"],
        "常温",
    ),
    "condiments": (
        "豆瓣酱 Bean Paste; 辣椒酱 Chili Sauce; 花椒 Sichuan Pepper; 香椿酱 Toon Sauce; "
        "豆腐乳 Fermented Tofu; 芝麻油 Sesame Oil",
        ["bottle", "bag"],
        "常温",
    ),
    "cured": (
        "腊肉 Cured Pork; 香肠 Sausages; 牛肉干 Beef Jerky; 酱鸭 Sauced Duck; 腊鸡 Cured Chicken; "
        "熏鱼 Smoked Fish",
        ["jin", "bag", "box"],
        "常温",
    ),
}
FOODS = {slug: (_pairs(foods), *rest) for slug, (foods, *rest) in _FOOD_TABLE.items()}
#: Most products plain, some in a named pack (the part in brackets, as the demo data writes it).
PACKS = [("", "")] * 3 + [("（家庭装）", " (family pack)"), ("（礼盒装）", " (gift box)")]
CONTENT = {"bag": (500, "g"), "box": (1000, "g"), "bottle": (500, "ml"), "case": (12, "piece")}


@cache
def _keys(name: str) -> tuple[str, str, str]:
    return pinyin_keys(name)


def generated_products(count: int, session, seed: int = 2026) -> list[dict]:
    """Rows for `count` products spread over the seeded suppliers, regions and categories."""
    rng = random.Random(seed)
    regions = {r.id: r.code for r in session.scalars(sa.select(Region))}
    suppliers = [
        (org.id, org.region_id, org.name_zh)
        for org in session.scalars(
            sa.select(Organization)
            .where(Organization.kind == OrgKind.SUPPLIER)
            .order_by(Organization.id)
        )
    ]
    categories = {c.slug: c.id for c in session.scalars(sa.select(Category))}
    slugs = [slug for slug in FOODS if slug in categories]
    now = utcnow()
    rows: list[dict] = []
    extra_hits = 0
    while len(rows) < count:
        supplier_id, region_id, supplier_name = suppliers[len(rows) % len(suppliers)]
        origin_zh, origin_en = rng.choice(ORIGINS.get(regions[region_id], ORIGINS["dazhou"]))
        slug = rng.choice(slugs)
        foods, units, storage = FOODS[slug]
        food_zh, food_en = rng.choice(foods)
        quality_zh, quality_en = rng.choice(QUALITIES)
        pack_zh, pack_en = rng.choice(PACKS)
        name_zh = f"{origin_zh}{quality_zh}{food_zh}{pack_zh}"
        name_pinyin, name_initials, search_keys = _keys(name_zh)
        if SEARCH in search_keys:
            if extra_hits >= MAX_EXTRA_SEARCH_HITS:
                continue
            extra_hits += 1
        unit = rng.choice(units)
        content_amount, content_unit = CONTENT.get(unit, (None, None))
        created = now - timedelta(minutes=rng.randrange(1, 2 * 365 * 24 * 60))
        # A few sold out or nearly so, so the list shows its stock badges.
        stock = rng.choice([0, 3, *range(20, 600, 7)])
        names = SimpleNamespace(
            name_zh=name_zh,
            name_en=f"{origin_en} {quality_en} {food_en}{pack_en}",
            code=f"BN-{len(rows) + 1:06d}",
            search_keys=search_keys,
        )
        rows.append(
            {
                "code": names.code,
                "supplier_id": supplier_id,
                "origin_region_id": region_id,
                "category_id": categories[slug],
                "status": ProductStatus.ACTIVE,
                "name_zh": name_zh,
                "name_en": names.name_en,
                "name_pinyin": name_pinyin,
                "name_initials": name_initials,
                "search_keys": search_keys,
                "search_text": compose_search_text(names),
                "description_zh": f"{origin_zh}产{quality_zh}{food_zh}，{supplier_name}直供。",
                "description_en": f"{quality_en} {food_en.lower()} from {origin_en}.",
                "unit": unit,
                "retail_price_fen": rng.randrange(500, 30000, 10),
                "content_amount": content_amount,
                "content_unit": content_unit,
                "stock": Decimal(stock),
                "popularity": rng.randrange(0, 5000),
                "featured": False,
                "case_size": None,
                "min_bulk_quantity": None,
                "lead_time_days": rng.choice([1, 2, 3, 5]),
                "county_zh": origin_zh if origin_zh.endswith(("县", "区")) else "",
                "cooperative_zh": supplier_name,
                "households_benefited": rng.randrange(0, 300),
                "certifications": rng.choice(["", "", "绿色食品", "有机产品认证"]),
                "shelf_life_days": rng.choice([7, 30, 180, 365]),
                "storage_zh": storage,
                "image_filename": None,
                "created_at": created,
                "updated_at": created,
            }
        )
    return rows


def build_catalog(url: str, products: int, secret_key: str, cache_seconds: int | None) -> dict:
    """Schema from the migrations, the demo data, then generated products up to `products`."""
    overrides = {
        "SQLALCHEMY_DATABASE_URI": url,
        "SECRET_KEY": secret_key,
        "LOGIN_RATE_LIMIT": "1000 per minute",
    }
    if cache_seconds is not None:
        overrides["CATALOG_CACHE_SECONDS"] = cache_seconds
    app = create_app("development", **overrides)
    with app.app_context():
        upgrade()
        demo.seed_demo(db.session, password=PASSWORD, now=utcnow())
        db.session.commit()
        existing = db.session.scalar(sa.select(sa.func.count(Product.id)))
        rows = generated_products(max(0, products - existing), db.session)
        for start in range(0, len(rows), 2000):
            # Core-style bulk insert: one executemany per chunk instead of 10,000 ORM objects.
            db.session.execute(sa.insert(Product), rows[start : start + 2000])
        db.session.commit()
        total = db.session.scalar(sa.select(sa.func.count(Product.id)))
        detail_id = db.session.scalar(sa.select(Product.id).where(Product.name_zh == SEARCH_TARGET))
    # Outside the seeding context, so that each request has a fresh session as under gunicorn.
    queries = count_queries(app, detail_id)
    with app.app_context():
        db.engine.dispose()
    return {
        "products": total,
        "detail_id": detail_id,
        "queries": queries,
        "cache_seconds": app.config.get("CATALOG_CACHE_SECONDS"),
        "cache_type": app.config.get("CACHE_TYPE"),
    }


def count_queries(app, detail_id: int) -> dict[str, tuple[int, int]]:
    """SQL statements of the first and the second request of each page, as logged-in staff.

    The first may fill caches; the timed requests are like the second.
    """
    client = app.test_client()
    login_page = client.get("/auth/login").get_data(as_text=True)
    client.post(
        "/auth/login",
        data={"email": STAFF_EMAIL, "password": PASSWORD, "csrf_token": csrf_token(login_page)},
        follow_redirects=True,
    )
    statements = 0

    def _count(_conn, _cursor, statement, *_rest) -> None:
        nonlocal statements
        # app.web.sqlite issues BEGIN itself on SQLite; PostgreSQL's is implicit. Not counted,
        # so that the figures compare across backends.
        if statement != "BEGIN":
            statements += 1

    with app.app_context():
        engine = db.engine
    sa.event.listen(engine, "before_cursor_execute", _count)
    result = {}
    try:
        for key, path in app_pages(detail_id).items():
            counts = []
            for _ in range(2):
                statements = 0
                if client.get(path).status_code != 200:
                    raise SystemExit(f"{path} failed in-process")
                counts.append(statements)
            result[key] = (counts[0], counts[1])
    finally:
        sa.event.remove(engine, "before_cursor_execute", _count)
    return result


# --------------------------------------------------------------------------------------------
# Database


@contextlib.contextmanager
def bench_database(database_url: str | None, workdir: Path):
    """A fresh database: a SQLite file in workdir, or our own database on a PostgreSQL server."""
    if not database_url:
        yield f"sqlite:///{workdir / 'bench.sqlite3'}"
        return
    server = sa.make_url(database_url)
    if not server.drivername.startswith("postgresql"):
        raise SystemExit("--database-url: only PostgreSQL URLs are supported (SQLite is default)")
    # Whatever database the URL names, we only ever create and drop our own.
    admin_url = server.set(database="postgres")
    bench_url = server.set(database=PG_BENCH_DATABASE)
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    drop = sa.text(f'DROP DATABASE IF EXISTS "{PG_BENCH_DATABASE}" WITH (FORCE)')
    with admin.connect() as conn:
        conn.execute(drop)  # left over by an interrupted run
        conn.execute(sa.text(f'CREATE DATABASE "{PG_BENCH_DATABASE}"'))
    try:
        yield bench_url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(drop)
        admin.dispose()


# --------------------------------------------------------------------------------------------
# Servers


def server_env(database_url: str, cache_seconds: int | None) -> dict[str, str]:
    env = dict(os.environ)
    # Settings injected from the environment would differ from the command we print.
    env.pop("GUNICORN_CMD_ARGS", None)
    env.update(
        DATABASE_URL=database_url,
        APP_CONFIG="development",
        SECRET_KEY=secrets.token_hex(32),
        LOGIN_RATE_LIMIT="1000 per minute",
    )
    if cache_seconds is not None:
        env["CATALOG_CACHE_SECONDS"] = str(cache_seconds)
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
            if request(port, path)[0] == 200:
                return
        time.sleep(0.2)
    raise SystemExit(f"gunicorn did not answer on port {port} within 60 s:\n{log.read_text()}")


# --------------------------------------------------------------------------------------------
# HTTP


#: Sent with every request, the login included: Flask-Login ties the session to the user agent
#: and would mark it non-fresh, and set a new cookie on every reply, if the agent changed.
USER_AGENT = "shanhai-bench/1"


def request_headers(cookie: str) -> dict[str, str]:
    return {"User-Agent": USER_AGENT, **({"Cookie": cookie} if cookie else {})}


def request(port: int, path: str, cookie: str = "") -> tuple[int, str, http.client.HTTPMessage]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path, headers=request_headers(cookie))
        response = conn.getresponse()
        return response.status, response.read().decode("utf-8", "replace"), response.headers
    finally:
        conn.close()


def csrf_token(html: str) -> str:
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html)
    if not match:
        raise SystemExit("no csrf_token field on the login page")
    return match.group(1)


def log_in(port: int) -> str:
    """The Cookie header of a staff session, logged in through the real login form."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    opener.addheaders = [("User-Agent", USER_AGENT)]
    base = f"http://127.0.0.1:{port}"
    with opener.open(f"{base}/auth/login", timeout=10) as response:
        token = csrf_token(response.read().decode())
    form = {"email": STAFF_EMAIL, "password": PASSWORD, "csrf_token": token}
    # The redirect after login is followed, so the welcome flash is shown once and leaves the
    # session; otherwise every timed request would render it and rewrite the cookie.
    with opener.open(f"{base}/auth/login", urllib.parse.urlencode(form).encode(), timeout=10):
        pass
    cookie = "; ".join(f"{c.name}={c.value}" for c in jar)
    if "session=" not in cookie:
        raise SystemExit("logging in as staff gave no session cookie")
    return cookie


def app_pages(detail_id: int) -> dict[str, str]:
    return {
        "list": "/products",
        "search": "/products?" + urllib.parse.urlencode({"q": SEARCH}),
        "detail": f"/products/{detail_id}",
    }


def check_page(port: int, key: str, path: str, cookie: str) -> dict:
    """Fail before timing if a page is not what it should be (an error page is fast)."""
    status, body, headers = request(port, path, cookie)
    problems = [] if status == 200 else [f"status {status}"]
    product_ids = set(re.findall(r'href="/products/(\d+)"', body))
    if key != "bare" and STAFF_NAME not in body:
        problems.append(f"not logged in (no {STAFF_NAME})")
    if key == "list" and not product_ids:
        problems.append("no product link")
    if key in ("search", "detail") and SEARCH_TARGET not in body:
        problems.append(f"no {SEARCH_TARGET}")
    if problems:
        raise SystemExit(f"{path}: " + ", ".join(problems))
    return {
        "bytes": len(body.encode()),
        "product_links": len(product_ids),
        "sets_cookie": "Set-Cookie" in headers,
    }


# --------------------------------------------------------------------------------------------
# Load generation


#: A run's latencies are kept as this many quantiles (0.1 % steps), which wrk can print and
#: which merge across rounds by weighting each run's quantiles by its request count.
QUANTILES = 1000


@dataclass
class Load:
    """One timed run against one page."""

    requests: int
    seconds: float
    errors: int
    quantiles_ms: list[float]  # the latency at 0.1 %, 0.2 %, ... 100 % of the requests

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def percentile(self, pct: float) -> float:
        return percentile_ms([self], pct)


def percentile_ms(runs: list[Load], pct: float) -> float:
    """The latency below which pct % of the requests of all these runs fell."""
    points = sorted((value, run.requests / QUANTILES) for run in runs for value in run.quantiles_ms)
    total = sum(weight for _, weight in points)
    if not total:
        return 0.0
    # A hair under the rank, so that one run's own quantile is found despite float sums.
    wanted, seen = pct / 100 * total * (1 - 1e-9), 0.0
    for value, weight in points:
        seen += weight
        if seen >= wanted:
            return value
    return points[-1][0]


WRK_SCRIPT = """
-- Stops the thread after its request budget (wrk alone is bounded only by time), and prints
-- the latency quantiles in 0.1 % steps so that several rounds can be merged.
local limit = 0
local count = 0

function init(args)
  limit = tonumber(args[1])
end

function response(status, headers, body)
  count = count + 1
  if count >= limit then
    wrk.thread:stop()
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  local errors = e.connect + e.read + e.write + e.status + e.timeout
  io.write(string.format("BENCH_SUMMARY %d %d %d\\n", summary.requests, summary.duration, errors))
  local parts = {}
  for i = 1, STEPS - 1 do
    parts[i] = string.format("%d", latency:percentile(i * 100 / STEPS))
  end
  -- percentile(100) looks for a rank past the last request; the maximum is that quantile.
  parts[STEPS] = string.format("%d", latency.max)
  io.write("BENCH_QUANTILES_US " .. table.concat(parts, " ") .. "\\n")
end
""".replace("STEPS", str(QUANTILES))


def rps(runs: list[Load]) -> float:
    seconds = sum(run.seconds for run in runs)
    return sum(run.requests for run in runs) / seconds if seconds else 0.0


def wrk_load(
    wrk: str, script: Path, url: str, cookie: str, seconds: float, limit: int, connections: int
) -> Load:
    threads = 1  # one event loop drives a few connections; a second would take CPU from gunicorn
    command = [
        wrk,
        f"--threads={threads}",
        f"--connections={connections}",
        f"--duration={max(1, round(seconds))}s",
        "--timeout=5s",
        f"--script={script}",
        *(
            arg
            for name, value in request_headers(cookie).items()
            for arg in ("--header", f"{name}: {value}")
        ),
        url,
        "--",
        str(max(1, limit // threads)),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60)
    lines = dict(line.partition(" ")[::2] for line in done.stdout.splitlines())
    if done.returncode != 0 or "BENCH_SUMMARY" not in lines:
        raise SystemExit(f"wrk failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    requests, duration_us, errors = map(int, lines["BENCH_SUMMARY"].split())
    quantiles = [int(us) / 1000 for us in lines.get("BENCH_QUANTILES_US", "").split()]
    return Load(requests, duration_us / 1e6, errors, quantiles if requests else [])


def python_load(
    port: int, path: str, cookie: str, seconds: float, limit: int, connections: int
) -> Load:
    """Threads with their own connection (gunicorn's sync workers close it after each reply)."""
    latencies: list[float] = []
    errors = 0
    issued = 0
    lock = threading.Lock()
    headers = request_headers(cookie)
    deadline = time.perf_counter() + seconds

    def worker() -> None:
        nonlocal errors, issued
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        mine: list[float] = []
        failed = 0
        while time.perf_counter() < deadline:
            with lock:
                if issued >= limit:
                    break
                issued += 1
            started = time.perf_counter()
            try:
                conn.request("GET", path, headers=headers)
                response = conn.getresponse()
                response.read()
            except (OSError, http.client.HTTPException):
                failed += 1
                conn.close()
                continue
            if response.status != 200:
                failed += 1
            mine.append((time.perf_counter() - started) * 1000)
        conn.close()
        with lock:
            latencies.extend(mine)
            errors += failed

    started = time.perf_counter()
    pool = [threading.Thread(target=worker) for _ in range(connections)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    elapsed = time.perf_counter() - started
    latencies.sort()
    # Nearest rank, as wrk computes its percentiles.
    quantiles = [
        latencies[max(0, math.ceil(i / QUANTILES * len(latencies)) - 1)]
        for i in range(1, QUANTILES + 1)
    ]
    return Load(len(latencies), elapsed, errors, quantiles if latencies else [])


# --------------------------------------------------------------------------------------------
# Report

PAGE_LABELS = {
    "bare": "bare Flask page",
    "list": "product list",
    "search": f"search {SEARCH}",
    "detail": "product detail",
}


def aims(key: str, ratio: float, p99_ms: float) -> list[tuple[str, bool]]:
    checks: list[tuple[str, bool]] = []
    if key == "list":
        checks.append((f"ratio >= {AIM_LIST_RATIO:.0%}", ratio >= AIM_LIST_RATIO))
    if key == "search":
        checks.append((f"ratio >= {AIM_SEARCH_RATIO:.0%}", ratio >= AIM_SEARCH_RATIO))
    if key != "bare":
        checks.append((f"p99 < {AIM_P99_MS:.0f} ms", p99_ms < AIM_P99_MS))
    return checks


def table(rows: list[dict]) -> str:
    head = (
        f"{'page':<17}{'path':<19}{'req/s':>8}{'rounds':>14}{'vs bare':>9}{'p50 ms':>8}"
        f"{'p99 ms':>8}{'errors':>7}{'SQL':>6}  aim"
    )
    lines = [head, "-" * (len(head) + 30)]
    for row in rows:
        aim_text = ", ".join(f"{name} {'yes' if ok else 'NO'}" for name, ok in row["aims"]) or "-"
        sql = "-" if row["sql"] is None else "/".join(map(str, row["sql"]))
        spread = "/".join(f"{r['rps']:.0f}" for r in row["rounds"])
        lines.append(
            f"{row['label']:<17}{row['path']:<19}{row['rps']:>8.1f}{spread:>14}"
            f"{row['ratio']:>9.1%}{row['p50_ms']:>8.2f}{row['p99_ms']:>8.2f}{row['errors']:>7}"
            f"{sql:>6}  {aim_text}"
        )
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="Figures are reported, never enforced: the exit status ignores the aims.",
    )
    parser.add_argument("--products", type=int, default=10_000, help="catalog size [10000]")
    parser.add_argument(
        "--seconds", type=float, default=5, help="timed seconds per page and round [5]"
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=2,
        help="the pages are measured in turn this many times and the rounds merged, so that "
        "a burst of other work on the machine does not fall on one page only [2]",
    )
    parser.add_argument(
        "--warmup", type=float, default=1, help="untimed seconds before each timed run [1]"
    )
    parser.add_argument(
        "--max-requests",
        type=int,
        default=50_000,
        help="request budget of each timed run, whatever the time [50000]",
    )
    parser.add_argument(
        "--connections",
        type=int,
        default=4,
        help="concurrent connections: two per gunicorn worker keep both busy without long "
        "queues [4]",
    )
    parser.add_argument(
        "--database-url",
        help="a PostgreSQL server to use instead of a SQLite file, e.g. "
        "postgresql+psycopg://postgres@127.0.0.1:5432/postgres; the benchmark creates and "
        f"drops its own database {PG_BENCH_DATABASE!r} there and touches no other",
    )
    parser.add_argument(
        "--cache-seconds",
        type=int,
        help="set CATALOG_CACHE_SECONDS for the app (0 measures every page uncached) "
        "[the app's default]",
    )
    parser.add_argument(
        "--generator",
        choices=["auto", "wrk", "python"],
        default="auto",
        help="load generator: wrk if installed (auto), or the threaded Python one [auto]",
    )
    parser.add_argument(
        "--results-dir", type=Path, default=ROOT / "bench" / "results", help="where JSON goes"
    )
    args = parser.parse_args(argv)
    positive = [args.products, args.seconds, args.rounds, args.max_requests, args.connections]
    if min(positive) <= 0 or args.warmup < 0:
        parser.error("--products, --seconds, --rounds, --max-requests, --connections must be > 0")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    load_average = os.getloadavg()
    wrk = shutil.which("wrk") if args.generator in ("auto", "wrk") else None
    if args.generator == "wrk" and not wrk:
        raise SystemExit("--generator wrk: wrk is not installed (apt-get install wrk)")
    generator = "wrk" if wrk else "python"
    # SQLite stores NUMERIC as REAL; the app keeps 3 decimals on purpose (see pyproject.toml).
    warnings.filterwarnings("ignore", message=r"Dialect sqlite\+pysqlite does \*not\* support")

    with tempfile.TemporaryDirectory(prefix="shanhai-bench-") as tmp:
        workdir = Path(tmp)
        script = workdir / "bench.lua"
        script.write_text(WRK_SCRIPT)

        def load(port: int, path: str, cookie: str, seconds: float, limit: int) -> Load:
            if wrk:
                url = f"http://127.0.0.1:{port}{path}"
                return wrk_load(wrk, script, url, cookie, seconds, limit, args.connections)
            return python_load(port, path, cookie, seconds, limit, args.connections)

        with bench_database(args.database_url, workdir) as url:
            seed_started = time.monotonic()
            catalog = build_catalog(url, args.products, secrets.token_hex(16), args.cache_seconds)
            seed_seconds = time.monotonic() - seed_started
            database = sa.make_url(url).get_backend_name()
            print(
                f"catalog: {catalog['products']} products in {seed_seconds:.1f} s ({database}); "
                f"load generator: {generator}",
                flush=True,
            )
            env = server_env(url, args.cache_seconds)
            pages = {"bare": "/", **app_pages(catalog["detail_id"])}
            runs: dict[str, list[Load]] = {key: [] for key in pages}
            # Both servers stay up and the pages take turns, so that the ratios compare runs
            # made close together; an idle sync worker costs nothing meanwhile.
            with (
                gunicorn("wsgi:app", env, workdir / "app.log", "/auth/login") as (port, app_cmd),
                gunicorn("bench.bare_app:app", env, workdir / "bare.log", "/") as (
                    bare_port,
                    bare_cmd,
                ),
            ):
                cookie = log_in(port)
                ports = {key: bare_port if key == "bare" else port for key in pages}
                # The bare page gets the same cookie, so both receive the same request headers.
                checks = {key: check_page(ports[key], key, pages[key], cookie) for key in pages}
                for round_no in range(1, args.rounds + 1):
                    for key, path in pages.items():
                        if args.warmup:
                            load(ports[key], path, cookie, args.warmup, args.max_requests)
                        run = load(ports[key], path, cookie, args.seconds, args.max_requests)
                        runs[key].append(run)
                        print(
                            f"  round {round_no}  {PAGE_LABELS[key]:<17}{run.rps:8.1f} req/s  "
                            f"p50 {run.percentile(50):6.2f} ms  p99 {run.percentile(99):6.2f} ms",
                            flush=True,
                        )

    bare_rps = rps(runs["bare"])
    rows = []
    for key, key_runs in runs.items():
        ratio = rps(key_runs) / bare_rps if bare_rps else 0.0
        p99 = percentile_ms(key_runs, 99)
        rows.append(
            {
                "page": key,
                "label": PAGE_LABELS[key],
                "path": pages[key],
                "rps": round(rps(key_runs), 1),
                "ratio": round(ratio, 4),
                "p50_ms": round(percentile_ms(key_runs, 50), 2),
                "p90_ms": round(percentile_ms(key_runs, 90), 2),
                "p99_ms": round(p99, 2),
                "max_ms": round(percentile_ms(key_runs, 100), 2),
                "requests": sum(run.requests for run in key_runs),
                "seconds": round(sum(run.seconds for run in key_runs), 2),
                "errors": sum(run.errors for run in key_runs),
                "rounds": [
                    {
                        "rps": round(run.rps, 1),
                        "p50_ms": round(run.percentile(50), 2),
                        "p99_ms": round(run.percentile(99), 2),
                        "requests": run.requests,
                        "errors": run.errors,
                    }
                    for run in key_runs
                ],
                "sql": catalog["queries"].get(key),
                "response_bytes": checks[key]["bytes"],
                "product_links": checks[key]["product_links"],
                "sets_cookie": checks[key]["sets_cookie"],
                "aims": aims(key, ratio, p99),
            }
        )
    elapsed = time.monotonic() - started
    server_settings = " ".join([*GUNICORN_SETTINGS, "--bind", "127.0.0.1:<free port>"])
    env_shown = (
        "DATABASE_URL=<bench database> APP_CONFIG=development SECRET_KEY=<random> "
        "LOGIN_RATE_LIMIT='1000 per minute'"
    )
    if args.cache_seconds is not None:
        env_shown += f" CATALOG_CACHE_SECONDS={args.cache_seconds}"
    report = {
        "benchmark": "catalog",
        **run_facts(load_average),
        "products": catalog["products"],
        "database": database,
        "seed_seconds": round(seed_seconds, 1),
        "catalog_cache_seconds": catalog["cache_seconds"],
        "cache_type": catalog["cache_type"],
        "search_hits": checks["search"]["product_links"],
        "generator": generator,
        "connections": args.connections,
        "rounds": args.rounds,
        "seconds_per_round": args.seconds,
        "warmup_seconds": args.warmup,
        "max_requests_per_run": args.max_requests,
        "user": STAFF_EMAIL,
        "gunicorn": {
            "app": shlex.join(app_cmd),
            "bare": shlex.join(bare_cmd),
            "env": env_shown,
        },
        "aims": {
            "list_ratio": AIM_LIST_RATIO,
            "search_ratio": AIM_SEARCH_RATIO,
            "p99_ms": AIM_P99_MS,
        },
        "pages": rows,
        "run_seconds": round(elapsed, 1),
    }

    print()
    print(f"command:  {report['command']}")
    print(
        f"machine:  {report['cores']} cores, load average {load_average[0]:.2f} at start, "
        f"{report['platform']}, Python {report['python']}"
    )
    print(
        f"catalog:  {report['products']} products on {database}; "
        f"'{SEARCH}' finds {report['search_hits']}; "
        f"page cache {report['cache_type']}, "
        f"CATALOG_CACHE_SECONDS={report['catalog_cache_seconds']}"
    )
    print(f"servers:  gunicorn {server_settings}, each; logged in as {STAFF_EMAIL}")
    print(
        f"load:     {generator}, {args.connections} connections, {args.rounds} rounds of "
        f"{args.seconds:g} s per page after {args.warmup:g} s warm-up, "
        f"at most {args.max_requests} requests per run"
    )
    print()
    print(table(rows))
    print()
    print("req/s: all rounds together (each round's after it); SQL: statements of a first/repeat")
    print("request, counted in-process.")
    unmet = [f"{row['label']} {name}" for row in rows for name, ok in row["aims"] if not ok]
    print("aim:      " + ("met" if not unmet else "not met (" + "; ".join(unmet) + ")"))
    if any(row["sets_cookie"] for row in rows):
        print(
            "warning:  a page sets a cookie on a repeat request; the session is rewritten each time"
        )
    if any(row["errors"] for row in rows):
        print("warning:  some requests failed; their pages' figures are not comparable")

    args.results_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = args.results_dir / f"catalog-{stamp}.json"
    for row in rows:
        row["aims"] = [{"aim": name, "met": ok} for name, ok in row["aims"]]
    out.write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n")
    print(f"written:  {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}")
    print(f"run time: {elapsed:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
