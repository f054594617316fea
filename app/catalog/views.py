"""Home page, product list with search and filters, product detail."""

from __future__ import annotations

from flask import Blueprint, current_app, render_template, request
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from app.catalog.forms import ProductFilterForm
from app.extensions import db
from app.models import RegionKind
from app.services import catalog
from app.services.catalog import ProductFilters, Sort
from app.services.search import clean_query
from app.web.access import public
from app.web.filters import localized
from app.web.forms import options

bp = Blueprint("catalog", __name__)


def _viewer():
    return current_user if current_user.is_authenticated else None


@bp.get("/")
@public
def home():
    """Featured Dazhou produce first, then local produce."""
    return render_template(
        "catalog/home.html",
        paired=catalog.featured(db.session, RegionKind.PAIRED),
        local=catalog.featured(db.session, RegionKind.LOCAL),
        choices=catalog.filter_choices(db.session),
    )


@bp.get("/products")
@public
def product_list():
    """Browse and search the products on sale."""
    choices = catalog.filter_choices(db.session)
    form = ProductFilterForm(request.args)
    everything = ("", _l("All"))
    form.region.choices = options(
        [everything, *((r.code, localized(r)) for r in choices["regions"])]
    )
    form.category.choices = options(
        [everything, *((c.slug, localized(c)) for c in choices["categories"])]
    )
    form.supplier.choices = options(
        [everything, *((str(s.id), localized(s)) for s in choices["suppliers"])]
    )
    query = clean_query(form.q.data)
    if "sort" not in request.args and query:
        form.sort.data = Sort.RELEVANCE.value
    if not form.validate():
        return render_template("catalog/list.html", form=form, page=None, query=query), 400
    filters = ProductFilters(
        query=query,
        region_code=form.region.data or None,
        category_slug=form.category.data or None,
        supplier_id=int(form.supplier.data) if form.supplier.data else None,
        in_stock_only=form.in_stock.data,
        min_price_fen=form.min_price.fen,
        max_price_fen=form.max_price.fen,
        sort=Sort(form.sort.data),
    )
    page = catalog.browse(
        db.session, filters, form.page.data or 1, current_app.config["PRODUCTS_PER_PAGE"]
    )
    return render_template("catalog/list.html", form=form, page=page, query=query)


@bp.get("/products/<int:product_id>")
@public
def product_detail(product_id: int):
    """One product with its price per unit, stock state, traceability and supplier story."""
    viewer = _viewer()
    product = catalog.get_product_for_viewer(db.session, product_id, viewer)
    return render_template(
        "catalog/detail.html",
        product=product,
        show_bulk=catalog.can_see_bulk_terms(viewer, product),
    )
