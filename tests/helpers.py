"""One-line builders of test data: each makes a valid object and takes overrides."""

from __future__ import annotations

import itertools
from datetime import timedelta
from decimal import Decimal

from app.models import (
    Category,
    DeliveryPlace,
    Organization,
    OrgKind,
    PaymentMethod,
    PriceTier,
    Product,
    ProductStatus,
    Region,
    RegionKind,
    Role,
    SupplierType,
    Unit,
)
from app.services import accounts, cart, orders
from app.services.clock import utcnow

PASSWORD = "correct-horse-9"
_numbers = itertools.count(1)


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
