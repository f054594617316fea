"""Command-line tasks: `flask seed-demo`, `create-user`, `release-unpaid-orders`, `send-mail`."""

from __future__ import annotations

import os

import click
import sqlalchemy as sa
from flask import Flask, current_app
from flask.cli import with_appcontext

from app.extensions import db
from app.models import Order, Organization, Role
from app.services import accounts, demo, notify, orders, payments
from app.services.clock import utcnow
from app.services.errors import DomainError

DEFAULT_DEMO_PASSWORD = "shanhai2026"


def register(app: Flask) -> None:
    app.cli.add_command(seed_demo_command)
    app.cli.add_command(create_user_command)
    app.cli.add_command(release_unpaid_orders_command)
    app.cli.add_command(send_mail_command)


@click.command("seed-demo")
@with_appcontext
@click.option(
    "--password",
    default=lambda: os.environ.get("DEMO_PASSWORD", DEFAULT_DEMO_PASSWORD),
    show_default="$DEMO_PASSWORD or shanhai2026",
    help="Password of new demo accounts.",
)
@click.option("--allow-production", is_flag=True, help="Seed even with the production config.")
def seed_demo_command(password: str, allow_production: bool) -> None:
    """Add the demo catalog and one account per role (only what is missing)."""
    if current_app.config["APP_ENV"] == "production" and not allow_production:
        raise click.ClickException(
            "Refusing to create demo accounts with a known password in production "
            "(pass --allow-production if you really mean it)."
        )
    try:
        report = demo.seed_demo(db.session, password=password, now=utcnow())
        db.session.commit()
    except DomainError as error:
        db.session.rollback()
        raise click.ClickException(str(error.message)) from error
    added = ", ".join(f"{n} {kind}" for kind, n in report.created.items()) or "nothing new"
    click.echo(f"Demo data: {added}.")
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
