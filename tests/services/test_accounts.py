import pytest

from app.models import OrgKind, Role
from app.services import accounts, organizations
from app.services.clock import utcnow
from app.services.errors import DomainError, PermissionDenied
from app.services.organizations import OrganizationData
from tests.helpers import PASSWORD


def test_passwords_are_stored_with_a_modern_kdf_not_in_clear(session, make):
    user = make.user(password="a-long-password")
    assert "a-long-password" not in user.password_hash
    assert user.password_hash.startswith("scrypt:")


def test_authenticate_accepts_the_right_password_and_records_the_login(session, make):
    user = make.user(email="Wang@Shanhai.demo")
    now = utcnow()
    assert accounts.authenticate(session, " wang@shanhai.demo ", PASSWORD, now) is user
    assert user.last_login_at == now


@pytest.mark.parametrize(
    ("email", "password"),
    [("wang@shanhai.demo", "wrong-password"), ("nobody@shanhai.demo", PASSWORD)],
)
def test_wrong_email_or_password_get_the_same_message(session, make, email, password):
    make.user(email="wang@shanhai.demo")
    with pytest.raises(DomainError) as caught:
        accounts.authenticate(session, email, password, utcnow())
    assert str(caught.value.message) == "Wrong e-mail or password."


def test_a_disabled_account_cannot_log_in(session, make):
    make.user(email="gone@shanhai.demo", active=False)
    with pytest.raises(DomainError, match="disabled"):
        accounts.authenticate(session, "gone@shanhai.demo", PASSWORD, utcnow())


def test_session_cookie_id_stops_working_after_password_change(session, make):
    user = make.user()
    old_id = user.get_id()
    assert accounts.load_principal(session, old_id).id == user.id
    accounts.change_password(user, PASSWORD, "another-secret-1")
    assert accounts.load_principal(session, old_id) is None
    assert accounts.load_principal(session, user.get_id()).id == user.id


@pytest.mark.parametrize(
    "login_id",
    ["", "abc", "1", "1:", ":1", "1:x", "999999:1", "1:1:1", "1:²", "１:1", "9" * 40 + ":1"],
)
def test_malformed_or_unknown_session_ids_load_nobody(session, login_id):
    assert accounts.load_principal(session, login_id) is None


@pytest.mark.parametrize(
    ("password", "problem"),
    [("short", "at least"), ("12345678901", "only digits"), ("x" * 129, "at most")],
)
def test_weak_passwords_are_refused(session, make, password, problem):
    with pytest.raises(DomainError, match=problem) as caught:
        make.user(password=password)
    assert caught.value.field == "password"


def test_duplicate_email_is_refused_whatever_its_case(session, make):
    make.user(email="li@shanhai.demo")
    with pytest.raises(DomainError, match="already exists"):
        make.user(email="LI@shanhai.demo")


def test_staff_register_only_with_an_allowed_domain_and_a_department(session, make):
    department = make.organization(OrgKind.DEPARTMENT)
    canteen = make.organization(OrgKind.CANTEEN)
    common = {
        "name": "新同事",
        "password": "a-good-password",
        "allowed_domains": ["shanhai.demo"],
        "now": utcnow(),
    }
    with pytest.raises(DomainError) as caught:
        accounts.register_staff(session, email="x@gmail.com", department_id=department.id, **common)
    assert caught.value.field == "email"
    with pytest.raises(DomainError) as caught:
        accounts.register_staff(session, email="x@shanhai.demo", department_id=canteen.id, **common)
    assert caught.value.field == "department_id"
    user = accounts.register_staff(
        session, email="x@shanhai.demo", department_id=department.id, **common
    )
    assert user.roles == {Role.STAFF}
    assert user.organization == department


def test_admin_edits_roles_and_disabling_ends_the_users_sessions(session, make):
    admin = make.user(roles={Role.ADMIN})
    user = make.user(roles={Role.STAFF})
    old_id = user.get_id()
    accounts.update_user(
        session,
        admin,
        user,
        name="改名",
        roles={Role.CANTEEN_BUYER, Role.STAFF},
        organization=user.organization,
        active=False,
    )
    assert user.roles == {Role.CANTEEN_BUYER, Role.STAFF}
    assert accounts.load_principal(session, old_id) is None


def test_admin_cannot_lock_themselves_out(session, make):
    admin = make.user(roles={Role.ADMIN})
    with pytest.raises(DomainError):
        accounts.update_user(
            session, admin, admin, name="a", roles={Role.STAFF}, organization=None, active=True
        )
    with pytest.raises(DomainError):
        accounts.update_user(
            session, admin, admin, name="a", roles={Role.ADMIN}, organization=None, active=False
        )


def test_only_admins_edit_accounts(session, make):
    coordinator = make.user(roles={Role.COORDINATOR})
    with pytest.raises(PermissionDenied):
        accounts.update_user(
            session,
            coordinator,
            make.user(),
            name="x",
            roles={Role.ADMIN},
            organization=None,
            active=True,
        )


def test_users_of_a_disabled_organization_are_locked_out(session, make):
    user = make.user(email="dept@shanhai.demo")
    user.organization.active = False
    session.commit()
    assert accounts.load_principal(session, user.get_id()) is None
    with pytest.raises(DomainError, match="disabled"):
        accounts.authenticate(session, "dept@shanhai.demo", PASSWORD, utcnow())


def test_disabling_the_administrators_organization_is_refused(session, make):
    center = make.organization(OrgKind.CENTER)
    admin = make.user(roles={Role.ADMIN}, organization=center)
    data = OrganizationData(
        code=center.code, kind=OrgKind.CENTER, name_zh=center.name_zh, active=False
    )
    with pytest.raises(DomainError, match="no administrator"):
        organizations.update_organization(session, admin, center, data)


def test_moving_the_last_admin_into_a_disabled_organization_is_refused(session, make):
    admin = make.user(roles={Role.ADMIN})
    closed = make.organization(OrgKind.DEPARTMENT, active=False)
    with pytest.raises(DomainError, match="no administrator"):
        accounts.update_user(
            session, admin, admin, name="a", roles={Role.ADMIN}, organization=closed, active=True
        )


def test_a_second_admin_may_be_disabled(session, make):
    admin = make.user(roles={Role.ADMIN})
    other = make.user(roles={Role.ADMIN})
    accounts.update_user(
        session,
        admin,
        other,
        name="b",
        roles={Role.ADMIN},
        organization=other.organization,
        active=False,
    )
    assert other.active is False
