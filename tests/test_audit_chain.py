"""The audit log is a hash chain: `portal audit verify` finds any altered, removed or reordered
event, and concurrent writers never fork the chain. On SQLite and PostgreSQL."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterator

import pytest
from alembic import command
from click.testing import CliRunner, Result
from helpers import api_key, onboard, publish_default
from sqlalchemy import delete, insert, text, update
from sqlmodel import col, select
from starlette.testclient import TestClient

from portal import audit, audit_chain, migrations
from portal import cli as cli_module
from portal.audit import Actor, AuditEvent, RequestMeta
from portal.audit_chain import EVENTS, HEAD
from portal.cli_support import open_runtime
from portal.db import transaction, utcnow
from portal.runtime import Runtime
from portal.settings import Settings

Verify = Callable[[], Result]


@pytest.fixture
def verify(settings: Settings) -> Iterator[Verify]:
    cli_module._add_plugin_commands()
    env = {
        "PORTAL_DATABASE_URL": settings.database_url,
        "PORTAL_SECRET_KEYS": settings.key_list[0],
        "PORTAL_BASE_URL": settings.base_url,
    }

    def run() -> Result:
        open_runtime.cache_clear()
        return CliRunner().invoke(cli_module.cli, ["audit", "verify"], env=env)

    yield run
    open_runtime.cache_clear()


def ids(rt: Runtime) -> list[int]:
    with transaction(rt.engine, read_only=True) as db:
        return [i for i in db.exec(select(AuditEvent.id).order_by(col(AuditEvent.id))) if i]


def journey(rt: Runtime, client: TestClient) -> None:
    """A client's whole journey, read once over the API: events from many parts of the app."""
    publish_default(rt)
    enrollment = onboard(rt, "Robin Vale", "robin@example.com")
    secret = api_key(rt)
    response = client.get(
        f"/api/v1/clients/{enrollment.client_id}", headers={"Authorization": f"Bearer {secret}"}
    )
    assert response.status_code == 200, response.text


def test_a_journeys_events_verify(rt: Runtime, client: TestClient, verify: Verify) -> None:
    journey(rt, client)
    events = ids(rt)
    assert len(events) >= 8
    result = verify()
    assert result.exit_code == 0, result.output
    assert f"intact: {len(events)} events" in result.output
    paged = audit_chain.verify(rt.engine, batch=3)  # the walk across keyset batches
    assert paged.whole and paged.count == len(events)
    with transaction(rt.engine, read_only=True) as db:
        rows = list(db.exec(select(AuditEvent).order_by(col(AuditEvent.id))))
        head = db.get(audit_chain.AuditChainHead, audit_chain.HEAD_ID)
    assert rows[0].prev_hash == audit_chain.GENESIS
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(rows))
    assert head is not None and head.hash == rows[-1].hash in result.output


def test_an_altered_detail_is_named(rt: Runtime, client: TestClient, verify: Verify) -> None:
    journey(rt, client)
    victim = ids(rt)[3]
    with rt.engine.begin() as conn:
        conn.execute(update(EVENTS).where(EVENTS.c.id == victim).values(detail={"count": 0}))
    result = verify()
    assert result.exit_code == 1
    assert f"event {victim}: its content does not match its hash" in result.output
    assert "altered" in result.output


def test_an_altered_actor_with_a_rehashed_row_is_caught_at_the_next_link(
    rt: Runtime, client: TestClient, verify: Verify
) -> None:
    """Recomputing the altered row's own hash does not help: the next event points at the old."""
    journey(rt, client)
    victim, following = ids(rt)[2:4]
    with transaction(rt.engine) as db:
        row = db.get(AuditEvent, victim)
        assert row is not None
        forged = row.model_copy(update={"actor": "staff:someone-else"})
        new_hash = audit_chain.hash_of(forged, row.prev_hash)
    with rt.engine.begin() as conn:
        conn.execute(
            update(EVENTS)
            .where(EVENTS.c.id == victim)
            .values(actor="staff:someone-else", hash=new_hash)
        )
    result = verify()
    assert result.exit_code == 1
    assert f"event {following}: its prev_hash" in result.output
    assert f"is not the hash of event {victim}" in result.output


def test_a_deleted_event_is_named(rt: Runtime, client: TestClient, verify: Verify) -> None:
    journey(rt, client)
    events = ids(rt)
    with rt.engine.begin() as conn:
        conn.execute(delete(EVENTS).where(EVENTS.c.id == events[4]))
    result = verify()
    assert result.exit_code == 1
    assert f"event {events[5]}: its prev_hash" in result.output
    assert f"not the hash of event {events[3]}" in result.output
    assert "removed, inserted or reordered" in result.output


def test_reordered_events_are_named(rt: Runtime, client: TestClient, verify: Verify) -> None:
    journey(rt, client)
    first, second = ids(rt)[5:7]
    with rt.engine.begin() as conn:  # swap two events' places in the log
        conn.execute(update(EVENTS).where(EVENTS.c.id == first).values(id=-1))
        conn.execute(update(EVENTS).where(EVENTS.c.id == second).values(id=first))
        conn.execute(update(EVENTS).where(EVENTS.c.id == -1).values(id=second))
    result = verify()
    assert result.exit_code == 1
    assert f"event {first}: its prev_hash" in result.output


def test_removing_the_newest_events_is_caught(
    rt: Runtime, client: TestClient, verify: Verify
) -> None:
    journey(rt, client)
    events = ids(rt)
    with rt.engine.begin() as conn:
        conn.execute(delete(EVENTS).where(EVENTS.c.id >= events[-2]))
    result = verify()
    assert result.exit_code == 1
    assert f"the chain ends at event {events[-3]}" in result.output
    assert "events at the end were removed" in result.output


def _write_concurrently(
    rt: Runtime, writers: int, write: Callable[[int], None]
) -> list[AuditEvent]:
    """Run `write(n)` for n in range(writers) in threads released at once; every event
    stored after, in chain order, once none of them failed and the chain has not forked."""
    start = threading.Barrier(writers)
    failures: list[BaseException] = []

    def run(n: int) -> None:
        try:
            start.wait()
            write(n)
        except BaseException as exc:  # reported below
            failures.append(exc)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    with transaction(rt.engine, read_only=True) as db:
        rows = list(db.exec(select(AuditEvent).order_by(col(AuditEvent.id))))
    # A fork would show as two events claiming the same predecessor.
    assert len({r.prev_hash for r in rows}) == len(rows)
    return rows


def test_concurrent_writers_never_fork_the_chain(rt: Runtime, verify: Verify) -> None:
    writers, transactions = 8, 6

    def write(n: int) -> None:
        for i in range(transactions):
            with transaction(rt.engine) as db:
                for part in ("first", "second"):  # two events in one transaction
                    audit.record(
                        db, Actor("system", f"writer-{n}"), "test.write", "test", str(i),
                        RequestMeta.none(), part=part,
                    )  # fmt: skip

    rows = _write_concurrently(rt, writers, write)
    assert len(rows) == writers * transactions * 2
    result = verify()
    assert result.exit_code == 0, result.output
    assert f"intact: {len(rows)} events" in result.output


def test_events_stored_alone_and_with_a_unit_of_work_share_one_chain(
    rt: Runtime, verify: Verify
) -> None:
    """`record_alone` (API reads: a Core insert in its own transaction) and `record` (an ORM
    flush) append to the same chain concurrently without forking it."""
    writers, transactions = 6, 5

    def write(n: int) -> None:
        actor = Actor("api" if n % 2 else "system", f"writer-{n}")
        for i in range(transactions):
            if n % 2:
                audit.record_alone(
                    rt.engine, actor, "api.client_read", "client", str(i),
                    RequestMeta("10.0.0.1", "EHR/1.0"), history=bool(i % 2),
                )  # fmt: skip
                continue
            with transaction(rt.engine) as db:
                audit.record(db, actor, "test.write", "test", str(i), RequestMeta.none())

    rows = _write_concurrently(rt, writers, write)
    assert len(rows) == writers * transactions
    alone = [r for r in rows if r.action == "api.client_read"]
    assert len(alone) == writers // 2 * transactions
    assert {(r.ip, r.user_agent) for r in alone} == {("10.0.0.1", "EHR/1.0")}
    assert {r.detail["history"] for r in alone} == {True, False}
    result = verify()
    assert result.exit_code == 0, result.output
    assert f"intact: {len(rows)} events" in result.output


def test_an_emptied_head_restarts_from_the_newest_event(rt: Runtime, verify: Verify) -> None:
    with transaction(rt.engine) as db:
        audit.record(db, Actor("system", "t"), "test.one", "test", "1")
    with rt.engine.begin() as conn:
        conn.execute(delete(HEAD))
    with transaction(rt.engine) as db:
        audit.record(db, Actor("system", "t"), "test.two", "test", "2")
    result = verify()
    assert result.exit_code == 0, result.output
    assert "intact: 2 events" in result.output


def test_the_migration_chains_existing_events(rt: Runtime, verify: Verify) -> None:
    config = migrations.alembic_config(rt.settings)
    with rt.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "host_0009")
    try:
        with rt.engine.begin() as conn:
            for n in range(3):
                conn.execute(
                    text(
                        "INSERT INTO audit_event (at, actor, action, subject_type, subject_id, "
                        "ip, user_agent, detail) VALUES "
                        "(:at, 'cli:old', 'old.event', 'test', :n, '', '', :detail)"
                    ),
                    {"at": utcnow().replace(tzinfo=None), "n": str(n), "detail": '{"n": 1}'},
                )
    finally:
        migrations.upgrade(rt.settings, rt.engine)
    result = verify()
    assert result.exit_code == 0, result.output
    assert "intact: 3 events" in result.output
    with transaction(rt.engine) as db:  # new events continue the backfilled chain
        audit.record(db, Actor("system", "t"), "test.after", "test", "4")
    assert "intact: 4 events" in verify().output


def test_verify_counts_an_empty_log(verify: Verify) -> None:
    result = verify()
    assert result.exit_code == 0 and "intact: 0 events" in result.output


def test_events_written_without_the_orm_unit_of_work_are_refused_by_verify(
    rt: Runtime, verify: Verify
) -> None:
    """A row slipped in with plain SQL (no hash) is named as a broken link."""
    with transaction(rt.engine) as db:
        audit.record(db, Actor("system", "t"), "test.one", "test", "1")
    with rt.engine.begin() as conn:
        conn.execute(
            insert(EVENTS).values(
                at=utcnow(), actor="cli:x", action="forged", subject_type="t", subject_id="1",
                ip="", user_agent="", detail={}, prev_hash="", hash="",
            )
        )  # fmt: skip
    last = ids(rt)[-1]
    result = verify()
    assert result.exit_code == 1 and f"event {last}: its prev_hash" in result.output
