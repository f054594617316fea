"""The procurement ledger: the one place that writes what counts toward pledges.

Every event that makes money count appends entries here, in the caller's transaction:

- a staff order when it is paid: one entry per line (`retail_paid`);
- a staff refund: one negative entry per refunded line, or the refunded amount spread over the
  lines not refunded yet when Stripe reports a refund made elsewhere, no line below zero
  (`retail_refunded`);
- a canteen delivery at goods-in: one entry per line, received quantity x frozen price
  (`bulk_received`); a credit note: its negative lines (`bulk_credited`);
- an imported sale, and its reversal (app.services.sales_import);
- a coordinator's re-attribution: the same amounts negative for the old unit and positive for
  the new one, with the reason (`reattribute`); the order's later entries (refunds, credit
  notes, deliveries signed off afterwards) go to the new unit too.

Each entry has a dedupe key naming the event it records ("retail-paid:line:42"), unique in the
table: the same event recorded twice (a replayed webhook, a retried request) adds nothing the
second time. Entries are never updated or deleted. Alongside each entry the month's group in
LedgerMonth is incremented, so that pledge pages sum a few thousand rows, not millions; it is a
cache of sums over the ledger and `check_rollup` proves it equal.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from app.models import (
    BulkOrder,
    Channel,
    Invoice,
    LedgerEntry,
    LedgerMonth,
    LedgerSource,
    Order,
    OrderLine,
    Organization,
    Product,
    Refund,
    SupplierDelivery,
)
from app.services.accounts import Actor
from app.services.clock import local_date
from app.services.errors import DomainError


@dataclass(frozen=True)
class Line:
    """What an entry is about, before its amount and source are known."""

    buyer_organization_id: int
    origin_region_id: int
    supplier_id: int | None
    supplier_name: str
    product_id: int | None
    product_name: str
    category_id: int | None


def month_of(day: date) -> date:
    return day.replace(day=1)


def supplier_key(supplier_id: int | None, name: str) -> str:
    return f"s{supplier_id}" if supplier_id else f"n{name}"[:140]


def product_key(product_id: int | None, name: str) -> str:
    return f"p{product_id}" if product_id else f"n{name}"[:140]


def _upsert_month(session: Session, entry: LedgerEntry) -> None:
    values = {
        "month": month_of(entry.occurred_on),
        "buyer_organization_id": entry.buyer_organization_id,
        "origin_region_id": entry.origin_region_id,
        "channel": entry.channel,
        "supplier_key": supplier_key(entry.supplier_id, entry.supplier_name),
        "supplier_name": entry.supplier_name,
        "product_key": product_key(entry.product_id, entry.product_name),
        "product_name": entry.product_name,
        "category_id": entry.category_id,
        "amount_fen": entry.amount_fen,
        "entries": 1,
    }
    dialect = session.get_bind().dialect.name
    insert = (postgresql if dialect == "postgresql" else sqlite).insert(LedgerMonth)
    statement = insert.values(**values).on_conflict_do_update(
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
            "entries": LedgerMonth.entries + 1,
        },
    )
    session.execute(statement)


def _append(
    session: Session,
    line: Line,
    *,
    amount_fen: int,
    occurred_on: date,
    now: datetime,
    channel: Channel,
    source: LedgerSource,
    reference: str,
    dedupe_key: str,
    actor: Actor | None = None,
    reason: str = "",
    retail_order_id: int | None = None,
    bulk_order_id: int | None = None,
    import_batch_id: int | None = None,
    external_key: str | None = None,
) -> LedgerEntry | None:
    """Add one entry (and its month), unless its event was recorded already. Zero adds nothing."""
    if amount_fen == 0:
        return None
    taken = session.scalar(sa.select(LedgerEntry.id).where(LedgerEntry.dedupe_key == dedupe_key))
    if taken is not None:
        return None
    entry = LedgerEntry(
        occurred_on=occurred_on,
        recorded_at=now,
        buyer_organization_id=line.buyer_organization_id,
        origin_region_id=line.origin_region_id,
        supplier_id=line.supplier_id,
        supplier_name=line.supplier_name[:128],
        product_id=line.product_id,
        product_name=line.product_name[:128],
        category_id=line.category_id,
        channel=channel,
        amount_fen=amount_fen,
        source=source,
        source_reference=reference[:128],
        retail_order_id=retail_order_id,
        bulk_order_id=bulk_order_id,
        import_batch_id=import_batch_id,
        external_key=external_key,
        dedupe_key=dedupe_key,
        reason=reason[:255],
        actor_id=actor.id if actor else None,
    )
    # Its own savepoint: two processes recording the same event at once both pass the check
    # above; the unique key stops the second, which then simply records nothing.
    try:
        with session.begin_nested():
            session.add(entry)
            session.flush()
    except sa.exc.IntegrityError:
        return None
    _upsert_month(session, entry)
    return entry


# --- staff retail ------------------------------------------------------------------------------


def _category_by_product(session: Session, product_ids: Iterable[int]) -> dict[int, int]:
    ids = list(set(product_ids))
    if not ids:
        return {}
    rows = session.execute(sa.select(Product.id, Product.category_id).where(Product.id.in_(ids)))
    return {product_id: category_id for product_id, category_id in rows}


def _retail_line(unit_id: int, line: OrderLine, categories: dict[int, int]) -> Line:
    return Line(
        buyer_organization_id=unit_id,
        origin_region_id=line.origin_region_id,
        supplier_id=line.supplier_id,
        supplier_name=line.supplier_name_zh,
        product_id=line.product_id,
        product_name=line.name_zh,
        category_id=categories.get(line.product_id),
    )


def retail_paid(session: Session, order: Order, now: datetime) -> None:
    """A staff order's payment arrived: each line now counts, for the unit fixed at placing."""
    if order.buyer_organization_id is None:
        return  # an account with no unit: nothing to count it for
    categories = _category_by_product(session, (line.product_id for line in order.lines))
    for line in order.lines:
        _append(
            session,
            _retail_line(order.buyer_organization_id, line, categories),
            amount_fen=line.total_fen,
            occurred_on=local_date(order.paid_at or now),
            now=now,
            channel=Channel.STAFF_RETAIL,
            source=LedgerSource.RETAIL_LINE,
            reference=order.number,
            dedupe_key=f"retail-paid:line:{line.id}",
            retail_order_id=order.id,
        )


def _spread(amount: int, weights: list[int]) -> list[int]:
    """`amount` split in proportion to `weights`, to the fen, the parts adding up exactly."""
    total = sum(weights)
    if total <= 0:
        return [amount] + [0] * (len(weights) - 1)
    parts = [amount * w // total for w in weights]
    remainders = sorted(
        range(len(weights)), key=lambda i: (amount * weights[i]) % total, reverse=True
    )
    for i in remainders[: amount - sum(parts)]:
        parts[i] += 1
    return parts


def _counted_by_line(session: Session, order: Order, refund: Refund) -> dict[int, int]:
    """What each line of the order counts now, before `refund`: its payment less its refunds.

    Both entries name their line in their dedupe key ("...:line:<id>"). Re-attributions are
    left out: they move a line's amount between units, never change it.
    """
    rows = session.execute(
        sa.select(LedgerEntry.dedupe_key, LedgerEntry.amount_fen).where(
            LedgerEntry.retail_order_id == order.id,
            LedgerEntry.source.in_((LedgerSource.RETAIL_LINE, LedgerSource.RETAIL_REFUND)),
        )
    )
    counted: dict[int, int] = {}
    for key, amount in rows:
        if key.startswith(f"retail-refund:{refund.id}:"):
            continue  # recorded already: the same split again finds its keys taken
        _, named, line_id = key.rpartition(":line:")
        if named and line_id.isdigit():
            counted[int(line_id)] = counted.get(int(line_id), 0) + amount
    return counted


def retail_refunded(
    session: Session, order: Order, refund: Refund, lines: list[OrderLine] | None, now: datetime
) -> None:
    """Money went back on a paid staff order: the refunded lines stop counting.

    With the lines known (a refund made here), the amount comes off them; with only an amount
    (a refund made in Stripe's dashboard), off the lines not refunded here, in proportion.
    Either way a line gives up at most what it still counts, so that no product ends below
    zero: what those lines cannot take (an earlier refund in Stripe already took part of them)
    comes off the order's other lines. The entries go to the unit the order counts for now.
    """
    if order.buyer_organization_id is None or refund.id is None:
        return
    categories = _category_by_product(session, (line.product_id for line in order.lines))
    unit_id = _current_unit(session, order.buyer_organization_id, retail_order_id=order.id)
    counted = _counted_by_line(session, order, refund)
    if lines is None:
        first = [line for line in order.lines if line.refund_id is None]
    else:
        first = list(lines)
    chosen = {line.id for line in first}
    then = [line for line in order.lines if line.id not in chosen]
    shares: dict[int, int] = {}
    left = refund.amount_fen
    for group in (first, then):
        if not group:
            continue
        weights = [max(counted.get(line.id, 0), 0) for line in group]
        # In proportion to what each line still counts, so that none gives up more than that.
        taken = min(left, sum(weights))
        for line, amount in zip(group, _spread(taken, weights), strict=True):
            shares[line.id] = amount
        left -= taken
    # Anything still left (the lines count nothing more) has nothing to come off.
    for line in order.lines:
        _append(
            session,
            _retail_line(unit_id, line, categories),
            amount_fen=-shares.get(line.id, 0),
            occurred_on=local_date(refund.created_at),
            now=now,
            channel=Channel.STAFF_RETAIL,
            source=LedgerSource.RETAIL_REFUND,
            reference=order.number,
            dedupe_key=f"retail-refund:{refund.id}:line:{line.id}",
            reason=refund.reason,
            retail_order_id=order.id,
        )


# --- canteen bulk ------------------------------------------------------------------------------


def _bulk_document(
    session: Session,
    delivery: SupplierDelivery,
    document: Invoice,
    *,
    source: LedgerSource,
    dedupe: str,
    actor: Actor,
    now: datetime,
) -> None:
    """Each line of an invoice (positive) or credit note (negative) as an entry for the unit
    the order counts for now, with the snapshot of the order line it bills."""
    order: BulkOrder = delivery.order
    lines = {line.id: line for line in delivery.lines}
    categories = _category_by_product(session, (line.product_id for line in lines.values()))
    unit_id = _current_unit(session, order.organization_id, bulk_order_id=order.id)
    for document_line in document.lines:
        line = lines[document_line.order_line_id]
        _append(
            session,
            Line(
                buyer_organization_id=unit_id,
                origin_region_id=line.origin_region_id,
                supplier_id=line.supplier_id,
                supplier_name=line.supplier_name_zh,
                product_id=line.product_id,
                product_name=line.name_zh,
                category_id=categories.get(line.product_id),
            ),
            amount_fen=document_line.amount_fen,
            occurred_on=local_date(now),
            now=now,
            channel=Channel.CANTEEN_BULK,
            source=source,
            reference=f"{order.number} / {document.number}",
            dedupe_key=dedupe.format(line=line.id, document_line=document_line.id),
            actor=actor,
            reason=document.reason,
            bulk_order_id=order.id,
        )


def bulk_received(
    session: Session, delivery: SupplierDelivery, invoice: Invoice, actor: Actor, now: datetime
) -> None:
    """A canteen delivery was signed off: what was received counts, at the invoiced amounts."""
    _bulk_document(
        session,
        delivery,
        invoice,
        source=LedgerSource.BULK_LINE,
        dedupe="bulk-received:line:{line}",
        actor=actor,
        now=now,
    )


def bulk_credited(
    session: Session, invoice: Invoice, credit_note: Invoice, actor: Actor, now: datetime
) -> None:
    """A credit note took amounts off a canteen invoice: they stop counting."""
    _bulk_document(
        session,
        invoice.delivery,
        credit_note,
        source=LedgerSource.CREDIT_NOTE,
        dedupe=f"bulk-credit:{credit_note.id}:line:{{document_line}}",
        actor=actor,
        now=now,
    )


# --- corrections -------------------------------------------------------------------------------


def order_entries(
    session: Session, *, retail_order_id: int | None = None, bulk_order_id: int | None = None
) -> list[LedgerEntry]:
    stmt = sa.select(LedgerEntry).order_by(LedgerEntry.id)
    if retail_order_id is not None:
        stmt = stmt.where(LedgerEntry.retail_order_id == retail_order_id)
    else:
        stmt = stmt.where(LedgerEntry.bulk_order_id == bulk_order_id)
    return list(session.scalars(stmt))


def _current_unit(
    session: Session,
    original_id: int,
    *,
    retail_order_id: int | None = None,
    bulk_order_id: int | None = None,
) -> int:
    """The unit an order's new entries count for: the one its latest re-attribution chose, else
    `original_id`, the one fixed when it was placed.

    `reattribute` writes each group's entry for the new unit right after the one taking it off
    the old unit, so the order's last correction is always for the new unit (whatever its sign:
    a group whose net was negative moves as a negative amount).
    """
    if retail_order_id is not None:
        of_order = LedgerEntry.retail_order_id == retail_order_id
    else:
        of_order = LedgerEntry.bulk_order_id == bulk_order_id
    latest = session.scalar(
        sa.select(LedgerEntry.buyer_organization_id)
        .where(of_order, LedgerEntry.source == LedgerSource.CORRECTION)
        .order_by(LedgerEntry.id.desc())
        .limit(1)
    )
    return original_id if latest is None else latest


def reattribute(
    session: Session,
    actor: Actor,
    now: datetime,
    *,
    to_organization_id: int,
    reason: str,
    retail_order_id: int | None = None,
    bulk_order_id: int | None = None,
) -> list[LedgerEntry]:
    """Count an order for another budget unit from now on: what it counts for each old unit is
    taken off (negative entries) and added for the new one, with the reason. History stays."""
    reason = (reason or "").strip()
    if not reason:
        raise DomainError(_l("Give a reason."), field="reason")
    if len(reason) > 255:
        raise DomainError(_l("At most %(n)d characters.", n=255), field="reason")
    target = session.get(Organization, to_organization_id)
    if target is None:
        raise DomainError(_l("Choose the unit to count it for."), field="organization_id")
    entries = order_entries(session, retail_order_id=retail_order_id, bulk_order_id=bulk_order_id)
    if not entries:
        raise DomainError(_l("This order has not counted toward anything yet."))
    # Net per (unit, line of business) as it stands, including earlier corrections.
    groups: dict[tuple, int] = {}
    sample: dict[tuple, LedgerEntry] = {}
    for entry in entries:
        key = (
            entry.buyer_organization_id,
            entry.origin_region_id,
            entry.supplier_id,
            entry.supplier_name,
            entry.product_id,
            entry.product_name,
            entry.category_id,
            entry.channel,
        )
        groups[key] = groups.get(key, 0) + entry.amount_fen
        sample[key] = entry
    moved = [key for key, amount in groups.items() if amount and key[0] != target.id]
    if not moved:
        raise DomainError(_l("It already counts for that unit."), field="organization_id")
    sequence = len(entries)
    written: list[LedgerEntry] = []
    today = local_date(now)
    for key in moved:
        entry = sample[key]
        for organization_id, sign in ((key[0], -1), (target.id, 1)):
            sequence += 1
            written_entry = _append(
                session,
                Line(
                    buyer_organization_id=organization_id,
                    origin_region_id=entry.origin_region_id,
                    supplier_id=entry.supplier_id,
                    supplier_name=entry.supplier_name,
                    product_id=entry.product_id,
                    product_name=entry.product_name,
                    category_id=entry.category_id,
                ),
                amount_fen=sign * groups[key],
                occurred_on=today,
                now=now,
                channel=entry.channel,
                source=LedgerSource.CORRECTION,
                reference=entry.source_reference,
                dedupe_key=(
                    f"correction:{'r' if retail_order_id else 'b'}"
                    f"{retail_order_id or bulk_order_id}:{sequence}"
                ),
                actor=actor,
                reason=reason,
                retail_order_id=retail_order_id,
                bulk_order_id=bulk_order_id,
            )
            if written_entry is not None:
                written.append(written_entry)
    return written


# --- the roll-up, checked ----------------------------------------------------------------------


def check_rollup(session: Session) -> list[str]:
    """Differences between LedgerMonth and the ledger's own sums (empty when they agree), per
    group of the roll-up's unique key: month, unit, origin region, channel, supplier, product.
    """
    month_expr = sa.func.date(LedgerEntry.occurred_on, "start of month")
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        month_expr = sa.cast(sa.func.date_trunc("month", LedgerEntry.occurred_on), sa.Date)
    columns = (
        LedgerEntry.buyer_organization_id,
        LedgerEntry.origin_region_id,
        LedgerEntry.channel,
        LedgerEntry.supplier_id,
        LedgerEntry.supplier_name,
        LedgerEntry.product_id,
        LedgerEntry.product_name,
    )
    # The keys of suppliers and products are made the way the roll-up makes them, here rather
    # than in SQL, so that both sides agree on them by construction.
    direct: dict[tuple, tuple[int, int]] = {}
    for row in session.execute(
        sa.select(
            month_expr.label("month"),
            *columns,
            sa.func.sum(LedgerEntry.amount_fen).label("amount"),
            sa.func.count().label("n"),
        ).group_by(month_expr, *columns)
    ):
        key = (
            str(row.month)[:10],
            row.buyer_organization_id,
            row.origin_region_id,
            str(row.channel),
            supplier_key(row.supplier_id, row.supplier_name),
            product_key(row.product_id, row.product_name),
        )
        before = direct.get(key, (0, 0))
        direct[key] = (before[0] + int(row.amount), before[1] + int(row.n))
    rolled = {
        (str(month)[:10], org, region, str(channel), supplier, product): (int(amount), int(n))
        for month, org, region, channel, supplier, product, amount, n in session.execute(
            sa.select(
                LedgerMonth.month,
                LedgerMonth.buyer_organization_id,
                LedgerMonth.origin_region_id,
                LedgerMonth.channel,
                LedgerMonth.supplier_key,
                LedgerMonth.product_key,
                LedgerMonth.amount_fen,
                LedgerMonth.entries,
            )
        )
    }
    problems = []
    for key in sorted(set(direct) | set(rolled), key=str):
        if direct.get(key, (0, 0)) != rolled.get(key, (0, 0)):
            month, org, region, channel, supplier, product = key
            amount, n = direct.get(key, (0, 0))
            rolled_amount, rolled_n = rolled.get(key, (0, 0))
            problems.append(
                f"{month} unit {org} region {region} {channel} supplier {supplier} "
                f"product {product}: ledger {amount} fen in {n} entries, "
                f"roll-up {rolled_amount} fen in {rolled_n} entries"
            )
    return problems


# --- imported sales (app.services.sales_import) ------------------------------------------------
#
# A file may hold tens of thousands of sales, so these write their entries many rows per
# statement (INSERT ... ON CONFLICT (dedupe_key) DO NOTHING RETURNING) and add them to the
# monthly roll-up once per group, instead of one savepoint per entry as `_append` does. The
# dedupe rules are the same: a key taken, by an earlier commit or by one racing this one, adds
# nothing. Rows go in sorted by key and groups in sorted order, so that two transactions
# writing overlapping rows wait for each other instead of deadlocking.


@dataclass(frozen=True)
class ImportedSale:
    """One row of an import file, checked, as it is to count."""

    line: Line
    amount_fen: int
    occurred_on: date
    channel: Channel
    reference: str
    #: How many times this source's reference was imported before (all of them reversed).
    generation: int


def import_external_key(source: str, reference: str) -> str:
    """How an imported row is recognised when a file comes again: "<source>:<reference>"."""
    return f"{source}:{reference}"


def _import_dedupe_key(external_key: str, generation: int) -> str:
    import hashlib

    key = f"import:{external_key}:{generation}"
    if len(key) > 200:  # a long source and reference: their digest stands for them
        digest = hashlib.sha256(external_key.encode()).hexdigest()
        key = f"import:sha256:{digest}:{generation}"
    return key


def import_sales(
    session: Session,
    sales: Iterable[ImportedSale],
    *,
    source_name: str,
    import_batch_id: int,
    actor: Actor | None,
    now: datetime,
) -> set[str]:
    """Sales recorded elsewhere count, each on the day it was made. Returns the external keys of
    the sales written; the others were recorded already (the same generation of the same
    source and reference, committed by another batch)."""
    values = []
    for sale in sales:
        external_key = import_external_key(source_name, sale.reference)
        values.append(
            _entry_values(
                sale.line,
                amount_fen=sale.amount_fen,
                occurred_on=sale.occurred_on,
                now=now,
                channel=sale.channel,
                source=LedgerSource.IMPORT,
                reference=sale.reference,
                dedupe_key=_import_dedupe_key(external_key, sale.generation),
                external_key=external_key,
                import_batch_id=import_batch_id,
                actor=actor,
            )
        )
    return {row["external_key"] for row in _append_many(session, values)}


def reverse_import(
    session: Session, import_batch_id: int, *, actor: Actor | None, now: datetime, reason: str
) -> int:
    """An import stops counting: each of its entries again, negative, on the same day (the file
    was wrong, so its sales leave the months they were counted in), with the reason. Returns
    how many entries were written."""
    originals = session.execute(
        sa.select(LedgerEntry.__table__)
        .where(
            LedgerEntry.import_batch_id == import_batch_id,
            LedgerEntry.source == LedgerSource.IMPORT,
        )
        .order_by(LedgerEntry.id)
    ).mappings()
    values = [
        _entry_values(
            Line(
                buyer_organization_id=entry["buyer_organization_id"],
                origin_region_id=entry["origin_region_id"],
                supplier_id=entry["supplier_id"],
                supplier_name=entry["supplier_name"],
                product_id=entry["product_id"],
                product_name=entry["product_name"],
                category_id=entry["category_id"],
            ),
            amount_fen=-entry["amount_fen"],
            occurred_on=entry["occurred_on"],
            now=now,
            channel=Channel(entry["channel"]),
            source=LedgerSource.IMPORT_REVERSAL,
            reference=entry["source_reference"],
            dedupe_key=f"import-reversal:{entry['id']}",
            external_key=entry["external_key"],
            import_batch_id=import_batch_id,
            actor=actor,
            reason=reason,
        )
        for entry in originals
    ]
    return len(_append_many(session, values))


def _entry_values(
    line: Line,
    *,
    amount_fen: int,
    occurred_on: date,
    now: datetime,
    channel: Channel,
    source: LedgerSource,
    reference: str,
    dedupe_key: str,
    external_key: str | None,
    import_batch_id: int,
    actor: Actor | None,
    reason: str = "",
) -> dict:
    return {
        "occurred_on": occurred_on,
        "recorded_at": now,
        "buyer_organization_id": line.buyer_organization_id,
        "origin_region_id": line.origin_region_id,
        "supplier_id": line.supplier_id,
        "supplier_name": line.supplier_name[:128],
        "product_id": line.product_id,
        "product_name": line.product_name[:128],
        "category_id": line.category_id,
        "channel": channel,
        "amount_fen": amount_fen,
        "source": source,
        "source_reference": reference[:128],
        "retail_order_id": None,
        "bulk_order_id": None,
        "import_batch_id": import_batch_id,
        "external_key": external_key,
        "dedupe_key": dedupe_key,
        "reason": reason[:255],
        "actor_id": actor.id if actor else None,
    }


def _append_many(session: Session, values: list[dict]) -> list[dict]:
    """Insert the entries whose dedupe key is free, add them to their months; the ones written."""
    # A fixed order (numbers in keys by their value: "…:9" before "…:10").
    values = sorted(
        (v for v in values if v["amount_fen"]),
        key=lambda v: (len(v["dedupe_key"]), v["dedupe_key"]),
    )
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    written: list[dict] = []
    if values:
        table = LedgerEntry.__table__
        # One statement compiled once, run for many rows (SQLAlchemy's "insertmanyvalues").
        statement = (
            dialect.insert(table)
            .on_conflict_do_nothing(index_elements=["dedupe_key"])
            .returning(table.c.dedupe_key)
        )
        taken = set(session.execute(statement, values).scalars())
        written = [v for v in values if v["dedupe_key"] in taken]
    months: dict[tuple, dict] = {}
    for v in written:
        key = (
            month_of(v["occurred_on"]),
            v["buyer_organization_id"],
            v["origin_region_id"],
            str(v["channel"]),
            supplier_key(v["supplier_id"], v["supplier_name"]),
            product_key(v["product_id"], v["product_name"]),
        )
        group = months.setdefault(
            key,
            {
                "month": key[0],
                "buyer_organization_id": key[1],
                "origin_region_id": key[2],
                "channel": v["channel"],
                "supplier_key": key[4],
                "supplier_name": v["supplier_name"],
                "product_key": key[5],
                "product_name": v["product_name"],
                "category_id": v["category_id"],
                "amount_fen": 0,
                "entries": 0,
            },
        )
        group["amount_fen"] += v["amount_fen"]
        group["entries"] += 1
    if months:
        table = LedgerMonth.__table__
        insert = dialect.insert(table)
        upsert = insert.on_conflict_do_update(
            index_elements=[
                "month",
                "buyer_organization_id",
                "origin_region_id",
                "channel",
                "supplier_key",
                "product_key",
            ],
            set_={
                "amount_fen": table.c.amount_fen + insert.excluded.amount_fen,
                "entries": table.c.entries + insert.excluded.entries,
            },
        )
        session.execute(upsert, [months[key] for key in sorted(months)])
    return written
