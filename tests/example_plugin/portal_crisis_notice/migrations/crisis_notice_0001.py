"""The example plugin's table

Revision ID: crisis_notice_0001
Revises: host_0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "crisis_notice_0001"
down_revision: str | None = "host_0001"
branch_labels: str | Sequence[str] | None = ("portal_crisis_notice",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "crisisnoticeconfirmation",
        sa.Column("id", sa.String(length=32), primary_key=True),
        sa.Column("enrollment_id", sa.String(32), sa.ForeignKey("enrollment.id"), nullable=False),
        sa.Column("confirmed_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index(
        "ix_crisisnoticeconfirmation_enrollment_id", "crisisnoticeconfirmation", ["enrollment_id"]
    )


def downgrade() -> None:
    op.drop_table("crisisnoticeconfirmation")
