"""The change log behind incremental sync: one row per client per committed transaction.

Every write to a tracked table (the host's clients and enrollments, and the tables plugins
declare with ``portal_change_sources``) appends a ``ClientChange`` row in the same transaction,
so a change and its log entry commit or fail together.

Why not ``updated_at``: transactions commit out of order. A row stamped 10:00:00 may commit after
a reader has already moved past 10:00:01 and is then never seen. The log is read in
*position* order up to a *safe horizon* instead:

- SQLite: writers are serialised (``BEGIN IMMEDIATE``), so sequence numbers commit in order
  and every committed row is below the horizon.
- PostgreSQL: each row carries its transaction id (``pg_current_xact_id()``, 64-bit, never wraps)
  and the log is ordered by ``(txid, seq)``. Only rows whose transaction id is below the oldest
  transaction still running (``pg_snapshot_xmin``) are served: every transaction below that has
  finished, so no row can ever appear behind a position a reader has been given.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    String,
    event,
    insert,
    literal,
    literal_column,
    text,
    tuple_,
)
from sqlalchemy.orm import Session as OrmSession
from sqlalchemy.orm import UOWTransaction
from sqlmodel import Field, Session, SQLModel, col, select
from sqlmodel.sql.expression import SelectOfScalar

from portal.db import UTCDateTime, utcnow
from portal.models import Client, Enrollment

_PENDING = "portal_changed_clients"
_TXID: Any = literal_column("pg_current_xact_id()::text::bigint")
_OLDEST_RUNNING: Any = literal_column("pg_snapshot_xmin(pg_current_snapshot())::text::bigint")
# SQLite needs INTEGER (not BIGINT) for an auto-incrementing rowid primary key.
_SEQ_TYPE = BigInteger().with_variant(Integer(), "sqlite")


class ClientChange(SQLModel, table=True):
    """Something about this client changed in the transaction ``txid``. Never updated."""

    __tablename__ = "client_change"
    __table_args__ = (
        Index("ix_client_change_position", "txid", "seq"),
        Index("ix_client_change_changed_at", "changed_at"),
        {"sqlite_autoincrement": True},
    )

    seq: int | None = Field(default=None, sa_column=Column(_SEQ_TYPE, primary_key=True))
    # PostgreSQL transaction id (xid8 as a number); 0 on SQLite, where seq alone orders.
    txid: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))
    client_id: str = Field(max_length=32, index=True)
    changed_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    # Which records changed ("contact_preference", "signature", ...), comma-separated.
    tables: str = Field(default="", sa_column=Column(String(400), nullable=False))


@dataclass(frozen=True)
class ChangeSource:
    """A table whose rows belong to a client. ``client_of`` names the client of a row (it may
    query, e.g. through the row's enrollment); None means the row concerns no client."""

    model: type[Any]
    client_of: Callable[[Session, Any], str | None]


def by_client_id(_db: Session, row: Any) -> str | None:
    return getattr(row, "client_id", None)


def by_enrollment(db: Session, row: Any) -> str | None:
    enrollment = db.get(Enrollment, row.enrollment_id)
    return enrollment.client_id if enrollment else None


HOST_SOURCES = (
    ChangeSource(Client, lambda _db, row: row.id),
    ChangeSource(Enrollment, by_client_id),
)


@dataclass(frozen=True, order=True)
class Position:
    """A place in the log. Opaque to API callers: they see ``encode()``."""

    txid: int = 0
    seq: int = 0

    def encode(self) -> str:
        raw = f"{self.txid}.{self.seq}".encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, cursor: str) -> Position | None:
        """The position in a cursor, or None when it is not one of ours."""
        if not cursor or len(cursor) > 64:
            return None
        try:
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
            txid, seq = (int(part) for part in raw.split("."))
        except (ValueError, binascii.Error, UnicodeDecodeError):
            return None
        if txid < 0 or seq < 0 or txid >= 2**63 or seq >= 2**63:
            return None
        return cls(txid, seq)


START = Position(0, 0)


def install(sources: Iterable[ChangeSource]) -> None:
    """Start logging changes to `sources` for every session in this process.

    Called by the app factory and the CLI with the host's and the plugins' sources. Calling
    it again replaces the set (tests build many apps)."""
    _registry.clear()
    for source in sources:
        _registry[source.model] = source
    if not event.contains(OrmSession, "after_flush", _after_flush):
        event.listen(OrmSession, "after_flush", _after_flush)
        event.listen(OrmSession, "before_commit", _before_commit)
        event.listen(OrmSession, "after_transaction_end", _after_transaction_end)


_registry: dict[type[Any], ChangeSource] = {}


def _after_flush(session: OrmSession, _flush: UOWTransaction) -> None:
    if not _registry:
        return
    pending: dict[str, set[str]] = session.info.setdefault(_PENDING, {})
    for row in [*session.new, *session.dirty]:
        source = _registry.get(type(row))
        if source is None or (row in session.dirty and not session.is_modified(row)):
            continue
        client_id = source.client_of(session, row)  # type: ignore[arg-type]
        if client_id:
            pending.setdefault(client_id, set()).add(type(row).__tablename__)


def _before_commit(session: OrmSession) -> None:
    # A savepoint's commit is not the end: its rows are logged with the outer transaction's.
    if not _registry or session.in_nested_transaction():
        return
    session.flush()  # rows still pending would otherwise escape the log
    pending: dict[str, set[str]] = session.info.pop(_PENDING, {})
    if pending:
        append(session, pending, utcnow())


def _after_transaction_end(session: OrmSession, transaction: Any) -> None:
    # Only the outermost transaction's end forgets what was pending. A rolled-back savepoint's
    # rows stay pending: at worst the log names a client whose record did not change.
    if transaction.parent is None:
        session.info.pop(_PENDING, None)


def append(session: OrmSession, changed: dict[str, set[str]], now: datetime) -> None:
    """Log `changed` (client id -> table names) in the session's transaction."""
    statement = insert(ClientChange)
    if session.get_bind().dialect.name == "postgresql":
        statement = statement.values(txid=_TXID)
    session.execute(
        statement,
        [
            {"client_id": client_id, "changed_at": now, "tables": ",".join(sorted(tables))[:400]}
            for client_id, tables in sorted(changed.items())
        ],
    )


def append_everyone(session: Session, reason: str, now: datetime) -> None:
    """Log a change for every client at once (a new policy version changes all their statuses)."""
    txid: Any = _TXID if _is_postgres(session) else literal(0)
    rows = select(txid, col(Client.id), literal(now, UTCDateTime()), literal(reason))
    columns = ["txid", "client_id", "changed_at", "tables"]
    session.execute(insert(ClientChange).from_select(columns, rows))


def _is_postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def horizon_condition(session: Session) -> Any:
    """SQL condition: the row's transaction has certainly finished (see the module docstring)."""
    if _is_postgres(session):
        return col(ClientChange.txid) < _OLDEST_RUNNING
    return text("1 = 1")


def read(session: Session, after: Position, limit: int) -> list[ClientChange]:
    """Up to `limit` changes after `after`, in log order, none beyond the safe horizon."""
    return list(session.exec(page_query(session, after, limit)))


def page_query(session: Session, after: Position, limit: int) -> SelectOfScalar[ClientChange]:
    """The statement `read` runs: a seek to `after` in the log's index, whatever its length."""
    query = select(ClientChange).where(horizon_condition(session)).limit(limit)
    if _is_postgres(session):
        position = tuple_(col(ClientChange.txid), col(ClientChange.seq))
        query = query.where(position > (after.txid, after.seq))
        query = query.order_by(col(ClientChange.txid), col(ClientChange.seq))
    else:
        # txid is 0 throughout and seq (the rowid) alone orders. SQLite seeks a row value
        # `(txid, seq) > (0, n)` on txid only, so it walked the log from its start: each page
        # of a sync cost more than the one before (6 -> 12 ms over 100,000 changes).
        query = query.where(col(ClientChange.seq) > after.seq).order_by(col(ClientChange.seq))
    return query


def head(session: Session) -> Position:
    """The position of the last change below the horizon: a sync may start from here."""
    query = (
        select(ClientChange)
        .where(horizon_condition(session))
        .order_by(col(ClientChange.txid).desc(), col(ClientChange.seq).desc())
        .limit(1)
    )
    last = session.exec(query).first()
    return position_of(last) if last else START


def first_at_or_after(session: Session, since: datetime) -> Position:
    """A position from which every change stamped at or after `since` follows.

    Approximate by nature (stamps are not commit order), so it errs early: callers get
    duplicates rather than gaps. Exact sync uses cursors."""
    query = (
        select(ClientChange)
        .where(col(ClientChange.changed_at) >= since)
        .order_by(col(ClientChange.txid), col(ClientChange.seq))
        .limit(1)
    )
    first = session.exec(query).first()
    if first is None:
        return head(session)
    return Position(first.txid, (first.seq or 1) - 1)


def position_of(change: ClientChange) -> Position:
    return Position(change.txid, change.seq or 0)
