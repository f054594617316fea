"""Pledges: the coordinator's pages (progress, pace, the ledger behind every figure)."""

from __future__ import annotations

import re
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from app.extensions import db
from app.models import Channel, Organization, PledgeKind, Product, RegionKind, Role
from app.pledges import charts
from app.pledges.forms import FindOrderForm, PledgeForm, ReattributeForm
from app.services import organizations, pledges
from app.services.clock import local_date, utcnow
from app.services.errors import DomainError
from app.services.money import format_yuan
from app.services.pagination import paginate
from app.services.pledges import OTHERS, UNCATEGORISED, LedgerFilter, PledgeData
from app.web.access import roles_required
from app.web.filters import localized
from app.web.forms import (
    add_domain_error,
    commit_form,
    form_status,
    options,
    requested_page,
    whole_number,
)

bp = Blueprint("pledges", __name__)

coordinators = roles_required(Role.COORDINATOR, Role.ADMIN)

ENTRIES_PER_PAGE = 50
MONTH_ARG = re.compile(r"\d{4}-\d{2}", re.ASCII)
#: Figures of the pledge page computed from what was met (its link shows those entries, and
#: the ledger page says how the figure follows from their total).
DERIVED_FIGURES = ("pace", "needed", "forecast")


def percent(share: Decimal | None, places: int = 1) -> str:
    """0.3774 -> 37.7%."""
    if share is None:
        return "—"
    step = Decimal(1).scaleb(-places)
    return f"{(Decimal(share) * 100).quantize(step, rounding=ROUND_HALF_UP)}%"


def bar_width(share: Decimal | None) -> str:
    """A share as a CSS width, kept between 0 and 100 %."""
    value = min(max(Decimal(share or 0), Decimal(0)), Decimal(1)) * 100
    return f"{value.quantize(Decimal('0.1'))}%"


@bp.context_processor
def _helpers() -> dict:
    return {"percent": percent, "bar_width": bar_width, "OTHERS": OTHERS}


def _today() -> date:
    return local_date(utcnow())


def _margin() -> int:
    return int(current_app.config["PLEDGE_BEHIND_MARGIN_PERCENT"])


# --- the list: the coordinator's home for pledges ----------------------------------------------


@bp.get("/")
@coordinators
def index():
    """Every pledge with its progress; those behind pace by more than the margin on top."""
    today, margin = _today(), _margin()
    rows = pledges.with_progress(db.session, today, margin)
    alerts = pledges.behind_pledges(db.session, today, margin, among=rows)
    return render_template(
        "pledges/index.html", rows=rows, alerts=alerts, margin=margin, today=today
    )


# --- creating and editing ----------------------------------------------------------------------


def _choices(form: PledgeForm, keep=()) -> list[Organization]:
    buyers = pledges.buying_organizations(db.session, keep)
    form.organization_ids.choices = options((org.id, org.name_zh) for org in buyers)
    form.region_ids.choices = options(
        (region.id, localized(region)) for region in organizations.all_regions(db.session)
    )
    return buyers


def _data(form: PledgeForm) -> PledgeData:
    return PledgeData(
        name=form.name.data or "",
        kind=PledgeKind(form.kind.data),
        period_start=form.period_start.data,
        period_end=form.period_end.data,
        all_organizations=bool(form.all_organizations.data),
        organization_ids=list(form.organization_ids.data or []),
        region_ids=list(form.region_ids.data or []),
        channels=[Channel(value) for value in form.channels.data or []],
        target_fen=form.target_fen,
        declared_spending_fen=form.declared_spending_fen,
        share_percent=form.percent,
        public=bool(form.public.data),
        notes=form.notes.data or "",
    )


def _yuan_text(fen: int | None) -> str:
    if fen is None:
        return ""
    yuan, cents = divmod(fen, 100)
    return f"{yuan}" if not cents else f"{yuan}.{cents:02d}"


def _fill(form: PledgeForm, pledge) -> None:
    form.name.data = pledge.name
    form.kind.data = pledge.kind.value
    form.target.data = _yuan_text(pledge.target_fen) if pledge.kind == PledgeKind.FIXED else ""
    form.declared_spending.data = _yuan_text(pledge.declared_spending_fen)
    if pledge.share_percent is not None:
        form.share_percent.data = f"{Decimal(pledge.share_percent).normalize():f}"
    form.period_start.data = pledge.period_start
    form.period_end.data = pledge.period_end
    form.all_organizations.data = not pledge.organizations
    form.organization_ids.data = [org.id for org in pledge.organizations]
    form.region_ids.data = [region.id for region in pledge.regions]
    form.channels.data = [channel.value for channel in pledge.channel_set]
    form.public.data = pledge.public
    form.notes.data = pledge.notes


def _render_form(form: PledgeForm, buyers, pledge=None):
    return render_template(
        "pledges/form.html", form=form, pledge=pledge, buyers=buyers
    ), form_status(form)


@bp.route("/new", methods=["GET", "POST"])
@coordinators
def new():
    """A new pledge: a fixed amount or a reserved share, over whole months."""
    form = PledgeForm()
    buyers = _choices(form)
    if request.method == "GET":
        # A start most pledges share: this calendar year, every unit, the paired region.
        today = _today()
        form.period_start.data = date(today.year, 1, 1)
        form.period_end.data = date(today.year, 12, 31)
        form.all_organizations.data = True
        form.region_ids.data = [
            region.id
            for region in organizations.all_regions(db.session)
            if region.kind == RegionKind.PAIRED
        ]
    if form.validate_on_submit():
        outcome = commit_form(
            form, lambda: pledges.create_pledge(db.session, current_user, utcnow(), _data(form))
        )
        if outcome.ok:
            flash(_("Pledge “%(name)s” saved.", name=outcome.value.name), "success")
            return redirect(url_for("pledges.detail", pledge_id=outcome.value.id), 303)
    return _render_form(form, buyers)


@bp.route("/<int:pledge_id>/edit", methods=["GET", "POST"])
@coordinators
def edit(pledge_id: int):
    """Change a pledge; its figures follow at once (nothing about progress is stored)."""
    pledge = pledges.get_pledge(db.session, pledge_id)
    form = PledgeForm()
    buyers = _choices(form, keep=[org.id for org in pledge.organizations])
    if request.method == "GET":
        _fill(form, pledge)
    if form.validate_on_submit():
        outcome = commit_form(
            form,
            lambda: pledges.update_pledge(db.session, current_user, utcnow(), pledge, _data(form)),
        )
        if outcome.ok:
            flash(_("Pledge “%(name)s” saved.", name=pledge.name), "success")
            return redirect(url_for("pledges.detail", pledge_id=pledge.id), 303)
    return _render_form(form, buyers, pledge)


# --- the pledge page ---------------------------------------------------------------------------


@bp.get("/<int:pledge_id>")
@coordinators
def detail(pledge_id: int):
    """Progress, pace, forecast, charts and breakdowns; every figure links to its entries."""
    pledge = pledges.get_pledge(db.session, pledge_id)
    figures = pledges.progress(db.session, pledge, _today(), _margin())

    def month_link(month: date) -> str:
        return url_for("pledges.ledger", pledge_id=pledge.id, month=f"{month:%Y-%m}")

    return render_template(
        "pledges/detail.html",
        pledge=pledge,
        figures=figures,
        cumulative_chart=charts.cumulative_chart(figures, pledge.period_start),
        monthly_chart=charts.monthly_chart(figures, month_link),
        others=OTHERS,
    )


# --- the ledger behind a figure ----------------------------------------------------------------


def _bad_filter():
    abort(400, description=_l("That filter value is not valid."))


def _month_arg(name: str) -> date | None:
    """A month written 2026-01, as its first day."""
    raw = request.args.get(name, "")
    if raw == "":
        return None
    if MONTH_ARG.fullmatch(raw):
        try:
            return date.fromisoformat(f"{raw}-01")
        except ValueError:
            pass  # 2026-13
    abort(400, description=_l("Write the month as 2026-01."))


def _key_arg(name: str, prefixes: str) -> str | None:
    raw = request.args.get(name, "")
    if raw == "":
        return None
    if raw == OTHERS:
        return OTHERS
    if len(raw) > 140 or raw[:1] not in prefixes + "n" or len(raw) < 2:
        _bad_filter()
    if raw[:1] != "n" and not (raw[1:].isascii() and raw[1:].isdigit()):
        _bad_filter()
    return raw


def _selection(pledge) -> LedgerFilter:
    values: dict = {}
    for name in ("month", "until"):
        month = _month_arg(name)
        if month is not None:
            values[name] = month
    canteen = request.args.get("canteen", "")
    if canteen:
        if canteen not in pledges.CANTEEN_VIEWS:
            _bad_filter()
        values["canteen"] = canteen
    channel = request.args.get("channel", "")
    if channel:
        try:
            values["channel"] = Channel(channel)
        except ValueError:
            _bad_filter()
    excluded = {}
    supplier = _key_arg("supplier", "s")
    product = _key_arg("product", "p")
    for dimension, key in (("supplier", supplier), ("product", product)):
        if key == OTHERS:
            excluded[dimension] = pledges.top_keys(db.session, pledge, dimension)
        elif key is not None:
            values[f"{dimension}_key"] = key
    category = request.args.get("category", "")
    if category == OTHERS:
        excluded["category"] = pledges.top_keys(db.session, pledge, "category")
    elif category:
        if not (category.isascii() and category.isdigit()) or int(category) > 2**31 - 1:
            _bad_filter()
        values["category_id"] = int(category)
    selection = LedgerFilter(excluded=excluded, **values)
    pledges.check_filter(pledge, selection)
    return selection


@bp.get("/<int:pledge_id>/ledger")
@coordinators
def ledger(pledge_id: int):
    """The entries behind a figure of the pledge page, with their total (the figure itself)."""
    pledge = pledges.get_pledge(db.session, pledge_id)
    selection = _selection(pledge)
    figure = request.args.get("figure", "")
    if figure and figure not in DERIVED_FIGURES:
        _bad_filter()
    total_fen, count = pledges.ledger_total(db.session, pledge, selection)
    page = paginate(
        db.session,
        pledges.ledger_entries(db.session, pledge, selection),
        requested_page(),
        ENTRIES_PER_PAGE,
        total=count,
    )
    return render_template(
        "pledges/ledger.html",
        pledge=pledge,
        page=page,
        total_fen=total_fen,
        count=count,
        chips=_chips(pledge, selection),
        basis=_basis(pledge, figure, total_fen) if figure and selection == LedgerFilter() else "",
    )


def _basis(pledge, figure: str, total_fen: int) -> str:
    """How a figure of the pledge page follows from the total of the entries its link shows."""
    f = pledges.progress(db.session, pledge, _today(), _margin(), breakdowns=False)
    if figure == "forecast":
        if f.forecast_fen is None:
            return ""
        return _(
            "The forecast, %(forecast)s, is this total × %(days)s days of the period ÷ "
            "%(elapsed)s days elapsed.",
            forecast=format_yuan(f.forecast_fen),
            days=f.days_total,
            elapsed=f.days_elapsed,
        )
    if figure == "pace":
        if not f.started:
            return ""
        return _(
            "Pace: this total less %(ideal)s, where the even pace stands after %(elapsed)s of "
            "%(days)s days, is %(ahead)s.",
            ideal=format_yuan(f.ideal_fen),
            elapsed=f.days_elapsed,
            days=f.days_total,
            ahead=format_yuan(f.ahead_fen),
        )
    if f.is_met:
        return _(
            "The target, %(target)s, is met: this total is %(over)s above it.",
            target=format_yuan(f.target_fen),
            over=format_yuan(total_fen - f.target_fen),
        )
    if f.ended:
        return _(
            "Short of the target: %(target)s less this total is %(remaining)s.",
            target=format_yuan(f.target_fen),
            remaining=format_yuan(f.remaining_fen),
        )
    return _(
        "Needed per remaining week, %(needed)s: the target %(target)s less this total, × 7 ÷ "
        "%(days)s days remaining, rounded up to the fen.",
        needed=format_yuan(f.needed_per_week_fen),
        target=format_yuan(f.target_fen),
        days=f.days_remaining,
    )


def _chips(pledge, selection: LedgerFilter) -> list[tuple[str, str, str]]:
    """(what, which, the URL without it) for each filter in force."""
    chips = []
    args = request.args.to_dict()
    args.pop("page", None)
    args.pop("figure", None)  # its explanation holds for the unfiltered total only

    def without(name: str) -> str:
        rest = {k: v for k, v in args.items() if k != name}
        return url_for("pledges.ledger", pledge_id=pledge.id, **rest)

    if selection.month is not None:
        chips.append((_("Month"), f"{selection.month:%Y-%m}", without("month")))
    if selection.until is not None:
        months = f"{pledge.period_start:%Y-%m} – {selection.until:%Y-%m}"
        chips.append((_("Period"), months, without("until")))
    if selection.canteen is not None:
        regions = (
            "、".join(localized(region) for region in pledge.regions)
            if selection.canteen == pledges.CANTEEN_COVERED
            else _("Every region")
        )
        chips.append((_("Canteen spending"), regions, without("canteen")))
    if selection.supplier_key:
        chips.append((_("Supplier"), _supplier_name(selection.supplier_key), without("supplier")))
    if selection.product_key:
        chips.append((_("Product"), _product_name(selection.product_key), without("product")))
    if selection.category_id is not None:
        chips.append((_("Category"), _category_name(selection.category_id), without("category")))
    if selection.channel is not None:
        chips.append((_("Channel"), str(selection.channel.label), without("channel")))
    names = {"supplier": _("Supplier"), "product": _("Product"), "category": _("Category")}
    for dimension in selection.excluded:
        chips.append((names[dimension], _("Others (beyond the top 10)"), without(dimension)))
    return chips


def _supplier_name(key: str) -> str:
    if key.startswith("s"):
        org = db.session.get(Organization, int(key[1:]))
        return org.name_zh if org else key
    return key[1:]


def _product_name(key: str) -> str:
    if key.startswith("p"):
        product = db.session.get(Product, int(key[1:]))
        return product.name_zh if product else key
    return key[1:]


def _category_name(category_id: int) -> str:
    from app.models import Category

    if category_id == UNCATEGORISED:
        return _("No category")
    category = db.session.get(Category, category_id)
    return localized(category) if category else str(category_id)


# --- re-attribution ----------------------------------------------------------------------------


def _order_arg(name: str) -> int | None:
    raw = request.args.get(name, "")
    if raw == "":
        return None
    value = whole_number(raw)
    if value is None:
        _bad_filter()
    return value


@bp.route("/reattribute", methods=["GET", "POST"])
@coordinators
def reattribute():
    """Count an order for another budget unit: a recorded correction, never an edit."""
    retail_id, bulk_id = _order_arg("retail_order"), _order_arg("bulk_order")
    if retail_id is None and bulk_id is None:
        find = FindOrderForm(request.args)
        status = 200
        if request.method == "GET" and find.number.data:
            try:
                kind, order_id = pledges.find_order(db.session, find.number.data)
            except DomainError as error:
                add_domain_error(find, error)
                status = 422
            else:
                return redirect(url_for("pledges.reattribute", **{f"{kind}_order": order_id}))
        if request.method == "POST":
            abort(400, description=_l("Choose the order first."))
        return render_template("pledges/reattribute.html", find=find, found=None), status

    found = pledges.attribution(db.session, retail_order_id=retail_id, bulk_order_id=bulk_id)
    form = ReattributeForm()
    buyers = pledges.buying_organizations(db.session)
    form.organization_id.choices = options(
        [(0, "—"), *((org.id, f"{org.name_zh} · {org.kind.label}") for org in buyers)]
    )
    if form.validate_on_submit():
        outcome = commit_form(
            form,
            lambda: pledges.reattribute(
                db.session,
                current_user,
                utcnow(),
                to_organization_id=form.organization_id.data,
                reason=form.reason.data or "",
                retail_order_id=retail_id,
                bulk_order_id=bulk_id,
            ),
        )
        if outcome.ok:
            flash(
                _("Order %(number)s now counts for the unit chosen.", number=found.number),
                "success",
            )
            args = {"retail_order": retail_id} if retail_id else {"bulk_order": bulk_id}
            return redirect(url_for("pledges.reattribute", **args), 303)
    return render_template(
        "pledges/reattribute.html", find=FindOrderForm(), found=found, form=form
    ), form_status(form)


# Routes on the same blueprint, in their own modules (imported last: they use `bp`).
from app.pledges import imports, reports  # noqa: E402, F401
