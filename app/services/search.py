"""Product search in characters, English, full pinyin, pinyin initials or a mix of them.

Every product keeps one lower-cased `search_text`: its names, code and name pinyin keys, one
piece per line. A search is a substring match on the product's own text, plus the products of
every supplier, origin region and category whose name matches: those few dozen names are matched
here in Python (with their full pinyin and initials), and their products found by id.

Why not their names in each product's text too: a LIKE costs in proportion to the bytes it
scans, a search scans every product, and those names made up 40% of them (bench/README.md).
Found by id, a renamed supplier also needs no product rewritten.

The pinyin pieces are ASCII, so a query of characters only ever matches characters (and is
matched against the short name columns, the only ones holding any): 牛肉 never finds 纽柔
through their common "niurou" (see app.pinyin.normalise_query_for_pinyin).

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


def _related_names(session: Session) -> list[tuple[str, int, str, str]]:
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


@dataclass(frozen=True)
class Search:
    """A prepared search: what it matches (`where`) and in which order (`order_by`)."""

    query: str
    where: sa.ColumnElement[bool]
    relevance: sa.ColumnElement[int]
    #: The name is or starts with the query (tiers EXACT and PREFIX): cheap tests only.
    name_starts: sa.ColumnElement[bool]
    #: (name_zh, name_en) of every supplier, region and category by (kind, id), as read for
    #: the search: what a suggestion shows needs no join.
    names: dict[tuple[str, int], tuple[str, str]]

    @property
    def order_by(self) -> list[sa.ColumnElement]:
        return [self.relevance, Product.popularity.desc(), Product.id.desc()]


def prepare(session: Session, query: str) -> Search:
    """The search for a cleaned, non-empty query (see clean_query)."""
    names = _related_names(session)
    postgresql = session.get_bind().dialect.name == "postgresql"
    terms = _terms(query)
    where = _term_condition(query, _related_matching(names, query), postgresql)
    if len(terms) > 1:
        # 牛肉 达州: beef from Dazhou, each word found somewhere.
        every_word = sa.and_(
            *(_term_condition(t, _related_matching(names, t), postgresql) for t in terms)
        )
        where = sa.or_(where, every_word)
    match = _Matcher(query.lower(), postgresql)
    exact, prefix, contains = _name_tests(query, match)
    relevance = sa.case(
        (sa.or_(*exact), EXACT),
        (sa.or_(*prefix), PREFIX),
        (sa.or_(*contains), CONTAINS),
        else_=RELATED,
    )
    # Every exact name starts with the query too; only a code must equal it.
    code = [match.equals(Product.code)] if query.isascii() else []
    by_id = {(kind, id_): (zh, en) for kind, id_, zh, en in names}
    return Search(query, where, relevance, sa.or_(*prefix, *code), by_id)


class _Matcher:
    """Case-insensitive tests of one lower-cased text against a column that may hold capitals.

    Only ASCII letters have a case worth ignoring here. SQLite's LIKE ignores it by itself.
    PostgreSQL's ILIKE is twice as slow as lower() then LIKE, and a prefix is tested cheapest
    on lower(left(...)) (bench/README.md); a text without letters needs neither.
    (SQLAlchemy's ilike() would wrap both sides in lower() on SQLite too: a copy per row.)
    """

    def __init__(self, text: str, postgresql: bool):
        self.text = text
        self.escaped = _escape(text)
        letters = any(ch.isascii() and ch.isalpha() for ch in text)
        #: PostgreSQL compares case by case: the column is lower-cased when it matters.
        self.fold = postgresql and letters
        #: SQLite's = minds the case, its LIKE does not.
        self.equal_by_like = letters and not postgresql

    def equals(self, column) -> sa.ColumnElement[bool]:
        if self.fold:
            return sa.func.lower(column) == self.text
        if self.equal_by_like:
            return column.like(self.escaped, escape="/")
        return column == self.text

    def starts(self, column) -> sa.ColumnElement[bool]:
        if self.fold:
            return sa.func.lower(sa.func.left(column, len(self.text))) == self.text
        return column.like(self.escaped + "%", escape="/")

    def contains(self, column) -> sa.ColumnElement[bool]:
        target = sa.func.lower(column) if self.fold else column
        return target.like(f"%{self.escaped}%", escape="/")


def _escape(text: str) -> str:
    return text.replace("/", "//").replace("%", "/%").replace("_", "/_")


def _term_condition(term: str, related: _Related, postgresql: bool) -> sa.ColumnElement[bool]:
    """The product's text contains the term as typed or as pinyin, or its supplier, origin or
    category matched by name. Escaping makes % and _ literal: "100%" is "100%"."""
    # The id tests first: a product of 达州 is found without scanning its text.
    conditions: list[sa.ColumnElement[bool]] = []
    for column, ids in (
        (Product.origin_region_id, related.region_ids),
        (Product.category_id, related.category_ids),
        (Product.supplier_id, related.supplier_ids),
    ):
        if ids:
            conditions.append(column.in_(sorted(ids)))
    text = term.lower()
    if text.isascii():
        conditions.append(Product.search_text.contains(text, autoescape=True))
    else:
        # Characters are only in the names: the rest of search_text (pinyin, codes) is
        # ASCII. The name columns are a tenth of its bytes, and on PostgreSQL its first
        # columns rather than its last.
        match = _Matcher(text, postgresql)
        conditions += [match.contains(c) for c in (Product.name_zh, Product.name_en, Product.code)]
    key = _pinyin_key(term)
    if key and key != text:
        conditions.append(Product.search_text.contains(key, autoescape=True))
    return sa.or_(*conditions)


#: Tiers of the relevance.
EXACT, PREFIX, CONTAINS, RELATED = 0, 1, 2, 3


def _name_tests(query: str, match: _Matcher) -> tuple[list, list, list]:
    """The tests of the tiers: EXACT for the exact name (characters, English, code, or the
    whole full pinyin, initials or a mix of them), PREFIX for names starting with the query,
    CONTAINS for names containing it; RELATED is the rest (found through supplier, origin,
    category or code).

    They run for every product found (6,666 for 达州, all 10,000 for "d"), so each reads short
    columns, cheap tests come first, and what this query cannot need is left out.
    """
    key = _pinyin_key(query)
    exact = [match.equals(Product.name_zh)]
    prefix = [match.starts(Product.name_zh)]
    contains = [match.contains(Product.name_zh)]
    if any(ch.isascii() and ch.isalnum() for ch in query):  # English or a code
        exact += [match.equals(Product.name_en), match.equals(Product.code)]
        prefix.append(match.starts(Product.name_en))
        contains.append(match.contains(Product.name_en))
    if key:
        exact += [Product.name_initials == key, Product.name_pinyin == key]
        prefix += [Product.name_initials.startswith(key), Product.name_pinyin.startswith(key)]
        if len(key) >= 3:
            # A mix (dyniurou, or dyniu as it is typed) is an initial then at least a full
            # syllable, so three letters or more; it starts with the name's first letter, a
            # cheap test that spares most products the long one on all their keys.
            same_start = Product.name_initials.startswith(key[0])
            keys = " " + Product.search_keys + " "
            exact.append(sa.and_(same_start, keys.contains(f" {key} ")))
            prefix.append(sa.and_(same_start, keys.contains(" " + key)))
        contains.append(Product.search_keys.contains(key))
    return exact, prefix, contains


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
