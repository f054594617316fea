"""One page of a select, with the numbers a pager needs."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import Session

from app.services.errors import NotFound

T = TypeVar("T")


@dataclass
class Page(Generic[T]):
    items: list[T]
    page: int
    per_page: int
    total: int
    pages: int = field(init=False)

    def __post_init__(self) -> None:
        self.pages = max(1, math.ceil(self.total / self.per_page))

    @property
    def has_prev(self) -> bool:
        return self.page > 1

    @property
    def has_next(self) -> bool:
        return self.page < self.pages

    def window(self, around: int = 2) -> list[int | None]:
        """Page numbers to show: first, last and a few around the current one; None is a gap."""
        shown = sorted({1, self.pages, *range(self.page - around, self.page + around + 1)})
        result: list[int | None] = []
        for number in (n for n in shown if 1 <= n <= self.pages):
            if result and number - (result[-1] or 0) > 1:
                result.append(None)
            result.append(number)
        return result


def count(session: Session, stmt: sa.Select) -> int:
    return (
        session.scalar(sa.select(sa.func.count()).select_from(stmt.order_by(None).subquery())) or 0
    )


def paginate(
    session: Session, stmt: sa.Select, page: int, per_page: int, total: int | None = None
) -> Page:
    """Raises NotFound for a page past the last one (page 1 of nothing is an empty page)."""
    if total is None:
        total = count(session, stmt)
    result: Page = Page(items=[], page=page, per_page=per_page, total=total)
    if page > result.pages:
        raise NotFound(_l("There is no page %(page)d.", page=page))
    result.items = list(
        session.scalars(stmt.limit(per_page).offset((page - 1) * per_page)).unique()
    )
    return result
