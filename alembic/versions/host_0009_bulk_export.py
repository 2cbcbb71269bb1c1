"""FHIR Bulk Data export jobs

Revision ID: host_0009
Revises: host_0008
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "host_0009"
down_revision: str | None = "host_0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "export_job",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("api_key_id", sa.String(length=32), nullable=False),
        sa.Column("level", sa.String(length=20), nullable=False),
        sa.Column("request_url", sa.String(length=2000), nullable=False),
        sa.Column("types", sa.JSON(), nullable=False),
        sa.Column("scopes", sa.JSON(), nullable=False),
        sa.Column("since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("output_format", sa.String(length=40), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("transaction_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("position_txid", sa.BigInteger(), nullable=True),
        sa.Column("position_seq", sa.BigInteger(), nullable=True),
        sa.Column("total_clients", sa.Integer(), nullable=False),
        sa.Column("done_clients", sa.Integer(), nullable=False),
        sa.Column("output", sa.JSON(), nullable=False),
        sa.Column("errors", sa.JSON(), nullable=False),
        sa.Column("failure", sa.String(length=300), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_export_job_api_key_id", "export_job", ["api_key_id"])
    op.create_index("ix_export_job_status_created", "export_job", ["status", "created_at"])
    op.create_index("ix_export_job_transaction_time", "export_job", ["transaction_time"])


def downgrade() -> None:
    op.drop_table("export_job")
