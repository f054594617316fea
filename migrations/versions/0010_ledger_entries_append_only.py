"""ledger entries are append-only in the database too: UPDATE and DELETE are refused

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-27

The app never changes an entry (a correction is a new, negative one); these triggers make the
database refuse it as well, so a hand-typed UPDATE in a console or a future bug cannot quietly
move a pledge's figures away from their evidence. INSERT is untouched, and so are backup and
restore (pg_restore adds the triggers after the data).

On SQLite a later `batch_alter_table('ledger_entries')` rebuilds the table and drops its
triggers: such a migration must create them again (see `_create_sqlite`).
"""
from alembic import op


# revision identifiers, used by Alembic.
revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

MESSAGE = 'ledger entries are append-only: add a correcting entry instead'


def _create_sqlite():
    for event in ('UPDATE', 'DELETE'):
        op.execute(
            f'CREATE TRIGGER ledger_entries_no_{event.lower()} BEFORE {event} ON ledger_entries '
            f"BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END"
        )


def upgrade():
    if op.get_bind().dialect.name == 'postgresql':
        op.execute(
            'CREATE FUNCTION ledger_entries_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ '
            f"BEGIN RAISE EXCEPTION '{MESSAGE}' USING ERRCODE = 'restrict_violation'; END $$"
        )
        op.execute(
            'CREATE TRIGGER ledger_entries_append_only BEFORE UPDATE OR DELETE OR TRUNCATE '
            'ON ledger_entries FOR EACH STATEMENT EXECUTE FUNCTION ledger_entries_append_only()'
        )
    else:
        _create_sqlite()


def downgrade():
    if op.get_bind().dialect.name == 'postgresql':
        op.execute('DROP TRIGGER ledger_entries_append_only ON ledger_entries')
        op.execute('DROP FUNCTION ledger_entries_append_only()')
    else:
        for event in ('update', 'delete'):
            op.execute(f'DROP TRIGGER ledger_entries_no_{event}')
