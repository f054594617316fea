"""Canteen bulk procurement: the quick order sheet, bulk orders, approval and goods-in."""

from __future__ import annotations

import io
from datetime import date

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from app.canteen.forms import ActionForm, DetailsForm, LinesForm, ReasonForm, UploadForm
from app.extensions import db
from app.models import BulkOrderStatus, Category, Organization, OrgKind, Region, Role, Unit
from app.services import canteen, exports, order_sheets, sheets
from app.services.canteen import CanteenPolicy, ReceivedLine
from app.services.clock import local_date, utcnow
from app.services.errors import DomainError, LineErrors
from app.web.access import roles_required
from app.web.filters import format_quantity
from app.web.forms import add_domain_error, commit_or_flash, requested_page, whole_number

bp = Blueprint("canteen", __name__)

buyers_only = roles_required(Role.CANTEEN_BUYER)
managers_only = roles_required(Role.CANTEEN_MANAGER)
canteen_roles = roles_required(
    Role.CANTEEN_BUYER, Role.CANTEEN_MANAGER, Role.COORDINATOR, Role.ADMIN
)


def _policy() -> CanteenPolicy:
    return CanteenPolicy.from_config(current_app.config)


def _int_arg(name: str) -> int | None:
    raw = request.args.get(name, "")
    if raw == "":
        return None
    value = whole_number(raw)
    if value is None:
        abort(400, description=_l("That filter value is not valid."))
    return value


def _date_arg(name: str) -> date | None:
    raw = request.args.get(name, "")
    if raw == "":
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        abort(400, description=_l("Dates are written 2026-11-27."))


def _quantities(prefix: str = "qty-") -> dict[int, str]:
    """{id: what was typed} from fields named qty-<id>."""
    found = {}
    for key, value in request.form.items():
        # Only ids a database integer holds: "qty-²" or "qty-" and 30 digits are no product.
        product_id = whole_number(key.removeprefix(prefix)) if key.startswith(prefix) else None
        if product_id is not None:
            found[product_id] = value
    return found


# --- the quick order sheet ---------------------------------------------------------------------


def _sheet_filters() -> dict:
    return {
        "region_id": _int_arg("region"),
        "category_id": _int_arg("category"),
        "supplier_id": _int_arg("supplier"),
        "query": request.args.get("q", "")[:64],
    }


def _render_sheet(draft=None, typed=None, errors=None, upload_form=None, upload_errors=None):
    filters = _sheet_filters()
    rows = canteen.sheet_rows(db.session, **filters)
    if typed is None:
        typed = (
            {line.product_id: format_quantity(line.quantity) for line in draft.lines}
            if draft
            else {}
        )
    status = 400 if errors or upload_errors else 200
    return render_template(
        "canteen/sheet.html",
        rows=rows,
        typed=typed,
        errors=errors or {},
        draft=draft,
        filters=filters,
        # Built once, not per row: the sheet has thousands of rows.
        product_path=url_for("catalog.product_detail", product_id=0)[:-1],
        unit_labels={unit: str(unit.label) for unit in Unit},
        regions=db.session.scalars(db.select(Region).order_by(Region.sort_order)).all(),
        categories=db.session.scalars(db.select(Category).order_by(Category.sort_order)).all(),
        suppliers=db.session.scalars(
            db.select(Organization)
            .where(Organization.kind == OrgKind.SUPPLIER, Organization.active.is_(True))
            .order_by(Organization.name_zh)
        ).all(),
        form=LinesForm(),
        upload_form=upload_form or UploadForm(),
        upload_errors=upload_errors,
        previous=canteen.recent_orders(db.session, current_user),
    ), status


def _draft_arg():
    draft_id = _int_arg("order")
    if draft_id is None:
        return None
    draft = canteen.get_order(db.session, current_user, draft_id)
    if draft.status != BulkOrderStatus.DRAFT:
        flash(_("Order %(number)s is no longer a draft.", number=draft.number), "warning")
        return None
    return draft


@bp.route("/sheet", methods=["GET", "POST"])
@buyers_only
def sheet():
    """Every bulk product in one table with a quantity box per row; saves into a draft."""
    draft = _draft_arg()
    if request.method == "GET":
        return _render_sheet(draft)
    form = LinesForm()
    if not form.validate():
        abort(400)
    typed = _quantities()
    now = utcnow()
    try:
        if draft is None:
            order = canteen.create_draft(db.session, current_user, now, typed)
        else:
            canteen.set_lines(db.session, draft, current_user, now, typed, replace=False)
            order = draft
        db.session.commit()
    except LineErrors as error:
        db.session.rollback()
        flash(str(error.message), "danger")
        return _render_sheet(draft, typed=typed, errors=error.errors)
    except DomainError as error:
        db.session.rollback()
        flash(str(error.message), "danger")
        return _render_sheet(draft, typed=typed, errors={0: str(error.message)})
    flash(_("Saved in draft %(number)s.", number=order.number), "success")
    return redirect(url_for("canteen.order_detail", order_id=order.id), 303)


@bp.post("/sheet/upload")
@buyers_only
def upload_sheet():
    """An order sheet from a file: every bad line reported, nothing saved until it is clean."""
    form = UploadForm()
    if not form.validate():
        page, _status = _render_sheet(upload_form=form)
        return page, 400
    data = form.sheet.data.read(current_app.config["ORDER_SHEET_MAX_BYTES"] + 1)
    try:
        rows = sheets.parse_order_sheet(
            form.sheet.data.filename or "",
            data,
            max_bytes=current_app.config["ORDER_SHEET_MAX_BYTES"],
            max_rows=current_app.config["ORDER_SHEET_MAX_ROWS"],
        )
        order = order_sheets.draft_from_sheet(db.session, current_user, utcnow(), rows)
        db.session.commit()
    except LineErrors as error:
        db.session.rollback()
        form.form_errors.append(error.message)
        page, _status = _render_sheet(upload_form=form, upload_errors=error.errors)
        return page, 422
    except DomainError as error:
        db.session.rollback()
        add_domain_error(form, error)
        page, _status = _render_sheet(upload_form=form, upload_errors={})
        return page, error.status_code
    flash(
        _(
            "Sheet read: %(count)d lines saved in draft %(number)s.",
            count=len(order.lines),
            number=order.number,
        ),
        "success",
    )
    return redirect(url_for("canteen.order_detail", order_id=order.id), 303)


@bp.get("/sheet/template.csv")
@buyers_only
def sheet_template():
    """An empty order sheet with the expected columns."""
    response = current_app.response_class(sheets.order_sheet_template_csv(), mimetype="text/csv")
    response.headers["Content-Disposition"] = "attachment; filename=order-sheet.csv"
    return response


# --- bulk orders -------------------------------------------------------------------------------


def _order_filters() -> canteen.OrderFilters:
    raw_status = request.args.get("status", "")
    if raw_status and raw_status not in BulkOrderStatus._value2member_map_:
        abort(400, description=_l("That filter value is not valid."))
    return canteen.OrderFilters(
        status=BulkOrderStatus(raw_status) if raw_status else None,
        supplier_id=_int_arg("supplier"),
        delivery_from=_date_arg("from"),
        delivery_to=_date_arg("to"),
    )


@bp.get("/orders")
@canteen_roles
def orders():
    """The canteen's bulk orders (every canteen's, for coordinators), filterable."""
    filters = _order_filters()
    page = canteen.list_orders(db.session, current_user, filters, requested_page())
    suppliers = db.session.scalars(
        db.select(Organization)
        .where(Organization.kind == OrgKind.SUPPLIER)
        .order_by(Organization.name_zh)
    ).all()
    return render_template(
        "canteen/orders.html",
        page=page,
        filters=filters,
        suppliers=suppliers,
        statuses=list(BulkOrderStatus),
        args={k: v for k, v in request.args.items() if k != "page"},
    )


@bp.get("/orders/export.xlsx")
@canteen_roles
def export_orders():
    """The lines of the listed orders as a spreadsheet."""
    lines = canteen.export_lines(db.session, current_user, _order_filters())
    return send_file(
        io.BytesIO(exports.bulk_lines_xlsx(lines)),
        mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        as_attachment=True,
        download_name=f"bulk-order-lines-{local_date(utcnow()):%Y%m%d}.xlsx",
    )


def _render_order(order, details_form=None, line_errors=None, typed=None, status=200):
    policy = _policy()
    if details_form is None:
        details_form = DetailsForm(obj=order)
    earliest = canteen.earliest_delivery(db.session, order, utcnow()) if order.lines else {}
    estimates = canteen.draft_estimates(order) if order.status == BulkOrderStatus.DRAFT else {}
    return render_template(
        "canteen/order.html",
        order=order,
        details_form=details_form,
        action_form=ActionForm(),
        reason_form=ReasonForm(),
        line_errors=line_errors or {},
        typed={int(k): v for k, v in (typed or {}).items()},
        earliest=max(earliest.values()) if earliest else None,
        estimates=estimates,
        estimate_total=sum(amount for _price, amount in estimates.values()),
        policy=policy,
        can_edit=canteen.can_edit(current_user, order),
        can_manage=canteen.can_manage(current_user, order),
        can_reopen=canteen.can_reopen(order),
        own_order=current_user.id in (order.created_by_id, order.submitted_by_id),
        approval_blocker=canteen.approval_blocker(db.session, order, utcnow()),
    ), status


@bp.route("/orders/<int:order_id>", methods=["GET", "POST"])
@canteen_roles
def order_detail(order_id: int):
    """One bulk order: its lines, where it stands with each supplier, and its history.

    A draft's details and quantities are edited here (POST)."""
    order = canteen.get_order(db.session, current_user, order_id)
    if request.method == "GET":
        return _render_order(order)
    form = DetailsForm()
    if not form.validate():
        return _render_order(order, form, status=400)
    typed = _quantities()

    def change():
        canteen.update_details(
            db.session,
            order,
            current_user,
            delivery_date=form.delivery_date.data,
            delivery_address=form.delivery_address.data,
            po_reference=form.po_reference.data,
            notes=form.notes.data,
        )
        if typed:
            canteen.set_lines(db.session, order, current_user, utcnow(), typed, replace=False)

    try:
        change()
        db.session.flush()
    except LineErrors as error:
        db.session.rollback()
        flash(str(error.message), "danger")
        by_line = {
            line.id: error.errors[line.product_id]
            for line in order.lines
            if line.product_id in error.errors
        }
        return _render_order(order, form, line_errors=by_line, typed=typed, status=400)
    except DomainError as error:
        db.session.rollback()
        add_domain_error(form, error)
        return _render_order(order, form, typed=typed, status=error.status_code)
    if request.form.get("then") == "submit":
        # Saved and submitted together: a refused submission keeps nothing of the edit either
        # (the page shows it again, as typed, with the reason).
        return _submit(order, form, typed)
    db.session.commit()
    flash(_("Draft saved."), "success")
    return redirect(url_for("canteen.order_detail", order_id=order.id), 303)


def _submit(order, details_form=None, typed=None):
    try:
        canteen.submit(db.session, order, current_user, utcnow(), _policy())
        db.session.commit()
    except LineErrors as error:
        db.session.rollback()
        db.session.refresh(order)
        flash(str(error.message), "danger")
        by_line = {
            line.id: error.errors[line.product_id]
            for line in order.lines
            if line.product_id in error.errors
        }
        return _render_order(order, details_form, line_errors=by_line, typed=typed, status=422)
    except DomainError as error:
        db.session.rollback()
        db.session.refresh(order)
        form = details_form or DetailsForm(obj=order)
        add_domain_error(form, error)
        return _render_order(order, form, typed=typed, status=error.status_code)
    if order.status == BulkOrderStatus.AWAITING_APPROVAL:
        flash(_("Submitted; the canteen manager has to approve it."), "success")
    else:
        flash(_("Submitted and sent to the suppliers."), "success")
    return redirect(url_for("canteen.order_detail", order_id=order.id), 303)


@bp.post("/orders/<int:order_id>/submit")
@buyers_only
def submit(order_id: int):
    """Freeze the prices and send the draft for approval, or straight to the suppliers."""
    order = canteen.get_order(db.session, current_user, order_id)
    if not ActionForm().validate():
        abort(400)
    return _submit(order)


def _action(order_id: int, change, success: str, form_class=ActionForm):
    order = canteen.get_order(db.session, current_user, order_id)
    form = form_class()
    if form.validate():
        commit_or_flash(lambda: change(order, form), success)
    else:
        for errors in form.errors.values():
            for message in errors:
                flash(str(message), "danger")
    return redirect(url_for("canteen.order_detail", order_id=order_id), 303)


@bp.post("/orders/<int:order_id>/approve")
@managers_only
def approve(order_id: int):
    """The canteen manager releases a large order to its suppliers."""
    order = canteen.get_order(db.session, current_user, order_id)
    if not ActionForm().validate():
        abort(400)
    try:
        canteen.approve(db.session, order, current_user, utcnow())
        db.session.commit()
    except DomainError as error:
        # The order page again, with why and the status it still has (a delivery date that
        # lapsed while it waited is a 409: the order must change before it can go out).
        db.session.rollback()
        db.session.refresh(order)
        if str(error.message) != str(canteen.approval_blocker(db.session, order, utcnow())):
            flash(str(error.message), "danger")  # the page's own warning says it otherwise
        return _render_order(order, status=error.status_code)
    flash(_("Approved and sent to the suppliers."), "success")
    return redirect(url_for("canteen.order_detail", order_id=order.id), 303)


@bp.post("/orders/<int:order_id>/reject")
@managers_only
def reject(order_id: int):
    """The canteen manager sends a large order back, saying why."""
    return _action(
        order_id,
        lambda order, form: canteen.reject(
            db.session, order, current_user, utcnow(), form.reason.data
        ),
        _("Rejected; the buyer has been told why."),
        ReasonForm,
    )


@bp.post("/orders/<int:order_id>/reopen")
@buyers_only
def reopen(order_id: int):
    """Take a submitted order back to a draft, while no supplier has confirmed it."""
    return _action(
        order_id,
        lambda order, form: canteen.reopen(db.session, order, current_user, utcnow()),
        _("The order is a draft again; submit it when it is ready."),
    )


@bp.post("/orders/<int:order_id>/cancel")
@buyers_only
def cancel(order_id: int):
    """Cancel the order, saying why; suppliers already told are told again."""
    return _action(
        order_id,
        lambda order, form: canteen.cancel(
            db.session, order, current_user, utcnow(), form.reason.data
        ),
        _("Order cancelled."),
        ReasonForm,
    )


@bp.post("/orders/<int:order_id>/copy")
@buyers_only
def copy(order_id: int):
    """A new draft with this order's lines, at today's prices."""
    source = canteen.get_order(db.session, current_user, order_id)
    if not ActionForm().validate():
        abort(400)
    try:
        order, skipped = canteen.copy_order(db.session, source, current_user, utcnow())
        db.session.commit()
    except DomainError as error:
        db.session.rollback()
        flash(str(error.message), "danger")
        return redirect(url_for("canteen.order_detail", order_id=order_id), 303)
    flash(
        _("Copied into draft %(number)s; check the delivery date.", number=order.number), "success"
    )
    if skipped:
        flash(
            _(
                "Left out, as they can no longer be ordered that way: %(names)s",
                names="、".join(skipped),
            ),
            "warning",
        )
    return redirect(url_for("canteen.order_detail", order_id=order.id), 303)


@bp.post("/orders/<int:order_id>/lines/<int:line_id>/accept")
@buyers_only
def accept_reduction(order_id: int, line_id: int):
    """Accept the supplier's smaller quantity for a line."""
    return _action(
        order_id,
        lambda order, form: canteen.answer_proposal(
            db.session, order, line_id, current_user, utcnow(), accept=True
        ),
        _("Reduced quantity accepted."),
    )


@bp.post("/orders/<int:order_id>/lines/<int:line_id>/cancel")
@buyers_only
def cancel_line(order_id: int, line_id: int):
    """Cancel a line the supplier cannot fill in full."""
    return _action(
        order_id,
        lambda order, form: canteen.answer_proposal(
            db.session, order, line_id, current_user, utcnow(), accept=False
        ),
        _("Line cancelled."),
    )


# --- goods-in ----------------------------------------------------------------------------------


@bp.route("/deliveries/<int:delivery_id>/goods-in", methods=["GET", "POST"])
@managers_only
def goods_in(delivery_id: int):
    """Check a delivery in: the quantities actually received, refusals with reasons, sign-off."""
    delivery = canteen.get_delivery(db.session, current_user, delivery_id)
    if not canteen.can_manage(current_user, delivery.order):
        abort(403)
    form = ActionForm()
    typed: dict[int, ReceivedLine] = {}
    errors: dict[int, str] = {}
    status = 200
    if request.method == "POST":
        if not form.validate():
            abort(400)
        typed = {
            line.id: ReceivedLine(
                received=request.form.get(f"received-{line.id}", ""),
                rejected=request.form.get(f"rejected-{line.id}", ""),
                note=request.form.get(f"note-{line.id}", ""),
            )
            for line in delivery.open_lines
        }
        try:
            invoice = canteen.receive(
                db.session, delivery, current_user, utcnow(), typed, _policy()
            )
            db.session.commit()
        except LineErrors as error:
            db.session.rollback()
            errors, status = error.errors, 400
            flash(str(error.message), "danger")
        except DomainError as error:
            db.session.rollback()
            flash(str(error.message), "danger")
            return redirect(url_for("canteen.order_detail", order_id=delivery.order_id), 303)
        else:
            flash(
                _("Goods-in signed off; invoice %(number)s issued.", number=invoice.number),
                "success",
            )
            return redirect(url_for("invoices.detail", invoice_id=invoice.id), 303)
    return render_template(
        "canteen/goods_in.html",
        delivery=delivery,
        order=delivery.order,
        form=form,
        typed=typed,
        errors=errors,
        tolerance=_policy().goods_in_tolerance_percent,
    ), status
