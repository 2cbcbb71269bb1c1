"""The change log behind incremental sync: every write is logged with its transaction, and a
reader following the log with a cursor never misses a change, whatever order commits land in."""

from __future__ import annotations

import random
import sqlite3
import threading
import time

import pytest
from helpers import onboard, publish_default, settle_change_log
from sqlalchemy import text
from sqlmodel import select

from portal import changes
from portal.changes import START, ClientChange, Position
from portal.db import transaction
from portal.models import Client
from portal.runtime import Runtime


def _new_client(rt: Runtime, name: str = "Sam Ortiz") -> str:
    with transaction(rt.engine) as db:
        client = Client(full_name=name, email="sam@example.com")
        db.add(client)
        db.flush()
        return client.id


def _drain(
    rt: Runtime, after: Position = START, *, settle: bool = True
) -> tuple[list[ClientChange], Position]:
    if settle:
        settle_change_log(rt)
    seen: list[ClientChange] = []
    while True:
        with transaction(rt.engine, read_only=True) as db:
            rows = changes.read(db, after, 50)
        if not rows:
            return seen, after
        seen.extend(rows)
        after = changes.position_of(rows[-1])


def test_each_write_is_logged_once_per_transaction_with_the_tables_it_touched(rt: Runtime) -> None:
    publish_default(rt)
    enrollment = onboard(rt)
    rows, _ = _drain(rt)
    mine = [row for row in rows if row.client_id == enrollment.client_id]
    # The whole onboarding ran in one transaction: one entry naming what it wrote.
    assert len(mine) == 1
    tables = set(mine[0].tables.split(","))
    assert {"client", "enrollment"} <= tables


def test_a_rolled_back_transaction_leaves_no_entry(rt: Runtime) -> None:
    with pytest.raises(RuntimeError), transaction(rt.engine) as db:
        db.add(Client(full_name="Never Saved", email="never@example.com"))
        db.flush()
        raise RuntimeError("boom")
    rows, _ = _drain(rt)
    assert rows == []


def test_reads_continue_exactly_after_the_cursor(rt: Runtime) -> None:
    ids = [_new_client(rt, f"Client {n}") for n in range(7)]
    settle_change_log(rt)
    with transaction(rt.engine, read_only=True) as db:
        first = changes.read(db, START, 3)
        position = changes.position_of(first[-1])
        rest = changes.read(db, position, 100)
        assert changes.head(db) == changes.position_of(rest[-1])
    assert [row.client_id for row in [*first, *rest]] == ids


def test_a_page_is_a_seek_into_the_log_not_a_walk_from_its_start(rt: Runtime) -> None:
    """Every page of a sync costs the same however far into the log it starts: the page's
    statement seeks its position in an index (on SQLite a row value seeked on txid alone, 0 on
    every row, so page 100 of 100,000 changes cost twice page 1)."""
    with transaction(rt.engine, read_only=True) as db:
        statement = changes.page_query(db, Position(0, 4242), 1001)
        sql = str(statement.compile(db.get_bind(), compile_kwargs={"literal_binds": True}))
        if rt.engine.dialect.name == "sqlite":
            plan = " ".join(row[3] for row in db.execute(text(f"EXPLAIN QUERY PLAN {sql}")))
            assert plan == "SEARCH client_change USING INTEGER PRIMARY KEY (rowid>?)"
        else:
            db.execute(text("SET LOCAL enable_seqscan = off"))  # a test's table is tiny
            plan = "\n".join(db.execute(text(f"EXPLAIN {sql}")).scalars())
            conditions = [line for line in plan.splitlines() if "Index Cond:" in line]
            assert any("(ROW(txid, seq) > ROW(0, 4242))" in line for line in conditions), plan


def test_cursor_round_trip_and_refusal_of_foreign_cursors() -> None:
    position = Position(123456789, 42)
    assert Position.decode(position.encode()) == position
    for bad in ["", "nope", "MTIz", "LTEuMg", "x" * 100, "YS5i"]:
        assert Position.decode(bad) is None


def test_postgres_serves_no_change_behind_a_transaction_still_running(rt: Runtime) -> None:
    """The out-of-order commit that breaks `updated_at` sync, forced deterministically."""
    if rt.engine.dialect.name == "sqlite":
        # SQLite cannot commit out of order: a second writer can't even begin meanwhile.
        with transaction(rt.engine) as first:
            first.add(Client(full_name="A", email="a@example.com"))
            first.flush()
            other = sqlite3.connect(str(rt.engine.url.database), timeout=0.05)
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("BEGIN IMMEDIATE")
            other.close()
        return
    with transaction(rt.engine) as slow:
        slow.add(Client(full_name="Slow Writer", email="slow@example.com"))
        slow.flush()  # this transaction now has its id, the lower one
        fast_id = _new_client(rt, "Fast Writer")  # begins later, commits first
        seen, cursor = _drain(rt, settle=False)
        assert seen == []  # the fast change waits behind the running transaction
        assert cursor == START
    seen, _ = _drain(rt, cursor)
    names = {c.id: c.full_name for c in _clients(rt, [row.client_id for row in seen])}
    assert [names[row.client_id] for row in seen] == ["Slow Writer", "Fast Writer"]
    assert seen[1].client_id == fast_id


def _clients(rt: Runtime, ids: list[str]) -> list[Client]:
    with transaction(rt.engine, read_only=True) as db:
        return list(db.exec(select(Client).where(Client.id.in_(ids))))  # type: ignore[attr-defined]


def test_concurrent_writers_committing_out_of_order_lose_nothing(rt: Runtime) -> None:
    writers, per_writer = 6, 12
    created: list[str] = []
    lock = threading.Lock()
    done = threading.Event()
    seen: list[str] = []

    def write(seed: int) -> None:
        rng = random.Random(seed)
        for n in range(per_writer):
            with transaction(rt.engine) as db:
                client = Client(full_name=f"W{seed}-{n}", email="w@example.com")
                db.add(client)
                db.flush()
                time.sleep(rng.uniform(0, 0.01))  # commit later than a sibling that began after
            with lock:
                created.append(client.id)

    def poll() -> None:
        position, settled = START, False
        while True:
            finished = done.is_set()
            with transaction(rt.engine, read_only=True) as db:
                rows = changes.read(db, position, 7)
            seen.extend(row.client_id for row in rows)
            if rows:
                position = changes.position_of(rows[-1])
            elif finished and settled:
                return
            elif finished:
                settle_change_log(rt)  # then read once more to the end
                settled = True

    poller = threading.Thread(target=poll)
    poller.start()
    threads = [threading.Thread(target=write, args=(s,)) for s in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    done.set()
    poller.join(timeout=60)
    assert len(created) == writers * per_writer
    assert sorted(seen) == sorted(created)  # every change once: none missed, none twice


def test_everyone_gets_an_entry_when_a_new_policy_version_changes_all_statuses(
    rt: Runtime,
) -> None:
    ids = {_new_client(rt, f"C{n}") for n in range(3)}
    _, position = _drain(rt)
    with transaction(rt.engine) as db:
        changes.append_everyone(db, "policy_version", changes.utcnow())
    rows, _ = _drain(rt, position)
    assert {row.client_id for row in rows} == ids
    assert {row.tables for row in rows} == {"policy_version"}
