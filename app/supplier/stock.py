"""The supplier's stock: levels, low-stock thresholds and recorded adjustments."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import HiddenField, SelectField, StringField
from wtforms.validators import DataRequired, Length

from app.extensions import db
from app.services import supplier_portal
from app.services.clock import utcnow
from app.services.errors import DomainError
from app.services.supplier_portal import AdjustMode, signed
from app.supplier.views import bp, suppliers_only
from app.web.filters import format_quantity, localized
from app.web.forms import add_domain_error, options, requested_page


class AdjustForm(FlaskForm):
    mode = SelectField(
        _l("How"),
        choices=options((mode.value, mode.label) for mode in AdjustMode),
        default=AdjustMode.CHANGE.value,
    )
    quantity = StringField(
        _l("Quantity"),
        validators=[
            DataRequired(message=_l("Enter a change such as +40 or -3, or the level you counted.")),
            Length(max=24),
        ],
    )
    reason = StringField(
        _l("Why"),
        validators=[
            DataRequired(message=_l('Say why, such as "received from the farm" or "spoiled".')),
            Length(max=supplier_portal.MAX_REASON_LENGTH),
        ],
    )
    #: The level the page showed: what a counted level is compared with.
    seen = HiddenField()


class ThresholdForm(FlaskForm):
    threshold = StringField(
        _l("Warn me at"),
        validators=[Length(max=24)],
        description=_l("Leave empty for no warning."),
    )


#: ?show=low lists only the products that are low or out (the dashboard links here).
SHOW_VALUES = ("", "low")


def _list_args() -> dict[str, str | int]:
    """The list's own query arguments, kept across a form post and its redirect."""
    show = request.args.get("show", "")
    if show not in SHOW_VALUES:
        abort(400, description=_l("That filter value is not valid."))
    args: dict[str, str | int] = {"show": show} if show else {}
    page = requested_page()
    if page > 1:
        args["page"] = page
    return args


def _render(failed=None, adjust_form=None, threshold_form=None, status=200):
    """The stock list; after a refused form, that product's form with its errors and input."""
    args = _list_args()
    page = supplier_portal.stock_page(
        db.session, current_user, requested_page(), only_flagged=bool(args.get("show"))
    )
    return render_template(
        "supplier/stock.html",
        page=page,
        args=args,
        failed=failed,
        failed_adjust=adjust_form,
        failed_threshold=threshold_form,
        blank_adjust=AdjustForm(formdata=None),
        blank_threshold=ThresholdForm(formdata=None),
    ), status


def _back(product_id: int):
    return redirect(url_for("supplier.stock", _anchor=f"product-{product_id}", **_list_args()), 303)


@bp.get("/stock")
@suppliers_only
def stock():
    """The supplier's products with their stock and warning level, each with its correction form."""
    return _render()


@bp.post("/stock/<int:product_id>/adjust")
@suppliers_only
def adjust_stock(product_id: int):
    """Correct one product's stock by a change or to a counted level, saying why."""
    _list_args()  # a bad ?show= or ?page= is refused before anything is written
    product = supplier_portal.own_product(db.session, current_user, product_id)
    form = AdjustForm()
    if not form.validate():
        return _render(product, adjust_form=form, status=400)
    try:
        done = supplier_portal.adjust_stock(
            db.session,
            current_user,
            product.id,
            mode=form.mode.data,
            quantity=form.quantity.data,
            reason=form.reason.data,
            seen=form.seen.data,
            now=utcnow(),
        )
        db.session.commit()
    except DomainError as error:
        db.session.rollback()
        add_domain_error(form, error)
        return _render(product, adjust_form=form, status=error.status_code)
    values = {
        "name": localized(product),
        "level": format_quantity(done.level),
        "unit": product.unit.label,
        "change": signed(done.change),
    }
    if done.change == 0:
        flash(
            _("Your count matches the level shown for %(name)s; nothing was changed.", **values),
            "info",
        )
    elif done.moved_meanwhile:
        flash(
            _(
                "Orders changed the stock of %(name)s by %(moved)s after the page was loaded; "
                "your count's change of %(change)s was applied on top, so it is now "
                "%(level)s %(unit)s.",
                moved=signed(done.moved_meanwhile),
                **values,
            ),
            "warning",
        )
    else:
        flash(_("Stock of %(name)s: %(change)s, now %(level)s %(unit)s.", **values), "success")
    return _back(product.id)


@bp.post("/stock/<int:product_id>/threshold")
@suppliers_only
def set_threshold(product_id: int):
    """Set or clear the level at which the dashboard warns that stock is low."""
    _list_args()
    product = supplier_portal.own_product(db.session, current_user, product_id)
    form = ThresholdForm()
    if not form.validate():
        return _render(product, threshold_form=form, status=400)
    try:
        _product, value = supplier_portal.set_threshold(
            db.session, current_user, product.id, form.threshold.data
        )
        db.session.commit()
    except DomainError as error:
        db.session.rollback()
        add_domain_error(form, error)
        return _render(product, threshold_form=form, status=error.status_code)
    if value is None:
        flash(_("No low-stock warning for %(name)s any more.", name=localized(product)), "success")
    else:
        flash(
            _(
                "You will be warned when %(name)s is at or below %(level)s %(unit)s.",
                name=localized(product),
                level=format_quantity(value),
                unit=product.unit.label,
            ),
            "success",
        )
    return _back(product.id)


@bp.get("/stock/<int:product_id>")
@suppliers_only
def stock_history(product_id: int):
    """Every change of one product's stock, newest first: who, when, why, and the level after."""
    product, page = supplier_portal.stock_history(
        db.session, current_user, product_id, requested_page()
    )
    return render_template("supplier/stock_history.html", product=product, page=page)
