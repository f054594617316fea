"""SQLite connection settings, applied to every new connection."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import sqlalchemy as sa
from flask import current_app, has_request_context, request

View = TypeVar("View", bound=Callable)

_READ_ONLY_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def writes_on_get(view: View) -> View:
    """Mark a GET view that writes (a payment return, releasing an unpaid order) so that on
    SQLite its transaction takes the write lock up front, like every POST does."""
    view.writes_on_get = True
    return view


def _request_will_write() -> bool:
    if not has_request_context():
        return False
    if request.method not in _READ_ONLY_METHODS:
        return True
    view = current_app.view_functions.get(request.endpoint or "")
    return getattr(view, "writes_on_get", False)


def configure_sqlite(engine: sa.Engine) -> None:
    if engine.dialect.name != "sqlite":
        return

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        # pysqlite's own transaction handling breaks SAVEPOINT (used by the tests' rollback
        # and by nested transactions); take it over, as SQLAlchemy's docs describe.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=5000")
        if engine.url.database not in (None, "", ":memory:"):
            # Readers never wait for the writer; several gunicorn workers share the file.
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            # Read the file through the OS page cache, shared by every connection and worker,
            # instead of copying it into each connection's 2 MB cache: a search reads the whole
            # products table (14 MB at 10,000 products) and took 2-3 ms longer per pass.
            cursor.execute("PRAGMA mmap_size=268435456")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(connection):
        # A deferred transaction that reads, then writes after another connection committed,
        # fails at once with SQLITE_BUSY (its snapshot is stale; busy_timeout does not help):
        # a login racing Stripe's webhook became a 500. A request that will write therefore
        # queues for the write lock before its first read.
        connection.exec_driver_sql("BEGIN IMMEDIATE" if _request_will_write() else "BEGIN")
