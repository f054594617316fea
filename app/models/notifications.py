"""In-app notifications and the e-mail outbox."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base


class Notification(Base):
    """A line in a user's in-app inbox. The text is rendered in the reader's language from
    `kind` and `params`, so a notification written in Chinese can be read in English."""

    __tablename__ = "notifications"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(sa.String(48))
    params: Mapped[dict] = mapped_column(sa.JSON, default=dict)
    #: A path on this site that the notification leads to.
    link: Mapped[str] = mapped_column(sa.String(255), default="")
    created_at: Mapped[datetime]
    read_at: Mapped[datetime | None]

    __table_args__ = (sa.Index("ix_notifications_user_read", "user_id", "read_at"),)


class OutboxMessage(Base):
    """An e-mail, written in the same transaction as the event it reports.

    Delivered by SMTP after the commit when MAIL_SERVER is set (and retried by
    `flask send-mail`); without a mail server it stays here for the administrator to read.
    """

    __tablename__ = "outbox_messages"

    id: Mapped[int] = mapped_column(primary_key=True)
    to_address: Mapped[str] = mapped_column(sa.String(254))
    subject: Mapped[str] = mapped_column(sa.String(255))
    body: Mapped[str] = mapped_column(sa.Text)
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str] = mapped_column(sa.String(255), default="")

    __table_args__ = (sa.Index("ix_outbox_messages_sent", "sent_at"),)
