"""Acknowledgements, signer slots and signatures

Revision ID: signature_0001
Revises: host_0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "signature_0001"
down_revision: str | None = "host_0001"
branch_labels: str | Sequence[str] | None = ("portal_signature",)
# The foreign keys to policy_version need the policy branch first.
depends_on: str | Sequence[str] | None = "policy_0001"


def upgrade() -> None:
    op.create_table(
        "acknowledgement",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("enrollment_id", sa.String(length=32), nullable=False),
        sa.Column("client_id", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("party", sa.String(length=20), nullable=False),
        sa.Column("minor_name", sa.String(length=120), nullable=True),
        sa.Column("policy_version_id", sa.String(length=32), nullable=False),
        sa.Column("policy_version", sa.Integer(), nullable=False),
        sa.Column("policy_hash", sa.String(length=64), nullable=False),
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
            ["policy_version_id"],
            ["policy_version.id"],
        ),
        sa.ForeignKeyConstraint(
            ["supersedes_id"],
            ["acknowledgement.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("supersedes_id"),
    )
    op.create_index(
        op.f("ix_acknowledgement_client_id"), "acknowledgement", ["client_id"], unique=False
    )
    op.create_index(
        op.f("ix_acknowledgement_enrollment_id"), "acknowledgement", ["enrollment_id"], unique=False
    )
    op.create_table(
        "signer_slot",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("acknowledgement_id", sa.String(length=32), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("expected_name", sa.String(length=200), nullable=True),
        sa.Column("relationship", sa.String(length=80), nullable=True),
        sa.ForeignKeyConstraint(
            ["acknowledgement_id"],
            ["acknowledgement.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("acknowledgement_id", "position"),
    )
    op.create_index(
        op.f("ix_signer_slot_acknowledgement_id"),
        "signer_slot",
        ["acknowledgement_id"],
        unique=False,
    )
    op.create_table(
        "signature",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("slot_id", sa.String(length=32), nullable=False),
        sa.Column("acknowledgement_id", sa.String(length=32), nullable=False),
        sa.Column("typed_name", sa.String(length=200), nullable=False),
        sa.Column("meaning", sa.String(length=600), nullable=False),
        sa.Column("statement", sa.String(length=400), nullable=False),
        sa.Column("signed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("policy_version_id", sa.String(length=32), nullable=False),
        sa.Column("policy_version", sa.Integer(), nullable=False),
        sa.Column("policy_hash", sa.String(length=64), nullable=False),
        sa.Column("esign_consent", sa.Boolean(), nullable=False),
        sa.Column("esign_disclosure_version", sa.String(length=20), nullable=False),
        sa.Column("esign_disclosure_hash", sa.String(length=64), nullable=False),
        sa.Column("ip", sa.String(length=64), nullable=False),
        sa.Column("user_agent", sa.String(length=300), nullable=False),
        sa.Column("session_ref", sa.String(length=16), nullable=False),
        sa.ForeignKeyConstraint(
            ["acknowledgement_id"],
            ["acknowledgement.id"],
        ),
        sa.ForeignKeyConstraint(
            ["policy_version_id"],
            ["policy_version.id"],
        ),
        sa.ForeignKeyConstraint(
            ["slot_id"],
            ["signer_slot.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("slot_id"),
    )
    op.create_index(
        op.f("ix_signature_acknowledgement_id"), "signature", ["acknowledgement_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_signature_acknowledgement_id"), table_name="signature")
    op.drop_table("signature")
    op.drop_index(op.f("ix_signer_slot_acknowledgement_id"), table_name="signer_slot")
    op.drop_table("signer_slot")
    op.drop_index(op.f("ix_acknowledgement_enrollment_id"), table_name="acknowledgement")
    op.drop_index(op.f("ix_acknowledgement_client_id"), table_name="acknowledgement")
    op.drop_table("acknowledgement")
