"""Organizations and regions, as the admin area keeps them."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import Session

from app.models import Organization, OrgKind, Region, RegionKind, SupplierType
from app.services.accounts import Actor, ensure_an_administrator_remains, require_admin
from app.services.errors import DomainError, NotFound
from app.signals import note_catalog_change

_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$")


@dataclass
class OrganizationData:
    code: str
    kind: OrgKind
    name_zh: str
    name_en: str = ""
    region_id: int | None = None
    address: str = ""
    contact_name: str = ""
    contact_phone: str = ""
    supplier_type: SupplierType | None = None
    county_zh: str = ""
    households_benefited: int = 0
    certifications: str = ""
    story_zh: str = ""
    story_en: str = ""
    active: bool = True


def _check_code(code: str) -> str:
    code = code.strip()
    if not _CODE.match(code):
        raise DomainError(_l("Use 1-32 letters, digits, '-' or '_' for the code."), field="code")
    return code


def _fit(model, field: str, value: str) -> str:
    """The value stripped, refused if longer than its column holds."""
    value = value.strip()
    limit = model.__table__.c[field].type.length
    if limit and len(value) > limit:
        raise DomainError(_l("At most %(n)d characters.", n=limit), field=field)
    return value


def _apply(session: Session, org: Organization, data: OrganizationData) -> None:
    for field in (
        "name_zh",
        "name_en",
        "address",
        "contact_name",
        "contact_phone",
        "county_zh",
        "certifications",
    ):
        setattr(data, field, _fit(Organization, field, getattr(data, field)))
    if not data.name_zh.strip():
        raise DomainError(_l("Enter the Chinese name."), field="name_zh")
    if data.region_id is not None and session.get(Region, data.region_id) is None:
        raise DomainError(_l("Choose a region from the list."), field="region_id")
    if data.households_benefited < 0:
        raise DomainError(_l("Cannot be negative."), field="households_benefited")
    org.kind = data.kind
    org.name_zh = data.name_zh.strip()
    org.name_en = data.name_en.strip()
    org.region_id = data.region_id
    org.address = data.address.strip()
    org.contact_name = data.contact_name.strip()
    org.contact_phone = data.contact_phone.strip()
    is_supplier = data.kind == OrgKind.SUPPLIER
    org.supplier_type = data.supplier_type if is_supplier else None
    org.county_zh = data.county_zh.strip()
    org.households_benefited = data.households_benefited if is_supplier else 0
    org.certifications = data.certifications.strip()
    org.story_zh = data.story_zh.strip()
    org.story_en = data.story_en.strip()
    org.active = data.active


def create_organization(
    session: Session, actor: Actor, data: OrganizationData, now: datetime
) -> Organization:
    require_admin(actor)
    code = _check_code(data.code)
    if session.scalar(sa.select(Organization.id).where(Organization.code == code)):
        raise DomainError(_l("This code is already in use."), field="code")
    org = Organization(code=code, created_at=now)
    _apply(session, org, data)
    session.add(org)
    session.flush()
    note_catalog_change(session)
    return org


def update_organization(
    session: Session, actor: Actor, org: Organization, data: OrganizationData
) -> None:
    require_admin(actor)
    # The code is referenced by imports and never changes once created.
    _apply(session, org, data)
    session.flush()
    ensure_an_administrator_remains(session)
    note_catalog_change(session)


def get_organization(session: Session, org_id: int) -> Organization:
    org = session.get(Organization, org_id)
    if org is None:
        raise NotFound(_l("No such organization."))
    return org


def organizations_of_kind(session: Session, *kinds: OrgKind, active_only: bool = True):
    stmt = sa.select(Organization).where(Organization.kind.in_(kinds))
    if active_only:
        stmt = stmt.where(Organization.active.is_(True))
    return list(session.scalars(stmt.order_by(Organization.kind, Organization.name_zh)))


def all_regions(session: Session) -> list[Region]:
    return list(session.scalars(sa.select(Region).order_by(Region.sort_order, Region.id)))


def save_region(
    session: Session,
    actor: Actor,
    region: Region | None,
    *,
    code: str,
    name_zh: str,
    name_en: str,
    province_zh: str,
    province_en: str,
    kind: RegionKind,
) -> Region:
    require_admin(actor)
    code = _check_code(code).lower()
    name_zh, name_en = _fit(Region, "name_zh", name_zh), _fit(Region, "name_en", name_en)
    province_zh = _fit(Region, "province_zh", province_zh)
    province_en = _fit(Region, "province_en", province_en)
    if not name_zh.strip():
        raise DomainError(_l("Enter the Chinese name."), field="name_zh")
    clash = session.scalar(sa.select(Region).where(Region.code == code))
    if clash is not None and clash is not region:
        raise DomainError(_l("This code is already in use."), field="code")
    if region is None:
        region = Region(sort_order=len(all_regions(session)))
        session.add(region)
    region.code = code
    region.name_zh = name_zh.strip()
    region.name_en = name_en.strip()
    region.province_zh = province_zh.strip()
    region.province_en = province_en.strip()
    region.kind = kind
    session.flush()
    note_catalog_change(session)
    return region
