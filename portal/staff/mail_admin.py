"""The admin's view of the mail outbox: what is queued, sent and failing, and retrying it.

Nothing here reads a message body: the list shows where mail goes and why it has not arrived.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from portal import audit, outbox
from portal.audit import Actor, RequestMeta
from portal.outbox import MailStatus, OutboxMessage

PAGE_SIZE = 50

# The filters the page offers. "Retrying" is pending mail that failed at least once: that is
# what an admin means by "failing" while delivery keeps trying.
FILTERS = {
    "": "All",
    "queued": "Queued",
    "retrying": "Failing, will retry",
    "failed": "Failed for good",
    "sent": "Sent",
}


@dataclass(frozen=True)
class MailRow:
    """What the page shows of a message: no body, no attachment."""

    id: int
    purpose: str
    to_addr: str
    subject: str
    created_at: datetime
    attempts: int
    next_attempt_at: datetime
    sent_at: datetime | None
    status: str
    last_error: str | None

    @property
    def state(self) -> str:
        if self.status == MailStatus.PENDING:
            return "retrying" if self.attempts else "queued"
        return self.status

    @property
    def can_retry(self) -> bool:
        return self.status != MailStatus.SENT


@dataclass(frozen=True)
class MailPage:
    rows: list[MailRow]
    next_after: int | None


def summary(db: Session) -> dict[str, int]:
    """How many messages are in each of the page's states."""
    result = dict.fromkeys(FILTERS, 0)
    result.pop("")
    retrying = col(OutboxMessage.attempts) > 0
    query = select(OutboxMessage.status, retrying, func.count()).group_by(
        col(OutboxMessage.status), retrying
    )
    for status, tried, count in db.exec(query):
        if status == MailStatus.PENDING:
            result["retrying" if tried else "queued"] += count
        else:
            result[str(status)] = result.get(str(status), 0) + count
    return result


def _where(query: Any, state: str) -> Any:
    if state == "queued":
        return query.where(OutboxMessage.status == MailStatus.PENDING).where(
            col(OutboxMessage.attempts) == 0
        )
    if state == "retrying":
        return query.where(OutboxMessage.status == MailStatus.PENDING).where(
            col(OutboxMessage.attempts) > 0
        )
    if state in {MailStatus.FAILED, MailStatus.SENT}:
        return query.where(OutboxMessage.status == state)
    return query


def page(db: Session, state: str, after: int | None, size: int = PAGE_SIZE) -> MailPage:
    """One page, newest first, by keyset on the id (the last page costs what the first does)."""
    # Named columns, not the whole row: bodies and attachments (a receipt PDF) stay unread.
    columns = [
        col(OutboxMessage.id),
        col(OutboxMessage.purpose),
        col(OutboxMessage.to_addr),
        col(OutboxMessage.subject),
        col(OutboxMessage.created_at),
        col(OutboxMessage.attempts),
        col(OutboxMessage.next_attempt_at),
        col(OutboxMessage.sent_at),
        col(OutboxMessage.status),
        col(OutboxMessage.last_error),
    ]
    query = _where(sa_select(*columns), state if state in FILTERS else "")
    if after is not None:
        query = query.where(col(OutboxMessage.id) < after)
    found = [
        MailRow(*row)
        for row in db.execute(query.order_by(col(OutboxMessage.id).desc()).limit(size + 1))
    ]
    more = len(found) > size
    found = found[:size]
    return MailPage(found, found[-1].id if more and found else None)


def retry(db: Session, message_id: int, *, actor: Actor, meta: RequestMeta, now: datetime) -> bool:
    """Make one pending or failed message due now; False when it was sent or is unknown."""
    row = db.get(OutboxMessage, message_id)
    before = row.status if row is not None else None
    row = outbox.retry_now(db, message_id, now)
    if row is None:
        return False
    # The purpose and the previous state only: the address identifies a client.
    audit.record(
        db,
        actor,
        "mail.retried",
        "outbox_message",
        str(message_id),
        meta,
        purpose=row.purpose,
        status_before=str(before),
        attempts=row.attempts,
    )
    return True


def retry_all_failed(db: Session, *, actor: Actor, meta: RequestMeta, now: datetime) -> int:
    ids = outbox.failed_ids(db)
    for message_id in ids:
        retry(db, message_id, actor=actor, meta=meta, now=now)
    return len(ids)
