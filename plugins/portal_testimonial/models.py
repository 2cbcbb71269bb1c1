"""Testimonial decisions: append-only, each row superseding the one before it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Column, String
from sqlmodel import Field, SQLModel

from portal.db import UTCDateTime, new_id, utcnow


class TestimonialDecision(SQLModel, table=True):
    """A client's choice about sharing their words, or the withdrawal of an earlier "yes".

    Never updated or deleted. The rows of an enrollment form one chain through
    ``supersedes_id``; the unique constraint on it keeps that chain from forking.
    """

    __tablename__ = "testimonial_decision"
    __test__ = False  # not a pytest test class, despite the name

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    enrollment_id: str = Field(foreign_key="enrollment.id", index=True, max_length=32)
    client_id: str = Field(foreign_key="client.id", index=True, max_length=32)
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )
    choice: str = Field(sa_type=String(20))  # a key of choices.CHOICES
    # Keys of choices.PLACEMENTS in their canonical order; empty for "no".
    placements: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    kind: str = Field(default="decision", sa_type=String(20))  # "decision" or "withdrawal"
    source: str = Field(default="client", sa_type=String(20))  # "client" (later "staff")
    # Printed in the client's receipt, which must regenerate identically, so it is a stored
    # random value rather than a timed signature. Withdrawal rows have none.
    withdraw_code: str | None = Field(default=None, unique=True, max_length=64)
    supersedes_id: str | None = Field(
        default=None, foreign_key="testimonial_decision.id", unique=True, max_length=32
    )
