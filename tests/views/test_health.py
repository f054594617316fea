"""Health checks: /healthz for the supervisor, /readyz for the load balancer; request ids."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from flask_migrate import upgrade

from app import create_app


def test_healthz_answers_without_asking_the_database(client):
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}
    assert response.headers["Cache-Control"] == "no-store"


def test_readyz_is_ok_when_the_schema_is_at_the_migrations_head(client):
    response = client.get("/readyz")

    assert response.status_code == 200
    assert response.get_json()["status"] == "ok"


def test_readyz_refuses_a_database_whose_migrations_have_not_run(tmp_path):
    # The newest migration and the one before it, read from the files (a new migration must
    # not need this test edited).
    scripts = ScriptDirectory(str(Path(__file__).parents[2] / "migrations"))
    head = scripts.get_current_head()
    behind = scripts.get_revision(head).down_revision
    app = create_app("testing", SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path / 'old.sqlite3'}")
    with app.app_context():
        upgrade(revision=behind)

    response = app.test_client().get("/readyz")

    assert response.status_code == 503
    body = response.get_json()
    assert body["reason"] == "migrations"
    assert body["database"] == [behind] and body["expected"] == [head]


def test_readyz_refuses_when_the_database_does_not_answer(tmp_path):
    missing = tmp_path / "no such folder" / "x.sqlite3"
    app = create_app("testing", SQLALCHEMY_DATABASE_URI=f"sqlite:///{missing}")

    response = app.test_client().get("/readyz")

    assert response.status_code == 503
    assert response.get_json() == {"status": "unavailable", "reason": "database"}
    # The process itself is fine: the supervisor must not restart it for this.
    assert app.test_client().get("/healthz").status_code == 200


def test_every_response_carries_a_request_id(client):
    first = client.get("/healthz").headers["X-Request-ID"]
    second = client.get("/").headers["X-Request-ID"]

    assert re.fullmatch(r"[0-9a-f]{32}", first)
    assert first != second


@pytest.mark.parametrize(
    ("sent", "kept"),
    [
        ("lb-7f3a9c2e", True),
        ("short", False),  # too short to be unique
        ("has spaces in it", False),
        ("x" * 65, False),
        ("<script>alert(1)</script>", False),
    ],
)
def test_a_proxys_request_id_is_kept_only_when_it_is_sane(client, sent, kept):
    received = client.get("/healthz", headers={"X-Request-ID": sent}).headers["X-Request-ID"]

    assert (received == sent) is kept
    if not kept:
        assert re.fullmatch(r"[0-9a-f]{32}", received)
