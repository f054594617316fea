"""Invoices, credit notes and bank payments (app.services.invoices), amounts to the fen."""

from __future__ import annotations

import threading
import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa
from flask_babel import force_locale
from sqlalchemy.orm import Session

from app.models import (
    DeliveryStatus,
    Invoice,
    InvoiceKind,
    InvoiceSequence,
    Notification,
    Role,
    User,
)
from app.services import accounts, canteen, invoices
from app.services.canteen import CanteenPolicy, ReceivedLine
from app.services.errors import DomainError, LineErrors, NotFound, PermissionDenied
from tests import helpers
from tests.helpers import CanteenWorld

NOW = datetime(2026, 11, 27, 2, 0, tzinfo=UTC)
GOODS_IN = datetime(2026, 12, 4, 1, 0, tzinfo=UTC)
PAY_TIME = datetime(2026, 12, 10, 3, 0, tzinfo=UTC)
PAID_ON = date(2026, 12, 10)
POLICY = CanteenPolicy(approval_threshold_fen=10_000_000)


@pytest.fixture(autouse=True)
def _english(app, monkeypatch):
    monkeypatch.setattr(accounts, "generate_password_hash", helpers.cheap_password_hash)
    with app.app_context(), force_locale("en"):
        yield


@pytest.fixture
def w(make) -> CanteenWorld:
    return make.canteen_world()


@pytest.fixture
def finance(make):
    return make.user(roles={Role.COORDINATOR})


def _received(session, make, w: CanteenWorld, supplier, quantities, received=None) -> Invoice:
    """An order of `quantities` [(product, qty)] of one supplier, shipped and checked in with
    `received` (product -> quantity; the ordered quantity where not given): its invoice."""
    order = make.bulk_order(w.buyer, quantities, now=NOW, policy=POLICY)
    [delivery] = [d for d in order.deliveries if d.supplier_id == supplier.id]
    seller = w.seller_a if supplier is w.supplier_a else w.seller_b
    make.shipped(delivery, seller, now=NOW + timedelta(days=6))
    received = received or {}
    entries = {
        line.id: ReceivedLine(str(received.get(line.product_id, line.quantity)))
        for line in delivery.lines
    }
    invoice = canteen.receive(session, delivery, w.manager, GOODS_IN, entries, POLICY)
    session.commit()
    return invoice


@pytest.fixture
def invoice(session, make, w) -> Invoice:
    """Supplier A's invoice: 38.65 of 40 kg bacon at 19.99 (772.61) and 80 boxes of mushrooms
    at 42.00 (3,360.00, ordered 120 at the 100-box tier): 4,132.61."""
    return _received(
        session,
        make,
        w,
        w.supplier_a,
        [(w.bacon, "40"), (w.mushrooms, "120")],
        {w.bacon.id: "38.65", w.mushrooms.id: "80"},
    )


def _record(session, invoice, who, amount, **kwargs):
    values = {"paid_on": PAID_ON, "reference": "CCB-20261210-001", "amount": amount, **kwargs}
    payment = invoices.record_payment(session, invoice, who, PAY_TIME, **values)
    session.commit()
    return payment


def _refund(session, invoice, who, amount, **kwargs):
    values = {"paid_on": PAID_ON, "reference": "DZ-BACK-001", "amount": amount, **kwargs}
    payment = invoices.record_refund(session, invoice, who, PAY_TIME, **values)
    session.commit()
    return payment


def _lines(invoice):
    return {line.name_zh: line for line in invoice.lines}


# --- numbering -----------------------------------------------------------------------------------


def test_numbers_run_per_supplier_across_invoices_and_credit_notes(
    session, make, w, finance, invoice
):
    second_a = _received(session, make, w, w.supplier_a, [(w.bacon, "20")])
    first_b = _received(session, make, w, w.supplier_b, [(w.tea, "5")])
    note = invoices.credit(
        session, invoice, finance, PAY_TIME, {_lines(invoice)["香菇"].id: "1"}, "一箱破损"
    )
    session.commit()
    third_a = _received(session, make, w, w.supplier_a, [(w.mushrooms, "10")])
    second_b = _received(session, make, w, w.supplier_b, [(w.tea, "5")])

    a, b = w.supplier_a.code, w.supplier_b.code
    assert [(x.kind, x.sequence_number, x.number) for x in (invoice, second_a, note, third_a)] == [
        (InvoiceKind.INVOICE, 1, f"{a}-000001"),
        (InvoiceKind.INVOICE, 2, f"{a}-000002"),
        (InvoiceKind.CREDIT_NOTE, 3, f"{a}-000003"),
        (InvoiceKind.INVOICE, 4, f"{a}-000004"),
    ]
    assert [(x.sequence_number, x.number) for x in (first_b, second_b)] == [
        (1, f"{b}-000001"),
        (2, f"{b}-000002"),
    ]


@pytest.mark.parametrize("earlier_invoices", [0, 1])
def test_a_rolled_back_invoice_gives_its_number_back(session, make, w, earlier_invoices):
    """Whether the supplier's sequence already exists or is created by the rolled-back issue."""
    for _ in range(earlier_invoices):
        _received(session, make, w, w.supplier_a, [(w.bacon, "20")])
    order = make.bulk_order(w.buyer, [(w.bacon, "40")], now=NOW, policy=POLICY)
    [delivery] = order.deliveries
    make.shipped(delivery, w.seller_a, now=NOW)
    entries = {line.id: ReceivedLine("40") for line in delivery.lines}

    savepoint = session.begin_nested()
    doomed = canteen.receive(session, delivery, w.manager, GOODS_IN, entries, POLICY)
    assert doomed.sequence_number == earlier_invoices + 1
    savepoint.rollback()  # e.g. the commit failed: nothing of it stays
    session.expire_all()
    assert delivery.status == DeliveryStatus.SHIPPED
    assert session.scalar(sa.select(sa.func.count(Invoice.id))) == earlier_invoices

    kept = canteen.receive(session, delivery, w.manager, GOODS_IN, entries, POLICY)
    session.commit()
    assert kept.sequence_number == earlier_invoices + 1
    assert kept.number == f"{w.supplier_a.code}-{earlier_invoices + 1:06d}"
    assert session.get(InvoiceSequence, w.supplier_a.id).next_number == earlier_invoices + 2


# --- the invoice ---------------------------------------------------------------------------------


def test_an_invoice_bills_received_quantities_at_the_frozen_prices(session, w, invoice):
    lines = _lines(invoice)
    assert (lines["腊肉"].ordered_quantity, lines["腊肉"].quantity) == (40, Decimal("38.65"))
    assert (lines["腊肉"].unit_price_fen, lines["腊肉"].amount_fen) == (1999, 77_261)
    assert (lines["香菇"].quantity, lines["香菇"].unit_price_fen, lines["香菇"].amount_fen) == (
        80,
        4200,
        336_000,
    )
    assert invoice.total_fen == 413_261
    assert (invoice.kind, invoice.paid_fen, invoice.outstanding_fen) == (
        InvoiceKind.INVOICE,
        0,
        413_261,
    )
    assert (invoice.issued_at, invoice.issued_by_id) == (GOODS_IN, w.manager.id)


def test_who_sees_an_invoice(session, make, w, invoice, finance):
    for viewer in (w.seller_a, w.buyer, w.manager, finance):
        assert invoices.get_invoice(session, viewer, invoice.id) is invoice
    stranger = make.canteen_world(canteen_name="别的食堂")
    for outsider in (w.seller_b, stranger.buyer, stranger.manager, stranger.seller_a):
        with pytest.raises(NotFound):
            invoices.get_invoice(session, outsider, invoice.id)
        assert invoices.list_invoices(session, outsider, 1).items == []
    assert [x.id for x in invoices.list_invoices(session, w.seller_a, 1).items] == [invoice.id]


# --- payments ------------------------------------------------------------------------------------


def test_an_invoice_is_paid_in_parts_and_never_overpaid(session, w, invoice, finance):
    assert str(invoices.status_label(invoice)) == "Outstanding"
    _record(session, invoice, finance, "4000.00")
    assert (invoice.paid_fen, invoice.outstanding_fen) == (400_000, 13_261)
    assert str(invoices.status_label(invoice)) == "Partly paid"
    outstanding = invoices.list_invoices(session, finance, 1, outstanding_only=True).items
    assert [x.id for x in outstanding] == [invoice.id]

    with pytest.raises(DomainError) as refused:
        _record(session, invoice, finance, "132.62")
    assert (str(refused.value.message), refused.value.field) == (
        "That is more than the ¥132.61 still outstanding.",
        "amount",
    )
    assert invoice.paid_fen == 400_000

    _record(session, invoice, finance, "¥132.61", reference="CCB-20261210-002")
    assert (invoice.paid_fen, invoice.outstanding_fen) == (413_261, 0)
    assert str(invoices.status_label(invoice)) == "Paid"
    assert invoices.list_invoices(session, finance, 1, outstanding_only=True).items == []
    with pytest.raises(DomainError, match=r"more than the ¥0\.00"):
        _record(session, invoice, finance, "0.01")
    assert [p.amount_fen for p in invoice.payments] == [400_000, 13_261]


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"paid_on": None}, "paid_on", "Enter the date of the transfer."),
        ({"paid_on": date(2026, 12, 11)}, "paid_on", "The transfer date cannot be in the future."),
        ({"paid_on": date(2026, 12, 3)}, "paid_on", "The transfer cannot be before the invoice."),
        ({"reference": "  "}, "reference", "Enter the bank reference of the transfer."),
        ({"reference": "x" * 65}, "reference", "At most 64 characters."),
        (
            {"amount": "12.345"},
            "amount",
            "Enter an amount in yuan with at most two decimals, e.g. 1234.50.",
        ),
        (
            {"amount": "-5"},
            "amount",
            "Enter an amount in yuan with at most two decimals, e.g. 1234.50.",
        ),
        ({"amount": "0"}, "amount", "Enter an amount above zero."),
    ],
)
def test_a_payment_that_is_not_right_is_refused(session, invoice, finance, change, field, message):
    values = {"paid_on": PAID_ON, "reference": "CCB-1", "amount": "100", **change}
    with pytest.raises(DomainError) as refused:
        invoices.record_payment(session, invoice, finance, PAY_TIME, **values)
    assert (str(refused.value.message), refused.value.field) == (message, field)
    session.expire_all()
    assert (invoice.paid_fen, invoice.payments) == (0, [])


def test_only_finance_records_payments_and_only_against_invoices(session, w, invoice, finance):
    for clerk in (w.buyer, w.manager, w.seller_a):
        with pytest.raises(PermissionDenied):
            _record(session, invoice, clerk, "100")
    note = invoices.credit(
        session, invoice, finance, PAY_TIME, {_lines(invoice)["香菇"].id: "1"}, "破损"
    )
    with pytest.raises(DomainError, match="not credit notes"):
        _record(session, note, finance, "42")


# --- credit notes --------------------------------------------------------------------------------


def test_a_credit_note_takes_an_amount_off_and_leaves_the_invoice_as_issued(
    session, w, invoice, finance
):
    lines = _lines(invoice)
    note = invoices.credit(
        session,
        invoice,
        finance,
        PAY_TIME,
        {lines["香菇"].id: "2", lines["腊肉"].id: "0.65"},
        "两箱发霉；腊肉称重有误",
    )
    session.commit()
    session.expire_all()
    # 2 x 42.00 = 84.00 and 0.65 x 19.99 = 12.9935 -> 12.99: 96.99 off.
    assert [(x.name_zh, x.quantity, x.unit_price_fen, x.amount_fen) for x in note.lines] == [
        ("腊肉", Decimal("0.65"), 1999, -1299),
        ("香菇", 2, 4200, -8400),
    ]
    assert (note.kind, note.total_fen, note.corrects_id, note.reason) == (
        InvoiceKind.CREDIT_NOTE,
        -9699,
        invoice.id,
        "两箱发霉；腊肉称重有误",
    )
    assert (note.supplier_id, note.buyer_organization_id, note.delivery_id) == (
        invoice.supplier_id,
        invoice.buyer_organization_id,
        invoice.delivery_id,
    )
    assert str(invoices.status_label(note)) == "Credit note"
    # The invoice itself is as it was issued; what is owed on it is less.
    assert invoice.total_fen == 413_261
    assert [x.amount_fen for x in invoice.lines] == [77_261, 336_000]
    assert (invoice.credited_fen, invoice.due_fen, invoice.outstanding_fen) == (
        9699,
        403_562,
        403_562,
    )
    [told] = session.scalars(
        sa.select(Notification).where(
            Notification.user_id == w.seller_a.id, Notification.kind == "credit_note"
        )
    ).all()
    assert told.params == {"invoice": note.number, "amount": "-¥96.99", "corrects": invoice.number}

    # Paying what is still owed settles it; the original total would be too much.
    with pytest.raises(DomainError, match=r"¥4,035\.62"):
        _record(session, invoice, finance, "4132.61")
    _record(session, invoice, finance, "4035.62")
    assert (invoice.outstanding_fen, str(invoices.status_label(invoice))) == (0, "Paid")


def test_no_more_can_be_credited_on_a_line_than_was_billed(session, invoice, finance):
    mushrooms = _lines(invoice)["香菇"]
    invoices.credit(session, invoice, finance, PAY_TIME, {mushrooms.id: "30"}, "退货")
    session.commit()
    with pytest.raises(LineErrors) as refused:
        invoices.credit(session, invoice, finance, PAY_TIME, {mushrooms.id: "51"}, "再退")
    assert refused.value.errors == {mushrooms.id: "At most 50 can still be credited."}
    assert session.get(InvoiceSequence, invoice.supplier_id).next_number == 3
    note = invoices.credit(session, invoice, finance, PAY_TIME, {mushrooms.id: "50"}, "再退")
    assert (note.total_fen, note.sequence_number) == (-210_000, 3)


def test_a_credit_larger_than_what_is_left_to_pay_leaves_a_refund_due(session, invoice, finance):
    mushrooms = _lines(invoice)["香菇"]
    _record(session, invoice, finance, "4000.00")  # 132.61 left
    note = invoices.credit(session, invoice, finance, PAY_TIME, {mushrooms.id: "4"}, "退货")
    session.commit()
    # 4 x 42.00 = 168.00 off what was left: 35.39 paid too much.
    assert (note.total_fen, invoice.due_fen, invoice.paid_fen) == (-16_800, 396_461, 400_000)
    assert (invoice.outstanding_fen, invoice.refund_due_fen) == (-3_539, 3_539)
    assert str(invoices.status_label(invoice)) == "Refund due from supplier"


def test_a_credit_after_full_payment_is_refunded_by_the_supplier_to_the_fen(
    session, w, invoice, finance
):
    _record(session, invoice, finance, "4132.61")
    assert (invoice.outstanding_fen, str(invoices.status_label(invoice))) == (0, "Paid")
    lines = _lines(invoice)

    # An error found after settlement: two boxes were mouldy, and 0.65 kg of bacon misweighed.
    note = invoices.credit(
        session,
        invoice,
        finance,
        PAY_TIME,
        {lines["香菇"].id: "2", lines["腊肉"].id: "0.65"},
        "两箱发霉；腊肉称重有误",
    )
    session.commit()
    assert note.total_fen == -9_699  # 84.00 + 12.99
    assert (invoice.due_fen, invoice.paid_fen) == (403_562, 413_261)
    assert (invoice.outstanding_fen, invoice.refund_due_fen) == (-9_699, 9_699)
    assert str(invoices.status_label(invoice)) == "Refund due from supplier"
    owing = invoices.list_invoices(session, finance, 1, outstanding_only=True).items
    assert [x.id for x in owing] == [invoice.id]
    # Nothing more is to be paid to the supplier.
    with pytest.raises(DomainError, match=r"more than the ¥0\.00 still outstanding"):
        _record(session, invoice, finance, "0.01")

    # The supplier cannot be recorded as paying back more than it owes.
    with pytest.raises(DomainError) as refused:
        _refund(session, invoice, finance, "97.00")
    assert (str(refused.value.message), refused.value.field) == (
        "That is more than the ¥96.99 the supplier owes back.",
        "amount",
    )
    assert (invoice.paid_fen, invoice.payments[-1].amount_fen) == (413_261, 413_261)

    # It pays back in two transfers; the second settles it to the fen.
    refund = _refund(session, invoice, finance, "90.00")
    assert (refund.amount_fen, refund.is_refund, refund.recorded_by_id) == (
        -9_000,
        True,
        finance.id,
    )
    assert (invoice.paid_fen, invoice.refund_due_fen) == (404_261, 699)
    assert str(invoices.status_label(invoice)) == "Refund due from supplier"
    _refund(session, invoice, finance, "6.99", reference="DZ-BACK-002")
    session.expire_all()
    assert (invoice.paid_fen, invoice.refunded_fen, invoice.outstanding_fen) == (403_562, 9_699, 0)
    assert str(invoices.status_label(invoice)) == "Paid"
    assert [(p.amount_fen, p.reference) for p in invoice.payments] == [
        (413_261, "CCB-20261210-001"),
        (-9_000, "DZ-BACK-001"),
        (-699, "DZ-BACK-002"),
    ]
    assert invoices.list_invoices(session, finance, 1, outstanding_only=True).items == []
    with pytest.raises(DomainError, match=r"more than the ¥0\.00 the supplier owes back"):
        _refund(session, invoice, finance, "0.01")
    # The supplier is told each transfer back arrived.
    told = session.scalars(
        sa.select(Notification)
        .where(Notification.user_id == w.seller_a.id, Notification.kind == "invoice_refunded")
        .order_by(Notification.id)
    )
    assert [n.params["amount"] for n in told] == ["¥90.00", "¥6.99"]


def test_no_refund_is_recorded_on_an_invoice_nobody_owes_back(session, w, invoice, finance):
    with pytest.raises(DomainError, match=r"more than the ¥0\.00 the supplier owes back"):
        _refund(session, invoice, finance, "1.00")  # nothing paid yet
    _record(session, invoice, finance, "4132.61")
    with pytest.raises(DomainError, match=r"more than the ¥0\.00 the supplier owes back"):
        _refund(session, invoice, finance, "1.00")  # paid exactly what is due
    session.expire_all()
    assert (invoice.paid_fen, [p.amount_fen for p in invoice.payments]) == (413_261, [413_261])


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"paid_on": None}, "paid_on", "Enter the date of the transfer."),
        ({"paid_on": date(2026, 12, 11)}, "paid_on", "The transfer date cannot be in the future."),
        ({"reference": ""}, "reference", "Enter the bank reference of the transfer."),
        (
            {"amount": "-5"},
            "amount",
            "Enter an amount in yuan with at most two decimals, e.g. 1234.50.",
        ),
        ({"amount": "0"}, "amount", "Enter an amount above zero."),
    ],
)
def test_a_refund_that_is_not_right_is_refused(session, invoice, finance, change, field, message):
    _record(session, invoice, finance, "4132.61")
    invoices.credit(session, invoice, finance, PAY_TIME, {_lines(invoice)["香菇"].id: "1"}, "破损")
    session.commit()
    with pytest.raises(DomainError) as refused:
        _refund(session, invoice, finance, **{"amount": "42.00", **change})
    assert (str(refused.value.message), refused.value.field) == (message, field)
    session.expire_all()
    assert (invoice.paid_fen, invoice.refund_due_fen, len(invoice.payments)) == (413_261, 4_200, 1)


def test_only_finance_records_a_refund_and_only_on_an_invoice(session, w, invoice, finance):
    _record(session, invoice, finance, "4132.61")
    note = invoices.credit(
        session, invoice, finance, PAY_TIME, {_lines(invoice)["香菇"].id: "1"}, "破损"
    )
    session.commit()
    for clerk in (w.buyer, w.manager, w.seller_a):
        with pytest.raises(PermissionDenied):
            _refund(session, invoice, clerk, "42.00")
    with pytest.raises(DomainError, match="not credit notes"):
        _refund(session, note, finance, "42.00")
    session.expire_all()
    assert (invoice.paid_fen, invoice.refund_due_fen) == (413_261, 4_200)


def test_a_refund_on_a_stale_page_counts_the_refund_recorded_meanwhile(session, invoice, finance):
    _record(session, invoice, finance, "4132.61")
    invoices.credit(session, invoice, finance, PAY_TIME, {_lines(invoice)["香菇"].id: "1"}, "破损")
    session.commit()
    assert invoice.refund_due_fen == 4_200
    # Another clerk recorded the supplier's 42.00 a moment ago; this page still shows it owed.
    session.execute(
        sa.update(Invoice)
        .where(Invoice.id == invoice.id)
        .values(paid_fen=Invoice.paid_fen - 4_200)
        .execution_options(synchronize_session=False)
    )
    with pytest.raises(DomainError, match=r"more than the ¥0\.00 the supplier owes back"):
        _refund(session, invoice, finance, "42.00")
    assert invoice.paid_fen == 413_261 - 4_200


def test_a_credit_never_takes_off_more_than_is_still_billed(session, invoice, finance):
    """Each line's credits are bounded by its quantity, but amounts credited in parts can round
    to a fen more than the line was billed: the invoice's due amount never goes below zero."""
    lines = _lines(invoice)
    invoices.credit(session, invoice, finance, PAY_TIME, {lines["香菇"].id: "80"}, "全部退货")
    # 0.5 x 19.99 = 9.995 -> 10.00, leaving 762.61 billed for the other 38.15 kg of bacon...
    invoices.credit(session, invoice, finance, PAY_TIME, {lines["腊肉"].id: "0.5"}, "称重有误")
    session.commit()
    assert invoice.due_fen == 76_261
    # ...which, credited on their own, come to 38.15 x 19.99 = 762.6185 -> 762.62.
    with pytest.raises(DomainError) as refused:
        invoices.credit(session, invoice, finance, PAY_TIME, {lines["腊肉"].id: "38.15"}, "退货")
    assert str(refused.value.message) == (
        "The credit (¥762.62) is more than the ¥762.61 still billed on this invoice."
    )
    session.expire_all()
    assert (invoice.due_fen, len(invoice.credit_notes)) == (76_261, 2)


@pytest.mark.parametrize(
    ("quantities", "reason", "message"),
    [
        ({}, "退货", "Enter the quantity to credit on at least one line."),
        ("mushrooms:0", "退货", "Enter the quantity to credit on at least one line."),
        ("mushrooms:1", "  ", "Give a reason."),
    ],
)
def test_a_credit_note_needs_a_line_and_a_reason(
    session, invoice, finance, quantities, reason, message
):
    if quantities:
        quantities = {_lines(invoice)["香菇"].id: quantities.split(":")[1]}
    with pytest.raises(DomainError) as refused:
        invoices.credit(session, invoice, finance, PAY_TIME, quantities, reason)
    assert str(refused.value.message) == message
    session.flush()
    assert session.scalar(sa.select(sa.func.count(Invoice.id))) == 1


def test_only_finance_credits_and_a_credit_note_is_not_credited(session, w, invoice, finance):
    mushrooms = _lines(invoice)["香菇"]
    for clerk in (w.manager, w.seller_a):
        with pytest.raises(PermissionDenied):
            invoices.credit(session, invoice, clerk, PAY_TIME, {mushrooms.id: "1"}, "退货")
    note = invoices.credit(session, invoice, finance, PAY_TIME, {mushrooms.id: "1"}, "退货")
    with pytest.raises(DomainError, match="not another credit note"):
        invoices.credit(session, note, finance, PAY_TIME, {note.lines[0].id: "1"}, "退货")


# --- payments and credit notes at the same moment, on PostgreSQL ---------------------------------


@pytest.fixture
def postgres_engine(app):
    yield from helpers.postgres_engine(app)


@pytest.fixture
def committed_invoice(app, postgres_engine):
    """Ids of a committed invoice of 10 boxes of mushrooms at 45.80 (458.00), of its line and
    of a coordinator; all deleted afterwards."""

    def prepare(make, w):
        finance = make.user(roles={Role.COORDINATOR})
        order = make.bulk_order(w.buyer, [(w.mushrooms, "10")], now=NOW, policy=POLICY)
        [delivery] = order.deliveries
        make.shipped(delivery, w.seller_a, now=NOW)
        entries = {line.id: ReceivedLine("10") for line in delivery.lines}
        invoice = canteen.receive(make.session, delivery, w.manager, GOODS_IN, entries, POLICY)
        assert invoice.total_fen == 45_800
        return {"invoice": invoice.id, "line": invoice.lines[0].id, "finance": finance.id}

    with helpers.committed_canteen_world(app, postgres_engine, prepare) as ids:
        yield ids


def _while_held(app, engine, ids, first, second) -> str:
    """`first` runs in one transaction and holds it open while `second` starts in another
    (and has to wait for it); then the first commits. The second's outcome."""
    outcome = []

    def run_second():
        with app.app_context(), force_locale("en"), Session(engine) as session:
            try:
                second(
                    session, session.get(Invoice, ids["invoice"]), session.get(User, ids["finance"])
                )
                session.commit()
                outcome.append("ok")
            except DomainError as error:
                session.rollback()
                outcome.append(str(error.message))

    with app.app_context(), force_locale("en"), Session(engine) as session:
        first(session, session.get(Invoice, ids["invoice"]), session.get(User, ids["finance"]))
        waiting = threading.Thread(target=run_second)
        waiting.start()
        time.sleep(0.5)  # the second is now waiting for the first's lock on the invoice
        session.commit()
    waiting.join(timeout=30)
    return outcome[0] if outcome else "hung"


def _credit_five(ids):
    def credit(session, invoice, finance):
        invoices.credit(session, invoice, finance, PAY_TIME, {ids["line"]: "5"}, "五箱退货")

    return credit


def _pay(amount):
    def pay(session, invoice, finance):
        invoices.record_payment(
            session, invoice, finance, PAY_TIME, paid_on=PAID_ON, reference="CCB", amount=amount
        )

    return pay


def _settled(engine, ids):
    with Session(engine) as session:
        invoice = session.get(Invoice, ids["invoice"])
        return invoice.paid_fen, invoice.credited_fen, invoice.outstanding_fen


@pytest.mark.postgres
def test_a_payment_waiting_for_a_credit_note_counts_it(app, postgres_engine, committed_invoice):
    ids = committed_invoice
    # The credit note takes 229.00 off; the full 458.00 paid at the same moment is too much.
    second = _while_held(app, postgres_engine, ids, _credit_five(ids), _pay("458.00"))
    assert second == "That is more than the ¥229.00 still outstanding."
    assert _settled(postgres_engine, ids) == (0, 22_900, 22_900)


@pytest.mark.postgres
def test_a_credit_note_waiting_for_another_counts_it(app, postgres_engine, committed_invoice):
    ids = committed_invoice

    def credit_six(session, invoice, finance):
        invoices.credit(session, invoice, finance, PAY_TIME, {ids["line"]: "6"}, "六箱退货")

    # Five of the ten boxes credited at the same moment leave five to credit, not six.
    second = _while_held(app, postgres_engine, ids, _credit_five(ids), credit_six)
    assert second == "Some lines need correcting; see the messages beside them."
    assert _settled(postgres_engine, ids) == (0, 22_900, 22_900)


def _pay_back(amount):
    def refund(session, invoice, finance):
        invoices.record_refund(
            session, invoice, finance, PAY_TIME, paid_on=PAID_ON, reference="DZ", amount=amount
        )

    return refund


@pytest.mark.postgres
def test_two_refunds_recorded_at_once_never_exceed_what_is_owed(
    app, postgres_engine, committed_invoice
):
    ids = committed_invoice
    # Paid in full, then five boxes credited: the supplier owes 229.00 back, once.
    with app.app_context(), force_locale("en"), Session(postgres_engine) as session:
        invoice, finance = session.get(Invoice, ids["invoice"]), session.get(User, ids["finance"])
        _pay("458.00")(session, invoice, finance)
        _credit_five(ids)(session, invoice, finance)
        session.commit()
    second = _while_held(app, postgres_engine, ids, _pay_back("229.00"), _pay_back("229.00"))
    assert second == "That is more than the ¥0.00 the supplier owes back."
    assert _settled(postgres_engine, ids) == (45_800 - 22_900, 22_900, 0)
