"""data keeping: users' labels, when a job's audio expired, and the retention sweeps

Revision ID: 0004_data_keeping
Revises: 0002_recovery
Create Date: 2026-11-26 02:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0004_data_keeping'
down_revision: str | None = '0002_recovery'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('job_labels',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('job_id', sa.String(length=36), nullable=False),
    sa.Column('genre', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('predicted_genre', sa.String(length=64), nullable=True),
    sa.Column('api_key_id', sa.String(length=36), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("status IN ('pending', 'approved', 'rejected')", name=op.f('ck_job_labels_status')),
    sa.ForeignKeyConstraint(['api_key_id'], ['api_keys.id'], name=op.f('fk_job_labels_api_key_id_api_keys'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['job_id'], ['jobs.id'], name=op.f('fk_job_labels_job_id_jobs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_job_labels'))
    )
    with op.batch_alter_table('job_labels', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_job_labels_job_id'), ['job_id'], unique=True)
        batch_op.create_index('ix_job_labels_status_created_at', ['status', 'created_at'], unique=False)

    op.create_table('retention_sweeps',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('n_audio_expired', sa.Integer(), nullable=False),
    sa.Column('n_files_removed', sa.Integer(), nullable=False),
    sa.Column('n_results_expired', sa.Integer(), nullable=False),
    sa.Column('bytes_freed', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_retention_sweeps'))
    )
    with op.batch_alter_table('retention_sweeps', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_retention_sweeps_started_at'), ['started_at'], unique=False)

    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('audio_expired_at', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.drop_column('audio_expired_at')

    with op.batch_alter_table('retention_sweeps', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_retention_sweeps_started_at'))
    op.drop_table('retention_sweeps')

    with op.batch_alter_table('job_labels', schema=None) as batch_op:
        batch_op.drop_index('ix_job_labels_status_created_at')
        batch_op.drop_index(batch_op.f('ix_job_labels_job_id'))
    op.drop_table('job_labels')
