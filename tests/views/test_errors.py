"""Error pages look like the site, tell the truth in their status, and speak JSON to the API."""

import json

import pytest

from app import create_app
from app.models import Role
from tests.conftest import page_text


@pytest.fixture
def failing_app(database_url):
    app = create_app("testing", SQLALCHEMY_DATABASE_URI=database_url, PROPAGATE_EXCEPTIONS=False)

    @app.get("/boom")
    def boom():
        raise RuntimeError("a bug")

    boom.access = "public"

    @app.get("/api/v1/boom")
    def api_boom():
        raise RuntimeError("a bug")

    api_boom.access = "public"
    return app


def test_an_unexpected_error_shows_the_styled_500_page(failing_app):
    response = failing_app.test_client().get("/boom")
    assert response.status_code == 500
    text = page_text(response)
    assert "出错了" in text and "山海集" in text
    assert "a bug" not in text


def test_api_errors_are_json(failing_app):
    response = failing_app.test_client().get("/api/v1/boom")
    assert response.status_code == 500
    assert response.get_json()["error"] == "出错了"
    assert failing_app.test_client().get("/api/v1/nothing").get_json()["error"] == "页面不存在"


def test_unknown_pages_get_the_styled_404_page(client):
    response = client.get("/no/such/page")
    assert response.status_code == 404
    assert "页面不存在" in page_text(response)
    assert "返回首页" in page_text(response)


def test_the_500_page_gives_the_request_number_the_log_line_has(failing_app, caplog):
    caplog.set_level("INFO", logger="shanhai.request")
    response = failing_app.test_client().get("/boom", headers={"X-Request-ID": "proxy-1234abcd"})

    assert response.headers["X-Request-ID"] == "proxy-1234abcd"
    assert "proxy-1234abcd" in page_text(response)
    (line,) = [json.loads(r.getMessage()) for r in caplog.records if r.name == "shanhai.request"]
    assert line["request_id"] == "proxy-1234abcd"
    assert line["status"] == 500 and line["path"] == "/boom" and line["ms"] >= 0


#: Longer than int() converts (4,300 digits): such a value must be refused like any bad one.
HUGE_NUMBER = "9" * 5000


@pytest.mark.parametrize(
    ("role", "path"),
    [
        (None, f"/products?page={HUGE_NUMBER}"),
        (Role.CANTEEN_BUYER, f"/canteen/sheet?supplier={HUGE_NUMBER}"),
        (Role.COORDINATOR, f"/invoices/?supplier={HUGE_NUMBER}"),
        (Role.COORDINATOR, f"/pledges/reattribute?retail_order={HUGE_NUMBER}"),
    ],
)
def test_a_number_too_long_to_convert_in_a_query_is_a_400(client, make, actions, role, path):
    if role is not None:
        organization = make.canteen() if role == Role.CANTEEN_BUYER else make.organization()
        actions.login_as(make.user(roles={role}, organization=organization))
    response = client.get(path)
    assert response.status_code == 400
