"""Chinese first, English on request; the choice is kept in a cookie."""

from __future__ import annotations

from flask import Blueprint, current_app, has_request_context, redirect, request

from app.web.access import public, safe_next

bp = Blueprint("i18n", __name__)

LOCALE_COOKIE = "lang"


def select_locale() -> str:
    # The CLI and background jobs have no request: they speak the default language.
    chosen = request.cookies.get(LOCALE_COOKIE) if has_request_context() else None
    if chosen in current_app.config["LANGUAGES"]:
        return chosen
    return current_app.config["BABEL_DEFAULT_LOCALE"]


@bp.get("/lang/<code>")
@public
def switch(code: str):
    """Switch the interface language and return to the page the user was on."""
    response = redirect(safe_next())
    if code in current_app.config["LANGUAGES"]:
        # Read only on the server; sent over HTTPS only wherever the session cookie is.
        response.set_cookie(
            LOCALE_COOKIE,
            code,
            max_age=365 * 24 * 3600,
            samesite="Lax",
            httponly=True,
            secure=current_app.config["SESSION_COOKIE_SECURE"],
        )
    return response
