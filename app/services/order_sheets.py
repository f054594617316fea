"""Turning an uploaded order sheet into a draft bulk order, or into a list of what is wrong.

The file is read by app.services.sheets; here each row's product (code, or exact Chinese name)
and quantity are checked against the catalog and the bulk rules. Every bad row is reported by
its line number in the file, and nothing is saved until the whole sheet is clean.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import Session, joinedload, selectinload

from app.models import BulkOrder, Organization, PriceTier, Product, ProductStatus
from app.services import canteen
from app.services.accounts import Actor
from app.services.errors import DomainError, LineErrors
from app.services.pricing import QuantityError, check_bulk_line, parse_quantity
from app.services.sheets import SheetRow


def _catalog(
    session: Session, rows: Sequence[SheetRow]
) -> tuple[dict[str, Product], dict[str, list[Product]]]:
    """The bulk products the sheet names, by lower-cased code and by exact name: one query for
    the whole sheet, and only for what it mentions (not the whole catalog)."""
    mentioned = {row.product for row in rows if row.product}
    if not mentioned:
        return {}, {}
    products = session.scalars(
        sa.select(Product)
        .join(Product.supplier)
        .where(
            Product.status == ProductStatus.ACTIVE,
            Organization.active.is_(True),
            sa.exists().where(PriceTier.product_id == Product.id),
            sa.or_(
                sa.func.lower(Product.code).in_({name.lower() for name in mentioned}),
                Product.name_zh.in_(mentioned),
            ),
        )
        .options(selectinload(Product.price_tiers), joinedload(Product.supplier))
    ).unique()
    by_code: dict[str, Product] = {}
    by_name: dict[str, list[Product]] = {}
    for product in products:
        by_code[product.code.lower()] = product
        by_name.setdefault(product.name_zh, []).append(product)
    return by_code, by_name


def resolve(session: Session, rows: Sequence[SheetRow]) -> dict[int, tuple[Product, object]]:
    """{product id: (product, quantity)} for a clean sheet; LineErrors keyed by line otherwise."""
    by_code, by_name = _catalog(session, rows)
    errors: dict[int, str] = {}
    chosen: dict[int, tuple[Product, object]] = {}
    first_line: dict[int, int] = {}
    for row in rows:
        if not row.product:
            errors[row.line] = str(_l("No product code or name."))
            continue
        product = by_code.get(row.product.lower())
        if product is None:
            named = by_name.get(row.product, [])
            if len(named) > 1:
                errors[row.line] = str(
                    _l(
                        "Several products are called %(name)s; use the product code.",
                        name=row.product,
                    )
                )
                continue
            product = named[0] if named else None
        if product is None:
            errors[row.line] = str(
                _l("Unknown product %(product)s (or not sold in bulk).", product=row.product)
            )
            continue
        try:
            quantity = parse_quantity(row.quantity)
            if quantity is None:
                raise QuantityError(_l("No quantity."))
            check_bulk_line(product, quantity)
        except QuantityError as error:
            errors[row.line] = f"{product.name_zh}: {error.message}"
            continue
        if product.id in first_line:
            errors[row.line] = str(
                _l(
                    "%(name)s is already on line %(line)d.",
                    name=product.name_zh,
                    line=first_line[product.id],
                )
            )
            continue
        first_line[product.id] = row.line
        chosen[product.id] = (product, quantity)
    if errors:
        raise LineErrors(errors, _l("The sheet has errors; nothing was saved."))
    if not chosen:
        raise DomainError(_l("The sheet has no lines."), field="sheet")
    return chosen


def draft_from_sheet(
    session: Session, actor: Actor, now: datetime, rows: Sequence[SheetRow]
) -> BulkOrder:
    chosen = resolve(session, rows)
    return canteen.create_draft(
        session, actor, now, {pid: quantity for pid, (_, quantity) in chosen.items()}
    )
