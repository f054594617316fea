"""Demo data: regions, suppliers, the canteen, the counter, 40+ products, one account per role.

Idempotent: whatever already exists (matched by code or e-mail) is left as it is, so running it
twice, or on a database people have been using, adds only what is missing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.models import (
    Category,
    CertificateKind,
    ContentUnit,
    DeliveryPlace,
    Organization,
    OrgKind,
    PriceTier,
    Product,
    ProductStatus,
    Region,
    RegionKind,
    Role,
    SupplierCertificate,
    SupplierType,
    Unit,
)
from app.services import accounts, demo_data, search
from app.signals import note_catalog_change

DEMO_EMAIL_DOMAIN = "shanhai.demo"

#: Buying and serving organizations of the administration center (not suppliers).
CENTER_ORGANIZATIONS = [
    {
        "code": "CENTER",
        "kind": OrgKind.CENTER,
        "name_zh": "舟山市机关事务管理中心",
        "name_en": "Zhoushan Government Offices Administration Center",
        "address": "舟山市新城市行政中心主楼",
    },
    {
        "code": "CANTEEN",
        "kind": OrgKind.CANTEEN,
        "name_zh": "市行政中心机关食堂",
        "name_en": "Administration Center Canteen",
        "address": "舟山市新城市行政中心主楼负一层",
    },
    {
        "code": "COUNTER",
        "kind": OrgKind.COUNTER,
        "name_zh": "东西部协作达州农产品专柜",
        "name_en": "Dazhou Produce Counter",
        "address": "市行政中心主楼超市入口",
    },
    {
        "code": "DEPT-OFFICE",
        "kind": OrgKind.DEPARTMENT,
        "name_zh": "市机关事务管理中心办公室",
        "name_en": "Administration Center General Office",
        "address": "主楼 5 楼",
    },
    {
        "code": "DEPT-DRC",
        "kind": OrgKind.DEPARTMENT,
        "name_zh": "市发展和改革委员会",
        "name_en": "Development and Reform Commission",
        "address": "主楼 8 楼",
    },
    {
        "code": "DEPT-FIN",
        "kind": OrgKind.DEPARTMENT,
        "name_zh": "市财政局",
        "name_en": "Finance Bureau",
        "address": "二号楼 3 楼",
    },
    {
        "code": "DEPT-AGRI",
        "kind": OrgKind.DEPARTMENT,
        "name_zh": "市农业农村局",
        "name_en": "Agriculture and Rural Affairs Bureau",
        "address": "二号楼 6 楼",
    },
    {
        "code": "DEPT-EDU",
        "kind": OrgKind.DEPARTMENT,
        "name_zh": "市教育局",
        "name_en": "Education Bureau",
        "address": "三号楼 2 楼",
    },
]

#: Offices the counter delivers to.
DELIVERY_PLACES = [
    ("市行政中心主楼", "501"),
    ("市行政中心主楼", "812"),
    ("市行政中心二号楼", "305"),
    ("市行政中心二号楼", "602"),
    ("市行政中心三号楼", "208"),
]

#: (e-mail local part, name, roles, organization code; None = the first Dazhou supplier)
DEMO_ACCOUNTS = [
    ("staff", "王晓燕", {Role.STAFF}, "DEPT-OFFICE"),
    ("buyer", "陈建国", {Role.CANTEEN_BUYER, Role.STAFF}, "CANTEEN"),
    ("manager", "李海峰", {Role.CANTEEN_MANAGER, Role.STAFF}, "CANTEEN"),
    ("supplier", "张德明", {Role.SUPPLIER}, None),
    ("clerk", "周丽娜", {Role.COUNTER_CLERK, Role.STAFF}, "COUNTER"),
    ("coordinator", "刘一鸣", {Role.COORDINATOR, Role.STAFF}, "CENTER"),
    ("admin", "管理员", {Role.ADMIN}, "CENTER"),
]


@dataclass
class SeedReport:
    created: dict[str, int] = field(default_factory=dict)
    accounts: list[tuple[str, str, bool]] = field(default_factory=list)  # email, roles, new?

    def count(self, kind: str) -> None:
        self.created[kind] = self.created.get(kind, 0) + 1


def _by_code(session: Session, model, code_attr: str) -> dict:
    return {getattr(row, code_attr): row for row in session.scalars(sa.select(model))}


def seed_demo(session: Session, *, password: str, now: datetime) -> SeedReport:
    report = SeedReport()

    regions = _by_code(session, Region, "code")
    for order, data in enumerate(demo_data.REGIONS):
        if data["code"] not in regions:
            regions[data["code"]] = Region(
                **{**data, "kind": RegionKind(data["kind"])}, sort_order=order
            )
            session.add(regions[data["code"]])
            report.count("regions")

    categories = _by_code(session, Category, "slug")
    for order, data in enumerate(demo_data.CATEGORIES):
        if data["slug"] not in categories:
            categories[data["slug"]] = Category(**data, sort_order=order)
            session.add(categories[data["slug"]])
            report.count("categories")
    session.flush()

    orgs = _by_code(session, Organization, "code")
    zhoushan = regions["zhoushan"]
    for data in CENTER_ORGANIZATIONS:
        if data["code"] not in orgs:
            orgs[data["code"]] = Organization(**data, region=zhoushan, created_at=now)
            session.add(orgs[data["code"]])
            report.count("organizations")
    for data in demo_data.SUPPLIERS:
        if data["code"] not in orgs:
            orgs[data["code"]] = Organization(
                code=data["code"],
                kind=OrgKind.SUPPLIER,
                name_zh=data["name_zh"],
                name_en=data["name_en"],
                region=regions[data["region"]],
                supplier_type=SupplierType(data["supplier_type"]),
                county_zh=data["county_zh"],
                households_benefited=data["households_benefited"],
                certifications=data["certifications_zh"],
                story_zh=data["story_zh"],
                story_en=data["story_en"],
                contact_name=data["contact_name"],
                contact_phone=data["contact_phone"],
                created_at=now,
            )
            session.add(orgs[data["code"]])
            report.count("suppliers")
    session.flush()

    existing_places = set(session.scalars(sa.select(DeliveryPlace.room)))
    for building, room in DELIVERY_PLACES:
        if room not in existing_places:
            session.add(DeliveryPlace(building_zh=building, room=room))
            report.count("delivery places")

    existing_products = set(session.scalars(sa.select(Product.code)))
    for index, data in enumerate(demo_data.PRODUCTS):
        if data["code"] in existing_products:
            continue
        # Spread creation times so that "newest first" has a visible order.
        created = now - timedelta(hours=6 * (len(demo_data.PRODUCTS) - index))
        session.add(_demo_product(data, orgs, regions, categories, created))
        report.count("products")
    session.flush()

    first_dazhou_supplier = next(s["code"] for s in demo_data.SUPPLIERS if s["region"] == "dazhou")
    for local_part, name, roles, org_code in DEMO_ACCOUNTS:
        email = f"{local_part}@{DEMO_EMAIL_DOMAIN}"
        role_names = ", ".join(sorted(r.value for r in roles))
        if accounts.find_user_by_email(session, email) is not None:
            report.accounts.append((email, role_names, False))
            continue
        accounts.create_user(
            session,
            email=email,
            name=name,
            password=password,
            roles=roles,
            organization=orgs[org_code or first_dazhou_supplier],
            now=now,
        )
        report.accounts.append((email, role_names, True))
        report.count("users")
    _seed_certificates(session, orgs, report)
    _seed_listing_for_review(session, orgs, categories, regions, now, report)
    if report.created:
        note_catalog_change(session)
    return report


#: A few labels the demo suppliers hold, with validity, for their public pages.
DEMO_CERTIFICATES = {
    "DZ-DENGYING": [
        (
            CertificateKind.GEOGRAPHIC_INDICATION,
            "达州灯影牛肉 地理标志证明商标",
            "第12345678号",
            "国家知识产权局",
            date(2021, 3, 1),
            date(2031, 2, 28),
        ),
    ],
    "DZ-WANYUAN-TEA": [
        (
            CertificateKind.SELENIUM_RICH,
            "万源富硒茶 富硒农产品认定",
            "SC-FX-2025-031",
            "四川省富硒产业协会",
            date(2025, 1, 1),
            date(2027, 12, 31),
        ),
        (
            CertificateKind.GEOGRAPHIC_INDICATION,
            "万源富硒茶 农产品地理标志",
            "AGI02193",
            "农业农村部",
            date(2018, 6, 1),
            None,
        ),
    ],
    "ZS-SHENGSI": [
        (
            CertificateKind.GREEN_FOOD,
            "嵊泗贻贝 绿色食品",
            "LB-15-2104331",
            "中国绿色食品发展中心",
            date(2024, 5, 1),
            date(2027, 4, 30),
        ),
    ],
}

#: A new listing by the demo supplier, waiting in the coordinators' review queue.
DEMO_LISTING_FOR_REVIEW = {
    "code": "DZ-0101",
    "name_zh": "麻辣牛肉干 礼盒",
    "name_en": "Spicy beef jerky gift box",
    "category": "cured",
    "origin": "dazhou",
    "unit": "box",
    "retail_price": "88.00",
    "content_amount": "400",
    "content_unit": "g",
    "lead_time_days": "3",
    "shelf_life_days": "240",
    "storage_zh": "常温避光保存",
    "county_zh": "通川区",
    "households_benefited": "60",
    "description_zh": "选用宣汉黄牛后腿肉，手工切条，二荆条辣椒与汉源花椒调味。",
    "description_en": "Hind-leg beef of Xuanhan cattle, cut by hand and seasoned with "
    "Erjingtiao chilli and Hanyuan pepper.",
}


def _seed_certificates(session: Session, orgs: dict, report: SeedReport) -> None:
    for code, certificates in DEMO_CERTIFICATES.items():
        org = orgs.get(code)
        if org is None or org.certificates:
            continue
        for kind, name, number, issuer, valid_from, valid_until in certificates:
            org.certificates.append(
                SupplierCertificate(
                    kind=kind,
                    name=name,
                    number=number,
                    issuer=issuer,
                    valid_from=valid_from,
                    valid_until=valid_until,
                )
            )
            report.count("certificates")


def _seed_listing_for_review(session, orgs, categories, regions, now, report) -> None:
    from app.services import listings

    data = DEMO_LISTING_FOR_REVIEW
    if session.scalar(sa.select(Product.id).where(Product.code == data["code"])) is not None:
        return
    seller = accounts.find_user_by_email(session, f"supplier@{DEMO_EMAIL_DOMAIN}")
    if seller is None:
        return
    raw = {
        **data,
        "category": str(categories[data["category"]].id),
        "origin": str(regions[data["origin"]].id),
    }
    listing = listings.parse_listing(raw, listings.ListingChoices.load(session))
    listings.create(session, seller, listing, now)
    report.count("listings for review")


def _demo_product(data: dict, orgs, regions, categories, created: datetime) -> Product:
    bulk = data.get("bulk")
    product = Product(
        code=data["code"],
        name_zh=data["name_zh"],
        name_en=data["name_en"],
        supplier=orgs[data["supplier"]],
        origin_region=regions[data["region"]],
        category=categories[data["category"]],
        status=ProductStatus.ACTIVE,
        unit=Unit(data["unit"]),
        retail_price_fen=data["retail_price_fen"],
        content_amount=data.get("content_amount"),
        content_unit=ContentUnit(data["content_unit"]) if data.get("content_unit") else None,
        stock=Decimal(data["stock"]),
        featured=data["featured"],
        popularity=data["popularity"],
        case_size=Decimal(bulk["case_size"]) if bulk else None,
        min_bulk_quantity=Decimal(bulk["min_quantity"]) if bulk else None,
        lead_time_days=data["lead_time_days"],
        county_zh=data["county_zh"],
        cooperative_zh=data["cooperative_zh"],
        households_benefited=data["households_benefited"],
        certifications=data["certifications_zh"],
        shelf_life_days=data["shelf_life_days"],
        storage_zh=data["storage_zh"],
        description_zh=data["description_zh"],
        description_en=data["description_en"],
        created_at=created,
        updated_at=created,
    )
    search.refresh_search_text(product)
    if bulk:
        product.price_tiers = [
            PriceTier(min_quantity=Decimal(qty), unit_price_fen=price)
            for qty, price in bulk["tiers"]
        ]
    return product
