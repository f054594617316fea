"""The CSRF token every page's logout button carries, signed once per session, not per page.

Flask-WTF signs the session's token afresh on each request (a timestamp and several HMACs, a
sixth of a cached catalog page). Our tokens never expire (WTF_CSRF_TIME_LIMIT = None), so one
signature per session token is as good as a new one each time; if a time limit is ever set,
this falls back to Flask-WTF's own per-request signing.
"""

from __future__ import annotations

from functools import lru_cache

from flask import current_app, session
from flask_wtf.csrf import generate_csrf
from itsdangerous import URLSafeTimedSerializer


@lru_cache(maxsize=8192)
def _signed(secret_key: str, raw_token: str) -> str:
    # The salt Flask-WTF signs and checks its tokens with (flask_wtf.csrf).
    return URLSafeTimedSerializer(secret_key, salt="wtf-csrf-token").dumps(raw_token)


def csrf_token() -> str:
    config = current_app.config
    field = config.get("WTF_CSRF_FIELD_NAME", "csrf_token")
    if config.get("WTF_CSRF_TIME_LIMIT") is not None:
        return generate_csrf()
    if field not in session:
        generate_csrf()  # puts a new raw token in the session
    return _signed(config.get("WTF_CSRF_SECRET_KEY") or current_app.secret_key, session[field])
