"""Who may open which page.

Every view declares its access with exactly one of `public`, `login_required` or
`roles_required(...)`; the decorator records the rule on the view, and a test walks the URL map
to check that no endpoint was left without one.
"""

from __future__ import annotations

from functools import wraps
from urllib.parse import urlsplit

import sqlalchemy as sa
from flask import Flask, abort, flash, redirect, request, url_for
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_url
from flask_login import login_required as _flask_login_required

from app.extensions import db, login_manager
from app.models import Role
from app.services.accounts import load_principal

PUBLIC = "public"
LOGGED_IN = "login"


def public(view):
    view.access = PUBLIC
    return view


def login_required(view):
    wrapped = _flask_login_required(view)
    wrapped.access = LOGGED_IN
    return wrapped


def roles_required(*roles: Role):
    """Logged in and holding at least one of the roles; anonymous users go to the login page."""

    def decorator(view):
        @wraps(view)
        def wrapped(*args, **kwargs):
            if not current_user.is_authenticated:
                return login_manager.unauthorized()
            if not current_user.has_role(*roles):
                abort(403)
            return view(*args, **kwargs)

        wrapped.access = frozenset(roles)
        return wrapped

    return decorator


def is_safe_next(target: str | None) -> bool:
    """Only paths on this site: no scheme, no host, no protocol-relative '//' or '/\\' tricks."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return False
    if any(ch in target for ch in "\r\n\t\\") or any(ord(ch) < 32 for ch in target):
        return False
    parts = urlsplit(target)
    return not parts.scheme and not parts.netloc


def safe_next(default_endpoint: str = "catalog.home") -> str:
    target = request.args.get("next") or request.form.get("next")
    return target if is_safe_next(target) else url_for(default_endpoint)


def init_app(app: Flask) -> None:
    login_manager.login_view = "auth.login"
    login_manager.login_message = _l("Please log in to open that page.")
    login_manager.login_message_category = "info"
    login_manager.needs_refresh_message = _l("Please log in again.")

    @login_manager.user_loader
    def _load_user(login_id: str):
        # A plain connection, not an ORM transaction: this runs on every request, and on a
        # cached catalog page it is the only database work. (In tests the session is bound to
        # the test's connection, which is used as it is.)
        bind = db.session.get_bind()
        if isinstance(bind, sa.Engine):
            with bind.connect() as connection:
                return load_principal(connection, login_id)
        return load_principal(bind, login_id)

    @login_manager.unauthorized_handler
    def _to_login():
        flash(login_manager.login_message, login_manager.login_message_category)
        return redirect(login_url(login_manager.login_view, next_url=_return_target()))


def _return_target() -> str | None:
    """Where to come back after logging in: the page asked for; for a form posted after the
    session ended, the page the form was on (its action URL only takes POSTs)."""
    if request.method in ("GET", "HEAD"):
        return request.url  # as Flask-Login does; it keeps only the path and query
    referrer = urlsplit(request.referrer or "")
    if referrer.netloc != request.host:
        return None
    target = referrer.path + (f"?{referrer.query}" if referrer.query else "")
    return target if is_safe_next(target) else None
