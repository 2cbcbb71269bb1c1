"""Published policy versions (immutable) and each client's reading of one."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from portal.db import UTCDateTime, new_id, utcnow


class PolicyVersion(SQLModel, table=True):
    """A published version: never updated; a change is a new version."""

    __tablename__ = "policy_version"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    version: int = Field(unique=True)
    title: str = Field(max_length=200)
    source_markdown: str = Field(sa_column=Column(Text, nullable=False))
    practice_snapshot: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    html: str = Field(sa_column=Column(Text, nullable=False))
    # [[anchor, title], ...] for the table of contents.
    toc: list[list[str]] = Field(sa_column=Column(JSON, nullable=False))
    text: str = Field(sa_column=Column(Text, nullable=False))
    content_hash: str = Field(max_length=64)
    published_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )
    published_by: str = Field(max_length=100)


class PolicyReading(SQLModel, table=True):
    """The client opened and confirmed reading a version during onboarding."""

    __tablename__ = "policy_reading"
    __table_args__ = (UniqueConstraint("enrollment_id", "policy_version_id"),)

    id: int | None = Field(default=None, primary_key=True)
    enrollment_id: str = Field(foreign_key="enrollment.id", index=True, max_length=32)
    policy_version_id: str = Field(foreign_key="policy_version.id", max_length=32)
    read_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )


class PolicyCampaign(SQLModel, table=True):
    """Publishing a version asked everyone who signed an earlier one to sign again."""

    __tablename__ = "policy_campaign"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    policy_version_id: str = Field(foreign_key="policy_version.id", unique=True, max_length=32)
    policy_version: int
    started_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )
    started_by: str = Field(max_length=100)
    # Both counts are set in the transaction that publishes, once every batch is queued.
    clients_notified: int = 0
    # Must re-acknowledge but allowed no email: the practice tells them another way.
    clients_not_emailed: int = 0


class PolicyCampaignRecipient(SQLModel, table=True):
    """One client a campaign asked to re-acknowledge (counts progress without re-deriving it)."""

    __tablename__ = "policy_campaign_recipient"
    __table_args__ = (UniqueConstraint("campaign_id", "enrollment_id"),)

    id: int | None = Field(default=None, primary_key=True)
    campaign_id: str = Field(foreign_key="policy_campaign.id", index=True, max_length=32)
    enrollment_id: str = Field(foreign_key="enrollment.id", index=True, max_length=32)
    signed_version: int  # the version of the acknowledgement they had signed
    emailed: bool
    notified_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )
