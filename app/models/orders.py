"""Retail orders: the cart, orders with their line snapshots, and the audit of every transition."""

from __future__ import annotations

import enum
from datetime import datetime
from decimal import Decimal

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.models.accounts import User
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
    PARTLY_REFUNDED = "partly_refunded"
    REFUNDED = "refunded"

    @property
    def label(self):
        return {
            PaymentStatus.UNPAID: _l("Not paid"),
            PaymentStatus.PAID: _l("Paid"),
            PaymentStatus.PARTLY_REFUNDED: _l("Partly refunded"),
            PaymentStatus.REFUNDED: _l("Refunded"),
        }[self]


class PaymentMethod(enum.StrEnum):
    COUNTER = "counter"  # paid at the counter when picked up
    STRIPE = "stripe"  # paid online through a Stripe Checkout Session

    @property
    def label(self):
        return {
            PaymentMethod.COUNTER: _l("Pay at the counter"),
            PaymentMethod.STRIPE: _l("Pay online (card, Alipay, WeChat Pay)"),
        }[self]


class RefundKind(enum.StrEnum):
    #: A clerk or coordinator refunded lines, or the buyer cancelled a paid order.
    REQUESTED = "requested"
    #: Money arrived for an order that was already cancelled or paid: sent straight back.
    LATE_PAYMENT = "late_payment"
    #: Stripe reported a refund that was not made here (e.g. from the Stripe Dashboard).
    EXTERNAL = "external"

    @property
    def label(self):
        return {
            RefundKind.REQUESTED: _l("Refund"),
            RefundKind.LATE_PAYMENT: _l("Late payment refunded automatically"),
            RefundKind.EXTERNAL: _l("Refund made in Stripe"),
        }[self]


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
    #: Online orders hold their stock until then; unpaid after it, they are released.
    payment_due_at: Mapped[datetime | None]
    #: The Checkout Session the buyer was last sent to, and where to send them again.
    stripe_session_id: Mapped[str | None] = mapped_column(sa.String(255), index=True)
    stripe_session_url: Mapped[str | None] = mapped_column(sa.Text)
    #: Numbers the Checkout Session attempts, so that a retry after an error Stripe answered
    #: uses a fresh idempotency key (Stripe replays a saved error for a reused key).
    checkout_attempt: Mapped[int] = mapped_column(default=0, server_default="0")
    stripe_payment_intent_id: Mapped[str | None] = mapped_column(sa.String(255), index=True)
    #: What has gone back to the buyer of what they paid for this order.
    refunded_fen: Mapped[int] = mapped_column(default=0, server_default="0")

    buyer: Mapped[User] = relationship(foreign_keys=[buyer_id])
    lines: Mapped[list[OrderLine]] = relationship(
        back_populates="order", cascade="all, delete-orphan", order_by="OrderLine.id"
    )
    events: Mapped[list[OrderEvent]] = relationship(
        back_populates="order", cascade="all, delete-orphan", order_by="OrderEvent.id"
    )

    __table_args__ = (
        sa.CheckConstraint("total_fen >= 0", name="total_not_negative"),
        sa.CheckConstraint(
            "refunded_fen >= 0 AND refunded_fen <= total_fen", name="refund_within_total"
        ),
        sa.Index("ix_orders_status_placed", "status", "placed_at"),
        sa.Index("ix_orders_payment_due", "payment_status", "payment_due_at"),
    )

    @property
    def awaits_online_payment(self) -> bool:
        return (
            self.payment_method == PaymentMethod.STRIPE
            and self.payment_status == PaymentStatus.UNPAID
            and self.status == FulfilmentStatus.PLACED
        )

    @property
    def can_prepare(self) -> bool:
        """The counter prepares counter-paid orders at once, online ones once they are paid."""
        return not self.awaits_online_payment

    @property
    def refundable_lines(self) -> list[OrderLine]:
        if self.payment_status not in (PaymentStatus.PAID, PaymentStatus.PARTLY_REFUNDED):
            return []
        return [line for line in self.lines if line.refund_id is None]


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
    #: Set once, by a conditional UPDATE, when the line is refunded: a line is refunded once.
    refund_id: Mapped[int | None] = mapped_column(sa.ForeignKey("refunds.id"))

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


class Refund(Base):
    """Money sent back to a buyer: which order, how much, how, why, and by whom."""

    __tablename__ = "refunds"

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(sa.ForeignKey("orders.id", ondelete="CASCADE"))
    kind: Mapped[RefundKind] = mapped_column(str_enum(RefundKind))
    method: Mapped[PaymentMethod] = mapped_column(str_enum(PaymentMethod))
    amount_fen: Mapped[int]
    reason: Mapped[str] = mapped_column(sa.String(255), default="")
    #: The refund's id at Stripe ("re_..."), for Stripe payments.
    stripe_refund_id: Mapped[str | None] = mapped_column(sa.String(255))
    stripe_payment_intent_id: Mapped[str | None] = mapped_column(sa.String(255))
    actor_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    created_at: Mapped[datetime]

    order: Mapped[Order] = relationship()

    __table_args__ = (
        sa.CheckConstraint("amount_fen > 0", name="amount_positive"),
        sa.Index("ix_refunds_order", "order_id"),
        sa.Index("ix_refunds_created", "created_at"),
    )


class StripeEvent(Base):
    """Each webhook event Stripe sent, stored once: a replayed event id changes nothing."""

    __tablename__ = "stripe_events"

    id: Mapped[str] = mapped_column(sa.String(255), primary_key=True)
    type: Mapped[str] = mapped_column(sa.String(64))
    order_id: Mapped[int | None] = mapped_column(sa.ForeignKey("orders.id", ondelete="SET NULL"))
    #: What the event did here, in a word: "paid", "released", "ignored", ...
    outcome: Mapped[str] = mapped_column(sa.String(32))
    received_at: Mapped[datetime]
