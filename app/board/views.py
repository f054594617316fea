"""The public board (no login, nothing private) and /api/v1/pledges.

The lobby screen and the counter's TV show the running public pledges, this month's best-selling
products and the farm households behind the suppliers; the page reloads itself every minute with
a meta refresh (no script). Other systems read the same figures as JSON. Both are computed once
per BOARD_CACHE_SECONDS (30 s by default) in the app's cache, however many screens ask.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from flask import Blueprint, current_app, jsonify, make_response, render_template, send_file

from app.extensions import cache, db
from app.services import pledges, reports
from app.services.clock import local_date, utcnow
from app.web.access import public

bp = Blueprint("board", __name__)

CACHE_KEY = "board:snapshot:v1"
DEFAULT_CACHE_SECONDS = 30
#: The page reloads itself this often (seconds).
REFRESH_SECONDS = 60
#: The OpenAPI description of the public JSON endpoints (tests/views/test_openapi.py checks
#: it against the running app, and that every /api/v1 route is in it).
OPENAPI_PATH = Path(__file__).with_name("openapi.json")
#: The description changes only with a release; its ETag lets a client revalidate after that.
OPENAPI_CACHE_SECONDS = 3600


def _cache_seconds() -> int:
    return current_app.config.get("BOARD_CACHE_SECONDS", DEFAULT_CACHE_SECONDS)


def snapshot() -> dict:
    data = cache.get(CACHE_KEY)
    if data is None:
        now = utcnow()
        data = reports.board(
            db.session,
            now,
            local_date(now),
            current_app.config.get(
                "PLEDGE_BEHIND_MARGIN_PERCENT", pledges.DEFAULT_BEHIND_MARGIN_PERCENT
            ),
        )
        cache.set(CACHE_KEY, data, timeout=_cache_seconds())
    return data


def _cacheable(response, vary_cookie: bool = False):
    response.headers["Cache-Control"] = f"public, max-age={_cache_seconds()}"
    if vary_cookie:  # the language comes from a cookie
        response.vary.add("Cookie")
    return response


@bp.get("/board")
@public
def index():
    """The big screen in the lobby: large type, readable across the room, fine on a phone."""
    data = snapshot()
    generated = datetime.fromisoformat(data["generated_at"])
    html = render_template(
        "board/index.html",
        data=data,
        generated_at=generated,
        today=local_date(generated),
        refresh_seconds=REFRESH_SECONDS,
    )
    return _cacheable(make_response(html), vary_cookie=True)


@bp.get("/api/v1/pledges")
@public
def api_pledges():
    """The board's figures as JSON: money in fen (integers), dates ISO, time in UTC."""
    return _cacheable(jsonify(snapshot()))


@bp.get("/api/v1/openapi.json")
@public
def api_openapi():
    """The OpenAPI description of /api/v1 and the other public JSON endpoints."""
    return send_file(
        OPENAPI_PATH, mimetype="application/json", max_age=OPENAPI_CACHE_SECONDS, etag=True
    )
