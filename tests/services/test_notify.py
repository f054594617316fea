"""Notifications and the e-mail outbox (app.services.notify), delivered to a real SMTP server
(aiosmtpd) started by the test on 127.0.0.1."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from flask_babel import force_locale

from app.models import Notification, OutboxMessage, Role
from app.services import accounts, notify
from tests import helpers
from tests.conftest import free_port as _free_port

NOW = datetime(2026, 11, 27, 2, 0, tzinfo=UTC)
LATER = NOW + timedelta(minutes=5)
SENDER = "noreply@shanhai.demo"


@pytest.fixture(autouse=True)
def _context(app, monkeypatch):
    monkeypatch.setattr(accounts, "generate_password_hash", helpers.cheap_password_hash)
    with app.app_context():
        yield


def _chinese(kind: str, params: dict) -> str:
    """The message as a Chinese reader gets it, checked to be really in Chinese."""
    with force_locale("zh_CN"):
        text = notify.render(kind, params)
    with force_locale("en"):
        assert text != notify.render(kind, params), f"{kind} has no Chinese translation"
    own_words = text
    for value in params.values():
        own_words = own_words.replace(str(value), "")
    assert re.search(r"[\u4e00-\u9fff]", own_words), text
    return text


def _outbox(session) -> list[OutboxMessage]:
    return list(session.scalars(sa.select(OutboxMessage).order_by(OutboxMessage.id)))


PARAMS = {"number": "C261127-00042", "supplier": "竹溪山货合作社", "note": "ZX-778"}


def test_notify_writes_an_inbox_line_and_a_mail_per_person(session, make):
    first, second = make.user(), make.user()
    notify.notify(
        session,
        [first, second, first],  # the same person twice is told once
        "delivery_shipped",
        PARAMS,
        link="/canteen/orders/42",
        now=NOW,
    )
    session.commit()
    notes = session.scalars(sa.select(Notification).order_by(Notification.id)).all()
    assert [(n.user_id, n.kind, n.params, n.link) for n in notes] == [
        (first.id, "delivery_shipped", PARAMS, "/canteen/orders/42"),
        (second.id, "delivery_shipped", PARAMS, "/canteen/orders/42"),
    ]
    assert [m.to_address for m in _outbox(session)] == [first.email, second.email]
    assert notify.unread_count(session, first.id) == 1
    notify.mark_all_read(session, first.id, LATER)
    assert notify.unread_count(session, first.id) == 0
    assert notify.unread_count(session, second.id) == 1


def test_nobody_to_tell_writes_nothing(session):
    notify.notify(session, [], "delivery_shipped", PARAMS, link="", now=NOW)
    assert _outbox(session) == []


def test_the_mail_carries_both_languages_and_the_link(session, make):
    user = make.user()
    notify.notify(session, [user], "delivery_shipped", PARAMS, link="/canteen/orders/42", now=NOW)
    [message] = _outbox(session)
    english = "竹溪山货合作社 shipped its part of order C261127-00042 (delivery note ZX-778)."
    chinese = _chinese("delivery_shipped", PARAMS)
    assert message.subject == f"[山海集] {chinese}"
    assert message.body == f"{chinese}\n\n{english}\n\nhttp://shanhai.test/canteen/orders/42"


def test_deliver_sends_the_waiting_mail_over_smtp(session, make, smtp_server):
    inbox, settings = smtp_server
    user = make.user(email="shitang.jingli@shanhai.demo")
    notify.notify(session, [user], "delivery_shipped", PARAMS, link="/canteen/orders/42", now=NOW)
    session.commit()

    assert notify.deliver(session, settings, LATER) == 1

    [(recipients, mail)] = inbox.messages
    assert recipients == ["shitang.jingli@shanhai.demo"]
    assert mail["To"] == "shitang.jingli@shanhai.demo"
    assert mail["From"].addresses[0].addr_spec == SENDER
    assert mail["From"].addresses[0].display_name == "山海集"
    chinese = _chinese("delivery_shipped", PARAMS)
    english = "竹溪山货合作社 shipped its part of order C261127-00042 (delivery note ZX-778)."
    assert mail["Subject"] == f"[山海集] {chinese}"
    body = mail.get_content()
    assert chinese in body and english in body
    assert "http://shanhai.test/canteen/orders/42" in body
    [message] = _outbox(session)
    assert (message.sent_at, message.attempts, message.last_error) == (LATER, 1, "")

    # Sent once: the next run has nothing to do.
    assert notify.deliver(session, settings, LATER) == 0
    assert len(inbox.messages) == 1


def test_a_refused_address_does_not_stop_the_others(session, make, smtp_server):
    inbox, settings = smtp_server
    gone, present = make.user(), make.user()
    inbox.refuse.add(gone.email)
    notify.notify(session, [gone, present], "delivery_shipped", PARAMS, link="", now=NOW)
    session.commit()

    assert notify.deliver(session, settings, LATER) == 1

    assert [recipients for recipients, _ in inbox.messages] == [[present.email]]
    refused, sent = _outbox(session)
    assert (refused.sent_at, refused.attempts) == (None, 1)
    assert "No such mailbox" in refused.last_error
    assert (sent.sent_at, sent.attempts) == (LATER, 1)


def test_an_unreachable_server_loses_nothing_and_is_tried_again(session, make, smtp_server):
    inbox, settings = smtp_server
    user = make.user()
    notify.notify(session, [user], "delivery_shipped", PARAMS, link="", now=NOW)
    session.commit()
    closed = notify.MailSettings(server="127.0.0.1", port=_free_port(), sender=SENDER, timeout=2)

    assert notify.deliver(session, closed, LATER) == 0
    assert notify.deliver(session, closed, LATER) == 0

    [message] = _outbox(session)
    assert (message.sent_at, message.attempts) == (None, 2)
    assert message.last_error  # e.g. "[Errno 111] Connection refused"
    assert len(message.last_error) <= 255

    # The server is back: the same message goes out.
    assert notify.deliver(session, settings, LATER + timedelta(minutes=1)) == 1
    [(recipients, _)] = inbox.messages
    assert recipients == [user.email]
    session.expire_all()
    [message] = _outbox(session)
    assert (message.sent_at, message.attempts, message.last_error) == (
        LATER + timedelta(minutes=1),
        3,
        "",
    )


def test_after_ten_failed_attempts_a_message_is_left_for_the_administrator(
    session, make, smtp_server
):
    inbox, settings = smtp_server
    notify.notify(session, [make.user()], "delivery_shipped", PARAMS, link="", now=NOW)
    [message] = _outbox(session)
    message.attempts = 10
    session.commit()
    assert notify.deliver(session, settings, LATER) == 0
    assert inbox.messages == []
    assert notify.outbox(session, 1).items == [message]


def test_the_canteens_events_reach_the_suppliers_mailbox(session, make, smtp_server):
    """From the order to the SMTP server: the release tells each supplier by e-mail."""
    inbox, settings = smtp_server
    w = make.canteen_world()
    with force_locale("en"):
        order = make.bulk_order(w.buyer, [(w.bacon, "40"), (w.tea, "5")], now=NOW)

    assert notify.deliver(session, settings, LATER) == 2

    got = {recipients[0]: mail for recipients, mail in inbox.messages}
    assert set(got) == {w.seller_a.email, w.seller_b.email}
    body = got[w.seller_b.email].get_content()
    params = {"number": order.number, "date": "2026-12-04", "lines": "1"}
    assert _chinese("delivery_new", params) in body
    assert f"New canteen order {order.number} for delivery on 2026-12-04: 1 lines" in body
    assert order.number in got[w.seller_a.email]["Subject"]
    assert notify.users_with(session, w.supplier_a.id, Role.SUPPLIER) == [w.seller_a]


def test_a_server_that_refuses_tls_counts_an_attempt_and_keeps_the_mail(session, make, smtp_server):
    _inbox, settings = smtp_server
    notify.notify(session, [make.user()], "delivery_shipped", PARAMS, link="", now=NOW)
    session.commit()
    wants_tls = notify.MailSettings(
        server=settings.server, port=settings.port, sender=SENDER, use_tls=True, timeout=2
    )
    assert notify.deliver(session, wants_tls, LATER) == 0
    [message] = _outbox(session)
    assert (message.sent_at, message.attempts) == (None, 1)
    assert "STARTTLS" in message.last_error
