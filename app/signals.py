"""Signals that let one part of the app react to another without importing it.

Services do not send `catalog_changed` themselves: they call `note_catalog_change(session)`,
and the signal goes out when that session commits. Sent any earlier, a request could cache the
old catalog again between the signal and the commit; sent on a rollback, it would be a lie.
"""

from __future__ import annotations

import sqlalchemy as sa
from blinker import Namespace
from sqlalchemy.orm import Session

_signals = Namespace()

#: Sent after a commit that changed anything buyers see in the catalog.
catalog_changed = _signals.signal("catalog-changed")

#: The cache key of the catalog's generation: a new one is set on every catalog change (by
#: app.web.pagecache), so processes sharing the cache (Redis) see each other's changes.
CATALOG_GENERATION_KEY = "page-generation"

_PENDING = "catalog_changed"


def note_catalog_change(session: Session) -> None:
    session.info[_PENDING] = True


@sa.event.listens_for(Session, "after_commit")
def _send_after_commit(session: Session) -> None:
    if session.info.pop(_PENDING, False):
        catalog_changed.send(session)


@sa.event.listens_for(Session, "after_rollback")
def _forget_on_rollback(session: Session) -> None:
    session.info.pop(_PENDING, None)
