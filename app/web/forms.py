"""Putting a service's DomainError on the form field it concerns."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms.fields.choices import SelectChoice

from app.services.errors import DomainError


def add_domain_error(form: FlaskForm, error: DomainError) -> None:
    field = form._fields.get(error.field) if error.field else None
    if field is not None:
        field.errors = [*field.errors, error.message]
    else:
        form.form_errors.append(error.message)


def options(pairs) -> list[SelectChoice]:
    """Select choices from (value, label) pairs (WTForms 3.4 drops plain tuples)."""
    return [SelectChoice(value, label) for value, label in pairs]
