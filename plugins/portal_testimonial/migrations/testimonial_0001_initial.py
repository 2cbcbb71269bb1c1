"""Testimonial decisions

Revision ID: testimonial_0001
Revises: host_0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "testimonial_0001"
down_revision: str | None = "host_0001"
branch_labels: str | Sequence[str] | None = ("portal_testimonial",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "testimonial_decision",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("enrollment_id", sa.String(length=32), nullable=False),
        sa.Column("client_id", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("choice", sa.String(length=20), nullable=False),
        sa.Column("placements", sa.JSON(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("source", sa.String(length=20), nullable=False),
        sa.Column("withdraw_code", sa.String(length=64), nullable=True),
        sa.Column("supersedes_id", sa.String(length=32), nullable=True),
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
            ["testimonial_decision.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("supersedes_id"),
        sa.UniqueConstraint("withdraw_code"),
    )
    op.create_index(
        op.f("ix_testimonial_decision_client_id"),
        "testimonial_decision",
        ["client_id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_testimonial_decision_enrollment_id"),
        "testimonial_decision",
        ["enrollment_id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_testimonial_decision_enrollment_id"), table_name="testimonial_decision")
    op.drop_index(op.f("ix_testimonial_decision_client_id"), table_name="testimonial_decision")
    op.drop_table("testimonial_decision")
