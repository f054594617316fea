"""Accounts: creating users, checking passwords, roles and disabling."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

import sqlalchemy as sa
from email_validator import EmailNotValidError, validate_email
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from app.models import Organization, OrgKind, Role, User, UserRole
from app.services.errors import DomainError, NotFound, PermissionDenied

MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 128


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    # Checked against when the e-mail is unknown, so a wrong address takes as long as a wrong
    # password and the response time does not reveal who has an account. Made on first use,
    # not at import: every CLI command would pay for it.
    return generate_password_hash("not-a-real-password")


def normalise_email(email: str) -> str:
    try:
        normalized = validate_email(email.strip(), check_deliverability=False).normalized.lower()
    except EmailNotValidError as exc:
        raise DomainError(_l("Enter a valid e-mail address."), field="email") from exc
    if len(normalized) > 254:  # the column's size, and the longest address SMTP carries
        raise DomainError(_l("Enter a valid e-mail address."), field="email")
    return normalized


MAX_NAME_LENGTH = 64


def check_name(name: str) -> str:
    name = name.strip()
    if not name:
        raise DomainError(_l("Enter a name."), field="name")
    if len(name) > MAX_NAME_LENGTH:
        raise DomainError(_l("At most %(n)d characters.", n=MAX_NAME_LENGTH), field="name")
    return name


def check_password_rules(password: str, field: str = "password") -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise DomainError(
            _l("The password must have at least %(n)d characters.", n=MIN_PASSWORD_LENGTH), field
        )
    if len(password) > MAX_PASSWORD_LENGTH:
        raise DomainError(
            _l("The password must have at most %(n)d characters.", n=MAX_PASSWORD_LENGTH), field
        )
    if password.isdigit():
        raise DomainError(_l("The password cannot be only digits."), field)


def find_user_by_email(session: Session, email: str) -> User | None:
    return session.scalar(sa.select(User).where(User.email == email.strip().lower()))


@dataclass(frozen=True)
class Principal:
    """Who is making a request: what access checks and the page header need, nothing more.

    This, not the ORM User, is Flask-Login's `current_user`: it is loaded on every request, so it
    comes from one narrow query instead of an entity with its organization, region and roles
    (a third of a catalog page's server time). Services take it, or a User, as the acting user;
    views that change the account itself load the User by `id`.
    """

    id: int
    email: str
    name: str
    organization_id: int | None
    roles: frozenset[Role]
    session_version: int
    is_authenticated: bool = True
    is_active: bool = True
    is_anonymous: bool = False

    def has_role(self, *roles: Role) -> bool:
        return not self.roles.isdisjoint(roles)

    def get_id(self) -> str:
        return f"{self.id}:{self.session_version}"


#: Anything that acts: a request's Principal or a User loaded by a CLI command or a test.
Actor = Principal | User


_LOGIN_ID = re.compile(r"^\d{1,18}:\d{1,9}$", re.ASCII)

# Built once: constructing a select costs more than running this one, and it runs per request.
_PRINCIPAL_QUERY = (
    sa.select(User.id, User.email, User.name, User.organization_id, UserRole.role)
    .outerjoin(Organization, User.organization_id == Organization.id)
    .outerjoin(UserRole, UserRole.user_id == User.id)
    .where(
        User.id == sa.bindparam("user_id"),
        User.session_version == sa.bindparam("version"),
        User.active.is_(True),
        sa.or_(Organization.id.is_(None), Organization.active.is_(True)),
    )
)


def load_principal(session: Session | sa.Connection, login_id: str) -> Principal | None:
    """The principal behind a login cookie, or None if it is stale, malformed or disabled."""
    if not _LOGIN_ID.match(login_id):
        return None
    user_id, version = (int(part) for part in login_id.split(":"))
    rows = session.execute(_PRINCIPAL_QUERY, {"user_id": user_id, "version": version}).all()
    if not rows:
        return None
    first = rows[0]
    return Principal(
        id=first.id,
        email=first.email,
        name=first.name,
        organization_id=first.organization_id,
        roles=frozenset(row.role for row in rows if row.role is not None),
        session_version=version,
    )


def can_log_in(user: User) -> bool:
    """Disabling an account, or the organization it belongs to, locks it out."""
    return user.active and (user.organization is None or user.organization.active)


def create_user(
    session: Session,
    *,
    email: str,
    name: str,
    password: str,
    roles: Iterable[Role],
    organization: Organization | None,
    now: datetime,
    active: bool = True,
    password_hash: str | None = None,
) -> User:
    """`password_hash`: the password's hash when already made (demo accounts sharing one
    password are hashed once: each hash takes a third of a second on purpose)."""
    email = normalise_email(email)
    name = check_name(name)
    roles = set(roles)
    if not roles:
        raise DomainError(_l("Choose at least one role."), field="roles")
    check_password_rules(password)
    if find_user_by_email(session, email) is not None:
        raise DomainError(_l("An account with this e-mail already exists."), field="email")
    user = User(
        email=email,
        name=name,
        password_hash=password_hash or generate_password_hash(password),
        organization=organization,
        active=active,
        created_at=now,
        role_rows=[UserRole(role=role) for role in sorted(roles)],
    )
    session.add(user)
    session.flush()
    return user


def authenticate(session: Session, email: str, password: str, now: datetime) -> User:
    """The user with these credentials, or a DomainError that does not say which was wrong."""
    user = find_user_by_email(session, email)
    password_hash = user.password_hash if user is not None else _dummy_hash()
    if not check_password_hash(password_hash, password) or user is None:
        raise DomainError(_l("Wrong e-mail or password."))
    if not can_log_in(user):
        raise DomainError(_l("This account has been disabled. Ask an administrator."))
    user.last_login_at = now
    return user


def change_password(user: User, current_password: str, new_password: str) -> None:
    if not check_password_hash(user.password_hash, current_password):
        raise DomainError(_l("The current password is wrong."), field="current_password")
    check_password_rules(new_password, field="new_password")
    user.password_hash = generate_password_hash(new_password)
    # Every other session of this user ends; the caller logs the current one in again.
    user.session_version += 1


def register_staff(
    session: Session,
    *,
    email: str,
    name: str,
    password: str,
    department_id: int | None,
    allowed_domains: Iterable[str],
    now: datetime,
) -> User:
    """Self-registration: staff only, and only with an address at an allowed domain."""
    email = normalise_email(email)
    domain = email.rpartition("@")[2]
    if domain not in {d.lower() for d in allowed_domains}:
        raise DomainError(
            _l("Only addresses at the administration's own domains can register."), field="email"
        )
    department = session.get(Organization, department_id) if department_id else None
    if department is None or department.kind != OrgKind.DEPARTMENT or not department.active:
        raise DomainError(_l("Choose your department."), field="department_id")
    return create_user(
        session,
        email=email,
        name=name,
        password=password,
        roles={Role.STAFF},
        organization=department,
        now=now,
    )


def update_user(
    session: Session,
    actor: Actor,
    user: User,
    *,
    name: str,
    roles: Iterable[Role],
    organization: Organization | None,
    active: bool,
    new_password: str | None = None,
) -> User:
    """An administrator's edit of an account."""
    require_admin(actor)
    roles = set(roles)
    name = check_name(name)
    if not roles:
        raise DomainError(_l("Choose at least one role."), field="roles")
    if user.id == actor.id and (not active or Role.ADMIN not in roles):
        # Otherwise the last administrator can lock everyone out of the admin area.
        raise DomainError(_l("You cannot disable yourself or remove your own admin role."))
    if new_password:
        check_password_rules(new_password, field="new_password")
        user.password_hash = generate_password_hash(new_password)
        user.session_version += 1
    if user.active and not active:
        user.session_version += 1
    user.name = name
    user.organization = organization
    user.active = active
    current = {row.role: row for row in user.role_rows}
    for role in set(current) - roles:
        user.role_rows.remove(current[role])
    for role in sorted(roles - set(current)):
        user.role_rows.append(UserRole(role=role))
    session.flush()
    ensure_an_administrator_remains(session)
    return user


def require_admin(actor: Actor) -> None:
    if not actor.has_role(Role.ADMIN):
        raise PermissionDenied(_l("Only administrators can do this."))


def ensure_an_administrator_remains(session: Session) -> None:
    """Refuse a change that leaves nobody able to log in to the admin area.

    Called after the change is flushed, so it sees the accounts and organizations as they would
    be committed (disabling the administrators' own organization counts too).
    """
    able = session.scalar(
        sa.select(sa.func.count(User.id))
        .join(UserRole, UserRole.user_id == User.id)
        .outerjoin(Organization, User.organization_id == Organization.id)
        .where(
            UserRole.role == Role.ADMIN,
            User.active.is_(True),
            sa.or_(Organization.id.is_(None), Organization.active.is_(True)),
        )
    )
    if not able:
        raise DomainError(_l("This would leave no administrator who can log in."))


def get_user(session: Session, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(_l("No such account."))
    return user


def search_users_statement(query: str = "", role: Role | None = None) -> sa.Select:
    """Users matching a name or e-mail fragment and a role, for the admin list."""
    stmt = sa.select(User).order_by(User.active.desc(), User.name, User.id)
    if query:
        stmt = stmt.where(
            sa.or_(
                User.name.contains(query, autoescape=True),
                User.email.contains(query.lower(), autoescape=True),
            )
        )
    if role is not None:
        stmt = stmt.where(User.role_rows.any(UserRole.role == role))
    return stmt
