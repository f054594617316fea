"""Command-line tasks: `flask seed-demo`, `create-user`, `release-unpaid-orders`, `send-mail`,
`bench-data`, `import-sales`, `import-products`, `ledger-check`, `backup`, `restore`."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import click
import sqlalchemy as sa
from flask import Flask, current_app
from flask.cli import with_appcontext

from app.extensions import db
from app.models import LedgerEntry, LedgerMonth, Order, Organization, Role
from app.services import accounts, demo, demo_history, ledger, notify, orders, payments
from app.services.clock import utcnow
from app.services.errors import DomainError, LineErrors
from app.services.money import format_yuan

DEFAULT_DEMO_PASSWORD = "shanhai2026"


def register(app: Flask) -> None:
    app.cli.add_command(seed_demo_command)
    app.cli.add_command(create_user_command)
    app.cli.add_command(release_unpaid_orders_command)
    app.cli.add_command(send_mail_command)
    app.cli.add_command(bench_data_command)
    app.cli.add_command(import_sales_command)
    app.cli.add_command(import_products_command)
    app.cli.add_command(ledger_check_command)
    app.cli.add_command(backup_command)
    app.cli.add_command(restore_command)


@click.command("seed-demo")
@with_appcontext
@click.option(
    "--password",
    default=lambda: os.environ.get("DEMO_PASSWORD", DEFAULT_DEMO_PASSWORD),
    show_default="$DEMO_PASSWORD or shanhai2026",
    help="Password of new demo accounts.",
)
@click.option("--allow-production", is_flag=True, help="Seed even with the production config.")
@click.option(
    "--history/--no-history",
    "with_history",
    default=True,
    help="Also add this year's canteen orders, staff purchases, pledges and an imported file.",
)
def seed_demo_command(password: str, allow_production: bool, with_history: bool) -> None:
    """Add the demo catalog and one account per role (only what is missing)."""
    if current_app.config["APP_ENV"] == "production" and not allow_production:
        raise click.ClickException(
            "Refusing to create demo accounts with a known password in production "
            "(pass --allow-production if you really mean it)."
        )
    try:
        report = demo.seed_demo(db.session, password=password, now=utcnow())
        db.session.commit()
        history = None
        if with_history:
            history = demo_history.seed_history(db.session, password=password, now=utcnow())
            db.session.commit()
    except DomainError as error:
        db.session.rollback()
        raise click.ClickException(str(error.message)) from error
    added = ", ".join(f"{n} {kind}" for kind, n in report.created.items()) or "nothing new"
    click.echo(f"Demo data: {added}.")
    if history is not None:
        click.echo(
            f"Demo history: {history.bulk_orders} canteen orders received and invoiced, "
            f"{history.staff_orders} staff orders, {history.pledges} pledges, "
            f"{history.imported_rows} imported offline sales, "
            f"{history.supplier_accounts} supplier accounts (<supplier code>@shanhai.demo)."
        )
    click.echo("Demo accounts (e-mail / password / roles):")
    for email, roles, is_new in report.accounts:
        shown = password if is_new else "(unchanged)"
        click.echo(f"  {email:<28} {shown:<14} {roles}")


@click.command("create-user")
@with_appcontext
@click.argument("email")
@click.option("--name", required=True, help="Display name.")
@click.option(
    "--role",
    "roles",
    multiple=True,
    required=True,
    type=click.Choice([r.value for r in Role]),
    help="Repeat for several roles.",
)
@click.option("--org", "org_code", default=None, help="Organization code, e.g. CANTEEN.")
@click.password_option(help="Prompted for when not given.")
def create_user_command(
    email: str, name: str, roles: tuple[str, ...], org_code: str | None, password: str
) -> None:
    """Create an account, e.g. the first administrator."""
    organization = None
    if org_code:
        organization = db.session.scalar(
            sa.select(Organization).where(Organization.code == org_code)
        )
        if organization is None:
            raise click.ClickException(f"No organization with code {org_code!r}.")
    try:
        user = accounts.create_user(
            db.session,
            email=email,
            name=name,
            password=password,
            roles=[Role(r) for r in roles],
            organization=organization,
            now=utcnow(),
        )
        db.session.commit()
    except DomainError as error:
        db.session.rollback()
        raise click.ClickException(str(error.message)) from error
    click.echo(f"Created {user.email} ({', '.join(roles)}).")


@click.command("release-unpaid-orders")
@with_appcontext
def release_unpaid_orders_command() -> None:
    """Cancel online orders not paid in time and give their stock back (run it every minute).

    Each order's Stripe payment page is closed first; an order whose page cannot be closed
    (Stripe unreachable) keeps its stock until the next run. Exits 1 if any order was left.
    """
    now = utcnow()
    released = left = 0
    for order_id in orders.overdue_online_orders(db.session, now):
        order = db.session.get(Order, order_id)
        try:
            if orders.release_unpaid(db.session, order, now, payments.gateway()):
                released += 1
            db.session.commit()
        except DomainError as error:
            db.session.rollback()
            left += 1
            click.echo(f"Order {order.number} kept for the next run: {error.message}", err=True)
    click.echo(f"Released {released} unpaid online order(s); {left} left for the next run.")
    if left:
        raise SystemExit(1)


@click.command("send-mail")
@with_appcontext
def send_mail_command() -> None:
    """Send the e-mails waiting in the outbox (schedule it, e.g. every minute, as a retry)."""
    settings = notify.MailSettings.from_config(current_app.config)
    if settings is None:
        raise click.ClickException("MAIL_SERVER is not set: messages stay in /admin/outbox.")
    sent = notify.deliver(db.session, settings, utcnow(), limit=1000)
    click.echo(f"Sent {sent} message(s).")


@click.command("bench-data")
@with_appcontext
@click.option(
    "--entries",
    type=click.IntRange(min=0),
    required=True,
    help="How many bench entries the ledger should hold; only the missing ones are added.",
)
@click.option("--years", type=click.IntRange(1, 10), default=2, show_default=True)
@click.option("--seed", type=int, default=2026, show_default=True)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def bench_data_command(entries: int, years: int, seed: int, yes: bool) -> None:
    """Fill the ledger with made-up entries for benchmarks (never in production).

    Entries are spread over the demo units, suppliers and products (run seed-demo first) and
    over the last --years years; the monthly roll-up is kept equal to the ledger.
    """
    from app.services import bench_data
    from app.services.clock import local_date

    if current_app.config["APP_ENV"] == "production":
        raise click.ClickException("Refusing to add made-up ledger entries in production.")
    try:
        bench_data.demo_world(db.session)
    except bench_data.MissingDemoData as error:
        raise click.ClickException(str(error)) from error
    have = bench_data.bench_entry_count(db.session)
    missing = max(0, entries - have)
    if not missing:
        click.echo(f"The ledger already holds {have:,} bench entries; nothing to add.")
        return
    url = db.engine.url.render_as_string(hide_password=True)
    if not yes:
        click.confirm(
            f"Add {missing:,} made-up ledger entries to {url}? They count toward pledges.",
            abort=True,
        )
    with click.progressbar(length=missing, label="Ledger entries", show_pos=True) as bar:
        report = bench_data.fill_ledger(
            db.session,
            entries,
            today=local_date(utcnow()),
            years=years,
            seed=seed,
            progress=bar.update,
        )
    bench_data.tidy(db.engine)
    click.echo(
        f"Added {report.added:,} entries in {report.seconds:.1f} s; "
        f"the ledger holds {report.after:,} bench entries."
    )


@click.command("import-sales")
@with_appcontext
@click.argument("file", type=click.Path(exists=True, dir_okay=False, readable=True, path_type=Path))
@click.option(
    "--source",
    required=True,
    help="Where the sales were recorded: counter-till, zcy (政采云), ... (a-z, 0-9, -).",
)
@click.option("--commit", "commit_now", is_flag=True, help="Count the rows now, without review.")
@click.option("--as", "as_email", default=None, help="E-mail of the coordinator importing it.")
def import_sales_command(file: Path, source: str, commit_now: bool, as_email: str | None) -> None:
    """Import offline sales (CSV or XLSX) to count toward the pledges.

    Without --commit the checked file waits for review at the printed address; a file with
    errors is refused as a whole (each bad line is listed) and the command exits 1.
    """
    from app.services import sales_import

    actor = None
    if as_email:
        actor = accounts.find_user_by_email(db.session, as_email)
        if actor is None or not actor.active:
            raise click.ClickException(f"No active account {as_email!r}.")
        if not actor.has_role(Role.COORDINATOR, Role.ADMIN):
            raise click.ClickException(f"{actor.email} is not a coordinator or administrator.")
    if file.stat().st_size > sales_import.CLI_MAX_BYTES:
        raise click.ClickException(f"{file.name} is larger than the import limit.")
    now = utcnow()
    with _file_transaction(file):
        rows = sales_import.read(
            file.name,
            file.read_bytes(),
            max_bytes=sales_import.CLI_MAX_BYTES,
            max_rows=sales_import.CLI_MAX_ROWS,
        )
        with click.progressbar(length=len(rows), label="Checking rows") as bar:
            batch = sales_import.stage(
                db.session, actor, now, source, file.name, rows, progress=bar.update
            )
        if commit_now:
            with click.progressbar(length=batch.rows_total, label="Counting rows") as bar:
                sales_import.commit(db.session, batch, actor, now, progress=bar.update)
    amount = format_yuan(batch.amount_fen)
    click.echo(
        f"Import {batch.id} ({batch.source}, {batch.filename}): {batch.rows_total} rows,"
        f" {batch.rows_new} new, {batch.rows_already_counted} already counted, {amount}."
    )
    if commit_now:
        click.echo(f"Committed: {batch.rows_new} rows now count toward the pledges.")
    else:
        click.echo(f"Waiting for review: /pledges/imports/{batch.id}")


@click.command("import-products")
@with_appcontext
@click.argument("file", type=click.Path(exists=True, dir_okay=False, readable=True, path_type=Path))
@click.option(
    "--supplier", "supplier_code", required=True, help="The supplier's code, e.g. DZ-BASHAN."
)
def import_products_command(file: Path, supplier_code: str) -> None:
    """Create and update a supplier's products (CSV or XLSX) by product code.

    The same checks and review rules as the supplier's upload page: a file with any bad line is
    refused as a whole (each bad line is listed) and the command exits 1; new products and large
    price changes wait for a coordinator.
    """
    from app.services import product_import

    supplier = db.session.scalar(
        sa.select(Organization).where(Organization.code == supplier_code.strip().upper())
    )
    if supplier is None or supplier.kind.value != "supplier":
        raise click.ClickException(f"No supplier with the code {supplier_code!r}.")
    if file.stat().st_size > product_import.CLI_MAX_BYTES:
        raise click.ClickException(f"{file.name} is larger than the import limit.")
    # Nobody logged in: the versions are recorded as submitted by no user, for this supplier.
    actor = accounts.Principal(
        id=None,
        email="",
        name="flask import-products",
        organization_id=supplier.id,
        roles=frozenset({Role.SUPPLIER}),
        session_version=0,
    )
    now = utcnow()
    with _file_transaction(file):
        table = product_import.read(
            file.name,
            file.read_bytes(),
            max_bytes=product_import.CLI_MAX_BYTES,
            max_rows=product_import.CLI_MAX_ROWS,
        )
        with click.progressbar(length=len(table.rows), label="Checking rows") as bar:
            planned = product_import.check(db.session, actor, table, progress=bar.update)
        with click.progressbar(length=len(planned), label="Saving products") as bar:
            report = product_import.apply(
                db.session,
                actor,
                planned,
                now,
                current_app.config["PRODUCT_REVIEW_PRICE_CHANGE_PERCENT"],
                progress=bar.update,
            )
    click.echo(
        f"{supplier.code}: {report.rows} rows, {report.created} new, {report.updated} updated,"
        f" {report.unchanged} unchanged; {report.waiting_for_review} wait for review at /review/."
    )


@click.command("ledger-check")
@with_appcontext
def ledger_check_command() -> None:
    """Compare the monthly roll-up pledge pages read with the ledger's own sums.

    Exits 1 listing each group (month, unit, region, channel, supplier, product) where they
    differ: the pledge figures are then wrong, and the ledger is the one to trust.
    """
    problems = ledger.check_rollup(db.session)
    if problems:
        click.echo(f"The roll-up differs from the ledger in {len(problems)} group(s):", err=True)
        for problem in problems:
            click.echo(f"  {problem}", err=True)
        raise SystemExit(1)
    entries = db.session.scalar(sa.select(sa.func.count()).select_from(LedgerEntry))
    groups = db.session.scalar(sa.select(sa.func.count()).select_from(LedgerMonth))
    click.echo(f"The roll-up equals the ledger: {entries:,} entries in {groups:,} monthly groups.")


@click.command("backup")
@with_appcontext
@click.option(
    "--output",
    type=click.Path(dir_okay=True, path_type=Path),
    default=None,
    help="File to write, or a directory for the default name "
    "[default: instance/backups/shanhai-<UTC time>.sqlite3 or .dump].",
)
@click.option(
    "--with-photos",
    is_flag=True,
    help="Also pack PHOTO_DIR into <backup name>.photos.tar.gz beside the backup.",
)
def backup_command(output: Path | None, with_photos: bool) -> None:
    """Copy the database while the app serves (SQLite's backup API, or pg_dump).

    The file appears under its name only once complete and checked. Compare the summary it
    prints with the one `flask restore` prints.
    """
    from app.services import backup

    try:
        path = backup.output_path(
            output, Path(current_app.instance_path) / "backups", db.engine, utcnow()
        )
        result = backup.backup(db.engine, path)
        photos, photo_files = None, 0
        if with_photos:
            photos = backup.photos_path(path)
            photo_files = backup.archive_photos(Path(current_app.config["PHOTO_DIR"]), photos)
    except backup.BackupError as error:
        raise click.ClickException(error.message) from error
    click.echo(f"Backup written: {result.path} ({_size(result.size)})")
    if photos is not None:
        click.echo(f"Photos: {photos} ({photo_files} file(s), {_size(photos.stat().st_size)})")
    click.echo("Summary:")
    for line in result.summary.lines():
        click.echo(line)


@click.command("restore")
@with_appcontext
@click.argument("file", type=click.Path(exists=True, dir_okay=False, readable=True, path_type=Path))
@click.option(
    "--photos",
    "photo_archive",
    type=click.Path(exists=True, dir_okay=False, readable=True, path_type=Path),
    default=None,
    help="A <backup name>.photos.tar.gz to unpack into PHOTO_DIR (which must hold no photos).",
)
def restore_command(file: Path, photo_archive: Path | None) -> None:
    """Restore a backup made by `flask backup` into the configured, EMPTY database.

    Refused when any of the app's tables holds a row. Prints the same summary as the backup.
    """
    from app.services import backup

    photos = None
    if photo_archive is not None:
        photos = (photo_archive, Path(current_app.config["PHOTO_DIR"]))
    try:
        result = backup.restore(
            db.engine, file, current_app.extensions["migrate"].directory, photos
        )
    except backup.BackupError as error:
        raise click.ClickException(error.message) from error
    url = db.engine.url.render_as_string(hide_password=True)
    click.echo(f"Restored {file} into {url}")
    if result.photo_files is not None:
        click.echo(f"Photos: {result.photo_files} file(s) unpacked into {photos[1]}")
    click.echo("Summary:")
    for line in result.summary.lines():
        click.echo(line)
    if result.schema_current:
        click.echo(f"The schema is at the code's revision ({result.summary.revision}).")
    else:
        click.echo(
            f"The schema is at revision {result.summary.revision}; this code expects "
            f"{', '.join(sorted(result.heads))}: run `flask db upgrade` before serving."
        )


def _size(size: int) -> str:
    """1,234 bytes, 1.5 MiB."""
    if size < 1024:
        return f"{size:,} bytes"
    value = size / 1024
    for unit in ("KiB", "MiB"):
        if value < 1024:
            return f"{value:,.1f} {unit}"
        value /= 1024
    return f"{value:,.1f} GiB"


@contextlib.contextmanager
def _file_transaction(file: Path) -> Iterator[None]:
    """Commit what an import of `file` did, or keep none of it: each bad line is listed on
    stderr (exit status 1), any other refusal is one error message."""
    try:
        yield
        db.session.commit()
    except LineErrors as error:
        db.session.rollback()
        click.echo(f"{file.name}: {error.message}", err=True)
        for line, message in sorted(error.errors.items()):
            click.echo(f"  line {line}: {message}", err=True)
        raise SystemExit(1) from error
    except DomainError as error:
        db.session.rollback()
        raise click.ClickException(f"{file.name}: {error.message}") from error
