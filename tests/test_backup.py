"""`portal backup` and `portal restore`, as an operator uses them, on SQLite and PostgreSQL: a
practice with records is backed up, restored into a fresh database, and comes back whole."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from conftest import empty_postgres_database
from helpers import onboard, publish_default
from sqlalchemy import create_engine, text

from portal import cli as cli_module
from portal.cli_backup import sqlite_copy
from portal.cli_support import open_runtime
from portal.runtime import Runtime
from portal.settings import Settings

# The records a practice cannot lose: who the clients are, what they chose and what they signed.
RECORDS = {
    "client": "id",
    "enrollment": "id",
    "contact_preference": "id",
    "testimonial_decision": "id",
    "acknowledgement": "id",
    "signer_slot": "id",
    "signature": "id",
    "policy_version": "id",
}

Run = Callable[..., Result]


@pytest.fixture
def run(settings: Settings) -> Iterator[Run]:
    """`portal ARGS` with the test's settings; `database_url=` points it elsewhere."""
    cli_module._add_plugin_commands()

    def invoke(*args: str, database_url: str | None = None) -> Result:
        env = {
            "PORTAL_DATABASE_URL": database_url or settings.database_url,
            "PORTAL_SECRET_KEYS": settings.key_list[0],
            "PORTAL_BASE_URL": settings.base_url,
        }
        open_runtime.cache_clear()
        return CliRunner().invoke(cli_module.cli, list(args), env=env)

    yield invoke
    open_runtime.cache_clear()


@pytest.fixture
def fresh_database(settings: Settings, tmp_path: Path) -> Iterator[str]:
    """Where a restore goes: a file that does not exist yet, or an empty PostgreSQL database."""
    if settings.is_sqlite:
        yield f"sqlite:///{tmp_path / 'restored' / 'portal.db'}"
        return
    with empty_postgres_database("portal_restore") as url:
        yield url


def rows(database_url: str) -> dict[str, list[tuple[object, ...]]]:
    engine = create_engine(database_url.replace("postgresql://", "postgresql+psycopg://"))
    found: dict[str, list[tuple[object, ...]]] = {}
    try:
        with engine.connect() as conn:
            for table, key in RECORDS.items():
                query = text(f"SELECT * FROM {table} ORDER BY {key}")  # noqa: S608 (our names)
                found[table] = [tuple(row) for row in conn.execute(query)]
    finally:
        engine.dispose()
    return found


def audit_events(database_url: str) -> list[tuple[object, ...]]:
    engine = create_engine(database_url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        with engine.connect() as conn:
            query = text("SELECT id, action, subject_id, hash FROM audit_event ORDER BY id")
            return [tuple(r) for r in conn.execute(query)]
    finally:
        engine.dispose()


def test_backup_and_restore_bring_back_every_record(
    run: Run, rt: Runtime, settings: Settings, fresh_database: str, tmp_path: Path
) -> None:
    publish_default(rt)
    onboard(rt, "Jordan Avery", "jordan@example.com")
    onboard(rt, "Sam Okafor", "sam@example.com")
    onboard(rt, "Lee Marsh", "lee@example.com", steps=2)
    before = rows(settings.database_url)
    assert len(before["signature"]) == 2 and len(before["client"]) == 3

    backup_file = tmp_path / "backups" / "portal.backup"
    result = run("backup", str(backup_file))
    assert result.exit_code == 0, result.output
    assert f"Backup written to {backup_file}" in result.output
    events = audit_events(settings.database_url)
    assert events[-1][1] == "database.backup"  # the backup holds the event saying it was taken

    result = run("restore", str(backup_file), database_url=fresh_database)
    assert result.exit_code == 0, result.output
    assert f"Audit chain intact: {len(events)} events. Head: {events[-1][3]}" in result.output

    assert rows(fresh_database) == before
    restored_events = audit_events(fresh_database)
    assert restored_events[: len(events)] == events
    assert [e[1] for e in restored_events[len(events) :]] == ["database.restore"]
    verified = run("audit", "verify", database_url=fresh_database)
    assert verified.exit_code == 0, verified.output
    assert f"Audit chain intact: {len(events) + 1} events" in verified.output


def test_restore_never_writes_over_records(
    run: Run, rt: Runtime, settings: Settings, fresh_database: str, tmp_path: Path
) -> None:
    publish_default(rt)
    onboard(rt, "Jordan Avery", "jordan@example.com")
    backup_file = tmp_path / "portal.backup"
    assert run("backup", str(backup_file)).exit_code == 0
    assert run("restore", str(backup_file), database_url=fresh_database).exit_code == 0
    restored, live = rows(fresh_database), rows(settings.database_url)

    again = run("restore", str(backup_file), database_url=fresh_database)
    assert again.exit_code == 1
    assert "never over records" in again.output or "never writes over" in again.output
    assert rows(fresh_database) == restored
    # Nor over the live database, nor over an earlier backup file.
    assert run("restore", str(backup_file)).exit_code == 1
    assert rows(settings.database_url) == live
    second = run("backup", str(backup_file))
    assert second.exit_code == 1 and "never writes over a file" in second.output


def test_restore_refuses_a_backup_of_the_other_kind(
    run: Run, rt: Runtime, settings: Settings, fresh_database: str, tmp_path: Path
) -> None:
    wrong = tmp_path / "wrong.backup"
    wrong.write_bytes(b"PGDMP" + b"\0" * 64 if settings.is_sqlite else b"SQLite format 3\0" * 4)
    result = run("restore", str(wrong), database_url=fresh_database)
    assert result.exit_code == 1
    assert "is not" in result.output and "Traceback" not in result.output


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_sqlite_backup_completes_with_the_committed_state_while_a_writer_holds_the_lock(
    rt: Runtime, settings: Settings, tmp_path: Path
) -> None:
    """A backup taken while another connection is mid-transaction does not wait for it and
    holds what was committed, not the writer's uncommitted change."""
    publish_default(rt)
    onboard(rt, "Jordan Avery", "jordan@example.com")
    committed = rows(settings.database_url)
    live = Path(settings.database_url.removeprefix("sqlite:///"))
    writer = sqlite3.connect(live, timeout=5)
    writer.isolation_level = None
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("DELETE FROM signature")  # never committed
    backup_file = tmp_path / "mid-write.backup"
    try:
        # The copy itself (the command first records its audit event, which would wait for
        # this writer: SQLite has one at a time).
        sqlite_copy(live, backup_file, timeout=5)
    finally:
        writer.execute("ROLLBACK")
        writer.close()
    copy = rows(f"sqlite:///{backup_file}")
    assert copy == committed and len(copy["signature"]) == 1


def test_a_backup_is_readable_by_its_owner_alone_and_a_refused_one_leaves_no_trace(
    run: Run, rt: Runtime, settings: Settings, tmp_path: Path
) -> None:
    publish_default(rt)
    backup_file = tmp_path / "portal.backup"
    assert run("backup", str(backup_file)).exit_code == 0
    assert backup_file.stat().st_mode & 0o777 == 0o600  # every client's record is in it
    events = audit_events(settings.database_url)

    refused = run("backup", str(backup_file))
    assert refused.exit_code == 1 and "never writes over a file" in refused.output
    assert audit_events(settings.database_url) == events  # no event for a backup not taken


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_sqlite_backup_of_a_mistyped_database_path_fails_and_creates_nothing(
    run: Run, tmp_path: Path
) -> None:
    missing = tmp_path / "no-such" / "portal.db"
    result = run("backup", str(tmp_path / "x.backup"), database_url=f"sqlite:///{missing}")
    assert result.exit_code == 1 and "is not an SQLite database" in result.output
    assert not missing.exists() and not (tmp_path / "x.backup").exists()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_sqlite_restore_refuses_beside_a_leftover_write_ahead_log(
    run: Run, rt: Runtime, tmp_path: Path
) -> None:
    """SQLite would replay an old database's -wal file over the restored one."""
    publish_default(rt)
    backup_file = tmp_path / "portal.backup"
    assert run("backup", str(backup_file)).exit_code == 0
    target = tmp_path / "restored" / "portal.db"
    target.parent.mkdir()
    Path(f"{target}-wal").write_bytes(b"left from the deleted database")
    result = run("restore", str(backup_file), database_url=f"sqlite:///{target}")
    assert (
        result.exit_code == 1 and "portal.db-wal is left from an earlier database" in result.output
    )
    assert not target.exists()
