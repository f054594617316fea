"""Form helpers: run a service for a submitted form, show its errors beside the fields."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from flask import abort, flash, request
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import FieldList
from wtforms.fields.choices import SelectChoice

from app.extensions import db
from app.services.errors import DomainError


def add_domain_error(form: FlaskForm, error: DomainError) -> None:
    field = form._fields.get(error.field) if error.field else None
    if field is not None:
        field.errors = [*field.errors, error.message]
    else:
        form.form_errors.append(error.message)


@dataclass(frozen=True)
class Outcome:
    ok: bool
    value: Any = None


def commit_form(form: FlaskForm, change: Callable[[], Any]) -> Outcome:
    """Run `change` (service calls) for a validated form and commit once.

    A DomainError rolls everything back and is shown beside the field it names, so a refused
    form never leaves half its changes in the database.
    """
    try:
        value = change()
        db.session.commit()
    except DomainError as error:
        db.session.rollback()
        add_domain_error(form, error)
        return Outcome(False)
    except sa.exc.IntegrityError:
        # A unique key taken by someone else between our check and our write.
        db.session.rollback()
        form.form_errors.append(_l("Someone saved the same thing at the same moment. Try again."))
        return Outcome(False)
    return Outcome(True, value)


class RowList(FieldList):
    """A FieldList that reads only ASCII row numbers from the submitted keys.

    WTForms takes any key whose row part passes str.isdigit() ("tiers-²-price") and then int()
    fails on it: a 500 for a crafted key. Such a key is ignored here, like any unknown one.
    """

    def _extract_indices(self, prefix, formdata):
        offset = len(prefix) + 1
        for key in formdata:
            if key.startswith(prefix):
                index = key[offset:].split(self._field_separator, 1)[0]
                if index.isascii() and index.isdigit():
                    yield int(index)


def form_status(form: FlaskForm) -> int:
    """400 for a form sent back with errors, 200 for a form shown for the first time."""
    return 400 if form.is_submitted() else 200


def options(pairs) -> list[SelectChoice]:
    """Select choices from (value, label) pairs (WTForms 3.4 drops plain tuples)."""
    return [SelectChoice(value, label) for value, label in pairs]


def commit_or_flash(change: Callable[[], Any], success: str) -> bool:
    """For one-button actions: run `change` and commit, flashing success or why it was refused
    (then nothing of it is kept)."""
    try:
        change()
        db.session.commit()
    except DomainError as error:
        db.session.rollback()
        flash(str(error.message), "danger")
        return False
    flash(success, "success")
    return True


def whole_number(raw: str, high: int = 2**31 - 1) -> int | None:
    """`raw` as a whole number from 0 to `high` (an id an INTEGER column holds), else None.

    The length is checked before int(): a pasted number of more than 4,300 digits makes int()
    raise (Python's guard against slow conversions) instead of giving a number to refuse.
    """
    if not (raw.isascii() and raw.isdigit()) or len(raw) > len(str(high)):
        return None
    value = int(raw)
    return value if value <= high else None


def requested_page() -> int:
    """?page= as a page number; anything else is a 400 with a message, not page 1."""
    page = whole_number(request.args.get("page", "1"), 100_000)
    if not page:
        abort(400, description=_l("Page numbers start at 1."))
    return page
