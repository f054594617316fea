"""Health checks for the load balancer and the process supervisor.

`/healthz` says the process answers (no database: a database outage must not make the
supervisor restart every healthy worker). `/readyz` says this instance can serve: the database
answers and its schema is at the migrations' head (a release whose `flask db upgrade` has not
run yet is kept out of rotation instead of failing requests).
"""

from __future__ import annotations

import logging
from functools import cache
from pathlib import Path

import sqlalchemy as sa
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask import Blueprint, current_app, jsonify

from app.extensions import db
from app.web.access import public

log = logging.getLogger(__name__)

bp = Blueprint("health", __name__)


@cache
def _heads(directory: str) -> frozenset[str]:
    """The migrations' head revisions (read once: the code does not change while it runs)."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", directory)
    return frozenset(ScriptDirectory.from_config(config).get_heads())


def _no_store(response):
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/healthz")
@public
def healthz():
    """The process is alive."""
    return _no_store(jsonify(status="ok"))


@bp.get("/readyz")
@public
def readyz():
    """The database answers and its schema is current; 503 with the reason otherwise."""
    directory = str(Path(current_app.extensions["migrate"].directory))
    try:
        with db.engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))
            current = frozenset(MigrationContext.configure(connection).get_current_heads())
    except sa.exc.SQLAlchemyError as error:
        log.warning("Not ready: the database does not answer: %s", error.__class__.__name__)
        return _no_store(jsonify(status="unavailable", reason="database")), 503
    expected = _heads(directory)
    if current != expected:
        log.warning("Not ready: schema at %s, code expects %s", sorted(current), sorted(expected))
        return _no_store(
            jsonify(
                status="unavailable",
                reason="migrations",
                database=sorted(current),
                expected=sorted(expected),
            )
        ), 503
    return _no_store(jsonify(status="ok", schema=sorted(current)))
