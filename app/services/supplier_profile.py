"""A supplier's own profile: its story, county, members, contact and certificates.

Edited by the supplier's users, shown to buyers on the supplier's page. The name, code, kind
and region stay the administrator's (they are what invoices and pledges are keyed by).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import Session, joinedload, selectinload

from app.models import (
    CertificateKind,
    Organization,
    OrgKind,
    Product,
    ProductStatus,
    Role,
    SupplierCertificate,
)
from app.services.accounts import Actor
from app.services.errors import DomainError, NotFound
from app.signals import note_catalog_change

MAX_CERTIFICATES = 20


@dataclass(frozen=True)
class ProfileData:
    county_zh: str
    households_benefited: int
    cooperative_members: int
    story_zh: str
    story_en: str
    contact_name: str
    contact_phone: str
    contact_email: str
    address: str


def own_supplier(session: Session, actor: Actor) -> Organization:
    """The supplier the actor works for."""
    if not actor.has_role(Role.SUPPLIER) or actor.organization_id is None:
        raise DomainError(_l("Only a supplier's own users keep its profile."))
    org = session.scalar(
        sa.select(Organization)
        .where(Organization.id == actor.organization_id)
        .options(selectinload(Organization.certificates))
    )
    if org is None or org.kind != OrgKind.SUPPLIER:
        raise NotFound(_l("No such organization."))
    return org


def update_profile(session: Session, actor: Actor, data: ProfileData) -> Organization:
    org = own_supplier(session, actor)
    for name, value in vars(data).items():
        setattr(org, name, value.strip() if isinstance(value, str) else value)
    session.flush()
    note_catalog_change(session)  # product pages show the supplier's story
    return org


def add_certificate(
    session: Session,
    actor: Actor,
    *,
    kind: CertificateKind,
    name: str,
    number: str,
    issuer: str,
    valid_from: date | None,
    valid_until: date | None,
) -> SupplierCertificate:
    org = own_supplier(session, actor)
    if len(org.certificates) >= MAX_CERTIFICATES:
        raise DomainError(
            _l(
                "At most %(count)s certificates; remove an expired one first.",
                count=MAX_CERTIFICATES,
            )
        )
    if valid_from and valid_until and valid_until < valid_from:
        raise DomainError(_l("The end of validity is before its start."), field="valid_until")
    certificate = SupplierCertificate(
        kind=kind,
        name=name.strip(),
        number=number.strip(),
        issuer=issuer.strip(),
        valid_from=valid_from,
        valid_until=valid_until,
    )
    org.certificates.append(certificate)
    session.flush()
    note_catalog_change(session)
    return certificate


def remove_certificate(session: Session, actor: Actor, certificate_id: int) -> None:
    org = own_supplier(session, actor)
    certificate = next((c for c in org.certificates if c.id == certificate_id), None)
    if certificate is None:
        raise NotFound(_l("No such certificate."))
    org.certificates.remove(certificate)
    session.flush()
    note_catalog_change(session)


def public_supplier(session: Session, org_id: int) -> Organization:
    """A supplier as buyers see it: active suppliers only."""
    org = session.scalar(
        sa.select(Organization)
        .where(Organization.id == org_id)
        .options(selectinload(Organization.certificates))
    )
    if org is None or org.kind != OrgKind.SUPPLIER or not org.active:
        raise NotFound(_l("No such supplier."))
    return org


def products_on_sale(session: Session, org_id: int, limit: int = 12) -> tuple[list[Product], int]:
    """Up to `limit` of the supplier's products on sale, most popular first, and how many."""
    condition = sa.and_(Product.supplier_id == org_id, Product.status == ProductStatus.ACTIVE)
    total = session.scalar(sa.select(sa.func.count(Product.id)).where(condition)) or 0
    products = list(
        session.scalars(
            sa.select(Product)
            .where(condition)
            .options(
                joinedload(Product.origin_region),
                joinedload(Product.supplier),
                selectinload(Product.photos),
            )
            .order_by(Product.popularity.desc(), Product.id.desc())
            .limit(limit)
        )
    )
    return products, total
