from urllib.parse import parse_qs, urlsplit

from limits import parse_many

from app.models import OrgKind
from tests.conftest import csrf_token, page_text
from tests.helpers import PASSWORD


def login_limit(app) -> int:
    """How many login attempts the tightest of the configured limits allows."""
    return min(item.amount for item in parse_many(app.config["LOGIN_RATE_LIMIT"]))


def test_login_page_is_chinese_by_default(client):
    response = client.get("/auth/login")
    assert response.status_code == 200
    assert "登录" in page_text(response)
    assert "山海集" in page_text(response)


def test_login_with_the_right_password_redirects_to_next(client, make, actions):
    user = make.user(email="wang@shanhai.demo", name="王晓燕")
    response = actions.post(
        "/auth/login?next=/products", {"email": "wang@shanhai.demo", "password": PASSWORD}
    )
    assert response.status_code == 302
    assert response.headers["Location"] == "/products"
    assert user.name in page_text(client.get("/"))


def test_login_never_redirects_off_site(client, make, actions):
    make.user(email="wang@shanhai.demo")
    response = actions.post(
        "/auth/login",
        {"email": "wang@shanhai.demo", "password": PASSWORD, "next": "https://evil.example/"},
    )
    assert response.headers["Location"] == "/"


def test_wrong_password_keeps_the_email_and_says_why(client, make, actions):
    make.user(email="wang@shanhai.demo")
    response = actions.post("/auth/login", {"email": "wang@shanhai.demo", "password": "nope-nope"})
    assert response.status_code == 422
    assert "邮箱或密码错误。" in page_text(response)
    assert 'value="wang@shanhai.demo"' in response.get_data(as_text=True)


def test_login_without_csrf_token_is_refused(client, make):
    make.user(email="wang@shanhai.demo")
    response = client.post("/auth/login", data={"email": "wang@shanhai.demo", "password": PASSWORD})
    assert response.status_code == 400
    assert "表单已过期" in page_text(response)
    with client.session_transaction() as flask_session:
        assert "_user_id" not in flask_session


def test_forged_csrf_token_is_refused(client, make):
    make.user(email="wang@shanhai.demo")
    response = client.post(
        "/auth/login",
        data={"email": "wang@shanhai.demo", "password": PASSWORD, "csrf_token": "forged"},
    )
    assert response.status_code == 400


def test_too_many_login_attempts_are_slowed_down_with_a_message(app, client, actions):
    for _ in range(login_limit(app)):
        actions.post("/auth/login", {"email": "x@shanhai.demo", "password": "wrong-pass"})
    response = actions.post("/auth/login", {"email": "x@shanhai.demo", "password": "wrong-pass"})
    assert response.status_code == 429
    text = page_text(response)
    assert "短时间内尝试次数过多" in text
    assert "per 1 minute" not in text and "per minute" not in text


def test_one_email_is_limited_however_many_addresses_the_attempts_come_from(app, make, actions):
    make.user(email="target@shanhai.demo")
    make.user(email="bystander@shanhai.demo")
    limit = login_limit(app)

    def attempt(email, password, address):
        return actions.post(
            "/auth/login",
            {"email": email, "password": password},
            environ_base={"REMOTE_ADDR": f"10.0.0.{address}"},
        )

    for address in range(1, limit + 1):
        assert attempt("target@shanhai.demo", "guess-guess", address).status_code == 422
    # Even the right password, from an address never seen before, waits.
    response = attempt("Target@shanhai.demo", PASSWORD, limit + 1)
    assert response.status_code == 429
    assert "短时间内尝试次数过多" in page_text(response)
    # Someone else's login is not held up by it.
    response = attempt("bystander@shanhai.demo", "wrong-pass", limit + 2)
    assert response.status_code == 422
    assert "邮箱或密码错误。" in page_text(response)


def test_a_disabled_user_is_logged_out_on_the_next_request(client, make, actions, session):
    user = actions.login_as(make.user(name="将被停用"))
    assert "将被停用" in page_text(client.get("/"))
    user.active = False
    session.commit()
    assert "将被停用" not in page_text(client.get("/"))
    assert client.get("/auth/account").status_code == 302


def test_a_disabled_user_cannot_log_in(client, make, actions):
    make.user(email="gone@shanhai.demo", active=False)
    response = actions.post("/auth/login", {"email": "gone@shanhai.demo", "password": PASSWORD})
    assert response.status_code == 422
    assert "已停用" in page_text(response)


def test_logout_needs_a_post_with_csrf(client, make, actions):
    actions.login_as(make.user(name="退出者"))
    assert client.get("/auth/logout").status_code == 405
    assert client.post("/auth/logout").status_code == 400
    response = actions.post("/auth/logout")
    assert response.status_code == 302
    assert "退出者" not in page_text(client.get("/"))


def test_staff_register_with_a_work_address(client, make, actions):
    department = make.organization(OrgKind.DEPARTMENT, name_zh="市财政局")
    assert "市财政局" in page_text(client.get("/auth/register"))
    response = actions.post(
        "/auth/register",
        {
            "email": "new@shanhai.demo",
            "name": "新同事",
            "department_id": department.id,
            "password": "a-good-password",
            "confirm": "a-good-password",
        },
    )
    assert response.status_code == 302
    assert "新同事" in page_text(client.get("/"))


def test_registration_with_an_outside_address_is_refused_and_input_kept(client, make, actions):
    department = make.organization(OrgKind.DEPARTMENT)
    response = actions.post(
        "/auth/register",
        {
            "email": "me@gmail.com",
            "name": "外人",
            "department_id": department.id,
            "password": "a-good-password",
            "confirm": "a-good-password",
        },
    )
    assert response.status_code == 400
    assert "只有本单位邮箱域名的地址可以注册" in page_text(response)
    assert 'value="外人"' in response.get_data(as_text=True)


def test_change_password_keeps_this_session_and_ends_others(app, client, make, actions):
    user = actions.login_as(make.user())
    other_device = app.test_client()
    with other_device.session_transaction() as flask_session:
        flask_session["_user_id"] = user.get_id()
    response = actions.post(
        "/auth/password",
        {
            "current_password": PASSWORD,
            "new_password": "brand-new-secret",
            "confirm": "brand-new-secret",
        },
    )
    assert response.status_code == 302
    assert client.get("/auth/account").status_code == 200
    assert other_device.get("/auth/account").status_code == 302


def test_change_password_with_a_wrong_current_password_says_so(client, make, actions):
    actions.login_as(make.user())
    response = actions.post(
        "/auth/password",
        {
            "current_password": "wrong-one",
            "new_password": "brand-new-secret",
            "confirm": "brand-new-secret",
        },
    )
    assert response.status_code == 400
    assert "当前密码不正确" in page_text(response)


def login_remembered(actions, email):
    response = actions.post("/auth/login", {"email": email, "password": PASSWORD, "remember": "y"})
    assert response.status_code == 302
    cookie = actions.client.get_cookie("remember_token")
    assert cookie is not None
    return cookie.value


def browser_with_only(app, remember_token):
    """A browser that was closed and reopened: no session cookie, only the remember cookie."""
    browser = app.test_client()
    browser.set_cookie("remember_token", remember_token)
    return browser


def test_remember_me_keeps_the_user_logged_in_after_the_browser_is_closed(app, make, actions):
    make.user(email="keep@shanhai.demo", name="记住我的人")
    remember_token = login_remembered(actions, "keep@shanhai.demo")
    reopened = browser_with_only(app, remember_token)
    assert "记住我的人" in page_text(reopened.get("/"))
    assert reopened.get("/auth/account").status_code == 200


def test_without_remember_me_no_remember_cookie_is_set(client, make, actions):
    make.user(email="once@shanhai.demo", name="不记住的人")
    response = actions.post("/auth/login", {"email": "once@shanhai.demo", "password": PASSWORD})
    assert response.status_code == 302
    assert "不记住的人" in page_text(client.get("/"))
    assert client.get_cookie("remember_token") is None


def test_after_a_password_change_an_old_remember_cookie_logs_nobody_in(app, make, actions):
    make.user(email="moved@shanhai.demo", name="改过密码的人")
    old_token = login_remembered(actions, "moved@shanhai.demo")
    response = actions.post(
        "/auth/password",
        {
            "current_password": PASSWORD,
            "new_password": "brand-new-secret",
            "confirm": "brand-new-secret",
        },
    )
    assert response.status_code == 302
    stolen = browser_with_only(app, old_token)
    assert "改过密码的人" not in page_text(stolen.get("/"))
    assert stolen.get("/auth/account").status_code == 302
    # The device the password was changed on is still remembered, under the new password.
    new_token = actions.client.get_cookie("remember_token").value
    assert new_token != old_token
    assert "改过密码的人" in page_text(browser_with_only(app, new_token).get("/"))


def test_english_is_one_click_away_and_sticks(client):
    response = client.get("/lang/en?next=/auth/login")
    assert response.headers["Location"] == "/auth/login"
    assert "Log in" in page_text(client.get("/auth/login"))
    client.get("/lang/zh_CN")
    assert "登录" in page_text(client.get("/auth/login"))


def test_a_form_posted_after_logging_out_comes_back_to_its_page_after_login(app, client, make):
    product = make.product()
    page = f"/products/{product.id}"
    form = {"csrf_token": csrf_token(app, client), "quantity": "1"}

    response = client.post(
        f"/cart/add/{product.id}", data=form, headers={"Referer": f"http://localhost{page}"}
    )

    assert response.status_code == 302
    location = urlsplit(response.headers["Location"])
    assert location.path == "/auth/login"
    # Back to the product page, not to /cart/add/…, which answers a GET with nothing to show.
    assert parse_qs(location.query)["next"] == [page]
    assert "请先登录再打开该页面" in page_text(client.get(response.headers["Location"]))


def test_a_post_from_another_site_gets_no_return_target(app, client, make):
    product = make.product()
    response = client.post(
        f"/cart/add/{product.id}",
        data={"csrf_token": csrf_token(app, client), "quantity": "1"},
        headers={"Referer": "https://evil.example/products/1"},
    )
    assert response.status_code == 302
    assert "next" not in parse_qs(urlsplit(response.headers["Location"]).query)
