"""supplier refunds: a bank transfer may be the supplier paying back

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-28

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade():
    # A credit note issued after an invoice was paid leaves the supplier owing money back; its
    # transfer is recorded as a negative amount (autogenerate does not see CHECK changes).
    with op.batch_alter_table('bank_payments', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_bank_payments_amount_positive'), type_='check')
        batch_op.create_check_constraint(op.f('ck_bank_payments_amount_not_zero'), 'amount_fen <> 0')


def downgrade():
    refunds = op.get_bind().scalar(sa.text('SELECT count(*) FROM bank_payments WHERE amount_fen < 0'))
    if refunds:
        # Dropping them would leave what was paid back unrecorded; the old schema cannot hold it.
        raise RuntimeError(
            f'{refunds} supplier refund(s) are recorded in bank_payments; the schema before 0009 '
            'cannot hold them. Restore a backup taken before the upgrade instead.'
        )
    with op.batch_alter_table('bank_payments', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_bank_payments_amount_not_zero'), type_='check')
        batch_op.create_check_constraint(op.f('ck_bank_payments_amount_positive'), 'amount_fen > 0')
