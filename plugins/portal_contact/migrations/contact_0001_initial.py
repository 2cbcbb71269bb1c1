"""Contact preferences (append-only)

Revision ID: contact_0001
Revises: host_0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "contact_0001"
down_revision: str | None = "host_0001"
branch_labels: str | Sequence[str] | None = ("portal_contact",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "contact_preference",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("enrollment_id", sa.String(length=32), nullable=False),
        sa.Column("client_id", sa.String(length=32), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("choices", sa.JSON(), nullable=False),
        sa.Column("email_warning_accepted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("email_warning_text", sa.Text(), nullable=True),
        sa.Column("supersedes_id", sa.String(length=32), nullable=True),
        sa.Column("source", sa.String(length=20), nullable=False),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["client.id"],
        ),
        sa.ForeignKeyConstraint(
            ["enrollment_id"],
            ["enrollment.id"],
        ),
        sa.ForeignKeyConstraint(
            ["supersedes_id"],
            ["contact_preference.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("enrollment_id", "revision", name="uq_contact_preference_revision"),
    )
    op.create_index(
        op.f("ix_contact_preference_client_id"), "contact_preference", ["client_id"], unique=False
    )
    op.create_index(
        op.f("ix_contact_preference_enrollment_id"),
        "contact_preference",
        ["enrollment_id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_contact_preference_enrollment_id"), table_name="contact_preference")
    op.drop_index(op.f("ix_contact_preference_client_id"), table_name="contact_preference")
    op.drop_table("contact_preference")
