"""Canteen benchmark: the quick order sheet over 2,000 bulk products, and 500-line order sheets
uploaded as CSV and as XLSX, timed in-process (server time).

Builds a fresh database (SQLite file, or its own PostgreSQL database `shanhai_bench_canteen`)
with the demo data and generated bulk products up to --products, each with a case size, a bulk
minimum and 2-3 price tiers, spread over the demo suppliers, regions and categories. Logs in as
the demo canteen buyer with Flask's test client, then times, with time.perf_counter around each
request:

* GET /canteen/sheet, after warm-ups, taking turns with a bare Flask page (bench/bare_app.py,
  in this same process with its own test client), so a burst of other work on the machine falls
  on both and the ratio sheet / bare holds;
* POST /canteen/sheet/upload of a 500-line CSV and of a 500-line XLSX (made with openpyxl), all
  valid, distinct products: each run saves a draft of 500 lines;
* POST /canteen/sheet/upload of a 500-line sheet of which 50 lines are bad (unknown codes, part
  cases): it must be refused with 422, every bad line listed, and nothing saved;
* GET /canteen/sheet again once the drafts exist (the sheet lists the last ten orders).

The aims (from the issue): the sheet renders in under 300 ms (p50), a 500-line sheet is
validated and saved in under 2 s. The script prints its figures, the command and the aims, writes
JSON to bench/results/, and exits 0 whether or not the aims are met; it exits 1 only when a page
is not what it should be (an error page is fast, and its time would mean nothing).

    .venv/bin/python bench/canteen.py
    .venv/bin/python bench/canteen.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres
    .venv/bin/python bench/canteen.py --profile          # where a sheet request and an upload go
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import csv
import gc
import io
import json
import math
import os
import pstats
import random
import re
import secrets
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Run as `python bench/canteen.py`, the script's own folder is on sys.path, not the project.
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402
from bare_app import app as bare_app  # noqa: E402  (bench/ is on sys.path when run as a script)
from catalog import generated_products  # noqa: E402
from flask_migrate import upgrade  # noqa: E402
from openpyxl import Workbook  # noqa: E402
from serving import run_facts  # noqa: E402
from sqlalchemy.orm import selectinload  # noqa: E402

from app import create_app  # noqa: E402
from app.extensions import db  # noqa: E402
from app.models import BulkOrder, BulkOrderLine, PriceTier, Product, ProductStatus  # noqa: E402
from app.services import demo  # noqa: E402
from app.services.clock import utcnow  # noqa: E402
from app.services.pricing import bulk_minimum  # noqa: E402

PASSWORD = "bench-password"
BUYER_EMAIL = f"buyer@{demo.DEMO_EMAIL_DOMAIN}"
BUYER_NAME = next(name for local, name, _, _ in demo.DEMO_ACCOUNTS if local == "buyer")
PG_BENCH_DATABASE = "shanhai_bench_canteen"
SHEET = "/canteen/sheet"
UPLOAD = "/canteen/sheet/upload"

AIM_SHEET_P50_MS = 300.0
AIM_UPLOAD_S = 2.0

#: unit -> case sizes it is packed in (generated bulk products).
CASE_SIZES = {
    "jin": [10, 20, 50],
    "kg": [5, 10, 25],
    "box": [6, 10, 12, 20],
    "bag": [10, 20, 30],
    "bottle": [6, 12, 24],
    "case": [2, 5],
    "piece": [10, 20],
}
#: A row of the sheet: <tr data-case=... data-min=... data-tiers=...>.
SHEET_ROW = re.compile(r"<tr data-case=")
UPLOAD_ERROR_ROW = re.compile(r"<tr><td>\d+</td><td>")


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


def bulk_terms(rng: random.Random, unit: str, retail_fen: int) -> tuple[int, int, list]:
    """(case size, bulk minimum, [(tier threshold, unit price fen), ...]) for a product."""
    case = rng.choice(CASE_SIZES[unit])
    minimum = case * rng.choice([1, 2])
    thresholds = [minimum]
    for _ in range(rng.choice([1, 2])):  # 2 or 3 tiers
        thresholds.append(thresholds[-1] * rng.choice([3, 5]))
    price = max(100, round(retail_fen * 0.92 / 10) * 10)
    tiers = []
    for threshold in thresholds:
        tiers.append((threshold, price))
        price = max(50, round(price * rng.uniform(0.92, 0.96) / 10) * 10)
    return case, minimum, tiers


def build(url: str, products: int, secret_key: str, seed: int = 2026):
    """Schema from the migrations, the demo data, then generated bulk products up to
    `products` bulk products in all, with their tiers; returns the app and what was built."""
    app = create_app(
        "development",
        SQLALCHEMY_DATABASE_URI=url,
        SECRET_KEY=secret_key,
        LOGIN_RATE_LIMIT="1000 per minute",
        # The test client sends no CSRF token; the check it skips costs microseconds.
        WTF_CSRF_ENABLED=False,
    )
    rng = random.Random(seed)
    with app.app_context():
        upgrade()
        demo.seed_demo(db.session, password=PASSWORD, now=utcnow())
        db.session.commit()
        existing = db.session.scalar(
            sa.select(sa.func.count(Product.id)).where(Product.case_size.is_not(None))
        )
        rows = generated_products(max(0, products - existing), db.session, seed=seed)
        tiers_by_code = {}
        for row in rows:
            case, minimum, tiers = bulk_terms(rng, str(row["unit"]), row["retail_price_fen"])
            row["status"] = ProductStatus.ACTIVE
            row["case_size"] = Decimal(case)
            row["min_bulk_quantity"] = Decimal(minimum)
            row["lead_time_days"] = rng.choice([2, 3, 4])
            tiers_by_code[row["code"]] = tiers
        for start in range(0, len(rows), 2000):
            # Core-style bulk insert: one executemany per chunk instead of thousands of objects.
            db.session.execute(sa.insert(Product), rows[start : start + 2000])
        ids = dict(
            db.session.execute(
                sa.select(Product.code, Product.id).where(Product.code.in_(list(tiers_by_code)))
            ).all()
        )
        tier_rows = [
            {"product_id": ids[code], "min_quantity": Decimal(q), "unit_price_fen": fen}
            for code, tiers in tiers_by_code.items()
            for q, fen in tiers
        ]
        for start in range(0, len(tier_rows), 5000):
            db.session.execute(sa.insert(PriceTier), tier_rows[start : start + 5000])
        db.session.commit()
        bulk = db.session.scalars(
            sa.select(Product)
            .where(Product.case_size.is_not(None), Product.status == ProductStatus.ACTIVE)
            .options(selectinload(Product.price_tiers))
            .order_by(Product.id)
        ).all()
        catalog = [
            (
                p.code,
                p.name_zh,
                p.case_size,
                bulk_minimum(p),
                [t.min_quantity for t in p.price_tiers],
            )
            for p in bulk
            if p.price_tiers
        ]
        info = {
            "bulk_products": len(catalog),
            "all_products": db.session.scalar(sa.select(sa.func.count(Product.id))),
            "price_tiers": db.session.scalar(sa.select(sa.func.count(PriceTier.id))),
        }
    # As wsgi.py does once the app is built: start-up objects out of the collector's way.
    gc.collect()
    gc.freeze()
    return app, catalog, info


# --------------------------------------------------------------------------------------------
# Order sheets


@dataclass(frozen=True)
class Line:
    code: str
    name: str
    quantity: str


def valid_lines(catalog: list, count: int, rng: random.Random) -> list[Line]:
    """`count` distinct products, each a whole number of cases at or above its minimum, some
    reaching a higher tier."""
    if len(catalog) < count:
        raise SystemExit(f"--upload-lines {count}: only {len(catalog)} bulk products")
    lines = []
    for code, name, case, minimum, thresholds in rng.sample(catalog, count):
        target = max(minimum, rng.choice(thresholds) if rng.random() < 0.5 else minimum)
        whole_cases = math.ceil(target / case) * case  # a tier threshold need not be one
        quantity = whole_cases + case * rng.randrange(0, 4)
        lines.append(Line(code, name, f"{Decimal(quantity).normalize():f}"))
    return lines


def with_bad_lines(lines: list[Line], bad: int, catalog: list, rng: random.Random) -> list[Line]:
    """The same sheet with `bad` lines spoiled: half unknown codes, half part cases."""
    spoiled = list(lines)
    by_code = {entry[0]: entry for entry in catalog}
    for n, index in enumerate(rng.sample(range(len(spoiled)), bad)):
        line = spoiled[index]
        if n % 2 == 0:
            spoiled[index] = Line(f"XX-{900000 + n}", "", line.quantity)
        else:
            _code, _name, case, minimum, _t = by_code[line.code]
            part = minimum + case / 2 if case > 1 else minimum + Decimal("0.5")
            spoiled[index] = Line(line.code, line.name, f"{Decimal(part).normalize():f}")
    return spoiled


HEADER = ("商品编码", "商品名称", "数量")


def sheet_csv(lines: list[Line]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(HEADER)
    writer.writerows((line.code, line.name, line.quantity) for line in lines)
    return buffer.getvalue().encode("utf-8-sig")


def sheet_xlsx(lines: list[Line]) -> bytes:
    book = Workbook()
    sheet = book.active
    sheet.title = "订货单"
    sheet.append(HEADER)
    for line in lines:
        quantity = Decimal(line.quantity)
        number = int(quantity) if quantity == quantity.to_integral_value() else float(quantity)
        sheet.append((line.code, line.name, number))
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


# --------------------------------------------------------------------------------------------
# Timing


class StatementCounter:
    """SQL statements sent while `counting` (BEGIN left out, as app.web.sqlite sends it itself
    on SQLite only, so the figures compare across backends)."""

    def __init__(self, engine: sa.Engine):
        self.engine = engine
        self.count = 0

    def _count(self, _conn, _cursor, statement, *_rest) -> None:
        if statement != "BEGIN":
            self.count += 1

    def __enter__(self) -> StatementCounter:
        sa.event.listen(self.engine, "before_cursor_execute", self._count)
        return self

    def __exit__(self, *_exc) -> None:
        sa.event.remove(self.engine, "before_cursor_execute", self._count)


@dataclass
class Sample:
    ms: float
    status: int
    size: int
    sql: int
    location: str


def timed(call: Callable, counter: StatementCounter | None = None) -> Sample:
    if counter is not None:
        counter.count = 0
    started = time.perf_counter()
    response = call()
    body = response.get_data()  # the whole body, inside the timed span
    ms = (time.perf_counter() - started) * 1000
    return Sample(
        ms,
        response.status_code,
        len(body),
        counter.count if counter else 0,
        response.headers.get("Location", ""),
    )


def nearest_rank(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    return ordered[max(0, math.ceil(pct / 100 * len(ordered)) - 1)]


def summary(samples: list[Sample]) -> dict:
    ms = [s.ms for s in samples]
    sql = sorted({s.sql for s in samples})
    return {
        "runs": len(samples),
        "p50_ms": round(nearest_rank(ms, 50), 2),
        "p90_ms": round(nearest_rank(ms, 90), 2),
        "max_ms": round(max(ms), 2) if ms else 0.0,
        "mean_ms": round(sum(ms) / len(ms), 2) if ms else 0.0,
        "kb": round(max(s.size for s in samples) / 1024, 1) if samples else 0.0,
        "sql": sql[0] if len(sql) == 1 else sql,
        "all_ms": [round(x, 2) for x in ms],
    }


def upload(client, data: bytes, filename: str):
    return lambda: client.post(
        UPLOAD,
        data={"sheet": (io.BytesIO(data), filename)},
        content_type="multipart/form-data",
    )


def log_in(client) -> None:
    response = client.post(
        "/auth/login",
        data={"email": BUYER_EMAIL, "password": PASSWORD},
        follow_redirects=True,  # the welcome flash is shown once and leaves the session
    )
    if response.status_code != 200 or BUYER_NAME not in response.get_data(as_text=True):
        raise SystemExit(f"logging in as {BUYER_EMAIL} failed ({response.status_code})")


def check_sheet(client, expected_rows: int) -> None:
    """Fail before timing if the sheet is not the full sheet for the logged-in buyer."""
    response = client.get(SHEET)
    body = response.get_data(as_text=True)
    problems = [] if response.status_code == 200 else [f"status {response.status_code}"]
    if BUYER_NAME not in body:
        problems.append(f"not logged in (no {BUYER_NAME})")
    rows = len(SHEET_ROW.findall(body))
    if rows != expected_rows:
        problems.append(f"{rows} product rows, expected {expected_rows}")
    if problems:
        raise SystemExit(f"{SHEET}: " + ", ".join(problems))


def counts(app) -> tuple[int, int]:
    with app.app_context():
        return (
            db.session.scalar(sa.select(sa.func.count(BulkOrder.id))),
            db.session.scalar(sa.select(sa.func.count(BulkOrderLine.id))),
        )


def draft_lines(app, location: str) -> int:
    match = re.search(r"/canteen/orders/(\d+)$", location)
    if not match:
        return -1
    with app.app_context():
        return db.session.scalar(
            sa.select(sa.func.count(BulkOrderLine.id)).where(
                BulkOrderLine.order_id == int(match.group(1))
            )
        )


def profile(label: str, call: Callable, top: int) -> str:
    profiler = cProfile.Profile()
    profiler.enable()
    call().get_data()
    profiler.disable()
    parts = []
    for order in ("cumulative", "tottime"):
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).strip_dirs().sort_stats(order).print_stats(top)
        parts.append(f"--- cProfile: {label} (by {order}, top {top}) ---\n{out.getvalue()}")
    return "\n".join(parts)


# --------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="Figures are reported, never enforced: the exit status ignores the aims.",
    )
    parser.add_argument(
        "--products", type=int, default=2000, help="bulk products on the sheet [2000]"
    )
    parser.add_argument(
        "--sheet-requests", type=int, default=30, help="timed GETs of the sheet [30]"
    )
    parser.add_argument("--warmup", type=int, default=3, help="untimed GETs first [3]")
    parser.add_argument(
        "--bare-per-request",
        type=int,
        default=10,
        help="bare-page requests timed after each sheet request [10]",
    )
    parser.add_argument(
        "--upload-lines", type=int, default=500, help="lines per uploaded sheet [500]"
    )
    parser.add_argument(
        "--upload-runs", type=int, default=5, help="timed uploads per format (CSV, XLSX) [5]"
    )
    parser.add_argument(
        "--bad-lines", type=int, default=50, help="bad lines in the refused sheet [50]"
    )
    parser.add_argument("--bad-runs", type=int, default=3, help="timed refused uploads [3]")
    parser.add_argument(
        "--database-url",
        help="a PostgreSQL server to use instead of a SQLite file, e.g. "
        "postgresql+psycopg://postgres@127.0.0.1:5432/postgres; the benchmark creates and "
        f"drops its own database {PG_BENCH_DATABASE!r} there and touches no other",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="also print cProfile's top functions for one sheet GET and one CSV upload",
    )
    parser.add_argument(
        "--results-dir", type=Path, default=ROOT / "bench" / "results", help="where JSON goes"
    )
    args = parser.parse_args(argv)
    positive = [
        args.products,
        args.sheet_requests,
        args.bare_per_request,
        args.upload_lines,
        args.upload_runs,
        args.bad_runs,
    ]
    if min(positive) <= 0 or args.warmup < 0 or not 0 < args.bad_lines <= args.upload_lines:
        parser.error("counts must be > 0, and --bad-lines at most --upload-lines")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    load_average = os.getloadavg()
    # SQLite stores NUMERIC as REAL; the app keeps 3 decimals on purpose (see pyproject.toml).
    warnings.filterwarnings("ignore", message=r"Dialect sqlite\+pysqlite does \*not\* support")
    rng = random.Random(2026)
    profiles: list[str] = []
    results: dict[str, list[Sample]] = {}

    with (
        tempfile.TemporaryDirectory(prefix="shanhai-bench-") as tmp,
        bench_database(args.database_url, Path(tmp)) as url,
    ):
        seed_started = time.monotonic()
        app, catalog, info = build(url, args.products, secrets.token_hex(16))
        seed_seconds = time.monotonic() - seed_started
        database = sa.make_url(url).get_backend_name()
        print(
            f"catalog: {info['bulk_products']} bulk products ({info['price_tiers']} price "
            f"tiers, {info['all_products']} products in all) in {seed_seconds:.1f} s "
            f"({database})",
            flush=True,
        )
        with app.app_context():
            engine = db.engine
        client = app.test_client()
        bare = bare_app.test_client()
        log_in(client)
        check_sheet(client, info["bulk_products"])

        # The sheet, taking turns with the bare page.
        with StatementCounter(engine) as counter:
            for _ in range(args.warmup):
                client.get(SHEET).get_data()
                bare.get("/").get_data()
            sheet, reference = [], []
            for _ in range(args.sheet_requests):
                sheet.append(timed(lambda: client.get(SHEET), counter))
                reference.extend(timed(lambda: bare.get("/")) for _ in range(args.bare_per_request))
            results["bare"], results["sheet"] = reference, sheet
            print(
                f"  sheet   p50 {nearest_rank([s.ms for s in sheet], 50):8.1f} ms  "
                f"bare p50 {nearest_rank([s.ms for s in reference], 50):6.3f} ms",
                flush=True,
            )

            # Valid uploads, CSV and XLSX in turn; each saves a draft.
            uploads: dict[str, list[Sample]] = {"csv": [], "xlsx": []}
            for run in range(args.upload_runs):
                for kind in ("csv", "xlsx"):
                    lines = valid_lines(catalog, args.upload_lines, rng)
                    data = sheet_csv(lines) if kind == "csv" else sheet_xlsx(lines)
                    sample = timed(upload(client, data, f"订货单-{run}.{kind}"), counter)
                    saved = draft_lines(app, sample.location)
                    if sample.status != 303 or saved != args.upload_lines:
                        raise SystemExit(
                            f"{kind} upload: status {sample.status}, {saved} lines saved "
                            f"(expected 303 and {args.upload_lines})"
                        )
                    uploads[kind].append(sample)
                    print(
                        f"  upload  {kind:<5}run {run + 1}  {sample.ms:8.1f} ms  {sample.sql} SQL",
                        flush=True,
                    )
            results["upload_csv"], results["upload_xlsx"] = uploads["csv"], uploads["xlsx"]

            # A sheet with bad lines: refused, every bad line listed, nothing saved.
            bad_samples = []
            for run in range(args.bad_runs):
                lines = with_bad_lines(
                    valid_lines(catalog, args.upload_lines, rng), args.bad_lines, catalog, rng
                )
                data = sheet_csv(lines)
                before = counts(app)
                response_text: list[str] = []

                def post_bad(data=data, response_text=response_text):
                    response = upload(client, data, "有错的订货单.csv")()
                    response_text.append(response.get_data(as_text=True))
                    return response

                sample = timed(post_bad, counter)
                listed = len(UPLOAD_ERROR_ROW.findall(response_text[0]))
                after = counts(app)
                if sample.status != 422 or listed != args.bad_lines or after != before:
                    raise SystemExit(
                        f"bad upload: status {sample.status} (expected 422), {listed} lines "
                        f"listed (expected {args.bad_lines}), orders/lines {before} -> {after}"
                    )
                bad_samples.append(sample)
                print(f"  refused run {run + 1}  {sample.ms:8.1f} ms  422", flush=True)
            results["upload_bad"] = bad_samples

            # The sheet again, now that the buyer has drafts of 500 lines to list.
            orders_listed = min(10, counts(app)[0])
            for _ in range(args.warmup):
                client.get(SHEET).get_data()
            after_sheet, after_bare = [], []
            for _ in range(max(1, args.sheet_requests // 3)):
                after_sheet.append(timed(lambda: client.get(SHEET), counter))
                after_bare.extend(
                    timed(lambda: bare.get("/")) for _ in range(args.bare_per_request)
                )
            results["sheet_after"] = after_sheet
            results["bare"] += after_bare

        if args.profile:
            profiles.append(profile("GET /canteen/sheet", lambda: client.get(SHEET), 30))
            lines = valid_lines(catalog, args.upload_lines, rng)
            profiles.append(
                profile(
                    f"POST {UPLOAD} ({args.upload_lines}-line CSV)",
                    upload(client, sheet_csv(lines), "profile.csv"),
                    30,
                )
            )
        with app.app_context():
            db.session.remove()
            db.engine.dispose()

    stats = {key: summary(samples) for key, samples in results.items()}
    bare_p50 = stats["bare"]["p50_ms"] or 1e-9
    labels = {
        "bare": "bare Flask page (reference)",
        "sheet": f"GET sheet, {info['bulk_products']} products",
        "sheet_after": f"GET sheet, {orders_listed} drafts listed",
        "upload_csv": f"POST {args.upload_lines}-line CSV",
        "upload_xlsx": f"POST {args.upload_lines}-line XLSX",
        "upload_bad": f"POST {args.upload_lines} lines, {args.bad_lines} bad",
    }
    upload_aim_ms = AIM_UPLOAD_S * 1000
    aims = [
        (
            f"sheet p50 < {AIM_SHEET_P50_MS:.0f} ms",
            stats["sheet"]["p50_ms"] < AIM_SHEET_P50_MS,
            f"p50 {stats['sheet']['p50_ms']:.1f} ms",
        ),
        *(
            (
                f"{args.upload_lines}-line {kind.upper()} upload < {AIM_UPLOAD_S:g} s",
                stats[f"upload_{kind}"]["p50_ms"] < upload_aim_ms,
                f"p50 {stats[f'upload_{kind}']['p50_ms'] / 1000:.2f} s, max "
                f"{stats[f'upload_{kind}']['max_ms'] / 1000:.2f} s"
                + (
                    ""
                    if stats[f"upload_{kind}"]["max_ms"] < upload_aim_ms
                    else " (the slowest run missed it)"
                ),
            )
            for kind in ("csv", "xlsx")
        ),
    ]
    elapsed = time.monotonic() - started
    rows = []
    for key, label in labels.items():
        row = {"what": key, "label": label, **stats[key]}
        row["vs_bare"] = round(stats[key]["p50_ms"] / bare_p50, 1)
        rows.append(row)
    report = {
        "benchmark": "canteen",
        **run_facts(load_average),
        "database": database,
        "seed_seconds": round(seed_seconds, 1),
        **info,
        "user": BUYER_EMAIL,
        "measured": "in-process with Flask's test client (server time, no network)",
        "app_config": "development, WTF_CSRF_ENABLED=False",
        "sheet_requests": args.sheet_requests,
        "warmup": args.warmup,
        "bare_per_request": args.bare_per_request,
        "upload_lines": args.upload_lines,
        "upload_runs": args.upload_runs,
        "bad_lines": args.bad_lines,
        "aims": [{"aim": name, "met": ok, "figure": figure} for name, ok, figure in aims],
        "rows": rows,
        "run_seconds": round(elapsed, 1),
    }

    print()
    print(f"command:  {report['command']}")
    print(
        f"machine:  {report['cores']} cores, load average {load_average[0]:.2f} at start, "
        f"{report['platform']}, Python {report['python']}"
    )
    print(
        f"data:     {info['bulk_products']} bulk products, {info['price_tiers']} price tiers "
        f"on {database}; logged in as {BUYER_EMAIL}"
    )
    print(
        "measured: in-process, Flask test client, time.perf_counter around each request "
        "(body read); app config 'development' with WTF_CSRF_ENABLED=False (the test client "
        "sends no CSRF token)"
    )
    print()
    head = (
        f"{'what':<32}{'runs':>5}{'p50 ms':>10}{'p90 ms':>10}{'max ms':>10}{'x bare':>9}"
        f"{'SQL':>7}{'KB':>8}"
    )
    print(head)
    print("-" * len(head))
    for row in rows:
        sql = row["sql"] if isinstance(row["sql"], int) else "/".join(map(str, row["sql"]))
        sql = "-" if row["what"] == "bare" else sql
        print(
            f"{row['label']:<32}{row['runs']:>5}{row['p50_ms']:>10.2f}{row['p90_ms']:>10.2f}"
            f"{row['max_ms']:>10.2f}{row['vs_bare']:>9.0f}{sql:>7}{row['kb']:>8.1f}"
        )
    print()
    print(
        f"ratio:    sheet p50 / bare p50 = {stats['sheet']['p50_ms']:.2f} / "
        f"{stats['bare']['p50_ms']:.3f} ms = {stats['sheet']['p50_ms'] / bare_p50:.0f}"
    )
    print("x bare: p50 as a multiple of the bare page's p50, measured in turn in this process.")
    print("SQL: statements per request (BEGIN not counted). KB: response body.")
    for name, ok, figure in aims:
        print(f"aim:      {name}: {'met' if ok else 'NOT met'} ({figure})")
    for text in profiles:
        print()
        print(text.rstrip())

    args.results_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = args.results_dir / f"canteen-{database}-{stamp}.json"
    out.write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n")
    print(f"written:  {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}")
    print(f"run time: {elapsed:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
