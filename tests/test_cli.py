import sqlalchemy as sa

from app.models import Organization, OrgKind, Product, ProductStatus, Role, User
from app.services import accounts
from app.services.clock import utcnow


def test_seed_demo_creates_the_catalog_and_one_account_per_role(runner, session):
    result = runner.invoke(args=["seed-demo", "--password", "demo-password-1"])
    assert result.exit_code == 0, result.output
    names = set(
        session.scalars(sa.select(Product.name_zh).where(Product.status == ProductStatus.ACTIVE))
    )
    assert {"灯影牛肉", "百里坡黑鸡蛋", "巴蜀名特酱香鸭", "万源菜籽油"} <= names
    assert len(names) >= 40
    suppliers = session.scalars(
        sa.select(Organization).where(Organization.kind == OrgKind.SUPPLIER)
    ).all()
    assert len(suppliers) >= 8
    assert {s.region.code for s in suppliers} == {"dazhou", "zhoushan"}
    kinds = set(session.scalars(sa.select(Organization.kind)))
    assert {OrgKind.CANTEEN, OrgKind.COUNTER, OrgKind.DEPARTMENT} <= kinds
    roles = set().union(*(u.roles for u in session.scalars(sa.select(User))))
    assert roles == set(Role)
    assert "staff@shanhai.demo" in result.output and "demo-password-1" in result.output
    assert accounts.authenticate(session, "admin@shanhai.demo", "demo-password-1", utcnow())


def test_seed_demo_twice_adds_nothing_the_second_time(runner, session):
    runner.invoke(args=["seed-demo"])
    counts = [
        session.scalar(sa.select(sa.func.count()).select_from(m))
        for m in (Product, User, Organization)
    ]
    result = runner.invoke(args=["seed-demo"])
    assert result.exit_code == 0
    assert "nothing new" in result.output
    assert [
        session.scalar(sa.select(sa.func.count()).select_from(m))
        for m in (Product, User, Organization)
    ] == counts


def test_seed_demo_refuses_to_run_in_production(app, runner, session):
    app.config["APP_ENV"] = "production"
    try:
        result = runner.invoke(args=["seed-demo"])
    finally:
        app.config["APP_ENV"] = "testing"
    assert result.exit_code != 0
    assert "Refusing" in result.output
    assert session.scalar(sa.select(sa.func.count(User.id))) == 0


def test_create_user_from_the_command_line(runner, session, make):
    make.organization(OrgKind.CENTER, code="CENTER")
    result = runner.invoke(
        args=[
            "create-user",
            "root@shanhai.demo",
            "--name",
            "系统管理员",
            "--role",
            "admin",
            "--org",
            "CENTER",
            "--password",
            "a-strong-password",
        ]
    )
    assert result.exit_code == 0, result.output
    user = accounts.find_user_by_email(session, "root@shanhai.demo")
    assert user.roles == {Role.ADMIN}
    assert user.organization.code == "CENTER"


def test_create_user_reports_bad_input_without_creating_anything(runner, session):
    result = runner.invoke(
        args=[
            "create-user",
            "not-an-email",
            "--name",
            "x",
            "--role",
            "staff",
            "--password",
            "a-strong-password",
        ]
    )
    assert result.exit_code != 0
    assert "有效的邮箱" in result.output or "valid e-mail" in result.output
    result = runner.invoke(
        args=[
            "create-user",
            "a@shanhai.demo",
            "--name",
            "x",
            "--role",
            "staff",
            "--org",
            "NOPE",
            "--password",
            "a-strong-password",
        ]
    )
    assert "No organization" in result.output
    assert session.scalar(sa.select(sa.func.count(User.id))) == 0


def test_create_user_with_a_name_too_long_is_refused_cleanly(runner, session):
    result = runner.invoke(
        args=[
            "create-user",
            "long@shanhai.demo",
            "--name",
            "长" * 65,
            "--role",
            "staff",
            "--password",
            "a-strong-password",
        ]
    )
    assert result.exit_code != 0
    assert "最多 64 个字符" in result.output
    assert session.scalar(sa.select(sa.func.count(User.id))) == 0


# --- flask import-sales ------------------------------------------------------------------------


def _import_counts(session) -> tuple[int, int, int]:
    from app.models import ImportBatch, ImportRow, LedgerEntry

    return tuple(
        session.scalar(sa.select(sa.func.count()).select_from(model))
        for model in (ImportBatch, ImportRow, LedgerEntry)
    )


def test_import_sales_stages_a_file_for_review(runner, session, make, tmp_path):
    from app.models import ImportBatch, ImportStatus
    from tests.helpers import good_sales_rows, import_world, sales_csv

    world = import_world(make)
    path = tmp_path / "zcy-2026.csv"
    path.write_bytes(sales_csv(good_sales_rows(world)))

    result = runner.invoke(args=["import-sales", str(path), "--source", "zcy"])

    assert result.exit_code == 0, result.output
    batch = session.scalars(sa.select(ImportBatch)).one()
    assert batch.status == ImportStatus.PENDING and batch.created_by_id is None
    assert batch.filename == "zcy-2026.csv"
    assert "Checking rows" in result.output
    assert "3 rows, 3 new, 0 already counted, ¥4,540.50" in result.output
    assert f"/pledges/imports/{batch.id}" in result.output
    assert _import_counts(session)[2] == 0


def test_import_sales_with_commit_counts_the_rows_once(runner, session, make, tmp_path):
    from app.models import ImportBatch, ImportStatus, LedgerEntry
    from tests.helpers import good_sales_rows, import_world, sales_csv

    world = import_world(make)
    path = tmp_path / "sales.csv"
    path.write_bytes(sales_csv(good_sales_rows(world)))
    args = ["import-sales", str(path), "--source", "zcy", "--commit"]

    result = runner.invoke(args=[*args, "--as", world.coordinator.email])

    assert result.exit_code == 0, result.output
    assert "Checking rows" in result.output and "Counting rows" in result.output
    assert "Committed: 3 rows" in result.output
    batch = session.scalars(sa.select(ImportBatch)).one()
    assert batch.status == ImportStatus.COMMITTED
    assert batch.created_by_id == world.coordinator.id
    total = sa.select(sa.func.sum(LedgerEntry.amount_fen))
    assert session.scalar(total) == 454050

    again = runner.invoke(args=args)
    assert again.exit_code == 0, again.output
    assert "3 rows, 0 new, 3 already counted" in again.output
    assert session.scalar(total) == 454050


def test_import_sales_lists_the_bad_lines_and_exits_1_with_nothing_written(
    runner, session, make, tmp_path
):
    from tests.helpers import good_sales_rows, import_world, sales_csv

    world = import_world(make)
    rows = good_sales_rows(world)
    bad = [rows[0], ("2026-04-01", "NO-SUCH-UNIT", *rows[0][2:6], "B-1", ""), rows[0]]
    path = tmp_path / "bad.csv"
    path.write_bytes(sales_csv(bad))

    result = runner.invoke(args=["import-sales", str(path), "--source", "zcy", "--commit"])

    assert result.exit_code == 1
    assert "line 3:" in result.output and "NO-SUCH-UNIT" in result.output
    assert "line 4:" in result.output and "ZCY-2026-0001" in result.output
    assert "line 2:" not in result.output
    assert _import_counts(session) == (0, 0, 0)


def test_import_sales_refuses_a_file_that_is_not_a_spreadsheet(runner, session, make, tmp_path):
    path = tmp_path / "photo.csv"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00binary")
    result = runner.invoke(args=["import-sales", str(path), "--source", "zcy"])
    assert result.exit_code == 1
    assert "photo.csv:" in result.output
    assert _import_counts(session) == (0, 0, 0)


def test_import_sales_refuses_a_bad_source_or_someone_not_a_coordinator(
    runner, session, make, tmp_path
):
    from tests.helpers import good_sales_rows, import_world, sales_csv

    world = import_world(make)
    path = tmp_path / "sales.csv"
    path.write_bytes(sales_csv(good_sales_rows(world)))
    staff = make.user(roles={Role.STAFF})

    for extra in (
        ["--source", "政采云"],
        ["--source", "zcy", "--as", staff.email],
        ["--source", "zcy", "--as", "nobody@shanhai.demo"],
    ):
        result = runner.invoke(args=["import-sales", str(path), *extra])
        assert result.exit_code == 1, extra
    assert "not a coordinator" in result.output or "nobody@shanhai.demo" in result.output
    assert _import_counts(session) == (0, 0, 0)


# --- flask ledger-check ------------------------------------------------------------------------


def test_ledger_check_passes_on_the_demo_year_and_names_a_corrupted_group(runner, session):
    from app.models import LedgerMonth

    assert runner.invoke(args=["seed-demo", "--password", "demo-password-1"]).exit_code == 0
    entries = session.scalar(sa.select(sa.func.count()).select_from(LedgerMonth))
    assert entries > 0

    result = runner.invoke(args=["ledger-check"])

    assert result.exit_code == 0, result.output
    assert result.output.startswith("The roll-up equals the ledger:")
    assert f"in {entries:,} monthly groups" in result.output
    assert len(result.output.strip().splitlines()) == 1

    row = session.scalars(sa.select(LedgerMonth).order_by(LedgerMonth.id)).first()
    amount = row.amount_fen
    session.execute(
        sa.text("UPDATE ledger_months SET amount_fen = amount_fen + 1 WHERE id = :id"),
        {"id": row.id},
    )
    result = runner.invoke(args=["ledger-check"])

    assert result.exit_code == 1
    assert "differs from the ledger in 1 group(s)" in result.output
    (problem,) = [line for line in result.output.splitlines() if line.startswith("  ")]
    assert problem.strip().startswith(
        f"{row.month.isoformat()} unit {row.buyer_organization_id} region {row.origin_region_id}"
        f" {row.channel.value} supplier {row.supplier_key} product {row.product_key}:"
    )
    assert f"ledger {amount} fen in {row.entries} entries, roll-up {amount + 1} fen" in problem
