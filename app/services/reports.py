"""Reports on pledges: exports for superiors, the ranking of budget units, the public board.

Every figure comes from app.services.pledges (`progress`, `ledger_query`): a report never sums
the ledger its own way, so an export, the printable page and the pledge page agree to the fen.
Ledger lines are read as plain columns in batches (never one ORM object per entry): a pledge
covering every unit for a year has hundreds of thousands of them.

The ranking (`ranking`) answers the circular (通报) superiors publish about each budget unit:

* a pledge is *of the year* when its whole period lies within that calendar year;
* the units ranked are the buying organizations covered by a pledge of the year (a pledge of
  every unit covers every active buying organization);
* a unit's target is the sum of the targets of the pledges of the year that cover that unit
  alone: pledges shared by several units, or by all, have no share of them that is the unit's;
* met is what the unit bought in the year up to today (or the whole year, once it is over),
  from the origin regions and through the channels that the year's pledges covering it count;
* last year is the same, from 1 January of the year before to the same day a year earlier, so
  that a year in progress is compared with the same part of the year before.
"""

from __future__ import annotations

import copy
import csv
import io
import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.utils import get_column_letter
from sqlalchemy.orm import Session, aliased

from app.models import (
    Channel,
    LedgerEntry,
    LedgerMonth,
    LedgerSource,
    Organization,
    OrgKind,
    Pledge,
    Product,
    Region,
)
from app.services import pledges
from app.services.clock import to_local
from app.services.exports import _cell, _column_widths, _sheet_title, write_xlsx, yuan
from app.services.pledges import PledgeProgress

#: Ledger lines read from the database at a time.
BATCH = 5_000
#: Ledger lines an XLSX download holds at most (the CSV has no limit).
XLSX_MAX_LINES = 50_000
#: Rows of the ledger sheet used to size its columns (a write-only sheet is sized up front).
WIDTH_SAMPLE = 500
#: A board pledge within this many days of the ideal pace is "on pace".
ON_PACE_DAYS = Decimal(1)
BOARD_TOP_PRODUCTS = 5
PERCENT_FORMAT = "0.0%"
#: The summary block's rows whose value is a share (a fraction, shown in per cent).
SHARE_LABELS = ("完成率 Share met", "时间进度 Period elapsed")

# Spreadsheet and CSV headers are in both languages, as in app.services.exports: files are
# passed on to people who may read either.
LEDGER_HEADERS = [
    "日期 Date",
    "单位 Unit",
    "产地 Region",
    "供应商 Supplier",
    "商品 Product",
    "渠道 Channel",
    "金额（元）Amount",
    "来源 Source",
    "凭证 Reference",
]
RANKING_HEADERS = [
    "名次 Rank",
    "单位 Unit",
    "目标（元）Target",
    "完成（元）Met",
    "完成率 Share",
    "去年同期（元）Same period last year",
    "同比增减（元）Change",
    "同比 Change %",
]


# --- the pledge: summary and ledger lines -----------------------------------------------------


def share_text(share: Decimal | float | None) -> str:
    """0.6125 -> "61.3%"."""
    if share is None:
        return "—"
    percent = (Decimal(str(share)) * 100).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)
    return f"{percent}%"


def period_text(pledge: Pledge) -> str:
    return f"{pledge.period_start.isoformat()} – {pledge.period_end.isoformat()}"


def coverage(pledge: Pledge) -> dict[str, str]:
    """Which units, regions and channels a pledge counts, in words."""
    units = "、".join(org.name_zh for org in pledge.organizations) or str(
        _l("All buying organizations")
    )
    regions = "、".join(region.name_zh for region in pledge.regions)
    channels = "、".join(str(c.label) for c in Channel if c in pledge.channel_set) or str(
        _l("Every channel")
    )
    return {"units": units, "regions": regions, "channels": channels}


def pace_text(figures: PledgeProgress) -> str:
    if not figures.started:
        return str(_l("Not started"))
    days = abs(figures.ahead_days)
    if figures.ahead_fen >= 0:
        return str(_l("%(days)s days ahead of the even pace", days=days))
    return str(_l("%(days)s days behind the even pace", days=days))


def shortened(slices: list[pledges.Slice], count: int, total: int) -> list[pledges.Slice]:
    """The first `count` slices of a breakdown, and the rest of `total` as "Others"."""
    head = [s for s in slices if s.key != pledges.OTHERS][:count]
    rest = total - sum(s.amount_fen for s in head)
    if rest:
        head.append(pledges.Slice(pledges.OTHERS, str(_l("Others")), rest))
    return head


def summary_block(pledge: Pledge, figures: PledgeProgress, now: datetime) -> list[tuple]:
    """The key figures, as the header block of the summary sheet: label, value."""
    covered = coverage(pledge)
    return [
        ("承诺 Pledge", pledge.name),
        ("期间 Period", period_text(pledge)),
        ("单位 Units", covered["units"]),
        ("产地 Regions", covered["regions"]),
        ("渠道 Channels", covered["channels"]),
        ("目标（元）Target", yuan(figures.target_fen)),
        ("完成（元）Met", yuan(figures.met_fen)),
        ("完成率 Share met", figures.share_met),
        ("时间进度 Period elapsed", figures.share_elapsed),
        (
            "进度 Pace",
            f"{pace_text(figures)} ({'+' if figures.ahead_fen >= 0 else ''}"
            f"{yuan(figures.ahead_fen):,})",
        ),
        ("每周需完成（元）Needed per week", yuan(figures.needed_per_week_fen)),
        ("预计（元）Forecast", yuan(figures.forecast_fen)),
        ("生成时间 Generated", now),
    ]


def ledger_lines_statement(pledge: Pledge) -> sa.Select:
    """The entries counted by a pledge as plain columns, oldest first.

    The conditions are those of `pledges.ledger_query` (its WHERE clause, reused as it is), so
    the lines are exactly the entries the pledge's figures are summed from.
    """
    unit = aliased(Organization)
    region = aliased(Region)
    return (
        sa.select(
            LedgerEntry.occurred_on,
            unit.name_zh,
            region.name_zh,
            LedgerEntry.supplier_name,
            LedgerEntry.product_name,
            LedgerEntry.channel,
            LedgerEntry.amount_fen,
            LedgerEntry.source,
            LedgerEntry.source_reference,
        )
        .join(unit, unit.id == LedgerEntry.buyer_organization_id)
        .join(region, region.id == LedgerEntry.origin_region_id)
        .where(pledges.ledger_query(pledge).whereclause)
        .order_by(LedgerEntry.occurred_on, LedgerEntry.id)
    )


def ledger_lines(session: Session, pledge: Pledge) -> Iterator[list]:
    """Rows for a sheet: date, unit, region, supplier, product, channel, amount in yuan
    (Decimal), source, reference; read BATCH at a time."""
    channels = {channel.value: str(channel.label) for channel in Channel}
    sources = {source.value: str(source.label) for source in LedgerSource}
    # Core rows through the session's connection: no ORM result machinery per row.
    statement = ledger_lines_statement(pledge).execution_options(yield_per=BATCH)
    rows = session.connection().execute(statement)
    for day, unit, region, supplier, product, channel, amount, source, reference in rows:
        yield [
            day,
            unit,
            region,
            supplier,
            product,
            channels.get(str(channel), str(channel)),
            yuan(amount),
            sources.get(str(source), str(source)),
            reference,
        ]


def _breakdown_tables(figures: PledgeProgress) -> list[tuple[str, list[str], list[list]]]:
    def share(amount: int):
        return Decimal(amount) / Decimal(figures.met_fen) if figures.met_fen else None

    def slices(rows) -> list[list]:
        return [[s.label, yuan(s.amount_fen), share(s.amount_fen)] for s in rows]

    share_head = "占完成 Share of met"
    return [
        (
            "按月 By month",
            ["月份 Month", "金额（元）Amount", "累计（元）Cumulative", "理想累计（元）Ideal"],
            [
                [
                    m.month.strftime("%Y-%m"),
                    yuan(m.amount_fen),
                    yuan(m.cumulative_fen),
                    yuan(m.ideal_cumulative_fen),
                ]
                for m in figures.monthly
            ],
        ),
        (
            "按渠道 By channel",
            ["渠道 Channel", "金额（元）Amount", share_head],
            slices(figures.by_channel),
        ),
        (
            "按供应商 By supplier",
            ["供应商 Supplier", "金额（元）Amount", share_head],
            slices(figures.by_supplier),
        ),
        (
            "按商品 By product",
            ["商品 Product", "金额（元）Amount", share_head],
            slices(figures.by_product),
        ),
        (
            "按品类 By category",
            ["品类 Category", "金额（元）Amount", share_head],
            slices(figures.by_category),
        ),
    ]


def _percent(cell):
    cell.number_format = PERCENT_FORMAT
    return cell


def too_many_lines_note(count: int, max_lines: int) -> list[str]:
    return [
        f"此承诺有 {count:,} 条明细，超过电子表格下载的上限 {max_lines:,} 条；"
        "请下载 CSV 格式的明细（页面上的“下载明细（CSV）”）。",
        f"This pledge has {count:,} ledger lines, more than the {max_lines:,} a spreadsheet "
        "download holds; download them as CSV instead.",
    ]


def _write_ledger_sheet(sheet, rows: Iterator[list]) -> None:
    """The ledger lines, as fast as openpyxl goes: plain values where no format is needed.

    Dates and amounts get cells styled like a template cell (a copied style, not a format set
    cell by cell); text goes through exports' `_cell` only when it could be read as a formula
    or holds characters a sheet cannot, so the safety rules of app.services.exports still hold.
    """
    sample = list(itertools.islice(rows, WIDTH_SAMPLE))
    for index, width in enumerate(_column_widths(LEDGER_HEADERS, sample, []), start=1):
        sheet.column_dimensions[get_column_letter(index)].width = width
    sheet.freeze_panes = "A2"
    sheet.append([_cell(sheet, h, bold=True, header=True) for h in LEDGER_HEADERS])
    date_style = _cell(sheet, date(2000, 1, 1))._style
    money_style = _cell(sheet, Decimal("0.00"))._style

    def styled(value, style):
        cell = WriteOnlyCell(sheet, value)
        cell._style = copy.copy(style)
        return cell

    def text(value):
        if value and (value[0] == "=" or ILLEGAL_CHARACTERS_RE.search(value)):
            return _cell(sheet, value)
        return value

    for day, unit, region, supplier, product, channel, amount, source, reference in itertools.chain(
        sample, rows
    ):
        sheet.append(
            [
                styled(day, date_style),
                text(unit),
                text(region),
                text(supplier),
                text(product),
                channel,
                styled(amount, money_style),
                source,
                text(reference),
            ]
        )


def pledge_xlsx(
    session: Session,
    pledge: Pledge,
    figures: PledgeProgress,
    now: datetime,
    max_lines: int = XLSX_MAX_LINES,
) -> bytes:
    """Two sheets: the summary (header block, then the breakdowns) and every ledger line.

    Built with openpyxl's write-only workbook, which streams rows to a temporary file, so a
    pledge with many entries is not held in memory. openpyxl writes some 5,000-10,000 lines a
    second; beyond `max_lines` the second sheet says so and points to the CSV, which streams
    any number (a request must finish well within the server's timeout).
    """
    workbook = Workbook(write_only=True)
    workbook.properties.title = pledge.name
    block = summary_block(pledge, figures, now)
    tables = _breakdown_tables(figures)

    summary = workbook.create_sheet(_sheet_title("汇总 Summary"))
    table_rows = [[title] for title, _h, _r in tables] + [
        row for _t, headers, rows in tables for row in [headers, *rows]
    ]
    for index, width in enumerate(_column_widths([], table_rows, block), start=1):
        summary.column_dimensions[get_column_letter(index)].width = width
    for label, value in block:
        value_cell = _cell(summary, value)
        if label in SHARE_LABELS:
            _percent(value_cell)
        summary.append([_cell(summary, label, bold=True), value_cell])
    for title, headers, rows in tables:
        summary.append([])
        summary.append([_cell(summary, title, bold=True)])
        summary.append([_cell(summary, h, bold=True, header=True) for h in headers])
        for row in rows:
            cells = [_cell(summary, value) for value in row]
            if len(row) == 3 and title != "按月 By month":
                _percent(cells[2])
            summary.append(cells)

    lines = workbook.create_sheet(_sheet_title("明细 Ledger lines"))
    count = pledges.ledger_total(session, pledge, pledges.LedgerFilter())[1]
    if count > max_lines:
        lines.column_dimensions["A"].width = 100
        for text in too_many_lines_note(count, max_lines):
            lines.append([_cell(lines, text)])
    else:
        _write_ledger_sheet(lines, ledger_lines(session, pledge))

    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _csv_text(value) -> str:
    """Text as a spreadsheet opening the CSV will show it, never as a formula it would run."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def pledge_csv(session: Session, pledge: Pledge) -> Iterator[str]:
    """The ledger lines as CSV: a byte-order mark (so Excel reads the Chinese as UTF-8), one
    header line, then one line per entry; amounts in yuan with two decimals, dates ISO."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    buffer.write("\ufeff")
    writer.writerow(LEDGER_HEADERS)
    for count, row in enumerate(ledger_lines(session, pledge), start=1):
        day, unit, region, supplier, product, channel, amount, source, reference = row
        writer.writerow(
            [
                day.isoformat(),
                _csv_text(unit),
                _csv_text(region),
                _csv_text(supplier),
                _csv_text(product),
                _csv_text(channel),
                f"{amount:.2f}",
                _csv_text(source),
                _csv_text(reference),
            ]
        )
        if count % 1000 == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def _csv_value(value, share: bool = False) -> str:
    """A summary value as the CSV shows it: a share in per cent, an amount in yuan with two
    decimals, the time generated in Zhoushan's time, text never as a formula."""
    if value is None:
        return ""
    if share:
        return share_text(value)
    if isinstance(value, datetime):
        return to_local(value).strftime("%Y-%m-%d %H:%M")
    if isinstance(value, Decimal | int):
        return f"{value:.2f}"
    return _csv_text(value)


def pledge_summary_csv(pledge: Pledge, figures: PledgeProgress, now: datetime) -> str:
    """The summary sheet of the XLSX as CSV, with a byte-order mark: the header block (pledge,
    period, target, met, share...), then each breakdown under its title and column headers,
    separated by empty lines. The same figures, formatted where the sheet formats its cells."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    buffer.write("\ufeff")
    for label, value in summary_block(pledge, figures, now):
        writer.writerow([label, _csv_value(value, share=label in SHARE_LABELS)])
    for title, headers, rows in _breakdown_tables(figures):
        writer.writerow([])
        writer.writerow([title])
        writer.writerow(headers)
        shares = title != "按月 By month"  # a slice's third column is its share of met
        for row in rows:
            writer.writerow(
                [_csv_value(value, share=shares and i == 2) for i, value in enumerate(row)]
            )
    return buffer.getvalue()


def export_filename(pledge: Pledge, extension: str, today: date, part: str = "") -> str:
    """shanhai-pledge-12-20261127.xlsx (or ...-12-summary-20261127.csv for a `part`): ASCII,
    so every browser saves it under that name."""
    name = f"{pledge.id}-{part}" if part else f"{pledge.id}"
    return f"shanhai-pledge-{name}-{today:%Y%m%d}.{extension}"


# --- the ranking of budget units --------------------------------------------------------------


@dataclass
class RankingRow:
    organization_id: int
    name: str
    kind: OrgKind
    #: 0 when no pledge of the year covers this unit alone.
    target_fen: int
    met_fen: int
    last_year_fen: int
    #: The single-unit pledges whose targets were added up.
    target_pledges: list[Pledge] = field(default_factory=list)
    rank: int | None = None

    @property
    def share(self) -> Decimal | None:
        return Decimal(self.met_fen) / Decimal(self.target_fen) if self.target_fen else None

    @property
    def change_fen(self) -> int:
        return self.met_fen - self.last_year_fen

    @property
    def change_ratio(self) -> Decimal | None:
        if self.last_year_fen <= 0:
            return None
        return Decimal(self.change_fen) / Decimal(self.last_year_fen)


@dataclass
class Ranking:
    year: int
    #: Met counts up to this day; last year up to the same day a year earlier.
    as_of: date
    last_year_until: date
    rows: list[RankingRow]
    pledges: list[Pledge]

    @property
    def target_fen(self) -> int:
        return sum(row.target_fen for row in self.rows)

    @property
    def met_fen(self) -> int:
        return sum(row.met_fen for row in self.rows)

    @property
    def last_year_fen(self) -> int:
        return sum(row.last_year_fen for row in self.rows)

    @property
    def change_fen(self) -> int:
        return self.met_fen - self.last_year_fen

    @property
    def targeted_met_fen(self) -> int:
        """Met by the units that have a target of their own: what the overall share uses."""
        return sum(row.met_fen for row in self.rows if row.target_fen)

    @property
    def share(self) -> Decimal | None:
        target = self.target_fen
        return Decimal(self.targeted_met_fen) / Decimal(target) if target else None


def a_year_earlier(day: date) -> date:
    try:
        return day.replace(year=day.year - 1)
    except ValueError:  # 29 February
        return day.replace(year=day.year - 1, day=28)


def pledges_of_year(session: Session, year: int) -> list[Pledge]:
    return [
        pledge
        for pledge in pledges.list_pledges(session)
        if pledge.period_start.year == year and pledge.period_end.year == year
    ]


def ranking_years(session: Session, today: date) -> list[int]:
    """Years with a pledge, and the current one; newest first."""
    years = {today.year}
    for start, end in session.execute(sa.select(Pledge.period_start, Pledge.period_end)):
        if start.year == end.year:
            years.add(start.year)
    return sorted(years, reverse=True)


def _add_rows(sums: dict, rows, sign: int = 1) -> None:
    for org, region, channel, amount in rows:
        key = (org, region, str(channel))
        sums[key] = sums.get(key, 0) + sign * int(amount)


def _sums(
    session: Session, organization_ids: list[int], first: date, last: date
) -> dict[tuple[int, int, str], int]:
    """{(unit, region, channel): amount} of the units' ledger from `first` (the first day of a
    month) to `last`.

    Whole months from the roll-up. A month cut by `last` is read from the entries on the shorter
    side of the cut: its first days added, or its whole roll-up less its last days (usually
    none: `last` is today).
    """
    sums: dict[tuple[int, int, str], int] = {}
    if last < first or not organization_ids:
        return sums
    cut_month = last.replace(day=1)
    month_end = pledges.last_day_of_month(last)
    days_before, days_after = last.day, (month_end - last).days
    use_tail = days_after <= days_before
    months_until = cut_month if use_tail else cut_month - timedelta(days=1)
    group = (LedgerMonth.buyer_organization_id, LedgerMonth.origin_region_id, LedgerMonth.channel)
    if months_until >= first:
        _add_rows(
            sums,
            session.execute(
                sa.select(*group, sa.func.sum(LedgerMonth.amount_fen))
                .where(
                    LedgerMonth.month >= first,
                    LedgerMonth.month <= months_until,
                    LedgerMonth.buyer_organization_id.in_(organization_ids),
                )
                .group_by(*group)
            ),
        )
    if days_after == 0:
        return sums
    entry_group = (
        LedgerEntry.buyer_organization_id,
        LedgerEntry.origin_region_id,
        LedgerEntry.channel,
    )
    if use_tail:
        days = (LedgerEntry.occurred_on > last, LedgerEntry.occurred_on <= month_end)
    else:
        days = (LedgerEntry.occurred_on >= cut_month, LedgerEntry.occurred_on <= last)
    _add_rows(
        sums,
        session.execute(
            sa.select(*entry_group, sa.func.sum(LedgerEntry.amount_fen))
            .where(*days, LedgerEntry.buyer_organization_id.in_(organization_ids))
            .group_by(*entry_group)
        ),
        sign=-1 if use_tail else 1,
    )
    return sums


def _counts(pledge: Pledge, region_id: int, channel: str) -> bool:
    channels = pledge.channel_set
    return any(r.id == region_id for r in pledge.regions) and (
        not channels or Channel(channel) in channels
    )


def ranking(session: Session, year: int, today: date) -> Ranking:
    """Every budget unit covered by a pledge of `year`: target, met, share, last year, change;
    the best share first (see the module's docstring for the rules)."""
    year_pledges = pledges_of_year(session, year)
    first = date(year, 1, 1)
    as_of = min(today, date(year, 12, 31))
    if as_of < first:
        as_of = first - timedelta(days=1)  # a year to come: nothing counted yet
    last_year_until = a_year_earlier(as_of)

    every_unit = any(not pledge.organizations for pledge in year_pledges)
    units: dict[int, Organization] = {}
    if every_unit:
        for org in pledges.buying_organizations(session):
            units[org.id] = org
    for pledge in year_pledges:
        for org in pledge.organizations:
            units[org.id] = org
    covering = {
        org_id: [p for p in year_pledges if not p.organizations or org_id in _ids(p)]
        for org_id in units
    }

    ids = list(units)
    this_year = _sums(session, ids, first, as_of)
    last_year = _sums(session, ids, date(year - 1, 1, 1), last_year_until)

    def counted(sums, org_id: int) -> int:
        return sum(
            amount
            for (org, region, channel), amount in sums.items()
            if org == org_id and any(_counts(p, region, channel) for p in covering[org_id])
        )

    rows = []
    for org_id, org in units.items():
        own = [p for p in covering[org_id] if _ids(p) == {org_id}]
        rows.append(
            RankingRow(
                organization_id=org_id,
                name=org.name_zh,
                kind=org.kind,
                target_fen=sum(p.target_fen for p in own),
                met_fen=counted(this_year, org_id),
                last_year_fen=counted(last_year, org_id),
                target_pledges=own,
            )
        )
    rows.sort(
        key=lambda row: (
            row.share is None,
            -(row.share or 0),
            -row.met_fen,
            row.name,
        )
    )
    rank = 0
    for row in rows:
        if row.share is not None:
            rank += 1
            row.rank = rank
    return Ranking(year, as_of, last_year_until, rows, year_pledges)


def _ids(pledge: Pledge) -> set[int]:
    return {org.id for org in pledge.organizations}


def ranking_rule_lines() -> list[str]:
    """The rules, in words, for the page's footnote and the spreadsheet."""
    return [
        str(_l("A pledge counts for a year when its whole period lies within that year.")),
        str(
            _l(
                "Target: the sum of the targets of that year's pledges that cover this unit "
                "alone. Pledges shared by several units or by all units are not split among them."
            )
        ),
        str(
            _l(
                "Met: the unit's purchases in the year up to the date shown, from the origin "
                "regions and through the channels counted by that year's pledges covering it."
            )
        ),
        str(
            _l(
                "Same period last year: the same purchases from 1 January of the year before to "
                "the same day a year earlier."
            )
        ),
        str(_l("Units without a target of their own are listed after the ranked ones.")),
    ]


def ranking_xlsx(result: Ranking, now: datetime) -> bytes:
    rows: list[list] = []
    for row in result.rows:
        rows.append(
            [
                row.rank,
                row.name,
                yuan(row.target_fen) if row.target_fen else None,
                yuan(row.met_fen),
                _rounded_share(row.share),
                yuan(row.last_year_fen),
                yuan(row.change_fen),
                _rounded_share(row.change_ratio),
            ]
        )
    rows.append(
        [
            None,
            "合计 Total",
            yuan(result.target_fen),
            yuan(result.met_fen),
            _rounded_share(result.share),
            yuan(result.last_year_fen),
            yuan(result.change_fen),
            None,
        ]
    )
    block = [
        ("年度 Year", str(result.year)),
        ("截至 As of", result.as_of),
        ("去年同期截至 Last year until", result.last_year_until),
        ("生成时间 Generated", now),
        *(("口径 Rule", line) for line in ranking_rule_lines()),
    ]
    return write_xlsx(f"{result.year} 单位排名 Ranking", RANKING_HEADERS, rows, header_block=block)


def _rounded_share(share: Decimal | None) -> Decimal | None:
    """A share as a plain number with four decimals (0.6125 is 61.25 %)."""
    if share is None:
        return None
    return share.quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)


# --- the public board -------------------------------------------------------------------------


def pace_word(figures: PledgeProgress) -> str:
    """ "ahead", "behind" or "on_pace": within ON_PACE_DAYS of the ideal pace is on pace."""
    if figures.met_fen >= figures.target_fen or figures.ahead_days >= ON_PACE_DAYS:
        return "ahead"
    if figures.ahead_days <= -ON_PACE_DAYS:
        return "behind"
    return "on_pace"


def _ratio(value: Decimal) -> float:
    return float(value.quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP))


def public_pledges(session: Session, today: date) -> list[Pledge]:
    """Pledges marked for the board whose period includes today, the largest target first."""
    return list(
        session.scalars(
            sa.select(Pledge)
            .where(
                Pledge.public.is_(True),
                Pledge.period_start <= today,
                Pledge.period_end >= today,
            )
            .order_by(Pledge.target_fen.desc(), Pledge.id)
        )
    )


def top_products(session: Session, month: date, limit: int = BOARD_TOP_PRODUCTS) -> list[dict]:
    """The month's best-selling products over every unit, from the roll-up."""
    amount = sa.func.sum(LedgerMonth.amount_fen)
    rows = session.execute(
        sa.select(
            LedgerMonth.product_key,
            sa.func.max(LedgerMonth.product_name),
            sa.func.max(LedgerMonth.origin_region_id),
            amount,
        )
        .where(LedgerMonth.month == month)
        .group_by(LedgerMonth.product_key)
        .having(amount > 0)
        .order_by(amount.desc(), LedgerMonth.product_key)
        .limit(limit)
    ).all()
    product_ids = [int(key[1:]) for key, *_ in rows if key.startswith("p") and key[1:].isdigit()]
    english = dict(
        session.execute(
            sa.select(Product.id, Product.name_en).where(Product.id.in_(product_ids))
        ).all()
    )
    regions = {
        region.id: region for region in session.scalars(sa.select(Region).order_by(Region.id))
    }
    result = []
    for key, name, region_id, total in rows:
        region = regions.get(region_id)
        product_id = int(key[1:]) if key.startswith("p") and key[1:].isdigit() else None
        result.append(
            {
                "name_zh": name,
                "name_en": english.get(product_id) or "",
                "region_zh": region.name_zh if region else "",
                "region_en": region.name_en if region else "",
                "region_kind": region.kind.value if region else "",
                "amount_fen": int(total),
            }
        )
    return result


def households_benefited(session: Session) -> int:
    """Farm households behind the active suppliers, as the suppliers declare them."""
    return int(
        session.scalar(
            sa.select(sa.func.coalesce(sa.func.sum(Organization.households_benefited), 0)).where(
                Organization.kind == OrgKind.SUPPLIER, Organization.active.is_(True)
            )
        )
    )


def board(
    session: Session,
    now: datetime,
    today: date,
    behind_margin_percent: int = pledges.DEFAULT_BEHIND_MARGIN_PERCENT,
) -> dict:
    """What the lobby screen shows, and /api/v1/pledges answers: plain JSON-ready values.

    Only what may hang in a lobby: pledge names and sums, product names and sums, a count of
    households. No person, no order, no unit's own purchases.
    """
    shown = []
    for pledge in public_pledges(session, today):
        figures = pledges.progress(session, pledge, today, behind_margin_percent, breakdowns=False)
        shown.append(
            {
                "id": pledge.id,
                "name": pledge.name,
                "period_start": pledge.period_start.isoformat(),
                "period_end": pledge.period_end.isoformat(),
                "target_fen": figures.target_fen,
                "met_fen": figures.met_fen,
                "share_met": _ratio(figures.share_met),
                "share_elapsed": _ratio(figures.share_elapsed),
                "pace": pace_word(figures),
                "ahead_fen": figures.ahead_fen,
            }
        )
    return {
        "generated_at": now.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "month": today.replace(day=1).isoformat(),
        "pledges": shown,
        "top_products_this_month": top_products(session, today.replace(day=1)),
        "households_benefited": households_benefited(session),
    }
