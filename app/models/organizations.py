"""Regions (origins of produce) and organizations (suppliers, canteens, departments, counters)."""

from __future__ import annotations

import enum
from datetime import date, datetime

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.models.base import Base, str_enum


class RegionKind(enum.StrEnum):
    PAIRED = "paired"  # the East-West cooperation partner (达州)
    LOCAL = "local"  # produce of the city itself (舟山)
    OTHER = "other"

    @property
    def label(self):
        return {
            RegionKind.PAIRED: _l("Paired region"),
            RegionKind.LOCAL: _l("Local"),
            RegionKind.OTHER: _l("Other"),
        }[self]


class OrgKind(enum.StrEnum):
    SUPPLIER = "supplier"
    CANTEEN = "canteen"
    DEPARTMENT = "department"
    COUNTER = "counter"
    CENTER = "center"  # the administration center itself: coordinators and admins

    @property
    def label(self):
        return {
            OrgKind.SUPPLIER: _l("Supplier"),
            OrgKind.CANTEEN: _l("Canteen"),
            OrgKind.DEPARTMENT: _l("Department"),
            OrgKind.COUNTER: _l("Counter"),
            OrgKind.CENTER: _l("Administration center"),
        }[self]


class SupplierType(enum.StrEnum):
    ENTERPRISE = "enterprise"
    COOPERATIVE = "cooperative"

    @property
    def label(self):
        return {
            SupplierType.ENTERPRISE: _l("Processing enterprise"),
            SupplierType.COOPERATIVE: _l("Cooperative"),
        }[self]


class Region(Base):
    __tablename__ = "regions"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: Short ascii code used in URLs and imports: "dazhou".
    code: Mapped[str] = mapped_column(sa.String(32), unique=True)
    name_zh: Mapped[str] = mapped_column(sa.String(64))
    name_en: Mapped[str] = mapped_column(sa.String(64), default="")
    province_zh: Mapped[str] = mapped_column(sa.String(64), default="")
    province_en: Mapped[str] = mapped_column(sa.String(64), default="")
    kind: Mapped[RegionKind] = mapped_column(str_enum(RegionKind), default=RegionKind.OTHER)
    sort_order: Mapped[int] = mapped_column(default=0)

    def __repr__(self) -> str:
        return f"<Region {self.code}>"


class Organization(Base):
    __tablename__ = "organizations"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(sa.String(32), unique=True)
    kind: Mapped[OrgKind] = mapped_column(str_enum(OrgKind), index=True)
    name_zh: Mapped[str] = mapped_column(sa.String(128))
    name_en: Mapped[str] = mapped_column(sa.String(128), default="")
    region_id: Mapped[int | None] = mapped_column(sa.ForeignKey("regions.id"), index=True)
    address: Mapped[str] = mapped_column(sa.String(255), default="")
    contact_name: Mapped[str] = mapped_column(sa.String(64), default="")
    contact_phone: Mapped[str] = mapped_column(sa.String(32), default="")
    contact_email: Mapped[str] = mapped_column(sa.String(254), default="")
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime]

    # Supplier facts, shown to buyers as the supplier's story and traceability.
    supplier_type: Mapped[SupplierType | None] = mapped_column(str_enum(SupplierType))
    county_zh: Mapped[str] = mapped_column(sa.String(64), default="")
    households_benefited: Mapped[int] = mapped_column(default=0)
    #: Members of the cooperative (or contracted farms of an enterprise).
    cooperative_members: Mapped[int] = mapped_column(default=0)
    certifications: Mapped[str] = mapped_column(sa.String(255), default="")
    story_zh: Mapped[str] = mapped_column(sa.Text, default="")
    story_en: Mapped[str] = mapped_column(sa.Text, default="")

    region: Mapped[Region | None] = relationship(lazy="joined")
    certificates: Mapped[list[SupplierCertificate]] = relationship(
        back_populates="organization",
        cascade="all, delete-orphan",
        order_by="(SupplierCertificate.valid_until, SupplierCertificate.id)",
    )

    __table_args__ = (
        sa.CheckConstraint("households_benefited >= 0", name="households_not_negative"),
        sa.CheckConstraint("cooperative_members >= 0", name="members_not_negative"),
    )

    def __repr__(self) -> str:
        return f"<Organization {self.code}>"


class CertificateKind(enum.StrEnum):
    GEOGRAPHIC_INDICATION = "geographic_indication"  # 地理标志
    SELENIUM_RICH = "selenium_rich"  # 富硒
    GREEN_FOOD = "green_food"  # 绿色食品
    ORGANIC = "organic"  # 有机产品
    OTHER = "other"

    @property
    def label(self):
        return {
            CertificateKind.GEOGRAPHIC_INDICATION: _l("Geographical indication"),
            CertificateKind.SELENIUM_RICH: _l("Selenium-rich"),
            CertificateKind.GREEN_FOOD: _l("Green food"),
            CertificateKind.ORGANIC: _l("Organic"),
            CertificateKind.OTHER: _l("Other certificate"),
        }[self]


class SupplierCertificate(Base):
    """A label the supplier holds (地理标志, 富硒, ...), shown to buyers with its validity."""

    __tablename__ = "supplier_certificates"

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(
        sa.ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[CertificateKind] = mapped_column(str_enum(CertificateKind))
    name: Mapped[str] = mapped_column(sa.String(128))
    number: Mapped[str] = mapped_column(sa.String(64), default="")
    issuer: Mapped[str] = mapped_column(sa.String(128), default="")
    valid_from: Mapped[date | None]
    valid_until: Mapped[date | None]

    organization: Mapped[Organization] = relationship(back_populates="certificates")

    __table_args__ = (
        sa.CheckConstraint(
            "valid_from IS NULL OR valid_until IS NULL OR valid_from <= valid_until",
            name="validity_in_order",
        ),
    )

    def valid_on(self, day: date) -> bool:
        return (self.valid_from is None or self.valid_from <= day) and (
            self.valid_until is None or day <= self.valid_until
        )
