"""Offline sales imported from a file: the counter's till, the government purchasing platform.

A coordinator uploads a CSV or XLSX of sales recorded elsewhere (one row per sale: date, buying
unit, origin region, supplier, product, amount, the reference the other system gave it). The
file goes through three steps, and every refusal leaves nothing written:

1. `read`: the rows of the file by line number (the header is the first non-empty row);
   a file that is not a spreadsheet, too large, or without the expected columns is refused.
2. `stage`: every row is checked against the organizations, regions, catalog and pledges; any
   bad row refuses the whole file with a message per line (LineErrors). A clean file becomes a
   PENDING ImportBatch to review. A row whose source and reference were already counted by an
   earlier import (committed, not reversed) is marked `already_counted` and will not count again.
3. `commit` (or `discard`): each new row becomes a ledger entry (app.services.ledger.import_sale);
   later `reverse` takes the whole batch back with one negative entry per entry.

How a row is recognised: its external key is "<source>:<reference>". The ledger entry's dedupe
key adds a generation, the number of earlier imports of that key (all reversed by then), so a row
reversed with its batch can be imported again, while two commits racing for the same row still
count it once (the dedupe key is unique).
"""

from __future__ import annotations

import csv
import io
import random
import re
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import Session, joinedload, selectinload

from app.models import (
    Channel,
    ImportBatch,
    ImportRow,
    ImportStatus,
    LedgerEntry,
    LedgerSource,
    Organization,
    OrgKind,
    Pledge,
    Product,
    Region,
    Role,
)
from app.services import ledger, sheets
from app.services.accounts import Actor
from app.services.clock import local_date
from app.services.errors import DomainError, LineErrors, NotFound, PermissionDenied
from app.services.money import MoneyFormatError, parse_yuan
from app.services.pagination import Page, paginate

#: Called with how many more rows were handled (a progress bar's `update`).
Progress = Callable[[int], None]

#: Header names accepted for each column, compared after sheets._header_key (case, width,
#: spaces, a trailing colon or asterisk are ignored).
HEADERS: dict[str, tuple[str, ...]] = {
    "date": ("日期", "销售日期", "交易日期", "date", "sale date"),
    "organization": ("单位", "预算单位", "采购单位", "organization", "organisation"),
    "region": ("地区", "产地", "region", "origin"),
    "supplier": ("供应商", "supplier"),
    "product": ("商品", "商品名称", "产品", "product"),
    "amount": ("金额", "金额(元)", "amount", "amount(yuan)"),
    "reference": ("参考号", "单号", "订单号", "reference", "ref", "external reference"),
    "channel": ("渠道", "channel"),
}
#: Columns a file must have; supplier and channel may be left out (the product's supplier,
#: offline).
REQUIRED = ("date", "organization", "region", "product", "amount", "reference")
TEMPLATE_HEADER = ("日期", "单位", "地区", "供应商", "商品", "金额", "参考号", "渠道")

CHANNELS = {
    "offline": Channel.OFFLINE,
    "线下": Channel.OFFLINE,
    "union": Channel.UNION,
    "工会": Channel.UNION,
}

SOURCE_PATTERN = re.compile(r"^[a-z0-9-]{2,64}$", re.ASCII)
MAX_REFERENCE = 128
MAX_NAME = 128
#: Limits of a file uploaded through the web (the app's config may override them) and of one
#: given to `flask import-sales`.
WEB_MAX_BYTES = 10 * 1024 * 1024
WEB_MAX_ROWS = 20_000
CLI_MAX_BYTES = 200 * 1024 * 1024
CLI_MAX_ROWS = 1_000_000
#: IN (...) lists are cut into pieces of this size (SQLite and drivers limit parameters).
_CHUNK = 500
#: Rows committed per step (a step is a few multi-row INSERTs and one progress tick).
_COMMIT_CHUNK = 1000

_DATE = re.compile(
    r"^(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?"
    r"(?:[ T]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?$"
)


class ImportConflict(DomainError):
    """The batch moved on in the meantime (committed, discarded or reversed by someone else)."""

    status_code = 409


@dataclass(frozen=True)
class RawRow:
    """A data row of the file as written (stripped); `line` is the row number a person sees."""

    line: int
    date: str = ""
    organization: str = ""
    region: str = ""
    supplier: str = ""
    product: str = ""
    amount: str = ""
    reference: str = ""
    channel: str = ""


# --- 1. reading the file -----------------------------------------------------------------------


def read(filename: str, data: bytes, *, max_bytes: int, max_rows: int) -> list[RawRow]:
    """The sales rows of a CSV (UTF-8 or GB18030) or XLSX file, empty rows left out.

    Raises SheetTooLarge above `max_bytes`, SheetError for a file that is not a spreadsheet or
    has more than `max_rows` rows, LineErrors (at the header's line) for missing columns.
    """
    table = sheets.read_table(
        filename,
        data,
        headers=HEADERS,
        required=REQUIRED,
        max_bytes=max_bytes,
        max_rows=max_rows,
        no_rows_message=_l("The file has no sales rows under its header."),
    )
    return [RawRow(line=row.line, **row.values) for row in table.rows]


def template_csv() -> bytes:
    """An empty import file with the expected columns and one example row, UTF-8 with a BOM."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(TEMPLATE_HEADER)
    writer.writerow(
        ("2026-11-27", "DEPT-OFFICE", "dazhou", "达州灯影坊食品有限公司", "灯影牛肉", "1280.00",
         "ZCY-2026-0001", "线下")
    )  # fmt: skip
    return buffer.getvalue().encode("utf-8-sig")


# --- 2. checking and staging -------------------------------------------------------------------


def check_source(source: str | None) -> str:
    source = (source or "").strip().lower()
    if not SOURCE_PATTERN.match(source):
        raise DomainError(
            _l(
                "Name the source with 2 to 64 lower-case letters, digits or hyphens,"
                " e.g. counter-till or zcy."
            ),
            field="source",
        )
    return source


def _require_coordinator(actor: Actor | None) -> None:
    """A person acting must be a coordinator or an administrator; None is the command line."""
    if actor is not None and not actor.has_role(Role.COORDINATOR, Role.ADMIN):
        raise PermissionDenied(_l("Only coordinators import sales."))


def external_key(source: str, reference: str) -> str:
    return ledger.import_external_key(source, reference)


@dataclass
class _Lookups:
    """Everything rows are checked against, loaded once per file."""

    organizations: dict[str, Organization] = field(default_factory=dict)
    organizations_by_name: dict[str, Organization] = field(default_factory=dict)
    regions: dict[str, Region] = field(default_factory=dict)
    suppliers: dict[str, Organization] = field(default_factory=dict)
    suppliers_by_name: dict[str, Organization] = field(default_factory=dict)
    products: dict[str, Product] = field(default_factory=dict)
    products_by_name: dict[str, list[Product]] = field(default_factory=dict)
    periods: list[tuple[date, date]] = field(default_factory=list)


def _chunks(items: Sequence, size: int = _CHUNK) -> Iterator[Sequence]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _lookups(session: Session, rows: Sequence[RawRow]) -> _Lookups:
    found = _Lookups()
    for organization in session.scalars(sa.select(Organization)):
        # Codes are compared without case; names as written.
        if organization.kind == OrgKind.SUPPLIER:
            found.suppliers[organization.code.lower()] = organization
            found.suppliers_by_name.setdefault(organization.name_zh, organization)
        found.organizations[organization.code.lower()] = organization
        found.organizations_by_name.setdefault(organization.name_zh, organization)
    for region in session.scalars(sa.select(Region)):
        found.regions[region.code.lower()] = region
        found.regions.setdefault(region.name_zh, region)
        if region.name_en:
            found.regions.setdefault(region.name_en.casefold(), region)
    named = sorted({row.product for row in rows if row.product})
    for chunk in _chunks(named):
        lowered = [name.lower() for name in chunk]
        for product in session.scalars(
            sa.select(Product)
            .where(sa.or_(sa.func.lower(Product.code).in_(lowered), Product.name_zh.in_(chunk)))
            .options(joinedload(Product.supplier))
        ):
            found.products[product.code.lower()] = product
            found.products_by_name.setdefault(product.name_zh, []).append(product)
    found.periods = [
        (start, end)
        for start, end in session.execute(sa.select(Pledge.period_start, Pledge.period_end))
    ]
    return found


def _parse_date(text: str) -> date | None:
    match = _DATE.match(unicodedata.normalize("NFKC", text).strip())
    if not match:
        return None
    try:
        return date(*(int(part) for part in match.groups()))
    except ValueError:
        return None


def _parse_amount(text: str) -> tuple[int | None, str | None]:
    """(fen, None) or (None, why not)."""
    cleaned = unicodedata.normalize("NFKC", text).strip()
    if not cleaned:
        return None, str(_l("No amount."))
    if cleaned.startswith(("-", "−", "(")):
        return None, str(
            _l("%(amount)s is negative: refunds are not imported this way.", amount=text)
        )
    try:
        fen = parse_yuan(cleaned)
    except MoneyFormatError:
        return None, str(
            _l(
                "%(amount)s is not an amount in yuan (digits, at most two decimals).",
                amount=text,
            )
        )
    if fen <= 0:
        return None, str(_l("The amount must be more than zero."))
    return fen, None


@dataclass
class _Checked:
    line: int
    occurred_on: date
    organization: Organization
    region: Region
    supplier_id: int | None
    supplier_name: str
    product_id: int | None
    product_name: str
    category_id: int | None
    channel: Channel
    amount_fen: int
    reference: str


def _check_row(
    row: RawRow, found: _Lookups, today: date, seen: dict[str, int]
) -> tuple[_Checked | None, list[str]]:
    problems: list[str] = []

    occurred_on = _parse_date(row.date)
    if not row.date:
        problems.append(str(_l("No date.")))
    elif occurred_on is None:
        problems.append(
            str(_l("%(date)s is not a date: write it 2026-11-27 or 2026年11月27日.", date=row.date))
        )
    elif occurred_on > today:
        problems.append(str(_l("%(date)s is in the future.", date=occurred_on.isoformat())))
    elif not any(start <= occurred_on <= end for start, end in found.periods):
        problems.append(
            str(
                _l(
                    "%(date)s is in no pledge's period: only sales that count toward a pledge"
                    " are imported.",
                    date=occurred_on.isoformat(),
                )
            )
        )

    organization = found.organizations.get(
        row.organization.lower()
    ) or found.organizations_by_name.get(row.organization)
    if not row.organization:
        problems.append(str(_l("No organization.")))
    elif organization is None:
        problems.append(
            str(
                _l(
                    "Unknown organization %(name)s: use its code or its exact Chinese name.",
                    name=row.organization,
                )
            )
        )
    elif organization.kind == OrgKind.SUPPLIER:
        problems.append(
            str(_l("%(name)s is a supplier, not a buying unit.", name=organization.name_zh))
        )
        organization = None

    region = found.regions.get(row.region.lower()) or found.regions.get(row.region.casefold())
    if not row.region:
        problems.append(str(_l("No region.")))
    elif region is None:
        problems.append(str(_l("Unknown region %(name)s.", name=row.region)))

    supplier = found.suppliers.get(row.supplier.lower()) or found.suppliers_by_name.get(
        row.supplier
    )
    supplier_name = supplier.name_zh if supplier else row.supplier
    if len(supplier_name) > MAX_NAME:
        problems.append(str(_l("The supplier's name is longer than %(n)d characters.", n=MAX_NAME)))

    product: Product | None = None
    if not row.product:
        problems.append(str(_l("No product.")))
    elif len(row.product) > MAX_NAME:
        problems.append(str(_l("The product's name is longer than %(n)d characters.", n=MAX_NAME)))
    else:
        product = found.products.get(row.product.lower())
        if product is not None:
            if supplier is not None and product.supplier_id != supplier.id:
                problems.append(
                    str(
                        _l(
                            "Product %(code)s is not sold by %(supplier)s.",
                            code=product.code,
                            supplier=supplier.name_zh,
                        )
                    )
                )
        elif supplier is not None or not row.supplier:
            # By name: the one product of that name (of that supplier, when one is named). A
            # supplier outside the catalog sells its own goods, so those stay names only.
            named = found.products_by_name.get(row.product, [])
            if supplier is not None:
                named = [p for p in named if p.supplier_id == supplier.id]
            product = named[0] if len(named) == 1 else None
    if product is not None and supplier is None:
        supplier = product.supplier
        supplier_name = supplier.name_zh

    amount_fen, amount_problem = _parse_amount(row.amount)
    if amount_problem:
        problems.append(amount_problem)

    reference = row.reference
    if not reference:
        problems.append(str(_l("No reference.")))
    elif len(reference) > MAX_REFERENCE:
        problems.append(str(_l("The reference is longer than %(n)d characters.", n=MAX_REFERENCE)))
    elif reference in seen:
        problems.append(
            str(
                _l(
                    "Reference %(reference)s is already on line %(line)d.",
                    reference=reference,
                    line=seen[reference],
                )
            )
        )
    else:
        seen[reference] = row.line

    channel = CHANNELS.get(row.channel.casefold()) if row.channel else Channel.OFFLINE
    if channel is None:
        problems.append(
            str(
                _l(
                    "Unknown channel %(channel)s: write offline (线下) or union (工会).",
                    channel=row.channel,
                )
            )
        )

    if problems:
        return None, problems
    return (
        _Checked(
            line=row.line,
            occurred_on=occurred_on,
            organization=organization,
            region=region,
            supplier_id=supplier.id if supplier else None,
            supplier_name=supplier_name,
            product_id=product.id if product else None,
            product_name=product.name_zh if product else row.product,
            category_id=product.category_id if product else None,
            channel=channel,
            amount_fen=amount_fen,
            reference=reference,
        ),
        [],
    )


def check_rows(
    session: Session, now: datetime, rows: Sequence[RawRow], progress: Progress | None = None
) -> list[_Checked]:
    """The rows, checked; LineErrors with every problem of every bad line otherwise."""
    if not rows:
        raise DomainError(_l("The file has no sales rows under its header."), field="file")
    found = _lookups(session, rows)
    today = local_date(now)
    seen: dict[str, int] = {}
    errors: dict[int, str] = {}
    checked: list[_Checked] = []
    for row in rows:
        good, problems = _check_row(row, found, today, seen)
        if problems:
            errors[row.line] = " ".join(problems)
        else:
            checked.append(good)
        if progress:
            progress(1)
    if errors:
        raise LineErrors(errors, _l("The file has errors; nothing was imported."))
    return checked


def _key_counts(session: Session, keys: Sequence[str]) -> dict[str, tuple[int, int]]:
    """{external key: (imported entries, reversal entries)} of the keys that have any."""
    counts: dict[str, list[int]] = {}
    for chunk in _chunks(sorted(set(keys))):
        for key, source, n in session.execute(
            sa.select(LedgerEntry.external_key, LedgerEntry.source, sa.func.count())
            .where(
                LedgerEntry.external_key.in_(chunk),
                LedgerEntry.source.in_([LedgerSource.IMPORT, LedgerSource.IMPORT_REVERSAL]),
            )
            .group_by(LedgerEntry.external_key, LedgerEntry.source)
        ):
            pair = counts.setdefault(key, [0, 0])
            pair[0 if source == LedgerSource.IMPORT else 1] += n
    return {key: (imported, reversed_) for key, (imported, reversed_) in counts.items()}


def _is_counted(counts: dict[str, tuple[int, int]], key: str) -> bool:
    imported, reversed_ = counts.get(key, (0, 0))
    return imported > reversed_


def stage(
    session: Session,
    actor: Actor | None,
    now: datetime,
    source: str,
    filename: str,
    rows: Sequence[RawRow],
    *,
    progress: Progress | None = None,
) -> ImportBatch:
    """Check every row and keep a clean file as a batch waiting for review (nothing counts yet).

    Raises LineErrors (by line) when any row is wrong; nothing is written then.
    """
    _require_coordinator(actor)
    source = check_source(source)
    checked = check_rows(session, now, rows, progress)
    counts = _key_counts(session, [external_key(source, row.reference) for row in checked])
    batch = ImportBatch(
        source=source,
        filename=_clean_filename(filename),
        status=ImportStatus.PENDING,
        created_at=now,
        created_by_id=actor.id if actor else None,
    )
    session.add(batch)
    session.flush()
    values = []
    for row in checked:
        counted = _is_counted(counts, external_key(source, row.reference))
        values.append(
            {
                "batch_id": batch.id,
                "line": row.line,
                "occurred_on": row.occurred_on,
                "buyer_organization_id": row.organization.id,
                "origin_region_id": row.region.id,
                "supplier_id": row.supplier_id,
                "supplier_name": row.supplier_name,
                "product_id": row.product_id,
                "product_name": row.product_name,
                "category_id": row.category_id,
                "channel": row.channel,
                "amount_fen": row.amount_fen,
                "reference": row.reference,
                "already_counted": counted,
            }
        )
    for chunk in _chunks(values, 1000):
        session.execute(sa.insert(ImportRow), list(chunk))
    _set_totals(batch, values)
    session.flush()
    return batch


def _set_totals(batch: ImportBatch, rows: Sequence[dict]) -> None:
    batch.rows_total = len(rows)
    batch.rows_already_counted = sum(1 for row in rows if row["already_counted"])
    batch.rows_new = batch.rows_total - batch.rows_already_counted
    batch.amount_fen = sum(row["amount_fen"] for row in rows if not row["already_counted"])


def _clean_filename(filename: str | None) -> str:
    name = (filename or "").replace("\\", "/").rsplit("/", 1)[-1]
    return "".join(char for char in name if char.isprintable())[:255]


# --- 3. commit, discard, reverse ---------------------------------------------------------------


def _move(
    session: Session, batch: ImportBatch, expected: ImportStatus, target: ImportStatus, **values
) -> None:
    """Compare-and-set the batch's status: of two people (or processes) doing it, one wins."""
    moved = session.execute(
        sa.update(ImportBatch)
        .where(ImportBatch.id == batch.id, ImportBatch.status == expected)
        .values(status=target, **values)
        .execution_options(synchronize_session="fetch")
    ).rowcount
    if moved != 1:
        session.refresh(batch)
        raise ImportConflict(
            _l(
                "Import %(id)d is %(status)s now; that cannot be done any more.",
                id=batch.id,
                status=batch.status.label,
            )
        )


def batch_rows(session: Session, batch: ImportBatch) -> list[ImportRow]:
    return list(
        session.scalars(
            sa.select(ImportRow).where(ImportRow.batch_id == batch.id).order_by(ImportRow.line)
        )
    )


def commit(
    session: Session,
    batch: ImportBatch,
    actor: Actor | None,
    now: datetime,
    *,
    progress: Progress | None = None,
) -> ImportBatch:
    """Count the batch: each row not counted before becomes a ledger entry."""
    _require_coordinator(actor)
    _move(session, batch, ImportStatus.PENDING, ImportStatus.COMMITTED, committed_at=now)
    rows = session.execute(
        sa.select(ImportRow).where(ImportRow.batch_id == batch.id).order_by(ImportRow.line)
    ).scalars()
    rows_new = amount_fen = 0
    for chunk in _chunks(list(rows), _COMMIT_CHUNK):
        keys = {row.id: external_key(batch.source, row.reference) for row in chunk}
        counts = _key_counts(session, list(keys.values()))
        # Counted since it was staged (another file with the same rows committed first)?
        fresh = [row for row in chunk if not _is_counted(counts, keys[row.id])]
        written = ledger.import_sales(
            session,
            [
                ledger.ImportedSale(
                    line=ledger.Line(
                        buyer_organization_id=row.buyer_organization_id,
                        origin_region_id=row.origin_region_id,
                        supplier_id=row.supplier_id,
                        supplier_name=row.supplier_name,
                        product_id=row.product_id,
                        product_name=row.product_name,
                        category_id=row.category_id,
                    ),
                    amount_fen=row.amount_fen,
                    occurred_on=row.occurred_on,
                    channel=row.channel,
                    reference=row.reference,
                    generation=counts.get(keys[row.id], (0, 0))[0],
                )
                for row in fresh
            ],
            source_name=batch.source,
            import_batch_id=batch.id,
            actor=actor,
            now=now,
        )
        # A row missing from `written` was written first by a commit racing this one.
        for row in chunk:
            row.already_counted = keys[row.id] not in written
            if not row.already_counted:
                rows_new += 1
                amount_fen += row.amount_fen
        session.flush()
        if progress:
            progress(len(chunk))
    batch.rows_new = rows_new
    batch.rows_already_counted = batch.rows_total - rows_new
    batch.amount_fen = amount_fen
    session.flush()
    return batch


def discard(session: Session, batch: ImportBatch, actor: Actor | None, now: datetime) -> None:
    """Drop a batch waiting for review: nothing of it ever counts."""
    _require_coordinator(actor)
    _move(session, batch, ImportStatus.PENDING, ImportStatus.DISCARDED)


def reverse(
    session: Session, batch: ImportBatch, actor: Actor | None, now: datetime, reason: str
) -> int:
    """Take a committed batch back as a whole: one negative entry per entry it wrote. Returns
    how many were written."""
    _require_coordinator(actor)
    reason = (reason or "").strip()
    if not reason:
        raise DomainError(_l("Give a reason."), field="reason")
    if len(reason) > 255:
        raise DomainError(_l("At most %(n)d characters.", n=255), field="reason")
    _move(
        session,
        batch,
        ImportStatus.COMMITTED,
        ImportStatus.REVERSED,
        reversed_at=now,
        reversal_reason=reason,
    )
    return ledger.reverse_import(session, batch.id, actor=actor, now=now, reason=reason)


# --- reading batches back ----------------------------------------------------------------------


def get_batch(session: Session, batch_id: int) -> ImportBatch:
    batch = session.get(ImportBatch, batch_id)
    if batch is None:
        raise NotFound(_l("There is no import %(id)d.", id=batch_id))
    return batch


def list_batches(session: Session, page: int, per_page: int) -> Page[ImportBatch]:
    return paginate(
        session,
        sa.select(ImportBatch)
        .options(joinedload(ImportBatch.created_by))
        .order_by(ImportBatch.id.desc()),
        page,
        per_page,
    )


def rows_page(session: Session, batch: ImportBatch, page: int, per_page: int) -> Page[ImportRow]:
    return paginate(
        session,
        sa.select(ImportRow)
        .where(ImportRow.batch_id == batch.id)
        .options(selectinload(ImportRow.buyer_organization), selectinload(ImportRow.origin_region))
        .order_by(ImportRow.line),
        page,
        per_page,
        total=batch.rows_total,
    )


def batch_entries(session: Session, batch: ImportBatch, limit: int) -> tuple[list, int]:
    """(the first `limit` ledger entries the batch wrote, how many there are in all)."""
    where = LedgerEntry.import_batch_id == batch.id
    total = session.scalar(sa.select(sa.func.count()).select_from(LedgerEntry).where(where)) or 0
    entries = session.scalars(
        sa.select(LedgerEntry)
        .where(where)
        .options(
            selectinload(LedgerEntry.buyer_organization), selectinload(LedgerEntry.origin_region)
        )
        .order_by(LedgerEntry.id)
        .limit(limit)
    ).all()
    return list(entries), total


def batch_net_fen(session: Session, batch: ImportBatch) -> int:
    """What the batch counts for now: its entries summed (zero once reversed)."""
    return (
        session.scalar(
            sa.select(sa.func.coalesce(sa.func.sum(LedgerEntry.amount_fen), 0)).where(
                LedgerEntry.import_batch_id == batch.id
            )
        )
        or 0
    )


def known_sources(session: Session) -> list[str]:
    return list(session.scalars(sa.select(ImportBatch.source).distinct().order_by("source")))


# --- the demo file -----------------------------------------------------------------------------


def demo_offline_sales(today: date, *, year: int = 2026, rows: int = 20) -> bytes:
    """A CSV of `rows` realistic offline sales in `year` up to `today`, as 政采云 exports them
    (reference ZCY-<year>-0001, ...): the demo units buying the demo catalog's goods, every
    fourth row the canteen buying Dazhou goods offline (what its Dazhou plan counts).

    The dates fall inside the calendar year and, in the year of `today`, not after it: in the
    first days of January they all fall on the days gone so far. So a calendar-year pledge of
    that year covers them, and the file imports on any day. The same arguments give the same
    file.
    """
    from app.services import demo_data
    from app.services.demo import CENTER_ORGANIZATIONS

    buyers = [org["code"] for org in CENTER_ORGANIZATIONS if org["kind"] != OrgKind.COUNTER]
    canteen = next(org["code"] for org in CENTER_ORGANIZATIONS if org["kind"] == OrgKind.CANTEEN)
    suppliers = {supplier["code"]: supplier for supplier in demo_data.SUPPLIERS}
    products = demo_data.PRODUCTS
    dazhou = [product for product in products if product["region"] == "dazhou"]
    first = date(year, 1, 5)
    last = min(date(year, 12, 28), today) if today.year == year else date(year, 12, 28)
    if last < first:
        first = date(year, 1, 1)
    span = max((last - first).days, 0)
    rng = random.Random(year)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(TEMPLATE_HEADER)
    for n in range(rows):
        for_canteen = n % 4 == 0
        choices = dazhou if for_canteen else products
        product = choices[rng.randrange(len(choices))]
        supplier = suppliers[product["supplier"]]
        day = first + timedelta(days=span * n // max(rows - 1, 1))
        # Union purchases: festival boxes before the Dragon Boat (June) and Mid-Autumn (Sept).
        union = day.month in (6, 9) and n % 2 == 0 and not for_canteen
        # A few hundred to a few thousand yuan, in whole units of the product; the canteen and
        # the union buy by the case.
        large = union or for_canteen
        target = rng.randrange(200_000, 600_000) if large else rng.randrange(30_000, 400_000)
        amount = product["retail_price_fen"] * max(1, round(target / product["retail_price_fen"]))
        buyer = buyers[rng.randrange(len(buyers))]
        writer.writerow(
            (
                day.isoformat(),
                canteen if for_canteen else buyer,
                product["region"],
                supplier["name_zh"],
                product["name_zh"],
                f"{amount // 100}.{amount % 100:02d}",
                f"ZCY-{year}-{n + 1:04d}",
                "工会" if union else "线下",
            )
        )
    return buffer.getvalue().encode("utf-8-sig")
