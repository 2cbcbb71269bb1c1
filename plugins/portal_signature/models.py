"""Acknowledgements, their signer slots and signatures. Append-only: rows are never updated.

Changing who signs (allowed only before anyone signed) adds a new acknowledgement that
supersedes the old one; a new policy version gets an acknowledgement of its own. Staff add
what happened outside the portal: the policy discussed in session, a paper acknowledgement.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import JSON, Column, LargeBinary, String, UniqueConstraint
from sqlmodel import Field, SQLModel

from portal.db import UTCDateTime, new_id, utcnow


class Party(StrEnum):
    INDIVIDUAL = "individual"
    ADULTS = "adults"
    MINOR = "minor"


class Role(StrEnum):
    CLIENT = "client"
    ADULT = "adult"
    GUARDIAN = "guardian"
    THERAPIST = "therapist"


class Acknowledgement(SQLModel, table=True):
    """Who must sign which policy version for one enrollment."""

    __tablename__ = "acknowledgement"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    enrollment_id: str = Field(foreign_key="enrollment.id", index=True, max_length=32)
    client_id: str = Field(foreign_key="client.id", index=True, max_length=32)
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )
    party: str = Field(sa_type=String(20))
    minor_name: str | None = Field(default=None, max_length=120)
    policy_version_id: str = Field(foreign_key="policy_version.id", max_length=32)
    policy_version: int
    policy_hash: str = Field(max_length=64)
    # Unique: of two racing changes to the same acknowledgement only one can supersede it.
    supersedes_id: str | None = Field(
        default=None, foreign_key="acknowledgement.id", unique=True, max_length=32
    )


class SignerSlot(SQLModel, table=True):
    """One person who must sign; the therapist's slot stays open for the staff side."""

    __tablename__ = "signer_slot"
    __table_args__ = (UniqueConstraint("acknowledgement_id", "position"),)

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    acknowledgement_id: str = Field(foreign_key="acknowledgement.id", index=True, max_length=32)
    position: int
    role: str = Field(sa_type=String(20))
    expected_name: str | None = Field(default=None, max_length=200)  # None for the therapist
    # Guardians only: "mother", "father", "legal guardian" or "other: <as typed>".
    relationship: str | None = Field(default=None, max_length=80)


class Signature(SQLModel, table=True):
    """A signed slot: everything that shows who signed what, when, and that they meant to."""

    __tablename__ = "signature"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    # Unique: a slot is signed once, even when two requests race.
    slot_id: str = Field(foreign_key="signer_slot.id", unique=True, max_length=32)
    acknowledgement_id: str = Field(foreign_key="acknowledgement.id", index=True, max_length=32)
    typed_name: str = Field(max_length=200)
    meaning: str = Field(max_length=600)
    statement: str = Field(max_length=400)
    signed_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    policy_version_id: str = Field(foreign_key="policy_version.id", max_length=32)
    policy_version: int
    policy_hash: str = Field(max_length=64)
    esign_consent: bool
    esign_disclosure_version: str = Field(max_length=20)
    esign_disclosure_hash: str = Field(max_length=64)
    ip: str = Field(default="", max_length=64)
    user_agent: str = Field(default="", max_length=300)
    session_ref: str = Field(default="", max_length=16)


class PolicyDiscussion(SQLModel, table=True):
    """A therapist's record that the policy was discussed in session. Deliberately no free
    text: what was said belongs in the clinical record, not here."""

    __tablename__ = "policy_discussion"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    enrollment_id: str = Field(foreign_key="enrollment.id", index=True, max_length=32)
    policy_version_id: str = Field(foreign_key="policy_version.id", max_length=32)
    policy_version: int
    staff_account_id: str = Field(foreign_key="staff_account.id", max_length=32)
    discussed_on: date
    recorded_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )


class PaperAcknowledgement(SQLModel, table=True):
    """An acknowledgement signed on paper, with its scan. It counts as signed on the staff
    side. The scan is kept in the database (one backup holds everything); list queries defer
    `content`."""

    __tablename__ = "paper_acknowledgement"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    enrollment_id: str = Field(foreign_key="enrollment.id", index=True, max_length=32)
    client_id: str = Field(foreign_key="client.id", index=True, max_length=32)
    policy_version_id: str = Field(foreign_key="policy_version.id", max_length=32)
    policy_version: int
    policy_hash: str = Field(max_length=64)
    signer_names: list[str] = Field(sa_column=Column(JSON, nullable=False))
    signed_on: date
    recorded_by: str = Field(foreign_key="staff_account.id", max_length=32)
    recorded_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )
    file_name: str = Field(max_length=120)  # as uploaded, cleaned; shown, never used as a path
    content_type: str = Field(max_length=40)  # from the file's first bytes, not the browser
    size: int
    sha256: str = Field(max_length=64)
    content: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
