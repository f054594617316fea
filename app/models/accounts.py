"""Users and their roles."""

from __future__ import annotations

import enum
from datetime import datetime

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l
from flask_login import UserMixin
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.models.base import Base, str_enum
from app.models.organizations import Organization


class Role(enum.StrEnum):
    STAFF = "staff"
    CANTEEN_BUYER = "canteen_buyer"
    CANTEEN_MANAGER = "canteen_manager"
    SUPPLIER = "supplier"
    COUNTER_CLERK = "counter_clerk"
    COORDINATOR = "coordinator"
    ADMIN = "admin"

    @property
    def label(self):
        return {
            Role.STAFF: _l("Staff"),
            Role.CANTEEN_BUYER: _l("Canteen buyer"),
            Role.CANTEEN_MANAGER: _l("Canteen manager"),
            Role.SUPPLIER: _l("Supplier"),
            Role.COUNTER_CLERK: _l("Counter clerk"),
            Role.COORDINATOR: _l("Coordinator"),
            Role.ADMIN: _l("Administrator"),
        }[self]


#: Roles that see canteen (bulk) prices and case sizes in the catalog.
BULK_ROLES = frozenset({Role.CANTEEN_BUYER, Role.CANTEEN_MANAGER, Role.COORDINATOR, Role.ADMIN})


class UserRole(Base):
    __tablename__ = "user_roles"

    user_id: Mapped[int] = mapped_column(
        sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    role: Mapped[Role] = mapped_column(str_enum(Role), primary_key=True)


class User(UserMixin, Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: Stored lower-cased; the login name.
    email: Mapped[str] = mapped_column(sa.String(254), unique=True)
    name: Mapped[str] = mapped_column(sa.String(64))
    password_hash: Mapped[str] = mapped_column(sa.String(255))
    organization_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("organizations.id"), index=True
    )
    active: Mapped[bool] = mapped_column(default=True)
    #: Part of the login cookie; bumped on password change or disabling, which signs out every
    #: other session of this user (including "remember me" cookies) on their next request.
    session_version: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[datetime]
    last_login_at: Mapped[datetime | None]

    organization: Mapped[Organization | None] = relationship(lazy="joined")
    # "selectin", not "joined": a joined collection would force .unique() on every select(User).
    role_rows: Mapped[list[UserRole]] = relationship(
        lazy="selectin", cascade="all, delete-orphan", order_by=UserRole.role
    )

    @property
    def roles(self) -> frozenset[Role]:
        return frozenset(row.role for row in self.role_rows)

    def has_role(self, *roles: Role) -> bool:
        return not self.roles.isdisjoint(roles)

    @property
    def is_active(self) -> bool:  # Flask-Login refuses inactive users
        return self.active

    def get_id(self) -> str:
        return f"{self.id}:{self.session_version}"

    def __repr__(self) -> str:
        return f"<User {self.email}>"
