"""Procurement pledges and the ledger their progress is summed from."""

from __future__ import annotations

import enum
from datetime import date, datetime
from decimal import Decimal

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.models.accounts import User
from app.models.base import Base, str_enum
from app.models.organizations import Organization, Region


class Channel(enum.StrEnum):
    CANTEEN_BULK = "canteen_bulk"
    STAFF_RETAIL = "staff_retail"
    UNION = "union"  # 工会 purchases, recorded elsewhere and imported
    OFFLINE = "offline"  # the counter's till, government purchasing platforms, ...

    @property
    def label(self):
        return {
            Channel.CANTEEN_BULK: _l("Canteen bulk"),
            Channel.STAFF_RETAIL: _l("Staff retail"),
            Channel.UNION: _l("Union purchases"),
            Channel.OFFLINE: _l("Offline / imported"),
        }[self]


class LedgerSource(enum.StrEnum):
    RETAIL_LINE = "retail_line"  # a paid staff order line
    RETAIL_REFUND = "retail_refund"  # money back on a staff order
    BULK_LINE = "bulk_line"  # a canteen line signed off at goods-in
    CREDIT_NOTE = "credit_note"  # a correction of a canteen invoice
    IMPORT = "import"  # a sale recorded elsewhere
    IMPORT_REVERSAL = "import_reversal"
    CORRECTION = "correction"  # a coordinator's re-attribution

    @property
    def label(self):
        return {
            LedgerSource.RETAIL_LINE: _l("Staff order paid"),
            LedgerSource.RETAIL_REFUND: _l("Staff order refunded"),
            LedgerSource.BULK_LINE: _l("Canteen goods received"),
            LedgerSource.CREDIT_NOTE: _l("Credit note"),
            LedgerSource.IMPORT: _l("Imported sale"),
            LedgerSource.IMPORT_REVERSAL: _l("Import reversed"),
            LedgerSource.CORRECTION: _l("Correction"),
        }[self]


class LedgerEntry(Base):
    """One amount that counts (or, negative, stops counting) toward pledges. Append-only:
    app.services.ledger writes it in the transaction of the event; nothing updates or deletes it.
    """

    __tablename__ = "ledger_entries"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: The local (Asia/Shanghai) day the money moved: what pledge periods are compared with.
    occurred_on: Mapped[date] = mapped_column(sa.Date)
    recorded_at: Mapped[datetime]
    buyer_organization_id: Mapped[int] = mapped_column(sa.ForeignKey("organizations.id"))
    origin_region_id: Mapped[int] = mapped_column(sa.ForeignKey("regions.id"))
    supplier_id: Mapped[int | None] = mapped_column(sa.ForeignKey("organizations.id"))
    supplier_name: Mapped[str] = mapped_column(sa.String(128), default="")
    product_id: Mapped[int | None] = mapped_column(sa.ForeignKey("products.id"))
    product_name: Mapped[str] = mapped_column(sa.String(128), default="")
    category_id: Mapped[int | None] = mapped_column(sa.ForeignKey("categories.id"))
    channel: Mapped[Channel] = mapped_column(str_enum(Channel))
    amount_fen: Mapped[int]
    source: Mapped[LedgerSource] = mapped_column(str_enum(LedgerSource))
    #: What a person reads: an order number, an invoice number, a file's reference.
    source_reference: Mapped[str] = mapped_column(sa.String(128), default="")
    #: Where it leads: the order (retail or bulk) or import batch it came from.
    retail_order_id: Mapped[int | None] = mapped_column(sa.ForeignKey("orders.id"))
    bulk_order_id: Mapped[int | None] = mapped_column(sa.ForeignKey("bulk_orders.id"))
    import_batch_id: Mapped[int | None] = mapped_column(sa.ForeignKey("import_batches.id"))
    #: One event, one entry: a webhook replayed or a sign-off retried finds its key taken.
    dedupe_key: Mapped[str] = mapped_column(sa.String(200), unique=True)
    #: For imported sales: "<source>:<reference>", how a re-imported row is recognised.
    external_key: Mapped[str | None] = mapped_column(sa.String(200), index=True)
    reason: Mapped[str] = mapped_column(sa.String(255), default="")
    actor_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))

    buyer_organization: Mapped[Organization] = relationship(foreign_keys=[buyer_organization_id])
    origin_region: Mapped[Region] = relationship()
    actor: Mapped[User | None] = relationship()

    __table_args__ = (
        sa.CheckConstraint("amount_fen <> 0", name="amount_not_zero"),
        # The drill-down from a pledge: its units (or all), a period, newest first.
        sa.Index("ix_ledger_entries_org_day", "buyer_organization_id", "occurred_on"),
        sa.Index("ix_ledger_entries_day", "occurred_on"),
        sa.Index("ix_ledger_entries_retail_order", "retail_order_id"),
        sa.Index("ix_ledger_entries_bulk_order", "bulk_order_id"),
        sa.Index("ix_ledger_entries_import", "import_batch_id"),
    )


class LedgerMonth(Base):
    """The ledger summed per month and per everything a pledge filters or breaks down by.

    Written by app.services.ledger in the same statement sequence as each entry, so it always
    equals the sums over the ledger (a test and `flask ledger-check` compare them); it exists so
    that a pledge page reads a few thousand rows instead of a million entries.
    """

    __tablename__ = "ledger_months"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: The first day of the month.
    month: Mapped[date] = mapped_column(sa.Date)
    buyer_organization_id: Mapped[int] = mapped_column(sa.ForeignKey("organizations.id"))
    origin_region_id: Mapped[int] = mapped_column(sa.ForeignKey("regions.id"))
    channel: Mapped[Channel] = mapped_column(str_enum(Channel))
    #: "s<id>" for a supplier of the catalog, "n<name>" for one only named by an import.
    supplier_key: Mapped[str] = mapped_column(sa.String(140))
    supplier_name: Mapped[str] = mapped_column(sa.String(128), default="")
    product_key: Mapped[str] = mapped_column(sa.String(140))
    product_name: Mapped[str] = mapped_column(sa.String(128), default="")
    category_id: Mapped[int | None] = mapped_column(sa.ForeignKey("categories.id"))
    amount_fen: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    entries: Mapped[int] = mapped_column(default=0)

    __table_args__ = (
        sa.UniqueConstraint(
            "month",
            "buyer_organization_id",
            "origin_region_id",
            "channel",
            "supplier_key",
            "product_key",
            name="uq_ledger_months_group",
        ),
        sa.Index("ix_ledger_months_month_org", "month", "buyer_organization_id"),
    )


class PledgeKind(enum.StrEnum):
    FIXED = "fixed"  # a fixed amount: the canteen's 530,000 CNY plan
    SHARE = "share"  # a reserved share (预留份额) of a unit's declared annual canteen spending

    @property
    def label(self):
        return {
            PledgeKind.FIXED: _l("Fixed amount"),
            PledgeKind.SHARE: _l("Reserved share of canteen spending"),
        }[self]


pledge_organizations = sa.Table(
    "pledge_organizations",
    Base.metadata,
    sa.Column("pledge_id", sa.ForeignKey("pledges.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("organization_id", sa.ForeignKey("organizations.id"), primary_key=True),
)

pledge_regions = sa.Table(
    "pledge_regions",
    Base.metadata,
    sa.Column("pledge_id", sa.ForeignKey("pledges.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("region_id", sa.ForeignKey("regions.id"), primary_key=True),
)


class Pledge(Base):
    __tablename__ = "pledges"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(128))
    kind: Mapped[PledgeKind] = mapped_column(str_enum(PledgeKind))
    #: The target for a fixed pledge; for a share, declared spending x ratio (kept in step).
    target_fen: Mapped[int] = mapped_column(sa.BigInteger)
    declared_spending_fen: Mapped[int | None] = mapped_column(sa.BigInteger)
    #: Per cent, e.g. 15.00 for the encouraged 15 %.
    share_percent: Mapped[Decimal | None] = mapped_column(sa.Numeric(5, 2))
    #: Whole months: from the first day of one month to the last day of another.
    period_start: Mapped[date] = mapped_column(sa.Date)
    period_end: Mapped[date] = mapped_column(sa.Date)
    #: Comma-separated Channel values; empty means every channel.
    channels: Mapped[str] = mapped_column(sa.String(128), default="")
    #: Shown on the public board in the lobby.
    public: Mapped[bool] = mapped_column(default=False)
    notes: Mapped[str] = mapped_column(sa.Text, default="")
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    #: Empty: every buying organization.
    organizations: Mapped[list[Organization]] = relationship(
        secondary=pledge_organizations, order_by=Organization.name_zh
    )
    regions: Mapped[list[Region]] = relationship(secondary=pledge_regions, order_by=Region.id)

    __table_args__ = (
        sa.CheckConstraint("target_fen > 0", name="target_positive"),
        sa.CheckConstraint("period_end > period_start", name="period_ordered"),
    )

    @property
    def channel_set(self) -> frozenset[Channel]:
        return frozenset(Channel(c) for c in self.channels.split(",") if c)


class ImportStatus(enum.StrEnum):
    PENDING = "pending"  # read and checked, waiting for the coordinator to commit it
    COMMITTED = "committed"
    REVERSED = "reversed"
    DISCARDED = "discarded"

    @property
    def label(self):
        return {
            ImportStatus.PENDING: _l("Waiting for review"),
            ImportStatus.COMMITTED: _l("Counted"),
            ImportStatus.REVERSED: _l("Reversed"),
            ImportStatus.DISCARDED: _l("Discarded"),
        }[self]


class ImportBatch(Base):
    """One uploaded file of offline sales: reviewed, then counted, and reversible as a whole."""

    __tablename__ = "import_batches"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: Where the sales were recorded: "counter-till", "zcy" (政采云), ...; with each row's
    #: reference it recognises a row imported before.
    source: Mapped[str] = mapped_column(sa.String(64))
    filename: Mapped[str] = mapped_column(sa.String(255), default="")
    status: Mapped[ImportStatus] = mapped_column(str_enum(ImportStatus))
    rows_total: Mapped[int] = mapped_column(default=0)
    rows_new: Mapped[int] = mapped_column(default=0)
    rows_already_counted: Mapped[int] = mapped_column(default=0)
    amount_fen: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    created_at: Mapped[datetime]
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    committed_at: Mapped[datetime | None]
    reversed_at: Mapped[datetime | None]
    reversal_reason: Mapped[str] = mapped_column(sa.String(255), default="")

    created_by: Mapped[User | None] = relationship()
    rows: Mapped[list[ImportRow]] = relationship(
        back_populates="batch", cascade="all, delete-orphan", order_by="ImportRow.line"
    )


class ImportRow(Base):
    """A checked row of a batch, kept until it is committed (then it becomes a ledger entry)."""

    __tablename__ = "import_rows"

    id: Mapped[int] = mapped_column(primary_key=True)
    batch_id: Mapped[int] = mapped_column(sa.ForeignKey("import_batches.id", ondelete="CASCADE"))
    line: Mapped[int]
    occurred_on: Mapped[date] = mapped_column(sa.Date)
    buyer_organization_id: Mapped[int] = mapped_column(sa.ForeignKey("organizations.id"))
    origin_region_id: Mapped[int] = mapped_column(sa.ForeignKey("regions.id"))
    supplier_id: Mapped[int | None] = mapped_column(sa.ForeignKey("organizations.id"))
    supplier_name: Mapped[str] = mapped_column(sa.String(128), default="")
    product_id: Mapped[int | None] = mapped_column(sa.ForeignKey("products.id"))
    product_name: Mapped[str] = mapped_column(sa.String(128), default="")
    category_id: Mapped[int | None] = mapped_column(sa.ForeignKey("categories.id"))
    channel: Mapped[Channel] = mapped_column(str_enum(Channel))
    amount_fen: Mapped[int] = mapped_column(sa.BigInteger)
    reference: Mapped[str] = mapped_column(sa.String(128))
    #: Already counted by an earlier import of the same source and reference: skipped.
    already_counted: Mapped[bool] = mapped_column(default=False)

    batch: Mapped[ImportBatch] = relationship(back_populates="rows")
    buyer_organization: Mapped[Organization] = relationship(foreign_keys=[buyer_organization_id])
    origin_region: Mapped[Region] = relationship()

    __table_args__ = (sa.Index("ix_import_rows_batch", "batch_id"),)
