"""Policy discussed in session; paper acknowledgements with their scans

Revision ID: signature_0002
Revises: signature_0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "signature_0002"
down_revision: str | None = "signature_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = "host_0002"


def upgrade() -> None:
    op.create_table(
        "paper_acknowledgement",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("enrollment_id", sa.String(length=32), nullable=False),
        sa.Column("client_id", sa.String(length=32), nullable=False),
        sa.Column("policy_version_id", sa.String(length=32), nullable=False),
        sa.Column("policy_version", sa.Integer(), nullable=False),
        sa.Column("policy_hash", sa.String(length=64), nullable=False),
        sa.Column("signer_names", sa.JSON(), nullable=False),
        sa.Column("signed_on", sa.Date(), nullable=False),
        sa.Column("recorded_by", sa.String(length=32), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("file_name", sa.String(length=120), nullable=False),
        sa.Column("content_type", sa.String(length=40), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["client.id"],
        ),
        sa.ForeignKeyConstraint(
            ["enrollment_id"],
            ["enrollment.id"],
        ),
        sa.ForeignKeyConstraint(
            ["policy_version_id"],
            ["policy_version.id"],
        ),
        sa.ForeignKeyConstraint(
            ["recorded_by"],
            ["staff_account.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        op.f("ix_paper_acknowledgement_client_id"),
        "paper_acknowledgement",
        ["client_id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_paper_acknowledgement_enrollment_id"),
        "paper_acknowledgement",
        ["enrollment_id"],
        unique=False,
    )
    op.create_table(
        "policy_discussion",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("enrollment_id", sa.String(length=32), nullable=False),
        sa.Column("policy_version_id", sa.String(length=32), nullable=False),
        sa.Column("policy_version", sa.Integer(), nullable=False),
        sa.Column("staff_account_id", sa.String(length=32), nullable=False),
        sa.Column("discussed_on", sa.Date(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["enrollment_id"],
            ["enrollment.id"],
        ),
        sa.ForeignKeyConstraint(
            ["policy_version_id"],
            ["policy_version.id"],
        ),
        sa.ForeignKeyConstraint(
            ["staff_account_id"],
            ["staff_account.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        op.f("ix_policy_discussion_enrollment_id"),
        "policy_discussion",
        ["enrollment_id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_policy_discussion_enrollment_id"), table_name="policy_discussion")
    op.drop_table("policy_discussion")
    op.drop_index(
        op.f("ix_paper_acknowledgement_enrollment_id"), table_name="paper_acknowledgement"
    )
    op.drop_index(op.f("ix_paper_acknowledgement_client_id"), table_name="paper_acknowledgement")
    op.drop_table("paper_acknowledgement")
