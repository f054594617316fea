"""Pinyin search keys for Chinese product names.

People type a product name in characters, in full pinyin, in initials, or in a mix of the two
("dyniurou" for 灯影牛肉: the first two syllables as initials, the rest in full). Storing every
mix would grow as 2^n, so we store the forms people actually type: full, initials, and each
"initials then full" and "full then initials" split, which is linear in the name's length and
matched with one substring search.
"""

from __future__ import annotations

import re

from pypinyin import Style, lazy_pinyin

_NON_KEY_CHARS = re.compile(r"[^0-9a-z]+")


def _syllables(text: str) -> list[str]:
    # lazy_pinyin passes non-Chinese runs through as one item ("5L"); normalise them alike.
    parts = lazy_pinyin(text, style=Style.NORMAL, errors="default")
    return [cleaned for part in parts if (cleaned := _NON_KEY_CHARS.sub("", part.lower()))]


def pinyin_keys(name: str) -> tuple[str, str, str]:
    """Return (full pinyin, initials, space-separated search keys) for a name."""
    syllables = _syllables(name)
    full = "".join(syllables)
    initials = "".join(s[0] for s in syllables)
    keys = {full, initials}
    for split in range(1, len(syllables)):
        keys.add(initials[:split] + "".join(syllables[split:]))
        keys.add("".join(syllables[:split]) + initials[split:])
    keys.discard("")
    return full, initials, " ".join(sorted(keys, key=len, reverse=True))


def normalise_query_for_pinyin(query: str) -> str:
    """The query as pinyin key text: 'Deng Ying' and "deng'ying" search as 'dengying', and a
    mix such as 'dy牛肉' as 'dyniurou'.

    A query of characters only returns "": characters are matched as characters, and their
    pinyin would also find every homophone (牛肉 and 纽柔 are both niurou).
    """
    if not any(ch.isascii() and ch.isalnum() for ch in query):
        return ""
    return "".join(_syllables(query))
