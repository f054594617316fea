"""Pledge benchmark: a pledge's figures (progress, pace, monthly series, top-10 breakdowns) and
its page, over a ledger of 100,000 and of 1,000,000 entries, timed in-process.

Builds a fresh database (a SQLite file, or its own PostgreSQL database `shanhai_bench_pledges`)
from the migrations with the demo data and three pledges for the current year: the canteen's
530,000-yuan plan with Dazhou, the whole administration's (every unit, both regions) and the
canteen's reserved share (15 % of declared spending, canteen bulk and offline). It fills the
ledger to the first size (`--sizes`) with `app.services.bench_data.fill_ledger`, what
`flask bench-data` runs; copies that database (a second SQLite file, or
`shanhai_bench_pledges_large` made from it as a template) and tops the copy up to the second
size. Then it times, with time.perf_counter, on both databases in turn, run by run:

* `get_pledge` + `pledges.progress(session, pledge, today)` for each pledge, in a new session
  each run: everything the pledge page needs from the database;
* GET /pledges/<id> through Flask's test client, logged in as the demo coordinator, each
  followed by a bare Flask page (bench/bare_app.py) in the same process.

Taking turns, a burst of other work on the machine falls on both sizes alike, so the growth
ratio holds even when the milliseconds do not. The aims (from the issue): the figures' median
under 50 ms on SQLite and PostgreSQL at both sizes, growing no more than 2x from the first size
to the second. The script prints its figures, the command and the aims, writes JSON to
bench/results/, and exits 0 whether or not the aims are met; it exits 1 only when a page is not
what it should be (or the roll-up differs from the ledger).

    .venv/bin/python bench/pledges.py
    .venv/bin/python bench/pledges.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres
    .venv/bin/python bench/pledges.py --sizes 10000 100000 --profile
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import gc
import io
import json
import math
import os
import pstats
import secrets
import sqlite3
import sys
import tempfile
import time
import warnings
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Run as `python bench/pledges.py`, the script's own folder is on sys.path, not the project.
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402
from bare_app import app as bare_app  # noqa: E402  (bench/ is on sys.path when run as a script)
from flask_migrate import upgrade  # noqa: E402
from serving import run_facts  # noqa: E402

from app import create_app  # noqa: E402
from app.extensions import db  # noqa: E402
from app.models import Channel, LedgerEntry, LedgerMonth, Organization, PledgeKind, Region  # noqa: E402
from app.services import accounts, bench_data, demo, ledger, pledges  # noqa: E402
from app.services.clock import local_date, utcnow  # noqa: E402

PASSWORD = "bench-password"
COORDINATOR_EMAIL = f"coordinator@{demo.DEMO_EMAIL_DOMAIN}"
COORDINATOR_NAME = next(name for local, name, _, _ in demo.DEMO_ACCOUNTS if local == "coordinator")
PG_BENCH_DATABASE = "shanhai_bench_pledges"

AIM_P50_MS = 50.0
AIM_GROWTH = 2.0


# --------------------------------------------------------------------------------------------
# Database


@contextlib.contextmanager
def bench_databases(database_url: str | None, workdir: Path):
    """(URL of a fresh database, URL its copy will have): SQLite files in workdir, or our own two
    databases on a PostgreSQL server, dropped afterwards."""
    if not database_url:
        yield f"sqlite:///{workdir / 'small.sqlite3'}", f"sqlite:///{workdir / 'large.sqlite3'}"
        return
    server = sa.make_url(database_url)
    if not server.drivername.startswith("postgresql"):
        raise SystemExit("--database-url: only PostgreSQL URLs are supported (SQLite is default)")
    # Whatever database the URL names, we only ever create and drop our own.
    admin_url = server.set(database="postgres")
    names = (PG_BENCH_DATABASE, f"{PG_BENCH_DATABASE}_large")
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")

    def drop_all(conn) -> None:
        for name in names:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    try:
        with admin.connect() as conn:
            drop_all(conn)  # left over by an interrupted run
            conn.execute(sa.text(f'CREATE DATABASE "{names[0]}"'))
    except sa.exc.OperationalError as error:
        raise SystemExit(f"PostgreSQL at {admin_url} cannot be reached: {error}") from None
    try:
        yield tuple(
            server.set(database=name).render_as_string(hide_password=False) for name in names
        )
    finally:
        with admin.connect() as conn:
            drop_all(conn)
        admin.dispose()


def copy_database(app, source_url: str, target_url: str) -> None:
    """The whole database, as it is, under the second URL."""
    with app.app_context():
        db.session.remove()
        db.engine.dispose()  # PostgreSQL copies a template only while nobody is connected
    source, target = sa.make_url(source_url), sa.make_url(target_url)
    if source.get_backend_name() == "sqlite":
        with sqlite3.connect(source.database) as src, sqlite3.connect(target.database) as dst:
            src.backup(dst)
        return
    admin = sa.create_engine(source.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{target.database}" TEMPLATE "{source.database}"'))
    admin.dispose()


def make_app(url: str, secret_key: str):
    return create_app(
        "development",
        SQLALCHEMY_DATABASE_URI=url,
        SECRET_KEY=secret_key,
        LOGIN_RATE_LIMIT="1000 per minute",
        WTF_CSRF_ENABLED=False,  # the test client sends no token; the check costs microseconds
    )


def build(url: str, secret_key: str, today: date):
    """Schema, demo data and the three pledges; returns the app and {label: pledge id}."""
    app = make_app(url, secret_key)
    with app.app_context():
        upgrade()
        demo.seed_demo(db.session, password=PASSWORD, now=utcnow())
        db.session.commit()
        session = db.session
        coordinator = accounts.find_user_by_email(session, COORDINATOR_EMAIL)
        orgs = {o.code: o for o in session.scalars(sa.select(Organization))}
        regions = {r.code: r for r in session.scalars(sa.select(Region))}
        start, end = date(today.year, 1, 1), date(today.year, 12, 31)
        plans = {
            "canteen 530k Dazhou": pledges.PledgeData(
                name=f"{today.year}年机关食堂达州农产品采购计划（53万元）",
                kind=PledgeKind.FIXED,
                period_start=start,
                period_end=end,
                organization_ids=[orgs["CANTEEN"].id],
                region_ids=[regions["dazhou"].id],
                target_fen=53_000_000,
            ),
            "whole administration": pledges.PledgeData(
                name=f"{today.year}年市级机关消费帮扶（全部单位）",
                kind=PledgeKind.FIXED,
                period_start=start,
                period_end=end,
                all_organizations=True,
                region_ids=[regions["dazhou"].id, regions["zhoushan"].id],
                target_fen=5_000_000_000,
            ),
            "canteen share 15%": pledges.PledgeData(
                name=f"{today.year}年机关食堂预留份额（15%）",
                kind=PledgeKind.SHARE,
                period_start=start,
                period_end=end,
                organization_ids=[orgs["CANTEEN"].id],
                region_ids=[regions["dazhou"].id],
                channels=[Channel.CANTEEN_BULK, Channel.OFFLINE],
                declared_spending_fen=320_000_000,
                share_percent=Decimal(15),
            ),
        }
        ids = {
            label: pledges.create_pledge(session, coordinator, utcnow(), data).id
            for label, data in plans.items()
        }
        session.commit()
    return app, ids


def fill(app, entries: int, today: date) -> dict:
    """The ledger topped up to `entries` bench entries; how long it took and what it holds."""
    with app.app_context():
        shown = [0]
        step = max(1, entries // 10)

        def progress(n: int) -> None:
            shown[0] += n
            if shown[0] % step < n:
                print(f"    {shown[0]:>10,} entries added", flush=True)

        report = bench_data.fill_ledger(db.session, entries, today=today, progress=progress)
        started = time.perf_counter()
        problems = ledger.check_rollup(db.session)
        check_seconds = time.perf_counter() - started
        info = {
            "entries": db.session.scalar(sa.select(sa.func.count(LedgerEntry.id))),
            "ledger_months": db.session.scalar(sa.select(sa.func.count(LedgerMonth.id))),
            "added": report.added,
            "fill_seconds": round(report.seconds, 1),
            "rollup_check_seconds": round(check_seconds, 1),
            "rollup_problems": len(problems),
        }
        db.session.remove()
        started = time.perf_counter()
        bench_data.tidy(db.engine)  # PostgreSQL: VACUUM (ANALYZE), as autovacuum soon would
        info["tidy_seconds"] = round(time.perf_counter() - started, 1)
    return info


# --------------------------------------------------------------------------------------------
# Timing


class StatementCounter:
    """SQL statements sent while counting (BEGIN left out: app.web.sqlite sends it itself on
    SQLite only, so the figures compare across backends)."""

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


def nearest_rank(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    return ordered[max(0, math.ceil(pct / 100 * len(ordered)) - 1)]


def summary(ms: list[float], sql: int | None = None) -> dict:
    return {
        "runs": len(ms),
        "p50_ms": round(nearest_rank(ms, 50), 2),
        "p90_ms": round(nearest_rank(ms, 90), 2),
        "max_ms": round(max(ms), 2),
        "mean_ms": round(sum(ms) / len(ms), 2),
        "sql": sql,
        "all_ms": [round(x, 2) for x in ms],
    }


def figures_once(app, counter: StatementCounter, pledge_id: int, today: date):
    """get_pledge + progress in a new session: (ms, SQL statements, the figures)."""
    with app.app_context():
        db.session.remove()
        counter.count = 0
        started = time.perf_counter()
        pledge = pledges.get_pledge(db.session, pledge_id)
        figures = pledges.progress(db.session, pledge, today)
        elapsed = (time.perf_counter() - started) * 1000
        db.session.remove()
    return elapsed, counter.count, figures


def page_once(client, counter: StatementCounter, pledge_id: int, met_fen: int):
    """GET /pledges/<id>, checked (200, and the met figure on it): (ms, SQL, KB)."""
    path = f"/pledges/{pledge_id}"
    counter.count = 0
    started = time.perf_counter()
    response = client.get(path)
    body = response.get_data(as_text=True)  # the whole body, inside the timed span
    elapsed = (time.perf_counter() - started) * 1000
    if response.status_code != 200 or f'data-fen="{met_fen}"' not in body:
        raise SystemExit(
            f"GET {path}: status {response.status_code}, or the met figure {met_fen} is not on it"
        )
    return elapsed, counter.count, len(body.encode()) / 1024


def log_in(client) -> None:
    response = client.post(
        "/auth/login",
        data={"email": COORDINATOR_EMAIL, "password": PASSWORD},
        follow_redirects=True,  # the welcome flash is shown once and leaves the session
    )
    if response.status_code != 200 or COORDINATOR_NAME not in response.get_data(as_text=True):
        raise SystemExit(f"logging in as {COORDINATOR_EMAIL} failed ({response.status_code})")


def profile(app, pledge_id: int, today: date, top: int) -> str:
    with app.app_context():
        pledge = pledges.get_pledge(db.session, pledge_id)
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(5):
            pledges.progress(db.session, pledge, today)
        profiler.disable()
        db.session.remove()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).strip_dirs().sort_stats("cumulative").print_stats(top)
    return f"--- cProfile: 5 x progress(pledge {pledge_id}) (by cumulative, top {top}) ---\n" + (
        out.getvalue()
    )


def explain_slowest(app, pledge_id: int, today: date) -> list[str]:
    """The slowest SQL statement of one progress() call, with its plan (PostgreSQL: EXPLAIN
    ANALYZE; SQLite: EXPLAIN QUERY PLAN)."""
    captured: list[tuple[float, str, object]] = []

    def before(conn, _cursor, _statement, _parameters, _context, _many) -> None:
        conn.info["bench_started"] = time.perf_counter()

    def after(conn, _cursor, statement, parameters, _context, _many) -> None:
        elapsed = time.perf_counter() - conn.info.pop("bench_started", time.perf_counter())
        captured.append((elapsed * 1000, statement, parameters))

    with app.app_context():
        engine = db.engine
        pledge = pledges.get_pledge(db.session, pledge_id)
        sa.event.listen(engine, "before_cursor_execute", before)
        sa.event.listen(engine, "after_cursor_execute", after)
        try:
            pledges.progress(db.session, pledge, today)
        finally:
            sa.event.remove(engine, "before_cursor_execute", before)
            sa.event.remove(engine, "after_cursor_execute", after)
        db.session.remove()
        ms, statement, parameters = max(captured, key=lambda item: item[0])
        postgres = engine.dialect.name == "postgresql"
        prefix = "EXPLAIN ANALYZE " if postgres else "EXPLAIN QUERY PLAN "
        with engine.connect() as conn:
            plan = conn.exec_driver_sql(prefix + statement, parameters).all()
    lines = [f"slowest of {len(captured)} statements: {ms:.1f} ms", " ".join(statement.split())]
    return lines + ["  " + " | ".join(str(v) for v in row) for row in plan]


# --------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="Figures are reported, never enforced: the exit status ignores the aims.",
    )
    parser.add_argument(
        "--sizes",
        type=int,
        nargs=2,
        default=[100_000, 1_000_000],
        metavar=("SMALL", "LARGE"),
        help="ledger entries at the first and the second measurement [100000 1000000]",
    )
    parser.add_argument("--runs", type=int, default=30, help="timed runs of each figure [30]")
    parser.add_argument("--warmup", type=int, default=3, help="untimed runs first [3]")
    parser.add_argument(
        "--bare-per-request",
        type=int,
        default=3,
        help="bare-page requests timed after each pledge page request [3]",
    )
    parser.add_argument(
        "--database-url",
        help="a PostgreSQL server to use instead of a SQLite file, e.g. "
        "postgresql+psycopg://postgres@127.0.0.1:5432/postgres; the benchmark creates and "
        f"drops its own database {PG_BENCH_DATABASE!r} there and touches no other",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="also print cProfile of progress() and the main query's plan at each size",
    )
    parser.add_argument(
        "--results-dir", type=Path, default=ROOT / "bench" / "results", help="where JSON goes"
    )
    args = parser.parse_args(argv)
    if not 0 < args.sizes[0] < args.sizes[1] or args.runs <= 0 or args.warmup < 0:
        parser.error("--sizes must be two growing positive counts; --runs > 0, --warmup >= 0")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    load_average = os.getloadavg()
    warnings.filterwarnings("ignore", message=r"Dialect sqlite\+pysqlite does \*not\* support")
    today = local_date(utcnow())
    small, large = args.sizes
    secret_key = secrets.token_hex(16)
    profiles: list[str] = []
    infos: dict[int, dict] = {}

    with (
        tempfile.TemporaryDirectory(prefix="shanhai-bench-") as tmp,
        bench_databases(args.database_url, Path(tmp)) as (small_url, large_url),
    ):
        database = sa.make_url(small_url).get_backend_name()
        app_small, pledge_ids = build(small_url, secret_key, today)
        print(f"database: {database}; pledges {pledge_ids}; today {today}", flush=True)
        apps = {small: app_small}
        for size in args.sizes:
            if size == large:
                print(f"  copying the {small:,}-entry database", flush=True)
                copy_database(app_small, small_url, large_url)
                apps[large] = make_app(large_url, secret_key)
            print(f"  filling the ledger to {size:,} bench entries", flush=True)
            info = infos[size] = fill(apps[size], size, today)
            print(
                f"  {info['entries']:,} entries, {info['ledger_months']:,} roll-up rows; "
                f"{info['added']:,} added in {info['fill_seconds']} s; roll-up check "
                f"{'OK' if not info['rollup_problems'] else 'FAILED'} "
                f"({info['rollup_check_seconds']} s)",
                flush=True,
            )
            if info["rollup_problems"]:
                raise SystemExit("the roll-up differs from the ledger: the figures mean nothing")
        # As wsgi.py does once the app is built: start-up objects out of the collector's way.
        gc.collect()
        gc.freeze()

        clients = {size: app.test_client() for size, app in apps.items()}
        for client in clients.values():
            log_in(client)
        bare = bare_app.test_client()
        engines = {}
        for size, app in apps.items():
            with app.app_context():
                engines[size] = db.engine
        counters = {size: StatementCounter(engine) for size, engine in engines.items()}
        samples = {
            (label, what, size): []
            for label in pledge_ids
            for what in ("figures", "page")
            for size in args.sizes
        }
        sql: dict = {}
        kb: dict = {}
        bare_ms: list[float] = []
        with contextlib.ExitStack() as stack:
            for counter in counters.values():
                stack.enter_context(counter)
            for label, pledge_id in pledge_ids.items():
                for run in range(args.warmup + args.runs):
                    for size in args.sizes:
                        ms, statements, figures = figures_once(
                            apps[size], counters[size], pledge_id, today
                        )
                        page_ms, page_sql, page_kb = page_once(
                            clients[size], counters[size], pledge_id, figures.met_fen
                        )
                        if run < args.warmup:
                            continue
                        samples[(label, "figures", size)].append(ms)
                        samples[(label, "page", size)].append(page_ms)
                        sql[(label, "figures", size)] = statements
                        sql[(label, "page", size)] = page_sql
                        kb[(label, size)] = round(page_kb, 1)
                        for _ in range(args.bare_per_request):
                            t0 = time.perf_counter()
                            bare.get("/").get_data()
                            bare_ms.append((time.perf_counter() - t0) * 1000)
                print(
                    f"    {label:<22}"
                    + "  ".join(
                        f"{size // 1000}k: figures p50 "
                        f"{nearest_rank(samples[(label, 'figures', size)], 50):6.2f} ms, "
                        f"page {nearest_rank(samples[(label, 'page', size)], 50):6.2f} ms"
                        for size in args.sizes
                    ),
                    flush=True,
                )
        if args.profile:
            whole = pledge_ids["whole administration"]
            for size in args.sizes:
                profiles.append(
                    f"=== {size:,} entries ===\n" + profile(apps[size], whole, today, 25)
                )
                profiles.append("\n".join(explain_slowest(apps[size], whole, today)))
        for app in apps.values():
            with app.app_context():
                db.session.remove()
                db.engine.dispose()

    bare_summary = summary(bare_ms)
    bare_p50 = bare_summary["p50_ms"] or 1e-9
    rows = []
    unmet = []
    for label in pledge_ids:
        for what in ("figures", "page"):
            a = summary(samples[(label, what, small)], sql[(label, what, small)])
            b = summary(samples[(label, what, large)], sql[(label, what, large)])
            growth = b["p50_ms"] / a["p50_ms"] if a["p50_ms"] else 0.0
            row = {
                "pledge": label,
                "what": what,
                "small": {k: v for k, v in a.items() if k != "all_ms"},
                "large": {k: v for k, v in b.items() if k != "all_ms"},
                "growth": round(growth, 2),
                "large_vs_bare": round(b["p50_ms"] / bare_p50, 1),
                "all_ms": {"small": a["all_ms"], "large": b["all_ms"]},
            }
            if what == "page":
                row["kb"] = kb[(label, large)]
            if what == "figures":
                checks = {
                    f"p50 < {AIM_P50_MS:.0f} ms at {small:,}": a["p50_ms"] < AIM_P50_MS,
                    f"p50 < {AIM_P50_MS:.0f} ms at {large:,}": b["p50_ms"] < AIM_P50_MS,
                    f"growth <= {AIM_GROWTH:g}x": growth <= AIM_GROWTH,
                }
                row["aims"] = [{"aim": k, "met": ok} for k, ok in checks.items()]
                unmet += [f"{label}: {k}" for k, ok in checks.items() if not ok]
            rows.append(row)

    elapsed = time.monotonic() - started
    report = {
        "benchmark": "pledges",
        **run_facts(load_average),
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        "database": database,
        "today": today.isoformat(),
        "runs": args.runs,
        "warmup": args.warmup,
        "user": COORDINATOR_EMAIL,
        "aims": {"p50_ms": AIM_P50_MS, "growth": AIM_GROWTH},
        "sizes": {str(size): info for size, info in infos.items()},
        "bare": {k: v for k, v in bare_summary.items() if k != "all_ms"},
        "rows": rows,
        "run_seconds": round(elapsed, 1),
    }

    print()
    print(f"command:  {report['command']}")
    print(
        f"machine:  {report['cores']} cores, load average {load_average[0]:.2f} at start and "
        f"{report['load_average_at_end'][0]:.2f} at the end, {report['platform']}, "
        f"Python {report['python']}"
    )
    for size, info in infos.items():
        print(
            f"ledger:   {size:>9,} entries, {info['ledger_months']:,} roll-up rows; "
            f"filled in {info['fill_seconds']} s (+{info['added']:,}, bench_data.fill_ledger)"
        )
    print(
        f"timing:   {args.runs} runs after {args.warmup} warm-up, both sizes in turn, "
        f"in-process on {database}; figures: get_pledge + progress in a new session; page: "
        f"GET /pledges/<id> as {COORDINATOR_EMAIL}; bare Flask page p50 "
        f"{bare_summary['p50_ms']:.3f} ms"
    )
    print()
    head = (
        f"{'pledge':<22}{'what':<9}"
        f"{'p50 ' + f'{small // 1000}k':>10}{'p90':>8}{'max':>8}"
        f"{'p50 ' + f'{large // 1000}k':>10}{'p90':>8}{'max':>8}"
        f"{'growth':>8}{'SQL':>5}{'x bare':>8}"
    )
    print(head)
    print("-" * len(head))
    for row in rows:
        a, b = row["small"], row["large"]
        print(
            f"{row['pledge']:<22}{row['what']:<9}"
            f"{a['p50_ms']:>10.2f}{a['p90_ms']:>8.2f}{a['max_ms']:>8.2f}"
            f"{b['p50_ms']:>10.2f}{b['p90_ms']:>8.2f}{b['max_ms']:>8.2f}"
            f"{row['growth']:>7.2f}x{b['sql']:>5}"
            + (f"{row['large_vs_bare']:>8.1f}" if row["what"] == "page" else f"{'-':>8}")
        )
    print()
    print("milliseconds; growth = p50 at the large size / p50 at the small one; SQL statements")
    print("per run; x bare = page p50 at the large size / the bare Flask page's p50.")
    print(
        f"aims:     figures p50 < {AIM_P50_MS:.0f} ms at both sizes, growth <= "
        f"{AIM_GROWTH:g}x: " + ("met" if not unmet else "NOT met (" + "; ".join(unmet) + ")")
    )
    for text in profiles:
        print()
        print(text)

    args.results_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = args.results_dir / f"pledges-{database}-{stamp}.json"
    out.write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n")
    print(f"written:  {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}")
    print(f"run time: {elapsed:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
