"""When Redis or the database stop answering, the shop keeps serving or says so truthfully.

The end-to-end versions, with gunicorn instances under load, are in tests/scale/. These check
the pieces in one process: the Redis cache's circuit breaker, the login limit's local
fall-back, the 503 for a lost database connection, and the session teardown after one.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import time
from collections.abc import Iterator

import pytest
import redis
import sqlalchemy as sa
from sqlalchemy.exc import OperationalError

from app import create_app
from app.extensions import cache, db, limiter
from app.models import Role
from app.services import catalog
from app.web.rediscache import ResilientRedisCache
from tests.conftest import IN_CI, page_text

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture
def hung_port() -> Iterator[int]:
    """A port that accepts connections and never answers: a hung Redis, as clients see it."""
    listener = socket.create_server(("127.0.0.1", 0), backlog=64)
    yield listener.getsockname()[1]
    listener.close()


def _app_with_redis(url: str, **settings):
    return create_app(
        "testing",
        **{
            "SQLALCHEMY_DATABASE_URI": "sqlite://",
            "REDIS_URL": url,
            "CACHE_TYPE": "app.web.rediscache.ResilientRedisCache",
            "CACHE_REDIS_URL": url,
            "CACHE_KEY_PREFIX": f"test-{os.getpid()}-{time.monotonic_ns()}:",
            "CACHE_REDIS_TIMEOUT_SECONDS": 0.2,
            "CACHE_REDIS_RETRY_SECONDS": 30,
            **settings,
        },
    )


def test_a_hung_redis_cache_costs_one_timeout_then_is_left_alone(hung_port, caplog):
    app = _app_with_redis(f"redis://127.0.0.1:{hung_port}/0")
    with app.app_context(), caplog.at_level(logging.WARNING, "app.web.rediscache"):
        backend = cache.cache
        assert isinstance(backend, ResilientRedisCache)
        started = time.monotonic()
        assert cache.get("anything") is None  # a miss, not an error
        first = time.monotonic() - started
        started = time.monotonic()
        for _ in range(50):
            assert cache.set("k", "v") is False
            assert cache.get("k") is None
        rest = time.monotonic() - started
    assert 0.1 < first < 1.5  # the socket timeout, once
    assert rest < 0.05  # the breaker is open: Redis is not asked again
    assert not backend.available
    warnings = [r.getMessage() for r in caplog.records if "Redis cache" in r.getMessage()]
    assert len(warnings) == 1 and "unreachable" in warnings[0]


def _real_redis() -> None:
    try:
        redis.Redis.from_url(REDIS_URL, socket_timeout=2).ping()
    except redis.RedisError as error:
        if IN_CI:
            pytest.fail(f"Redis is needed in CI (TEST_REDIS_URL): {error}")
        pytest.skip(f"needs Redis at {REDIS_URL}: {error}")


def test_the_cache_comes_back_when_redis_does():
    _real_redis()
    app = _app_with_redis(REDIS_URL, CACHE_REDIS_RETRY_SECONDS=0.2)
    with app.app_context():
        backend = cache.cache
        backend._open_until = time.monotonic() + 0.2  # as after a failure
        assert cache.set("k", "v") is False
        time.sleep(0.25)
        assert cache.set("k", "v") is True
        assert cache.get("k") == "v"
        cache.delete("k")


def test_pages_are_served_while_the_redis_cache_hangs(hung_port, make, session):
    make.product(name_zh="挂起时的蜂蜜")
    app = _app_with_redis(f"redis://127.0.0.1:{hung_port}/0", CATALOG_CACHE_SECONDS=30)
    # (The `session` fixture has put the suite's transaction behind db.session: this second
    # app reads the same rows.)
    client = app.test_client()
    for path in ("/products", "/products?q=fengmi", "/board", "/api/v1/pledges"):
        response = client.get(path)
        assert response.status_code == 200, path
    assert "挂起时的蜂蜜" in page_text(client.get("/products"))


def _login_attempt(client, email: str) -> int:
    page = client.get("/auth/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)
    form = {"csrf_token": token, "email": email, "password": "wrong-password"}
    return client.post("/auth/login", data=form).status_code


def test_logins_fall_back_to_a_stricter_local_limit_when_redis_hangs(
    app, hung_port, make, session, caplog
):
    user = make.user(roles={Role.STAFF})
    hung = create_app(
        "testing",
        SQLALCHEMY_DATABASE_URI="sqlite://",
        RATELIMIT_STORAGE_URI=f"redis://127.0.0.1:{hung_port}/0",
        RATELIMIT_STORAGE_OPTIONS={"socket_timeout": 0.2, "socket_connect_timeout": 0.2},
        LOGIN_RATE_LIMIT="100 per minute",
        LOGIN_RATE_LIMIT_FALLBACK="3 per minute",
    )
    client = hung.test_client()
    try:
        with caplog.at_level(logging.WARNING, "flask-limiter"):
            statuses = [_login_attempt(client, user.email) for _ in range(4)]
    finally:
        # The limiter is one object for every app: give it back the suite's storage.
        limiter.init_app(app)
    # Wrong passwords are refused as such (422) until the local limit, then 429: never a 500.
    assert statuses == [422, 422, 422, 429]
    assert any("falling back to in-memory storage" in r.getMessage() for r in caplog.records)


def test_a_lost_database_connection_is_a_503_that_says_try_again(client, monkeypatch):
    def dropped(*_args, **_kwargs):
        raise OperationalError("SELECT 1", {}, Exception("server closed the connection"))

    monkeypatch.setattr(catalog, "sellable", dropped)
    response = client.get("/products")
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert "数据库" in page_text(response)
    assert response.headers.get("X-Request-ID")

    response = client.get("/products", headers={"Accept": "application/json"})
    assert response.status_code == 503
    assert response.get_json()["error"]


def test_a_connection_dropped_before_teardown_does_not_fail_the_request(app):
    """The rollback that closes the session fails on a dropped connection; the answer stands."""
    with app.app_context():
        url = db.engine.url
    if url.get_backend_name() != "postgresql":
        if IN_CI and os.environ.get("TEST_DATABASE_URL"):
            pytest.fail("TEST_DATABASE_URL is set in CI but the suite runs on SQLite")
        pytest.skip("needs PostgreSQL (TEST_DATABASE_URL): SQLite has no connections to drop")
    with app.test_request_context("/"):
        pid = db.session.execute(sa.text("SELECT pg_backend_pid()")).scalar()
        other = sa.create_engine(url, poolclass=sa.pool.NullPool)
        with other.connect() as conn:
            conn.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        other.dispose()
        time.sleep(0.2)
    # Leaving the context ran the teardown without raising; the next request works.
    with app.test_request_context("/"):
        assert db.session.execute(sa.text("SELECT 1")).scalar() == 1
