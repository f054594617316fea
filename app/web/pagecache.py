"""Fast catalog pages: the shared content cached, the layout rendered once with slots.

A catalog page is three things:

* the content (product grid, filters, pager), the same for every viewer of one kind: rendered
  once per locale, URL and audience and kept for CATALOG_CACHE_SECONDS (`cached`). Content
  templates (`_*.html`) must therefore never use `current_user`, `csrf_token()` or anything else
  that differs between two viewers with the same key;
* the layout (base.html): rendered once per process, locale and role set with slot markers in
  place of the per-request values (`Skeleton`);
* the per-request values: title, content, flash messages, the user's name, the CSRF token, the
  current path and the search box's text, joined into the skeleton's pieces.

Rendering base.html costs more than everything else on a cached page put together, which is why
it is done this way; `test_pagecache.py` checks that both ways give the same bytes.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Callable
from dataclasses import astuple, dataclass
from urllib.parse import quote_plus

from flask import (
    Flask,
    current_app,
    get_flashed_messages,
    render_template,
    request,
)
from flask_babel import get_locale
from flask_login import AnonymousUserMixin, current_user
from markupsafe import Markup, escape

from app.extensions import cache
from app.services.accounts import Principal
from app.signals import CATALOG_GENERATION_KEY, catalog_changed
from app.web.csrf import csrf_token


@dataclass(frozen=True)
class Fragment:
    html: str
    title: str
    status: int = 200


class _PerViewer:
    """Stands in for a per-viewer value while shared content renders: any use is a bug, and
    fails loudly instead of caching one person's data for everyone."""

    def __init__(self, name: str):
        self._name = name

    def _refuse(self, *_args, **_kwargs):
        raise RuntimeError(f"{self._name} used in shared page content (see app.web.pagecache)")

    __getattr__ = __call__ = __str__ = __html__ = __bool__ = __iter__ = _refuse


_PER_VIEWER = {
    name: _PerViewer(name)
    for name in ("current_user", "csrf_token", "here", "login_next", "search_value", "session")
}


def fragment(template: str, title: str, status: int = 200, **context) -> Fragment:
    return Fragment(render_template(template, **_PER_VIEWER, **context), str(title), status)


_GENERATION_KEY = CATALOG_GENERATION_KEY


def cached(key: tuple, build: Callable[[], Fragment]) -> Fragment:
    """The fragment for this key and locale, built by `build` when it is not cached.

    Keys include the catalog's generation: a catalog change starts a new generation instead of
    deleting keys (which on Redis would mean scanning them all). Exceptions (a 404 for an
    unknown page) are not cached; error statuses are.
    """
    timeout = current_app.config["CATALOG_CACHE_SECONDS"]
    if timeout <= 0:
        return build()
    generation = cache.get(_GENERATION_KEY) or "0"
    digest = hashlib.sha256(repr((generation, str(get_locale()), *key)).encode()).hexdigest()
    cache_key = f"page:{digest}"
    hit = cache.get(cache_key)
    if hit is not None:
        return Fragment(*hit)
    result = build()
    cache.set(cache_key, astuple(result), timeout=timeout)
    return result


# --- the layout ---------------------------------------------------------------------------

#: Letters only, so that a slot survives HTML escaping and URL quoting unchanged.
_SLOT = "QQSLOT{}QQ"
_SLOT_PATTERN = re.compile(r"QQSLOT([A-Z]+)QQ")


def _slot(name: str) -> Markup:
    return Markup(_SLOT.format(name.upper()))


class Skeleton:
    """base.html split at its slots: literal pieces and slot names, alternating."""

    @classmethod
    def for_request(cls) -> list[str]:
        roles = tuple(sorted(current_user.roles)) if current_user.is_authenticated else None
        key = (str(get_locale()), roles, request.script_root)
        # Per app; at most a few locales times the role sets in use, so no eviction. While
        # templates reload (debug), build afresh so that an edit to base.html shows at once.
        built = current_app.extensions.setdefault("pagecache_skeletons", {})
        pieces = built.get(key)
        if pieces is None:
            pieces = _SLOT_PATTERN.split(cls._render(roles))
            if not current_app.jinja_env.auto_reload:
                built[key] = pieces
        return pieces

    @staticmethod
    def _render(roles: tuple | None) -> str:
        viewer = (
            AnonymousUserMixin()
            if roles is None
            else Principal(
                id=0,
                email="",
                name=_slot("name"),
                organization_id=None,
                roles=frozenset(roles),
                session_version=0,
            )
        )
        return render_template(
            "shell.html",
            title=_slot("title"),
            content=_slot("content"),
            current_user=viewer,
            csrf_token=lambda: _slot("csrf"),
            flashes=lambda: _slot("flashes"),
            here=_slot("here"),
            login_next=_slot("here"),
            search_value=_slot("q"),
        )


def _slot_values(page: Fragment) -> dict[str, str]:
    context = layout_context()
    authenticated = current_user.is_authenticated
    return {
        "TITLE": str(escape(page.title)),
        "CONTENT": page.html,
        "FLASHES": str(render_flashes()),
        "NAME": str(escape(current_user.name)) if authenticated else "",
        "CSRF": csrf_token() if authenticated else "",
        "HERE": str(escape(_query_value(context["here"]))),
        "Q": str(escape(context["search_value"])),
    }


def _query_value(value: str) -> str:
    # Exactly as werkzeug's url_for encodes a query argument (werkzeug.urls._urlencode).
    return quote_plus(value, safe="!$'()*,/:;?@")


def csrf_slot() -> Markup:
    """For forms inside shared content: a marker that `respond` replaces with the viewer's
    CSRF token, so the form works while the content stays the same for everyone."""
    return _slot("csrf")


def respond(page: Fragment):
    pieces = Skeleton.for_request()
    if _slot("csrf") in page.html:
        page = Fragment(page.html.replace(_slot("csrf"), csrf_token()), page.title, page.status)
    values = _slot_values(page)
    # Even indexes are literal HTML, odd ones slot names (re.split with one group).
    html = "".join(piece if i % 2 == 0 else values[piece] for i, piece in enumerate(pieces))
    return html, page.status


def render_slow(page: Fragment) -> str:
    """The same page rendered the ordinary way; for the test that compares the two."""
    return render_template("shell.html", content=Markup(page.html), title=page.title)


# --- what every page's layout needs -------------------------------------------------------


def render_flashes() -> Markup:
    messages = get_flashed_messages(with_categories=True)
    if not messages:
        return Markup("")
    return Markup(render_template("_flashes.html", messages=messages))


def layout_context() -> dict[str, str | None]:
    here = request.full_path.removesuffix("?")
    on_login_pages = (request.endpoint or "").startswith("auth.")
    searching = request.endpoint == "catalog.product_list"
    return {
        "here": here,
        "login_next": None if on_login_pages else here,
        "search_value": request.args.get("q", "") if searching else "",
    }


def _start_new_generation(_sender=None, **_extra) -> None:
    cache.set(_GENERATION_KEY, secrets.token_hex(8), timeout=0)


def init_app(app: Flask) -> None:
    catalog_changed.connect(_start_new_generation, weak=False)
    app.context_processor(layout_context)
    app.add_template_global(render_flashes, "flashes")
    app.add_template_global(csrf_slot)
