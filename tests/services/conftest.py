"""Fixtures for tests where real threads race, each with its own database connection."""

from decimal import Decimal

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.extensions import db
from app.models import (
    Category,
    Organization,
    OrgKind,
    Product,
    ProductStatus,
    Region,
    StockMovement,
    Unit,
)
from app.services.clock import utcnow
from app.web.sqlite import configure_sqlite

UNITS = 5


@pytest.fixture
def race_engine(app):
    with app.app_context():
        url = db.engine.url
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    configure_sqlite(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def scarce_product(race_engine):
    now = utcnow()
    with Session(race_engine) as session:
        region = Region(code="race-region", name_zh="竞争地区")
        supplier = Organization(
            code="RACE-SUPPLIER",
            kind=OrgKind.SUPPLIER,
            name_zh="竞争供应商",
            region=region,
            created_at=now,
        )
        category = Category(slug="race-category", name_zh="竞争类别")
        product = Product(
            code="RACE-1",
            name_zh="最后几盒",
            supplier=supplier,
            origin_region=region,
            category=category,
            status=ProductStatus.ACTIVE,
            unit=Unit.BOX,
            retail_price_fen=100,
            stock=Decimal(UNITS),
            created_at=now,
            updated_at=now,
        )
        session.add(product)
        session.commit()
        ids = (product.id, supplier.id, region.id, category.id)
    yield ids[0]
    with race_engine.begin() as connection:
        connection.execute(sa.delete(StockMovement).where(StockMovement.product_id == ids[0]))
        connection.execute(sa.delete(Product).where(Product.id == ids[0]))
        connection.execute(sa.delete(Organization).where(Organization.id == ids[1]))
        connection.execute(sa.delete(Region).where(Region.id == ids[2]))
        connection.execute(sa.delete(Category).where(Category.id == ids[3]))
