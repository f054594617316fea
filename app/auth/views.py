"""Log in and out, self-registration for staff, the account page and password change."""

from __future__ import annotations

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_user, logout_user

from app.auth.forms import ChangePasswordForm, LoginForm, RegisterForm
from app.extensions import db, limiter
from app.models import OrgKind, Role
from app.services import accounts
from app.services.clock import utcnow
from app.services.errors import DomainError
from app.services.organizations import organizations_of_kind
from app.web.access import login_required, public, safe_next
from app.web.filters import localized
from app.web.forms import add_domain_error, commit_form, form_status, options

bp = Blueprint("auth", __name__)


def _login_limit() -> str:
    # While the shared storage (Redis) does not answer, each process counts on its own, so each
    # allows a smaller number: together they stay near the shared limit.
    if limiter.limiter.storage is not limiter.storage:
        return current_app.config["LOGIN_RATE_LIMIT_FALLBACK"]
    return current_app.config["LOGIN_RATE_LIMIT"]


def _login_email_key() -> str:
    # A second limit per account, so guessing one password from many addresses is slowed too.
    return "login-email:" + (request.form.get("email") or "").strip().lower()[:254]


@bp.route("/login", methods=["GET", "POST"])
@public
@limiter.limit(_login_limit, methods=["POST"])
@limiter.limit(_login_limit, methods=["POST"], key_func=_login_email_key)
def login():
    """Log in with e-mail and password."""
    if current_user.is_authenticated:
        return redirect(safe_next())
    form = LoginForm(next=request.args.get("next", ""))
    if not form.validate_on_submit():
        return render_template("auth/login.html", form=form), 400 if form.is_submitted() else 200
    try:
        user = accounts.authenticate(db.session, form.email.data, form.password.data, utcnow())
    except DomainError as error:
        db.session.rollback()
        add_domain_error(form, error)
        return render_template("auth/login.html", form=form), 422
    db.session.commit()
    login_user(user, remember=form.remember.data)
    flash(_("Welcome, %(name)s.", name=user.name), "success")
    # A coordinator's work starts at the pledges, where the ones behind pace are flagged; a
    # supplier's at its dashboard, with the orders waiting for it.
    home = "pledges.index" if user.has_role(Role.COORDINATOR) else "catalog.home"
    home = "supplier.dashboard" if user.has_role(Role.SUPPLIER) else home
    return redirect(safe_next(home))


@bp.post("/logout")
@public
def logout():
    """Log out (a POST with the CSRF token, so no link elsewhere can log a user out)."""
    logout_user()
    flash(_("You have logged out."), "info")
    return redirect(url_for("catalog.home"))


@bp.route("/register", methods=["GET", "POST"])
@public
@limiter.limit(lambda: current_app.config["REGISTER_RATE_LIMIT"], methods=["POST"])
def register():
    """Staff create their own account with a work e-mail address."""
    if current_user.is_authenticated:
        return redirect(url_for("catalog.home"))
    form = RegisterForm()
    departments = organizations_of_kind(db.session, OrgKind.DEPARTMENT)
    form.department_id.choices = options(
        [(0, _("Choose your department")), *((org.id, localized(org)) for org in departments)]
    )
    domains = current_app.config["REGISTRATION_EMAIL_DOMAINS"]
    if form.validate_on_submit():
        outcome = commit_form(
            form,
            lambda: accounts.register_staff(
                db.session,
                email=form.email.data,
                name=form.name.data,
                password=form.password.data,
                department_id=form.department_id.data,
                allowed_domains=domains,
                now=utcnow(),
            ),
        )
        if outcome.ok:
            login_user(outcome.value)
            flash(_("Your account is ready."), "success")
            return redirect(url_for("catalog.home"))
    return render_template("auth/register.html", form=form, domains=domains), form_status(form)


@bp.get("/account")
@login_required
def account():
    """The logged-in user's own account."""
    return render_template("auth/account.html", user=accounts.get_user(db.session, current_user.id))


@bp.route("/password", methods=["GET", "POST"])
@login_required
def change_password():
    """Change one's own password; other sessions of the account end."""
    form = ChangePasswordForm()
    if form.validate_on_submit():
        user = accounts.get_user(db.session, current_user.id)
        outcome = commit_form(
            form,
            lambda: accounts.change_password(
                user, form.current_password.data, form.new_password.data
            ),
        )
        if outcome.ok:
            # The session version moved on: log this session in again under the new one.
            remembered = current_app.config.get("REMEMBER_COOKIE_NAME", "remember_token")
            login_user(user, remember=remembered in request.cookies)
            flash(_("Your password has been changed."), "success")
            return redirect(url_for("auth.account"))
    return render_template("auth/password.html", form=form), form_status(form)
