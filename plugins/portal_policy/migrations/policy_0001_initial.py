"""Policy versions and readings

Revision ID: policy_0001
Revises: host_0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "policy_0001"
down_revision: str | None = "host_0001"
branch_labels: str | Sequence[str] | None = ("portal_policy",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "policy_version",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("source_markdown", sa.Text(), nullable=False),
        sa.Column("practice_snapshot", sa.JSON(), nullable=False),
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
        "policy_reading",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("enrollment_id", sa.String(length=32), nullable=False),
        sa.Column("policy_version_id", sa.String(length=32), nullable=False),
        sa.Column("read_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["enrollment_id"],
            ["enrollment.id"],
        ),
        sa.ForeignKeyConstraint(
            ["policy_version_id"],
            ["policy_version.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("enrollment_id", "policy_version_id"),
    )
    op.create_index(
        op.f("ix_policy_reading_enrollment_id"), "policy_reading", ["enrollment_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_policy_reading_enrollment_id"), table_name="policy_reading")
    op.drop_table("policy_reading")
    op.drop_table("policy_version")
