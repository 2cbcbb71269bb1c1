"""The audit log as a hash chain: altering, removing or reordering an event shows.

Each event stores the hash of the event before it (`prev_hash`) and its own `hash`, a sha256
over the canonical JSON of its content plus `prev_hash`. The chain's last hash lives in the
single row of `audit_chain_head`. An event's hashes are filled in as it is flushed, under a
lock on that row (SELECT ... FOR UPDATE on PostgreSQL; on SQLite every writer already holds
the database's write lock from BEGIN IMMEDIATE), and the lock is held to commit: audited
writes are serialised from their first flushed event to their commit, so the chain never forks.

Chain order is id order: ids are drawn while the lock is held, so they follow the chain.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, Table, bindparam, event, inspect, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import UOWTransaction
from sqlmodel import Field, Session, SQLModel, col
from sqlmodel import select as sqlmodel_select

from portal.audit import AuditEvent
from portal.db import transaction

GENESIS = "0" * 64
HEAD_ID = 1
_LISTENING = "audit_chain_listening"


class AuditChainHead(SQLModel, table=True):
    """The chain's last link: one row, locked by every append."""

    __tablename__ = "audit_chain_head"

    id: int = Field(primary_key=True)
    hash: str = Field(max_length=64)


# Core tables: the chain is written from inside a flush, on the session's connection.
HEAD: Table = AuditChainHead.__table__  # type: ignore[attr-defined]
EVENTS: Table = AuditEvent.__table__  # type: ignore[attr-defined]


# Statements every audited write runs, built once.
_LOCK_HEAD = select(HEAD.c.hash).where(HEAD.c.id == HEAD_ID).with_for_update()
_MOVE_HEAD = update(HEAD).where(HEAD.c.id == HEAD_ID).values(hash=bindparam("new_hash"))
_INSERT_EVENT = EVENTS.insert()


def canonical(content: dict[str, Any]) -> bytes:
    """One byte string per content, whichever database stored it (keys sorted, no spaces)."""
    return json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def _timestamp(at: datetime) -> str:
    if at.tzinfo is None:  # read back from a raw SQLite row: stored as UTC
        at = at.replace(tzinfo=UTC)
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def event_hash(
    *,
    at: datetime,
    actor: str,
    action: str,
    subject_type: str,
    subject_id: str,
    enrollment_id: str | None,
    ip: str,
    user_agent: str,
    detail: Any,
    prev_hash: str,
) -> str:
    content = {
        "at": _timestamp(at),
        "actor": actor,
        "action": action,
        "subject_type": subject_type,
        "subject_id": subject_id,
        "enrollment_id": enrollment_id,
        "ip": ip,
        "user_agent": user_agent,
        # As the JSON column will give it back (tuples become lists, keys strings).
        "detail": json.loads(json.dumps(detail)),
        "prev_hash": prev_hash,
    }
    return hashlib.sha256(canonical(content)).hexdigest()


def hash_of(row: Any, prev_hash: str) -> str:
    """The hash of an event (model or row with the same attributes) chained after `prev_hash`."""
    return event_hash(
        at=row.at,
        actor=row.actor,
        action=row.action,
        subject_type=row.subject_type,
        subject_id=row.subject_id,
        enrollment_id=row.enrollment_id,
        ip=row.ip,
        user_agent=row.user_agent,
        detail=row.detail,
        prev_hash=prev_hash,
    )


def chain_on_flush(session: Session) -> None:
    """Fill in the hashes of `session`'s new events as they are flushed (once per session)."""
    if not session.info.get(_LISTENING):
        event.listen(session, "before_flush", _before_flush)
        session.info[_LISTENING] = True


def _before_flush(session: Session, _context: UOWTransaction, _instances: Any) -> None:
    # Only events not yet written: linked afresh each time, so a retried flush relinks them.
    pending = [o for o in session.new if isinstance(o, AuditEvent)]
    if not pending:
        return
    pending.sort(key=lambda o: inspect(o).insert_order)
    append(session.connection(), pending)


def append(conn: Connection, events: Iterable[AuditEvent]) -> None:
    """Link `events` (in this order) after the chain head, and move the head past them."""
    prev = lock_head(conn)
    for item in events:
        item.prev_hash = prev
        item.hash = prev = hash_of(item, prev)
    conn.execute(_MOVE_HEAD, {"new_hash": prev})


def append_values(conn: Connection, values: dict[str, Any]) -> None:
    """Insert one event, given as its column values without the hashes, at the chain's end,
    in `conn`'s transaction: the same links as `append`, without building an ORM object (a
    read-only API request writes nothing else, and this is most of its write's cost)."""
    prev = lock_head(conn)
    digest = event_hash(**values, prev_hash=prev)
    conn.execute(_INSERT_EVENT, {**values, "prev_hash": prev, "hash": digest})
    conn.execute(_MOVE_HEAD, {"new_hash": digest})


def lock_head(conn: Connection) -> str:
    """The chain's last hash, with its row locked until commit (created when missing)."""
    query = _LOCK_HEAD
    found = conn.execute(query).scalar_one_or_none()
    if found is not None:
        return str(found)
    # No head yet (a new or emptied table): start from the newest event, if any.
    newest = conn.execute(select(EVENTS.c.hash).order_by(EVENTS.c.id.desc()).limit(1))
    start = newest.scalar_one_or_none() or GENESIS
    insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    conn.execute(
        insert(HEAD).values(id=HEAD_ID, hash=start).on_conflict_do_nothing(index_elements=["id"])
    )
    return str(conn.execute(query).scalar_one())


@dataclass(frozen=True)
class Verdict:
    """What `verify` found: how many events are linked, the head hash, and the first break."""

    count: int
    head: str
    broken_at: int | None = None
    problem: str = ""

    @property
    def whole(self) -> bool:
        return self.broken_at is None and not self.problem


def verify(engine: Engine, batch: int = 1000) -> Verdict:
    """Walk the chain in id order and name its first broken link.

    The head and the events are read in one snapshot (REPEATABLE READ on PostgreSQL; a SQLite
    read transaction is one already), so events appended meanwhile neither count nor break it.
    """
    if engine.dialect.name == "postgresql":
        engine = engine.execution_options(isolation_level="REPEATABLE READ")
    with transaction(engine, read_only=True) as db:
        head = db.get(AuditChainHead, HEAD_ID)
        expected = head.hash if head is not None else None
        count, prev, prev_id = 0, GENESIS, None
        for row in _rows(db, batch):
            if row.prev_hash != prev:
                before = f"event {prev_id}" if prev_id is not None else "the start of the chain"
                return Verdict(
                    count,
                    prev,
                    row.id,
                    f"event {row.id}: its prev_hash {row.prev_hash[:12]}… is not the hash of "
                    f"{before} ({prev[:12]}…): an event was removed, inserted or reordered here",
                )
            recomputed = hash_of(row, row.prev_hash)
            if recomputed != row.hash:
                return Verdict(
                    count,
                    prev,
                    row.id,
                    f"event {row.id}: its content does not match its hash (stored "
                    f"{row.hash[:12]}…, recomputed {recomputed[:12]}…): it was altered",
                )
            count, prev, prev_id = count + 1, row.hash, row.id
    if expected is not None and prev != expected:
        end = f"event {prev_id} ({prev[:12]}…)" if prev_id is not None else "its start (no events)"
        return Verdict(
            count,
            prev,
            None,
            f"the chain ends at {end} but the chain head records "
            f"{expected[:12]}…: events at the end were removed or altered",
        )
    return Verdict(count, prev)


def _rows(db: Session, batch: int) -> Iterator[AuditEvent]:
    """Every event in id order, in keyset batches (flat memory on a long log)."""
    after: int | None = None
    while True:
        statement = sqlmodel_select(AuditEvent).order_by(col(AuditEvent.id)).limit(batch)
        if after is not None:
            statement = statement.where(col(AuditEvent.id) > after)
        rows = list(db.exec(statement))
        if not rows:
            return
        yield from rows
        db.expunge_all()
        after = rows[-1].id
