"""The Dazhou produce counter: orders to prepare, payment at the counter, handing over."""

from __future__ import annotations

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from app.extensions import db
from app.models import RefundKind
from app.services import orders, payments
from app.services.clock import utcnow
from app.shop.forms import ActionForm, RefundForm
from app.web.access import is_safe_next, roles_required
from app.web.forms import commit_or_flash, requested_page

bp = Blueprint("counter", __name__)

counter_only = roles_required(*orders.COUNTER_ROLES)

_ACTIONS = {
    "ready": (orders.mark_ready, lambda n: _("Order %(number)s is ready for pickup.", number=n)),
    "paid": (
        orders.take_counter_payment,
        lambda n: _("Payment for order %(number)s taken.", number=n),
    ),
    "handed-over": (orders.hand_over, lambda n: _("Order %(number)s handed over.", number=n)),
}


@bp.get("/")
@counter_only
def index():
    """Orders to prepare and to hand over; find one by number or pickup code."""
    query = (request.args.get("q") or "").strip()[:20]
    return render_template(
        "counter/index.html",
        queue=orders.counter_queue(db.session),
        query=query,
        found=orders.find_orders(db.session, query) if query else None,
        form=ActionForm(),
    )


@bp.post("/orders/<int:order_id>/<any(ready, paid, 'handed-over'):action>")
@counter_only
def act(order_id: int, action: str):
    """Move an order one step at the counter."""
    order = orders.get_order(db.session, order_id, current_user)
    move, message = _ACTIONS[action]
    if ActionForm().validate():
        commit_or_flash(
            lambda: move(db.session, order, current_user, utcnow()), message(order.number)
        )
    back = request.form.get("back")
    return redirect(back if is_safe_next(back) else url_for("counter.index"), 303)


@bp.post("/orders/<int:order_id>/refund")
@counter_only
def refund(order_id: int):
    """Refund the ticked lines of a paid order (all that remain if none is ticked)."""
    order = orders.get_order(db.session, order_id, current_user)
    form = RefundForm()
    if form.validate():
        commit_or_flash(
            lambda: orders.refund(
                db.session,
                order,
                current_user,
                utcnow(),
                payments.gateway(),
                line_ids=form.line_ids.data or None,
                reason=form.reason.data,
            ),
            _("Refund for order %(number)s recorded.", number=order.number),
        )
    else:
        for errors in form.errors.values():
            flash(str(errors[0]), "danger")
    return redirect(url_for("shop.order_detail", order_id=order_id), 303)


@bp.get("/refunds")
@counter_only
def refunds():
    """Every refund, newest first; late online payments refunded automatically can be picked out."""
    late_only = request.args.get("kind") == RefundKind.LATE_PAYMENT.value
    return render_template(
        "counter/refunds.html",
        page=orders.refunds(
            db.session,
            requested_page(),
            current_app.config["ADMIN_ROWS_PER_PAGE"],
            RefundKind.LATE_PAYMENT if late_only else None,
        ),
        late_only=late_only,
    )


# Routes on the same blueprint, in their own modules (imported last: they use `bp`).
from app.counter import labels  # noqa: E402, F401
