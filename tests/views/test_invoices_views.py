"""Invoices through the web: a correction after settlement, and the supplier's refund."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
import sqlalchemy as sa

from app.models import Invoice, InvoiceKind, Role
from app.services import canteen
from app.services.canteen import CanteenPolicy, ReceivedLine
from app.services.clock import local_date, utcnow
from app.services.money import line_total
from tests.conftest import page_text


@pytest.fixture
def english(client):
    client.set_cookie("lang", "en")


@pytest.fixture
def w(make):
    return make.canteen_world()


@pytest.fixture
def finance(make):
    return make.user(roles={Role.COORDINATOR})


@pytest.fixture
def invoice(make, w, session) -> Invoice:
    """38.65 of 40 kg bacon at 19.99 (772.61) and 10 boxes of mushrooms at 45.80 (458.00)."""
    order = make.bulk_order(w.buyer, [(w.bacon, "40"), (w.mushrooms, "10")])
    (delivery,) = order.deliveries
    make.shipped(delivery, w.seller_a)
    received = {w.bacon.id: "38.65", w.mushrooms.id: "10"}
    entries = {line.id: ReceivedLine(received[line.product_id]) for line in delivery.lines}
    invoice = canteen.receive(session, delivery, w.manager, utcnow(), entries, CanteenPolicy())
    session.commit()
    assert invoice.total_fen == 77_261 + 45_800
    return invoice


def by_id(response, element_id: str) -> str | None:
    found = re.search(rf'id="{element_id}"[^>]*>([^<]*)<', response.get_data(as_text=True))
    return found.group(1).strip() if found else None


def has_form(response, form_id: str) -> bool:
    return f'id="{form_id}"' in response.get_data(as_text=True)


def transfer(amount: str, reference: str) -> dict:
    return {"paid_on": local_date(utcnow()).isoformat(), "reference": reference, "amount": amount}


def test_a_correction_after_settlement_is_refunded_by_the_supplier(
    client, actions, english, session, w, finance, invoice
):
    url = f"/invoices/{invoice.id}"
    lines = {line.name_zh: line for line in invoice.lines}
    actions.login_as(finance)
    assert actions.post(f"{url}/payments", transfer("1230.61", "CCB-1")).status_code == 303
    paid = client.get(url)
    assert (by_id(paid, "invoice-status"), by_id(paid, "invoice-outstanding")) == ("Paid", "¥0.00")
    # Settled, and still correctable.
    assert f'name="credit-{lines["香菇"].id}"' in paid.get_data(as_text=True)

    response = actions.post(
        f"{url}/credit",
        {
            f"credit-{lines['香菇'].id}": "2",
            f"credit-{lines['腊肉'].id}": "0.65",
            "reason": "两箱发霉；腊肉称重有误",
        },
    )
    assert response.status_code == 303
    note = session.scalar(sa.select(Invoice).where(Invoice.kind == InvoiceKind.CREDIT_NOTE))
    credit_fen = line_total(4580, Decimal(2)) + line_total(1999, Decimal("0.65"))
    assert note.total_fen == -credit_fen == -(9_160 + 1_299)

    owed = client.get(url)
    assert by_id(owed, "invoice-status") == "Refund due from supplier"
    assert by_id(owed, "invoice-refund-due") == "¥104.59"
    assert by_id(owed, "invoice-outstanding") is None
    assert has_form(owed, "refund-form") and not has_form(owed, "payment-form")
    listing = client.get("/invoices/?outstanding=1")
    row = re.search(rf"{invoice.number}.*?</tr>", listing.get_data(as_text=True), re.S)
    assert row and "Refund due from supplier" in row.group(0) and "-¥104.59" in row.group(0)

    too_much = actions.post(f"{url}/refunds", transfer("104.60", "DZ-BACK-1"))
    assert too_much.status_code == 422
    assert "That is more than the ¥104.59 the supplier owes back." in page_text(too_much)
    assert 'value="104.60"' in too_much.get_data(as_text=True)  # what was typed is kept

    done = actions.post(f"{url}/refunds", transfer("104.59", "DZ-BACK-1"))
    assert done.status_code == 303 and done.headers["Location"].endswith(url)
    settled = client.get(url)
    assert by_id(settled, "invoice-status") == "Paid"
    assert by_id(settled, "invoice-paid") == "¥1,230.61"
    assert by_id(settled, "invoice-refunded") == "-¥104.59"
    assert by_id(settled, "invoice-outstanding") == "¥0.00"
    assert not has_form(settled, "refund-form") and not has_form(settled, "payment-form")
    payments = re.search(r'id="payments".*?</table>', settled.get_data(as_text=True), re.S)
    assert "DZ-BACK-1" in payments.group(0) and "-¥104.59" in payments.group(0)
    session.refresh(invoice)
    assert (invoice.paid_fen, invoice.outstanding_fen) == (123_061 - 10_459, 0)
    assert [p.amount_fen for p in invoice.payments] == [123_061, -10_459]
    assert invoice.number not in page_text(client.get("/invoices/?outstanding=1"))


def test_only_finance_records_the_suppliers_refund(client, actions, session, w, finance, invoice):
    actions.login_as(finance)
    actions.post(f"/invoices/{invoice.id}/payments", transfer("1230.61", "CCB-1"))
    mushrooms = next(line for line in invoice.lines if line.name_zh == "香菇")
    actions.post(
        f"/invoices/{invoice.id}/credit", {f"credit-{mushrooms.id}": "1", "reason": "破损"}
    )
    session.refresh(invoice)
    assert invoice.refund_due_fen == 4_580

    for user in (w.buyer, w.manager, w.seller_a):
        actions.login_as(user)
        page = client.get(f"/invoices/{invoice.id}")
        assert page.status_code == 200 and not has_form(page, "refund-form")
        refused = actions.post(f"/invoices/{invoice.id}/refunds", transfer("45.80", "DZ-1"))
        assert refused.status_code == 403
    session.refresh(invoice)
    assert (invoice.paid_fen, len(invoice.payments)) == (123_061, 1)
