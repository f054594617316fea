"""Made-up ledger entries in bulk, for measuring pledge pages at a realistic size.

`flask bench-data --entries 1000000` and bench/pledges.py call `fill_ledger`: it brings the
number of bench entries (dedupe key "bench:<n>") up to the number asked for, spread the way the
real ledger is: every buying organization of the demo data, both regions, the demo suppliers,
products and categories, the four channels (each unit through the channels it buys by), days
over the last `years` years up to today, amounts from 10 to 5,000 yuan and about one in a
hundred negative (refunds, credit notes, reversed imports); some offline sales name a supplier
and product that are not in the catalog, as imports do.

Entries are inserted as plain rows in chunks (no ORM objects), and after each chunk one
INSERT ... SELECT ... GROUP BY adds the chunk's sums onto LedgerMonth, so the roll-up stays
equal to the ledger (`ledger.check_rollup`) at every commit. Entry n is the same whatever runs
came before it (each block of entries has its own seeded generator), so filling to 100,000 and
topping up to 1,000,000 gives the same ledger as filling to 1,000,000 at once, on the same day.

This writes to the ledger directly instead of through app.services.ledger: it is test data,
and a million one-by-one appends would take hours. Never run it on a real database (the CLI
refuses under the production config).
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as time_of_day

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, aliased

from app.models import (
    Channel,
    LedgerEntry,
    LedgerMonth,
    LedgerSource,
    Organization,
    OrgKind,
    Product,
    ProductStatus,
    Region,
)

DEDUPE_PREFIX = "bench:"
#: Entries made by one seeded generator: entry n is the same however the ledger was filled.
BLOCK = 10_000
#: Entries per transaction (insert, then roll-up).
CHUNK = 50_000
MIN_AMOUNT_FEN = 10 * 100
MAX_AMOUNT_FEN = 5_000 * 100
NEGATIVE_SHARE = 0.01

#: Which channels each kind of buying organization buys through, and how often.
CHANNELS_BY_KIND = {
    OrgKind.CANTEEN: [(Channel.CANTEEN_BULK, 85), (Channel.OFFLINE, 15)],
    OrgKind.COUNTER: [(Channel.OFFLINE, 70), (Channel.STAFF_RETAIL, 30)],
    OrgKind.DEPARTMENT: [(Channel.STAFF_RETAIL, 55), (Channel.UNION, 30), (Channel.OFFLINE, 15)],
    OrgKind.CENTER: [(Channel.STAFF_RETAIL, 55), (Channel.UNION, 30), (Channel.OFFLINE, 15)],
}
#: How much of the ledger each kind of unit accounts for, per unit.
WEIGHT_BY_KIND = {OrgKind.CANTEEN: 12, OrgKind.COUNTER: 4, OrgKind.DEPARTMENT: 2, OrgKind.CENTER: 2}
SOURCES = {
    Channel.CANTEEN_BULK: (LedgerSource.BULK_LINE, LedgerSource.CREDIT_NOTE),
    Channel.STAFF_RETAIL: (LedgerSource.RETAIL_LINE, LedgerSource.RETAIL_REFUND),
    Channel.UNION: (LedgerSource.IMPORT, LedgerSource.IMPORT_REVERSAL),
    Channel.OFFLINE: (LedgerSource.IMPORT, LedgerSource.IMPORT_REVERSAL),
}
#: Offline sales that name a seller outside the catalog: (supplier, product, region code).
NAMED_ONLY = [
    ("达州市通川区农户直供", "农家土鸡蛋", "dazhou"),
    ("宣汉县农户直供", "宣汉老腊肉", "dazhou"),
    ("万源市旧院镇合作社", "旧院黑鸡", "dazhou"),
    ("舟山市定海区渔民直供", "东海小黄鱼", "zhoushan"),
    ("嵊泗县贻贝养殖户", "嵊泗贻贝干", "zhoushan"),
]
#: Share of offline and union sales that name such a seller.
NAMED_ONLY_SHARE = 0.1


class MissingDemoData(Exception):
    """The database lacks the demo units, regions or products the entries are spread over."""


@dataclass(frozen=True)
class _Buyer:
    id: int
    channels: list[Channel]
    channel_weights: list[int]


@dataclass(frozen=True)
class _Item:
    supplier_id: int | None
    supplier_name: str
    product_id: int | None
    product_name: str
    region_id: int
    category_id: int | None


@dataclass(frozen=True)
class World:
    buyers: list[_Buyer]
    buyer_weights: list[int]
    items: list[_Item]
    named_only: list[_Item]


@dataclass
class FillReport:
    before: int
    added: int
    after: int
    seconds: float


def demo_world(session: Session) -> World:
    """The units, products and suppliers of the demo data (`flask seed-demo`)."""
    buyers, weights = [], []
    rows = session.execute(
        sa.select(Organization.id, Organization.kind)
        .where(Organization.kind.in_(list(CHANNELS_BY_KIND)), Organization.active.is_(True))
        .order_by(Organization.id)
    )
    for org_id, kind in rows:
        channels, channel_weights = zip(*CHANNELS_BY_KIND[kind], strict=True)
        buyers.append(_Buyer(org_id, list(channels), list(channel_weights)))
        weights.append(WEIGHT_BY_KIND[kind])
    supplier = aliased(Organization)
    items = [
        _Item(s_id, s_name, p_id, p_name, region_id, category_id)
        for p_id, p_name, s_id, s_name, region_id, category_id in session.execute(
            sa.select(
                Product.id,
                Product.name_zh,
                supplier.id,
                supplier.name_zh,
                Product.origin_region_id,
                Product.category_id,
            )
            .join(supplier, Product.supplier_id == supplier.id)
            .where(Product.status == ProductStatus.ACTIVE)
            .order_by(Product.id)
        )
    ]
    regions = dict(session.execute(sa.select(Region.code, Region.id)).all())
    has_canteen = any(
        kind == OrgKind.CANTEEN
        for kind in session.scalars(sa.select(Organization.kind).where(Organization.active))
    )
    if not has_canteen or not items or not {"dazhou", "zhoushan"} <= set(regions):
        raise MissingDemoData(
            "The demo data is missing (a canteen, the regions dazhou and zhoushan, active "
            "products): run `flask seed-demo` first."
        )
    named_only = [
        _Item(None, supplier_name, None, product_name, regions[region], None)
        for supplier_name, product_name, region in NAMED_ONLY
    ]
    return World(buyers, weights, items, named_only)


def bench_entry_count(session: Session) -> int:
    return session.scalar(
        sa.select(sa.func.count())
        .select_from(LedgerEntry)
        .where(LedgerEntry.dedupe_key.startswith(DEDUPE_PREFIX))
    )


def _block_rows(
    world: World, seed: int, block: int, first_day: date, days: int, now: datetime
) -> list[dict]:
    """Entries block*BLOCK+1 .. (block+1)*BLOCK, always the same for the same arguments."""
    rng = random.Random(seed * 1_000_003 + block)
    low, high = math.log(MIN_AMOUNT_FEN), math.log(MAX_AMOUNT_FEN)
    buyers = rng.choices(world.buyers, world.buyer_weights, k=BLOCK)
    rows = []
    for i, buyer in enumerate(buyers):
        n = block * BLOCK + i + 1
        (channel,) = rng.choices(buyer.channels, buyer.channel_weights)
        if channel in (Channel.OFFLINE, Channel.UNION) and rng.random() < NAMED_ONLY_SHARE:
            item = rng.choice(world.named_only)
        else:
            item = rng.choice(world.items)
        day = first_day + timedelta(days=rng.randrange(days))
        # Log-uniform: many small sales, fewer large deliveries; to the 10 fen.
        amount = round(math.exp(rng.uniform(low, high)) / 10) * 10
        negative = rng.random() < NEGATIVE_SHARE
        source = SOURCES[channel][1 if negative else 0]
        rows.append(
            {
                "occurred_on": day,
                "recorded_at": now,
                "buyer_organization_id": buyer.id,
                "origin_region_id": item.region_id,
                "supplier_id": item.supplier_id,
                "supplier_name": item.supplier_name,
                "product_id": item.product_id,
                "product_name": item.product_name,
                "category_id": item.category_id,
                "channel": channel,
                "amount_fen": -amount if negative else amount,
                "source": source,
                "source_reference": f"BENCH-{n:07d}",
                "dedupe_key": f"{DEDUPE_PREFIX}{n}",
                "reason": "",
            }
        )
    return rows


def _month_expression(dialect: str):
    if dialect == "postgresql":
        return sa.cast(
            sa.func.date_trunc(sa.literal_column("'month'"), LedgerEntry.occurred_on), sa.Date
        )
    return sa.func.date(LedgerEntry.occurred_on, sa.literal_column("'start of month'"))


def _key_expression(prefix: str, id_column, name_column):
    """ledger.supplier_key / product_key in SQL: "s<id>", or "n<name>" cut to 140."""
    return sa.case(
        (
            id_column.is_not(None),
            sa.literal_column(f"'{prefix}'", sa.String) + sa.cast(id_column, sa.String),
        ),
        else_=sa.func.substr(sa.literal_column("'n'", sa.String) + name_column, 1, 140),
    )


def roll_up(session: Session, first_id: int, last_id: int) -> None:
    """Add the bench entries with ids in [first_id, last_id] onto LedgerMonth, in one statement.

    Grouped like LedgerMonth's unique key; an existing group gets the sums added.
    """
    dialect = session.get_bind().dialect.name
    month = _month_expression(dialect)
    supplier_key = _key_expression("s", LedgerEntry.supplier_id, LedgerEntry.supplier_name)
    product_key = _key_expression("p", LedgerEntry.product_id, LedgerEntry.product_name)
    select = (
        sa.select(
            month,
            LedgerEntry.buyer_organization_id,
            LedgerEntry.origin_region_id,
            LedgerEntry.channel,
            supplier_key,
            sa.func.max(LedgerEntry.supplier_name),
            product_key,
            sa.func.max(LedgerEntry.product_name),
            sa.func.max(LedgerEntry.category_id),
            sa.func.sum(LedgerEntry.amount_fen),
            sa.func.count(),
        )
        .where(
            LedgerEntry.id.between(first_id, last_id),
            LedgerEntry.dedupe_key.startswith(DEDUPE_PREFIX),
        )
        .group_by(
            month,
            LedgerEntry.buyer_organization_id,
            LedgerEntry.origin_region_id,
            LedgerEntry.channel,
            supplier_key,
            product_key,
        )
    )
    insert = (postgresql if dialect == "postgresql" else sqlite).insert(LedgerMonth)
    statement = insert.from_select(
        [
            "month",
            "buyer_organization_id",
            "origin_region_id",
            "channel",
            "supplier_key",
            "supplier_name",
            "product_key",
            "product_name",
            "category_id",
            "amount_fen",
            "entries",
        ],
        select,
    ).on_conflict_do_update(
        index_elements=[
            "month",
            "buyer_organization_id",
            "origin_region_id",
            "channel",
            "supplier_key",
            "product_key",
        ],
        set_={
            "amount_fen": LedgerMonth.amount_fen + insert.excluded.amount_fen,
            "entries": LedgerMonth.entries + insert.excluded.entries,
        },
    )
    session.execute(statement)


def fill_ledger(
    session: Session,
    entries: int,
    *,
    today: date,
    now: datetime | None = None,
    years: int = 2,
    seed: int = 2026,
    progress: Callable[[int], None] | None = None,
) -> FillReport:
    """Bring the bench entries up to `entries` (adds nothing when there are that many), with
    the roll-up; commits after each chunk. `progress(n)` is told of each n entries added."""
    started = time.perf_counter()
    world = demo_world(session)
    before = bench_entry_count(session)
    days = 365 * years + 1
    first_day = today - timedelta(days=days - 1)
    now = now or datetime.combine(today, time_of_day(2, 0), tzinfo=UTC)
    # Core inserts of plain rows: the table, not the ORM's unit of work.
    table = LedgerEntry.__table__
    n = before
    while n < entries:
        chunk_end = min(entries, n + CHUNK)
        first_id = (session.scalar(sa.select(sa.func.max(LedgerEntry.id))) or 0) + 1
        while n < chunk_end:
            block = n // BLOCK
            rows = _block_rows(world, seed, block, first_day, days, now)
            start = n - block * BLOCK
            stop = min(BLOCK, chunk_end - block * BLOCK)
            session.execute(table.insert(), rows[start:stop])
            if progress:
                progress(stop - start)
            n = block * BLOCK + stop
        last_id = session.scalar(sa.select(sa.func.max(LedgerEntry.id)))
        roll_up(session, first_id, last_id)
        session.commit()
    return FillReport(
        before=before,
        added=max(0, entries - before),
        after=max(before, entries),
        seconds=time.perf_counter() - started,
    )


def tidy(engine: sa.Engine) -> None:
    """After a bulk fill on PostgreSQL: VACUUM (ANALYZE) the ledger's tables.

    Each chunk's roll-up rewrites most roll-up rows (an update leaves the old row version
    behind), so right after a fill ledger_months is several times its size until autovacuum
    comes round, and the planner has no statistics for the new rows. A real ledger grows an
    entry at a time and autovacuum keeps up; this brings the bench database to that state at
    once. Nothing to do on SQLite (the app never runs ANALYZE there either).
    """
    if engine.dialect.name != "postgresql":
        return
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.exec_driver_sql("VACUUM (ANALYZE) ledger_months, ledger_entries")
