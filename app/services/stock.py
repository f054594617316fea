"""Stock: the one place where a product's stock changes.

Every change is one conditional UPDATE in the caller's transaction,

    UPDATE products SET stock = round(stock - :q, 3) WHERE id = :id AND stock >= :q

so two buyers (threads, processes or hosts) can never take the same last unit: the database
applies the updates one after the other, and the second finds the condition false. Nothing reads
the stock first and writes it back. Each change also appends a StockMovement row, so every
level can be explained. Orders, cancellations and a supplier's corrections all come here.

`round(..., 3)` matters on SQLite, which keeps NUMERIC as a binary float: 0.3 - 0.1 would leave
0.19999999999999998, and the last 0.2 kg could then never be sold.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal, InvalidOperation

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import Session

from app.models import Product, StockMovement, StockReason
from app.services.errors import DomainError, NotFound

QUANTUM = Decimal("0.001")
MAX_QUANTITY = Decimal("999999999")


class OutOfStock(DomainError):
    """Fewer units left than asked for (perhaps taken by someone else a moment ago)."""

    status_code = 409

    def __init__(self, product_id: int, requested: Decimal):
        super().__init__(_l("Not enough left in stock."), field="quantity")
        self.product_id = product_id
        self.requested = requested


def _positive(quantity: Decimal | int | str) -> Decimal:
    try:
        value = Decimal(quantity)
    except (InvalidOperation, TypeError, ValueError):
        raise DomainError(_l("Enter a quantity."), field="quantity") from None
    if not value.is_finite() or value <= 0 or value > MAX_QUANTITY:
        raise DomainError(_l("Enter a quantity above zero."), field="quantity")
    if value != value.quantize(QUANTUM):
        raise DomainError(_l("At most three decimals."), field="quantity")
    return value


def _record(session, product_id, change, reason, reference, actor_id, now) -> None:
    session.add(
        StockMovement(
            product_id=product_id,
            change=change,
            reason=reason,
            reference=reference[:64],
            actor_id=actor_id,
            created_at=now,
        )
    )


def take(
    session: Session,
    product_id: int,
    quantity: Decimal | int | str,
    *,
    now: datetime,
    reason: StockReason = StockReason.ORDER,
    reference: str = "",
    actor_id: int | None = None,
) -> None:
    """Take `quantity` out of stock, or raise OutOfStock and change nothing."""
    quantity = _positive(quantity)
    taken = session.execute(
        sa.update(Product)
        .where(Product.id == product_id, Product.stock >= quantity)
        .values(stock=sa.func.round(Product.stock - quantity, 3))
        .execution_options(synchronize_session="fetch")
    ).rowcount
    if taken != 1:
        if session.get(Product, product_id) is None:
            raise NotFound(_l("This product does not exist or is no longer on sale."))
        raise OutOfStock(product_id, quantity)
    _record(session, product_id, -quantity, reason, reference, actor_id, now)


def give_back(
    session: Session,
    product_id: int,
    quantity: Decimal | int | str,
    *,
    now: datetime,
    reason: StockReason = StockReason.ORDER_RELEASED,
    reference: str = "",
    actor_id: int | None = None,
) -> None:
    """Put `quantity` back into stock (a cancelled or expired order, goods received)."""
    quantity = _positive(quantity)
    updated = session.execute(
        sa.update(Product)
        .where(Product.id == product_id)
        .values(stock=sa.func.round(Product.stock + quantity, 3))
        .execution_options(synchronize_session="fetch")
    ).rowcount
    if updated != 1:
        raise NotFound(_l("This product does not exist or is no longer on sale."))
    _record(session, product_id, quantity, reason, reference, actor_id, now)


def adjust(
    session: Session,
    product_id: int,
    change: Decimal | int | str,
    *,
    now: datetime,
    actor_id: int | None,
    reference: str,
) -> None:
    """A correction by whoever keeps the stock: +40 received, -3 spoiled.

    Given as a change, not a new level: a level typed while an order takes units would undo
    that order's take. A correction below zero is refused like an order would be.
    """
    try:
        change = Decimal(change)
    except (InvalidOperation, TypeError, ValueError):
        raise DomainError(_l("Enter a quantity."), field="quantity") from None
    if change.is_finite() and change < 0:
        take(
            session,
            product_id,
            -change,
            now=now,
            reason=StockReason.ADJUSTMENT,
            reference=reference,
            actor_id=actor_id,
        )
    else:
        give_back(
            session,
            product_id,
            change,
            now=now,
            reason=StockReason.ADJUSTMENT,
            reference=reference,
            actor_id=actor_id,
        )
