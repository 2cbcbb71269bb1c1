"""Re-acknowledgement campaigns

Revision ID: policy_0002
Revises: policy_0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "policy_0002"
down_revision: str | None = "policy_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "policy_campaign",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("policy_version_id", sa.String(length=32), nullable=False),
        sa.Column("policy_version", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_by", sa.String(length=100), nullable=False),
        sa.Column("clients_notified", sa.Integer(), nullable=False),
        sa.Column("clients_not_emailed", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["policy_version_id"],
            ["policy_version.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("policy_version_id"),
    )
    op.create_table(
        "policy_campaign_recipient",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.String(length=32), nullable=False),
        sa.Column("enrollment_id", sa.String(length=32), nullable=False),
        sa.Column("signed_version", sa.Integer(), nullable=False),
        sa.Column("emailed", sa.Boolean(), nullable=False),
        sa.Column("notified_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["policy_campaign.id"],
        ),
        sa.ForeignKeyConstraint(
            ["enrollment_id"],
            ["enrollment.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("campaign_id", "enrollment_id"),
    )
    op.create_index(
        op.f("ix_policy_campaign_recipient_campaign_id"),
        "policy_campaign_recipient",
        ["campaign_id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_policy_campaign_recipient_enrollment_id"),
        "policy_campaign_recipient",
        ["enrollment_id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(
        op.f("ix_policy_campaign_recipient_enrollment_id"), table_name="policy_campaign_recipient"
    )
    op.drop_index(
        op.f("ix_policy_campaign_recipient_campaign_id"), table_name="policy_campaign_recipient"
    )
    op.drop_table("policy_campaign_recipient")
    op.drop_table("policy_campaign")
