"""One-line builders of test data: each makes a valid object and takes overrides."""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import TypeVar

import pytest
import sqlalchemy as sa
from flask_babel import force_locale
from sqlalchemy.orm import Session
from werkzeug.security import generate_password_hash

from app.extensions import db
from app.models import (
    BankPayment,
    BulkOrder,
    BulkOrderEvent,
    BulkOrderLine,
    Category,
    DeliveryPlace,
    Invoice,
    InvoiceLine,
    InvoiceSequence,
    LedgerEntry,
    LedgerMonth,
    Notification,
    Organization,
    OrgKind,
    OutboxMessage,
    PaymentMethod,
    PriceTier,
    Product,
    ProductStatus,
    Region,
    RegionKind,
    Role,
    SupplierDelivery,
    SupplierType,
    Unit,
    User,
    UserRole,
)
from app.services import accounts, cart, orders, search
from app.services import canteen as bulk
from app.services.clock import local_date, utcnow

PASSWORD = "correct-horse-9"
T = TypeVar("T")


def cheap_password_hash(password: str) -> str:
    """A quick hash, for tests that make many users and log none of them in:
    monkeypatch.setattr(accounts, "generate_password_hash", cheap_password_hash)."""
    return generate_password_hash(password, method="pbkdf2:sha256:1")


_numbers = itertools.count(1)


@dataclass
class CanteenWorld:
    """A canteen with its buyer and manager, and two suppliers, each with a seller."""

    canteen: Organization
    buyer: User
    manager: User
    supplier_a: Organization
    seller_a: User
    supplier_b: Organization
    seller_b: User
    #: Supplier A, by the kg in cases of 5: 21.50 from 20 kg, 19.99 from 40 kg; 2 days' notice.
    bacon: Product
    #: Supplier A, boxes in cases of 10: 45.80, 42.00 from 100 boxes; 3 days' notice.
    mushrooms: Product
    #: Supplier B, bags in cases of 5: 128.00 from 5 bags; 5 days' notice.
    tea: Product


class Builders:
    def __init__(self, session):
        self.session = session

    def _add(self, obj):
        # Committed (a savepoint release inside the test's transaction), so that a request that
        # rolls back its own work cannot take the test's data with it.
        self.session.add(obj)
        self.session.commit()
        return obj

    def region(self, code=None, kind=RegionKind.PAIRED, **overrides) -> Region:
        n = next(_numbers)
        return self._add(
            Region(
                code=code or f"region{n}",
                name_zh=overrides.pop("name_zh", f"地区{n}"),
                name_en=f"Region {n}",
                kind=kind,
                **overrides,
            )
        )

    def organization(self, kind=OrgKind.DEPARTMENT, **overrides) -> Organization:
        n = next(_numbers)
        values = {
            "code": f"ORG-{n}",
            "name_zh": f"单位{n}",
            "name_en": f"Org {n}",
            "created_at": utcnow(),
            **overrides,
        }
        return self._add(Organization(kind=kind, **values))

    def supplier(self, region=None, **overrides) -> Organization:
        return self.organization(
            OrgKind.SUPPLIER,
            region=region or self.region(),
            supplier_type=SupplierType.ENTERPRISE,
            households_benefited=120,
            **overrides,
        )

    def category(self, **overrides) -> Category:
        n = next(_numbers)
        values = {
            "slug": f"cat-{n}",
            "name_zh": f"类别{n}",
            "name_en": f"Category {n}",
            **overrides,
        }
        return self._add(Category(**values))

    def product(self, *, tiers=None, **overrides) -> Product:
        n = next(_numbers)
        supplier = overrides.pop("supplier", None) or self.supplier(
            region=overrides.get("origin_region")
        )
        now = utcnow()
        values = {
            "code": f"P-{n:05d}",
            "name_zh": f"测试产品{n}",
            "name_en": f"Test product {n}",
            "supplier": supplier,
            "origin_region": supplier.region,
            "category": overrides.pop("category", None) or self.category(),
            "status": ProductStatus.ACTIVE,
            "unit": Unit.BOX,
            "retail_price_fen": 2980,
            "stock": Decimal(50),
            "created_at": now - timedelta(minutes=n),
            "updated_at": now,
            **overrides,
        }
        product = Product(**values)
        search.refresh_search_text(product)
        if tiers:
            product.case_size = product.case_size or Decimal(10)
            product.min_bulk_quantity = product.min_bulk_quantity or Decimal(tiers[0][0])
            product.price_tiers = [
                PriceTier(min_quantity=Decimal(q), unit_price_fen=p) for q, p in tiers
            ]
        return self._add(product)

    def delivery_place(self, **overrides) -> DeliveryPlace:
        n = next(_numbers)
        values = {"building_zh": "市行政中心主楼", "room": f"{n}", **overrides}
        return self._add(DeliveryPlace(**values))

    def order(self, buyer=None, quantity="1", **product_overrides):
        """A placed order (pickup, pay at the counter) of one product for `buyer`."""
        buyer = buyer or self.user()
        product = self.product(**product_overrides)
        cart.add(self.session, buyer, product.id, quantity, utcnow())
        order = orders.place_order(self.session, buyer, utcnow())
        self.session.commit()
        return order

    def online_order(self, buyer=None, quantities=("1",), due=None, **product_overrides):
        """A placed order to be paid online (Stripe), one product per quantity given."""
        buyer = buyer or self.user()
        now = utcnow()
        for quantity in quantities:
            product = self.product(**product_overrides)
            cart.add(self.session, buyer, product.id, quantity, now)
        order = orders.place_order(
            self.session,
            buyer,
            now,
            payment_method=PaymentMethod.STRIPE,
            payment_due_at=due or now + timedelta(minutes=45),
        )
        self.session.commit()
        return order

    def user(self, roles=(Role.STAFF,), organization=None, password=PASSWORD, **overrides):
        n = next(_numbers)
        user = accounts.create_user(
            self.session,
            email=overrides.pop("email", f"user{n}@shanhai.demo"),
            name=overrides.pop("name", f"用户{n}"),
            password=password,
            roles=set(roles),
            organization=organization or self.organization(),
            now=utcnow(),
        )
        for key, value in overrides.items():
            setattr(user, key, value)
        self.session.commit()
        return user

    # --- canteen bulk procurement --------------------------------------------------------------

    def canteen(self, **overrides) -> Organization:
        """A canteen (the buyer of bulk orders), with the delivery address its orders start from."""
        n = next(_numbers)
        overrides.setdefault("name_zh", f"食堂{n}")
        overrides.setdefault("address", f"市行政中心{n}号楼一层食堂")
        return self.organization(OrgKind.CANTEEN, **overrides)

    def bulk_product(
        self,
        *,
        supplier=None,
        tiers=((10, 2000),),
        case_size="10",
        unit=Unit.KG,
        lead_time_days=2,
        **overrides,
    ) -> Product:
        """A product sold in bulk: whole cases of `case_size`, priced by `tiers` [(min, fen)].

        The bulk minimum is the first tier unless min_bulk_quantity is given.
        """
        return self.product(
            supplier=supplier or self.supplier(),
            tiers=list(tiers),
            case_size=Decimal(str(case_size)),
            unit=unit,
            lead_time_days=lead_time_days,
            **overrides,
        )

    def bulk_order(
        self,
        buyer,
        lines,
        *,
        now=None,
        delivery_date=None,
        submit=True,
        policy=None,
        po_reference="PO-2026-001",
    ):
        """A bulk order by `buyer` of `lines` [(product, quantity)], delivered in a week.

        Submitted unless submit=False: then released to the suppliers (one delivery each) when
        its total is at most the policy's approval threshold, else awaiting approval.
        Needs an application context (submitting notifies people).
        """
        now = now or utcnow()
        order = bulk.create_draft(
            self.session, buyer, now, {product.id: quantity for product, quantity in lines}
        )
        bulk.update_details(
            self.session,
            order,
            buyer,
            delivery_date=delivery_date or local_date(now) + timedelta(days=7),
            delivery_address=order.delivery_address,
            po_reference=po_reference,
            notes="",
        )
        if submit:
            bulk.submit(self.session, order, buyer, now, policy or bulk.CanteenPolicy())
        self.session.commit()
        return order

    def canteen_world(
        self, canteen_name="市行政中心食堂", supplier_a="竹溪山货合作社", supplier_b="达州茶业"
    ) -> CanteenWorld:
        kitchen = self.canteen(name_zh=canteen_name)
        first = self.supplier(name_zh=supplier_a)
        second = self.supplier(name_zh=supplier_b)
        return CanteenWorld(
            canteen=kitchen,
            buyer=self.user(roles={Role.CANTEEN_BUYER}, organization=kitchen, name="采购员"),
            manager=self.user(roles={Role.CANTEEN_MANAGER}, organization=kitchen, name="食堂经理"),
            supplier_a=first,
            seller_a=self.user(roles={Role.SUPPLIER}, organization=first),
            supplier_b=second,
            seller_b=self.user(roles={Role.SUPPLIER}, organization=second),
            bacon=self.bulk_product(
                supplier=first,
                name_zh="腊肉",
                tiers=[(20, 2150), (40, 1999)],
                case_size="5",
                lead_time_days=2,
            ),
            mushrooms=self.bulk_product(
                supplier=first,
                name_zh="香菇",
                unit=Unit.BOX,
                tiers=[(10, 4580), (100, 4200)],
                case_size="10",
                lead_time_days=3,
            ),
            tea=self.bulk_product(
                supplier=second,
                name_zh="绿茶",
                unit=Unit.BAG,
                tiers=[(5, 12800)],
                case_size="5",
                lead_time_days=5,
            ),
        )

    def shipped(self, delivery, seller, now=None, note_number="DN-0001"):
        """The supplier confirms its delivery in full and ships it."""
        now = now or utcnow()
        bulk.confirm(self.session, delivery, seller, now)
        bulk.ship(self.session, delivery, seller, now, note_number)
        self.session.commit()
        return delivery


# --- committed data for races between real threads on PostgreSQL -------------------------------


def postgres_engine(app) -> Iterator[sa.Engine]:
    """For a fixture: an engine of its own on the suite's PostgreSQL database.

    Skips on SQLite; fails instead in CI when TEST_DATABASE_URL is set, so the PostgreSQL run
    of CI never skips it.
    """
    with app.app_context():
        url = db.engine.url
    if url.get_backend_name() != "postgresql":
        if os.environ.get("CI", "").lower() == "true" and os.environ.get("TEST_DATABASE_URL"):
            pytest.fail(f"TEST_DATABASE_URL is set in CI but the suite runs on {url.drivername}")
        pytest.skip(
            "needs PostgreSQL (TEST_DATABASE_URL) for truly concurrent transactions; "
            "a sequential version of the race runs on SQLite"
        )
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    yield engine
    engine.dispose()


@contextmanager
def committed_canteen_world(app, engine: sa.Engine, prepare: Callable[[Builders, CanteenWorld], T]):
    """Make a CanteenWorld and what `prepare(make, world)` adds, committed for real (other
    connections see it); yield what `prepare` returned; then delete every region, category,
    organization and user made meanwhile, with everything that hangs on them."""
    marks = {}
    with engine.connect() as connection:
        for model in (Region, Category, Organization, User):
            marks[model] = connection.scalar(sa.select(sa.func.coalesce(sa.func.max(model.id), 0)))
    try:
        with app.app_context(), force_locale("en"), Session(engine) as session:
            make = Builders(session)
            result = prepare(make, make.canteen_world())
            session.commit()
        yield result
    finally:
        _erase_since(engine, marks)


@contextmanager
def ledger_erasable(connection: sa.Connection) -> Iterator[None]:
    """Let this transaction delete ledger entries, which the database otherwise refuses
    (migration 0010): only for tests that committed real rows and must clear them away."""
    if connection.dialect.name == "postgresql":
        # ALTER TABLE is transactional here: a failure rolls the trigger back on with the rest.
        toggle = "ALTER TABLE ledger_entries {} TRIGGER ledger_entries_append_only"
        connection.exec_driver_sql(toggle.format("DISABLE"))
        yield
        connection.exec_driver_sql(toggle.format("ENABLE"))
        return
    trigger = connection.exec_driver_sql(
        "SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = 'ledger_entries_no_delete'"
    ).scalar_one()
    connection.exec_driver_sql("DROP TRIGGER ledger_entries_no_delete")
    yield
    connection.exec_driver_sql(trigger)


def _erase_since(engine: sa.Engine, marks) -> None:
    organizations = sa.select(Organization.id).where(Organization.id > marks[Organization])
    users = sa.select(User.id).where(User.id > marks[User])
    orders = sa.select(BulkOrder.id).where(BulkOrder.organization_id.in_(organizations))
    billed = sa.select(Invoice.id).where(Invoice.supplier_id.in_(organizations))
    products = sa.select(Product.id).where(Product.supplier_id.in_(organizations))
    with engine.begin() as connection, ledger_erasable(connection):
        for statement in (
            # The test's own ledger rows first: they point at its orders, units and products.
            sa.delete(LedgerEntry).where(
                LedgerEntry.buyer_organization_id.in_(organizations)
                | LedgerEntry.bulk_order_id.in_(orders)
                | LedgerEntry.supplier_id.in_(organizations)
                | LedgerEntry.product_id.in_(products)
            ),
            sa.delete(LedgerMonth).where(
                LedgerMonth.buyer_organization_id.in_(organizations)
                | (LedgerMonth.origin_region_id > marks[Region])
            ),
            sa.delete(BankPayment).where(BankPayment.invoice_id.in_(billed)),
            sa.delete(InvoiceLine).where(InvoiceLine.invoice_id.in_(billed)),
            sa.delete(Invoice).where(Invoice.id.in_(billed), Invoice.corrects_id.is_not(None)),
            sa.delete(Invoice).where(Invoice.id.in_(billed)),
            sa.delete(InvoiceSequence).where(InvoiceSequence.supplier_id.in_(organizations)),
            sa.delete(BulkOrderEvent).where(BulkOrderEvent.order_id.in_(orders)),
            sa.delete(BulkOrderLine).where(BulkOrderLine.order_id.in_(orders)),
            sa.delete(SupplierDelivery).where(SupplierDelivery.order_id.in_(orders)),
            sa.delete(BulkOrder).where(BulkOrder.id.in_(orders)),
            sa.delete(OutboxMessage).where(
                OutboxMessage.to_address.in_(sa.select(User.email).where(User.id.in_(users)))
            ),
            sa.delete(Notification).where(Notification.user_id.in_(users)),
            sa.delete(UserRole).where(UserRole.user_id.in_(users)),
            sa.delete(User).where(User.id.in_(users)),
            sa.delete(PriceTier).where(PriceTier.product_id.in_(products)),
            sa.delete(Product).where(Product.id.in_(products)),
            sa.delete(Organization).where(Organization.id > marks[Organization]),
            sa.delete(Category).where(Category.id > marks[Category]),
            sa.delete(Region).where(Region.id > marks[Region]),
        ):
            connection.execute(statement)


# --- offline sales imports (app.services.sales_import) -----------------------------------------


@dataclass
class ImportWorld:
    """What an import file names: two regions, two buying units, a supplier of the catalog with
    one product, a 2026 pledge (so 2026 dates are inside one), and a coordinator."""

    dazhou: Region
    zhoushan: Region
    finance: Organization
    canteen: Organization
    supplier: Organization
    beef: Product
    pledge: object
    coordinator: User


def import_world(make: Builders) -> ImportWorld:
    from datetime import date

    from app.models import Pledge, PledgeKind

    dazhou = make.region(name_zh=f"达州{next(_numbers)}")
    zhoushan = make.region(kind=RegionKind.LOCAL, name_zh=f"舟山{next(_numbers)}")
    supplier = make.supplier(region=dazhou, name_zh=f"达州灯影坊{next(_numbers)}")
    now = utcnow()
    pledge = make._add(
        Pledge(
            name="2026年消费帮扶",
            kind=PledgeKind.FIXED,
            target_fen=53_000_000,
            period_start=date(2026, 1, 1),
            period_end=date(2026, 12, 31),
            created_at=now,
            updated_at=now,
        )
    )
    return ImportWorld(
        dazhou=dazhou,
        zhoushan=zhoushan,
        finance=make.organization(name_zh=f"市财政局{next(_numbers)}"),
        canteen=make.canteen(),
        supplier=supplier,
        beef=make.product(supplier=supplier, name_zh=f"灯影牛肉{next(_numbers)}"),
        pledge=pledge,
        coordinator=make.user(roles={Role.COORDINATOR}),
    )


SALES_HEADER = ("日期", "单位", "地区", "供应商", "商品", "金额", "参考号", "渠道")


def sales_csv(rows, header=SALES_HEADER, encoding="utf-8-sig") -> bytes:
    """An import file: the header, then each row (a tuple of cells) as written."""
    import csv
    import io

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue().encode(encoding)


def good_sales_rows(world: ImportWorld, prefix="ZCY-2026-") -> list[tuple]:
    """Three clean rows: a catalog product by code, one by name, one of a supplier outside the
    catalog (a union purchase)."""
    return [
        ("2026-03-02", world.finance.code, world.dazhou.code, "", world.beef.code, "1280.50",
         f"{prefix}0001", "线下"),
        ("2026/06/15", world.canteen.name_zh, world.dazhou.name_zh, world.supplier.name_zh,
         world.beef.name_zh, "2,400", f"{prefix}0002", ""),
        ("2026年9月20日", world.finance.code, world.zhoushan.code, "嵊泗海岛渔家",
         "嵊泗贻贝礼盒", "¥860.00", f"{prefix}0003", "工会"),
    ]  # fmt: skip


def staged_import(make: Builders, world: ImportWorld | None = None, source="zcy"):
    """A batch of the three good rows, waiting for review."""
    from app.services import sales_import

    world = world or import_world(make)
    rows = sales_import.read(
        "sales.csv", sales_csv(good_sales_rows(world)), max_bytes=10**6, max_rows=100
    )
    batch = sales_import.stage(make.session, world.coordinator, utcnow(), source, "sales.csv", rows)
    make.session.commit()
    return batch


# --- pledges (app.services.pledges) ------------------------------------------------------------


class _CoordinatorStandIn:
    """Who creates a test's pledges: the service only asks for the role."""

    id = None
    organization_id = None

    def has_role(self, *roles) -> bool:
        return Role.COORDINATOR in roles


def _pledge(
    self: Builders,
    *,
    name="2026年达州消费帮扶",
    kind=None,
    target_fen=53_000_000,
    start=None,
    end=None,
    organizations=(),
    regions=None,
    channels=(),
    declared_spending_fen=None,
    share_percent=None,
    public=False,
):
    """A pledge made through the service, committed: by default the 2026 calendar year,
    ¥530,000.00, every buying organization, one new region (pass `regions` to choose)."""
    from datetime import date

    from app.models import PledgeKind
    from app.services import pledges

    kind = kind or PledgeKind.FIXED
    pledge = pledges.create_pledge(
        self.session,
        _CoordinatorStandIn(),
        utcnow(),
        pledges.PledgeData(
            name=name,
            kind=kind,
            period_start=start or date(2026, 1, 1),
            period_end=end or date(2026, 12, 31),
            all_organizations=not organizations,
            organization_ids=[org.id for org in organizations],
            region_ids=[region.id for region in (regions or [self.region()])],
            channels=list(channels),
            target_fen=target_fen if kind == PledgeKind.FIXED else None,
            declared_spending_fen=declared_spending_fen,
            share_percent=share_percent,
            public=public,
        ),
    )
    self.session.commit()
    return pledge


Builders.pledge = _pledge


def create_public_pledge(session: Session, name: str):
    """A public pledge over this whole year, every unit, every region, made by the demo
    coordinator: the pledge page and the board draw its progress and breakdown bars."""
    from datetime import date

    from app.models import PledgeKind, Region, User
    from app.services import pledges
    from app.services.demo import DEMO_EMAIL_DOMAIN

    year = local_date(utcnow()).year
    coordinator = session.scalar(
        sa.select(User).where(User.email == f"coordinator@{DEMO_EMAIL_DOMAIN}")
    )
    data = pledges.PledgeData(
        name=name,
        kind=PledgeKind.FIXED,
        period_start=date(year, 1, 1),
        period_end=date(year, 12, 31),
        all_organizations=True,
        region_ids=list(session.scalars(sa.select(Region.id))),
        target_fen=10_000_000,
        public=True,
    )
    return pledges.create_pledge(session, coordinator, utcnow(), data)
