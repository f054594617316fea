"""Product search in characters, English, full pinyin, pinyin initials or a mix of them."""

from __future__ import annotations

import re
import unicodedata

import sqlalchemy as sa

from app.models import Product
from app.pinyin import normalise_query_for_pinyin

MAX_QUERY_LENGTH = 64
_SPACES = re.compile(r"\s+")


def clean_query(raw: str | None) -> str:
    """Trim, fold spaces and cap the length: 500 pasted characters search like the first 64."""
    if not raw:
        return ""
    printable = "".join(ch for ch in raw if unicodedata.category(ch)[0] != "C")
    return _SPACES.sub(" ", printable).strip()[:MAX_QUERY_LENGTH]


def match_condition(query: str) -> sa.ColumnElement[bool]:
    """Products whose names, code or pinyin keys contain the query.

    `autoescape` makes % and _ in the query literal, so "100%" searches for "100%".
    """
    text = query.lower()
    conditions = [
        Product.name_zh.contains(query, autoescape=True),
        sa.func.lower(Product.name_en).contains(text, autoescape=True),
        sa.func.lower(Product.code) == text,
    ]
    key = normalise_query_for_pinyin(query)
    if key:
        conditions.append(Product.search_keys.contains(key, autoescape=True))
    return sa.or_(*conditions)


def relevance(query: str) -> sa.ColumnElement[int]:
    """0 for the exact name, 1 for a name or pinyin that starts with the query, 2 otherwise."""
    key = normalise_query_for_pinyin(query) or query
    return sa.case(
        (Product.name_zh == query, 0),
        (sa.func.lower(Product.name_en) == query.lower(), 0),
        (Product.name_zh.startswith(query, autoescape=True), 1),
        (Product.name_pinyin.startswith(key, autoescape=True), 1),
        (Product.name_initials.startswith(key, autoescape=True), 1),
        else_=2,
    )
