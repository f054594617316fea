"""Telling people: in-app notifications and e-mail through a transactional outbox.

`notify` writes a Notification per user and an OutboxMessage per address in the caller's
transaction, so a message exists exactly when the event it reports was committed. `deliver`
sends what is waiting over SMTP; the web layer calls it after a request that queued mail, and
`flask send-mail` retries what failed. Without MAIL_SERVER nothing is sent and the outbox is
the administrator's to read (the embedded default).

Texts are kept as a kind and parameters and rendered in the reader's language; an e-mail carries
both languages, Chinese first, because it is written before anyone reads it.
"""

from __future__ import annotations

import logging
import smtplib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import formataddr

import sqlalchemy as sa
from flask import current_app, has_app_context
from flask_babel import force_locale
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import Session

from app.models import Notification, OutboxMessage, Role, User, UserRole
from app.services.pagination import Page, paginate

log = logging.getLogger(__name__)

#: kind -> message; parameters are filled in by name.
MESSAGES = {
    "bulk_awaiting_approval": _l("Bulk order %(number)s (%(total)s) awaits your approval."),
    "bulk_approved": _l("Bulk order %(number)s was approved and sent to the suppliers."),
    "bulk_rejected": _l("Bulk order %(number)s was rejected: %(reason)s"),
    "delivery_new": _l(
        "New canteen order %(number)s for delivery on %(date)s: %(lines)s lines to confirm."
    ),
    "delivery_withdrawn": _l("Canteen order %(number)s was withdrawn by the buyer: %(reason)s"),
    "delivery_confirmed": _l("%(supplier)s confirmed its part of order %(number)s."),
    "delivery_changes": _l(
        "%(supplier)s can deliver less on order %(number)s: please accept or cancel the lines."
    ),
    "delivery_agreed": _l(
        "The buyer answered your smaller quantities on order %(number)s: the delivery is "
        "confirmed, please ship it."
    ),
    "delivery_cancelled": _l(
        "The buyer cancelled every line of your delivery for order %(number)s."
    ),
    "delivery_shipped": _l(
        "%(supplier)s shipped its part of order %(number)s (delivery note %(note)s)."
    ),
    "delivery_received": _l(
        "The canteen received your delivery for order %(number)s; invoice %(invoice)s issued."
    ),
    "invoice_paid": _l("Invoice %(invoice)s: a payment of %(amount)s was recorded."),
    "credit_note": _l("Credit note %(invoice)s (%(amount)s) corrects invoice %(corrects)s."),
    "invoice_refunded": _l("Invoice %(invoice)s: your refund of %(amount)s was recorded."),
    "listing_submitted": _l("%(supplier)s submitted %(product)s for review."),
    "listings_imported": _l("%(supplier)s imported listings: %(count)s wait for review."),
    "listing_approved": _l("Your listing %(product)s was approved; buyers see it now."),
    "listing_returned": _l("Your listing %(product)s was sent back: %(comment)s"),
}


def render(kind: str, params: dict) -> str:
    message = MESSAGES.get(kind)
    if message is None:
        return kind
    try:
        return str(message) % params
    except (KeyError, TypeError, ValueError):
        return str(message)


def users_with(session: Session, organization_id: int, *roles: Role) -> list[User]:
    return list(
        session.scalars(
            sa.select(User)
            .join(UserRole)
            .where(
                User.organization_id == organization_id,
                User.active.is_(True),
                UserRole.role.in_(roles),
            )
            .distinct()
            .order_by(User.id)
        )
    )


def _email_text(kind: str, params: dict) -> tuple[str, str]:
    texts = []
    for locale in ("zh_CN", "en"):
        with force_locale(locale):
            texts.append(render(kind, params))
    subject = f"[山海集] {texts[0]}"[:255]
    return subject, "\n\n".join(texts)


def notify(
    session: Session,
    recipients: Iterable[User],
    kind: str,
    params: dict,
    *,
    link: str,
    now: datetime,
) -> None:
    recipients = {user.id: user for user in recipients}.values()
    if not recipients:
        return
    params = {key: str(value) for key, value in params.items()}
    subject, body = _email_text(kind, params)
    # Links in e-mails need the site's address; a script without the app writes paths only.
    site = current_app.config.get("SITE_URL", "").rstrip("/") if has_app_context() else ""
    if link:
        body += f"\n\n{site}{link}"
    for user in recipients:
        session.add(
            Notification(user_id=user.id, kind=kind, params=params, link=link, created_at=now)
        )
        session.add(
            OutboxMessage(to_address=user.email, subject=subject, body=body, created_at=now)
        )


def inbox(session: Session, user_id: int, page: int, per_page: int = 30) -> Page:
    stmt = (
        sa.select(Notification)
        .where(Notification.user_id == user_id)
        .order_by(Notification.id.desc())
    )
    return paginate(session, stmt, page, per_page)


def unread_count(session: Session, user_id: int) -> int:
    return (
        session.scalar(
            sa.select(sa.func.count())
            .select_from(Notification)
            .where(Notification.user_id == user_id, Notification.read_at.is_(None))
        )
        or 0
    )


def mark_all_read(session: Session, user_id: int, now: datetime) -> None:
    session.execute(
        sa.update(Notification)
        .where(Notification.user_id == user_id, Notification.read_at.is_(None))
        .values(read_at=now)
    )


def outbox(session: Session, page: int, per_page: int = 50) -> Page:
    return paginate(
        session, sa.select(OutboxMessage).order_by(OutboxMessage.id.desc()), page, per_page
    )


@dataclass(frozen=True)
class MailSettings:
    server: str
    port: int
    sender: str
    username: str | None = None
    password: str | None = None
    use_tls: bool = False
    timeout: float = 10.0

    @classmethod
    def from_config(cls, config) -> MailSettings | None:
        if not config.get("MAIL_SERVER"):
            return None
        return cls(
            server=config["MAIL_SERVER"],
            port=int(config.get("MAIL_PORT", 25)),
            sender=config["MAIL_DEFAULT_SENDER"],
            username=config.get("MAIL_USERNAME") or None,
            password=config.get("MAIL_PASSWORD") or None,
            use_tls=bool(config.get("MAIL_USE_TLS")),
            timeout=float(config.get("MAIL_TIMEOUT_SECONDS", 10)),
        )


def deliver(session: Session, settings: MailSettings, now: datetime, limit: int = 100) -> int:
    """Send waiting messages, oldest first; returns how many went. Commits after each message,
    so a failure halfway keeps what was sent marked as sent."""
    waiting = list(
        session.scalars(
            sa.select(OutboxMessage)
            .where(OutboxMessage.sent_at.is_(None), OutboxMessage.attempts < 10)
            .order_by(OutboxMessage.id)
            .limit(limit)
        )
    )
    if not waiting:
        return 0
    sent = 0
    try:
        smtp = smtplib.SMTP(settings.server, settings.port, timeout=settings.timeout)
        if settings.use_tls:
            smtp.starttls()
        if settings.username:
            smtp.login(settings.username, settings.password or "")
    except (OSError, smtplib.SMTPException) as error:
        log.warning("mail server %s:%s refused us: %s", settings.server, settings.port, error)
        _count_failure(session, waiting, error)
        return 0
    with smtp:
        for position, message in enumerate(waiting):
            email = EmailMessage()
            email["From"] = formataddr(("山海集", settings.sender))
            email["To"] = message.to_address
            email["Subject"] = message.subject
            email.set_content(message.body)
            try:
                smtp.send_message(email)
            except smtplib.SMTPException as error:  # this address refused; the others go on
                _count_failure(session, [message], error)
                continue
            except OSError as error:  # the connection broke: the rest wait for the next run
                log.warning("mail server connection lost: %s", error)
                _count_failure(session, waiting[position:], error)
                return sent
            message.attempts += 1
            message.sent_at = now
            message.last_error = ""
            sent += 1
            session.commit()
    return sent


def _count_failure(session: Session, messages, error: BaseException) -> None:
    for message in messages:
        message.attempts += 1
        message.last_error = str(error)[:255] or type(error).__name__
    session.commit()
