"""The migrations are the schema: they must produce exactly what the models describe."""

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from app.extensions import db
from app.models.base import Base


def test_migrations_match_the_models(app):
    with app.app_context(), db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, Base.metadata)
    assert differences == []


def test_sqlite_foreign_keys_are_enforced(app):
    with app.app_context(), db.engine.connect() as connection:
        if connection.dialect.name == "sqlite":
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_the_database_has_every_check_constraint_the_models_declare(app):
    # compare_metadata does not look at CHECK constraints; compare their names instead.
    with app.app_context(), db.engine.connect() as connection:
        inspector = sa.inspect(connection)
        for table in Base.metadata.sorted_tables:
            declared = {c.name for c in table.constraints if isinstance(c, sa.CheckConstraint)}
            present = {c["name"] for c in inspector.get_check_constraints(table.name)}
            assert declared <= present, table.name
