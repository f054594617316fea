"""Error pages in the site's style, or JSON for the API and for clients that ask for it."""

from __future__ import annotations

import logging

from flask import Flask, jsonify, render_template, request
from flask_babel import lazy_gettext as _l
from flask_limiter.errors import RateLimitExceeded
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException, InternalServerError

from app.extensions import db
from app.services.errors import DomainError

log = logging.getLogger(__name__)

MESSAGES = {
    400: (_l("Bad request"), _l("The request could not be understood. Check what you entered.")),
    403: (_l("Not allowed"), _l("Your account does not have access to this page.")),
    404: (_l("Not found"), _l("The page or item you are looking for does not exist.")),
    405: (_l("Not allowed"), _l("This page cannot be used that way.")),
    409: (_l("Already changed"), _l("Someone changed this in the meantime. Reload and try again.")),
    413: (_l("Too large"), _l("The upload is larger than allowed.")),
    422: (_l("Cannot do that"), _l("The request breaks a rule.")),
    429: (
        _l("Too many attempts"),
        _l("Too many attempts in a short time. Wait a minute and try again."),
    ),
    500: (
        _l("Something went wrong"),
        _l("An unexpected error happened. It has been logged; please try again."),
    ),
    503: (
        _l("Temporarily unavailable"),
        _l("The database did not answer. Nothing was saved; please try again in a moment."),
    ),
}


def wants_json() -> bool:
    if request.path.startswith("/api/"):
        return True
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return (
        best == "application/json"
        and request.accept_mimetypes[best] > request.accept_mimetypes["text/html"]
    )


def render_error(status: int, detail: str | None = None):
    title, message = MESSAGES.get(status, MESSAGES[500 if status >= 500 else 400])
    if wants_json():
        return jsonify(error=str(title), message=str(detail or message)), status
    return render_template(
        "errors/error.html", status=status, title=title, message=detail or message
    ), status


def init_app(app: Flask) -> None:
    @app.errorhandler(CSRFError)
    def _csrf(error: CSRFError):
        return render_error(
            400,
            str(
                _l(
                    "The form expired or was not sent from this site. "
                    "Go back, reload the page and try again."
                )
            ),
        )

    @app.errorhandler(RateLimitExceeded)
    def _too_many(error: RateLimitExceeded):
        # Flask-Limiter's description is the limit itself ("10 per 1 minute"), in English.
        response, status = render_error(429)
        return response, status, {"Retry-After": "60"}

    @app.errorhandler(DomainError)
    def _domain(error: DomainError):
        db.session.rollback()
        return render_error(error.status_code, str(error.message))

    @app.errorhandler(HTTPException)
    def _http(error: HTTPException):
        if error.code is None or error.code < 400:
            return error
        # abort(code, description=...) carries a message meant for the user; werkzeug's
        # default descriptions are English boilerplate, so those get our own text instead.
        default = type(error).description
        detail = error.description if error.description != default else None
        return render_error(error.code, detail and str(detail))

    @app.errorhandler(OperationalError)
    def _database(error: OperationalError):
        # The database dropped the connection mid-request (a restart, a failover, an operator's
        # pg_terminate_backend), refused a new one, or gave up on a lock: the transaction died,
        # so nothing was written, and the pool has thrown a dead connection away (pre-ping
        # replaces the others before use). The truth is "unavailable, try again".
        db.session.rollback()
        log.warning("Database unavailable on %s %s: %s", request.method, request.path, error.orig)
        response, status = render_error(503)
        return response, status, {"Retry-After": "5"}

    @app.errorhandler(InternalServerError)
    def _internal(error: InternalServerError):
        original = getattr(error, "original_exception", None)
        if original is not None:
            log.error("Unhandled error on %s %s", request.method, request.path, exc_info=original)
        db.session.rollback()
        return render_error(500)
