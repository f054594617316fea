"""The OpenAPI description of the public JSON API (app/board/openapi.json), served at
/api/v1/openapi.json and checked against the running app with schemathesis: every answer has a
documented status, content type and body, on a database with real pledges and sales in it."""

from __future__ import annotations

import copy
import json
import re
from datetime import date

import jsonschema_rs
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from app.board.views import OPENAPI_PATH
from app.models import Channel, LedgerSource, RegionKind
from app.services import ledger
from app.services.clock import local_date, utcnow
from app.services.ledger import Line
from tests.conftest import IN_CI

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]
HTTP_METHODS = {"get", "put", "post", "delete", "patch"}


def _document() -> dict:
    return json.loads(OPENAPI_PATH.read_text(encoding="utf-8"))


@pytest.fixture
def sales(session, make):
    """Two public pledges running today (one ahead, one behind), a private one, and this
    month's sales of two products, one of them with no English name."""
    today = local_date(utcnow())
    dazhou = make.region(name_zh="达州", kind=RegionKind.PAIRED)
    zhoushan = make.region(name_zh="舟山", kind=RegionKind.LOCAL)
    supplier = make.supplier(region=dazhou, name_zh="达州灯影坊")
    fisher = make.supplier(region=zhoushan, name_zh="舟山渔业社")
    beef = make.product(supplier=supplier, name_zh="灯影牛肉", name_en="Dengying beef")
    fish = make.product(supplier=fisher, name_zh="舟山带鱼", name_en="")
    kitchen = make.canteen(name_zh="东区第二食堂")
    year = {"start": date(today.year, 1, 1), "end": date(today.year, 12, 31)}
    make.pledge(name="达州帮扶", target_fen=100, regions=[dazhou], public=True, **year)
    make.pledge(name="舟山本地", target_fen=90_000_000_000, regions=[zhoushan], public=True, **year)
    make.pledge(name="内部计划", target_fen=5_000, regions=[dazhou], **year)
    for n, (product, region, seller, amount) in enumerate(
        [(beef, dazhou, supplier, 12_345_600), (fish, zhoushan, fisher, 98_700)]
    ):
        ledger._append(
            session,
            Line(
                kitchen.id, region.id, seller.id, seller.name_zh, product.id, product.name_zh, None
            ),
            amount_fen=amount,
            occurred_on=today,
            now=utcnow(),
            channel=Channel.CANTEEN_BULK,
            source=LedgerSource.BULK_LINE,
            reference=f"BO-OPENAPI-{n}",
            dedupe_key=f"test-openapi:{n}",
        )
    session.commit()


@pytest.fixture
def api_schema(app, session, sales):
    """The document as the app serves it, bound to the app (requests go through WSGI in-process,
    in the test's transaction, so they see the rows built above). Loaded from a dict rather
    than with `from_wsgi`, which leaves out the operation that serves the document itself."""
    served = app.test_client().get("/api/v1/openapi.json")
    assert served.status_code == 200
    schema = schemathesis.openapi.from_dict(served.get_json())
    schema.app = app
    return schema


def test_the_document_is_served_as_cacheable_json(client):
    response = client.get("/api/v1/openapi.json")

    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert response.get_json() == _document()
    assert response.headers["Cache-Control"] == "public, max-age=3600"
    assert "Set-Cookie" not in response.headers
    again = client.get("/api/v1/openapi.json", headers={"If-None-Match": response.headers["ETag"]})
    assert again.status_code == 304


def test_the_document_is_declared_public(app, client):
    assert app.view_functions["board.api_openapi"].access == "public"


def test_the_document_is_a_valid_openapi_document(api_schema):
    document = _document()
    assert document["openapi"].startswith("3.")
    api_schema.validate()  # against the OpenAPI meta-schema: raises if it is not valid

    # Every reference points at something that is there.
    def refs(node):
        if isinstance(node, dict):
            if "$ref" in node:
                yield node["$ref"]
            for value in node.values():
                yield from refs(value)
        elif isinstance(node, list):
            for value in node:
                yield from refs(value)

    for ref in refs(document):
        target = document
        for part in ref.removeprefix("#/").split("/"):
            assert part in target, ref
            target = target[part]


def test_the_validation_refuses_a_broken_document():
    broken = _document()
    broken["paths"]["/healthz"]["get"]["responses"]["200"] = "fine"

    with pytest.raises(jsonschema_rs.ValidationError, match="not of type"):
        schemathesis.openapi.from_dict(broken).validate()


def test_every_api_route_is_described(app):
    """A new /api/v1 route (or method) without a description here fails; so does a description
    of a route that is gone."""
    documented = {
        (path, method)
        for path, item in _document()["paths"].items()
        for method in item
        if method in HTTP_METHODS
    }
    routed = set()
    for rule in app.url_map.iter_rules():
        path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            routed.add((path, method.lower()))

    api_routes = {(path, method) for path, method in routed if path.startswith("/api/")}
    assert api_routes >= {("/api/v1/pledges", "get"), ("/api/v1/openapi.json", "get")}
    assert api_routes - documented == set()
    assert documented - routed == set()


def test_the_app_answers_as_the_document_says(app, api_schema):
    """Schemathesis generates requests from the document (valid ones and ones that break it)
    and checks every answer: no server error, and status, content type, headers and body as
    documented."""
    operations = {
        f"{operation.method.upper()} {operation.path}"
        for operation in (result.ok() for result in api_schema.get_all_operations())
    }
    assert operations == {
        "GET /api/v1/pledges",
        "GET /api/v1/openapi.json",
        "GET /products/suggest",
        "GET /healthz",
        "GET /readyz",
    }
    seen: set[tuple[str, int]] = set()

    def check_all(strategy) -> None:
        @settings(
            max_examples=30,
            deadline=None,
            derandomize=IN_CI,
            suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        )
        @given(case=strategy)
        def check(case):
            response = case.call_and_validate(checks=CHECKS)
            seen.add((case.path, response.status_code))

        check()

    # One operation at a time, so that each is exercised (one without parameters ends as soon
    # as its single request has been made).
    for result in api_schema.get_all_operations():
        operation = result.ok()
        check_all(operation.as_strategy(GenerationMode.POSITIVE))
        if operation.query:
            check_all(operation.as_strategy(GenerationMode.NEGATIVE))
    assert {path for path, _status in seen} == {
        "/api/v1/pledges",
        "/api/v1/openapi.json",
        "/products/suggest",
        "/healthz",
        "/readyz",
    }


def test_the_checks_cover_real_data(api_schema, sales):
    """The board and the suggestions are checked with items in their lists, not only empty
    ones: the item schemas are exercised."""
    board = api_schema["/api/v1/pledges"]["GET"].Case()
    response = board.call_and_validate(checks=CHECKS)
    data = response.json()
    assert [pledge["name"] for pledge in data["pledges"]] == ["舟山本地", "达州帮扶"]
    assert {pledge["pace"] for pledge in data["pledges"]} == {"ahead", "behind"}
    assert [top["name_zh"] for top in data["top_products_this_month"]] == ["灯影牛肉", "舟山带鱼"]

    suggest = api_schema["/products/suggest"]["GET"].Case(query={"q": "灯影"})
    response = suggest.call_and_validate(checks=CHECKS)
    assert response.json()["suggestions"][0]["name"] == "灯影牛肉"

    refused = api_schema["/products/suggest"]["GET"].Case(
        query={"q": "a\x00b"}, headers={"Accept": "application/json"}
    )
    response = refused.call_and_validate(checks=CHECKS)
    assert response.status_code == 400 and set(response.json()) == {"error", "message"}


def test_an_answer_that_breaks_the_document_is_caught(app, sales):
    """The same checks fail when the app and the document disagree (here: a count documented
    as a string)."""
    document = copy.deepcopy(_document())
    board = document["components"]["schemas"]["Board"]
    board["properties"]["households_benefited"] = {"type": "string"}
    schema = schemathesis.openapi.from_dict(document)
    schema.app = app

    case = schema["/api/v1/pledges"]["GET"].Case()
    with pytest.raises(FailureGroup) as failures:
        case.call_and_validate(checks=CHECKS)
    assert "households_benefited" in str(failures.value)


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/api/v1/nothing", 404),
        ("GET", "/api/v2/pledges", 404),
        ("POST", "/api/v1/pledges", 405),
    ],
)
def test_api_errors_answer_in_the_documented_error_format(client, method, path, status):
    response = client.open(path, method=method)

    assert response.status_code == status
    assert response.mimetype == "application/json"
    document = _document()
    error_schema = {**document["components"]["schemas"]["Error"]}
    jsonschema_rs.validator_for(error_schema).validate(response.get_json())
    assert response.get_json()["error"]  # a title a person can read
