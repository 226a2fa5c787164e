"""sounds like: AudioSet's music genres a stored answer sounds like (a second opinion)

Revision ID: 0006_sounds_like
Revises: 0005_answer_uncertainty
Create Date: 2026-12-04 22:35:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0006_sounds_like'
down_revision: str | None = '0005_answer_uncertainty'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('predictions') as batch:
        batch.add_column(sa.Column('sounds_like', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('predictions') as batch:
        batch.drop_column('sounds_like')
