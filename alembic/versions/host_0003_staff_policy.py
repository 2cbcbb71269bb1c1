"""Staff social media policy: published versions and staff attestations

Revision ID: host_0003
Revises: host_0002
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "host_0003"
down_revision: str | None = "host_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "staff_policy_version",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("source_markdown", sa.Text(), nullable=False),
        sa.Column("html", sa.Text(), nullable=False),
        sa.Column("toc", sa.JSON(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("published_by", sa.String(length=100), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("version"),
    )
    op.create_table(
        "staff_attestation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.String(length=32), nullable=False),
        sa.Column("policy_version_id", sa.String(length=32), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("statement", sa.String(length=300), nullable=False),
        sa.Column("typed_name", sa.String(length=120), nullable=False),
        sa.Column("attested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ip", sa.String(length=64), nullable=False),
        sa.Column("user_agent", sa.String(length=300), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["staff_account.id"],
        ),
        sa.ForeignKeyConstraint(
            ["policy_version_id"],
            ["staff_policy_version.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("account_id", "policy_version_id"),
    )
    op.create_index(
        op.f("ix_staff_attestation_account_id"), "staff_attestation", ["account_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_staff_attestation_account_id"), table_name="staff_attestation")
    op.drop_table("staff_attestation")
    op.drop_table("staff_policy_version")
