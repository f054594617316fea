"""Invoices, credit notes and bank-transfer payments for canteen deliveries.

Billing rule (the one rule, written on every invoice): each line is billed at
received quantity x frozen unit price, rounded half up to the fen (app.services.money.line_total);
the invoice total is the sum of its line amounts. Nothing else is rounded.

Numbers run 1, 2, 3 ... per supplier, invoices and credit notes in one sequence, without gaps:
the number is taken by an UPDATE of the supplier's sequence row inside the issuing transaction,
which holds that row until the commit, so a rolled-back invoice gives its number back and two
sign-offs for one supplier take consecutive numbers. An issued invoice is never changed; a
correction is a credit note (negative lines) that points at it, possibly after the invoice was
paid. Payments are bank transfers recorded by finance, possibly several per invoice, never more
in total than is due; a credit note issued after payment leaves the supplier owing the
difference, and its transfer back is recorded as a negative payment, never more than is owed.
Either amount is claimed with a conditional UPDATE so two clerks cannot overpay (or over-refund)
it together.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import Session, joinedload, selectinload

from app.models import (
    BankPayment,
    Invoice,
    InvoiceKind,
    InvoiceLine,
    InvoiceSequence,
    Role,
    SupplierDelivery,
)
from app.services import ledger, notify
from app.services.accounts import Actor
from app.services.clock import local_date
from app.services.errors import DomainError, LineErrors, NotFound, PermissionDenied
from app.services.money import MoneyFormatError, format_yuan, line_total, parse_yuan
from app.services.pagination import Page, paginate
from app.services.pricing import QuantityError, fmt_quantity, parse_quantity

FINANCE_ROLES = (Role.COORDINATOR, Role.ADMIN)

BILLING_RULE = _l(
    "Each line: received quantity × unit price, rounded half up to the fen; "
    "the total is the sum of the lines."
)


def _take_number(session: Session, supplier_id: int) -> int:
    """The supplier's next invoice number, held by this transaction until it ends."""
    taken = session.execute(
        sa.update(InvoiceSequence)
        .where(InvoiceSequence.supplier_id == supplier_id)
        .values(next_number=InvoiceSequence.next_number + 1)
        .returning(InvoiceSequence.next_number)
    ).scalar()
    if taken is None:
        try:
            with session.begin_nested():
                session.add(InvoiceSequence(supplier_id=supplier_id, next_number=2))
        except sa.exc.IntegrityError:
            # Another transaction created the row first: take the next one from it.
            return _take_number(session, supplier_id)
        return 1
    return taken - 1


def _number(delivery_or_invoice, sequence: int) -> str:
    return f"{delivery_or_invoice.supplier.code}-{sequence:06d}"


def issue_for_delivery(
    session: Session, delivery: SupplierDelivery, actor: Actor, now: datetime
) -> Invoice:
    sequence = _take_number(session, delivery.supplier_id)
    lines = [
        InvoiceLine(
            order_line_id=line.id,
            product_code=line.product_code,
            name_zh=line.name_zh,
            unit=line.unit,
            ordered_quantity=line.quantity,
            quantity=line.received_quantity,
            unit_price_fen=line.unit_price_fen,
            amount_fen=line_total(line.unit_price_fen, line.received_quantity),
        )
        for line in delivery.open_lines
    ]
    invoice = Invoice(
        kind=InvoiceKind.INVOICE,
        supplier_id=delivery.supplier_id,
        sequence_number=sequence,
        number=_number(delivery, sequence),
        delivery_id=delivery.id,
        buyer_organization_id=delivery.order.organization_id,
        total_fen=sum(line.amount_fen for line in lines),
        issued_at=now,
        issued_by_id=actor.id,
        lines=lines,
    )
    session.add(invoice)
    session.flush()
    return invoice


# --- who sees what -----------------------------------------------------------------------------


def can_view(actor: Actor, invoice: Invoice) -> bool:
    if actor.has_role(*FINANCE_ROLES):
        return True
    if actor.has_role(Role.SUPPLIER) and actor.organization_id == invoice.supplier_id:
        return True
    return actor.organization_id == invoice.buyer_organization_id and actor.has_role(
        Role.CANTEEN_BUYER, Role.CANTEEN_MANAGER
    )


def get_invoice(session: Session, actor: Actor, invoice_id: int) -> Invoice:
    invoice = session.scalar(
        sa.select(Invoice)
        .where(Invoice.id == invoice_id)
        .options(
            selectinload(Invoice.lines),
            selectinload(Invoice.payments),
            selectinload(Invoice.credit_notes),
            joinedload(Invoice.supplier),
            joinedload(Invoice.buyer_organization),
            joinedload(Invoice.delivery).joinedload(SupplierDelivery.order),
        )
    )
    if invoice is None or not can_view(actor, invoice):
        raise NotFound(_l("There is no such invoice."))
    return invoice


def list_invoices(
    session: Session,
    actor: Actor,
    page: int,
    *,
    supplier_id: int | None = None,
    outstanding_only: bool = False,
    per_page: int = 30,
) -> Page:
    stmt = sa.select(Invoice).options(
        joinedload(Invoice.supplier), selectinload(Invoice.credit_notes)
    )
    if not actor.has_role(*FINANCE_ROLES):
        if actor.has_role(Role.SUPPLIER):
            stmt = stmt.where(Invoice.supplier_id == actor.organization_id)
        elif actor.has_role(Role.CANTEEN_BUYER, Role.CANTEEN_MANAGER):
            stmt = stmt.where(Invoice.buyer_organization_id == actor.organization_id)
        else:
            stmt = stmt.where(sa.false())
    if supplier_id:
        stmt = stmt.where(Invoice.supplier_id == supplier_id)
    if outstanding_only:
        # Either way: still to pay the supplier, or the supplier owes a refund.
        stmt = stmt.where(
            Invoice.kind == InvoiceKind.INVOICE,
            Invoice.total_fen + _credited_subquery() - Invoice.paid_fen != 0,
        )
    return paginate(
        session, stmt.order_by(Invoice.issued_at.desc(), Invoice.id.desc()), page, per_page
    )


CreditNote = sa.orm.aliased(Invoice)


def _require_finance(actor: Actor) -> None:
    if not actor.has_role(*FINANCE_ROLES):
        raise PermissionDenied(_l("Only finance (coordinators) can do this."))


# --- payments ----------------------------------------------------------------------------------


def _checked_transfer(
    invoice: Invoice, actor: Actor, now: datetime, paid_on: date | None, reference: str, amount
) -> tuple[str, int]:
    """A bank transfer's reference and amount (fen, above zero), checked for `invoice`."""
    _require_finance(actor)
    if invoice.kind != InvoiceKind.INVOICE:
        raise DomainError(_l("Payments are recorded against invoices, not credit notes."))
    if paid_on is None:
        raise DomainError(_l("Enter the date of the transfer."), field="paid_on")
    if paid_on > local_date(now):
        raise DomainError(_l("The transfer date cannot be in the future."), field="paid_on")
    if paid_on < local_date(invoice.issued_at):
        raise DomainError(_l("The transfer cannot be before the invoice."), field="paid_on")
    reference = (reference or "").strip()
    if not reference:
        raise DomainError(_l("Enter the bank reference of the transfer."), field="reference")
    if len(reference) > 64:
        raise DomainError(_l("At most %(n)d characters.", n=64), field="reference")
    try:
        amount_fen = parse_yuan(amount)
    except MoneyFormatError:
        raise DomainError(
            _l("Enter an amount in yuan with at most two decimals, e.g. 1234.50."), field="amount"
        ) from None
    if amount_fen <= 0:
        raise DomainError(_l("Enter an amount above zero."), field="amount")
    return reference, amount_fen


def _credited_subquery():
    return (
        sa.select(sa.func.coalesce(sa.func.sum(CreditNote.total_fen), 0))
        .where(CreditNote.corrects_id == Invoice.id)
        .scalar_subquery()
    )


def _wait_for_credit_notes(session: Session, invoice: Invoice) -> None:
    # Wait for a credit note being issued on this invoice right now (it locks the row), so the
    # caller's UPDATE, a new statement, sees it: an UPDATE that waits for a row re-checks only
    # that row afterwards, and would count the credit notes as they were before it waited.
    session.execute(sa.select(Invoice.id).where(Invoice.id == invoice.id).with_for_update())


def record_payment(
    session: Session,
    invoice: Invoice,
    actor: Actor,
    now: datetime,
    *,
    paid_on: date | None,
    reference: str,
    amount: str,
) -> BankPayment:
    reference, amount_fen = _checked_transfer(invoice, actor, now, paid_on, reference, amount)
    _wait_for_credit_notes(session, invoice)
    claimed = session.execute(
        sa.update(Invoice)
        .where(
            Invoice.id == invoice.id,
            Invoice.paid_fen + amount_fen <= Invoice.total_fen + _credited_subquery(),
        )
        .values(paid_fen=Invoice.paid_fen + amount_fen)
        .execution_options(synchronize_session=False)
    ).rowcount
    session.refresh(invoice)
    if claimed != 1:
        raise DomainError(
            _l(
                "That is more than the %(outstanding)s still outstanding.",
                outstanding=format_yuan(max(invoice.outstanding_fen, 0)),
            ),
            field="amount",
        )
    return _book_transfer(session, invoice, actor, now, paid_on, reference, amount_fen)


def _book_transfer(
    session: Session,
    invoice: Invoice,
    actor: Actor,
    now: datetime,
    paid_on: date,
    reference: str,
    amount_fen: int,
) -> BankPayment:
    """The bank transfer row (negative: the supplier paying back), and the supplier told."""
    payment = BankPayment(
        invoice=invoice,
        paid_on=paid_on,
        reference=reference,
        amount_fen=amount_fen,
        recorded_by_id=actor.id,
        recorded_at=now,
    )
    session.add(payment)
    notify.notify(
        session,
        notify.users_with(session, invoice.supplier_id, Role.SUPPLIER),
        "invoice_paid" if amount_fen > 0 else "invoice_refunded",
        {"invoice": invoice.number, "amount": format_yuan(abs(amount_fen))},
        link=f"/invoices/{invoice.id}",
        now=now,
    )
    return payment


def record_refund(
    session: Session,
    invoice: Invoice,
    actor: Actor,
    now: datetime,
    *,
    paid_on: date | None,
    reference: str,
    amount: str,
) -> BankPayment:
    """The supplier's transfer back of what a credit note took off an invoice already paid:
    at most what it owes, recorded as a negative payment."""
    reference, amount_fen = _checked_transfer(invoice, actor, now, paid_on, reference, amount)
    _wait_for_credit_notes(session, invoice)
    # Never below what is due: what was paid less what came back stays at least the amount due
    # (and so, due never being negative, paid_fen never goes below zero).
    claimed = session.execute(
        sa.update(Invoice)
        .where(
            Invoice.id == invoice.id,
            Invoice.paid_fen - amount_fen >= Invoice.total_fen + _credited_subquery(),
        )
        .values(paid_fen=Invoice.paid_fen - amount_fen)
        .execution_options(synchronize_session=False)
    ).rowcount
    session.refresh(invoice)
    if claimed != 1:
        raise DomainError(
            _l(
                "That is more than the %(owed)s the supplier owes back.",
                owed=format_yuan(invoice.refund_due_fen),
            ),
            field="amount",
        )
    return _book_transfer(session, invoice, actor, now, paid_on, reference, -amount_fen)


def creditable(invoice: Invoice) -> dict[int, Decimal]:
    """{invoice line id: quantity that can still be credited}: as billed, less earlier credit
    notes. Whether the invoice was paid does not matter (a refund is then due)."""
    already: dict[int, Decimal] = {}
    for note in invoice.credit_notes:
        for line in note.lines:
            already[line.order_line_id] = already.get(line.order_line_id, 0) + line.quantity
    return {line.id: line.quantity - already.get(line.order_line_id, 0) for line in invoice.lines}


def credit(
    session: Session,
    invoice: Invoice,
    actor: Actor,
    now: datetime,
    quantities: Mapping[int, object],
    reason: str,
) -> Invoice:
    """A credit note taking `quantities` (invoice line id -> quantity) off an invoice."""
    _require_finance(actor)
    if invoice.kind != InvoiceKind.INVOICE:
        raise DomainError(_l("A credit note corrects an invoice, not another credit note."))
    reason = (reason or "").strip()
    if not reason:
        raise DomainError(_l("Give a reason."), field="reason")
    if len(reason) > 255:
        raise DomainError(_l("At most %(n)d characters.", n=255), field="reason")
    # Lock the invoice row first, then read what was credited on it again, so that another
    # credit note committed meanwhile counts in the checks below, and none can slip in between
    # them and this one (a payment or refund waits for the lock too, and then counts this one).
    session.execute(
        sa.update(Invoice).where(Invoice.id == invoice.id).values(paid_fen=Invoice.paid_fen)
    )
    session.refresh(invoice, ["paid_fen", "credit_notes"])
    left_per_line = creditable(invoice)
    lines: list[InvoiceLine] = []
    errors: dict[int, str] = {}
    for line in invoice.lines:
        try:
            quantity = parse_quantity(quantities.get(line.id))
        except QuantityError as error:
            errors[line.id] = str(error.message)
            continue
        if not quantity:
            continue
        left = left_per_line[line.id]
        if quantity > left:
            errors[line.id] = str(
                _l("At most %(left)s can still be credited.", left=fmt_quantity(left))
            )
            continue
        lines.append(
            InvoiceLine(
                order_line_id=line.order_line_id,
                product_code=line.product_code,
                name_zh=line.name_zh,
                unit=line.unit,
                ordered_quantity=line.ordered_quantity,
                quantity=quantity,
                unit_price_fen=line.unit_price_fen,
                amount_fen=-line_total(line.unit_price_fen, quantity),
            )
        )
    if errors:
        raise LineErrors(errors)
    if not lines:
        raise DomainError(_l("Enter the quantity to credit on at least one line."))
    total = sum(line.amount_fen for line in lines)
    # Paid or not: a correction found after settlement is recorded all the same, and the
    # supplier then owes the difference back. Only the amount still billed bounds it (line
    # amounts credited in parts can round to a fen more than the line was billed).
    if -total > invoice.due_fen:
        raise DomainError(
            _l(
                "The credit (%(credit)s) is more than the %(due)s still billed on this invoice.",
                credit=format_yuan(-total),
                due=format_yuan(invoice.due_fen),
            )
        )
    sequence = _take_number(session, invoice.supplier_id)
    note = Invoice(
        kind=InvoiceKind.CREDIT_NOTE,
        supplier_id=invoice.supplier_id,
        sequence_number=sequence,
        number=_number(invoice, sequence),
        delivery_id=invoice.delivery_id,
        corrects=invoice,
        buyer_organization_id=invoice.buyer_organization_id,
        total_fen=total,
        reason=reason,
        issued_at=now,
        issued_by_id=actor.id,
        lines=lines,
    )
    session.add(note)
    session.flush()
    ledger.bulk_credited(session, invoice, note, actor, now)
    notify.notify(
        session,
        notify.users_with(session, invoice.supplier_id, Role.SUPPLIER),
        "credit_note",
        {"invoice": note.number, "amount": format_yuan(total), "corrects": invoice.number},
        link=f"/invoices/{note.id}",
        now=now,
    )
    return note


def status_label(invoice: Invoice):
    if invoice.kind == InvoiceKind.CREDIT_NOTE:
        return _l("Credit note")
    if invoice.outstanding_fen < 0:
        return _l("Refund due from supplier")
    if invoice.outstanding_fen == 0:
        return _l("Paid")
    if invoice.paid_fen > 0:
        return _l("Partly paid")
    return _l("Outstanding")
