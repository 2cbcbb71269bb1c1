"""Engine, sessions and the column types every table shares."""

from __future__ import annotations

import logging
import sqlite3
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, Engine, event
from sqlalchemy import exc as sa_exc
from sqlalchemy.types import TypeDecorator
from sqlmodel import Session, create_engine

from portal.settings import Settings


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id() -> str:
    return uuid.uuid4().hex


class UTCDateTime(TypeDecorator[datetime]):
    """Stores UTC, returns aware datetimes on SQLite (which drops the zone) and PostgreSQL alike."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use portal.db.utcnow()")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class _NoRowValues(logging.Filter):
    """SQLAlchemy logs every fetched row at DEBUG: names, addresses, phone numbers. The SQL
    stays loggable for debugging (its parameters are hidden); the rows are dropped."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.msg != "Row %r"


_NO_ROW_VALUES = _NoRowValues()


def make_engine(settings: Settings) -> Engine:
    logging.getLogger("sqlalchemy.engine.Engine").addFilter(_NO_ROW_VALUES)  # once: a set
    url = settings.database_url
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    # hide_parameters: a database error must not log the names and addresses it was given.
    if url.startswith("sqlite"):
        busy = {"check_same_thread": False, "timeout": settings.sqlite_busy_timeout}
        engine = create_engine(url, connect_args=busy, hide_parameters=True)
        writers = _WriterQueue(settings.sqlite_busy_timeout)
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", writers.begin)
        event.listen(engine, "commit", writers.end)
        event.listen(engine, "rollback", writers.end)
        # A connection closed or dropped mid-transaction ends without either event.
        event.listen(engine, "checkin", writers.returned)
        return engine
    # pool_pre_ping replaces connections the server dropped (a restart, a network cut), so the
    # app recovers by itself; connect_timeout keeps requests from hanging while it is away.
    return create_engine(
        url,
        pool_pre_ping=True,
        pool_size=10,
        max_overflow=10,
        hide_parameters=True,
        connect_args={"connect_timeout": settings.database_connect_timeout},
    )


class _WriterQueue:
    """A writer takes SQLite's write lock at BEGIN, so two writers queue instead of one failing
    mid-transaction; readers don't take it, so pages that only read never wait.

    Writers of this process first queue on a Python lock: SQLite's own busy handler polls by
    sleeping (up to 100 ms a time), which under concurrent requests put 0.1-0.8 s on the p95
    of pages that write an audit event (docs/benchmarks.md). Other processes still meet the
    busy handler. The wait is bounded by the busy timeout, after which BEGIN IMMEDIATE goes
    ahead and SQLite decides, so a nested writer can never hang here."""

    _HELD = "portal_writer_lock"

    def __init__(self, timeout: float) -> None:
        self.lock = threading.Lock()
        self.timeout = timeout

    def begin(self, conn: Any) -> None:
        if conn.get_execution_options().get("portal_read_only", False):
            conn.exec_driver_sql("BEGIN")
            return
        held = self.lock.acquire(timeout=self.timeout)
        conn.info[self._HELD] = held
        try:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        except BaseException:
            self.end(conn)
            raise

    def end(self, conn: Any) -> None:
        if conn.info.pop(self._HELD, False):
            self.lock.release()

    def returned(self, _dbapi_connection: Any, record: Any) -> None:
        if record is not None and record.info.pop(self._HELD, False):
            self.lock.release()


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # pysqlite's own transaction handling is disabled so the "begin" hook above owns BEGIN.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


@contextmanager
def transaction(engine: Engine, *, read_only: bool = False) -> Iterator[Session]:
    """One unit of work: commits on success, rolls back on any error, so nothing is half-written.

    `read_only` promises no writes (on SQLite it then takes no write lock).
    """
    bind = engine.execution_options(portal_read_only=True) if read_only else engine
    with Session(bind, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def is_outage(exc: BaseException) -> bool:
    """Whether a database error means "unreachable or busy for now" (answer 503, retry later)
    rather than a bug: a refused, dropped or timed-out connection, the server shutting down,
    SQLite's write lock still held after the busy timeout, or no pooled connection free in time.
    """
    if isinstance(exc, sa_exc.TimeoutError):
        return True
    if not isinstance(exc, sa_exc.DBAPIError):
        return False
    if exc.connection_invalidated:
        return True
    if isinstance(exc.orig, sqlite3.Error):
        # SQLite raises OperationalError for "no such table" too: only a lock is an outage.
        return isinstance(exc.orig, sqlite3.OperationalError) and "locked" in str(exc.orig)
    return isinstance(exc, (sa_exc.OperationalError, sa_exc.InterfaceError))
