"""In-app notifications: what happened to the orders and deliveries a user works on."""

from __future__ import annotations

from flask import Blueprint, abort, redirect, render_template, url_for
from flask_login import current_user
from flask_wtf import FlaskForm

from app.extensions import db
from app.services import notify
from app.services.clock import utcnow
from app.web.access import login_required
from app.web.forms import requested_page

bp = Blueprint("inbox", __name__)


@bp.get("/notifications")
@login_required
def index():
    """The user's notifications, newest first; unread ones stand out."""
    page = notify.inbox(db.session, current_user.id, requested_page())
    return render_template("inbox/index.html", page=page, render=notify.render, form=FlaskForm())


@bp.post("/notifications/read")
@login_required
def mark_read():
    """Mark every notification read."""
    if not FlaskForm().validate():
        abort(400)
    notify.mark_all_read(db.session, current_user.id, utcnow())
    db.session.commit()
    return redirect(url_for("inbox.index"), 303)
