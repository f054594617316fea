"""The search's working copy of the sellable catalog, kept in each process's memory.

A search reads every sellable product's text. In the database that is a LIKE over every row on
every request: 3-5 ms on SQLite, 7-16 ms on PostgreSQL for 10,000 products (bench/README.md).
In memory, Python's substring test reads the same 3 MB in about a millisecond, and ranking the
matches needs no SQL at all; the database is then asked only for one page of products by id.

The copy holds only what matching, ranking and the sorts read (names and their pinyin, search
text, supplier, origin, category, price, popularity, creation time). It is rebuilt
- when the catalog changes: `catalog_changed` in this process, and the page cache's generation
  (shared through Redis) for changes made by other processes;
- and at the latest every SEARCH_INDEX_SECONDS, so that popularity (a tie-breaker) and a
  supplier's stock-free edits made elsewhere without Redis are picked up.
Whether a product is in stock is never read from here: that filter and the final load of a page
go to the database.
"""

from __future__ import annotations

import threading
import time
from bisect import bisect_left, bisect_right

import sqlalchemy as sa
from flask import current_app, has_app_context
from sqlalchemy.orm import Session

from app.extensions import cache
from app.models import Product
from app.services import search
from app.services.search import SEPARATOR
from app.signals import CATALOG_GENERATION_KEY, catalog_changed

DEFAULT_MAX_AGE_SECONDS = 30


class Index:
    """The sellable products as parallel lists, ordered by popularity then newest id, so that
    position order is the search's tie-break order.

    Every test is answered without a Python step per product: "contains" by str.find over one
    string of all products' texts (a step per product found, not per product), "starts with"
    and "equals" by bisecting a sorted copy of the column. All texts are lower-cased.
    """

    def __init__(self, rows, names, generation, database):
        rows = sorted(rows, key=lambda row: (-row.popularity, -row.id))
        self.ids = [row.id for row in rows]
        zh = [(row.name_zh or "").lower() for row in rows]
        en = [(row.name_en or "").lower() for row in rows]
        codes = [(row.code or "").lower() for row in rows]
        keys = [row.search_keys or "" for row in rows]
        self.columns = {
            "zh": zh,
            "en": en,
            "code": codes,
            "initials": [row.name_initials or "" for row in rows],
            "pinyin": [row.name_pinyin or "" for row in rows],
        }
        self.columns["keys"] = keys
        self.columns["padded_keys"] = [f" {k} " for k in keys]
        self._sorted = {
            name: _sorted_column(self.columns[name])
            for name in ("zh", "en", "code", "initials", "pinyin")
        }
        self._texts = {
            # ASCII only (pinyin, English, codes), and names, kept apart: Python stores a
            # string with any character beyond Latin-1 at two bytes a letter.
            "ascii": _Blob(
                SEPARATOR.join(p for p in (row.search_text or "").split(SEPARATOR) if p.isascii())
                for row in rows
            ),
            "names": _Blob(
                f"{a}{SEPARATOR}{b}{SEPARATOR}{c}" for a, b, c in zip(zh, en, codes, strict=True)
            ),
            "zh": _Blob(zh),
            "en": _Blob(en),
            #: " key1 key2 ": a whole key is found as " key ", a key's start as " key".
            "keys": _Blob(self.columns["padded_keys"]),
        }
        #: Chinese names with ASCII in them (5L装): the only ones an ASCII query can match in.
        self.mixed_names = {i for i, name in enumerate(zh) if any(ch.isascii() for ch in name)}
        self.created = [row.created_at.timestamp() for row in rows]
        self.prices = [row.retail_price_fen for row in rows]
        self.supplier_ids = [row.supplier_id for row in rows]
        self.region_ids = [row.origin_region_id for row in rows]
        self.display_zh = [row.name_zh or "" for row in rows]
        self.display_en = [row.name_en or "" for row in rows]
        self.by_related = {
            "supplier": _positions(self.supplier_ids),
            "region": _positions(self.region_ids),
            "category": _positions([row.category_id for row in rows]),
        }
        #: (kind, id, name_zh, name_en) of every supplier, region and category.
        self.names = names
        self.names_by_id = {(kind, id_): (zh, en) for kind, id_, zh, en in names}
        self.generation = generation
        self.built = time.monotonic()
        self.database = database

    def __len__(self) -> int:
        return len(self.ids)

    def containing(self, text_name: str, text: str) -> set[int]:
        return self._texts[text_name].containing(text)

    def starting(self, column: str, prefix: str) -> list[int]:
        values, positions = self._sorted[column]
        low = bisect_left(values, prefix)
        high = bisect_left(values, prefix + "\U0010ffff", low)
        return positions[low:high]

    def equal(self, column: str, value: str) -> list[int]:
        values, positions = self._sorted[column]
        low = bisect_left(values, value)
        return positions[low : bisect_right(values, value, low)]


class _Blob:
    """Texts joined into one string, to find which of them contain a piece at C speed."""

    def __init__(self, texts):
        self.starts: list[int] = []
        parts = []
        offset = 0
        for text in texts:
            self.starts.append(offset)
            parts.append(text)
            offset += len(text) + 1
        # NUL never occurs in a query (clean_query drops control characters).
        self.text = "\0".join(parts)

    def containing(self, piece: str) -> set[int]:
        found: set[int] = set()
        if not piece:
            return found
        text, starts, last = self.text, self.starts, len(self.starts) - 1
        at = text.find(piece)
        while at != -1:
            i = bisect_right(starts, at) - 1
            found.add(i)
            if i == last:
                break
            at = text.find(piece, starts[i + 1])  # the next text: one step per text found
        return found


def _sorted_column(values: list[str]) -> tuple[list[str], list[int]]:
    order = sorted(range(len(values)), key=values.__getitem__)
    return [values[i] for i in order], order


def _positions(values) -> dict[int, list[int]]:
    found: dict[int, list[int]] = {}
    for position, value in enumerate(values):
        found.setdefault(value, []).append(position)
    return found


_lock = threading.Lock()
_indexes: dict[str, Index] = {}


def _forget(_sender=None, **_extra) -> None:
    with _lock:
        _indexes.clear()


catalog_changed.connect(_forget, weak=False)


def _max_age() -> float:
    if has_app_context():
        return current_app.config.get("SEARCH_INDEX_SECONDS", DEFAULT_MAX_AGE_SECONDS)
    return 0


def _generation():
    return cache.get(CATALOG_GENERATION_KEY) if has_app_context() else None


def current(session: Session) -> Index:
    """The index of the sellable catalog, rebuilt if the catalog changed or it is too old."""
    database = session.get_bind().engine.url.render_as_string()
    generation = _generation()
    with _lock:
        index = _indexes.get(database)
    fresh = (
        index is not None
        and index.generation == generation
        and time.monotonic() - index.built < _max_age()
    )
    if fresh:
        return index
    index = _build(session, database, generation)
    with _lock:
        _indexes[database] = index
    return index


def _build(session: Session, database: str, generation) -> Index:
    from app.services.catalog import sellable

    rows = session.execute(
        sa.select(
            Product.id,
            Product.name_zh,
            Product.name_en,
            Product.code,
            Product.name_pinyin,
            Product.name_initials,
            Product.search_keys,
            Product.search_text,
            Product.popularity,
            Product.created_at,
            Product.retail_price_fen,
            Product.supplier_id,
            Product.origin_region_id,
            Product.category_id,
        ).where(sellable(scan=True))
    )
    return Index(rows.all(), search.related_names(session), generation, database)
