"""The supplier's side of canteen orders: its deliveries only, confirm or reduce, ship."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import StringField
from wtforms.validators import DataRequired, Length

from app.extensions import db
from app.models import DeliveryStatus, Role
from app.services import canteen
from app.services.clock import utcnow
from app.services.errors import DomainError, LineErrors
from app.web.access import roles_required
from app.web.forms import add_domain_error, requested_page

bp = Blueprint("supplier", __name__)

suppliers_only = roles_required(Role.SUPPLIER)


class ConfirmForm(FlaskForm):
    """Per-line quantities travel as available-<line id>; a note for the buyer."""

    note = StringField(_l("Note for the buyer"), validators=[Length(max=255)])


class ShipForm(FlaskForm):
    delivery_note_number = StringField(
        _l("Delivery note number"),
        validators=[DataRequired(message=_l("Enter the delivery note number.")), Length(max=64)],
    )
    note = StringField(_l("Note"), validators=[Length(max=255)])


@bp.get("/deliveries")
@suppliers_only
def deliveries():
    """This supplier's canteen deliveries, soonest first; other suppliers' never appear."""
    raw = request.args.get("status", "")
    if raw and raw not in DeliveryStatus._value2member_map_:
        abort(400, description=_l("That filter value is not valid."))
    status = DeliveryStatus(raw) if raw else None
    page = canteen.supplier_deliveries(db.session, current_user, status, requested_page())
    return render_template(
        "supplier/deliveries.html",
        page=page,
        status=status,
        statuses=[s for s in DeliveryStatus if s != DeliveryStatus.WITHDRAWN],
    )


def _render(delivery, confirm_form=None, ship_form=None, errors=None, typed=None, status=200):
    return render_template(
        "supplier/delivery.html",
        delivery=delivery,
        order=delivery.order,
        confirm_form=confirm_form or ConfirmForm(),
        ship_form=ship_form or ShipForm(),
        errors=errors or {},
        typed=typed or {},
    ), status


@bp.get("/deliveries/<int:delivery_id>")
@suppliers_only
def delivery(delivery_id: int):
    """One delivery: only this supplier's lines and prices."""
    return _render(canteen.get_delivery_for_supplier(db.session, current_user, delivery_id))


@bp.post("/deliveries/<int:delivery_id>/confirm")
@suppliers_only
def confirm(delivery_id: int):
    """Confirm the delivery, or offer less on lines that cannot be filled in full."""
    delivery = canteen.get_delivery_for_supplier(db.session, current_user, delivery_id)
    form = ConfirmForm()
    typed = {line.id: request.form.get(f"available-{line.id}", "") for line in delivery.open_lines}
    if not form.validate():
        return _render(delivery, confirm_form=form, typed=typed, status=400)
    try:
        canteen.confirm(db.session, delivery, current_user, utcnow(), typed, form.note.data)
        db.session.commit()
    except LineErrors as error:
        db.session.rollback()
        flash(str(error.message), "danger")
        return _render(delivery, confirm_form=form, errors=error.errors, typed=typed, status=400)
    except DomainError as error:
        db.session.rollback()
        flash(str(error.message), "danger")
        return redirect(url_for("supplier.delivery", delivery_id=delivery_id), 303)
    if delivery.status == DeliveryStatus.CHANGES_PROPOSED:
        flash(_("Your smaller quantities were sent to the buyer."), "success")
    else:
        flash(_("Confirmed; the buyer has been told."), "success")
    return redirect(url_for("supplier.delivery", delivery_id=delivery_id), 303)


@bp.post("/deliveries/<int:delivery_id>/ship")
@suppliers_only
def ship(delivery_id: int):
    """Mark the delivery shipped, with the delivery note's number."""
    delivery = canteen.get_delivery_for_supplier(db.session, current_user, delivery_id)
    form = ShipForm()
    if not form.validate():
        return _render(delivery, ship_form=form, status=400)
    try:
        canteen.ship(
            db.session,
            delivery,
            current_user,
            utcnow(),
            form.delivery_note_number.data,
            form.note.data,
        )
        db.session.commit()
    except DomainError as error:
        db.session.rollback()
        add_domain_error(form, error)
        return _render(delivery, ship_form=form, status=error.status_code)
    flash(_("Marked as shipped; print the delivery note to go with the goods."), "success")
    return redirect(url_for("supplier.delivery", delivery_id=delivery_id), 303)


@bp.get("/deliveries/<int:delivery_id>/note")
@suppliers_only
def delivery_note(delivery_id: int):
    """The printable delivery note that travels with the goods."""
    delivery = canteen.get_delivery_for_supplier(db.session, current_user, delivery_id)
    if delivery.status not in (DeliveryStatus.SHIPPED, DeliveryStatus.RECEIVED):
        flash(_("The delivery note is printed once the delivery is shipped."), "warning")
        return redirect(url_for("supplier.delivery", delivery_id=delivery_id), 303)
    return render_template("supplier/delivery_note.html", delivery=delivery, order=delivery.order)


# Routes on the same blueprint, in their own modules (imported last: they use `bp`).
from app.supplier import dashboard, listings, photos, product_imports, profile, stock  # noqa: E402, F401
