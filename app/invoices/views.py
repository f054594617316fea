"""Invoices and credit notes: the printable page, the PDF, bank payments and corrections."""

from __future__ import annotations

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import DateField, StringField
from wtforms.validators import DataRequired, Length, Optional

from app.extensions import db
from app.models import InvoiceKind, Organization, OrgKind, Role
from app.services import invoices
from app.services.clock import utcnow
from app.services.errors import DomainError, LineErrors
from app.services.money import format_yuan
from app.web.access import roles_required
from app.web.forms import add_domain_error, requested_page, whole_number

bp = Blueprint("invoices", __name__)

invoice_readers = roles_required(
    Role.SUPPLIER, Role.CANTEEN_BUYER, Role.CANTEEN_MANAGER, Role.COORDINATOR, Role.ADMIN
)
finance_only = roles_required(*invoices.FINANCE_ROLES)


class PaymentForm(FlaskForm):
    paid_on = DateField(_l("Transfer date"), validators=[Optional()], format="%Y-%m-%d")
    reference = StringField(
        _l("Bank reference"),
        validators=[
            DataRequired(message=_l("Enter the bank reference of the transfer.")),
            Length(max=64),
        ],
    )
    amount = StringField(
        _l("Amount (yuan)"),
        validators=[DataRequired(message=_l("Enter the amount.")), Length(max=16)],
    )


class CreditForm(FlaskForm):
    """Quantities travel as credit-<invoice line id>."""

    reason = StringField(
        _l("Reason for the correction"),
        validators=[DataRequired(message=_l("Give a reason.")), Length(max=255)],
    )


@bp.get("/")
@invoice_readers
def index():
    """Invoices the reader may see: a supplier its own, a canteen its own, finance all."""
    raw = request.args.get("supplier", "")
    if raw and whole_number(raw) is None:
        abort(400, description=_l("That filter value is not valid."))
    outstanding = request.args.get("outstanding") == "1"
    page = invoices.list_invoices(
        db.session,
        current_user,
        requested_page(),
        supplier_id=int(raw) if raw else None,
        outstanding_only=outstanding,
    )
    suppliers = []
    if current_user.has_role(*invoices.FINANCE_ROLES):
        suppliers = db.session.scalars(
            db.select(Organization)
            .where(Organization.kind == OrgKind.SUPPLIER)
            .order_by(Organization.name_zh)
        ).all()
    return render_template(
        "invoices/index.html",
        page=page,
        suppliers=suppliers,
        supplier_id=int(raw) if raw else None,
        outstanding=outstanding,
        status_label=invoices.status_label,
    )


def _render(
    invoice,
    payment_form=None,
    credit_form=None,
    credit_errors=None,
    refund_form=None,
    status=200,
):
    creditable = invoices.creditable(invoice) if invoice.kind == InvoiceKind.INVOICE else {}
    return render_template(
        "invoices/detail.html",
        invoice=invoice,
        payment_form=payment_form or PaymentForm(),
        # The same fields: the page shows one of the two, by the sign of what is outstanding.
        refund_form=refund_form or PaymentForm(),
        credit_form=credit_form or CreditForm(),
        credit_errors=credit_errors or {},
        can_credit=any(left > 0 for left in creditable.values()),
        status_label=invoices.status_label,
        billing_rule=invoices.BILLING_RULE,
        is_finance=current_user.has_role(*invoices.FINANCE_ROLES),
    ), status


@bp.get("/<int:invoice_id>")
@invoice_readers
def detail(invoice_id: int):
    """The invoice as a printable page: lines, received quantities, amounts, payments."""
    return _render(invoices.get_invoice(db.session, current_user, invoice_id))


@bp.get("/<int:invoice_id>.pdf")
@invoice_readers
def download_pdf(invoice_id: int):
    """The same invoice as a PDF file."""
    # Imported here: fpdf and its font tools cost a worker ~20 MB, and few requests are PDFs.
    from app.services import pdf

    invoice = invoices.get_invoice(db.session, current_user, invoice_id)
    data = pdf.invoice_pdf(invoice, font_path=current_app.config["PDF_FONT_PATH"])
    response = current_app.response_class(data, mimetype="application/pdf")
    response.headers["Content-Disposition"] = f"attachment; filename={invoice.number}.pdf"
    return response


@bp.post("/<int:invoice_id>/payments")
@finance_only
def record_payment(invoice_id: int):
    """Record a bank transfer against the invoice (part or all of what is outstanding)."""
    return _record_transfer(invoice_id, invoices.record_payment, "payment_form")


@bp.post("/<int:invoice_id>/refunds")
@finance_only
def record_refund(invoice_id: int):
    """Record the supplier's transfer back of what a credit note took off a paid invoice."""
    return _record_transfer(invoice_id, invoices.record_refund, "refund_form")


def _record_transfer(invoice_id: int, record, form_name: str):
    invoice = invoices.get_invoice(db.session, current_user, invoice_id)
    form = PaymentForm()
    if not form.validate():
        return _render(invoice, **{form_name: form}, status=400)
    try:
        payment = record(
            db.session,
            invoice,
            current_user,
            utcnow(),
            paid_on=form.paid_on.data,
            reference=form.reference.data,
            amount=form.amount.data,
        )
        db.session.commit()
    except DomainError as error:
        db.session.rollback()
        add_domain_error(form, error)
        return _render(invoice, **{form_name: form}, status=error.status_code)
    if payment.amount_fen > 0:
        done = _("Payment of %(amount)s recorded.", amount=format_yuan(payment.amount_fen))
    else:
        done = _(
            "Refund of %(amount)s from the supplier recorded.",
            amount=format_yuan(-payment.amount_fen),
        )
    flash(done, "success")
    return redirect(url_for("invoices.detail", invoice_id=invoice_id), 303)


@bp.post("/<int:invoice_id>/credit")
@finance_only
def credit(invoice_id: int):
    """Issue a credit note taking quantities off the invoice; the invoice itself never changes."""
    invoice = invoices.get_invoice(db.session, current_user, invoice_id)
    if invoice.kind != InvoiceKind.INVOICE:
        abort(404)
    form = CreditForm()
    if not form.validate():
        return _render(invoice, credit_form=form, status=400)
    quantities = {line.id: request.form.get(f"credit-{line.id}", "") for line in invoice.lines}
    try:
        note = invoices.credit(
            db.session, invoice, current_user, utcnow(), quantities, form.reason.data
        )
        db.session.commit()
    except LineErrors as error:
        db.session.rollback()
        form.form_errors.append(error.message)
        return _render(invoice, credit_form=form, credit_errors=error.errors, status=400)
    except DomainError as error:
        db.session.rollback()
        add_domain_error(form, error)
        return _render(invoice, credit_form=form, status=error.status_code)
    flash(_("Credit note %(number)s issued.", number=note.number), "success")
    return redirect(url_for("invoices.detail", invoice_id=note.id), 303)
