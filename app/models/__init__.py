"""All models, imported here so that Alembic and the app see the whole schema."""

from app.models.accounts import BULK_ROLES, Role, User, UserRole
from app.models.catalog import (
    Category,
    ContentUnit,
    PriceTier,
    Product,
    ProductStatus,
    StockMovement,
    StockReason,
    Unit,
)
from app.models.orders import (
    CartLine,
    DeliveryPlace,
    Fulfilment,
    FulfilmentStatus,
    Order,
    OrderEvent,
    OrderLine,
    PaymentMethod,
    PaymentStatus,
)
from app.models.organizations import Organization, OrgKind, Region, RegionKind, SupplierType

__all__ = [
    "BULK_ROLES",
    "CartLine",
    "Category",
    "ContentUnit",
    "DeliveryPlace",
    "Fulfilment",
    "FulfilmentStatus",
    "Order",
    "OrderEvent",
    "OrderLine",
    "OrgKind",
    "Organization",
    "PaymentMethod",
    "PaymentStatus",
    "PriceTier",
    "Product",
    "ProductStatus",
    "Region",
    "RegionKind",
    "Role",
    "StockMovement",
    "StockReason",
    "SupplierType",
    "Unit",
    "User",
    "UserRole",
]
