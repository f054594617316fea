"""Staff shopping: the cart, checkout (online or at the counter), and my orders."""

from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from app.extensions import db
from app.models import Fulfilment, Order, PaymentMethod, Role
from app.services import cart, delivery, orders, payments
from app.services.clock import utcnow
from app.services.errors import DomainError
from app.services.payments import PaymentUnavailable
from app.shop.forms import ActionForm, CheckoutForm, QuantityForm
from app.web.access import roles_required
from app.web.forms import commit_form, commit_or_flash, form_status, options, requested_page
from app.web.sqlite import writes_on_get

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


def _payment_choices(form: CheckoutForm) -> None:
    """Online payment is offered only when Stripe is configured."""
    if payments.gateway() is None:
        form.payment_method.choices = [
            c for c in form.payment_method.choices if c.value == PaymentMethod.COUNTER.value
        ]


@bp.route("/checkout", methods=["GET", "POST"])
@buyers_only
def checkout():
    """Review the order, choose pickup or delivery and how to pay, then place it."""
    form = CheckoutForm()
    _payment_choices(form)
    form.delivery_place_id.choices = options(
        [
            (0, _("Choose the office")),
            *((p.id, p.address) for p in delivery.active_places(db.session)),
        ]
    )
    view = cart.view(db.session, current_user)
    if form.validate_on_submit():
        now = utcnow()
        method = PaymentMethod(form.payment_method.data)
        due = None
        if method == PaymentMethod.STRIPE:
            due = now + timedelta(minutes=current_app.config["ONLINE_PAYMENT_MINUTES"])
        outcome = commit_form(
            form,
            lambda: orders.place_order(
                db.session,
                current_user,
                now,
                fulfilment=Fulfilment(form.fulfilment.data),
                delivery_place_id=form.delivery_place_id.data or None,
                payment_method=method,
                payment_due_at=due,
            ),
        )
        if outcome.ok:
            order = outcome.value
            flash(_("Order %(number)s placed.", number=order.number), "success")
            if method == PaymentMethod.STRIPE:
                return _to_payment_page(order)
            return redirect(url_for("shop.order_detail", order_id=order.id), 303)
        view = cart.view(db.session, current_user)
    elif not view.items:
        return redirect(url_for("shop.show_cart"))
    return render_template("shop/checkout.html", view=view, form=form), form_status(form)


def _to_payment_page(order: Order):
    """Send the buyer to Stripe; if Stripe fails, to the order page with what to do next."""
    try:
        url = orders.start_online_payment(
            db.session,
            order,
            current_user,
            utcnow(),
            payments.gateway(),
            success_url=url_for("shop.payment_done", order_id=order.id, _external=True)
            + "?session_id={CHECKOUT_SESSION_ID}",
            cancel_url=url_for("shop.payment_cancelled", order_id=order.id, _external=True),
        )
    except PaymentUnavailable as error:
        db.session.commit()  # keeps the attempt number, so the retry asks Stripe afresh
        flash(str(error.message), "danger")
        return redirect(url_for("shop.order_detail", order_id=order.id), 303)
    except DomainError as error:
        db.session.rollback()
        flash(str(error.message), "danger")
        return redirect(url_for("shop.order_detail", order_id=order.id), 303)
    db.session.commit()
    return redirect(url, 303)


def _release_if_due(order_list) -> None:
    """An unpaid online order past its time gives its stock back when anyone looks at it."""
    now = utcnow()
    for order in order_list:
        if order.awaits_online_payment and order.payment_due_at <= now:
            try:
                orders.release_unpaid(db.session, order, now, payments.gateway())
                db.session.commit()
            except DomainError as error:
                db.session.rollback()
                current_app.logger.warning("Order %s not released: %s", order.number, error)


@bp.get("/orders")
@writes_on_get
@buyers_only
def my_orders():
    """The buyer's orders, newest first."""
    page = orders.orders_of(
        db.session, current_user, requested_page(), current_app.config["ADMIN_ROWS_PER_PAGE"]
    )
    _release_if_due(page.items)
    return render_template("shop/orders.html", page=page)


def _show_order(order_id: int, payment_return: str | None = None):
    order = orders.get_order(db.session, order_id, current_user)
    _release_if_due([order])
    return render_template(
        "shop/order.html",
        order=order,
        form=ActionForm(),
        payment_return=payment_return,
        online_payment=payments.gateway() is not None,
    )


@bp.get("/orders/<int:order_id>")
@writes_on_get
@roles_required(Role.STAFF, *orders.COUNTER_ROLES)
def order_detail(order_id: int):
    """One order: pickup code, lines, and the timeline of what happened to it."""
    return _show_order(order_id)


@bp.get("/orders/<int:order_id>/paid")
@writes_on_get
@buyers_only
def payment_done(order_id: int):
    """Where Stripe sends the buyer after paying: paid, or still waiting for Stripe's word."""
    order = orders.get_order(db.session, order_id, current_user)
    session_id = request.args.get("session_id", "")
    gateway = payments.gateway()
    if order.awaits_online_payment and gateway and session_id == order.stripe_session_id:
        # Ask Stripe now rather than wait for the webhook; either records the payment once.
        try:
            checkout = gateway.retrieve_checkout_session(session_id)
            orders.record_online_payment(db.session, order, checkout, utcnow(), gateway)
            db.session.commit()
        except DomainError:
            db.session.rollback()
    return _show_order(order_id, "done")


@bp.get("/orders/<int:order_id>/payment-cancelled")
@buyers_only
def payment_cancelled(order_id: int):
    """Where Stripe sends a buyer who left the payment page without paying."""
    return _show_order(order_id, "cancelled")


@bp.post("/orders/<int:order_id>/pay")
@buyers_only
def pay_online(order_id: int):
    """Go (back) to Stripe's payment page for an unpaid online order."""
    order = orders.get_order(db.session, order_id, current_user)
    if not ActionForm().validate():
        return redirect(url_for("shop.order_detail", order_id=order_id), 303)
    return _to_payment_page(order)


@bp.post("/orders/<int:order_id>/pay-at-counter")
@buyers_only
def pay_at_counter(order_id: int):
    """Give up paying online; pay at the counter (or the courier) instead."""
    order = orders.get_order(db.session, order_id, current_user)
    if ActionForm().validate():
        commit_or_flash(
            lambda: orders.pay_at_counter_instead(
                db.session, order, current_user, utcnow(), payments.gateway()
            ),
            _("You will pay at the counter."),
        )
    return redirect(url_for("shop.order_detail", order_id=order_id), 303)


@bp.post("/orders/<int:order_id>/cancel")
@buyers_only
def cancel_order(order_id: int):
    """Cancel an order that has not been prepared yet; the stock (and any payment) goes back."""
    order = orders.get_order(db.session, order_id, current_user)
    if ActionForm().validate():
        commit_or_flash(
            lambda: orders.cancel(db.session, order, current_user, utcnow(), payments.gateway()),
            _("Order %(number)s cancelled.", number=order.number),
        )
    return redirect(url_for("shop.order_detail", order_id=order_id), 303)
