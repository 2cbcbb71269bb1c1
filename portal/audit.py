"""Audit events: who did what to which record, when and from where. Never clinical text."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Engine
from sqlmodel import Field, Session, SQLModel

from portal.db import UTCDateTime, utcnow


@dataclass(frozen=True)
class Actor:
    kind: str  # "client", "staff", "api", "cli", "system"
    id: str

    @property
    def label(self) -> str:
        return f"{self.kind}:{self.id}"


@dataclass(frozen=True)
class RequestMeta:
    """Request context kept with records as evidence of who acted."""

    ip: str = ""
    user_agent: str = ""
    # First 16 hex digits of sha256(session key): ties a record to a session, can't be replayed.
    session_ref: str = ""

    @classmethod
    def none(cls) -> RequestMeta:
        return cls()


class AuditEvent(SQLModel, table=True):
    __tablename__ = "audit_event"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    actor: str = Field(max_length=100)
    action: str = Field(max_length=100, index=True)
    subject_type: str = Field(max_length=50)
    subject_id: str = Field(max_length=64, index=True)
    # The client journey the event concerns (for the client's timeline), when it concerns one.
    enrollment_id: str | None = Field(default=None, max_length=32, index=True)
    ip: str = Field(default="", max_length=64)
    user_agent: str = Field(default="", max_length=300)
    detail: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    # The hash chain (portal/audit_chain.py): filled in when the event is flushed.
    prev_hash: str = Field(default="", max_length=64)
    hash: str = Field(default="", max_length=64)


def record(
    session: Session,
    actor: Actor,
    action: str,
    subject_type: str,
    subject_id: str,
    meta: RequestMeta | None = None,
    *,
    enrollment_id: str | None = None,
    **detail: Any,
) -> AuditEvent:
    """Add an audit event to the caller's transaction, so it commits or fails with the change.

    The event joins the tamper-evident hash chain when it is flushed (see portal.audit_chain).

    `enrollment_id` ties the event to a client's timeline; it defaults to the subject when the
    subject is an enrollment.
    """
    values = _values(actor, action, subject_type, subject_id, meta, enrollment_id)
    event = AuditEvent(**values, detail=detail)
    from portal.audit_chain import chain_on_flush  # the chain module builds on this one

    chain_on_flush(session)
    session.add(event)
    return event


def record_alone(
    engine: Engine,
    actor: Actor,
    action: str,
    subject_type: str,
    subject_id: str,
    meta: RequestMeta | None = None,
    *,
    enrollment_id: str | None = None,
    **detail: Any,
) -> None:
    """Store an audit event in a transaction of its own, now: for a request that changes
    nothing else (an API read), so the event is the whole write and is kept short.

    The event joins the hash chain exactly as `record`'s do."""
    from portal.audit_chain import append_values  # the chain module builds on this one

    values = _values(actor, action, subject_type, subject_id, meta, enrollment_id)
    values.update(at=utcnow(), detail=detail)
    with engine.begin() as conn:
        append_values(conn, values)


def _values(
    actor: Actor,
    action: str,
    subject_type: str,
    subject_id: str,
    meta: RequestMeta | None,
    enrollment_id: str | None,
) -> dict[str, Any]:
    meta = meta or RequestMeta.none()
    if enrollment_id is None and subject_type == "enrollment":
        enrollment_id = subject_id
    return {
        "actor": actor.label,
        "action": action,
        "subject_type": subject_type,
        "subject_id": subject_id,
        "enrollment_id": enrollment_id,
        "ip": meta.ip[:64],
        "user_agent": meta.user_agent[:300],
    }
