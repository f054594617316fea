"""On SQLite, a request that writes must not fail because another connection wrote first.

A deferred SQLite transaction that has read and then writes, after another connection
committed in between, fails at once with "database is locked" whatever busy_timeout says. In
the browser suite a login racing Stripe's webhook became a 500 that way.
"""

import threading

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.extensions import db
from app.models import Role, User
from app.services import accounts
from app.services.clock import utcnow
from tests.conftest import csrf_token

PASSWORD = "a long enough password"


@pytest.fixture
def committed_user(app):
    with app.app_context():
        engine = db.engine
    if engine.dialect.name != "sqlite":
        pytest.skip("SQLite's locking only: PostgreSQL has row locks and no stale snapshots")
    with Session(engine) as session:
        user = accounts.create_user(
            session,
            email="racing.login@shanhai.demo",
            name="抢先登录",
            password=PASSWORD,
            roles=[Role.STAFF],
            organization=None,
            now=utcnow(),
        )
        session.commit()
        user_id = user.id
    yield engine, user_id
    with engine.begin() as connection:
        connection.execute(sa.delete(User).where(User.id == user_id))


def test_a_login_while_another_connection_commits_logs_in(app, committed_user, monkeypatch):
    engine, user_id = committed_user
    login_has_read = threading.Event()
    other_write_committed = threading.Event()

    def other_writer():
        # Outside any request, as a webhook's or a CLI command's separate connection.
        login_has_read.wait(timeout=10)
        with engine.begin() as connection:
            connection.execute(sa.update(User).where(User.id == user_id).values(name="改名"))
        other_write_committed.set()

    real_authenticate = accounts.authenticate

    def authenticate_after_someone_else_writes(session, *args):
        session.execute(sa.select(User.id).limit(1))
        login_has_read.set()
        # Before the fix the other write committed here and the login's write then failed;
        # now the login holds the write lock and the other writer waits for it.
        other_write_committed.wait(timeout=1)
        return real_authenticate(session, *args)

    monkeypatch.setattr(accounts, "authenticate", authenticate_after_someone_else_writes)
    writer = threading.Thread(target=other_writer)
    writer.start()
    client = app.test_client()
    response = client.post(
        "/auth/login",
        data={
            "email": "racing.login@shanhai.demo",
            "password": PASSWORD,
            "csrf_token": csrf_token(app, client),
        },
    )
    writer.join(timeout=15)

    assert response.status_code == 302
    assert other_write_committed.is_set(), "the other writer waited, then wrote"
    with Session(engine) as session:
        user = session.get(User, user_id)
        assert user.last_login_at is not None
        assert user.name == "改名"
