"""Home page, product list with search and filters, product detail."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from wtforms.fields.core import UnboundField

from app.catalog.forms import ProductFilterForm
from app.extensions import db, limiter
from app.models import RegionKind
from app.services import catalog
from app.services.catalog import ProductFilters, Sort
from app.services.search import clean_query
from app.web import pagecache
from app.web.access import public
from app.web.filters import is_english, localized
from app.web.forms import options

bp = Blueprint("catalog", __name__)

#: The query arguments the filter form reads (its fields' names).
_FILTER_ARGUMENTS = frozenset(
    name for name, value in vars(ProductFilterForm).items() if isinstance(value, UnboundField)
)


@limiter.request_filter
def _catalog_reads_are_not_rate_limited() -> bool:
    # No limit applies to browsing, and the limiter's per-request bookkeeping is a tenth of a
    # cached catalog page; skip it here (and only here: every other request is checked).
    return request.blueprint == "catalog" and request.method == "GET"


def _viewer():
    return current_user if current_user.is_authenticated else None


@bp.get("/")
@public
def home():
    """Featured Dazhou produce first, then local produce."""
    return pagecache.respond(pagecache.cached(("home",), _home_fragment))


def _home_fragment() -> pagecache.Fragment:
    return pagecache.fragment(
        "catalog/_home.html",
        _("Home"),
        paired=catalog.featured(db.session, RegionKind.PAIRED),
        local=catalog.featured(db.session, RegionKind.LOCAL),
        choices=catalog.filter_choices(db.session),
    )


@bp.get("/products")
@public
def product_list():
    """Browse and search the products on sale."""
    # Only the filter form's own arguments make a page different; junk arguments share it.
    arguments = request.args.items(multi=True)
    key = ("products", tuple(sorted(kv for kv in arguments if kv[0] in _FILTER_ARGUMENTS)))
    return pagecache.respond(pagecache.cached(key, _product_list_fragment))


def _product_list_fragment() -> pagecache.Fragment:
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
    title = _("Search: %(q)s", q=query) if query else _("All products")
    if "sort" not in request.args and query:
        form.sort.data = Sort.RELEVANCE.value
    if not form.validate():
        return pagecache.fragment(
            "catalog/_list.html", title, 400, form=form, page=None, query=query
        )
    filters = ProductFilters(
        query=query,
        region_kind=RegionKind(form.origin.data) if form.origin.data else None,
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
    closest = catalog.closest(db.session, query) if query and not page.total else []
    return pagecache.fragment(
        "catalog/_list.html", title, form=form, page=page, query=query, closest=closest
    )


#: Suggestions a box shows at most: more than fit above a phone's keyboard is noise.
SUGGESTIONS = 8


@bp.get("/products/suggest")
@public
def suggest():
    """Up to eight products for what is typed in a search box so far, as JSON."""
    query = clean_query(request.args.get("q", "", type=str))
    english = is_english()

    def pick(zh: str, en: str) -> str:
        return en if english and en else zh

    rows = catalog.suggestions(db.session, query, SUGGESTIONS)
    response = jsonify(
        query=query,
        suggestions=[
            {
                "name": pick(row.name_zh, row.name_en),
                "url": url_for("catalog.product_detail", product_id=row.product_id),
                "origin": pick(row.origin_zh, row.origin_en),
                "supplier": pick(row.supplier_zh, row.supplier_en),
            }
            for row in rows
        ],
    )
    # Typing back over a prefix asks again; the answer may be a minute old. The names come in
    # the language of the cookie, so a shared cache must keep one answer per cookie.
    response.headers["Cache-Control"] = "public, max-age=60"
    response.vary.add("Cookie")
    return response


@bp.get("/products/<int:product_id>")
@public
def product_detail(product_id: int):
    """One product with its price per unit, stock state, traceability and supplier story."""
    viewer = _viewer()

    def build() -> pagecache.Fragment:
        product = catalog.get_product_for_viewer(db.session, product_id, viewer)
        return pagecache.fragment(
            "catalog/_detail.html",
            localized(product),
            product=product,
            show_bulk=catalog.can_see_bulk_terms(viewer, product),
        )

    audience = catalog.audience(viewer)
    if audience is None:
        return pagecache.respond(build())
    return pagecache.respond(pagecache.cached(("product", product_id, audience), build))


# Routes on the same blueprint, in their own modules (imported last: they use `bp`).
from app.catalog import suppliers  # noqa: E402, F401
