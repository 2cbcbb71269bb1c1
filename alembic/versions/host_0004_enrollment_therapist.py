"""The therapist seeing a client, on the enrollment

Revision ID: host_0004
Revises: host_0003
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "host_0004"
down_revision: str | None = "host_0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("enrollment") as batch:
        batch.add_column(sa.Column("therapist_id", sa.String(length=32), nullable=True))
        batch.create_index("ix_enrollment_therapist_id", ["therapist_id"])
        batch.create_foreign_key(
            "fk_enrollment_therapist_id", "staff_account", ["therapist_id"], ["id"]
        )


def downgrade() -> None:
    with op.batch_alter_table("enrollment") as batch:
        batch.drop_constraint("fk_enrollment_therapist_id", type_="foreignkey")
        batch.drop_index("ix_enrollment_therapist_id")
        batch.drop_column("therapist_id")
