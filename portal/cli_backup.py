"""`portal backup` and `portal restore`: a consistent copy of a live database, and its return.

SQLite is copied with its online backup API (a consistent snapshot while the app writes; a
plain file copy of a live database can be torn). PostgreSQL is dumped with `pg_dump -Fc` and
restored with `pg_restore`, which must be on PATH, of the server's major version or later.

Neither command ever writes over records: a backup goes to a new file, and a restore only into
a database that does not exist yet (SQLite) or has no tables (PostgreSQL, created empty with
`createdb`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import click
from sqlalchemy import inspect
from sqlalchemy.engine import URL, make_url

from portal import audit, audit_chain, migrations
from portal.audit import Actor, RequestMeta
from portal.cli_support import load_settings
from portal.db import make_engine, transaction
from portal.settings import Settings

SQLITE_MAGIC = b"SQLite format 3\x00"
PG_DUMP_MAGIC = b"PGDMP"


def sqlite_path(settings: Settings) -> Path:
    database = make_url(settings.database_url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        raise click.ClickException("PORTAL_DATABASE_URL names no SQLite file to back up.")
    return Path(database)


def libpq(settings: Settings) -> tuple[str, dict[str, str]]:
    """The database as a libpq URI for pg_dump/pg_restore, and an environment that carries
    the password (in PGPASSWORD, so it never shows in the process list)."""
    url: URL = make_url(settings.database_url)
    env = dict(os.environ)
    if url.password is not None:
        env["PGPASSWORD"] = str(url.password)
    plain = url.set(drivername="postgresql", password=None)
    return plain.render_as_string(hide_password=False), env


def run_tool(args: list[str], env: dict[str, str]) -> None:
    tool = shutil.which(args[0])
    if tool is None:
        raise click.ClickException(
            f"{args[0]} is not on PATH: install the PostgreSQL client tools, of the server's "
            "major version or later (Debian: apt-get install postgresql-client)."
        )
    done = subprocess.run([tool, *args[1:]], env=env, capture_output=True, text=True, check=False)  # noqa: S603
    if done.returncode != 0:
        raise click.ClickException(f"{args[0]} failed: {done.stderr.strip()}")


@contextlib.contextmanager
def new_file(target: Path) -> Iterator[Path]:
    """A temporary file beside `target`, moved to `target` when the block succeeds; never
    replaces an existing file (os.link refuses), even one created meanwhile."""
    refuse_existing(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.partial")
    partial.unlink(missing_ok=True)
    # Client records: readable by the owner alone, from the first byte written.
    os.close(os.open(partial, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    try:
        yield partial
        os.link(partial, target)
    except FileExistsError:
        raise click.ClickException(f"{target} appeared meanwhile; nothing written.") from None
    finally:
        partial.unlink(missing_ok=True)


def refuse_existing(target: Path) -> None:
    """A backup or restore never writes over a file, nor beside an SQLite file's leftover
    write-ahead log or journal, which SQLite would replay over the restored database."""
    if target.exists():
        raise click.ClickException(f"{target} exists; a backup never writes over a file.")
    for suffix in ("-wal", "-shm", "-journal"):
        leftover = target.with_name(target.name + suffix)
        if leftover.exists():
            raise click.ClickException(
                f"{leftover} is left from an earlier database; move it away first."
            )


def file_head(path: Path) -> bytes:
    with path.open("rb") as file:
        return file.read(16)


def check_sqlite_file(source: Path) -> None:
    if not source.is_file() or file_head(source) != SQLITE_MAGIC:
        raise click.ClickException(f"{source} is not an SQLite database.")


def sqlite_copy(source: Path, target: Path, timeout: float) -> None:
    """Copy with SQLite's online backup API, then check the copy page by page."""
    check_sqlite_file(source)
    with new_file(target) as partial:
        src = sqlite3.connect(source, timeout=timeout)
        dst = sqlite3.connect(partial)
        try:
            src.backup(dst)
            verdict = dst.execute("PRAGMA integrity_check").fetchone()[0]
        finally:
            src.close()
            dst.close()
        if verdict != "ok":
            raise click.ClickException(f"The copy failed SQLite's integrity check: {verdict}")


def record(settings: Settings, action: str, **detail: str) -> bool:
    """An audit event for the backup or restore, when the schema is this version's (a backup
    taken before `portal migrate` cannot use this version's tables, and need not wait)."""
    engine = make_engine(settings)
    try:
        migrations.check_current(settings, engine)
        with transaction(engine) as db:
            actor = Actor("cli", action)
            audit.record(db, actor, action, "database", "", RequestMeta.none(), **detail)
        return True
    except migrations.SchemaNotCurrent:
        return False
    finally:
        engine.dispose()


@click.command("backup")
@click.argument("target", type=click.Path(dir_okay=False, path_type=Path))
def backup(target: Path) -> None:
    """Write a consistent backup of the live database to TARGET, a new file (SQLite: an SQLite
    file; PostgreSQL: a pg_dump custom-format archive). Safe while the app runs."""
    settings = load_settings()
    kind = "sqlite" if settings.is_sqlite else "pg_dump"
    # What would refuse the backup is checked before the event is recorded (recording
    # connects, which would create a missing SQLite file).
    refuse_existing(target)
    if settings.is_sqlite:
        check_sqlite_file(sqlite_path(settings))
    elif shutil.which("pg_dump") is None:
        run_tool(["pg_dump"], {})  # says what to install
    # Recorded first, so the backup holds the event that says it was taken.
    recorded = record(settings, "database.backup", format=kind)
    if settings.is_sqlite:
        sqlite_copy(sqlite_path(settings), target, settings.sqlite_busy_timeout)
    else:
        uri, env = libpq(settings)
        with new_file(target) as partial:
            run_tool(["pg_dump", "--format=custom", f"--file={partial}", f"--dbname={uri}"], env)
    if not recorded:
        click.echo("Note: the schema is not this version's; no audit event was recorded.")
    click.echo(f"Backup written to {target} ({target.stat().st_size} bytes).")


@click.command("restore")
@click.argument("source", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def restore(source: Path) -> None:
    """Restore a backup from `portal backup` into PORTAL_DATABASE_URL, which must be new: a
    file that does not exist yet (SQLite) or an empty database (PostgreSQL: createdb first).
    Then walk the restored audit chain."""
    settings = load_settings()
    head = file_head(source)
    if settings.is_sqlite:
        if head != SQLITE_MAGIC:
            raise click.ClickException(f"{source} is not an SQLite backup.")
        sqlite_copy(source, sqlite_path(settings), settings.sqlite_busy_timeout)
    else:
        if not head.startswith(PG_DUMP_MAGIC):
            raise click.ClickException(f"{source} is not a pg_dump custom-format backup.")
        engine = make_engine(settings)
        try:
            tables = inspect(engine).get_table_names()
        finally:
            engine.dispose()
        if tables:
            raise click.ClickException(
                f"The target database has {len(tables)} table(s); restore only into an empty "
                "database (createdb NAME), never over records."
            )
        uri, env = libpq(settings)
        # Owned by the restoring role; grants are the operator's (README: append-only role).
        args = ["pg_restore", "--exit-on-error", "--single-transaction", "--no-owner"]
        run_tool([*args, "--no-privileges", f"--dbname={uri}", str(source)], env)
    engine = make_engine(settings)
    try:
        verdict = audit_chain.verify(engine)
    finally:
        engine.dispose()
    if not verdict.whole:
        raise click.ClickException(
            f"Restored, but the audit chain is BROKEN after {verdict.count} events: "
            f"{verdict.problem}"
        )
    if not record(
        settings, "database.restore", format="sqlite" if settings.is_sqlite else "pg_dump"
    ):
        click.echo("Note: the schema is not this version's; no audit event was recorded.")
    click.echo(f"Restored. Audit chain intact: {verdict.count} events. Head: {verdict.head}")
