"""Staff shopping: the cart, checkout with counter payment, and my orders."""

from __future__ import annotations

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from app.extensions import db
from app.models import Fulfilment, Role
from app.services import cart, delivery, orders
from app.services.clock import utcnow
from app.shop.forms import ActionForm, CheckoutForm, QuantityForm
from app.web.access import roles_required
from app.web.forms import commit_form, commit_or_flash, form_status, options, requested_page

bp = Blueprint("shop", __name__)

buyers_only = roles_required(Role.STAFF)


@bp.route("/cart/add/<int:product_id>", methods=["GET", "POST"])
@buyers_only
def add_to_cart(product_id: int):
    """Put a product in the cart (a GET, e.g. after logging in, goes back to the product)."""
    back = url_for("catalog.product_detail", product_id=product_id)
    form = QuantityForm()
    if request.method == "GET":
        return redirect(back)
    if not form.validate():
        flash(_("Enter a quantity."), "danger")
        return redirect(back, 303)
    commit_or_flash(
        lambda: cart.add(db.session, current_user, product_id, form.quantity.data, utcnow()),
        _("Added to your cart."),
    )
    return redirect(back, 303)


@bp.get("/cart")
@buyers_only
def show_cart():
    """The cart with today's prices, quantities to change, and the way to checkout."""
    return render_template(
        "shop/cart.html", view=cart.view(db.session, current_user), form=ActionForm()
    )


@bp.post("/cart/<int:product_id>/quantity")
@buyers_only
def change_quantity(product_id: int):
    """Change how much of a product the cart holds."""
    form = QuantityForm()
    if form.validate():
        commit_or_flash(
            lambda: cart.set_quantity(db.session, current_user, product_id, form.quantity.data),
            _("Quantity changed."),
        )
    else:
        flash(_("Enter a quantity."), "danger")
    return redirect(url_for("shop.show_cart"), 303)


@bp.post("/cart/<int:product_id>/remove")
@buyers_only
def remove_from_cart(product_id: int):
    """Take a product out of the cart."""
    if ActionForm().validate():
        commit_or_flash(lambda: cart.remove(db.session, current_user, product_id), _("Removed."))
    return redirect(url_for("shop.show_cart"), 303)


@bp.route("/checkout", methods=["GET", "POST"])
@buyers_only
def checkout():
    """Review the order, then place it: pickup at the counter, payment there."""
    form = CheckoutForm()
    form.delivery_place_id.choices = options(
        [
            (0, _("Choose the office")),
            *((p.id, p.address) for p in delivery.active_places(db.session)),
        ]
    )
    view = cart.view(db.session, current_user)
    if form.validate_on_submit():
        outcome = commit_form(
            form,
            lambda: orders.place_order(
                db.session,
                current_user,
                utcnow(),
                fulfilment=Fulfilment(form.fulfilment.data),
                delivery_place_id=form.delivery_place_id.data or None,
            ),
        )
        if outcome.ok:
            flash(_("Order %(number)s placed.", number=outcome.value.number), "success")
            return redirect(url_for("shop.order_detail", order_id=outcome.value.id), 303)
        view = cart.view(db.session, current_user)
    elif not view.items:
        return redirect(url_for("shop.show_cart"))
    return render_template("shop/checkout.html", view=view, form=form), form_status(form)


@bp.get("/orders")
@buyers_only
def my_orders():
    """The buyer's orders, newest first."""
    return render_template(
        "shop/orders.html",
        page=orders.orders_of(
            db.session, current_user, requested_page(), current_app.config["ADMIN_ROWS_PER_PAGE"]
        ),
    )


@bp.get("/orders/<int:order_id>")
@roles_required(Role.STAFF, *orders.COUNTER_ROLES)
def order_detail(order_id: int):
    """One order: pickup code, lines, and the timeline of what happened to it."""
    order = orders.get_order(db.session, order_id, current_user)
    return render_template("shop/order.html", order=order, form=ActionForm())


@bp.post("/orders/<int:order_id>/cancel")
@buyers_only
def cancel_order(order_id: int):
    """Cancel an order that has not been prepared yet; the stock goes back."""
    order = orders.get_order(db.session, order_id, current_user)
    if ActionForm().validate():
        commit_or_flash(
            lambda: orders.cancel(db.session, order, current_user, utcnow()),
            _("Order %(number)s cancelled.", number=order.number),
        )
    return redirect(url_for("shop.order_detail", order_id=order_id), 303)
