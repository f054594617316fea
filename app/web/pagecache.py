"""Caching the part of a page that is the same for every viewer of one kind.

The navbar (who is logged in, the CSRF token) is rendered on every request; the content below it
(the product grid, filters, pager) is rendered once per locale and URL and reused for
CATALOG_CACHE_SECONDS. Content templates (`_*.html`) must therefore never use `current_user`,
`csrf_token()` or anything else that differs between two viewers with the same cache key.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import astuple, dataclass

from flask import Flask, current_app, render_template
from flask_babel import get_locale
from markupsafe import Markup

from app.extensions import cache
from app.signals import catalog_changed


@dataclass(frozen=True)
class Fragment:
    html: str
    title: str
    status: int = 200


def fragment(template: str, title: str, status: int = 200, **context) -> Fragment:
    return Fragment(render_template(template, **context), str(title), status)


def cached(key: tuple, build: Callable[[], Fragment]) -> Fragment:
    """The fragment for this key and locale, built by `build` when it is not cached.

    Exceptions (a 404 for an unknown page) are not cached; error statuses are.
    """
    timeout = current_app.config["CATALOG_CACHE_SECONDS"]
    if timeout <= 0:
        return build()
    digest = hashlib.sha256(repr((str(get_locale()), *key)).encode()).hexdigest()
    cache_key = f"page:{digest}"
    hit = cache.get(cache_key)
    if hit is not None:
        return Fragment(*hit)
    result = build()
    cache.set(cache_key, astuple(result), timeout=timeout)
    return result


def respond(page: Fragment):
    return render_template("shell.html", content=Markup(page.html), title=page.title), page.status


def _drop_cached_pages(_sender=None, **_extra) -> None:
    cache.clear()


def init_app(app: Flask) -> None:
    catalog_changed.connect(_drop_cached_pages, weak=False)
