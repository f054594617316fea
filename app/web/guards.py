"""Request-wide input guards."""

from __future__ import annotations

from flask import Flask, abort, request
from flask_babel import lazy_gettext as _l


def init_app(app: Flask) -> None:
    @app.before_request
    def _refuse_nul_bytes():
        # No form of ours takes a NUL byte, and PostgreSQL text cannot hold one: refuse it here
        # with a 400 rather than let it reach the database as a 500.
        for values in (request.args, request.form):
            if any("\x00" in key or "\x00" in value for key, value in values.items(multi=True)):
                abort(400, description=_l("The request contains characters that are not allowed."))
