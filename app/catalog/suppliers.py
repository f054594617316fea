"""A supplier's public page: its story, county, households, certificates and products."""

from __future__ import annotations

from app.catalog.views import bp
from app.extensions import db
from app.services import supplier_profile
from app.services.clock import utcnow
from app.web import pagecache
from app.web.access import public
from app.web.filters import localized


@bp.get("/suppliers/<int:org_id>")
@public
def supplier_detail(org_id: int):
    """Who grows or makes the produce, as the supplier tells it, and what it sells."""

    def build() -> pagecache.Fragment:
        org = supplier_profile.public_supplier(db.session, org_id)
        products, total = supplier_profile.products_on_sale(db.session, org.id)
        return pagecache.fragment(
            "catalog/_supplier.html",
            localized(org),
            org=org,
            products=products,
            total=total,
            today=utcnow().date(),
        )

    return pagecache.respond(pagecache.cached(("supplier", org_id), build))
