"""Retail orders: the cart, orders with their line snapshots, and the audit of every transition."""

from __future__ import annotations

import enum
from datetime import datetime
from decimal import Decimal

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.models.base import Base, Quantity, str_enum
from app.models.catalog import Product, Unit


class CartLine(Base):
    """What a staff member means to buy; kept in the database so it follows them across devices."""

    __tablename__ = "cart_lines"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"))
    product_id: Mapped[int] = mapped_column(sa.ForeignKey("products.id", ondelete="CASCADE"))
    quantity: Mapped[Decimal] = mapped_column(Quantity)
    added_at: Mapped[datetime]

    product: Mapped[Product] = relationship(lazy="joined")

    __table_args__ = (
        sa.UniqueConstraint("user_id", "product_id"),
        sa.CheckConstraint("quantity > 0", name="quantity_positive"),
        sa.Index("ix_cart_lines_user", "user_id"),
    )


class FulfilmentStatus(enum.StrEnum):
    PLACED = "placed"
    READY = "ready"
    HANDED_OVER = "handed_over"
    CANCELLED = "cancelled"

    @property
    def label(self):
        return {
            FulfilmentStatus.PLACED: _l("Placed"),
            FulfilmentStatus.READY: _l("Ready for pickup"),
            FulfilmentStatus.HANDED_OVER: _l("Handed over"),
            FulfilmentStatus.CANCELLED: _l("Cancelled"),
        }[self]


class PaymentStatus(enum.StrEnum):
    UNPAID = "unpaid"
    PAID = "paid"

    @property
    def label(self):
        return {PaymentStatus.UNPAID: _l("Not paid"), PaymentStatus.PAID: _l("Paid")}[self]


class PaymentMethod(enum.StrEnum):
    COUNTER = "counter"  # paid at the counter when picked up

    @property
    def label(self):
        return {PaymentMethod.COUNTER: _l("Pay at the counter")}[self]


class Fulfilment(enum.StrEnum):
    COUNTER_PICKUP = "counter_pickup"
    OFFICE_DELIVERY = "office_delivery"

    @property
    def label(self):
        return {
            Fulfilment.COUNTER_PICKUP: _l("Pick up at the Dazhou produce counter"),
            Fulfilment.OFFICE_DELIVERY: _l("Delivery to my office"),
        }[self]


class DeliveryPlace(Base):
    """An office the counter delivers to, from the list the admin keeps."""

    __tablename__ = "delivery_places"

    id: Mapped[int] = mapped_column(primary_key=True)
    building_zh: Mapped[str] = mapped_column(sa.String(64))
    room: Mapped[str] = mapped_column(sa.String(32))
    active: Mapped[bool] = mapped_column(default=True)

    __table_args__ = (sa.UniqueConstraint("building_zh", "room"),)

    @property
    def address(self) -> str:
        return f"{self.building_zh} {self.room}"


class Order(Base):
    __tablename__ = "orders"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: Read aloud at the counter: the local date and the id, e.g. 261127-00042.
    number: Mapped[str] = mapped_column(sa.String(20), unique=True)
    #: Six digits the buyer shows at the counter.
    pickup_code: Mapped[str] = mapped_column(sa.String(6), index=True)
    buyer_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"), index=True)
    #: The budget unit the purchase counts for, fixed when the order is placed.
    buyer_organization_id: Mapped[int | None] = mapped_column(sa.ForeignKey("organizations.id"))
    status: Mapped[FulfilmentStatus] = mapped_column(str_enum(FulfilmentStatus))
    payment_status: Mapped[PaymentStatus] = mapped_column(str_enum(PaymentStatus))
    payment_method: Mapped[PaymentMethod] = mapped_column(str_enum(PaymentMethod))
    fulfilment: Mapped[Fulfilment] = mapped_column(str_enum(Fulfilment))
    delivery_place_id: Mapped[int | None] = mapped_column(sa.ForeignKey("delivery_places.id"))
    #: The address as it was when ordered; renaming a place never moves an old order.
    delivery_address: Mapped[str] = mapped_column(sa.String(128), default="")
    total_fen: Mapped[int]
    placed_at: Mapped[datetime]
    paid_at: Mapped[datetime | None]
    paid_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))

    lines: Mapped[list[OrderLine]] = relationship(
        back_populates="order", cascade="all, delete-orphan", order_by="OrderLine.id"
    )
    events: Mapped[list[OrderEvent]] = relationship(
        back_populates="order", cascade="all, delete-orphan", order_by="OrderEvent.id"
    )

    __table_args__ = (
        sa.CheckConstraint("total_fen >= 0", name="total_not_negative"),
        sa.Index("ix_orders_status_placed", "status", "placed_at"),
    )


class OrderLine(Base):
    """A snapshot of what was bought, as it was: later catalog edits never rewrite it."""

    __tablename__ = "order_lines"

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(sa.ForeignKey("orders.id", ondelete="CASCADE"))
    product_id: Mapped[int] = mapped_column(sa.ForeignKey("products.id"))
    product_code: Mapped[str] = mapped_column(sa.String(32))
    name_zh: Mapped[str] = mapped_column(sa.String(128))
    name_en: Mapped[str] = mapped_column(sa.String(128), default="")
    unit: Mapped[Unit] = mapped_column(str_enum(Unit))
    unit_price_fen: Mapped[int]
    quantity: Mapped[Decimal] = mapped_column(Quantity)
    #: unit price x quantity, rounded half up to the fen (app.services.money.line_total).
    total_fen: Mapped[int]
    origin_region_id: Mapped[int] = mapped_column(sa.ForeignKey("regions.id"))
    origin_region_name_zh: Mapped[str] = mapped_column(sa.String(64))
    supplier_id: Mapped[int] = mapped_column(sa.ForeignKey("organizations.id"))
    supplier_name_zh: Mapped[str] = mapped_column(sa.String(128))

    order: Mapped[Order] = relationship(back_populates="lines")

    __table_args__ = (
        sa.CheckConstraint("quantity > 0", name="quantity_positive"),
        sa.CheckConstraint("unit_price_fen > 0", name="unit_price_positive"),
        sa.Index("ix_order_lines_order", "order_id"),
    )


class OrderEvent(Base):
    """One transition of an order (who, when, from, to): the order page's timeline."""

    __tablename__ = "order_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(sa.ForeignKey("orders.id", ondelete="CASCADE"))
    actor_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    #: "status" or "payment": which of the order's two state machines moved.
    machine: Mapped[str] = mapped_column(sa.String(16))
    from_state: Mapped[str | None] = mapped_column(sa.String(32))
    to_state: Mapped[str] = mapped_column(sa.String(32))
    at: Mapped[datetime]
    note: Mapped[str] = mapped_column(sa.String(255), default="")

    order: Mapped[Order] = relationship(back_populates="events")

    __table_args__ = (sa.Index("ix_order_events_order", "order_id"),)
