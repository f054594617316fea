"""Canteen bulk procurement: bulk orders, their split per supplier, goods-in, invoices, payments.

A bulk order (BulkOrder) is drafted and submitted by a canteen buyer, approved by the canteen
manager when it is large, and split on release into one SupplierDelivery per supplier. Each
delivery is confirmed (or reduced) and shipped by its supplier, checked in by the canteen manager
with the quantities actually received, and then billed on one Invoice numbered in an unbroken
sequence per supplier. Corrections are credit notes; payments are bank transfers, several per
invoice allowed. Every move is recorded in BulkOrderEvent.
"""

from __future__ import annotations

import enum
from datetime import date, datetime
from decimal import Decimal

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.models.accounts import User
from app.models.base import Base, Quantity, str_enum
from app.models.catalog import Product, Unit
from app.models.organizations import Organization


class BulkOrderStatus(enum.StrEnum):
    DRAFT = "draft"
    AWAITING_APPROVAL = "awaiting_approval"
    REJECTED = "rejected"
    #: Released to the suppliers: each delivery now moves on its own.
    RELEASED = "released"
    #: Every delivery checked in (or cancelled): nothing more will arrive.
    COMPLETED = "completed"
    CANCELLED = "cancelled"

    @property
    def label(self):
        return {
            BulkOrderStatus.DRAFT: _l("Draft"),
            BulkOrderStatus.AWAITING_APPROVAL: _l("Awaiting approval"),
            BulkOrderStatus.REJECTED: _l("Rejected"),
            BulkOrderStatus.RELEASED: _l("With the suppliers"),
            BulkOrderStatus.COMPLETED: _l("Completed"),
            BulkOrderStatus.CANCELLED: _l("Cancelled"),
        }[self]


class DeliveryStatus(enum.StrEnum):
    NEW = "new"  # waiting for the supplier
    CHANGES_PROPOSED = "changes_proposed"  # the supplier can fill less; the buyer decides
    CONFIRMED = "confirmed"
    SHIPPED = "shipped"
    RECEIVED = "received"  # checked in and signed off by the canteen manager
    WITHDRAWN = "withdrawn"  # the buyer took the order back to edit it before confirmation
    CANCELLED = "cancelled"  # every line of it was cancelled

    @property
    def label(self):
        return {
            DeliveryStatus.NEW: _l("Waiting for the supplier"),
            DeliveryStatus.CHANGES_PROPOSED: _l("Supplier proposes less"),
            DeliveryStatus.CONFIRMED: _l("Confirmed"),
            DeliveryStatus.SHIPPED: _l("Shipped"),
            DeliveryStatus.RECEIVED: _l("Received"),
            DeliveryStatus.WITHDRAWN: _l("Withdrawn"),
            DeliveryStatus.CANCELLED: _l("Cancelled"),
        }[self]

    @property
    def is_open(self) -> bool:
        return self not in (
            DeliveryStatus.RECEIVED,
            DeliveryStatus.WITHDRAWN,
            DeliveryStatus.CANCELLED,
        )


class BulkOrder(Base):
    __tablename__ = "bulk_orders"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: "C" + local date + id: C261127-00042.
    number: Mapped[str] = mapped_column(sa.String(20), unique=True)
    #: The canteen the order is for and counts for, fixed when it is created.
    organization_id: Mapped[int] = mapped_column(sa.ForeignKey("organizations.id"), index=True)
    created_by_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"))
    status: Mapped[BulkOrderStatus] = mapped_column(
        str_enum(BulkOrderStatus), default=BulkOrderStatus.DRAFT
    )
    delivery_date: Mapped[date | None] = mapped_column(sa.Date)
    delivery_address: Mapped[str] = mapped_column(sa.String(255), default="")
    #: The canteen's own purchase-order reference, printed on the invoice.
    po_reference: Mapped[str] = mapped_column(sa.String(64), default="")
    notes: Mapped[str] = mapped_column(sa.Text, default="")
    #: Sum of the agreed line amounts at the frozen prices (0 while a draft).
    total_fen: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime]
    submitted_at: Mapped[datetime | None]
    submitted_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    approved_at: Mapped[datetime | None]
    approved_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))

    organization: Mapped[Organization] = relationship()
    created_by: Mapped[User] = relationship(foreign_keys=[created_by_id])
    submitted_by: Mapped[User | None] = relationship(foreign_keys=[submitted_by_id])
    lines: Mapped[list[BulkOrderLine]] = relationship(
        back_populates="order", cascade="all, delete-orphan", order_by="BulkOrderLine.id"
    )
    deliveries: Mapped[list[SupplierDelivery]] = relationship(
        back_populates="order", cascade="all, delete-orphan", order_by="SupplierDelivery.id"
    )
    events: Mapped[list[BulkOrderEvent]] = relationship(
        back_populates="order", cascade="all, delete-orphan", order_by="BulkOrderEvent.id"
    )

    __table_args__ = (
        sa.CheckConstraint("total_fen >= 0", name="total_not_negative"),
        sa.Index("ix_bulk_orders_status_delivery", "status", "delivery_date"),
    )

    @property
    def open_lines(self) -> list[BulkOrderLine]:
        return [line for line in self.lines if not line.cancelled]


class BulkOrderLine(Base):
    """One product of a bulk order. Priced live while a draft; frozen at submission."""

    __tablename__ = "bulk_order_lines"

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(sa.ForeignKey("bulk_orders.id", ondelete="CASCADE"))
    product_id: Mapped[int] = mapped_column(sa.ForeignKey("products.id"))
    delivery_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("supplier_deliveries.id", ondelete="SET NULL"), index=True
    )
    #: What is to be delivered now: as ordered, or as reduced with the buyer's consent.
    quantity: Mapped[Decimal] = mapped_column(Quantity)
    #: As submitted, kept when a reduction is accepted.
    ordered_quantity: Mapped[Decimal | None] = mapped_column(Quantity)
    #: A supplier's offer of less, waiting for the buyer to accept it or cancel the line.
    proposed_quantity: Mapped[Decimal | None] = mapped_column(Quantity)
    proposal_note: Mapped[str] = mapped_column(sa.String(255), default="")
    cancelled: Mapped[bool] = mapped_column(default=False)

    # Snapshot taken at submission; later catalog edits never change it.
    product_code: Mapped[str] = mapped_column(sa.String(32), default="")
    name_zh: Mapped[str] = mapped_column(sa.String(128), default="")
    name_en: Mapped[str] = mapped_column(sa.String(128), default="")
    unit: Mapped[Unit | None] = mapped_column(str_enum(Unit))
    unit_price_fen: Mapped[int | None]
    supplier_id: Mapped[int | None] = mapped_column(sa.ForeignKey("organizations.id"))
    supplier_name_zh: Mapped[str] = mapped_column(sa.String(128), default="")
    origin_region_id: Mapped[int | None] = mapped_column(sa.ForeignKey("regions.id"))
    origin_region_name_zh: Mapped[str] = mapped_column(sa.String(64), default="")

    # Goods-in: what the canteen accepted (billed) and refused, and why.
    received_quantity: Mapped[Decimal | None] = mapped_column(Quantity)
    rejected_quantity: Mapped[Decimal | None] = mapped_column(Quantity)
    goods_in_note: Mapped[str] = mapped_column(sa.String(255), default="")

    order: Mapped[BulkOrder] = relationship(back_populates="lines")
    product: Mapped[Product] = relationship()
    delivery: Mapped[SupplierDelivery | None] = relationship(back_populates="lines")

    __table_args__ = (
        sa.UniqueConstraint("order_id", "product_id"),
        sa.CheckConstraint("quantity > 0", name="quantity_positive"),
        sa.CheckConstraint("received_quantity IS NULL OR received_quantity >= 0", name="received"),
        sa.CheckConstraint("rejected_quantity IS NULL OR rejected_quantity >= 0", name="rejected"),
        sa.Index("ix_bulk_order_lines_order", "order_id"),
    )

    @property
    def ordered_total_fen(self) -> int | None:
        from app.services.money import line_total  # the one rounding rule

        if self.unit_price_fen is None:
            return None
        return line_total(self.unit_price_fen, self.quantity)


class SupplierDelivery(Base):
    """The part of a bulk order that one supplier fills: confirmed, shipped and received as one."""

    __tablename__ = "supplier_deliveries"

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(sa.ForeignKey("bulk_orders.id", ondelete="CASCADE"))
    supplier_id: Mapped[int] = mapped_column(sa.ForeignKey("organizations.id"), index=True)
    status: Mapped[DeliveryStatus] = mapped_column(
        str_enum(DeliveryStatus), default=DeliveryStatus.NEW
    )
    #: The supplier's delivery note number, given when shipping.
    delivery_note_number: Mapped[str] = mapped_column(sa.String(64), default="")
    shipping_note: Mapped[str] = mapped_column(sa.String(255), default="")
    created_at: Mapped[datetime]
    confirmed_at: Mapped[datetime | None]
    shipped_at: Mapped[datetime | None]
    received_at: Mapped[datetime | None]
    received_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))

    order: Mapped[BulkOrder] = relationship(back_populates="deliveries")
    supplier: Mapped[Organization] = relationship()
    received_by: Mapped[User | None] = relationship()
    lines: Mapped[list[BulkOrderLine]] = relationship(
        back_populates="delivery", order_by="BulkOrderLine.id"
    )

    __table_args__ = (sa.Index("ix_supplier_deliveries_status", "supplier_id", "status"),)

    @property
    def open_lines(self) -> list[BulkOrderLine]:
        return [line for line in self.lines if not line.cancelled]


class BulkOrderEvent(Base):
    """Who moved what, when, from which state to which, and why: the order's history."""

    __tablename__ = "bulk_order_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(sa.ForeignKey("bulk_orders.id", ondelete="CASCADE"))
    delivery_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("supplier_deliveries.id", ondelete="SET NULL")
    )
    actor_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    #: The action's name: "submit", "approve", "confirm", "ship", "receive", ...
    action: Mapped[str] = mapped_column(sa.String(32))
    from_state: Mapped[str | None] = mapped_column(sa.String(32))
    to_state: Mapped[str | None] = mapped_column(sa.String(32))
    reason: Mapped[str] = mapped_column(sa.String(500), default="")
    at: Mapped[datetime]

    order: Mapped[BulkOrder] = relationship(back_populates="events")
    actor: Mapped[User | None] = relationship()
    delivery: Mapped[SupplierDelivery | None] = relationship()

    __table_args__ = (sa.Index("ix_bulk_order_events_order", "order_id"),)


class InvoiceKind(enum.StrEnum):
    INVOICE = "invoice"
    CREDIT_NOTE = "credit_note"

    @property
    def label(self):
        return {InvoiceKind.INVOICE: _l("Invoice"), InvoiceKind.CREDIT_NOTE: _l("Credit note")}[
            self
        ]


class InvoiceSequence(Base):
    """The next number per supplier. Taken by an UPDATE in the issuing transaction, so a number
    is used exactly when its invoice is committed and the sequence has no gaps."""

    __tablename__ = "invoice_sequences"

    supplier_id: Mapped[int] = mapped_column(sa.ForeignKey("organizations.id"), primary_key=True)
    next_number: Mapped[int] = mapped_column(default=1)


class Invoice(Base):
    """A statement for one received delivery, or a credit note correcting one. Never edited."""

    __tablename__ = "invoices"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[InvoiceKind] = mapped_column(str_enum(InvoiceKind))
    supplier_id: Mapped[int] = mapped_column(sa.ForeignKey("organizations.id"))
    #: 1, 2, 3 ... per supplier, invoices and credit notes in one sequence.
    sequence_number: Mapped[int]
    #: Printed: supplier code + sequence, e.g. DZ-DENGYING-000007.
    number: Mapped[str] = mapped_column(sa.String(64), unique=True)
    delivery_id: Mapped[int] = mapped_column(sa.ForeignKey("supplier_deliveries.id"), index=True)
    #: For a credit note: the invoice it corrects.
    corrects_id: Mapped[int | None] = mapped_column(sa.ForeignKey("invoices.id"))
    buyer_organization_id: Mapped[int] = mapped_column(sa.ForeignKey("organizations.id"))
    #: Positive for an invoice, negative for a credit note.
    total_fen: Mapped[int]
    #: What bank transfers have settled (invoices only): paid to the supplier less what the
    #: supplier paid back. A refund never takes it below what is due, so it is never negative.
    paid_fen: Mapped[int] = mapped_column(default=0)
    reason: Mapped[str] = mapped_column(sa.String(255), default="")
    issued_at: Mapped[datetime]
    issued_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))

    supplier: Mapped[Organization] = relationship(foreign_keys=[supplier_id])
    buyer_organization: Mapped[Organization] = relationship(foreign_keys=[buyer_organization_id])
    delivery: Mapped[SupplierDelivery] = relationship()
    corrects: Mapped[Invoice | None] = relationship(remote_side=[id], back_populates="credit_notes")
    credit_notes: Mapped[list[Invoice]] = relationship(
        back_populates="corrects", order_by="Invoice.id"
    )
    lines: Mapped[list[InvoiceLine]] = relationship(
        back_populates="invoice", cascade="all, delete-orphan", order_by="InvoiceLine.id"
    )
    payments: Mapped[list[BankPayment]] = relationship(
        back_populates="invoice", order_by="BankPayment.id"
    )

    __table_args__ = (
        sa.UniqueConstraint("supplier_id", "sequence_number"),
        sa.CheckConstraint(
            "(kind = 'invoice' AND total_fen >= 0 AND corrects_id IS NULL)"
            " OR (kind = 'credit_note' AND total_fen < 0 AND corrects_id IS NOT NULL)",
            name="sign_by_kind",
        ),
        sa.CheckConstraint("paid_fen >= 0", name="paid_not_negative"),
        sa.Index("ix_invoices_supplier_issued", "supplier_id", "issued_at"),
    )

    @property
    def credited_fen(self) -> int:
        """What credit notes took off this invoice (a positive number)."""
        return -sum(note.total_fen for note in self.credit_notes)

    @property
    def due_fen(self) -> int:
        return self.total_fen - self.credited_fen

    @property
    def outstanding_fen(self) -> int:
        """Still to pay the supplier; negative when a credit note came after payment and the
        supplier owes that much back."""
        return self.due_fen - self.paid_fen

    @property
    def refund_due_fen(self) -> int:
        """What the supplier owes back (a positive number), 0 when it owes nothing."""
        return max(0, -self.outstanding_fen)

    @property
    def refunded_fen(self) -> int:
        """What the supplier has paid back so far (a positive number)."""
        return -sum(payment.amount_fen for payment in self.payments if payment.amount_fen < 0)


class InvoiceLine(Base):
    __tablename__ = "invoice_lines"

    id: Mapped[int] = mapped_column(primary_key=True)
    invoice_id: Mapped[int] = mapped_column(sa.ForeignKey("invoices.id", ondelete="CASCADE"))
    order_line_id: Mapped[int | None] = mapped_column(sa.ForeignKey("bulk_order_lines.id"))
    product_code: Mapped[str] = mapped_column(sa.String(32))
    name_zh: Mapped[str] = mapped_column(sa.String(128))
    unit: Mapped[Unit] = mapped_column(str_enum(Unit))
    ordered_quantity: Mapped[Decimal] = mapped_column(Quantity)
    #: Billed quantity: received on an invoice, the corrected part on a credit note.
    quantity: Mapped[Decimal] = mapped_column(Quantity)
    unit_price_fen: Mapped[int]
    #: quantity x unit price, rounded half up to the fen; negative on a credit note.
    amount_fen: Mapped[int]

    invoice: Mapped[Invoice] = relationship(back_populates="lines")


class BankPayment(Base):
    """A bank transfer against an invoice: finance paying the supplier (a positive amount; an
    invoice may be paid in parts), or the supplier paying back what a credit note took off an
    invoice already paid (a negative amount)."""

    __tablename__ = "bank_payments"

    id: Mapped[int] = mapped_column(primary_key=True)
    invoice_id: Mapped[int] = mapped_column(sa.ForeignKey("invoices.id"), index=True)
    paid_on: Mapped[date] = mapped_column(sa.Date)
    reference: Mapped[str] = mapped_column(sa.String(64))
    #: Positive: paid to the supplier; negative: paid back by the supplier.
    amount_fen: Mapped[int]
    recorded_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    recorded_at: Mapped[datetime]

    invoice: Mapped[Invoice] = relationship(back_populates="payments")
    recorded_by: Mapped[User | None] = relationship()

    __table_args__ = (sa.CheckConstraint("amount_fen <> 0", name="amount_not_zero"),)

    @property
    def is_refund(self) -> bool:
        return self.amount_fen < 0
