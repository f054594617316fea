"""A request id on every request, in the response, on error pages and in one JSON log line.

The id comes from the reverse proxy's X-Request-ID when it sends a sane one (so a request can
be followed from the proxy's log into ours), otherwise it is made here. Someone who reports an
error page quotes the id printed on it, and the log line with that id says what happened.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid

from flask import Flask, g, request

log = logging.getLogger("shanhai.request")

HEADER = "X-Request-ID"
_SANE_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


def request_id() -> str:
    """The current request's id ("" outside a request)."""
    return g.get("request_id", "")


def init_app(app: Flask) -> None:
    @app.before_request
    def _start():
        incoming = request.headers.get(HEADER, "")
        g.request_id = incoming if _SANE_ID.match(incoming) else uuid.uuid4().hex
        g.request_started = time.perf_counter()

    @app.after_request
    def _finish(response):
        rid = request_id()
        if rid:
            response.headers[HEADER] = rid
            _log(response.status_code)
        return response

    app.add_template_global(request_id)


def _log(status: int) -> None:
    if not log.isEnabledFor(logging.INFO):
        return
    started = g.get("request_started")
    line = {
        "request_id": request_id(),
        "method": request.method,
        "path": request.path,
        "status": status,
        "ms": round((time.perf_counter() - started) * 1000, 1) if started else None,
        "remote": request.remote_addr,
    }
    user_id = g.get("_login_user")
    if user_id is not None and getattr(user_id, "is_authenticated", False):
        line["user"] = user_id.id
    log.info(json.dumps(line, ensure_ascii=False))
