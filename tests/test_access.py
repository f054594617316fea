"""Every route declares who may use it; anonymous users and wrong roles are kept out."""

import pytest

from app.models import Role
from app.web.access import LOGGED_IN, PUBLIC, is_safe_next


def test_every_endpoint_declares_its_access(app):
    undeclared = [
        rule.endpoint
        for rule in app.url_map.iter_rules()
        if rule.endpoint != "static" and not hasattr(app.view_functions[rule.endpoint], "access")
    ]
    assert undeclared == []


def _protected(app):
    for rule in app.url_map.iter_rules():
        view = app.view_functions[rule.endpoint]
        access = getattr(view, "access", PUBLIC)
        if access == PUBLIC or "GET" not in rule.methods:
            continue
        url = rule.rule
        for argument in rule.arguments:
            url = url.replace(f"<int:{argument}>", "1").replace(f"<{argument}>", "x")
        yield rule.endpoint, url, access


def test_anonymous_users_are_sent_to_login_from_every_protected_page(app, client):
    checked = 0
    for endpoint, url, _access in _protected(app):
        response = client.get(url)
        assert response.status_code == 302, endpoint
        assert response.headers["Location"].startswith("/auth/login?next="), endpoint
        checked += 1
    assert checked >= 5


@pytest.mark.parametrize("role", list(Role))
def test_roles_without_permission_get_403_on_role_pages(app, client, make, actions, role):
    actions.login_as(make.user(roles={role}))
    for endpoint, url, access in _protected(app):
        if access == LOGGED_IN:
            continue
        response = client.get(url)
        if role in access:
            assert response.status_code in (200, 302, 404), endpoint
        else:
            assert response.status_code == 403, endpoint


@pytest.mark.parametrize(
    "target",
    [
        "//evil.example",
        "https://evil.example/",
        "/\\evil.example",
        "javascript:alert(1)",
        "/\r\nLocation: https://evil.example",
        "",
        None,
        "evil.example",
        "\\\\evil",
    ],
)
def test_unsafe_next_targets_are_refused(target):
    assert not is_safe_next(target)


@pytest.mark.parametrize("target", ["/", "/products?q=dynr", "/products/1"])
def test_local_next_targets_are_allowed(target):
    assert is_safe_next(target)
