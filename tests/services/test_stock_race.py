"""Real threads, each with its own database connection, racing for the last units.

The data is committed for real (the threads cannot see the test's rolled-back transaction)
and deleted afterwards. Runs on SQLite and, in `make test`, on PostgreSQL.
"""

import threading

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.models import (
    Product,
    StockMovement,
)
from app.services import stock
from app.services.clock import utcnow

BUYERS = 20
UNITS = 5


def test_twenty_buyers_racing_for_five_units_get_exactly_five(race_engine, scarce_product):
    start = threading.Barrier(BUYERS)
    outcomes: list[str] = []
    lock = threading.Lock()

    def buyer():
        with Session(race_engine) as session:
            start.wait(timeout=30)
            try:
                stock.take(session, scarce_product, 1, now=utcnow(), reference="race")
                session.commit()
                result = "bought"
            except stock.OutOfStock:
                session.rollback()
                result = "sold out"
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=buyer) for _ in range(BUYERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(outcomes) == BUYERS
    assert outcomes.count("bought") == UNITS
    with Session(race_engine) as session:
        assert session.get(Product, scarce_product).stock == 0
        taken = session.scalar(
            sa.select(sa.func.sum(StockMovement.change)).where(
                StockMovement.product_id == scarce_product
            )
        )
        assert taken == -UNITS
