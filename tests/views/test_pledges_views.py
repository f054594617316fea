"""The pledge pages: the form and what it refuses, the pledge page's figures against sums
computed here over ledger_entries, every figure's link to entries adding up to it, the
re-attribution page, behind-pace alerts, and who may open any of it.

Messages are checked in English (the lang cookie), the msgids themselves.
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from html.parser import HTMLParser

import pytest
import sqlalchemy as sa

from app.models import Channel, LedgerEntry, LedgerSource, Pledge, PledgeKind, Role
from app.pledges import views as pledge_views
from app.services import accounts, orders
from app.services.clock import local_date, utcnow
from app.services.money import format_yuan
from app.services.pledges import last_day_of_month
from tests import helpers
from tests.conftest import page_text
from tests.services.test_pledges import (
    World,
    at,
    build_world,
    direct_sum,
    paid_order,
    received_delivery,
)

TODAY = date(2026, 7, 1)


@pytest.fixture
def w(app, make, monkeypatch) -> World:
    monkeypatch.setattr(accounts, "generate_password_hash", helpers.cheap_password_hash)
    with app.app_context():
        return build_world(make)


@pytest.fixture
def coordinator(client, actions, w):
    client.set_cookie("lang", "en")
    return actions.login_as(w.coordinator)


@pytest.fixture
def fixed_today(monkeypatch):
    monkeypatch.setattr(pledge_views, "_today", lambda: TODAY)
    return TODAY


class Links(HTMLParser):
    """Every element with a data-fen attribute: (tag, attributes)."""

    def __init__(self, html: str):
        super().__init__()
        self.found: list[tuple[str, dict]] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if "data-fen" in attributes:
            self.found.append((tag, attributes))

    def by_id(self, element_id: str) -> dict:
        return next(a for _tag, a in self.found if a.get("id") == element_id)


def figures_of(response) -> Links:
    assert response.status_code == 200, response.status_code
    return Links(response.get_data(as_text=True))


def pledge_count(session) -> int:
    return session.scalar(sa.select(sa.func.count()).select_from(Pledge))


# --- who may open the pages ----------------------------------------------------------------------


def test_staff_buyers_suppliers_and_clerks_are_refused_every_pledge_page(client, actions, make, w):
    pledge = make.pledge(regions=[w.dazhou])
    pages = [
        "/pledges/",
        "/pledges/new",
        f"/pledges/{pledge.id}",
        f"/pledges/{pledge.id}/edit",
        f"/pledges/{pledge.id}/ledger",
        "/pledges/reattribute",
    ]
    for user in (w.staff, w.buyer, w.seller, w.clerk, w.manager):
        actions.login_as(user)
        for page in pages:
            assert client.get(page).status_code == 403, (user.email, page)
        response = actions.post("/pledges/new", {"name": "x", "target": "1"})
        assert response.status_code == 403
    assert pledge_count(make.session) == 1


def test_an_administrator_opens_the_pledge_pages(client, actions, make, w):
    pledge = make.pledge(regions=[w.dazhou])
    actions.login_as(make.user(roles={Role.ADMIN}))
    for page in ("/pledges/", f"/pledges/{pledge.id}", f"/pledges/{pledge.id}/ledger"):
        assert client.get(page).status_code == 200, page


# --- creating and editing ------------------------------------------------------------------------


def form_data(w: World, **changes) -> dict:
    data = {
        "name": "2026年达州消费帮扶",
        "kind": "fixed",
        "target": "530,000.00",
        "declared_spending": "",
        "share_percent": "15",
        "period_start": "2026-01",
        "period_end": "2026-12",
        "all_organizations": "y",
        "region_ids": [str(w.dazhou.id)],
        "notes": "53万元采购计划",
    }
    data.update(changes)
    return {key: value for key, value in data.items() if value is not None}


def test_a_coordinator_creates_the_530000_yuan_plan(client, actions, coordinator, session, w):
    form = client.get("/pledges/new")
    assert form.status_code == 200
    html = form.get_data(as_text=True)
    assert 'type="month"' in html and 'name="all_organizations"' in html
    offered = {
        int(v) for v in re.findall(r'name="organization_ids" type="checkbox" value="(\d+)"', html)
    }
    assert {w.finance.id, w.health.id, w.kitchen.id} <= offered
    assert w.seller.organization_id not in offered

    response = actions.post("/pledges/new", form_data(w, public="y"))

    assert response.status_code == 303
    pledge = session.scalar(sa.select(Pledge))
    assert response.headers["Location"].endswith(f"/pledges/{pledge.id}")
    assert (pledge.kind, pledge.target_fen, pledge.period_start, pledge.period_end) == (
        PledgeKind.FIXED,
        53_000_000,
        date(2026, 1, 1),
        date(2026, 12, 31),
    )
    assert pledge.organizations == [] and [r.id for r in pledge.regions] == [w.dazhou.id]
    assert pledge.channels == "" and pledge.public and pledge.notes == "53万元采购计划"
    page = page_text(client.get(f"/pledges/{pledge.id}"))
    assert "2026年达州消费帮扶" in page and "All buying organizations" in page


def test_a_share_pledge_for_one_canteen_with_chosen_channels(
    client, actions, coordinator, session, w
):
    response = actions.post(
        "/pledges/new",
        form_data(
            w,
            kind="share",
            target="",
            declared_spending="2,000,000",
            share_percent="１５",
            all_organizations=None,
            organization_ids=[str(w.kitchen.id)],
            region_ids=[str(w.dazhou.id), str(w.zhoushan.id)],
            channels=["canteen_bulk"],
            period_start="2026年3月",
            period_end="2027-02",
        ),
    )
    assert response.status_code == 303
    pledge = session.scalar(sa.select(Pledge))
    assert (pledge.kind, pledge.declared_spending_fen, pledge.share_percent) == (
        PledgeKind.SHARE,
        200_000_000,
        Decimal("15.00"),
    )
    assert pledge.target_fen == 30_000_000
    assert (pledge.period_start, pledge.period_end) == (date(2026, 3, 1), date(2027, 2, 28))
    assert [o.id for o in pledge.organizations] == [w.kitchen.id]
    assert pledge.channels == "canteen_bulk"
    page = page_text(client.get(f"/pledges/{pledge.id}"))
    assert "Declared" in page and "15.0%" in page


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"target": "0"}, "The target must be more than zero."),
        ({"target": "-5000"}, "The amount must be more than zero."),
        ({"target": "五十万"}, "Enter an amount in yuan"),
        ({"target": ""}, "Enter the target amount."),
        ({"period_end": "2025-12"}, "The period cannot end before it starts."),
        ({"period_start": "2026-01-15"}, "A pledge period starts on the first day of a month."),
        ({"period_end": "2026-12-30"}, "A pledge period ends on the last day of a month."),
        ({"period_start": "January"}, "Write the month as 2026-01."),
        ({"all_organizations": None}, "Choose the buying organizations it covers, or all of them."),
        ({"region_ids": None}, "Choose at least one origin region."),
        ({"name": ""}, "Give the pledge a name."),
        (
            {"kind": "share", "declared_spending": "1000000", "share_percent": "8"},
            "The reserved share is at least 10 per cent (15 per cent is encouraged).",
        ),
        (
            {"kind": "share", "declared_spending": "0", "share_percent": "15"},
            "The declared spending must be more than zero.",
        ),
        (
            {"kind": "share", "declared_spending": "1000000", "share_percent": "1e1000000000"},
            "Enter a share between 10 and 100 per cent, with at most two decimals.",
        ),
    ],
)
def test_bad_input_is_refused_with_a_message_the_input_kept_and_nothing_saved(
    client, actions, coordinator, session, w, changes, message
):
    response = actions.post("/pledges/new", form_data(w, **{"name": "山海协作计划", **changes}))
    assert response.status_code == 400
    assert message in page_text(response)
    html = response.get_data(as_text=True)
    if changes.get("name", "x"):
        assert 'value="山海协作计划"' in html  # what was typed stays
    for key in ("target", "period_start", "period_end"):
        if changes.get(key):
            assert f'value="{changes[key]}"' in html
    assert pledge_count(session) == 0


def test_editing_shows_the_pledge_and_saves_changes(client, actions, coordinator, make, w):
    pledge = make.pledge(regions=[w.dazhou], organizations=[w.finance])
    html = client.get(f"/pledges/{pledge.id}/edit").get_data(as_text=True)
    assert 'value="530000"' in html and 'value="2026-01"' in html and 'value="2026-12"' in html
    assert re.search(
        rf'value="{w.finance.id}"[^>]*checked|checked[^>]*value="{w.finance.id}"', html
    )

    response = actions.post(
        f"/pledges/{pledge.id}/edit",
        form_data(w, name="改名", target="600000", period_end="2026-06"),
    )
    assert response.status_code == 303
    make.session.expire_all()
    assert (pledge.name, pledge.target_fen, pledge.period_end) == (
        "改名",
        60_000_000,
        date(2026, 6, 30),
    )
    assert pledge.organizations == []

    refused = actions.post(f"/pledges/{pledge.id}/edit", form_data(w, target="0"))
    assert refused.status_code == 400
    make.session.expire_all()
    assert pledge.target_fen == 60_000_000


# --- the pledge page: its figures are the ledger's sums ---------------------------------------


@pytest.fixture
def counted(app, make, session, w):
    """Sales of 2026 through the real services: staff orders in March (one line refunded in
    April), canteen deliveries in February and May (one partly short), a Zhoushan order that
    the Dazhou pledge leaves out."""
    with app.app_context():
        first = paid_order(
            session,
            w,
            w.staff,
            [(w.beef, "3"), (w.eggs, "2")],
            at(date(2026, 3, 2)),
            at(date(2026, 3, 2), 11),
        )
        paid_order(
            session,
            w,
            w.nurse,
            [(w.eggs, "1"), (w.fish, "4")],
            at(date(2026, 3, 20)),
            at(date(2026, 3, 20), 11),
        )
        eggs = next(line for line in first.lines if line.product_id == w.eggs.id)
        orders.refund(session, first, w.clerk, at(date(2026, 4, 2)), None, [eggs.id], "退货")
        session.commit()
        received_delivery(
            make, session, w, [(w.bacon, "40")], at(date(2026, 2, 2)), {w.bacon.id: "37.5"}
        )
        received_delivery(
            make, session, w, [(w.bacon, "20")], at(date(2026, 5, 6)), {w.bacon.id: "20"}
        )
    return make.pledge(regions=[w.dazhou], target_fen=53_000_000)


def test_the_page_figures_equal_sums_over_the_ledger_computed_here(
    client, coordinator, session, counted, fixed_today, w
):
    pledge = counted
    found = figures_of(client.get(f"/pledges/{pledge.id}"))

    met = direct_sum(session, date(2026, 1, 1), date(2026, 12, 31), [w.dazhou])
    # 3 x 58 + 2 x 36 - 2 x 36 (refunded) + 36 + 37.5 kg x 19.99 + 20 kg x 21.50
    assert met == 17400 + 3600 + 74963 + 43000
    assert int(found.by_id("fig-met")["data-fen"]) == met

    months = {a["data-month"]: int(a["data-fen"]) for _tag, a in found.found if "data-month" in a}
    assert len(months) == 12
    for month, amount in months.items():
        first = date.fromisoformat(f"{month}-01")
        assert amount == direct_sum(session, first, last_day_of_month(first), [w.dazhou]), month
    assert months["2026-04"] == -7200

    suppliers = dict(
        session.execute(
            sa.text(
                "SELECT supplier_id, SUM(amount_fen) FROM ledger_entries "
                "WHERE origin_region_id = :region GROUP BY supplier_id"
            ),
            {"region": w.dazhou.id},
        ).all()
    )
    shown = {
        int(a["data-key"][1:]): int(a["data-fen"])
        for _tag, a in found.found
        if re.fullmatch(r"s\d+", a.get("data-key", ""))
    }
    assert shown == suppliers

    # Pace on 1 July: 181 of 365 days gone.
    ideal = int((Decimal(53_000_000) * 181 / 365).quantize(Decimal(1), rounding=ROUND_HALF_UP))
    assert int(found.by_id("fig-pace")["data-fen"]) == met - ideal
    assert int(found.by_id("fig-needed")["data-fen"]) == -(-(53_000_000 - met) * 7 // 184)
    forecast = (Decimal(met) * 365 / 181).quantize(Decimal(1), rounding=ROUND_HALF_UP)
    assert int(found.by_id("fig-forecast")["data-fen"]) == forecast

    html = client.get(f"/pledges/{pledge.id}").get_data(as_text=True)
    assert html.count("<svg") >= 2 and 'role="img"' in html and "<title" in html
    assert "<desc" in html and 'class="today"' in html
    assert "cdn" not in html.lower() and '<script src="http' not in html
    text = page_text(client.get(f"/pledges/{pledge.id}"))
    assert "Behind" in text and "days behind the even pace" in text


@pytest.fixture(params=["fixed", "share"])
def linked(request, app, make, session, counted, w):
    """The counted year's Dazhou pledge; or the canteen's reserved share of its spending, with a
    Zhoushan delivery too, which its actual share is divided by but does not count."""
    if request.param == "fixed":
        return counted
    with app.app_context():
        received_delivery(
            make,
            session,
            w,
            [(w.hairtail, "20")],
            at(date(2026, 3, 3)),
            {w.hairtail.id: "20"},
            seller=w.fish_seller,
        )
    return make.pledge(
        name="机关食堂预留份额",
        kind=PledgeKind.SHARE,
        organizations=[w.kitchen],
        regions=[w.dazhou],
        channels=[Channel.CANTEEN_BULK, Channel.OFFLINE],
        declared_spending_fen=200_000_000,
        share_percent=Decimal(15),
    )


#: Figures computed from what was met: their links show the entries met, and the ledger page
#: says how the figure follows from their total.
DERIVED = {"fig-pace", "fig-needed", "fig-forecast"}


def test_every_figure_links_to_entries_that_add_up_to_it(
    client, coordinator, session, linked, fixed_today
):
    pledge = linked
    found = figures_of(client.get(f"/pledges/{pledge.id}"))
    links = [(a.get("id"), a["href"], int(a["data-fen"])) for tag, a in found.found if tag == "a"]
    # Every month and every month's cumulative, the derived figures, every breakdown's slice.
    assert len(links) >= 12 + 12 + len(DERIVED) + 3
    totals = {}
    for element_id, href, figure in links:
        assert href.startswith(f"/pledges/{pledge.id}/ledger"), href
        response = client.get(href)
        drill = figures_of(response)
        total = int(drill.by_id("ledger-total")["data-fen"])
        entries = [int(a["data-fen"]) for tag, a in drill.found if tag == "td"]
        assert sum(entries) == total, href
        if element_id in DERIVED:
            # The figure is worked out on the page the link leads to.
            assert format_yuan(figure) in page_text(response), href
        else:
            assert total == figure, href
        totals[element_id] = total

    met, target = totals["fig-met"], pledge.target_fen
    assert met > 0 and all(totals[element_id] == met for element_id in DERIVED)
    # On 1 July: 181 of the 365 days gone, 184 to go.
    shown = {element_id: int(found.by_id(element_id)["data-fen"]) for element_id in DERIVED}
    assert shown["fig-forecast"] == round_half_up(Decimal(met) * 365 / 181)
    assert shown["fig-needed"] == -(-(target - met) * 7 // 184)
    assert shown["fig-pace"] == met - round_half_up(Decimal(target) * 181 / 365)

    cumulative = {a["data-until"]: int(a["data-fen"]) for _t, a in found.found if "data-until" in a}
    assert len(cumulative) == 12 and cumulative["2026-12"] == met
    assert cumulative["2026-03"] < cumulative["2026-05"]

    if pledge.kind == PledgeKind.SHARE:
        covered, every_region = totals["fig-canteen-covered"], totals["fig-canteen-all"]
        # 37.5 kg x 19.99 + 20 kg x 21.50 of Dazhou bacon; 20 kg x 35.80 of Zhoushan hairtail.
        assert (covered, every_region) == (74963 + 43000, 74963 + 43000 + 71600)
        ratio = page_text(client.get(f"/pledges/{pledge.id}"))
        assert f"{Decimal(covered * 100) / every_region:.1f}%" in ratio


def round_half_up(value: Decimal) -> int:
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def test_the_ledger_links_each_entry_to_its_order(client, coordinator, session, counted, w):
    html = client.get(f"/pledges/{counted.id}/ledger").get_data(as_text=True)
    retail = session.scalars(
        sa.select(LedgerEntry.retail_order_id).where(LedgerEntry.retail_order_id.is_not(None))
    ).all()
    bulk = session.scalars(
        sa.select(LedgerEntry.bulk_order_id).where(LedgerEntry.bulk_order_id.is_not(None))
    ).all()
    assert retail and bulk
    for order_id in retail:
        assert f'href="/orders/{order_id}"' in html
        assert f"/pledges/reattribute?retail_order={order_id}" in html
    for order_id in bulk:
        assert f'href="/canteen/orders/{order_id}"' in html
    text = page_text(client.get(f"/pledges/{counted.id}/ledger"))
    assert "Staff order refunded" in text and "“退货”" in text


def test_a_bad_or_foreign_ledger_filter_is_refused(client, coordinator, counted):
    base = f"/pledges/{counted.id}/ledger"
    for query in (
        "month=2026-13",
        "month=x",
        "until=2026-13",
        "until=abc",
        "until=2026-1",
        "canteen=elsewhere",
        "figure=profit",
        "channel=barter",
        "supplier=x1",
        "supplier=sabc",
        "category=-1",
        "product=s1",
        "page=0",
    ):
        assert client.get(f"{base}?{query}").status_code == 400, query
    for query in ("until=2026-13", "until=abc"):
        assert "Write the month as 2026-01." in page_text(client.get(f"{base}?{query}"))
    assert client.get(f"{base}?month=2027-01").status_code == 404
    assert client.get(f"{base}?until=2025-12").status_code == 404
    assert client.get("/pledges/999999/ledger").status_code == 404


def test_an_empty_pledge_page_and_list_render(client, coordinator, make, w):
    pledge = make.pledge(regions=[w.dazhou], start=date(2030, 1, 1), end=date(2030, 3, 31))
    text = page_text(client.get(f"/pledges/{pledge.id}"))
    assert "Not started" in text and "Nothing counted yet." in text
    assert "Nothing has counted" in page_text(client.get(f"/pledges/{pledge.id}/ledger"))
    assert pledge.name in page_text(client.get("/pledges/"))


# --- alerts on the coordinator's list ------------------------------------------------------------


def test_pledges_behind_pace_are_flagged_on_top_of_the_list(app, client, coordinator, make, w):
    today = local_date(utcnow())
    first = (today.replace(day=1) - timedelta(days=80)).replace(day=1)
    last = last_day_of_month(today + timedelta(days=80))
    behind = make.pledge(name="落后的承诺", regions=[w.dazhou], start=first, end=last)
    upcoming_start = last_day_of_month(today) + timedelta(days=1)
    make.pledge(
        name="未开始的承诺",
        regions=[w.dazhou],
        start=upcoming_start,
        end=last_day_of_month(upcoming_start),
    )

    html = client.get("/pledges/").get_data(as_text=True)
    alerts = html.split('id="behind-alerts"', 1)[1].split("</section>", 1)[0]
    assert "落后的承诺" in alerts and "未开始的承诺" not in alerts
    assert f'data-pledge="{behind.id}"' in alerts
    assert "behind the even pace" in page_text(client.get("/pledges/"))

    app.config["PLEDGE_BEHIND_MARGIN_PERCENT"] = 100
    try:
        assert 'id="behind-alerts"' not in client.get("/pledges/").get_data(as_text=True)
    finally:
        app.config["PLEDGE_BEHIND_MARGIN_PERCENT"] = 5


# --- re-attribution ------------------------------------------------------------------------------


def test_a_coordinator_reattributes_an_order_through_the_page(
    app, client, actions, coordinator, session, make, w
):
    with app.app_context():
        order = paid_order(
            session, w, w.staff, [(w.beef, "1")], at(date(2026, 3, 2)), at(date(2026, 3, 2), 11)
        )
    assert client.get("/pledges/reattribute").status_code == 200
    found = client.get(f"/pledges/reattribute?number={order.number}")
    assert found.status_code == 302
    assert found.headers["Location"].endswith(f"/pledges/reattribute?retail_order={order.id}")
    missing = client.get("/pledges/reattribute?number=NOPE")
    assert missing.status_code == 422 and "No order has the number NOPE." in page_text(missing)

    url = f"/pledges/reattribute?retail_order={order.id}"
    page = client.get(url)
    assert page.status_code == 200 and "¥58.00" in page_text(page)

    refused = actions.post(url, {"organization_id": str(w.health.id), "reason": ""})
    assert refused.status_code == 400 and "Give a reason." in page_text(refused)
    assert session.scalar(sa.select(sa.func.count()).select_from(LedgerEntry)) == 1

    done = actions.post(url, {"organization_id": str(w.health.id), "reason": "应计入卫健委"})
    assert done.status_code == 303
    rows = session.execute(
        sa.select(
            LedgerEntry.buyer_organization_id, LedgerEntry.amount_fen, LedgerEntry.source
        ).order_by(LedgerEntry.id)
    ).all()
    assert rows == [
        (w.finance.id, 5800, LedgerSource.RETAIL_LINE),
        (w.finance.id, -5800, LedgerSource.CORRECTION),
        (w.health.id, 5800, LedgerSource.CORRECTION),
    ]
    after = client.get(url).get_data(as_text=True)
    assert f'data-org="{w.health.id}" data-fen="5800"' in after
    assert f'data-org="{w.finance.id}"' not in after
    assert "应计入卫健委" in after
