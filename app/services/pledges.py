"""Pledges: what counts toward each, how far along it is, and the ledger entries behind it.

A pledge covers some buying organizations (none listed: all of them), some origin regions,
optionally some channels, over whole months. Its progress is never stored: every figure is a
sum over LedgerMonth (the ledger's monthly roll-up, a few thousand rows), read with the same
filters the drill-down applies to the ledger itself, so that the entries listed under a figure
add up to it. Because periods are whole months, the roll-up answers every figure exactly.

Pace compares the share of the target met with the share of the period elapsed, counting the
days before `today` as elapsed (on 1 July 181 of 2026's 365 days are gone). The ideal line is
the straight line from nothing on the first day to the target at the end of the last one.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import NamedTuple

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import Session, selectinload

from app.models import (
    BulkOrder,
    Category,
    Channel,
    LedgerEntry,
    LedgerMonth,
    Order,
    Organization,
    OrgKind,
    Pledge,
    PledgeKind,
    Product,
    Region,
    Role,
)
from app.services import ledger
from app.services.accounts import Actor
from app.services.errors import DomainError, NotFound, PermissionDenied

#: Who defines pledges, reads their ledger and corrects attributions.
PLEDGE_ROLES = (Role.COORDINATOR, Role.ADMIN)
#: Flag a pledge whose share met is more than this many percentage points below the share of
#: the period elapsed (the app passes PLEDGE_BEHIND_MARGIN_PERCENT).
DEFAULT_BEHIND_MARGIN_PERCENT = 5
#: A reserved share of canteen spending: at least this, and 15 % is encouraged.
MIN_SHARE_PERCENT = Decimal(10)
ENCOURAGED_SHARE_PERCENT = Decimal(15)
#: The largest target or declared spending accepted (¥999,999,999.99, what parse_yuan reads).
MAX_AMOUNT_FEN = 99_999_999_999
#: Organizations that buy (everything but suppliers): what a pledge may cover.
BUYING_KINDS = (OrgKind.CANTEEN, OrgKind.DEPARTMENT, OrgKind.CENTER, OrgKind.COUNTER)
#: Breakdown slices shown before the rest is summed up as "others".
TOP = 10
#: The key of the remainder slice, and of "no category" in the category breakdown.
OTHERS = "others"
UNCATEGORISED = 0
#: The ledger views behind a share pledge's actual share: its units' canteen bulk spending from
#: the covered regions (the part) and from every region (the whole it is divided by).
CANTEEN_COVERED = "covered"
CANTEEN_ALL = "all"
CANTEEN_VIEWS = (CANTEEN_COVERED, CANTEEN_ALL)


def require_coordinator(actor: Actor) -> None:
    if not actor.has_role(*PLEDGE_ROLES):
        raise PermissionDenied(_l("Only coordinators can do this."))


# --- defining pledges ---------------------------------------------------------------------------


@dataclass
class PledgeData:
    """What a coordinator fills in. Amounts in fen; the period in whole months."""

    name: str
    kind: PledgeKind
    period_start: date | None
    period_end: date | None
    #: Every buying organization (then organization_ids must be empty).
    all_organizations: bool = False
    organization_ids: list[int] = field(default_factory=list)
    region_ids: list[int] = field(default_factory=list)
    #: Empty: every channel.
    channels: list[Channel] = field(default_factory=list)
    #: A fixed pledge's target.
    target_fen: int | None = None
    #: A share pledge's declared annual canteen food spending, and the share reserved (per cent).
    declared_spending_fen: int | None = None
    share_percent: Decimal | None = None
    public: bool = False
    notes: str = ""


def last_day_of_month(day: date) -> date:
    return day.replace(day=calendar.monthrange(day.year, day.month)[1])


def share_target(declared_spending_fen: int, share_percent: Decimal) -> int:
    """Declared spending x the share, rounded half up to the fen."""
    exact = Decimal(declared_spending_fen) * Decimal(share_percent) / 100
    return int(exact.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def buying_organizations(session: Session, keep: Iterable[int] = ()) -> list[Organization]:
    """The organizations a pledge may cover: active buyers, and any already chosen."""
    keep = list(keep)
    active = sa.and_(Organization.kind.in_(BUYING_KINDS), Organization.active.is_(True))
    condition = sa.or_(active, Organization.id.in_(keep)) if keep else active
    return list(
        session.scalars(
            sa.select(Organization)
            .where(condition)
            .order_by(Organization.kind, Organization.name_zh, Organization.id)
        )
    )


def _check(session: Session, data: PledgeData) -> tuple[list[Organization], list[Region], int]:
    """Everything refused before anything is written: (organizations, regions, target)."""
    name = (data.name or "").strip()
    if not name:
        raise DomainError(_l("Give the pledge a name."), field="name")
    if len(name) > 128:
        raise DomainError(_l("At most %(n)d characters.", n=128), field="name")
    data.name = name
    if len(data.notes or "") > 5000:
        raise DomainError(_l("At most %(n)d characters.", n=5000), field="notes")

    start, end = data.period_start, data.period_end
    if start is None:
        raise DomainError(_l("Enter the first month of the period."), field="period_start")
    if end is None:
        raise DomainError(_l("Enter the last month of the period."), field="period_end")
    if start.day != 1:
        raise DomainError(
            _l("A pledge period starts on the first day of a month."), field="period_start"
        )
    if end != last_day_of_month(end):
        raise DomainError(
            _l("A pledge period ends on the last day of a month."), field="period_end"
        )
    if end < start:
        raise DomainError(_l("The period cannot end before it starts."), field="period_end")

    organizations: list[Organization] = []
    ids = sorted(set(data.organization_ids))
    if data.all_organizations and ids:
        raise DomainError(
            _l("Choose either all buying organizations or some of them, not both."),
            field="organization_ids",
        )
    if not data.all_organizations:
        if not ids:
            raise DomainError(
                _l("Choose the buying organizations it covers, or all of them."),
                field="organization_ids",
            )
        organizations = list(
            session.scalars(sa.select(Organization).where(Organization.id.in_(ids)))
        )
        if len(organizations) != len(ids) or any(
            org.kind not in BUYING_KINDS for org in organizations
        ):
            raise DomainError(
                _l("Choose buying organizations from the list."), field="organization_ids"
            )

    region_ids = sorted(set(data.region_ids))
    if not region_ids:
        raise DomainError(_l("Choose at least one origin region."), field="region_ids")
    regions = list(session.scalars(sa.select(Region).where(Region.id.in_(region_ids))))
    if len(regions) != len(region_ids):
        raise DomainError(_l("Choose regions from the list."), field="region_ids")

    if data.kind == PledgeKind.FIXED:
        target = data.target_fen
        if target is None:
            raise DomainError(_l("Enter the target amount."), field="target")
        if target <= 0:
            raise DomainError(_l("The target must be more than zero."), field="target")
        if target > MAX_AMOUNT_FEN:
            raise DomainError(_l("That target is too large."), field="target")
        data.declared_spending_fen = None
        data.share_percent = None
    elif data.kind == PledgeKind.SHARE:
        spending, percent = data.declared_spending_fen, data.share_percent
        if spending is None:
            raise DomainError(
                _l("Enter the declared annual canteen food spending."),
                field="declared_spending",
            )
        if spending <= 0:
            raise DomainError(
                _l("The declared spending must be more than zero."), field="declared_spending"
            )
        if spending > MAX_AMOUNT_FEN:
            raise DomainError(_l("That amount is too large."), field="declared_spending")
        if percent is None:
            raise DomainError(_l("Enter the reserved share in per cent."), field="share_percent")
        if percent < MIN_SHARE_PERCENT:
            raise DomainError(
                _l("The reserved share is at least 10 per cent (15 per cent is encouraged)."),
                field="share_percent",
            )
        if percent > 100 or percent != percent.quantize(Decimal("0.01")):
            raise DomainError(
                _l("Enter a share between 10 and 100 per cent, with at most two decimals."),
                field="share_percent",
            )
        target = share_target(spending, percent)
        data.target_fen = target
    else:  # pragma: no cover - the form offers only the two kinds
        raise DomainError(_l("Choose the kind of target."), field="kind")
    return organizations, regions, target


def _apply(session: Session, pledge: Pledge, data: PledgeData, now: datetime) -> Pledge:
    organizations, regions, target = _check(session, data)
    pledge.name = data.name
    pledge.kind = data.kind
    pledge.target_fen = target
    pledge.declared_spending_fen = data.declared_spending_fen
    pledge.share_percent = data.share_percent
    pledge.period_start = data.period_start
    pledge.period_end = data.period_end
    pledge.channels = ",".join(c.value for c in Channel if c in set(data.channels))
    pledge.public = bool(data.public)
    pledge.notes = (data.notes or "").strip()
    pledge.organizations = organizations
    pledge.regions = regions
    pledge.updated_at = now
    session.add(pledge)
    session.flush()
    return pledge


def create_pledge(session: Session, actor: Actor, now: datetime, data: PledgeData) -> Pledge:
    require_coordinator(actor)
    return _apply(session, Pledge(created_at=now), data, now)


def update_pledge(
    session: Session, actor: Actor, now: datetime, pledge: Pledge, data: PledgeData
) -> Pledge:
    """Change a pledge. Its progress follows at once: nothing about it is stored."""
    require_coordinator(actor)
    return _apply(session, pledge, data, now)


def get_pledge(session: Session, pledge_id: int) -> Pledge:
    pledge = session.scalar(
        sa.select(Pledge)
        .where(Pledge.id == pledge_id)
        .options(selectinload(Pledge.organizations), selectinload(Pledge.regions))
    )
    if pledge is None:
        raise NotFound(_l("No such pledge."))
    return pledge


def list_pledges(session: Session) -> list[Pledge]:
    """Every pledge, the latest periods first."""
    return list(
        session.scalars(
            sa.select(Pledge)
            .options(selectinload(Pledge.organizations), selectinload(Pledge.regions))
            .order_by(Pledge.period_end.desc(), Pledge.period_start.desc(), Pledge.id.desc())
        )
    )


# --- progress -----------------------------------------------------------------------------------


class MonthFigure(NamedTuple):
    month: date
    amount_fen: int
    #: From the start of the period to the end of this month.
    cumulative_fen: int
    #: Where the straight line from 0 to the target stands at the end of this month.
    ideal_cumulative_fen: int


class Slice(NamedTuple):
    """One bar of a breakdown: the key the drill-down filters by, what it is called, the sum."""

    key: str
    label: str
    amount_fen: int


@dataclass
class PledgeProgress:
    met_fen: int
    target_fen: int
    #: 0-1, more when over-achieved.
    share_met: Decimal
    share_elapsed: Decimal
    days_elapsed: int
    days_total: int
    #: Met minus where the ideal line stands today: positive ahead, negative behind.
    ahead_fen: int
    #: That difference in days of the ideal pace, to one decimal.
    ahead_days: Decimal
    #: What each remaining week needs to bring to finish on time (0 once met).
    needed_per_week_fen: int
    #: Met / days elapsed x days in the period; None before the period starts.
    forecast_fen: int | None
    behind_alert: bool
    monthly: list[MonthFigure]
    by_supplier: list[Slice]
    by_product: list[Slice]
    by_category: list[Slice]
    by_channel: list[Slice]
    #: For a share pledge: covered-origin canteen spending / all recorded canteen spending of
    #: the covered units in the period (None for fixed pledges or with no canteen spending).
    actual_ratio: Decimal | None = None
    actual_covered_fen: int = 0
    actual_all_fen: int = 0
    declared_ratio: Decimal | None = None
    today: date | None = None
    ideal_fen: int = 0
    remaining_fen: int = 0
    days_remaining: int = 0
    behind_margin_percent: int = DEFAULT_BEHIND_MARGIN_PERCENT

    @property
    def started(self) -> bool:
        return self.days_elapsed > 0

    @property
    def ended(self) -> bool:
        return self.days_remaining == 0

    @property
    def is_met(self) -> bool:
        return self.met_fen >= self.target_fen

    @property
    def forecast_share(self) -> Decimal | None:
        """The forecast as a share of the target (None before the period starts)."""
        if self.forecast_fen is None:
            return None
        return Decimal(self.forecast_fen) / Decimal(self.target_fen)


def _round(value: Decimal) -> int:
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def _ceil_div(a: int, b: int) -> int:
    return -((-a) // b)


def months_of(start: date, end: date) -> list[date]:
    months, month = [], start.replace(day=1)
    while month <= end:
        months.append(month)
        month = (month + timedelta(days=32)).replace(day=1)
    return months


def _scope(pledge: Pledge, columns, canteen: str | None = None) -> list:
    """The pledge's units, regions and channels as conditions on a table with those columns.

    With `canteen` (CANTEEN_COVERED or CANTEEN_ALL): the units' canteen bulk spending instead,
    from the covered regions or from every region, whatever channels the pledge counts: the
    two sides of a share pledge's actual share.
    """
    region_ids = [region.id for region in pledge.regions]
    conditions = []
    org_ids = [org.id for org in pledge.organizations]
    if org_ids:
        conditions.append(columns.buyer_organization_id.in_(org_ids))
    if canteen is None:
        conditions.append(columns.origin_region_id.in_(region_ids))
        channels = pledge.channel_set
        if channels:
            conditions.append(columns.channel.in_(sorted(channels)))
        return conditions
    conditions.append(columns.channel == Channel.CANTEEN_BULK)
    if canteen == CANTEEN_COVERED:
        conditions.append(columns.origin_region_id.in_(region_ids))
    return conditions


def _month_scope(pledge: Pledge, canteen: str | None = None) -> list:
    return [
        LedgerMonth.month >= pledge.period_start,
        LedgerMonth.month <= pledge.period_end,
        *_scope(pledge, LedgerMonth, canteen),
    ]


@dataclass
class _Sums:
    """The roll-up rows of a pledge, summed per month, channel, supplier, product, category."""

    by_month: dict[date, int] = field(default_factory=dict)
    by_channel: dict[str, int] = field(default_factory=dict)
    by_supplier: dict[str, int] = field(default_factory=dict)
    by_product: dict[str, int] = field(default_factory=dict)
    by_category: dict[int, int] = field(default_factory=dict)


def _as_date(value) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


def _sums(session: Session, pledge: Pledge, breakdowns: bool = True) -> _Sums:
    """The pledge's roll-up rows summed by the database per month, channel, supplier, product
    and category (a thousand groups or so), then per breakdown here: one read of the roll-up,
    as plain values through the connection (the ORM's per-row work would cost more than the
    query)."""
    sums = _Sums()
    keys = [
        sa.type_coerce(LedgerMonth.month, sa.String),
        sa.type_coerce(LedgerMonth.channel, sa.String),
    ]
    if breakdowns:
        keys += [
            sa.type_coerce(LedgerMonth.supplier_key, sa.String),
            sa.type_coerce(LedgerMonth.product_key, sa.String),
            sa.type_coerce(LedgerMonth.category_id, sa.Integer),
        ]
    columns = [LedgerMonth.month, LedgerMonth.channel]
    if breakdowns:
        columns += [LedgerMonth.supplier_key, LedgerMonth.product_key, LedgerMonth.category_id]
    statement = (
        sa.select(*keys, sa.type_coerce(sa.func.sum(LedgerMonth.amount_fen), sa.BigInteger))
        .where(*_month_scope(pledge))
        .group_by(*columns)
    )
    months: dict = {}
    channels: dict = {}
    suppliers, products, categories = sums.by_supplier, sums.by_product, sums.by_category
    for row in session.connection().execute(statement):
        month, channel, amount = row[0], row[1], int(row[-1])
        months[month] = months.get(month, 0) + amount
        channels[channel] = channels.get(channel, 0) + amount
        if breakdowns:
            supplier, product, category = row[2], row[3], row[4] or UNCATEGORISED
            suppliers[supplier] = suppliers.get(supplier, 0) + amount
            products[product] = products.get(product, 0) + amount
            categories[category] = categories.get(category, 0) + amount
    for month, amount in months.items():
        month = _as_date(month)
        sums.by_month[month] = sums.by_month.get(month, 0) + amount
    sums.by_channel = channels
    return sums


def _top(amounts: Mapping) -> list[tuple]:
    """(key, amount) of the TOP largest non-zero sums, the larger first, then by key."""
    ranked = sorted(
        ((key, amount) for key, amount in amounts.items() if amount),
        key=lambda pair: (-pair[1], str(pair[0])),
    )
    return ranked[:TOP]


def _with_others(slices: list[Slice], total: int) -> list[Slice]:
    rest = total - sum(s.amount_fen for s in slices)
    if rest:
        slices.append(Slice(OTHERS, str(_l("Others")), rest))
    return slices


def _names(session: Session, model, keys: Iterable[str]) -> dict[str, str]:
    """What "s<id>"/"p<id>" keys are called now; "n<name>" keys are their name."""
    names = {key: key[1:] for key in keys if key[:1] == "n"}
    ids = {int(key[1:]): key for key in keys if key[:1] != "n" and key[1:].isdigit()}
    if ids:
        for found_id, name in session.execute(
            sa.select(model.id, model.name_zh).where(model.id.in_(list(ids)))
        ):
            names[ids[found_id]] = name
    return names


def _breakdowns(session: Session, sums: _Sums, total: int):
    top_suppliers = _top(sums.by_supplier)
    top_products = _top(sums.by_product)
    top_categories = _top(sums.by_category)
    supplier_names = _names(session, Organization, [key for key, _a in top_suppliers])
    product_names = _names(session, Product, [key for key, _a in top_products])
    category_names = dict(
        session.execute(
            sa.select(Category.id, Category.name_zh).where(
                Category.id.in_([key for key, _a in top_categories if key != UNCATEGORISED])
            )
        ).all()
    )
    suppliers = [Slice(key, supplier_names.get(key, key), a) for key, a in top_suppliers]
    products = [Slice(key, product_names.get(key, key), a) for key, a in top_products]
    categories = [
        Slice(
            str(key),
            str(_l("No category")) if key == UNCATEGORISED else category_names.get(key, ""),
            amount,
        )
        for key, amount in top_categories
    ]
    return (
        _with_others(suppliers, total),
        _with_others(products, total),
        _with_others(categories, total),
    )


def _canteen_ratio(session: Session, pledge: Pledge) -> tuple[int, int]:
    """(covered-origin, all-origin) canteen spending of the pledge's units in its period: the
    sums of the ledger views CANTEEN_COVERED and CANTEEN_ALL, in one read of the roll-up."""
    region_ids = [region.id for region in pledge.regions]
    covered, total = session.execute(
        sa.select(
            sa.func.coalesce(
                sa.func.sum(
                    sa.case(
                        (LedgerMonth.origin_region_id.in_(region_ids), LedgerMonth.amount_fen),
                        else_=0,
                    )
                ),
                0,
            ),
            sa.func.coalesce(sa.func.sum(LedgerMonth.amount_fen), 0),
        ).where(*_month_scope(pledge, CANTEEN_ALL))
    ).one()
    return int(covered), int(total)


def pace(
    target_fen: int,
    met_fen: int,
    start: date,
    end: date,
    today: date,
    behind_margin_percent: int = DEFAULT_BEHIND_MARGIN_PERCENT,
) -> dict:
    """The pace arithmetic on its own: shares, ahead/behind, needed per week, forecast."""
    days_total = (end - start).days + 1
    days_elapsed = min(max((today - start).days, 0), days_total)
    days_remaining = days_total - days_elapsed
    share_met = Decimal(met_fen) / Decimal(target_fen)
    share_elapsed = Decimal(days_elapsed) / Decimal(days_total)
    ideal = _round(Decimal(target_fen) * days_elapsed / days_total)
    ahead = met_fen - ideal
    ahead_days = (Decimal(ahead) * days_total / target_fen).quantize(
        Decimal("0.1"), rounding=ROUND_HALF_UP
    )
    remaining = max(target_fen - met_fen, 0)
    if remaining == 0:
        needed = 0
    elif days_remaining == 0:
        needed = remaining  # the period is over: all of it, now
    else:
        needed = _ceil_div(remaining * 7, days_remaining)
    forecast = _round(Decimal(met_fen) * days_total / days_elapsed) if days_elapsed else None
    margin = Decimal(behind_margin_percent) / 100
    behind = days_elapsed > 0 and days_remaining > 0 and share_elapsed - share_met > margin
    return {
        "days_total": days_total,
        "days_elapsed": days_elapsed,
        "days_remaining": days_remaining,
        "share_met": share_met,
        "share_elapsed": share_elapsed,
        "ideal_fen": ideal,
        "ahead_fen": ahead,
        "ahead_days": ahead_days,
        "remaining_fen": remaining,
        "needed_per_week_fen": needed,
        "forecast_fen": forecast,
        "behind_alert": behind,
    }


def _ideal_at(target_fen: int, days: int, days_total: int) -> int:
    return _round(Decimal(target_fen) * days / days_total)


def progress(
    session: Session,
    pledge: Pledge,
    today: date,
    behind_margin_percent: int = DEFAULT_BEHIND_MARGIN_PERCENT,
    breakdowns: bool = True,
) -> PledgeProgress:
    """Every figure of a pledge on `today`, from the monthly roll-up (never the entries)."""
    sums = _sums(session, pledge, breakdowns)
    by_month = sums.by_month
    met = sum(by_month.values())
    figures = pace(
        pledge.target_fen,
        met,
        pledge.period_start,
        pledge.period_end,
        today,
        behind_margin_percent,
    )

    monthly, cumulative = [], 0
    for month in months_of(pledge.period_start, pledge.period_end):
        amount = by_month.get(month, 0)
        cumulative += amount
        days = (min(last_day_of_month(month), pledge.period_end) - pledge.period_start).days + 1
        monthly.append(
            MonthFigure(
                month,
                amount,
                cumulative,
                _ideal_at(pledge.target_fen, days, figures["days_total"]),
            )
        )

    suppliers = products = categories = []
    if breakdowns:
        suppliers, products, categories = _breakdowns(session, sums, met)
    channels = [
        Slice(key, str(Channel(key).label), amount) for key, amount in _top(sums.by_channel)
    ]

    result = PledgeProgress(
        met_fen=met,
        target_fen=pledge.target_fen,
        share_met=figures["share_met"],
        share_elapsed=figures["share_elapsed"],
        days_elapsed=figures["days_elapsed"],
        days_total=figures["days_total"],
        ahead_fen=figures["ahead_fen"],
        ahead_days=figures["ahead_days"],
        needed_per_week_fen=figures["needed_per_week_fen"],
        forecast_fen=figures["forecast_fen"],
        behind_alert=figures["behind_alert"],
        monthly=monthly,
        by_supplier=suppliers,
        by_product=products,
        by_category=categories,
        by_channel=channels,
        today=today,
        ideal_fen=figures["ideal_fen"],
        remaining_fen=figures["remaining_fen"],
        days_remaining=figures["days_remaining"],
        behind_margin_percent=behind_margin_percent,
    )
    if pledge.kind == PledgeKind.SHARE:
        covered, total = _canteen_ratio(session, pledge)
        result.actual_covered_fen, result.actual_all_fen = covered, total
        result.actual_ratio = Decimal(covered) / Decimal(total) if total else None
        if pledge.share_percent is not None:
            result.declared_ratio = Decimal(pledge.share_percent) / 100
    return result


def with_progress(
    session: Session, today: date, behind_margin_percent: int = DEFAULT_BEHIND_MARGIN_PERCENT
) -> list[tuple[Pledge, PledgeProgress]]:
    """Every pledge with its figures on `today` (no breakdowns), the latest periods first."""
    return [
        (pledge, progress(session, pledge, today, behind_margin_percent, breakdowns=False))
        for pledge in list_pledges(session)
    ]


def behind_pledges(
    session: Session,
    today: date,
    behind_margin_percent: int = DEFAULT_BEHIND_MARGIN_PERCENT,
    among: Iterable[tuple[Pledge, PledgeProgress]] | None = None,
) -> list[tuple[Pledge, PledgeProgress]]:
    """Running pledges behind pace by more than the margin, the furthest behind first; from
    `among` (pledges with their figures, as with_progress gives them) when the caller has them."""
    if among is None:
        among = (
            (pledge, progress(session, pledge, today, behind_margin_percent, breakdowns=False))
            for pledge in list_pledges(session)
            if pledge.period_start <= today <= pledge.period_end
        )
    # behind_alert is only ever set while the period runs (days elapsed and days remaining).
    found = [(pledge, figures) for pledge, figures in among if figures.behind_alert]
    return sorted(found, key=lambda pair: pair[1].share_met - pair[1].share_elapsed)


# --- the ledger behind each figure --------------------------------------------------------------


@dataclass(frozen=True)
class LedgerFilter:
    """What a figure was: one month, supplier, product, category or channel of a pledge, or the
    "others" of a breakdown (everything but the keys listed in `excluded`); the months up to
    one (a cumulative figure); or a side of a share pledge's actual share (`canteen`)."""

    month: date | None = None
    #: The first day of the last month counted (inclusive), for a cumulative figure.
    until: date | None = None
    #: CANTEEN_COVERED or CANTEEN_ALL: the canteen spending behind the actual share instead of
    #: what the pledge counts.
    canteen: str | None = None
    supplier_key: str | None = None
    product_key: str | None = None
    category_id: int | None = None
    channel: Channel | None = None
    #: {"supplier"|"product"|"category": keys of the top slices} for an "others" figure.
    excluded: Mapping[str, Sequence] = field(default_factory=dict)


def _key_match(id_column, name_column, keys: Iterable[str]):
    """Entries whose roll-up key ("s<id>"/"p<id>" or "n<name>") is one of `keys`; never NULL."""
    ids = [int(key[1:]) for key in keys if key[:1] in "sp" and key[1:].isdigit()]
    names = [key[1:] for key in keys if key[:1] == "n"]
    return sa.or_(
        sa.and_(id_column.is_not(None), id_column.in_(ids)),
        sa.and_(id_column.is_(None), name_column.in_(names)),
    )


def _category_match(column, ids: Iterable[int]):
    ids = list(ids)
    known = [i for i in ids if i != UNCATEGORISED]
    match = sa.and_(column.is_not(None), column.in_(known))
    if UNCATEGORISED in ids:
        match = sa.or_(match, column.is_(None))
    return match


def _dates(pledge: Pledge, month: date | None, until: date | None = None) -> tuple[date, date]:
    first, last = pledge.period_start, pledge.period_end
    if month is not None:
        first, last = max(first, month), min(last, last_day_of_month(month))
    if until is not None:
        last = min(last, last_day_of_month(until))
    return first, last


def check_filter(pledge: Pledge, selection: LedgerFilter) -> None:
    for month in (selection.month, selection.until):
        if month is not None and not (pledge.period_start <= month <= pledge.period_end):
            raise NotFound(_l("That month is outside the pledge's period."))


def ledger_query(
    pledge: Pledge,
    month: date | None = None,
    supplier_key: str | None = None,
    product_key: str | None = None,
    category_id: int | None = None,
    channel: Channel | None = None,
    excluded: Mapping[str, Sequence] | None = None,
    until: date | None = None,
    canteen: str | None = None,
) -> sa.Select:
    """The entries behind a figure, newest first: the pledge's units, regions, channels and
    period (up to the end of the month `until`), narrowed the way the roll-up was summed
    (supplier and product by key, category by id, UNCATEGORISED for none); with `canteen`, the
    units' canteen spending instead (see _scope). Uses ix_ledger_entries_org_day or
    ix_ledger_entries_day."""
    first, last = _dates(pledge, month, until)
    stmt = sa.select(LedgerEntry).where(
        LedgerEntry.occurred_on >= first,
        LedgerEntry.occurred_on <= last,
        *_scope(pledge, LedgerEntry, canteen),
    )
    if supplier_key is not None:
        stmt = stmt.where(
            _key_match(LedgerEntry.supplier_id, LedgerEntry.supplier_name, [supplier_key])
        )
    if product_key is not None:
        stmt = stmt.where(
            _key_match(LedgerEntry.product_id, LedgerEntry.product_name, [product_key])
        )
    if category_id is not None:
        stmt = stmt.where(_category_match(LedgerEntry.category_id, [category_id]))
    if channel is not None:
        stmt = stmt.where(LedgerEntry.channel == channel)
    excluded = excluded or {}
    if "supplier" in excluded:
        stmt = stmt.where(
            sa.not_(
                _key_match(LedgerEntry.supplier_id, LedgerEntry.supplier_name, excluded["supplier"])
            )
        )
    if "product" in excluded:
        stmt = stmt.where(
            sa.not_(
                _key_match(LedgerEntry.product_id, LedgerEntry.product_name, excluded["product"])
            )
        )
    if "category" in excluded:
        stmt = stmt.where(sa.not_(_category_match(LedgerEntry.category_id, excluded["category"])))
    return stmt.options(
        selectinload(LedgerEntry.buyer_organization), selectinload(LedgerEntry.origin_region)
    ).order_by(LedgerEntry.occurred_on.desc(), LedgerEntry.id.desc())


def ledger_total(session: Session, pledge: Pledge, selection: LedgerFilter) -> tuple[int, int]:
    """(amount, number of entries) of a drill-down, from the roll-up: the figure clicked."""
    conditions = _month_scope(pledge, selection.canteen)
    if selection.month is not None:
        conditions.append(LedgerMonth.month == selection.month)
    if selection.until is not None:
        conditions.append(LedgerMonth.month <= selection.until)
    if selection.supplier_key is not None:
        conditions.append(LedgerMonth.supplier_key == selection.supplier_key)
    if selection.product_key is not None:
        conditions.append(LedgerMonth.product_key == selection.product_key)
    if selection.category_id is not None:
        conditions.append(_category_match(LedgerMonth.category_id, [selection.category_id]))
    if selection.channel is not None:
        conditions.append(LedgerMonth.channel == selection.channel)
    if "supplier" in selection.excluded:
        conditions.append(LedgerMonth.supplier_key.not_in(list(selection.excluded["supplier"])))
    if "product" in selection.excluded:
        conditions.append(LedgerMonth.product_key.not_in(list(selection.excluded["product"])))
    if "category" in selection.excluded:
        conditions.append(
            sa.not_(_category_match(LedgerMonth.category_id, selection.excluded["category"]))
        )
    amount, count = session.execute(
        sa.select(
            sa.func.coalesce(sa.func.sum(LedgerMonth.amount_fen), 0),
            sa.func.coalesce(sa.func.sum(LedgerMonth.entries), 0),
        ).where(*conditions)
    ).one()
    return int(amount), int(count)


def top_keys(session: Session, pledge: Pledge, dimension: str) -> list:
    """The keys of a breakdown's top slices: what its "others" figure leaves out."""
    sums = _sums(session, pledge)
    amounts = {
        "supplier": sums.by_supplier,
        "product": sums.by_product,
        "category": sums.by_category,
    }[dimension]
    return [key for key, _amount in _top(amounts)]


def ledger_entries(session: Session, pledge: Pledge, selection: LedgerFilter) -> sa.Select:
    return ledger_query(
        pledge,
        month=selection.month,
        supplier_key=selection.supplier_key,
        product_key=selection.product_key,
        category_id=selection.category_id,
        channel=selection.channel,
        excluded=selection.excluded,
        until=selection.until,
        canteen=selection.canteen,
    )


# --- re-attribution -----------------------------------------------------------------------------


@dataclass
class Attribution:
    """An order as the ledger counts it: its entries, and the net amount per unit."""

    kind: str  # "retail" or "bulk"
    order: Order | BulkOrder
    entries: list
    net_by_organization: list[tuple[Organization, int]]

    @property
    def number(self) -> str:
        return self.order.number


def find_order(session: Session, number: str) -> tuple[str, int]:
    """("retail"|"bulk", id) of the order with that number."""
    number = (number or "").strip()
    if not number:
        raise DomainError(_l("Enter an order number."), field="number")
    found = session.scalar(sa.select(Order.id).where(Order.number == number))
    if found is not None:
        return "retail", found
    found = session.scalar(sa.select(BulkOrder.id).where(BulkOrder.number == number))
    if found is not None:
        return "bulk", found
    raise DomainError(_l("No order has the number %(number)s.", number=number), field="number")


def attribution(
    session: Session, *, retail_order_id: int | None = None, bulk_order_id: int | None = None
) -> Attribution:
    if retail_order_id is not None:
        order = session.get(Order, retail_order_id)
        kind = "retail"
    else:
        order = session.get(BulkOrder, bulk_order_id) if bulk_order_id is not None else None
        kind = "bulk"
    if order is None:
        raise NotFound(_l("No such order."))
    entries = ledger.order_entries(
        session, retail_order_id=retail_order_id, bulk_order_id=bulk_order_id
    )
    net: dict[int, int] = {}
    for entry in entries:
        net[entry.buyer_organization_id] = (
            net.get(entry.buyer_organization_id, 0) + entry.amount_fen
        )
    organizations = {
        org.id: org
        for org in session.scalars(sa.select(Organization).where(Organization.id.in_(list(net))))
    }
    return Attribution(
        kind=kind,
        order=order,
        entries=entries,
        net_by_organization=[(organizations[i], amount) for i, amount in net.items() if amount],
    )


def reattribute(
    session: Session,
    actor: Actor,
    now: datetime,
    *,
    to_organization_id: int | None,
    reason: str,
    retail_order_id: int | None = None,
    bulk_order_id: int | None = None,
) -> list[LedgerEntry]:
    """A coordinator counts an order for another buying unit: recorded as a correction (the
    amounts off the old unit, onto the new one, with the reason); nothing is rewritten."""
    require_coordinator(actor)
    target = session.get(Organization, to_organization_id) if to_organization_id else None
    if target is None or target.kind not in BUYING_KINDS:
        raise DomainError(_l("Choose the unit to count it for."), field="organization_id")
    return ledger.reattribute(
        session,
        actor,
        now,
        to_organization_id=target.id,
        reason=reason,
        retail_order_id=retail_order_id,
        bulk_order_id=bulk_order_id,
    )
