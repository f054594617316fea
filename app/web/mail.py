"""Sending the e-mails a request queued, once its transaction is committed."""

from __future__ import annotations

import logging

from flask import Flask, current_app, request

from app.extensions import db
from app.services import notify
from app.services.clock import utcnow

log = logging.getLogger(__name__)


def init_app(app: Flask) -> None:
    @app.after_request
    def _send_queued_mail(response):
        # Only a successful form post can have queued mail; GETs never pay for the query.
        settings = notify.MailSettings.from_config(current_app.config)
        if settings is None or request.method != "POST" or response.status_code >= 400:
            return response
        try:
            notify.deliver(db.session, settings, utcnow(), limit=20)
        except Exception:  # a mail problem must never turn a done action into an error page
            db.session.rollback()
            log.exception("sending queued mail failed; `flask send-mail` will retry")
        return response
