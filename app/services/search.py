"""Product search in characters, English, full pinyin, pinyin initials or a mix of them.

Every product keeps one lower-cased `search_text`: its names, code and name pinyin keys, one
piece per line. A search matches it, plus the products of every supplier, origin region and
category whose name matches: those few dozen names are matched here (with their full pinyin and
initials), and their products found by id, so a renamed supplier needs no product rewritten.

The matching runs over each process's in-memory copy of the sellable catalog
(app.services.search_index), not in SQL: a LIKE over every row cost 3-5 ms on SQLite and 7-16
ms on PostgreSQL for 10,000 products; the same tests over the copy cost well under a
millisecond to a few (bench/README.md).

The pinyin pieces are ASCII, so a query of characters only ever matches characters: 牛肉 never
finds 纽柔 through their common "niurou" (see app.pinyin.normalise_query_for_pinyin).

Ranking: the exact name first, then names starting with the query, then names containing it,
then products found only through their supplier, origin, category or code; then the most
bought, then the newest id.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Protocol

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.models import Category, Organization, OrgKind, Product, Region
from app.pinyin import normalise_query_for_pinyin, pinyin_keys

MAX_QUERY_LENGTH = 64
#: A query of more words than this matches on its first ones only; each word costs a scan.
MAX_TERMS = 4
_SPACES = re.compile(r"\s+")
_HAN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]+")

#: Between the pieces of search_text. clean_query removes control characters, so no query
#: contains it and a match never runs from one piece into the next.
SEPARATOR = "\n"


def clean_query(raw: str | None) -> str:
    """Trim, fold spaces and cap the length: 500 pasted characters search like the first 64."""
    if not raw:
        return ""
    printable = "".join(ch for ch in raw if unicodedata.category(ch)[0] != "C")
    return _SPACES.sub(" ", printable).strip()[:MAX_QUERY_LENGTH]


def _fold(text: str | None) -> str:
    return _SPACES.sub(" ", text or "").strip().lower()


# --- what is searched ------------------------------------------------------------------------


class _ProductNames(Protocol):
    name_zh: str
    name_en: str
    code: str
    search_keys: str


def compose_search_text(product: _ProductNames) -> str:
    """The text a search matches for this product (see Product.search_text).

    The Chinese name first, then the longest pieces; a piece contained in an earlier one is
    left out (whatever is found in "dynr" is found in "dynrou"): a tenth fewer bytes to scan.
    """
    first = _fold(product.name_zh)
    pieces = [first]
    rest = [product.name_en, product.code, *(product.search_keys or "").split()]
    for piece in sorted({_fold(p) for p in rest} - {"", first}, key=lambda p: (-len(p), p)):
        if not any(piece in kept for kept in pieces):
            pieces.append(piece)
    return SEPARATOR.join(pieces)


def refresh_search_text(product: Product) -> None:
    """Recompute product.search_text from its names, code and pinyin keys.

    Call it after changing any of them; a flush also does it for any product whose name or
    code changed (below), so forgetting it cannot hide a product from the search.
    """
    product.search_text = compose_search_text(product)


_SOURCES = ("name_zh", "name_en", "code")


@sa.event.listens_for(Session, "before_flush")
def _refresh_changed_products(session: Session, _context, _instances) -> None:
    # A safety net under the explicit calls: whoever creates a product or renames it (a
    # service, an import, the admin shell, a test), the search finds it by its name of now.
    for obj in session.new:
        if isinstance(obj, Product):
            refresh_search_text(obj)
    for obj in session.dirty:
        if isinstance(obj, Product):
            state = sa.inspect(obj)
            if any(state.attrs[name].history.has_changes() for name in _SOURCES):
                refresh_search_text(obj)


# --- suppliers, origins and categories: matched by name here, their products by id -----------


@lru_cache(maxsize=4096)
def _name_pieces(name_zh: str, name_en: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(lower-cased names, their full pinyin and initials), cached: the same few dozen names
    are asked about on every search."""
    full, initials, _mixes = pinyin_keys(name_zh)
    # Full pinyin and initials only: people type mixes for product names, not for companies.
    return (_fold(name_zh), _fold(name_en)), (full, initials)


@dataclass(frozen=True)
class _Related:
    supplier_ids: frozenset[int]
    region_ids: frozenset[int]
    category_ids: frozenset[int]


def related_names(session: Session) -> list[tuple[str, int, str, str]]:
    """(kind, id, name_zh, name_en) of every supplier, region and category: a few dozen rows."""
    suppliers = sa.select(
        sa.literal("supplier"), Organization.id, Organization.name_zh, Organization.name_en
    ).where(Organization.kind == OrgKind.SUPPLIER)
    regions = sa.select(sa.literal("region"), Region.id, Region.name_zh, Region.name_en)
    categories = sa.select(sa.literal("category"), Category.id, Category.name_zh, Category.name_en)
    return [tuple(row) for row in session.execute(sa.union_all(suppliers, regions, categories))]


def _related_matching(names: Iterable[tuple[str, int, str, str]], term: str) -> _Related:
    text, key = term.lower(), _pinyin_key(term)
    found: dict[str, set[int]] = {"supplier": set(), "region": set(), "category": set()}
    for kind, id_, name_zh, name_en in names:
        written, pinyin = _name_pieces(name_zh or "", name_en or "")
        if any(text in name for name in written if name) or (
            key and any(key in p for p in pinyin if p)
        ):
            found[kind].add(id_)
    return _Related(
        frozenset(found["supplier"]), frozenset(found["region"]), frozenset(found["category"])
    )


# --- matching and ranking --------------------------------------------------------------------


#: What may separate syllables in typed pinyin ("Deng Ying", "xi'an", "deng-ying").
_PINYIN_SEPARATORS = re.compile(r"[\s'’·-]")


def _pinyin_key(term: str) -> str:
    """The term as pinyin key text, or "" if it is not pinyin-like.

    Only letters, digits, characters and separators make a pinyin query: in "100%" or "a_b"
    the punctuation means itself, and "100" would find every 1000 克 pack.
    """
    rest = _PINYIN_SEPARATORS.sub("", _HAN.sub("", term))
    if not rest.isalnum():
        return ""
    return normalise_query_for_pinyin(term)


def _terms(query: str) -> list[str]:
    return list(dict.fromkeys(query.split(" ")))[:MAX_TERMS]


#: Tiers of the relevance.
EXACT, PREFIX, CONTAINS, RELATED = 0, 1, 2, 3
#: Up to this many products found, their tiers are tested one by one (see Search.ranked).
_FEW = 400


class Search:
    """A prepared search over the in-memory index (app.services.search_index): the positions
    of the products it finds (`positions`), in ranked order (`ranked`).

    Every text in the index is lower-cased, so matching ignores case as a person expects.
    Each test is one comprehension over a plain list of the index (see its docstring).
    """

    def __init__(self, query: str, names: Iterable[tuple[str, int, str, str]]):
        names = list(names)
        self.query = query
        self.text = query.lower()
        self.key = _pinyin_key(query)
        #: English or a code in the query: the English name and the code are ranked on too.
        self.latin = any(ch.isascii() and ch.isalnum() for ch in query)
        self._whole = _Term(query, _related_matching(names, query))
        terms = _terms(query)
        # 牛肉 达州: beef from Dazhou, each word found somewhere.
        self._words = (
            [_Term(t, _related_matching(names, t)) for t in terms] if len(terms) > 1 else []
        )

    def positions(self, index) -> set[int]:
        found = self._whole.positions(index)
        if self._words:
            every = self._words[0].positions(index)
            for word in self._words[1:]:
                every &= word.positions(index)
            found |= every
        return found

    def ranked(self, index, candidates: set[int], limit: int | None = None) -> list[int]:
        """The candidates best first: EXACT for the exact name (characters, English, code, or
        the whole full pinyin, initials or a mix of them), PREFIX for names starting with the
        query, CONTAINS for names containing it, RELATED for the rest (found through supplier,
        origin, category or code); within a tier, the index's order (most bought, newest).

        With `limit`, only the first `limit` are sure to be in order (and only they may be
        returned): the lower tiers are not worked out once the higher ones fill it.
        """
        if len(candidates) <= _FEW:
            tiers = self._tiers_of_few(index, candidates)
            return [i for tier in tiers for i in sorted(tier)][:limit]
        ranked: list[int] = []
        rest = set(candidates)
        for tier in (self._exact, self._prefix, self._contains):
            found = tier(index) & rest
            ranked += sorted(found)
            rest -= found
            if limit is not None and len(ranked) >= limit:
                return ranked[:limit]
        return (ranked + sorted(rest))[:limit]

    def _tiers_of_few(self, index, candidates: set[int]) -> tuple[set[int], ...]:
        """The tiers of a few candidates, tested one by one: cheaper than the index-wide
        lookups of _exact, _prefix and _contains when a search found only a few hundred."""
        text, key, latin = self.text, self.key, self.latin
        column = index.columns
        zh, en, code = column["zh"], column["en"], column["code"]
        initials, pinyin = column["initials"], column["pinyin"]
        keys, padded = column["keys"], column["padded_keys"]
        mix = key if len(key) >= 3 else ""
        tiers: tuple[set[int], ...] = (set(), set(), set(), set())
        for i in candidates:
            if (
                zh[i] == text
                or (latin and (en[i] == text or code[i] == text))
                or (key and (initials[i] == key or pinyin[i] == key))
                or (mix and f" {mix} " in padded[i])
            ):
                tiers[EXACT].add(i)
            elif (
                zh[i].startswith(text)
                or (latin and en[i].startswith(text))
                or (key and (initials[i].startswith(key) or pinyin[i].startswith(key)))
                or (mix and f" {mix}" in padded[i])
            ):
                tiers[PREFIX].add(i)
            elif text in zh[i] or (latin and text in en[i]) or (key and key in keys[i]):
                tiers[CONTAINS].add(i)
            else:
                tiers[RELATED].add(i)
        return tiers

    def name_starts(self, index) -> set[int]:
        """Names that are or start with the query, or the code that is it: what one letter
        typed means."""
        found = self._prefix(index)
        if self.query.isascii():
            found.update(index.equal("code", self.text))
        return found

    def _exact(self, index) -> set[int]:
        text, key = self.text, self.key
        found = set(index.equal("zh", text))
        if self.latin:
            found.update(index.equal("en", text))
            found.update(index.equal("code", text))
        if key:
            found.update(index.equal("initials", key))
            found.update(index.equal("pinyin", key))
            if len(key) >= 3:
                # A mix (dyniurou) is an initial then at least a full syllable: three
                # letters or more, a whole key of the name.
                found |= index.containing("keys", f" {key} ")
        return found

    def _prefix(self, index) -> set[int]:
        text, key = self.text, self.key
        found = set(index.starting("zh", text))
        if self.latin:
            found.update(index.starting("en", text))
        if key:
            found.update(index.starting("initials", key))
            found.update(index.starting("pinyin", key))
            if len(key) >= 3:
                found |= index.containing("keys", f" {key}")
        return found

    def _contains(self, index) -> set[int]:
        text, key = self.text, self.key
        found = index.containing("zh", text)
        if self.latin:
            found |= index.containing("en", text)
        if key:
            found |= index.containing("keys", key)
        return found


class _Term:
    """One word of a query: found in the product's own text (as typed or as pinyin), or
    through its supplier, origin or category matched by name."""

    def __init__(self, term: str, related: _Related):
        self.related = related
        self.text = term.lower()
        key = _pinyin_key(term)
        self.key = key if key and key != self.text else ""

    def positions(self, index) -> set[int]:
        found: set[int] = set()
        for kind, ids in (
            ("region", self.related.region_ids),
            ("category", self.related.category_ids),
            ("supplier", self.related.supplier_ids),
        ):
            by_id = index.by_related[kind]
            for id_ in ids:
                found.update(by_id.get(id_, ()))
        text = self.text
        if text.isascii():
            # The ASCII pieces of every product, and the Chinese names that hold ASCII too.
            found |= index.containing("ascii", text)
            found |= index.containing("zh", text) & index.mixed_names
        else:
            # Characters are only in the names: the rest of search_text is ASCII.
            found |= index.containing("names", text)
        if self.key:
            found |= index.containing("ascii", self.key)
        return found


# --- when nothing is found -------------------------------------------------------------------


def looser_condition(query: str) -> tuple[sa.ColumnElement[bool], sa.ColumnElement[int]] | None:
    """For a search that found nothing: products whose name shares a piece with the query, and
    how many pieces each shares (None when the query has no usable piece).

    The pieces: two-character runs of its Chinese words (灯影牛肉干 -> 灯影, 影牛, 牛肉, 肉干)
    and the first three letters of its other words, matched against names and their pinyin:
    enough to land near a mistyped or too specific name.
    """
    chinese: list[str] = []
    letters: list[str] = []
    for term in _terms(query):
        for run in _HAN.findall(term):
            chinese += [run] if len(run) == 1 else [run[i : i + 2] for i in range(len(run) - 1)]
        latin = re.sub(r"[^0-9a-z]", "", _HAN.sub("", term.lower()))
        if len(latin) >= 2:
            letters.append(latin[:3])
    found = [Product.name_zh.contains(p, autoescape=True) for p in dict.fromkeys(chinese)]
    found += [Product.search_keys.contains(p) for p in dict.fromkeys(letters)]
    found = found[:8]  # each piece is a LIKE on every product
    if not found:
        return None
    shared = sum((sa.case((condition, 1), else_=0) for condition in found), sa.literal(0))
    return sa.or_(*found), shared
