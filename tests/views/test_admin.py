from app.models import OrgKind, Role, User
from tests.conftest import Actions, page_text
from tests.helpers import PASSWORD


def test_admin_lists_and_searches_accounts(client, make, actions):
    actions.login_as(make.user(roles={Role.ADMIN}, name="管理员甲"))
    make.user(name="王晓燕", email="wxy@shanhai.demo")
    make.user(name="陈建国", roles={Role.CANTEEN_BUYER})
    text = page_text(client.get("/admin/users"))
    assert "王晓燕" in text and "陈建国" in text
    text = page_text(client.get("/admin/users?q=wxy"))
    assert "王晓燕" in text and "陈建国" not in text
    text = page_text(client.get("/admin/users?role=canteen_buyer"))
    assert "陈建国" in text and "王晓燕" not in text


def test_admin_creates_an_account_with_roles_and_organization(client, make, actions, session):
    actions.login_as(make.user(roles={Role.ADMIN}))
    canteen = make.organization(OrgKind.CANTEEN)
    response = actions.post(
        "/admin/users/new",
        {
            "email": "cook@shanhai.demo",
            "name": "食堂采购",
            "roles": ["canteen_buyer", "staff"],
            "organization_id": canteen.id,
            "active": "y",
            "password": "first-password",
        },
    )
    assert response.status_code == 302
    user = session.query(User).filter_by(email="cook@shanhai.demo").one()
    assert user.roles == {Role.CANTEEN_BUYER, Role.STAFF}
    assert user.organization == canteen


def test_admin_create_account_errors_stay_on_the_form(client, make, actions, session):
    actions.login_as(make.user(roles={Role.ADMIN}))
    make.user(email="taken@shanhai.demo")
    response = actions.post(
        "/admin/users/new",
        {
            "email": "taken@shanhai.demo",
            "name": "重复",
            "roles": ["staff"],
            "password": "first-password",
        },
    )
    assert response.status_code == 400
    assert "该邮箱已注册" in page_text(response)
    assert session.query(User).filter_by(name="重复").count() == 0


def test_admin_disables_an_account_which_then_cannot_log_in(app, client, make, actions, session):
    actions.login_as(make.user(roles={Role.ADMIN}))
    user = make.user(name="要停用的人")
    their_browser = Actions(app, app.test_client())
    their_browser.login_as(user)
    assert their_browser.client.get("/auth/account").status_code == 200

    response = actions.post(
        f"/admin/users/{user.id}",
        {"email": user.email, "name": user.name, "roles": ["staff"], "organization_id": 0},
    )
    assert response.status_code == 302
    session.refresh(user)
    assert user.active is False

    # The session they already had ends at their next request...
    response = their_browser.client.get("/auth/account")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/auth/login?next=")
    assert "要停用的人" not in page_text(their_browser.client.get("/"))
    # ...and the right password no longer lets them back in.
    response = their_browser.post("/auth/login", {"email": user.email, "password": PASSWORD})
    assert response.status_code == 422
    assert "该账号已停用" in page_text(response)
    assert their_browser.client.get("/auth/account").status_code == 302


def test_admin_creates_a_supplier_organization(client, make, actions):
    actions.login_as(make.user(roles={Role.ADMIN}))
    region = make.region(code="dz-admin", name_zh="达州")
    response = actions.post(
        "/admin/organizations/new",
        {
            "code": "DZ-NEW",
            "kind": "supplier",
            "name_zh": "达州新合作社",
            "region_id": region.id,
            "supplier_type": "cooperative",
            "households_benefited": "88",
            "active": "y",
        },
    )
    assert response.status_code == 302
    text = page_text(client.get("/admin/organizations"))
    assert "达州新合作社" in text and "DZ-NEW" in text


def test_organization_with_negative_households_is_refused(client, make, actions):
    actions.login_as(make.user(roles={Role.ADMIN}))
    response = actions.post(
        "/admin/organizations/new",
        {"code": "BAD", "kind": "supplier", "name_zh": "坏数据", "households_benefited": "-3"},
    )
    assert response.status_code == 400
    assert "不能为负数" in page_text(response)
    assert "坏数据" not in page_text(client.get("/admin/organizations"))


def test_admin_adds_a_region(client, make, actions):
    actions.login_as(make.user(roles={Role.ADMIN}))
    response = actions.post(
        "/admin/regions/new",
        {
            "code": "guangyuan",
            "name_zh": "广元",
            "name_en": "Guangyuan",
            "province_zh": "四川省",
            "kind": "paired",
        },
    )
    assert response.status_code == 302
    assert "广元" in page_text(client.get("/admin/regions"))


def test_non_admins_cannot_open_the_admin_area(client, make, actions):
    actions.login_as(make.user(roles={Role.COORDINATOR}))
    response = client.get("/admin/users")
    assert response.status_code == 403
    assert "无权访问" in page_text(response)
