"""The in-memory search index: reused while the catalog stands still, replaced when it changes."""

from __future__ import annotations

import sqlalchemy as sa

from app.models import Product, ProductStatus
from app.services import catalog, search_index
from app.services.catalog import ProductFilters, Sort
from app.signals import catalog_changed


def _found(session, query: str) -> list[str]:
    filters = ProductFilters(query=query, sort=Sort.RELEVANCE)
    return [p.code for p in catalog.browse(session, filters, 1, 24).items]


def test_the_index_is_reused_until_the_catalog_changes(app, session, make, monkeypatch):
    monkeypatch.setitem(app.config, "SEARCH_INDEX_SECONDS", 600)
    product = make.product(name_zh="巴山雀舌", code="IDX-1")
    with app.app_context():
        catalog_changed.send(None)  # whatever earlier tests left is gone
        assert _found(session, "bsqs") == ["IDX-1"]
        first = search_index.current(session)

        # A change that bypasses the services (no signal) is not seen: the index is reused.
        session.execute(
            sa.update(Product).where(Product.id == product.id).values(search_text="renamed")
        )
        assert search_index.current(session) is first

        # The signal a catalog edit sends on commit replaces it.
        catalog_changed.send(None)
        assert search_index.current(session) is not first
        assert _found(session, "bsqs") == []
        assert _found(session, "renamed") == ["IDX-1"]


def test_a_product_taken_off_sale_since_the_index_was_built_is_not_shown(
    app, session, make, monkeypatch
):
    monkeypatch.setitem(app.config, "SEARCH_INDEX_SECONDS", 600)
    make.product(name_zh="万源富硒茶", code="IDX-2")
    with app.app_context():
        catalog_changed.send(None)
        assert _found(session, "wyfxc") == ["IDX-2"]
        session.execute(
            sa.update(Product).where(Product.code == "IDX-2").values(status=ProductStatus.ARCHIVED)
        )

        # The index still lists it; the page is loaded from the database, which does not.
        assert _found(session, "wyfxc") == []


def test_an_old_index_is_rebuilt_after_search_index_seconds(app, session, make, monkeypatch):
    monkeypatch.setitem(app.config, "SEARCH_INDEX_SECONDS", 0)
    make.product(name_zh="宣汉黄牛肉", code="IDX-3")
    with app.app_context():
        first = search_index.current(session)
        assert search_index.current(session) is not first
