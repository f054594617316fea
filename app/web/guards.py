"""Request-wide input guards."""

from __future__ import annotations

from flask import Flask, abort, request
from flask_babel import lazy_gettext as _l


def init_app(app: Flask) -> None:
    def _refuse_nul_bytes():
        # A multipart part whose name cannot be parsed (a raw quote or line break in it, which
        # no browser sends) arrives with the name None, and every view expects a string.
        if None in request.form or None in request.files:
            abort(400)
        # No form of ours takes a NUL byte, and PostgreSQL text cannot hold one: refuse it here
        # with a 400 rather than let it reach the database as a 500.
        for values in (request.args, request.form):
            if any("\x00" in key or "\x00" in value for key, value in values.items(multi=True)):
                abort(400, description=_l("The request contains characters that are not allowed."))

    # First of all before_request functions: Flask-WTF's CSRF check reads the form's keys too,
    # and fails on a key that is None.
    app.before_request_funcs.setdefault(None, []).insert(0, _refuse_nul_bytes)
