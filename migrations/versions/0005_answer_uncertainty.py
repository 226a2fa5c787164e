"""answer uncertainty: whether a stored answer is uncertain, and why

Revision ID: 0005_answer_uncertainty
Revises: 0004_data_keeping
Create Date: 2026-11-26 01:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0005_answer_uncertainty'
down_revision: str | None = '0004_data_keeping'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('predictions') as batch:
        batch.add_column(
            sa.Column('uncertain', sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch.add_column(sa.Column('uncertain_reason', sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('predictions') as batch:
        batch.drop_column('uncertain_reason')
        batch.drop_column('uncertain')
