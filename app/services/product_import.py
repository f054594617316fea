"""A supplier's listings from a file: create new products and update existing ones by code.

Every row goes through app.services.listings.parse_listing, the check the web form uses, and
the whole file is checked before anything is saved: a file with any bad line is refused with
every bad line named, and nothing of it is kept. A clean file is then saved row by row through
listings.create / listings.edit, so the review rules are the same as for the form (new products
and large price changes wait for a coordinator).

When a row updates a product, the columns the file leaves out keep the product's current
values (a price list with code and retail_price only changes prices); a column that is present
but empty is taken as empty.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import Session, selectinload

from app.models import Product, ProductStatus
from app.services import listings, sheets
from app.services.accounts import Actor
from app.services.errors import DomainError, LineErrors
from app.services.pricing import fmt_quantity

Progress = Callable[[int], None]

#: Header texts accepted per column (the first is the one in the template and in messages).
HEADERS: dict[str, tuple[str, ...]] = {
    "code": ("商品编码", "编码", "code", "product code"),
    "name_zh": ("商品名称", "名称", "name_zh", "name"),
    "name_en": ("英文名称", "name_en", "english name"),
    "category": ("品类", "类别", "category"),
    "origin": ("产地", "origin", "region"),
    "unit": ("单位", "unit"),
    "retail_price": ("零售价", "零售价(元)", "retail_price", "price"),
    "content_amount": ("净含量", "content_amount"),
    "content_unit": ("净含量单位", "content_unit"),
    "case_size": ("每箱数量", "箱规", "case_size"),
    "min_bulk_quantity": ("最小起订量", "min_bulk_quantity"),
    "tiers": ("阶梯价", "tiers"),
    "lead_time_days": ("备货天数", "lead_time_days"),
    "shelf_life_days": ("保质期(天)", "保质期", "shelf_life_days"),
    "storage_zh": ("储存条件", "storage", "storage_zh"),
    "county_zh": ("县区", "county", "county_zh"),
    "cooperative_zh": ("合作社", "cooperative", "cooperative_zh"),
    "households_benefited": ("带动农户数", "households_benefited"),
    "certifications": ("认证", "certifications"),
    "description_zh": ("商品描述", "description_zh", "description"),
    "description_en": ("英文描述", "description_en"),
}
REQUIRED = ("code",)
#: Needed to create a product (an update may leave them out).
NEEDED_FOR_NEW = ("name_zh", "category", "origin", "unit", "retail_price")

CLI_MAX_BYTES = 50 * 1024 * 1024
CLI_MAX_ROWS = 100_000


@dataclass(frozen=True)
class ImportReport:
    created: int = 0
    updated: int = 0
    waiting_for_review: int = 0
    unchanged: int = 0

    @property
    def rows(self) -> int:
        return self.created + self.updated + self.unchanged


def read(filename: str, data: bytes, *, max_bytes: int, max_rows: int) -> sheets.Table:
    return sheets.read_table(
        filename,
        data,
        headers=HEADERS,
        required=REQUIRED,
        max_bytes=max_bytes,
        max_rows=max_rows,
        no_rows_message=_l("The file has no product rows under its header."),
    )


def _as_text(listing: listings.Listing) -> dict[str, str]:
    """A saved listing as the text a file would hold, to fill the columns a file leaves out."""
    return {
        "code": listing.code,
        **{name: getattr(listing, name) for name in listings.TEXT_FIELDS},
        "category": str(listing.category_id),
        "origin": str(listing.origin_region_id),
        "unit": listing.unit.value,
        "retail_price": f"{listing.retail_price_fen / 100:.2f}",
        "content_amount": str(listing.content_amount or ""),
        "content_unit": listing.content_unit.value if listing.content_unit else "",
        "case_size": fmt_quantity(listing.case_size) if listing.case_size else "",
        "min_bulk_quantity": (
            fmt_quantity(listing.min_bulk_quantity) if listing.min_bulk_quantity else ""
        ),
        "tiers": "; ".join(f"{fmt_quantity(q)}:{p / 100:.2f}" for q, p in listing.tiers),
        "lead_time_days": str(listing.lead_time_days),
        "shelf_life_days": str(listing.shelf_life_days or ""),
        "households_benefited": str(listing.households_benefited),
    }


def _latest(session: Session, product: Product) -> listings.Listing:
    """What the supplier last saved: a version waiting for review, else the product."""
    pending = listings.pending_revision(session, product.id)
    return (
        listings.Listing.from_data(pending.data)
        if pending
        else listings.Listing.of_product(product)
    )


def _message(errors: dict) -> str:
    labels = {name: headers[0] for name, headers in HEADERS.items()}
    return "; ".join(f"{labels.get(name, name)}: {message}" for name, message in errors.items())


def check(
    session: Session,
    actor: Actor,
    table: sheets.Table,
    progress: Progress | None = None,
) -> list[tuple[Product | None, listings.Listing]]:
    """Every row as (the product it updates or None, its listing), or LineErrors naming every
    bad line."""
    supplier_id = actor.organization_id
    codes = {row.values.get("code", "").strip().upper() for row in table.rows}
    existing = {
        product.code: product
        for chunk in _chunks(sorted(codes))
        for product in session.scalars(
            sa.select(Product)
            .where(Product.code.in_(chunk))
            .options(selectinload(Product.price_tiers))
        )
    }
    choices = listings.ListingChoices.load(session)
    seen: dict[str, int] = {}
    errors: dict[int, str] = {}
    planned = []
    for row in table.rows:
        code = row.values.get("code", "").strip().upper()
        product = existing.get(code)
        if code and code in seen:
            errors[row.line] = str(
                _l("Product code %(code)s is also on line %(line)s.", code=code, line=seen[code])
            )
            continue
        seen[code] = row.line
        if product is not None and product.supplier_id != supplier_id:
            errors[row.line] = str(
                _l("Product code %(code)s belongs to another supplier.", code=code)
            )
            continue
        if product is not None and product.status == ProductStatus.ARCHIVED:
            errors[row.line] = str(
                _l("Product %(code)s is off sale; put it back on sale first.", code=code)
            )
            continue
        if product is None:
            missing = [name for name in NEEDED_FOR_NEW if name not in table.columns]
            if missing:
                errors[row.line] = str(
                    _l(
                        "%(code)s is a new product: the file needs the columns %(columns)s.",
                        code=code or "—",
                        columns=", ".join(HEADERS[name][0] for name in missing),
                    )
                )
                continue
            raw = dict(row.values)
        else:
            raw = {**_as_text(_latest(session, product)), **row.values}
        try:
            planned.append((product, listings.parse_listing(raw, choices)))
        except LineErrors as error:
            errors[row.line] = _message(error.errors)
        if progress:
            progress(1)
    if errors:
        raise LineErrors(errors, _l("The file cannot be imported; nothing was saved."))
    return planned


def apply(
    session: Session,
    actor: Actor,
    planned: list[tuple[Product | None, listings.Listing]],
    now: datetime,
    percent: int,
    progress: Progress | None = None,
) -> ImportReport:
    created = updated = waiting = unchanged = 0
    for product, listing in planned:
        if product is None:
            listings.create(session, actor, listing, now, tell=False)
            created += 1
            waiting += 1
        elif listing == _latest(session, product):
            unchanged += 1
        else:
            revision = listings.edit(session, product, actor, listing, now, percent, tell=False)
            updated += 1
            waiting += bool(revision.review_reasons)
        if progress:
            progress(1)
    listings.tell_coordinators_of_import(session, actor.organization_id, waiting, now)
    return ImportReport(created, updated, waiting, unchanged)


def import_file(
    session: Session,
    actor: Actor,
    filename: str,
    data: bytes,
    now: datetime,
    *,
    percent: int,
    max_bytes: int,
    max_rows: int,
) -> ImportReport:
    """Read, check and save a file in the caller's transaction (the caller commits)."""
    if actor.organization_id is None:
        raise DomainError(_l("Only a supplier's own users keep its listings."))
    table = read(filename, data, max_bytes=max_bytes, max_rows=max_rows)
    return apply(session, actor, check(session, actor, table), now, percent)


def template_csv() -> bytes:
    """An import file with every column and one example row, UTF-8 with a BOM for Excel."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([headers[0] for headers in HEADERS.values()])
    example = {
        "code": "DZ-TEA-01",
        "name_zh": "巴山雀舌 明前绿茶",
        "name_en": "Bashan Queshe green tea",
        "category": "茶叶",
        "origin": "达州",
        "unit": "盒",
        "retail_price": "128.00",
        "content_amount": "250",
        "content_unit": "克",
        "case_size": "20",
        "min_bulk_quantity": "20",
        "tiers": "20:118.00; 100:110.00",
        "lead_time_days": "3",
        "shelf_life_days": "540",
        "storage_zh": "阴凉干燥处",
        "county_zh": "万源市",
        "cooperative_zh": "",
        "households_benefited": "120",
        "certifications": "富硒",
        "description_zh": "",
        "description_en": "",
    }
    writer.writerow([example[name] for name in HEADERS])
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")


def _chunks(items: list, size: int = 500):
    for start in range(0, len(items), size):
        yield items[start : start + size]
