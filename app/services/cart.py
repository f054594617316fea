"""The staff member's cart: what they mean to buy, with prices always taken from the catalog."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import Session

from app.models import CartLine, Organization, Product, ProductStatus, Unit
from app.services.accounts import Actor
from app.services.errors import DomainError, NotFound
from app.services.money import line_total

#: The most of one product a staff member may have in the cart: a shop, not a warehouse.
MAX_LINE_QUANTITY = Decimal(999)


def parse_quantity(raw: str | Decimal | int, unit: Unit) -> Decimal:
    """A quantity as the unit allows it: whole boxes, bottles, eggs; tenths of a 斤 or kg."""
    try:
        quantity = Decimal(str(raw).strip())
    except (InvalidOperation, ValueError):
        raise DomainError(_l("Enter a number."), field="quantity") from None
    if not quantity.is_finite() or quantity <= 0:
        raise DomainError(_l("Enter a quantity above zero."), field="quantity")
    if quantity > MAX_LINE_QUANTITY:
        raise DomainError(_l("At most %(n)d at a time.", n=MAX_LINE_QUANTITY), field="quantity")
    places = Decimal("0.1") if unit.is_weight else Decimal(1)
    if quantity != quantity.quantize(places):
        if unit.is_weight:
            raise DomainError(_l("Weights go in tenths, e.g. 2.5."), field="quantity")
        raise DomainError(_l("This is sold in whole units."), field="quantity")
    return quantity


def _buyable(session: Session, product_id: int) -> Product:
    product = session.get(Product, product_id)
    if (
        product is None
        or product.status != ProductStatus.ACTIVE
        or not session.get(Organization, product.supplier_id).active
    ):
        raise NotFound(_l("This product does not exist or is no longer on sale."))
    return product


def _check_stock(product: Product, quantity: Decimal) -> None:
    if quantity > product.stock:
        if product.stock <= 0:
            raise DomainError(_l("Sold out."), field="quantity")
        raise DomainError(
            _l("Only %(n)s left.", n=f"{product.stock.normalize():f}"), field="quantity"
        )


def _line(session: Session, user_id: int, product_id: int) -> CartLine | None:
    return session.scalar(
        sa.select(CartLine).where(CartLine.user_id == user_id, CartLine.product_id == product_id)
    )


def add(session: Session, buyer: Actor, product_id: int, raw_quantity, now: datetime) -> CartLine:
    """Put a product in the cart, or more of it if it is there already."""
    product = _buyable(session, product_id)
    quantity = parse_quantity(raw_quantity, product.unit)
    if _line(session, buyer.id, product_id) is None:
        _check_stock(product, quantity)
        try:
            with session.begin_nested():
                line = CartLine(
                    user_id=buyer.id, product_id=product_id, quantity=quantity, added_at=now
                )
                session.add(line)
            return line
        except sa.exc.IntegrityError:
            pass  # added in another tab at the same moment: add to that line below
    # One UPDATE adds to whatever the line holds when it runs: two tabs adding at once both
    # count (a read-then-write would lose one). The result is checked, and refused as a whole.
    line = _line(session, buyer.id, product_id)
    with session.begin_nested():  # a refused total leaves the line as it was
        session.execute(
            sa.update(CartLine)
            .where(CartLine.id == line.id)
            .values(quantity=sa.func.round(CartLine.quantity + quantity, 3))
            .execution_options(synchronize_session=False)
        )
        session.refresh(line, ["quantity"])
        _check_stock(product, parse_quantity(line.quantity, product.unit))
    return line


def set_quantity(session: Session, buyer: Actor, product_id: int, raw_quantity) -> None:
    line = _line(session, buyer.id, product_id)
    if line is None:
        raise NotFound(_l("This product is not in your cart."))
    quantity = parse_quantity(raw_quantity, line.product.unit)
    _check_stock(line.product, quantity)
    line.quantity = quantity
    session.flush()


def remove(session: Session, buyer: Actor, product_id: int) -> None:
    line = _line(session, buyer.id, product_id)
    if line is None:
        raise NotFound(_l("This product is not in your cart."))
    session.delete(line)
    session.flush()


@dataclass(frozen=True)
class CartItem:
    line: CartLine
    total_fen: int
    #: Set when the product can no longer be bought as the cart holds it.
    problem: str | None


@dataclass(frozen=True)
class CartView:
    items: list[CartItem]
    total_fen: int

    @property
    def can_check_out(self) -> bool:
        return bool(self.items) and not any(item.problem for item in self.items)


def view(session: Session, buyer: Actor) -> CartView:
    """The cart with today's prices and stock: prices always come from the catalog."""
    lines = session.scalars(
        sa.select(CartLine).where(CartLine.user_id == buyer.id).order_by(CartLine.added_at)
    ).all()
    items = []
    for line in lines:
        problem = None
        try:
            _buyable(session, line.product_id)
            _check_stock(line.product, line.quantity)
        except DomainError as error:
            problem = str(error.message)
        items.append(
            CartItem(line, line_total(line.product.retail_price_fen, line.quantity), problem)
        )
    return CartView(items, sum(item.total_fen for item in items if not item.problem))
