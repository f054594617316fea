"""The produce catalog: categories, products, their bulk price tiers, photos and revisions."""

from __future__ import annotations

import enum
from datetime import datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import Mapped, mapped_column, relationship, validates

from app.models.accounts import User
from app.models.base import Base, Quantity, str_enum
from app.models.organizations import Organization, Region
from app.pinyin import pinyin_keys


class Unit(enum.StrEnum):
    """The unit one retail price buys."""

    JIN = "jin"
    KG = "kg"
    BOX = "box"
    BOTTLE = "bottle"
    CASE = "case"
    BAG = "bag"
    PIECE = "piece"

    @property
    def label(self):
        # A module-level table, not a dict built per call: a 2,000-row order sheet asks 2,000 times.
        return _UNIT_LABELS[self]

    @property
    def is_weight(self) -> bool:
        """Weight units may be bought in tenths (2.5 斤); the others only whole."""
        return self in (Unit.JIN, Unit.KG)


_UNIT_LABELS = {
    Unit.JIN: _l("jin"),
    Unit.KG: _l("kg"),
    Unit.BOX: _l("box"),
    Unit.BOTTLE: _l("bottle"),
    Unit.CASE: _l("case"),
    Unit.BAG: _l("bag"),
    Unit.PIECE: _l("piece"),
}


class ContentUnit(enum.StrEnum):
    """What the net content of one packaged unit is measured in."""

    GRAM = "g"
    MILLILITRE = "ml"
    PIECE = "piece"


class ProductStatus(enum.StrEnum):
    DRAFT = "draft"
    PENDING_REVIEW = "pending_review"
    ACTIVE = "active"
    ARCHIVED = "archived"

    @property
    def label(self):
        return {
            ProductStatus.DRAFT: _l("Draft"),
            ProductStatus.PENDING_REVIEW: _l("Pending review"),
            ProductStatus.ACTIVE: _l("On sale"),
            ProductStatus.ARCHIVED: _l("Archived"),
        }[self]


class Category(Base):
    __tablename__ = "categories"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(sa.String(48), unique=True)
    name_zh: Mapped[str] = mapped_column(sa.String(64))
    name_en: Mapped[str] = mapped_column(sa.String(64), default="")
    sort_order: Mapped[int] = mapped_column(default=0)


class Product(Base):
    __tablename__ = "products"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: The supplier's article code, unique across the catalog; used by imports and order sheets.
    code: Mapped[str] = mapped_column(sa.String(32), unique=True)
    supplier_id: Mapped[int] = mapped_column(sa.ForeignKey("organizations.id"), index=True)
    origin_region_id: Mapped[int] = mapped_column(sa.ForeignKey("regions.id"))
    category_id: Mapped[int] = mapped_column(sa.ForeignKey("categories.id"))
    status: Mapped[ProductStatus] = mapped_column(
        str_enum(ProductStatus), default=ProductStatus.DRAFT
    )

    name_zh: Mapped[str] = mapped_column(sa.String(128))
    name_en: Mapped[str] = mapped_column(sa.String(128), default="")
    #: Derived from name_zh whenever it is set; see app.pinyin.
    name_pinyin: Mapped[str] = mapped_column(sa.String(512), default="")
    name_initials: Mapped[str] = mapped_column(sa.String(128), default="")
    search_keys: Mapped[str] = mapped_column(sa.Text, default="")
    #: What a search matches on the product itself, lower-cased in one string: names, code,
    #: pinyin keys (app.services.search keeps it current; suppliers, origins and categories
    #: are matched by name there and their products by id).
    search_text: Mapped[str] = mapped_column(sa.Text, default="")
    description_zh: Mapped[str] = mapped_column(sa.Text, default="")
    description_en: Mapped[str] = mapped_column(sa.Text, default="")

    unit: Mapped[Unit] = mapped_column(str_enum(Unit))
    retail_price_fen: Mapped[int]
    #: Net content of one unit, for the price per 斤 / litre / piece beside the pack price.
    content_amount: Mapped[int | None]
    content_unit: Mapped[ContentUnit | None] = mapped_column(str_enum(ContentUnit))
    stock: Mapped[Decimal] = mapped_column(Quantity, default=Decimal(0))
    #: At or below this the supplier's dashboard flags the product; None: never flagged.
    low_stock_threshold: Mapped[Decimal | None] = mapped_column(Quantity)
    #: Units sold so far; drives the "popular" sort.
    popularity: Mapped[int] = mapped_column(default=0)
    featured: Mapped[bool] = mapped_column(default=False)

    # Bulk (canteen) terms: offered when case_size is set.
    case_size: Mapped[Decimal | None] = mapped_column(Quantity)
    min_bulk_quantity: Mapped[Decimal | None] = mapped_column(Quantity)
    lead_time_days: Mapped[int] = mapped_column(default=2)

    # Traceability, printed on the product page.
    county_zh: Mapped[str] = mapped_column(sa.String(64), default="")
    cooperative_zh: Mapped[str] = mapped_column(sa.String(128), default="")
    households_benefited: Mapped[int] = mapped_column(default=0)
    certifications: Mapped[str] = mapped_column(sa.String(255), default="")
    shelf_life_days: Mapped[int | None]
    storage_zh: Mapped[str] = mapped_column(sa.String(128), default="")

    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    supplier: Mapped[Organization] = relationship()
    origin_region: Mapped[Region] = relationship()
    category: Mapped[Category] = relationship()
    price_tiers: Mapped[list[PriceTier]] = relationship(
        back_populates="product",
        cascade="all, delete-orphan",
        order_by="PriceTier.min_quantity",
    )
    #: The first is the main photo.
    photos: Mapped[list[ProductPhoto]] = relationship(
        back_populates="product",
        cascade="all, delete-orphan",
        order_by="(ProductPhoto.position, ProductPhoto.id)",
    )

    __table_args__ = (
        sa.CheckConstraint("stock >= 0", name="stock_not_negative"),
        sa.CheckConstraint("retail_price_fen > 0", name="retail_price_positive"),
        sa.CheckConstraint("popularity >= 0", name="popularity_not_negative"),
        sa.CheckConstraint("case_size IS NULL OR case_size > 0", name="case_size_positive"),
        sa.CheckConstraint("content_amount IS NULL OR content_amount > 0", name="content_positive"),
        sa.CheckConstraint(
            "low_stock_threshold IS NULL OR low_stock_threshold >= 0",
            name="low_stock_threshold_not_negative",
        ),
        # A net content needs its unit and a unit its amount: the product page shows both.
        sa.CheckConstraint(
            "(content_amount IS NULL) = (content_unit IS NULL)", name="content_amount_with_unit"
        ),
        # The catalog pages filter by status first, then by one of these and sort.
        sa.Index("ix_products_status_region", "status", "origin_region_id"),
        sa.Index("ix_products_status_category", "status", "category_id"),
        sa.Index("ix_products_status_created", "status", "created_at"),
        sa.Index("ix_products_status_popularity", "status", "popularity"),
        sa.Index("ix_products_status_price", "status", "retail_price_fen"),
    )

    @validates("name_zh")
    def _derive_pinyin(self, _key: str, name: str) -> str:
        self.name_pinyin, self.name_initials, self.search_keys = pinyin_keys(name)
        return name

    @property
    def offers_bulk(self) -> bool:
        return self.case_size is not None and bool(self.price_tiers)

    @property
    def main_photo(self) -> ProductPhoto | None:
        return self.photos[0] if self.photos else None

    @property
    def stock_is_low(self) -> bool:
        return self.low_stock_threshold is not None and self.stock <= self.low_stock_threshold

    def __repr__(self) -> str:
        return f"<Product {self.code} {self.name_zh}>"


class PriceTier(Base):
    """Bulk price per unit once an order line reaches min_quantity."""

    __tablename__ = "price_tiers"

    id: Mapped[int] = mapped_column(primary_key=True)
    product_id: Mapped[int] = mapped_column(sa.ForeignKey("products.id", ondelete="CASCADE"))
    min_quantity: Mapped[Decimal] = mapped_column(Quantity)
    unit_price_fen: Mapped[int]

    product: Mapped[Product] = relationship(back_populates="price_tiers")

    __table_args__ = (
        sa.UniqueConstraint("product_id", "min_quantity"),
        sa.CheckConstraint("min_quantity > 0", name="min_quantity_positive"),
        sa.CheckConstraint("unit_price_fen > 0", name="unit_price_positive"),
    )


class StockReason(enum.StrEnum):
    ORDER = "order"  # taken by an order being placed
    ORDER_RELEASED = "order_released"  # given back by a cancelled or expired order
    ADJUSTMENT = "adjustment"  # a supplier's or coordinator's correction

    @property
    def label(self):
        return {
            StockReason.ORDER: _l("Ordered"),
            StockReason.ORDER_RELEASED: _l("Order released"),
            StockReason.ADJUSTMENT: _l("Adjustment"),
        }[self]


class StockMovement(Base):
    """One change of a product's stock: append-only, so every level can be explained."""

    __tablename__ = "stock_movements"

    id: Mapped[int] = mapped_column(primary_key=True)
    product_id: Mapped[int] = mapped_column(sa.ForeignKey("products.id"), index=True)
    #: Positive when stock comes in, negative when it goes out.
    change: Mapped[Decimal] = mapped_column(Quantity)
    reason: Mapped[StockReason] = mapped_column(str_enum(StockReason))
    #: What caused it, for the audit trail: an order number, "supplier count", ...
    reference: Mapped[str] = mapped_column(sa.String(64), default="")
    actor_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    created_at: Mapped[datetime]

    __table_args__ = (sa.CheckConstraint("change <> 0", name="change_not_zero"),)


class ProductPhoto(Base):
    """One uploaded photo, stored re-encoded in several sizes under a generated key.

    The files live in PHOTO_DIR, outside the code tree, named by `key` only: nothing the
    uploader chose (file name, extension, content type) is kept or ever served.
    """

    __tablename__ = "product_photos"

    id: Mapped[int] = mapped_column(primary_key=True)
    product_id: Mapped[int] = mapped_column(
        sa.ForeignKey("products.id", ondelete="CASCADE"), index=True
    )
    #: 0 is the main photo; the supplier reorders them.
    position: Mapped[int] = mapped_column(default=0)
    key: Mapped[str] = mapped_column(sa.String(40), unique=True)
    #: Of the largest stored size, for the img tag's width and height.
    width: Mapped[int]
    height: Mapped[int]
    uploaded_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    created_at: Mapped[datetime]

    product: Mapped[Product] = relationship(back_populates="photos")

    __table_args__ = (
        sa.CheckConstraint("width > 0 AND height > 0", name="size_positive"),
        sa.CheckConstraint("position >= 0", name="position_not_negative"),
    )


class RevisionStatus(enum.StrEnum):
    PENDING = "pending"  # waits for a coordinator
    APPROVED = "approved"  # applied to the product (by a coordinator, or needing no review)
    RETURNED = "returned"  # sent back to the supplier with a comment
    WITHDRAWN = "withdrawn"  # replaced by a newer edit before anyone reviewed it

    @property
    def label(self):
        return {
            RevisionStatus.PENDING: _l("Awaiting review"),
            RevisionStatus.APPROVED: _l("Approved"),
            RevisionStatus.RETURNED: _l("Sent back"),
            RevisionStatus.WITHDRAWN: _l("Withdrawn"),
        }[self]


class ProductRevision(Base):
    """A supplier's version of a listing: the whole set of fields it proposed.

    Buyers see the product row, which is the last approved version; a revision waiting for
    review changes nothing they see until a coordinator approves it. Every edit leaves one,
    approved at once when it needs no review, so the listing's history can be read back.
    """

    __tablename__ = "product_revisions"

    id: Mapped[int] = mapped_column(primary_key=True)
    product_id: Mapped[int] = mapped_column(
        sa.ForeignKey("products.id", ondelete="CASCADE"), index=True
    )
    status: Mapped[RevisionStatus] = mapped_column(str_enum(RevisionStatus))
    #: The listing's fields as proposed (JSON-safe: money in fen, quantities as strings).
    data: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    #: Why it needs a coordinator: ["new"], ["retail_price"], ["tier_price"]; [] when it does not.
    review_reasons: Mapped[list[str]] = mapped_column(sa.JSON, default=list)
    submitted_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    submitted_at: Mapped[datetime]
    reviewed_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    reviewed_at: Mapped[datetime | None]
    review_comment: Mapped[str] = mapped_column(sa.Text, default="")

    product: Mapped[Product] = relationship()
    submitted_by: Mapped[User | None] = relationship(foreign_keys=[submitted_by_id])
    reviewed_by: Mapped[User | None] = relationship(foreign_keys=[reviewed_by_id])

    __table_args__ = (
        # At most one version waits per product: a new edit withdraws the one before.
        sa.Index(
            "uq_product_revisions_one_pending",
            "product_id",
            unique=True,
            sqlite_where=sa.text("status = 'pending'"),
            postgresql_where=sa.text("status = 'pending'"),
        ),
        sa.Index("ix_product_revisions_status_submitted", "status", "submitted_at"),
    )
