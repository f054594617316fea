"""The public board and /api/v1/pledges: open to anyone, only public pledges, nothing private."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta

import pytest

from app.models import Channel, LedgerSource, RegionKind, Role
from app.services import ledger, pledges
from app.services.clock import local_date, utcnow
from app.services.ledger import Line
from tests.conftest import page_text

TODAY = local_date(utcnow())
START = date(TODAY.year, 1, 1)
END = date(TODAY.year, 12, 31)


@pytest.fixture
def world(session, make):
    dazhou = make.region(name_zh="达州", kind=RegionKind.PAIRED)
    supplier = make.supplier(region=dazhou, name_zh="达州灯影坊")
    beef = make.product(supplier=supplier, name_zh="灯影牛肉", name_en="Dengying beef")
    kitchen = make.canteen(name_zh="东区第二食堂")
    buyer = make.user(organization=kitchen, name="王秘密", email="wang.secret@shanhai.demo")
    order = make.order(buyer=buyer)
    public = make.pledge(
        name="公开的采购计划",
        target_fen=53_000_000,
        regions=[dazhou],
        start=START,
        end=END,
        public=True,
    )
    private = make.pledge(
        name="内部的采购计划", target_fen=10_000_000, regions=[dazhou], start=START, end=END
    )
    ledger._append(
        session,
        Line(kitchen.id, dazhou.id, supplier.id, "达州灯影坊", beef.id, "灯影牛肉", None),
        amount_fen=12_345_600,
        occurred_on=TODAY,
        now=utcnow(),
        channel=Channel.CANTEEN_BULK,
        source=LedgerSource.BULK_LINE,
        reference="BO-SECRET-42",
        dedupe_key="test-board:1",
    )
    session.commit()

    class World:
        pass

    w = World()
    w.public, w.private, w.buyer, w.order, w.kitchen = public, private, buyer, order, kitchen
    return w


def test_anyone_sees_the_board_with_the_public_pledges_only(client, session, world):
    response = client.get("/board")

    assert response.status_code == 200
    html = response.get_data(as_text=True)
    text = page_text(response)
    assert "公开的采购计划" in text
    assert "内部的采购计划" not in text
    assert "12.35万元" in text and "53.00万元" in text
    assert "灯影牛肉" in text  # this month's top product
    assert re.search(r'<meta http-equiv="refresh" content="60">', html)
    assert "<script" not in html
    # Nothing private: no person, no order, no reference of a sale, no unit's own purchases.
    for private in ("王秘密", "wang.secret", world.order.number, "BO-SECRET-42", "东区第二食堂"):
        assert private not in html, private
    assert "Log out" not in html and "csrf" not in html.lower()
    assert response.headers["Cache-Control"] == "public, max-age=30"


def test_the_board_is_the_same_for_a_logged_in_user(client, actions, make, world):
    actions.login_as(make.user(roles={Role.COORDINATOR}, name="刘协调"))
    response = client.get("/board")
    assert response.status_code == 200
    assert "刘协调" not in response.get_data(as_text=True)


def test_the_board_shows_a_message_when_no_public_pledge_runs(client, session, world):
    world.public.public = False
    session.commit()
    response = client.get("/board")
    assert response.status_code == 200
    assert "公开的采购计划" not in page_text(response)
    assert 'class="board-empty"' in response.get_data(as_text=True)


def test_the_api_gives_the_same_figures_as_json(client, session, world):
    response = client.get("/api/v1/pledges")

    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert response.headers["Cache-Control"] == "public, max-age=30"
    data = response.get_json()
    assert set(data) == {
        "generated_at",
        "month",
        "pledges",
        "top_products_this_month",
        "households_benefited",
    }
    generated = datetime.fromisoformat(data["generated_at"])
    assert data["generated_at"].endswith("Z")
    assert abs(generated - utcnow()) < timedelta(minutes=1)
    # The day the answer was computed on, not the one the module was imported on: a run that
    # crosses midnight in Zhoushan (16:00 UTC) would otherwise compare two different days.
    today = local_date(generated)
    assert data["month"] == today.replace(day=1).isoformat()
    (pledge,) = data["pledges"]
    figures = pledges.progress(session, world.public, today)
    assert pledge == {
        "id": world.public.id,
        "name": "公开的采购计划",
        "period_start": START.isoformat(),
        "period_end": END.isoformat(),
        "target_fen": 53_000_000,
        "met_fen": 12_345_600,
        "share_met": round(12_345_600 / 53_000_000, 4),
        "share_elapsed": pytest.approx(float(figures.share_elapsed), abs=0.0001),
        "pace": pledge["pace"],
        "ahead_fen": figures.ahead_fen,
    }
    assert pledge["pace"] in ("ahead", "behind", "on_pace")
    assert isinstance(pledge["met_fen"], int) and isinstance(pledge["target_fen"], int)
    (top,) = data["top_products_this_month"]
    assert top["name_zh"] == "灯影牛肉" and top["name_en"] == "Dengying beef"
    assert top["amount_fen"] == 12_345_600 and top["region_zh"] == "达州"
    assert isinstance(data["households_benefited"], int) and data["households_benefited"] >= 120
    body = response.get_data(as_text=True)
    for private in ("王秘密", world.order.number, "BO-SECRET-42", "东区第二食堂", "内部的采购计划"):
        assert private not in body, private


def test_the_api_answers_without_setting_a_cookie(client, world):
    response = client.get("/api/v1/pledges")
    assert "Set-Cookie" not in response.headers


def test_the_board_and_the_api_are_declared_public(app):
    for endpoint in ("board.index", "board.api_pledges"):
        assert app.view_functions[endpoint].access == "public"
