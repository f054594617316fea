"""The fast layout (a skeleton with slots) gives exactly what rendering base.html would."""

import re

import pytest
from flask import flash
from flask_login import login_user

from app.models import Role
from app.web import pagecache

PATHS = [
    "/products",
    "/products?q=dynr",
    "/products?q=%3Cscript%3E%26%22+%E7%81%AF&page=1",
    "/products?region=x&sort=price_asc&in_stock=y",
    "/products?q=it's&x=<b>",
    "/",
]


def _both(app, path, principal=None, flashes=()):
    with app.test_request_context(path):
        if principal is not None:
            login_user(principal)
        for message in flashes:
            flash(message, "success")
        page = pagecache.Fragment("<p>内容 &amp; content</p>", "标题 <b>&</b>")
        fast, _status = pagecache.respond(page)
        for message in flashes:
            flash(message, "success")
        slow = pagecache.render_slow(page)
    return fast, slow


@pytest.mark.parametrize("path", PATHS)
def test_anonymous_layout_matches(app, session, path):
    fast, slow = _both(app, path)
    assert fast == slow


@pytest.mark.parametrize("roles", [{Role.STAFF}, {Role.ADMIN}, {Role.CANTEEN_BUYER, Role.STAFF}])
@pytest.mark.parametrize("path", PATHS)
def test_logged_in_layout_matches(app, session, make, path, roles):
    user = make.user(roles=roles, name="王<晓>燕&")
    principal = pagecache.Principal(
        id=user.id,
        email=user.email,
        name=user.name,
        organization_id=None,
        roles=frozenset(roles),
        session_version=user.session_version,
    )
    fast, slow = _both(app, path, principal, flashes=["已加入 <购物车>"])
    # The CSRF token is signed with a timestamp; compare with it masked.
    mask = re.compile(r'name="csrf_token" value="[^"]+"')
    assert mask.sub("", fast) == mask.sub("", slow)
    assert "王&lt;晓&gt;燕&amp;" in fast and "已加入 &lt;购物车&gt;" in fast


def test_english_layout_matches(app, session):
    with app.test_request_context("/products", headers={"Cookie": "lang=en"}):
        page = pagecache.Fragment("<p>x</p>", "Products")
        fast, _ = pagecache.respond(page)
        slow = pagecache.render_slow(page)
    assert fast == slow
    assert "All products" in fast
