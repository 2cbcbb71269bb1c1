"""The mail outbox: mail is written in the same transaction as the event that causes it.

Delivery (see `portal.mailer`) claims due rows, sends them, and marks them sent or schedules a
retry with backoff. A failing SMTP server delays mail; it never loses it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import Column, Engine, LargeBinary, String, Text, or_, update
from sqlmodel import Field, Session, SQLModel, col, select

from portal.db import UTCDateTime, new_id, transaction, utcnow

LEASE = timedelta(minutes=5)
# Messages one delivery pass claims; a pass that sent a full batch is followed at once by the next.
CLAIM_LIMIT = 20


class MailStatus(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"  # refused for good (a permanent 5xx, or a message that cannot be built)


class OutboxMessage(SQLModel, table=True):
    __tablename__ = "outbox_message"

    id: int | None = Field(default=None, primary_key=True)
    message_id: str = Field(default_factory=new_id, max_length=32, unique=True)
    purpose: str = Field(max_length=50)
    to_addr: str = Field(max_length=254)
    subject: str = Field(max_length=300)
    body_text: str = Field(sa_column=Column(Text, nullable=False))
    body_html: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    attachment_name: str | None = Field(default=None, max_length=200)
    attachment: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    status: MailStatus = Field(default=MailStatus.PENDING, sa_type=String(20), index=True)
    attempts: int = 0
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )
    next_attempt_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False, index=True)
    )
    locked_until: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    sent_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    last_error: str | None = Field(default=None, max_length=500)


@dataclass(frozen=True)
class Mail:
    purpose: str
    to: str
    subject: str
    text: str
    html: str | None = None
    attachment_name: str | None = None
    attachment: bytes | None = None


def enqueue(session: Session, mail: Mail) -> OutboxMessage:
    row = OutboxMessage(
        purpose=mail.purpose,
        to_addr=mail.to,
        subject=mail.subject,
        body_text=mail.text,
        body_html=mail.html,
        attachment_name=mail.attachment_name,
        attachment=mail.attachment,
    )
    session.add(row)
    return row


def claim_due(
    engine: Engine, limit: int = CLAIM_LIMIT, now: datetime | None = None
) -> list[OutboxMessage]:
    """Lease due messages to this worker; other workers skip them until the lease runs out."""
    now = now or utcnow()
    with transaction(engine) as session:
        query = (
            select(OutboxMessage)
            .where(OutboxMessage.status == MailStatus.PENDING)
            .where(col(OutboxMessage.next_attempt_at) <= now)
            .where(
                or_(
                    col(OutboxMessage.locked_until).is_(None),
                    col(OutboxMessage.locked_until) < now,
                )
            )
            .order_by(col(OutboxMessage.id))
            .limit(limit)
        )
        if engine.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        rows = list(session.exec(query))
        for row in rows:
            row.locked_until = now + LEASE
            session.add(row)
        return rows


def keep_lease(engine: Engine, message: OutboxMessage, now: datetime | None = None) -> bool:
    """Just before sending: renew this worker's lease on the message, or learn that it lapsed
    (slow SMTP earlier in the batch) and another worker claimed it, so this one must not send
    it too. The lease is recognised by its expiry time, which every claim changes."""
    now = now or utcnow()
    renewed = now + LEASE
    with transaction(engine) as session:
        result = session.execute(
            update(OutboxMessage)
            .where(col(OutboxMessage.id) == message.id)
            .where(col(OutboxMessage.status) == MailStatus.PENDING)
            .where(col(OutboxMessage.locked_until) == message.locked_until)
            .values(locked_until=renewed)
        )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        return False
    message.locked_until = renewed
    return True


def mark_sent(engine: Engine, message_id: int) -> None:
    """Delivered: the body and attachment (links, a receipt) are not kept once sent."""
    with transaction(engine) as session:
        session.execute(
            update(OutboxMessage)
            .where(col(OutboxMessage.id) == message_id)
            .values(
                status=MailStatus.SENT,
                sent_at=utcnow(),
                locked_until=None,
                last_error=None,
                body_text="",
                body_html=None,
                attachment=None,
            )
        )


MAX_BACKOFF = timedelta(hours=1)


def mark_failed(
    engine: Engine,
    message: OutboxMessage,
    error: str,
    backoff_seconds: float,
    *,
    permanent: bool = False,
) -> None:
    """Schedule a retry with exponential backoff (capped at an hour; a temporary failure is
    retried until it succeeds), or mark the message failed when the refusal is permanent."""
    attempts = message.attempts + 1
    delay = min(timedelta(seconds=backoff_seconds * (2 ** min(attempts - 1, 20))), MAX_BACKOFF)
    status = MailStatus.FAILED if permanent else MailStatus.PENDING
    with transaction(engine) as session:
        session.execute(
            update(OutboxMessage)
            .where(col(OutboxMessage.id) == message.id)
            .values(
                attempts=attempts,
                status=status,
                next_attempt_at=utcnow() + delay,
                locked_until=None,
                last_error=error[:500],
            )
        )


def counts(session: Session) -> dict[str, int]:
    result = {status.value: 0 for status in MailStatus}
    for row in session.exec(select(OutboxMessage.status)):
        result[str(row)] += 1
    return result


def retry_now(session: Session, message_id: int, now: datetime) -> OutboxMessage | None:
    """Make a pending or failed message due now (an admin's "Retry now"); returns it, or None
    when there is no such message or it was sent already. The attempt count is kept."""
    row = session.get(OutboxMessage, message_id)
    if row is None or row.status == MailStatus.SENT:
        return None
    # A message a worker holds right now keeps its lease: retrying it must not send it twice.
    row.status = MailStatus.PENDING
    row.next_attempt_at = now
    session.add(row)
    return row


def failed_ids(session: Session) -> list[int]:
    return [
        row_id
        for row_id in session.exec(
            select(OutboxMessage.id).where(OutboxMessage.status == MailStatus.FAILED)
        )
        if row_id is not None
    ]
