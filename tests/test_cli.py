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
