"""Offline sales imports through the web: upload, review, commit, discard, reverse."""

from __future__ import annotations

import io
import re

import pytest
import sqlalchemy as sa

from app.models import ImportBatch, ImportRow, ImportStatus, LedgerEntry, LedgerMonth, Role
from app.services import ledger
from tests.conftest import page_text
from tests.helpers import good_sales_rows, import_world, sales_csv, staged_import


@pytest.fixture
def world(make):
    return import_world(make)


def counts(session) -> dict[str, int]:
    return {
        model.__name__: session.scalar(sa.select(sa.func.count()).select_from(model))
        for model in (ImportBatch, ImportRow, LedgerEntry, LedgerMonth)
    }


def upload(actions, data: bytes, source="zcy", filename="sales.csv"):
    return actions.post(
        "/pledges/imports",
        {"source": source, "file": (io.BytesIO(data), filename)},
        content_type="multipart/form-data",
    )


def ledger_total(session) -> int:
    return session.scalar(sa.select(sa.func.coalesce(sa.func.sum(LedgerEntry.amount_fen), 0)))


# --- who may -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "role", [Role.STAFF, Role.CANTEEN_BUYER, Role.CANTEEN_MANAGER, Role.SUPPLIER]
)
def test_only_coordinators_and_admins_reach_the_imports(client, actions, make, session, role):
    batch = staged_import(make)
    organization = make.supplier() if role == Role.SUPPLIER else make.organization()
    actions.login_as(make.user(roles={role}, organization=organization))
    before = counts(session)
    for url in (
        "/pledges/imports",
        f"/pledges/imports/{batch.id}",
        "/pledges/imports/template.csv",
    ):
        assert client.get(url).status_code == 403, url
    for url in (
        f"/pledges/imports/{batch.id}/commit",
        f"/pledges/imports/{batch.id}/discard",
        f"/pledges/imports/{batch.id}/reverse",
    ):
        assert actions.post(url, {"reason": "x"}).status_code == 403, url
    world = import_world(make)
    assert upload(actions, sales_csv(good_sales_rows(world, "X-"))).status_code == 403
    assert counts(session) == before
    assert session.get(ImportBatch, batch.id).status == ImportStatus.PENDING


def test_anonymous_visitors_are_sent_to_log_in(client):
    response = client.get("/pledges/imports")
    assert response.status_code == 302
    assert "/auth/login" in response.headers["Location"]


@pytest.mark.parametrize("role", [Role.COORDINATOR, Role.ADMIN])
def test_coordinators_and_admins_see_the_list_and_the_form(client, actions, make, role):
    batch = staged_import(make)
    actions.login_as(make.user(roles={role}))
    response = client.get("/pledges/imports")
    assert response.status_code == 200
    text = page_text(response)
    assert f"#{batch.id} · zcy" in text and "sales.csv" in text
    assert "¥4,540.50" in text
    html = response.get_data(as_text=True)
    assert 'name="source"' in html and 'name="file"' in html
    assert '<option value="zcy">' in html  # sources used before, offered again


# --- upload, review, commit --------------------------------------------------------------------


def test_upload_review_and_commit(client, actions, session, world):
    actions.login_as(world.coordinator)
    response = upload(actions, sales_csv(good_sales_rows(world)), filename="政采云11月.csv")
    assert response.status_code == 303
    batch = session.scalars(sa.select(ImportBatch)).one()
    assert response.headers["Location"].endswith(f"/pledges/imports/{batch.id}")
    assert batch.status == ImportStatus.PENDING and batch.filename == "政采云11月.csv"

    page = client.get(f"/pledges/imports/{batch.id}")
    text = page_text(page)
    assert page.status_code == 200
    assert "ZCY-2026-0003" in text and "嵊泗贻贝礼盒" in text and "¥4,540.50" in text
    html = page.get_data(as_text=True)
    assert f'action="/pledges/imports/{batch.id}/commit"' in html
    assert f'action="/pledges/imports/{batch.id}/discard"' in html
    assert "import-entries" not in html  # nothing counts yet
    assert ledger_total(session) == 0

    response = actions.post(f"/pledges/imports/{batch.id}/commit")
    assert response.status_code == 303
    session.refresh(batch)
    assert batch.status == ImportStatus.COMMITTED
    assert ledger_total(session) == 454050
    assert ledger.check_rollup(session) == []
    page = client.get(f"/pledges/imports/{batch.id}")
    html = page.get_data(as_text=True)
    assert 'id="import-entries"' in html and 'name="reason"' in html
    assert f'action="/pledges/imports/{batch.id}/commit"' not in html

    # Committing again (a second tab, a double click) is refused and counts nothing more.
    again = actions.post(f"/pledges/imports/{batch.id}/commit", follow_redirects=True)
    assert again.status_code == 200
    assert "alert-danger" in again.get_data(as_text=True)  # told why, on the same page
    assert ledger_total(session) == 454050


def test_the_same_file_uploaded_again_shows_its_rows_as_already_counted(
    client, actions, session, world
):
    actions.login_as(world.coordinator)
    data = sales_csv(good_sales_rows(world))
    upload(actions, data)
    first = session.scalars(sa.select(ImportBatch)).one()
    actions.post(f"/pledges/imports/{first.id}/commit")

    response = upload(actions, data)
    batch_id = int(response.headers["Location"].rsplit("/", 1)[1])
    page = client.get(f"/pledges/imports/{batch_id}", follow_redirects=True)
    rows = re.search(r'<table[^>]*id="import-rows".*?</table>', page.get_data(as_text=True), re.S)
    assert rows.group(0).count("<s>") == 3  # each amount struck out: it will not count again
    actions.post(f"/pledges/imports/{batch_id}/commit")
    assert ledger_total(session) == 454050


def test_discard(client, actions, session, make, world):
    actions.login_as(world.coordinator)
    batch = staged_import(make, world)
    response = actions.post(f"/pledges/imports/{batch.id}/discard")
    assert response.status_code == 303
    session.refresh(batch)
    assert batch.status == ImportStatus.DISCARDED
    html = client.get(f"/pledges/imports/{batch.id}").get_data(as_text=True)
    assert "/commit" not in html and 'name="reason"' not in html
    assert ledger_total(session) == 0


def test_reverse_needs_a_reason_then_writes_the_negatives(client, actions, session, make, world):
    actions.login_as(world.coordinator)
    batch = staged_import(make, world)
    actions.post(f"/pledges/imports/{batch.id}/commit")

    response = actions.post(f"/pledges/imports/{batch.id}/reverse", {"reason": "  "})
    assert response.status_code == 400
    assert 'aria-invalid="true"' in response.get_data(as_text=True)
    assert ledger_total(session) == 454050

    response = actions.post(f"/pledges/imports/{batch.id}/reverse", {"reason": "金额有误"})
    assert response.status_code == 303
    session.refresh(batch)
    assert batch.status == ImportStatus.REVERSED and batch.reversal_reason == "金额有误"
    assert ledger_total(session) == 0
    page = client.get(f"/pledges/imports/{batch.id}")
    text = page_text(page)
    assert "金额有误" in text and "-¥1,280.50" in text
    assert ledger.check_rollup(session) == []


def test_an_unknown_import_is_not_found(client, actions, world):
    actions.login_as(world.coordinator)
    assert client.get("/pledges/imports/999999").status_code == 404
    assert actions.post("/pledges/imports/999999/commit").status_code == 404


def test_the_rows_of_a_large_import_are_paged(client, actions, session, world):
    actions.login_as(world.coordinator)
    rows = [
        ("2026-05-01", world.finance.code, world.dazhou.code, "", world.beef.code, "10", f"R-{n}")
        for n in range(1, 61)
    ]
    upload(
        actions,
        sales_csv(rows, header=("日期", "单位", "地区", "供应商", "商品", "金额", "参考号")),
    )
    batch = session.scalars(sa.select(ImportBatch)).one()
    first = page_text(client.get(f"/pledges/imports/{batch.id}"))
    second = page_text(client.get(f"/pledges/imports/{batch.id}?page=2"))
    assert "R-50 " in first and "R-51 " not in first
    assert "R-51 " in second and "R-60 " in second
    assert client.get(f"/pledges/imports/{batch.id}?page=3").status_code == 404


def test_the_template_downloads(client, actions, world):
    actions.login_as(world.coordinator)
    response = client.get("/pledges/imports/template.csv")
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert response.data.decode("utf-8-sig").startswith("日期,单位,地区,供应商,商品,金额,参考号")


# --- refused uploads: the errors by line, the source kept, nothing written ----------------------


def test_a_file_with_bad_lines_is_shown_again_with_each_line_and_nothing_is_written(
    client, actions, session, world
):
    actions.login_as(world.coordinator)
    rows = good_sales_rows(world)
    bad = [
        rows[0],
        ("2025-12-01", world.finance.code, world.dazhou.code, "", world.beef.code, "5", "B-1", ""),
        ("2026-05-01", "没有这个单位", world.dazhou.code, "", world.beef.code, "-5", "B-2", ""),
        (*rows[1][:6], rows[0][6], ""),
    ]
    before = counts(session)
    response = upload(actions, sales_csv(bad), source="counter-till")

    assert response.status_code == 422
    html = response.get_data(as_text=True)
    table = re.search(r'<table[^>]*id="import-errors".*?</table>', html, re.S).group(0)
    cells = re.findall(r"<tr><td>(\d+)</td><td>(.*?)</td></tr>", table)
    assert [line for line, _message in cells] == ["3", "4", "5"]
    assert "2025-12-01" in cells[0][1]
    assert 'value="counter-till"' in html
    assert counts(session) == before


@pytest.mark.parametrize(
    ("data", "filename", "status"),
    [
        (b"%PDF-1.4 not a sheet", "sales.pdf", 422),
        (b"Date,Amount\r\n2026-01-01,5\r\n", "sales.csv", 422),
        (b"", "sales.csv", 422),
    ],
    ids=["not-a-spreadsheet", "wrong-headers", "empty"],
)
def test_files_that_cannot_be_read_are_refused(
    client, actions, session, world, data, filename, status
):
    actions.login_as(world.coordinator)
    before = counts(session)
    response = upload(actions, data, filename=filename)
    assert response.status_code == status
    assert 'value="zcy"' in response.get_data(as_text=True)
    assert counts(session) == before


def test_wrong_headers_are_reported_at_the_header_line(client, actions, world):
    actions.login_as(world.coordinator)
    response = upload(actions, b"Date,Amount\r\n2026-01-01,5\r\n")
    assert re.search(
        r"<tr><td>1</td><td>[^<]*参考号 \(reference\)", response.get_data(as_text=True)
    )


def test_a_file_too_large_is_refused_with_413(app, client, actions, session, world, monkeypatch):
    monkeypatch.setitem(app.config, "SALES_IMPORT_MAX_BYTES", 100)
    actions.login_as(world.coordinator)
    response = upload(actions, sales_csv(good_sales_rows(world)))
    assert response.status_code == 413
    assert counts(session)["ImportBatch"] == 0


@pytest.mark.parametrize(("source", "status"), [("", 400), ("政采云", 422), ("a b", 422)])
def test_a_bad_source_is_shown_beside_its_field(client, actions, session, world, source, status):
    actions.login_as(world.coordinator)
    response = upload(actions, sales_csv(good_sales_rows(world)), source=source)
    assert response.status_code == status
    assert 'id="source-error"' in response.get_data(as_text=True)
    assert counts(session)["ImportBatch"] == 0


def test_an_upload_without_a_file_is_refused(client, actions, world):
    actions.login_as(world.coordinator)
    response = actions.post("/pledges/imports", {"source": "zcy"})
    assert response.status_code == 400
    assert 'id="file-error"' in response.get_data(as_text=True)
